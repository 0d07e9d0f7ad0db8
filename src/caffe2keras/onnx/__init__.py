"""Caffe to ONNX, straight from the Caffe graph: no Keras, no TensorFlow (``caffe2keras[onnx]``).

The file is in Caffe's NCHW layout at opset 13, which onnxruntime, OpenCV 5's ``readNetFromONNX``,
TensorRT and OpenVINO all read.
"""

from __future__ import annotations

import importlib.util

from caffe2keras.errors import ExportError
from caffe2keras.onnx.opset import OPSET

EXTRA_HINT = "Install it with: pip install 'caffe2keras[onnx]'"


def to_onnx(prototxt, weights, path, *, input_shapes=None, outputs=None):
    """Write the Caffe net ``prototxt`` with ``weights`` (None: architecture only, weights left
    out) as the ONNX file ``path``; see :func:`caffe2keras.onnx.writer.to_onnx`."""
    if importlib.util.find_spec("onnx") is None:
        raise ExportError(f"Writing ONNX needs the onnx package. {EXTRA_HINT}. Received: path={str(path)!r}")
    from caffe2keras.onnx.writer import to_onnx as write

    return write(prototxt, weights, path, input_shapes=input_shapes, outputs=outputs)


__all__ = ["OPSET", "to_onnx"]
