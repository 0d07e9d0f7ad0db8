"""One module per layer family; importing them registers their ONNX emitters."""

from caffe2keras.onnx.families import (  # noqa: F401
    activations,
    arithmetic,
    convolution,
    detection,
    normalization,
    pooling,
    reduction,
    resampling,
    reshaping,
)
