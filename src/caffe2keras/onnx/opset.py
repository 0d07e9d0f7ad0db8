"""The ONNX opset the writer targets: the newest that onnxruntime, OpenCV 5, TensorRT and OpenVINO all read."""

OPSET = 13
