"""Caffe weights into existing Keras models (load_caffe_weights and `caffe2keras weights`)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe.writer import write_caffemodel
from tests.golden import assert_matches
from tests.shared import FORMATS, SHARED, requires_shared

NET = """
name: "small"
input: "data" input_shape { dim: 1 dim: 3 dim: 6 dim: 5 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" batch_norm_param { eps: 0.00002 } }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "dw" type: "Convolution" bottom: "conv1" top: "dw"
        convolution_param { num_output: 8 group: 4 kernel_size: 3 stride: 2 bias_term: false } }
layer { name: "fc" type: "InnerProduct" bottom: "dw" top: "fc" inner_product_param { num_output: 5 } }
"""


@pytest.fixture
def small_net(tmp_path):
    prototxt = tmp_path / "small.prototxt"
    prototxt.write_text(NET)
    rng = np.random.default_rng(0)

    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    weights = tmp_path / "small.caffemodel"
    write_caffemodel(
        weights,
        [
            ("conv1", "Convolution", [normal(4, 3, 3, 3), normal(4)]),
            # Running sums and their normalizer (the third blob), as Caffe stores them.
            ("bn1", "BatchNorm", [3 * normal(4), 3 * (1 + rng.random(4, np.float32)), np.float32([3.0])]),
            ("scale1", "Scale", [normal(4), normal(4)]),
            ("dw", "Convolution", [normal(8, 1, 3, 3)]),
            ("fc", "InnerProduct", [normal(5, 8 * 2 * 2), normal(5)]),
        ],
    )
    return prototxt, weights


def keras_twin(data_format: str, names=("features", "norm", "depthwise", "logits")) -> keras.Model:
    """The small net as a Keras user would write it, with names of their own."""
    shape = (6, 5, 3) if data_format == "channels_last" else (3, 6, 5)
    x = inputs = keras.Input(shape)
    x = keras.layers.Conv2D(4, 3, padding="same", data_format=data_format, name=names[0])(x)
    x = keras.layers.BatchNormalization(axis=-1 if data_format == "channels_last" else 1, name=names[1])(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(
        3, strides=2, depth_multiplier=2, use_bias=False, data_format=data_format, name=names[2]
    )(x)
    x = keras.layers.Flatten(data_format=data_format)(x)
    return keras.Model(inputs, keras.layers.Dense(5, name=names[3])(x))


@pytest.mark.parametrize("data_format", FORMATS)
def test_small_net_gives_the_converted_models_outputs(small_net, data_format):
    model = keras_twin(data_format)
    report = caffe2keras.load_caffe_weights(model, *small_net)
    assert [(p.caffe_layers, p.keras_layer, p.paired_by) for p in report.pairings] == [
        (("conv1",), "features", "order"),
        (("bn1", "scale1"), "norm", "order"),
        (("dw",), "depthwise", "order"),
        (("fc",), "logits", "order"),
    ]
    assert model.get_layer("norm").epsilon == pytest.approx(2e-5)
    # The oracle: the converted model, which the golden tests hold to real Caffe's outputs.
    converted = caffe2keras.convert(*small_net, data_format=data_format)
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 5)).astype(np.float32)
    if data_format == "channels_last":
        x = x.transpose(0, 2, 3, 1)
    expected = converted.predict(x, verbose=0)
    actual = model.predict(x, verbose=0)
    assert_matches(np.asarray(actual), np.asarray(expected), "transplanted against converted")


def test_pairs_by_name_and_mapping(small_net):
    model = keras_twin("channels_last", names=("conv1", "bn1", "depthwise", "dense"))
    report = caffe2keras.load_caffe_weights(model, *small_net, mapping={"fc": "dense"})
    assert {p.keras_layer: p.paired_by for p in report.pairings} == {
        "conv1": "name",
        "bn1": "name",
        "depthwise": "order",
        "dense": "mapping",
    }


def test_epsilon_folded_into_the_variance_keeps_the_layers_epsilon(small_net):
    folded, exact = keras_twin("channels_last"), keras_twin("channels_last")
    caffe2keras.load_caffe_weights(folded, *small_net, epsilon="variance")
    caffe2keras.load_caffe_weights(exact, *small_net)
    assert folded.get_layer("norm").epsilon == pytest.approx(1e-3)  # Keras default; Caffe has 2e-5
    x = np.random.default_rng(2).standard_normal((1, 6, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(folded.predict(x, verbose=0), exact.predict(x, verbose=0), atol=1e-5)


def test_errors_list_every_unpaired_layer_and_mismatch_and_change_nothing(small_net):
    x = inputs = keras.Input((6, 5, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(x)
    x = keras.layers.Conv2D(4, 1, name="extra")(x)  # nothing in Caffe
    x = keras.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, use_bias=False, name="dw")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(7, name="fc")(x))  # Caffe's fc has 5 outputs
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(caffe2keras.WeightsPairingError) as caught:
        caffe2keras.load_caffe_weights(model, *small_net)
    error = caught.value
    assert error.unpaired_caffe == ["'bn1 + scale1' (BatchNorm + Scale, blobs (4,), (4,), (1,), (4,), (4,))"]
    assert error.unpaired_keras == ["'extra' (Conv2D, weights (1, 1, 4, 4), (4,))"]
    assert len(error.mismatches) == 1 and "'fc' (InnerProduct) -> 'fc' (Dense), paired by name" in error.mismatches[0]
    assert "(32, 5)" in error.mismatches[0] and "(32, 7)" in error.mismatches[0]
    message = str(error)
    assert "3 problem(s)" in message and "no weight was changed" in message and message.endswith("mismatches=1")
    assert all(np.array_equal(w.numpy(), b) for w, b in zip(model.weights, before))


def test_nets_that_hardly_pair_are_summarized(small_net):
    unrelated = keras.Sequential([keras.Input((7,)), *(keras.layers.Dense(7 + i, name=f"d{i}") for i in range(8))])
    with pytest.raises(caffe2keras.WeightsPairingError) as caught:
        caffe2keras.load_caffe_weights(unrelated, *small_net)
    error = caught.value
    assert len(error.unpaired_caffe) + len(error.unpaired_keras) + len(error.mismatches) == 12
    lines = str(error).splitlines()
    assert lines[0].endswith("4 weighted Caffe layers, 0 paired; the first 10 of 12 problem(s):")
    assert len(lines) == 1 + 10 + 1
    assert lines[-1].startswith("Pair layers yourself with mapping={caffe_layer: keras_layer}")


def test_mapping_problems_are_listed(small_net):
    model = keras_twin("channels_last")
    with pytest.raises(caffe2keras.WeightsPairingError, match="no Caffe layer with weights named 'nope'"):
        caffe2keras.load_caffe_weights(model, *small_net, mapping={"nope": "features", "fc": None})


def test_a_caffe_layer_mapped_to_none_is_left_out(small_net):
    x = inputs = keras.Input((6, 5, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, keras.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, use_bias=False)(x))
    report = caffe2keras.load_caffe_weights(model, *small_net, mapping={"fc": None})
    assert report.left_out == ["fc"] and len(report.pairings) == 3


def _zoo(name):
    return SHARED / "caffe" / "models" / name / "deploy.prototxt", SHARED / "golden" / "zoo" / name


@pytest.mark.slow
@requires_shared
def test_keras_vgg16_gives_the_converted_vgg16s_outputs(zoo_weights):
    prototxt, case = _zoo("vgg16")
    weights = zoo_weights(case)
    model = keras.applications.VGG16(weights=None)
    caffe2keras.load_caffe_weights(model, prototxt, weights)
    x = np.load(case / "in_data.npy").transpose(0, 2, 3, 1)
    converted = caffe2keras.convert(prototxt, weights, outputs=["fc8", "prob"])
    logits, prob = converted.predict(x, verbose=0)
    features = keras.Model(model.inputs, [model.get_layer("fc2").output, model.output]).predict(x, verbose=0)
    dense = model.get_layer("predictions")
    keras_logits = features[0] @ dense.kernel.numpy() + dense.bias.numpy()  # the Dense before its softmax
    for actual, expected in ((keras_logits, logits), (features[1], prob)):
        assert_matches(np.asarray(actual), np.asarray(expected), "transplanted against converted")


def _resnet_keras_name(caffe: str) -> str:
    """ResNet-50's Caffe layer names as keras.applications.ResNet50 names the same layers."""
    if caffe in ("conv1", "bn_conv1", "scale_conv1"):
        return "conv1_conv" if caffe == "conv1" else "conv1_bn"
    if caffe == "fc1000":
        return "predictions"
    kind, rest = (
        ("conv", caffe[3:])
        if caffe.startswith("res")
        else ("bn", caffe.split("bn" if caffe.startswith("bn") else "scale", 1)[1])
    )
    stage, block, branch = rest[0], rest[1], rest.split("_branch")[1]
    index = {"1": 0, "2a": 1, "2b": 2, "2c": 3}[branch]
    return f"conv{stage}_block{ord(block) - ord('a') + 1}_{index}_{kind}"


@pytest.mark.slow
@requires_shared
def test_keras_resnet50_holds_every_caffe_value(zoo_weights):
    from caffe2keras.caffe import read_weights

    prototxt, case = _zoo("resnet50")
    weights = zoo_weights(case)
    model = keras.applications.ResNet50(weights=None)
    caffe2keras.load_caffe_weights(model, prototxt, weights)
    checked = set()
    for name, layer in read_weights(weights).items():
        blobs = [b.data for b in layer.blobs]
        target = model.get_layer(_resnet_keras_name(name))
        checked.add(target.name)
        if layer.type == "Convolution":
            assert np.array_equal(target.kernel.numpy(), blobs[0].transpose(2, 3, 1, 0)), name
            # conv1 has a bias; Caffe's other convolutions have none, which is a bias of 0.
            bias = blobs[1] if len(blobs) > 1 else np.zeros(blobs[0].shape[0], np.float32)
            assert np.array_equal(target.bias.numpy(), bias), name
        elif layer.type == "InnerProduct":
            assert np.array_equal(target.kernel.numpy(), blobs[0].T) and np.array_equal(target.bias.numpy(), blobs[1])
        elif layer.type == "BatchNorm":
            inverse = np.float32(1) / blobs[2][0]
            assert np.array_equal(target.moving_mean.numpy(), blobs[0] * inverse), name
            assert np.array_equal(target.moving_variance.numpy(), blobs[1] * inverse), name
            assert target.epsilon == pytest.approx(1e-5)
        else:
            assert layer.type == "Scale"
            assert np.array_equal(target.gamma.numpy(), blobs[0]) and np.array_equal(target.beta.numpy(), blobs[1])
    assert checked == {layer.name for layer in model.layers if layer.weights}


def test_cli_writes_a_weights_file_for_a_keras_architecture(small_net, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "240")  # one table row per line, whatever terminal runs the tests
    from caffe2keras.cli import main

    architecture, output = tmp_path / "twin.keras", tmp_path / "twin.weights.h5"
    keras_twin("channels_last").save(architecture)
    assert main(["weights", *map(str, small_net), "--into", str(architecture), "-o", str(output)]) == 0
    out = capsys.readouterr().out
    assert "bn1 + scale1" in out and f"wrote {output}" in out
    written, expected = keras_twin("channels_last"), keras_twin("channels_last")
    written.load_weights(output)
    caffe2keras.load_caffe_weights(expected, *small_net, epsilon="variance")
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(written.weights, expected.weights))


def test_cli_writes_nothing_when_layers_do_not_pair(small_net, tmp_path, capsys):
    from caffe2keras.cli import main

    output, architecture = tmp_path / "other.weights.h5", tmp_path / "other.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).save(architecture)
    status = main(["weights", *map(str, small_net), "--into", str(architecture), "-o", str(output)])
    assert status == 1 and not output.exists() and not list(tmp_path.glob("*.partial*"))
    err = capsys.readouterr().err
    assert "no weight was changed" in err
    assert "Pair layers yourself with --map CAFFE=KERAS (CAFFE= leaves a Caffe layer out)." in err
    assert "mapping=" not in err
    assert main(["weights", *map(str, small_net), "--into", "keras.applications.Nope", "-o", str(output)]) == 2
    assert main(["weights", *map(str, small_net), "--into", "model.h5", "-o", str(output)]) == 2


def test_sequential_and_nested_models_pair_as_functional_ones(small_net):
    sequential = keras.Sequential(
        [
            keras.Input((6, 5, 3)),
            keras.layers.Conv2D(4, 3, padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, use_bias=False),
            keras.layers.Flatten(),
            keras.layers.Dense(5),
        ]
    )
    x = keras.Input((6, 5, 3))
    nested = keras.Model(x, keras.layers.Activation("softmax")(keras_twin("channels_last")(x)))
    for model in (sequential, nested):
        report = caffe2keras.load_caffe_weights(model, *small_net)
        assert [p.caffe_type for p in report.pairings] == [
            "Convolution",
            "BatchNorm + Scale",
            "Convolution",
            "InnerProduct",
        ]
        assert report.pairings[-1].notes == ("rows C,H,W -> H,W,C",)


@pytest.mark.slow  # builds keras.applications' MobileNet: seconds of random draws on JAX
def test_into_args_reach_the_applications_constructor_as_literals():
    from caffe2keras.cli.common import UsageError
    from caffe2keras.cli.weights import load_architecture, parse_constructor_args

    kwargs = parse_constructor_args(["include_top=False", "input_shape=(32, 32, 3)", "alpha=0.25", "pooling='avg'"])
    assert kwargs == {"include_top": False, "input_shape": (32, 32, 3), "alpha": 0.25, "pooling": "avg"}
    model = load_architecture("keras.applications.MobileNet", kwargs)
    assert tuple(model.input.shape) == (None, 32, 32, 3) and tuple(model.output.shape) == (None, 256)
    for bad, message in [
        ("include_top", "NAME=VALUE"),
        ("x=__import__('os')", "Python literal"),
        ("weights='imagenet'", "weights=None"),
    ]:
        with pytest.raises(UsageError, match=message):
            parse_constructor_args([bad])
    with pytest.raises(UsageError, match="refuses its arguments"):
        load_architecture("keras.applications.MobileNet", {"no_such_argument": 1})
