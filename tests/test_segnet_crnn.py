"""SegNet (alexgkendall/caffe-segnet) and CRNN (a Caffe fork with ContinuationIndicator), as published.

Oracles: numpy written from the forks' C++ -- caffe-segnet's BNLayer::Forward_cpu and
UpsampleLayer::Forward_cpu, BVLC's pooling with its mask top, CRNN's
ContinuationIndicatorLayer::Forward_cpu -- and OpenCV 4 for CRNN's convolutional part.
Every converted model is saved and reloaded with ``safe_mode=True`` before it runs.
"""

from __future__ import annotations

import numpy as np
import pytest

import caffe2keras
from caffe2keras.api import load_graph
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.synthetic import synthetic_weights
from tests import oracle
from tests.golden import assert_matches, run, save_and_reload
from tests.nets import convert_and_run, layer, net, write_net
from tests.shared import FORMATS, REPO
from tests.test_forks import caffe_max_pool_with_mask, segnet_unpool
from tests.test_recurrent import caffe_lstm

PUBLISHED = REPO / "tests" / "data" / "published"
SEGNET_EPSILON = 1e-9


def random(shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


# ---------------------------------------------------------------- SegNet's BN


def segnet_bn(x, scale, shift, mode):
    """caffe-segnet BNLayer::Forward_cpu: LEARN normalizes by the batch's E[x] and E[x^2] - E[x]^2."""
    x = x.astype(np.float64)
    if mode == "LEARN":
        mean = x.mean(axis=(0, 2, 3), keepdims=True)
        variance = (x**2).mean(axis=(0, 2, 3), keepdims=True) - mean**2
        x = (x - mean) / np.sqrt(variance + SEGNET_EPSILON)
    return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("mode", ["INFERENCE", "LEARN", None])  # None: the fork's default, LEARN
def test_segnet_bn(mode, data_format, tmp_path):
    x = random((2, 3, 4, 5), seed=1, scale=3.0) + 1.0
    scale, shift = random((1, 3, 1, 1), seed=2), random((1, 3, 1, 1), seed=3)
    params = f"bn_param {{ bn_mode: {mode} }}" if mode else ""
    text = net({"data": x.shape}, layer("BN", params))
    [actual] = convert_and_run(tmp_path, text, [x], data_format, [("l", "BN", [scale, shift])])
    assert_matches(actual, segnet_bn(x, scale, shift, mode or "LEARN"), f"BN {mode}")


def test_segnet_bn_refuses_pspnet_fields(tmp_path):
    text = net({"data": (1, 3, 4, 5)}, layer("BN", "bn_param { bn_mode: INFERENCE eps: 1e-3 }"))
    prototxt, _ = write_net(tmp_path, text)
    with pytest.raises(caffe2keras.UnsupportedParameterError, match=r"bn_param\.bn_mode"):
        caffe2keras.convert(prototxt)


# ---------------------------------------------------------------- DenseImageData


@pytest.mark.parametrize(
    "params, shape",
    [
        ("batch_size: 2 crop_height: 8 crop_width: 10", (2, 3, 8, 10)),
        ("batch_size: 1 new_height: 6 new_width: 7 is_color: false", (1, 1, 6, 7)),
        ("batch_size: 1 new_height: 6 new_width: 7 } transform_param { crop_size: 5", (1, 3, 5, 5)),
    ],
)
def test_dense_image_data_is_an_input(params, shape, tmp_path):
    text = (
        f'layer {{ name: "data" type: "DenseImageData" top: "data" top: "label" '
        f'dense_image_data_param {{ source: "list.txt" {params} }} }}\n'
        + layer("ReLU", bottoms=("data",), tops=("out",))
    )
    prototxt, _ = write_net(tmp_path, text)
    model = caffe2keras.convert(prototxt, data_format="channels_first")
    assert model.input.shape == (None, *shape[1:])


def test_dense_image_data_refuses_its_mean_file(tmp_path):
    text = 'layer { name: "data" type: "DenseImageData" top: "data" dense_image_data_param { mean_file: "m.binaryproto" } }\n'
    prototxt, _ = write_net(tmp_path, text + layer("ReLU", bottoms=("data",), tops=("out",)))
    with pytest.raises(caffe2keras.Caffe2KerasError, match=r"dense_image_data_param\.mean_file"):
        caffe2keras.convert(prototxt, input_shapes={"data": (1, 3, 4, 4)})


# ---------------------------------------------------------------- the published SegNets


def conv_same(x, weight, bias, pad):
    """A stride-1 convolution (BVLC's im2col + gemm), as float64 matrix products per kernel offset."""
    _, _, height, width = x.shape
    kh, kw = weight.shape[2:]
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    out_h, out_w = height + 2 * pad - kh + 1, width + 2 * pad - kw + 1
    y = np.zeros((x.shape[0], weight.shape[0], out_h, out_w))
    for i in range(kh):
        for j in range(kw):
            y += np.einsum("nchw,oc->nohw", xp[:, :, i : i + out_h, j : j + out_w], weight[:, :, i, j], optimize=True)
    return y + bias.reshape(1, -1, 1, 1)


def segnet_stages(prototxt, blobs, values):
    """Each SegNet block's reference from the converted net's own bottoms: conv, BN (INFERENCE)
    and ReLU in place; pooling with its mask; the mask unpooling; the softmax."""
    graph = load_graph(prototxt, {"data": values["data"].shape})
    references = {}
    for op in graph.ops:
        bottoms = [values[b.name] for b in op.bottoms]
        p = op.param
        if op.type == "Convolution":
            pads = p.convolution_param.pad
            pending = conv_same(bottoms[0], *blobs[op.name], pads[0] if pads else 0)
        elif op.type == "BN":
            pending = segnet_bn(pending, *blobs[op.name], "INFERENCE")
        elif op.type == "ReLU":
            pending = np.maximum(pending, 0)
        elif op.type == "LRN":
            lrn = p.lrn_param
            references[op.tops[0].name] = oracle.lrn_across_channels(bottoms[0], lrn.local_size, lrn.alpha, lrn.beta, 1)
        elif op.type == "Pooling":
            x = bottoms[0]
            pooled = tuple(-(-n // 2) for n in x.shape[2:])
            top, mask = caffe_max_pool_with_mask(x, (2, 2), (2, 2), (0, 0), pooled)
            references[op.tops[0].name], references[op.tops[1].name] = top, mask
        elif op.type == "Upsample":
            up = p.upsample_param
            height, width = bottoms[0].shape[2:]
            if up.HasField("upsample_h"):
                size = (up.upsample_h, up.upsample_w)
            else:  # UpsampleLayer::Reshape: the input times scale, less pad_out
                size = (height * up.scale - int(up.pad_out_h), width * up.scale - int(up.pad_out_w))
            references[op.tops[0].name] = segnet_unpool(bottoms[0], bottoms[1], size)
        elif op.type == "Softmax":
            references[op.tops[0].name] = oracle.softmax(bottoms[0], 1)
        if op.type in ("Convolution", "BN", "ReLU"):
            references[op.tops[0].name] = pending
    return references


def check_segnet(prototxt, input_shape, data_format, tmp_path):
    shapes = {"data": input_shape}
    layers = synthetic_weights(prototxt, seed=4, input_shapes=shapes)
    weights = tmp_path / "segnet.caffemodel"
    write_caffemodel(weights, layers)
    blobs = {name: arrays for name, _type, arrays in layers}
    graph = load_graph(prototxt, shapes)
    names = list(dict.fromkeys(t.name for op in graph.ops for t in op.tops if t.name != "label"))
    model = caffe2keras.convert(prototxt, weights, input_shapes=shapes, data_format=data_format, outputs=names)
    image = np.random.default_rng(5).uniform(0, 255, input_shape).astype(np.float32)
    values = dict(zip(names, run(save_and_reload(model, tmp_path), [image], data_format)))
    values["data"] = image
    references = segnet_stages(prototxt, blobs, values)
    assert references.keys() == set(names) - {"data"}
    for name, reference in references.items():
        assert_matches(values[name], reference.astype(np.float32), f"SegNet blob {name!r}")


@pytest.mark.slow  # nine 7x7 convolutions of 64 channels, checked in numpy
@pytest.mark.parametrize("data_format", FORMATS)
def test_segnet_basic_as_published(data_format, tmp_path):
    # DenseImageData gives no image size; 72 x 96 keeps upsample4's pad_out_h (23 -> 45 at
    # 360 x 480) consistent: 5 -> 9 rows.
    check_segnet(PUBLISHED / "segnet_basic_inference" / "inference.prototxt", (1, 3, 72, 96), data_format, tmp_path)


@pytest.mark.slow  # VGG16's encoder and decoder at the 360 x 480 its upsample sizes fix
def test_segnet_as_published(tmp_path):
    check_segnet(PUBLISHED / "segnet_inference" / "inference.prototxt", (1, 3, 360, 480), FORMATS[0], tmp_path)


def test_bayesian_segnet_is_refused_with_its_field(tmp_path):
    with pytest.raises(caffe2keras.Caffe2KerasError, match="sample_weights_test"):
        caffe2keras.convert(
            PUBLISHED / "bayesian_segnet_inference" / "inference.prototxt", input_shapes={"data": (1, 3, 360, 480)}
        )


# ---------------------------------------------------------------- CRNN


def test_continuation_indicator_is_the_forks_cont(tmp_path):
    text = net(
        {"data": (3, 2, 4)},
        'layer { name: "indicator" type: "ContinuationIndicator" top: "cont" '
        "continuation_indicator_param { time_step: 3 batch_size: 2 } }\n"
        + layer("LSTM", "recurrent_param { num_output: 5 }", ("data", "cont"), ("out",)),
    )
    cont, _ = convert_and_run(tmp_path, text, [random((3, 2, 4))], FORMATS[0], outputs=["cont", "out"])
    np.testing.assert_array_equal(cont, [[0, 0], [1, 1], [1, 1]])


@pytest.mark.parametrize("params", ["time_step: 3", "batch_size: 2"])
def test_continuation_indicator_needs_both_sizes(params, tmp_path):
    text = net(
        {"data": (3, 2, 4)},
        f'layer {{ name: "indicator" type: "ContinuationIndicator" top: "cont" '
        f"continuation_indicator_param {{ {params} }} }}\n"
        + layer("LSTM", "recurrent_param { num_output: 5 }", ("data", "cont"), ("out",)),
    )
    prototxt, _ = write_net(tmp_path, text)
    with pytest.raises(caffe2keras.ShapeError, match="continuation_indicator_param"):
        caffe2keras.convert(prototxt)


def without_train_phase(text: str) -> str:
    """The prototxt without its TRAIN-phase layers, which OpenCV would read too."""
    kept, depth, block = [], 0, ""
    for line in text.splitlines(keepends=True):
        if depth == 0 and not line.lstrip().startswith("layer"):
            kept.append(line)
            continue
        block += line
        depth += line.count("{") - line.count("}")
        if depth == 0:
            if "phase: TRAIN" not in block:
                kept.append(block)
            block = ""
    return "".join(kept)


@pytest.mark.slow  # the whole CRNN; LSTM and its continuation flags have fast tests in layers/recurrent_test.py
@pytest.mark.parametrize("data_format", FORMATS)
def test_crnn_as_published(data_format, tmp_path):
    prototxt = PUBLISHED / "crnn" / "deploy.prototxt"
    layers = synthetic_weights(prototxt, seed=6)
    weights = tmp_path / "crnn.caffemodel"
    write_caffemodel(weights, layers)
    blobs = {name: arrays for name, _type, arrays in layers}
    image = np.random.default_rng(7).uniform(-1, 1, (1, 3, 32, 128)).astype(np.float32)
    # OpenCV runs the convolutional part; the indicator, LSTMs and classifier are the fork's formulas.
    text = prototxt.read_text()
    head = tmp_path / "head.prototxt"
    head.write_text(without_train_phase(text[: text.index('layer {\n    name: "indicator"')]))
    [features] = oracle.opencv_forward(head, weights, {"data": image}, [("permuted_data", 0)])
    steps = features.shape[0]
    cont = np.ones((steps, 1), np.float32)
    cont[0] = 0
    hidden = caffe_lstm(caffe_lstm(features, cont, blobs["lstm1"])[0], cont, blobs["lstm2"])[0]
    weight, bias = blobs["fc1"]
    logits = np.einsum("tnc,oc->tno", hidden, weight) + bias
    model = caffe2keras.convert(prototxt, weights, data_format=data_format, outputs=["permuted_data", "probs"])
    actual = run(save_and_reload(model, tmp_path), [image], data_format)
    assert_matches(actual[0], features, "CRNN blob 'permuted_data'")
    assert_matches(actual[1], oracle.softmax(logits, 2), "CRNN blob 'probs'")
