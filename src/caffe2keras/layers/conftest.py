"""Fixtures shared by the custom layers' tests beside them."""

from __future__ import annotations

import caffe2keras

caffe2keras.use_default_backend()  # before Keras is imported

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import caffe2keras.layers  # noqa: E402  (registered for loading)
from caffe2keras.tolerance import compare  # noqa: E402


@pytest.fixture
def config_round_trip():
    """Check ``from_config(get_config())`` and Keras' safe-mode deserialization give the same layer."""

    def check(layer):
        config = layer.get_config()
        assert type(layer).from_config(config).get_config() == config
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer), safe_mode=True)
        assert type(restored) is type(layer)
        assert restored.get_config() == config

    return check


@pytest.fixture
def reloaded_outputs(tmp_path):
    """Run ``layer`` in a model, save it as .keras, reload with safe_mode=True, and return the
    reloaded model's outputs (checked equal to the original's)."""

    def run(layer, *inputs: np.ndarray):
        tensors = [keras.Input(shape=x.shape[1:]) for x in inputs]
        model = keras.Model(tensors, layer(tensors[0] if len(tensors) == 1 else tensors))
        path = tmp_path / "layer.keras"
        model.save(path)
        reloaded = keras.saving.load_model(path, safe_mode=True)
        before, after = model.predict_on_batch(list(inputs)), reloaded.predict_on_batch(list(inputs))
        before, after = (list(y) if isinstance(y, (list, tuple)) else [y] for y in (before, after))
        for a, b in zip(before, after):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        return [np.asarray(y) for y in after] if len(after) > 1 else np.asarray(after[0])

    return run


@pytest.fixture
def reloaded_nchw_outputs(reloaded_outputs):
    """``reloaded_outputs`` for NCHW arrays and results, whatever the layer's ``data_format``
    (rank-4 arrays are transposed, others pass as they are)."""

    def run(layer, *inputs: np.ndarray):
        last = layer.data_format == "channels_last"

        def move(a, axes):
            return a.transpose(axes) if last and a.ndim == 4 else a

        outputs = reloaded_outputs(layer, *(move(a, (0, 2, 3, 1)) for a in inputs))
        outputs = outputs if isinstance(outputs, list) else [outputs]
        return [move(y, (0, 3, 1, 2)) for y in outputs]

    return run


@pytest.fixture
def assert_close():
    """The project's tolerance (:mod:`caffe2keras.tolerance`)."""

    def check(actual, expected):
        assert np.shape(actual) == np.shape(expected), (np.shape(actual), np.shape(expected))
        comparison = compare(actual, expected)
        assert comparison.within_tolerance, comparison

    return check


@pytest.fixture
def free_size_model(tmp_path):
    """A model of ``layer`` on inputs of the given shapes (no batch axis; None for a free size),
    saved as .keras and reloaded with safe_mode=True."""

    def build(layer, *shapes):
        tensors = [keras.Input(shape=shape) for shape in shapes]
        model = keras.Model(tensors, layer(tensors[0] if len(tensors) == 1 else tensors))
        path = tmp_path / "free_size.keras"
        model.save(path)
        return keras.saving.load_model(path, safe_mode=True)

    return build
