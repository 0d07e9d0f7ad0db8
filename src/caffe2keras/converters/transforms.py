"""Caffe parameter blobs in Keras' layouts.

One definition of each rearrangement, used by the converters and by
:func:`caffe2keras.load_caffe_weights`, which fills existing Keras models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from caffe2keras.arrays import owned_copy
from caffe2keras.node import batch_norm_statistics  # noqa: F401  (shared with the ONNX writer)


def kernel_to_keras(kernel: np.ndarray) -> np.ndarray:
    """A Caffe kernel ``(a, b, spatial...)`` as Keras' ``(spatial..., b, a)`` (a view).

    Convolution ``(out, in / group, ...)`` becomes Keras' ``(..., in / group, out)``;
    Deconvolution ``(in, out / group, ...)`` becomes a transposed convolution's ``(..., out / group, in)``.
    """
    return np.transpose(kernel, (*range(2, kernel.ndim), 1, 0))


def depthwise_kernel_to_keras(kernel: np.ndarray, channels: int) -> np.ndarray:
    """A depthwise Caffe kernel ``(channels * multiplier, 1, spatial...)`` as Keras'
    ``(spatial..., channels, multiplier)``: Caffe output ``o`` reads input channel ``o // multiplier``."""
    multiplier = kernel.shape[0] // channels
    spatial = kernel.shape[2:]
    return kernel.reshape(channels, multiplier, *spatial).transpose(*range(2, 2 + len(spatial)), 0, 1)


def dense_kernel_to_keras(
    weight: np.ndarray,
    *,
    transpose: bool = False,
    features: Sequence[int] | None = None,
    order: Sequence[int] | None = None,
) -> np.ndarray:
    """InnerProduct's weight ``(outputs, inputs)`` (``transpose``: ``(inputs, outputs)``) as a
    Dense kernel ``(inputs, outputs)``.

    Caffe flattens its bottom ``features`` (e.g. ``(C, H, W)``) in that order; when Keras flattens
    those axes in another ``order`` (``(1, 2, 0)``: H, W, C), the rows are permuted to match, in
    one copy.
    """
    kernel = weight if transpose else weight.T
    if features is None or tuple(order) == tuple(range(len(features))):
        return kernel
    outputs = kernel.shape[1]
    # Permute a (features..., outputs) view, then copy it once into 2-D rows (a reshape of the
    # transposed view would copy it twice).
    by_axis = (
        weight.reshape(*features, outputs) if transpose else np.moveaxis(weight.reshape(outputs, *features), 0, -1)
    )
    return owned_copy(by_axis.transpose(*order, len(features))).reshape(-1, outputs)
