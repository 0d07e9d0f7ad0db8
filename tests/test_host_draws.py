"""Keras' initializers drawn with NumPy have Keras' distributions, and conversion uses them."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras import initializers

import caffe2keras
from caffe2keras.host_draws import drawn_on_host

SHAPE = (3, 3, 64, 128)  # a convolution kernel: fan_in 576, fan_out 1152
FAN_IN, FAN_OUT = 3 * 3 * 64, 3 * 3 * 128


@pytest.mark.parametrize(
    ("initializer", "mean", "std", "bound"),
    [
        pytest.param(initializers.Constant(0.5), 0.5, 0.0, 0.5, id="Constant"),
        pytest.param(initializers.Zeros(), 0.0, 0.0, 0.0, id="Zeros"),
        pytest.param(initializers.Ones(), 1.0, 0.0, 1.0, id="Ones"),
        pytest.param(initializers.RandomNormal(0.1, 0.02), 0.1, 0.02, None, id="RandomNormal"),
        pytest.param(initializers.RandomUniform(-0.3, 0.5), 0.1, 0.8 / math.sqrt(12), 0.5, id="RandomUniform"),
        pytest.param(initializers.TruncatedNormal(0.0, 0.05), 0.0, 0.05 * 0.8796, 0.1, id="TruncatedNormal"),
        pytest.param(
            initializers.GlorotUniform(),
            0.0,
            math.sqrt(2 / (FAN_IN + FAN_OUT)),
            math.sqrt(6 / (FAN_IN + FAN_OUT)),
            id="GlorotUniform",
        ),
        pytest.param(
            initializers.HeNormal(), 0.0, math.sqrt(2 / FAN_IN), 2 * math.sqrt(2 / FAN_IN) / 0.8796, id="HeNormal"
        ),
        pytest.param(
            initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
            0.0,
            math.sqrt(2 / FAN_OUT),
            None,
            id="VarianceScaling_fan_out",
        ),
        pytest.param("lecun_uniform", 0.0, math.sqrt(1 / FAN_IN), math.sqrt(3 / FAN_IN), id="lecun_uniform"),
    ],
)
def test_each_distribution_is_keras(initializer, mean, std, bound):
    values = drawn_on_host(initializer)(SHAPE, dtype="float32")
    keras_values = keras.ops.convert_to_numpy(initializers.get(initializer)(SHAPE, dtype="float32"))
    assert values.shape == SHAPE and values.dtype == np.float32
    for drawn in (values, keras_values):  # the reference numbers describe Keras' own draws too
        assert drawn.mean() == pytest.approx(mean, abs=max(std, 1e-9) * 0.02)
        assert drawn.std() == pytest.approx(std, rel=0.02, abs=1e-9)
        if bound is not None:
            assert np.abs(drawn).max() <= bound * (1 + 1e-6)


def test_a_seeded_initializer_draws_the_same_values_each_time():
    first = drawn_on_host(initializers.GlorotNormal(seed=7))(SHAPE)
    np.testing.assert_array_equal(first, drawn_on_host(initializers.GlorotNormal(seed=7))(SHAPE))
    assert not np.array_equal(first, drawn_on_host(initializers.GlorotNormal(seed=8))(SHAPE))


# Keras computes fans from given axes only when both are given (Keras 3.15 and later).
AXES_GIVEN = {"input_axes": [0, 1, 2], "output_axes": [3]}


@pytest.mark.parametrize(
    "initializer",
    [initializers.Orthogonal(), initializers.Identity(), None]
    + [initializers.VarianceScaling(**AXES_GIVEN)] * ("input_axes" in initializers.VarianceScaling().get_config()),
)
def test_other_initializers_draw_themselves(initializer):
    assert drawn_on_host(initializer) is None


def test_a_net_converted_without_weights_never_runs_a_keras_random_initializer(tmp_path, monkeypatch):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(
        'input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
        'layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"\n'
        '  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" }\n'
        '    bias_filler { type: "gaussian" std: 0.1 } } }\n'
        'layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"\n'
        '  inner_product_param { num_output: 5 weight_filler { type: "msra" } } }\n'
    )

    def refuse(self, shape, dtype=None):
        raise AssertionError(f"{type(self).__name__} ran on the backend")

    for random_initializer in (initializers.VarianceScaling, initializers.RandomNormal):
        monkeypatch.setattr(random_initializer, "__call__", refuse)
    model = caffe2keras.convert(prototxt)  # no weights: every variable starts from its filler
    kernel = keras.ops.convert_to_numpy(model.get_layer("conv").kernel)
    assert kernel.std() > 0
    # The config keeps Keras' initializer: a re-initialized layer draws as before.
    assert isinstance(model.get_layer("conv").kernel_initializer, initializers.VarianceScaling)
