"""Layers no golden case holds, written to ONNX and compared in onnxruntime with the Keras
conversion of the same net (which its own tests hold to real Caffe and OpenCV)."""

from __future__ import annotations

import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.onnx import to_onnx
from caffe2keras.synthetic import synthetic_weights
from tests.golden import assert_matches, run

ort = pytest.importorskip("onnxruntime")

NETS = {
    "roi_pooling": (
        'input: "data" input_shape { dim: 2 dim: 3 dim: 12 dim: 16 }\n'
        'input: "rois" input_shape { dim: 4 dim: 5 }\n'
        'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" '
        "convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }\n"
        'layer { name: "pool" type: "ROIPooling" bottom: "conv" bottom: "rois" top: "pool" '
        "roi_pooling_param { pooled_h: 3 pooled_w: 2 spatial_scale: 0.5 } }\n"
    ),
    "mvn": (
        'input: "data" input_shape { dim: 2 dim: 3 dim: 5 dim: 7 }\n'
        'layer { name: "mvn" type: "MVN" bottom: "data" top: "mvn" mvn_param { eps: 0.01 } }\n'
        'layer { name: "mvn2" type: "MVN" bottom: "data" top: "mvn2" '
        "mvn_param { across_channels: true normalize_variance: false } }\n"
    ),
    "lrn_within_channel": (
        'input: "data" input_shape { dim: 1 dim: 3 dim: 6 dim: 5 }\n'
        'layer { name: "lrn" type: "LRN" bottom: "data" top: "lrn" '
        "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL } }\n"
    ),
    "normalize": (
        'input: "data" input_shape { dim: 2 dim: 4 dim: 3 dim: 3 }\n'
        'layer { name: "norm" type: "Normalize" bottom: "data" top: "norm" '
        "norm_param { across_spatial: false channel_shared: false } }\n"
        'layer { name: "norm2" type: "Normalize" bottom: "data" top: "norm2" '
        "norm_param { across_spatial: true channel_shared: true } }\n"
    ),
    "forks": (
        'input: "data" input_shape { dim: 2 dim: 6 dim: 4 dim: 5 }\n'
        'input: "a" input_shape { dim: 2 dim: 6 }\n'
        'layer { name: "shuffle" type: "ShuffleChannel" bottom: "data" top: "shuffle" '
        "shuffle_channel_param { group: 3 } }\n"
        'layer { name: "bn" type: "BN" bottom: "shuffle" top: "bn" bn_param { eps: 0.001 } }\n'
        'layer { name: "axpy" type: "Axpy" bottom: "a" bottom: "bn" bottom: "data" top: "axpy" }\n'
    ),
    "interp": (
        'input: "data" input_shape { dim: 2 dim: 3 dim: 7 dim: 9 }\n'
        'layer { name: "zoom" type: "Interp" bottom: "data" top: "zoom" interp_param { zoom_factor: 3 } }\n'
        'layer { name: "fixed" type: "Interp" bottom: "zoom" top: "fixed" '
        "interp_param { height: 10 width: 4 pad_beg: -1 pad_end: -2 } }\n"
        # PSPNet's order: height and width come before shrinking then zooming
        'layer { name: "sized" type: "Interp" bottom: "data" top: "sized" '
        "interp_param { shrink_factor: 2 zoom_factor: 3 height: 5 width: 6 } }\n"
    ),
    "dropout": (
        'input: "data" input_shape { dim: 2 dim: 3 dim: 4 dim: 5 }\n'
        # caffe-fast-rcnn's test-time factor
        'layer { name: "drop" type: "Dropout" bottom: "data" top: "drop" '
        "dropout_param { dropout_ratio: 0.3 scale_train: false } }\n"
    ),
    # BaseConvolutionLayer: each bottom convolved with the one set of weights (OpenCV's conv_2_inps)
    "several_bottoms": (
        'input: "data" input_shape { dim: 2 dim: 3 dim: 7 dim: 6 }\n'
        'input: "more" input_shape { dim: 2 dim: 3 dim: 7 dim: 6 }\n'
        'layer { name: "conv" type: "Convolution" bottom: "data" bottom: "more" top: "c1" top: "c2" '
        "convolution_param { num_output: 4 kernel_h: 3 kernel_w: 2 stride: 2 pad: 1 } }\n"
        'layer { name: "point" type: "Convolution" bottom: "data" bottom: "more" top: "p1" top: "p2" '
        "convolution_param { num_output: 2 kernel_size: 1 pad: 1 } }\n"
        'layer { name: "deconv" type: "Deconvolution" bottom: "c1" bottom: "c2" top: "d1" top: "d2" '
        "convolution_param { num_output: 3 kernel_size: 3 stride: 2 } }\n"
    ),
    "reductions": (
        'input: "data" input_shape { dim: 2 dim: 3 dim: 4 dim: 5 }\n'
        'layer { name: "relu" type: "ReLU" bottom: "data" top: "relu" }\n'
        'layer { name: "top3" type: "ArgMax" bottom: "relu" top: "top3" argmax_param { top_k: 3 axis: 1 } }\n'
        'layer { name: "best" type: "ArgMax" bottom: "relu" top: "best" argmax_param { top_k: 4 out_max_val: true } }\n'
        'layer { name: "sum" type: "Reduction" bottom: "data" top: "sum" reduction_param { axis: 2 coeff: 0.5 } }\n'
        'layer { name: "asum" type: "Reduction" bottom: "data" top: "asum" '
        "reduction_param { operation: ASUM axis: 1 } }\n"
        'layer { name: "sumsq" type: "Reduction" bottom: "data" top: "sumsq" '
        "reduction_param { operation: SUMSQ axis: -1 } }\n"
        'layer { name: "mean" type: "Reduction" bottom: "data" top: "mean" '
        "reduction_param { operation: MEAN axis: 1 } }\n"
        'layer { name: "tile" type: "Tile" bottom: "data" top: "tile" tile_param { axis: 2 tiles: 3 } }\n'
    ),
}


def _inputs(name: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    if name == "roi_pooling":
        rois = np.array([[0, 0, 0, 15, 11], [1, 2, 3, 9, 8], [0, 5, 1, 6, 2], [1, 14, 10, 20, 30]], np.float32)
        return {"data": rng.standard_normal((2, 3, 12, 16)).astype(np.float32), "rois": rois}
    if name == "several_bottoms":
        return {n: rng.standard_normal((2, 3, 7, 6)).astype(np.float32) for n in ("data", "more")}
    if name == "forks":
        return {"data": rng.standard_normal((2, 6, 4, 5)).astype(np.float32), "a": rng.random((2, 6), np.float32)}
    shape = {
        "reductions": (2, 3, 4, 5),
        "interp": (2, 3, 7, 9),
        "dropout": (2, 3, 4, 5),
        "mvn": (2, 3, 5, 7),
        "lrn_within_channel": (1, 3, 6, 5),
        "normalize": (2, 4, 3, 3),
    }[name]
    return {"data": rng.standard_normal(shape).astype(np.float32)}


@pytest.mark.parametrize("name", list(NETS))
def test_layer_matches_the_keras_conversion(name, tmp_path):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(NETS[name])
    layers = synthetic_weights(prototxt, seed=1)
    weights = tmp_path / "net.caffemodel" if layers else None
    if layers:
        write_caffemodel(weights, layers)
    model = caffe2keras.convert(prototxt, weights, data_format="channels_first")
    inputs = _inputs(name)
    expected = run(model, [inputs[t.name] for t in model.inputs], "channels_first")
    path = to_onnx(prototxt, weights, tmp_path / "net.onnx").path
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    for output, actual, reference in zip(names, session.run(names, inputs), expected):
        assert_matches(actual, reference, f"{name}: {output}")
