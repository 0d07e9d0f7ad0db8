"""Keras' initializers drawn with NumPy, for variables that start from their initializer.

On JAX, each of Keras' random initializers compiles an XLA program per variable shape: seconds
for a net of a hundred layers converted without weights (GoogLeNet: about 20 s of a 24 s
conversion). The same distributions drawn on the host take milliseconds. Only the values at
creation differ in source; the layer's config keeps its Keras initializer, so the saved model
re-initializes as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

# Keras' truncated normals keep draws within two standard deviations of the mean; its
# VarianceScaling divides by this (the std of a unit normal truncated so) to keep the variance.
TRUNCATION = 2.0
TRUNCATED_UNIT_STD = 0.87962566103423978


def drawn_on_host(initializer) -> Callable | None:
    """A ``(shape, dtype)`` callable drawing ``initializer``'s distribution with NumPy, or None
    where the initializer is not one of Keras' plain distributions (it then draws itself)."""
    from keras import initializers  # here: the converters that import this module load Keras lazily

    if initializer is None:  # the layer left the choice to add_weight's default
        return None
    initializer = initializers.get(initializer)
    config = initializer.get_config()
    seed = config.get("seed")
    rng = np.random.default_rng(seed if isinstance(seed, int) else None)
    if isinstance(initializer, initializers.Constant):
        return _filled(config["value"])
    if isinstance(initializer, initializers.Zeros):
        return _filled(0.0)
    if isinstance(initializer, initializers.Ones):
        return _filled(1.0)
    if isinstance(initializer, initializers.RandomNormal):
        return _drawn(lambda shape: rng.normal(config["mean"], config["stddev"], shape))
    if isinstance(initializer, initializers.TruncatedNormal):
        return _drawn(lambda shape: config["mean"] + config["stddev"] * _truncated_unit_normal(rng, shape))
    if isinstance(initializer, initializers.RandomUniform):
        return _drawn(lambda shape: rng.uniform(config["minval"], config["maxval"], shape))
    if isinstance(initializer, initializers.VarianceScaling) and not _given_axes(initializer):
        return _drawn(lambda shape: _variance_scaled(rng, shape, initializer))
    return None


def _given_axes(initializer) -> bool:
    """Whether fans come from given axes (Keras 3.15's input_axes and output_axes, both needed;
    the Keras 3.14 that pyproject admits has neither) rather than from the shape."""
    return (
        getattr(initializer, "input_axes", None) is not None and getattr(initializer, "output_axes", None) is not None
    )


def _filled(value) -> Callable:
    return _drawn(lambda shape: np.full(shape, value))


def _drawn(draw: Callable) -> Callable:
    def values(shape, dtype=None):
        return np.asarray(draw(tuple(int(d) for d in shape)), dtype=dtype or "float32")

    return values


def _truncated_unit_normal(rng: np.random.Generator, shape) -> np.ndarray:
    """Unit normal draws, those beyond ``TRUNCATION`` drawn again until none is (about 5% a round)."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > TRUNCATION
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > TRUNCATION
    return values


def _variance_scaled(rng: np.random.Generator, shape, initializer) -> np.ndarray:
    """Keras' VarianceScaling: variance ``scale / n``, ``n`` a fan of the shape as Keras computes it."""
    variance = initializer.scale / max(1.0, fan_for(initializer.mode, *keras_fans(shape)))
    distribution = initializer.distribution
    if distribution == "uniform":
        limit = math.sqrt(3.0 * variance)
        return rng.uniform(-limit, limit, shape)
    if distribution == "truncated_normal":
        return math.sqrt(variance) / TRUNCATED_UNIT_STD * _truncated_unit_normal(rng, shape)
    return rng.normal(0.0, math.sqrt(variance), shape)


def fan_for(mode: str, fan_in: float, fan_out: float) -> float:
    """The fan a VarianceScaling ``mode`` divides by."""
    return {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]


def keras_fans(shape) -> tuple[float, float]:
    """Keras' ``compute_fans``: a kernel's receptive field times its input and output channels."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field
