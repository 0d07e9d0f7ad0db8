"""Run an ONNX file in OpenCV 5's dnn module (executed by the OpenCV 5 venv's Python, not imported).

Usage: python opencv5_run.py MODEL.onnx OUT_DIR ENGINE INPUT=FILE.npy... -- OUTPUT...
Writes OUT_DIR/<output>.npy for each named output (``/`` in a name written as ``__``).
"""

import sys
from pathlib import Path

import cv2
import numpy as np


def main(argv):
    model, out_dir, engine, *rest = argv
    split = rest.index("--")
    inputs = dict(arg.split("=", 1) for arg in rest[:split])
    outputs = rest[split + 1 :]
    net = cv2.dnn.readNetFromONNX(model, getattr(cv2.dnn, f"ENGINE_{engine.upper()}"))
    for name, path in inputs.items():
        net.setInput(np.load(path), name)
    for name, value in zip(outputs, net.forward(outputs)):
        np.save(Path(out_dir) / f"{name.replace('/', '__')}.npy", value)


if __name__ == "__main__":
    main(sys.argv[1:])
