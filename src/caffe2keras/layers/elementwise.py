"""Element-wise Caffe layers that Keras has no layer for."""

from __future__ import annotations

import math
from typing import ClassVar

from keras import layers, ops, saving

from caffe2keras.layers.common import PACKAGE


class _Elementwise(layers.Layer):
    """Base: a fixed function of one tensor, configured by float constants."""

    constants: tuple[str, ...] = ()

    def __init__(self, **kwargs):
        values = {name: float(kwargs.pop(name)) for name in self.constants if name in kwargs}
        super().__init__(**kwargs)
        for name in self.constants:
            setattr(self, name, values.get(name, getattr(type(self), "defaults", {}).get(name)))
            if getattr(self, name) is None:
                raise ValueError(f"{type(self).__name__} needs the argument {name!r}. Received: {name}=None")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in self.constants})
        return config


def _scale_shift(x, scale: float, shift: float):
    """``shift + scale * x``, skipping the operations that change nothing (Caffe's order)."""
    if scale != 1:
        x = x * scale
    if shift != 0:
        x = x + shift
    return x


@saving.register_keras_serializable(package=PACKAGE)
class Power(_Elementwise):
    """``y = (shift + scale * x) ** power`` (Caffe's Power)."""

    constants = ("power", "scale", "shift")
    defaults: ClassVar[dict[str, float]] = {"power": 1.0, "scale": 1.0, "shift": 0.0}

    def call(self, inputs):
        if self.power * self.scale == 0:  # Caffe's shortcut: a constant
            value = 1.0 if self.power == 0 else self.shift**self.power
            return ops.full_like(inputs, value)
        x = _scale_shift(inputs, self.scale, self.shift)
        if self.power == 1:
            return x
        if self.power == 2:
            return ops.square(x)
        return ops.power(x, self.power)


class _BaseScaleShift(_Elementwise):
    """Base of Caffe's Exp and Log: ``base`` is -1 (for e) or positive, and not 1 where that is
    meaningless (a logarithm's base)."""

    constants = ("base", "scale", "shift")
    defaults: ClassVar[dict[str, float]] = {"base": -1.0, "scale": 1.0, "shift": 0.0}
    base_may_be_one = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not (self.base == -1 or (self.base > 0 and (self.base_may_be_one or self.base != 1))):
            raise ValueError(
                f"{type(self).__name__}'s base must be -1 (for e) or positive"
                f"{'' if self.base_may_be_one else ' and not 1'}. Received: base={self.base}"
            )


@saving.register_keras_serializable(package=PACKAGE)
class Exp(_BaseScaleShift):
    """``y = base ** (shift + scale * x)``; ``base=-1`` means e (Caffe's Exp)."""

    def call(self, inputs):
        log_base = 1.0 if self.base == -1 else math.log(self.base)
        outer = math.exp(self.shift) if self.base == -1 else self.base**self.shift
        y = ops.exp(inputs * (log_base * self.scale))
        return y if outer == 1 else y * outer


@saving.register_keras_serializable(package=PACKAGE)
class Log(_BaseScaleShift):
    """``y = log_base(shift + scale * x)``; ``base=-1`` means e (Caffe's Log)."""

    base_may_be_one = False

    def call(self, inputs):
        y = ops.log(_scale_shift(inputs, self.scale, self.shift))
        return y if self.base == -1 else y * (1.0 / math.log(self.base))


@saving.register_keras_serializable(package=PACKAGE)
class AbsVal(_Elementwise):
    """``y = |x|``."""

    def call(self, inputs):
        return ops.absolute(inputs)


@saving.register_keras_serializable(package=PACKAGE)
class Clip(_Elementwise):
    """``y = max(min, min(x, max))``, in Caffe's order (which gives ``min`` when ``min > max``)."""

    constants = ("min", "max")

    def call(self, inputs):
        return ops.maximum(ops.minimum(inputs, self.max), self.min)


@saving.register_keras_serializable(package=PACKAGE)
class Threshold(_Elementwise):
    """``y = 1 if x > threshold else 0``."""

    constants = ("threshold",)
    defaults: ClassVar[dict[str, float]] = {"threshold": 0.0}

    def call(self, inputs):
        return ops.cast(ops.greater(inputs, self.threshold), inputs.dtype)


@saving.register_keras_serializable(package=PACKAGE)
class Swish(_Elementwise):
    """``y = x * sigmoid(beta * x)``."""

    constants = ("beta",)
    defaults: ClassVar[dict[str, float]] = {"beta": 1.0}

    def call(self, inputs):
        return inputs * ops.sigmoid(inputs * self.beta if self.beta != 1 else inputs)
