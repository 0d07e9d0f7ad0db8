"""Loading a saved model needs only ``caffe2keras.layers``: that package never reaches the Caffe side."""

from __future__ import annotations

import subprocess
import sys

CAFFE_SIDE = ("google.protobuf", "caffe2keras.caffe", "caffe2keras.graph", "caffe2keras.converters")


def test_importing_the_layers_leaves_the_caffe_side_unloaded():
    probe = f"import sys, caffe2keras.layers; print(sorted(m for m in sys.modules if m.startswith({CAFFE_SIDE!r})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
