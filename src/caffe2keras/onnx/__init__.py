"""Caffe to ONNX, straight from the Caffe graph: no Keras, no TensorFlow (``caffe2keras[onnx]``)."""

from caffe2keras.onnx.writer import OPSET, to_onnx

__all__ = ["OPSET", "to_onnx"]
