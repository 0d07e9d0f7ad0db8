"""The same saved .keras runs on another Keras backend and gives the same numbers.

Custom layers use ``keras.ops`` only; this converts a net that uses every one of them (and the
built-in layers the converters pick), saves it under JAX, and reloads it with ``safe_mode=True``
in a fresh process with ``KERAS_BACKEND=torch``. Skipped when PyTorch is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.synthetic import synthetic_weights
from tests.golden import assert_matches
from tests.shared import FORMATS, REPO
from tests.sweep import predict

NET = """name: "every_custom_layer"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 4 dim: 9 dim: 10 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 6 kernel_size: 3 stride: 1 pad_h: 1 pad_w: 0 } }
layer { name: "dw" type: "Convolution" bottom: "conv" top: "dw"
        convolution_param { num_output: 6 group: 6 kernel_size: 3 stride: 2 dilation: 2 pad: 2 } }
layer { name: "deconv" type: "Deconvolution" bottom: "dw" top: "deconv"
        convolution_param { num_output: 4 group: 2 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "ave" type: "Pooling" bottom: "conv" top: "ave" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "max" type: "Pooling" bottom: "conv" top: "max" pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "across" type: "LRN" bottom: "ave" top: "across" lrn_param { local_size: 3 alpha: 0.5 k: 2 } }
layer { name: "within" type: "LRN" bottom: "max" top: "within"
        lrn_param { local_size: 3 alpha: 0.5 norm_region: WITHIN_CHANNEL } }
layer { name: "bn" type: "BatchNorm" bottom: "across" top: "bn" }
layer { name: "scale" type: "Scale" bottom: "bn" top: "bn" scale_param { bias_term: true } }
layer { name: "sum" type: "Eltwise" bottom: "bn" bottom: "within" top: "sum" eltwise_param { coeff: 0.5 coeff: -2 } }
layer { name: "abs" type: "AbsVal" bottom: "sum" top: "abs" }
layer { name: "log" type: "Log" bottom: "abs" top: "log" log_param { base: 2 shift: 1 } }
layer { name: "exp" type: "Exp" bottom: "log" top: "exp" exp_param { scale: -0.5 } }
layer { name: "power" type: "Power" bottom: "exp" top: "power" power_param { power: 2 scale: 1.5 shift: -0.5 } }
layer { name: "clip" type: "Clip" bottom: "sum" top: "clip" clip_param { min: -0.5 max: 0.75 } }
layer { name: "threshold" type: "Threshold" bottom: "sum" top: "threshold" threshold_param { threshold: 0.1 } }
layer { name: "swish" type: "Swish" bottom: "sum" top: "swish" swish_param { beta: 2 } }
layer { name: "leaky" type: "ReLU" bottom: "swish" top: "leaky" relu_param { negative_slope: -0.2 } }
layer { name: "slice" type: "Slice" bottom: "deconv" top: "slice_a" top: "slice_b" slice_param { slice_point: 1 } }
layer { name: "crop" type: "Crop" bottom: "slice_b" bottom: "max" top: "crop" crop_param { axis: 2 offset: 1 } }
layer { name: "fc" type: "InnerProduct" bottom: "crop" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
OUTPUTS = ["power", "clip", "threshold", "leaky", "slice_a", "crop", "prob"]

# The child process: load with safe_mode under torch, run, save the outputs.
CHILD = """
import sys, numpy as np, caffe2keras.layers, keras
from tests.sweep import predict
assert keras.backend.backend() == "torch", keras.backend.backend()
inputs = dict(np.load(sys.argv[1]))
for data_format in sys.argv[3:]:
    model = keras.saving.load_model(f"{sys.argv[2]}/{data_format}.keras", safe_mode=True)
    np.savez(f"{sys.argv[2]}/{data_format}.torch.npz", *predict(model, inputs, data_format))
"""


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_saved_model_runs_the_same_on_torch(tmp_path):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(NET)
    weights = tmp_path / "net.caffemodel"
    write_caffemodel(weights, synthetic_weights(prototxt, seed=3))
    inputs = {"data": np.random.default_rng(0).standard_normal((2, 4, 9, 10)).astype(np.float32)}
    np.savez(tmp_path / "inputs.npz", **inputs)
    expected = {}
    for data_format in FORMATS:
        model = caffe2keras.convert(prototxt, weights, outputs=OUTPUTS, data_format=data_format)
        model.save(tmp_path / f"{data_format}.keras")
        expected[data_format] = predict(model, inputs, data_format)

    env = {
        **os.environ,
        "KERAS_BACKEND": "torch",
        "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "inputs.npz"), str(tmp_path), *FORMATS],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for data_format in FORMATS:
        with np.load(tmp_path / f"{data_format}.torch.npz") as saved:
            actual = [saved[f"arr_{i}"] for i in range(len(OUTPUTS))]
        for blob, value, reference in zip(OUTPUTS, actual, expected[data_format]):
            assert_matches(value, reference, f"{data_format}: blob {blob!r} on torch vs jax")
