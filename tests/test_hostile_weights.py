"""``weights --into`` with models that do not fit and names that are no models (issue 22): one
clear caffe2keras error, the model unchanged, nothing written."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import caffe2keras
from caffe2keras import ArgumentError, WeightsPairingError
from caffe2keras.cli import main
from tests.nets import layer, net, write_net

FC = layer("InnerProduct", "inner_product_param { num_output: 5 }", name="fc", tops=("fc",))
FC_WEIGHTS = [("fc", "InnerProduct", [np.ones((5, 48), np.float32), np.zeros(5, np.float32)])]


def _misfit(tmp_path):
    """A Caffe fc over 3x4x4 features and a Keras fc of the same name over 2x4x4: the rows cannot be reordered."""
    prototxt, weights = write_net(tmp_path, net({"data": (1, 3, 4, 4)}, FC), FC_WEIGHTS)
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, keras.layers.Dense(5, name="fc")(keras.layers.Flatten()(inputs)))
    return prototxt, weights, model


def test_a_model_that_does_not_fit_is_a_pairing_error_and_stays_unchanged(tmp_path):
    prototxt, weights, model = _misfit(tmp_path)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(WeightsPairingError, match="'fc'"):
        caffe2keras.load_caffe_weights(model, prototxt, weights)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_the_cli_says_so_in_one_error_and_writes_nothing(tmp_path, capsys):
    prototxt, weights, model = _misfit(tmp_path)
    model.save(tmp_path / "arch.keras")
    status = main(
        [
            "weights",
            str(prototxt),
            str(weights),
            "--into",
            str(tmp_path / "arch.keras"),
            "-o",
            str(tmp_path / "out.keras"),
        ]
    )
    err = capsys.readouterr().err
    assert status == 1 and err.startswith("caffe2keras: error:") and "Traceback" not in err, err
    assert not (tmp_path / "out.keras").exists()


@pytest.mark.parametrize("name", ["__class__", "__loader__", "imagenet_utils", "resnet", "VGG16.__call__", ""])
def test_into_takes_only_model_builders(tmp_path, capsys, name):
    prototxt, weights = write_net(tmp_path, net({"data": (1, 3, 4, 4)}, FC), FC_WEIGHTS)
    argv = [
        "weights",
        str(prototxt),
        str(weights),
        "--into",
        f"keras.applications.{name}",
        "-o",
        str(tmp_path / "o.keras"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "keras.applications has no model" in err and "Traceback" not in err


@pytest.mark.parametrize("epsilon", ["foo", None, 1e-5])
def test_a_bad_epsilon_is_an_argument_error(tmp_path, epsilon):
    prototxt, weights, model = _misfit(tmp_path)
    with pytest.raises(ArgumentError, match="epsilon must be one of"):
        caffe2keras.load_caffe_weights(model, prototxt, weights, epsilon=epsilon)


def test_a_model_that_is_no_model_is_an_argument_error(tmp_path):
    prototxt, weights = write_net(tmp_path, net({"data": (1, 3, 4, 4)}, FC), FC_WEIGHTS)
    with pytest.raises(ArgumentError, match="keras_model must be a built keras.Model"):
        caffe2keras.load_caffe_weights("model.keras", prototxt, weights)


def _keras_bomb(tmp_path, inflated: int):
    """A .keras archive whose config.json declares ``inflated`` bytes (the central directory says so)."""
    import struct
    import zipfile

    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.rindex(b"PK\x01\x02") + 24, inflated)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("command", ["weights", "predict", "export"])
def test_keras_files_that_are_bombs_or_fifos_are_refused_before_keras_opens_them(tmp_path, capsys, command):
    import os

    if command == "export":
        pytest.importorskip("tf2onnx")  # without the extra, export says so first
    prototxt, weights = write_net(tmp_path, net({"data": (1, 3, 4, 4)}, FC), FC_WEIGHTS)
    bomb = _keras_bomb(tmp_path, 0xFFFFFFF0)
    fifo = tmp_path / "pipe.keras"
    os.mkfifo(fifo)
    for model, message in [(bomb, "may unpack to at most"), (fifo, "not a regular file")]:
        if command == "weights":
            argv = ["weights", str(prototxt), str(weights), "--into", str(model), "-o", str(tmp_path / "o.keras")]
        elif command == "predict":
            argv = ["predict", str(model), str(prototxt)]
        else:
            argv = ["export", str(model), "-o", str(tmp_path / "o.onnx")]
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("caffe2keras: error:") and message in err, err
    assert not (tmp_path / "o.keras").exists() and not (tmp_path / "o.onnx").exists()
