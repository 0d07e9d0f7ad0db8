"""save_model writes the archive model.save writes, and it loads with safe_mode=True."""

from __future__ import annotations

import zipfile

import keras
import numpy as np
import pytest

import caffe2keras
from caffe2keras import framework_internals
from caffe2keras.caffe.writer import write_caffemodel

PROTOTXT = """
name: "small"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "drop" type: "Dropout" bottom: "conv" top: "conv" dropout_param { dropout_ratio: 0.5 } }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 5 } }
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    (root / "net.prototxt").write_text(PROTOTXT)
    rng = np.random.default_rng(0)
    write_caffemodel(
        root / "net.caffemodel",
        [
            ("conv", "Convolution", [rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)]),
            ("bn", "BatchNorm", [rng.standard_normal(4), rng.random(4) + 0.5, np.ones(1)]),
            ("fc", "InnerProduct", [rng.standard_normal((5, 256)), rng.standard_normal(5)]),
        ],
    )
    return caffe2keras.convert(root / "net.prototxt", root / "net.caffemodel")


def members(path):
    with zipfile.ZipFile(path) as archive:
        return sorted(info.filename for info in archive.infolist())


def test_saved_model_reloads_with_the_same_weights_and_members(model, tmp_path):
    path = tmp_path / "model.keras"
    caffe2keras.save_model(model, path, progress=True)
    model.save(tmp_path / "reference.keras")
    assert members(path) == members(tmp_path / "reference.keras")
    reloaded = keras.saving.load_model(path, safe_mode=True)
    for saved, original in zip(reloaded.weights, model.weights, strict=True):
        assert saved.path == original.path and np.array_equal(np.asarray(saved), np.asarray(original))
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(reloaded.predict_on_batch(x), model.predict_on_batch(x))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".weights-")] == []


def test_falls_back_to_model_save_without_the_keras_internals(model, tmp_path, monkeypatch):
    monkeypatch.setitem(framework_internals._CHECKS, framework_internals.STREAMING_SAVE, lambda: False)
    path = tmp_path / "model.keras"
    caffe2keras.save_model(model, path)
    assert members(path) == ["config.json", "metadata.json", "model.weights.h5"]


def test_refuses_other_suffixes(model, tmp_path):
    with pytest.raises(ValueError, match="must end in .keras"):
        caffe2keras.save_model(model, tmp_path / "model.h5")


@pytest.mark.parametrize("override", ["__setitem__", "_get_h5_file"])
def test_falls_back_to_model_save_when_a_keras_internal_changed(model, tmp_path, monkeypatch, override):
    """Privates that exist but behave differently (a renamed attribute, a new signature) are no crash."""

    def changed(*args, **kwargs):
        raise AttributeError("'H5IOStore' object has no attribute '_h5_entry_group'")

    monkeypatch.setattr(framework_internals.ViewingH5IOStore, override, changed)
    path = tmp_path / "model.keras"
    caffe2keras.save_model(model, path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    for saved, original in zip(reloaded.weights, model.weights, strict=True):
        assert np.array_equal(np.asarray(saved), np.asarray(original))
