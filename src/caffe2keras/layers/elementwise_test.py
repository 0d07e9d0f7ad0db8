import math

import numpy as np
import pytest

from caffe2keras.layers.elementwise import AbsVal, Clip, Exp, Log, Power, Swish, Threshold

X = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32) * 3
POSITIVE = np.abs(X) + 0.1


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# (layer, input, Caffe's formula in float64)
CASES = {
    "power": (Power(power=3.0, scale=1.5, shift=0.5), X, lambda x: (0.5 + 1.5 * x) ** 3),
    "power_square": (Power(power=2.0, scale=-0.5), X, lambda x: (-0.5 * x) ** 2),
    "power_sqrt": (Power(power=0.5), POSITIVE, np.sqrt),
    "power_inverse": (Power(power=-1.0, shift=1.0), POSITIVE, lambda x: 1 / (1 + x)),
    "power_linear": (Power(scale=2.0, shift=-1.0), X, lambda x: 2 * x - 1),
    "power_zero_power": (Power(power=0.0, scale=2.0), X, np.ones_like),  # Caffe's constant shortcut
    "power_zero_scale": (Power(power=2.0, scale=0.0, shift=3.0), X, lambda x: np.full_like(x, 9.0)),
    "power_defaults": (Power(), X, lambda x: x),
    "exp": (Exp(), X, np.exp),
    "exp_base2": (Exp(base=2.0, scale=0.5, shift=1.0), X, lambda x: 2.0 ** (1 + 0.5 * x)),
    "exp_base_e_shift": (Exp(shift=-1.0, scale=-0.3), X, lambda x: np.exp(-1 - 0.3 * x)),
    "log": (Log(), POSITIVE, np.log),
    "log_base10": (Log(base=10.0, scale=2.0, shift=0.5), POSITIVE, lambda x: np.log10(0.5 + 2 * x)),
    "absval": (AbsVal(), X, np.abs),
    "clip": (Clip(min=-0.5, max=1.0), X, lambda x: np.clip(x, -0.5, 1.0)),
    "clip_crossed": (Clip(min=1.0, max=-1.0), X, lambda x: np.full_like(x, 1.0)),  # max(min, min(x, max))
    "threshold": (Threshold(threshold=0.25), X, lambda x: (x > 0.25).astype(np.float64)),
    "threshold_default": (Threshold(), X, lambda x: (x > 0).astype(np.float64)),
    "swish": (Swish(), X, lambda x: x * sigmoid(x)),
    "swish_beta": (Swish(beta=2.5), X, lambda x: x * sigmoid(2.5 * x)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_caffe(name, reloaded_outputs, assert_close):
    layer, x, formula = CASES[name]
    assert_close(reloaded_outputs(layer, x), formula(x.astype(np.float64)))
    assert layer.compute_output_shape((None, 3, 4)) == (None, 3, 4)


@pytest.mark.parametrize("name", list(CASES))
def test_config_round_trip(name, config_round_trip):
    config_round_trip(CASES[name][0])


def test_constants_are_floats_in_the_config():
    config = Power(power=2, scale=3, shift=1).get_config()
    assert (config["power"], config["scale"], config["shift"]) == (2.0, 3.0, 1.0)
    assert all(isinstance(config[k], float) for k in ("power", "scale", "shift"))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Clip(max=1.0), "Clip needs the argument 'min'"),
        (lambda: Clip(min=0.0), "Clip needs the argument 'max'"),
        (lambda: Exp(base=0.0), "base must be -1"),
        (lambda: Exp(base=-2.0), "base must be -1"),
        (lambda: Log(base=1.0), "and not 1"),
        (lambda: Log(base=-0.5), "base must be -1"),
    ],
)
def test_rejects_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message) as raised:
        make()
    assert "Received:" in str(raised.value)


def test_exp_with_base_one_is_one():
    assert math.isclose(float(np.asarray(Exp(base=1.0)(np.float32([[3.0]])))[0, 0]), 1.0)
