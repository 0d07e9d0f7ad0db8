"""Parameters shared by name: one Keras layer per tied Caffe layer group, exact outputs, Caffe's checks."""

from __future__ import annotations

import re
import warnings

import keras
import numpy as np
import pytest

import caffe2keras
from caffe2keras.synthetic import synthetic_weights
from tests.golden import assert_matches, run, save_and_reload
from tests.nets import opencv_forward, write_net
from tests.shared import FORMATS

RNG = np.random.default_rng(11)


def branch(suffix: str, bias_names=True) -> str:
    """One tower of a siamese net (as Caffe's mnist_siamese_train_test), its params named without the suffix."""

    def params(name):
        bias = f'param {{ name: "{name}_b" lr_mult: 2 }}' if bias_names else "param { lr_mult: 2 }"
        return f'param {{ name: "{name}_w" lr_mult: 1 }} {bias}'

    return f"""
layer {{ name: "conv1{suffix}" type: "Convolution" bottom: "data{suffix}" top: "conv1{suffix}" {params("conv1")}
        convolution_param {{ num_output: 4 kernel_size: 3 stride: 1 }} }}
layer {{ name: "pool1{suffix}" type: "Pooling" bottom: "conv1{suffix}" top: "pool1{suffix}"
        pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}
layer {{ name: "ip1{suffix}" type: "InnerProduct" bottom: "pool1{suffix}" top: "ip1{suffix}" {params("ip1")}
        inner_product_param {{ num_output: 5 }} }}
layer {{ name: "relu1{suffix}" type: "ReLU" bottom: "ip1{suffix}" top: "ip1{suffix}" }}
layer {{ name: "feat{suffix}" type: "InnerProduct" bottom: "ip1{suffix}" top: "feat{suffix}" {params("feat")}
        inner_product_param {{ num_output: 2 }} }}
"""


def siamese(partial: bool = False) -> str:
    return f"""name: "siamese"
layer {{ name: "pair" type: "Input" top: "pair_data" input_param {{ shape {{ dim: 3 dim: 2 dim: 10 dim: 10 }} }} }}
layer {{ name: "slice_pair" type: "Slice" bottom: "pair_data" top: "data" top: "data_p"
        slice_param {{ slice_dim: 1 slice_point: 1 }} }}
{branch("")}{branch("_p", bias_names=not partial)}"""


def weights_as_caffe_saves_them(text: str, tmp_path):
    """Every layer holds its blobs, shared ones equal (what Caffe's snapshot writes)."""
    prototxt, _ = write_net(tmp_path, text)
    return synthetic_weights(prototxt, seed=3)


@pytest.mark.parametrize("data_format", FORMATS)
def test_tied_layers_reuse_one_keras_layer_and_match_opencv(data_format, tmp_path):
    text = siamese()
    layers = weights_as_caffe_saves_them(text, tmp_path)
    prototxt, weights = write_net(tmp_path, text, layers)
    x = RNG.standard_normal((3, 2, 10, 10)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", caffe2keras.ConversionWarning)
        model = caffe2keras.convert(prototxt, weights, outputs=["feat", "feat_p"], data_format=data_format)
    # One set of variables: conv1, ip1 and feat, each kernel and bias.
    assert len(model.trainable_weights) == 6
    assert len(model.get_layer("conv1")._inbound_nodes) == 2
    assert "conv1_p" not in [layer.name for layer in model.layers]
    model = save_and_reload(model, tmp_path)
    assert len(model.trainable_weights) == 6
    references = opencv_forward(tmp_path, text, {"pair_data": x}, ["feat", "feat_p"], layers)
    for blob, actual, reference in zip(["feat", "feat_p"], run(model, [x], data_format), references):
        assert_matches(actual, reference, blob)


def test_tied_layers_stay_tied_in_training(tmp_path):
    # A filler on one tower only does not untie it: Caffe fills a shared parameter from its owner.
    text = siamese().replace(
        'num_output: 4 kernel_size: 3 stride: 1 } }\nlayer { name: "pool1_p"',
        "num_output: 4 kernel_size: 3 stride: 1 weight_filler { type: 'xavier' } } }\nlayer { name: \"pool1_p\"",
    )
    assert "xavier" in text
    prototxt, weights = write_net(tmp_path, text, weights_as_caffe_saves_them(text, tmp_path))
    model = caffe2keras.convert(prototxt, weights, outputs=["feat", "feat_p"])
    assert len(model.trainable_weights) == 6
    before = model.get_layer("conv1").kernel.numpy().copy()
    pair = RNG.standard_normal((4, 10, 10, 2)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(pair, [np.ones((4, 2)), np.zeros((4, 2))], epochs=1, verbose=0)
    assert not np.allclose(model.get_layer("conv1").kernel.numpy(), before)
    same = np.repeat(pair[..., :1], 2, axis=-1)  # the same image in both towers
    feat, feat_p = model.predict(same, verbose=0)
    np.testing.assert_array_equal(feat, feat_p)


def test_partly_shared_layers_are_converted_apart_with_a_warning(tmp_path):
    text = siamese(partial=True)
    layers = weights_as_caffe_saves_them(text, tmp_path)
    prototxt, weights = write_net(tmp_path, text, layers)
    with pytest.warns(caffe2keras.ConversionWarning) as warned:
        model = caffe2keras.convert(prototxt, weights, outputs=["feat", "feat_p"], data_format="channels_first")
    messages = [str(w.message) for w in warned]
    assert any(re.search("Layer 'conv1_p' .* shares 'conv1_w' with 'conv1'", m) for m in messages)
    assert {re.match(r"Layer '(\w+)'", m).group(1) for m in messages} == {"conv1_p", "ip1_p", "feat_p"}
    x = RNG.standard_normal((3, 2, 10, 10)).astype(np.float32)
    references = opencv_forward(tmp_path, text, {"pair_data": x}, ["feat", "feat_p"], layers)
    for blob, actual, reference in zip(["feat", "feat_p"], run(model, [x], "channels_first"), references):
        assert_matches(actual, reference, blob)


def test_shared_parameters_with_different_values_are_refused(tmp_path):
    text = siamese()
    layers = weights_as_caffe_saves_them(text, tmp_path)
    name, kind, blobs = next(entry for entry in layers if entry[0] == "ip1_p")
    layers[layers.index((name, kind, blobs))] = (name, kind, [blobs[0] + 1, blobs[1]])
    prototxt, weights = write_net(tmp_path, text, layers)
    with pytest.raises(caffe2keras.WeightsError, match="Layer 'ip1_p' .*shares parameter 'ip1_w' with layer 'ip1'"):
        caffe2keras.convert(prototxt, weights)


def test_shared_parameters_of_different_shapes_are_refused_as_in_caffe(tmp_path):
    text = siamese().replace("inner_product_param { num_output: 2 } }\n", "inner_product_param { num_output: 3 } }\n")
    text = text.replace(
        'name: "feat_p" type: "InnerProduct" bottom: "ip1_p" top: "feat_p" param { name: "feat_w"',
        'name: "feat_p" type: "InnerProduct" bottom: "ip1_p" top: "feat_p" param { name: "ip1_w"',
    )
    prototxt, _ = write_net(tmp_path, text)
    with pytest.raises(caffe2keras.ShapeError, match="cannot share parameter 'ip1_w' of layer 'ip1'"):
        caffe2keras.convert(prototxt)


def test_cli_prints_the_warning_as_one_line(tmp_path, capsys):
    from caffe2keras.cli import main

    prototxt, _ = write_net(tmp_path, siamese(partial=True))
    assert main(["convert", str(prototxt), "-o", str(tmp_path / "siamese.keras")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("caffe2keras: warning: Layer 'conv1_p' (Convolution) shares 'conv1_w' with 'conv1'")
    assert len(err.splitlines()) == 3
