"""Caffe's fillers as a Keras initializer, for the fillers Keras has no initializer for.

A converted layer keeps the initialization its Caffe net declared (``weight_filler``,
``bias_filler``; Caffe's default is the constant 0), so re-initializing it, e.g. to fine-tune
from scratch, behaves as in Caffe. Conversion uses Keras' own initializers wherever they
express the filler (constant, uniform, gaussian, xavier, msra), and this one for
``bilinear``, ``positive_unitball`` and a sparse ``gaussian``; it still draws every type, so
models saved with it load. Values are drawn with NumPy on the host.
"""

from __future__ import annotations

import math

import numpy as np
from keras import initializers, saving

from caffe2keras.layers.common import PACKAGE

FILLER_TYPES = ("constant", "uniform", "gaussian", "xavier", "msra", "bilinear", "positive_unitball")
VARIANCE_NORMS = ("fan_in", "fan_out", "average")


@saving.register_keras_serializable(package=PACKAGE)
class CaffeFiller(initializers.Initializer):
    """Initial values as Caffe's filler of the same ``type`` draws them.

    ``fan_in``/``fan_out`` are Caffe's (computed from the Caffe blob's shape, which the
    Keras kernel's layout does not show). ``bilinear`` fills the two leading (spatial) axes
    with Caffe's upsampling kernel; ``positive_unitball`` makes every slice along the last
    (output) axis sum to 1. A ``gaussian`` with ``sparse`` >= 0 keeps each value with
    probability ``sparse / num_outputs``, Caffe's blob axis 0 (``count / fan_in``).
    """

    def __init__(
        self,
        type="constant",
        value=0.0,
        min=0.0,
        max=1.0,
        mean=0.0,
        std=1.0,
        sparse=-1,
        variance_norm="fan_in",
        fan_in=1,
        fan_out=1,
        seed=None,
    ):
        if type not in FILLER_TYPES:
            raise ValueError(f"type must be one of {FILLER_TYPES}. Received: type={type!r}")
        if variance_norm not in VARIANCE_NORMS:
            raise ValueError(
                f"variance_norm must be one of {VARIANCE_NORMS}. Received: variance_norm={variance_norm!r}"
            )
        self.type = type
        self.value, self.min, self.max = float(value), float(min), float(max)
        self.mean, self.std, self.sparse = float(mean), float(std), int(sparse)
        self.variance_norm = variance_norm
        self.fan_in, self.fan_out = int(fan_in), int(fan_out)
        self.seed = seed

    def _n(self) -> float:
        return {"fan_in": self.fan_in, "fan_out": self.fan_out, "average": (self.fan_in + self.fan_out) / 2}[
            self.variance_norm
        ]

    def __call__(self, shape, dtype=None):
        shape = tuple(int(d) for d in shape)
        rng = np.random.default_rng(self.seed)
        if self.type == "constant":
            values = np.full(shape, self.value)
        elif self.type == "uniform":
            values = rng.uniform(self.min, self.max, shape)
        elif self.type == "gaussian":
            values = rng.normal(self.mean, self.std, shape)
            if self.sparse >= 0:
                num_outputs = math.prod(shape) / self.fan_in
                values = values * (rng.random(shape) < self.sparse / num_outputs)
        elif self.type == "xavier":
            scale = math.sqrt(3 / self._n())
            values = rng.uniform(-scale, scale, shape)
        elif self.type == "msra":
            values = rng.normal(0.0, math.sqrt(2 / self._n()), shape)
        elif self.type == "bilinear":
            values = np.broadcast_to(
                _bilinear_kernel(shape[0], shape[1]).reshape(shape[:2] + (1,) * (len(shape) - 2)), shape
            )
        else:  # positive_unitball
            values = rng.uniform(0.0, 1.0, shape)
            values = values / values.sum(axis=tuple(range(len(shape) - 1)), keepdims=True)
        return np.asarray(values, dtype=dtype or "float32")

    def get_config(self):
        return {
            "type": self.type,
            "value": self.value,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "sparse": self.sparse,
            "variance_norm": self.variance_norm,
            "fan_in": self.fan_in,
            "fan_out": self.fan_out,
            "seed": self.seed,
        }


def _bilinear_kernel(height: int, width: int) -> np.ndarray:
    """Caffe's BilinearFiller for one (height, width) plane."""
    f = math.ceil(width / 2)
    c = (2 * f - 1 - f % 2) / (2 * f)
    y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return (1 - np.abs(x / f - c)) * (1 - np.abs(y / f - c))
