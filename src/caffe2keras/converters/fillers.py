"""The Caffe filler a parameter blob declares, as a Keras initializer."""

from __future__ import annotations

import math

from caffe2keras.graph import Shape
from caffe2keras.layers.initializers import FILLER_TYPES, CaffeFiller

VARIANCE_NORMS = {0: "fan_in", 1: "fan_out", 2: "average"}


def caffe_filler(layer_param, field: str, caffe_shape: Shape, default_value: float = 0.0) -> CaffeFiller:
    """The initializer for a blob of Caffe shape ``caffe_shape`` whose filler is ``field``
    (e.g. ``"convolution_param.weight_filler"``); Caffe's default is a constant.

    Fans are Caffe's: ``count / shape[0]`` in, ``count / shape[1]`` out. A fork's filler type
    that caffe2keras does not know falls back to the default constant (fillers only matter
    when a layer is re-initialized, never for converted values).
    """
    message_name, _, filler_name = field.partition(".")
    message = getattr(layer_param, message_name)
    count = math.prod(caffe_shape)
    fan_in = count // caffe_shape[0] if caffe_shape and caffe_shape[0] else 1
    fan_out = count // caffe_shape[1] if len(caffe_shape) > 1 and caffe_shape[1] else count
    if not message.HasField(filler_name) or getattr(message, filler_name).type not in FILLER_TYPES:
        return CaffeFiller("constant", value=default_value, fan_in=fan_in, fan_out=fan_out)
    f = getattr(message, filler_name)
    return CaffeFiller(
        f.type,
        value=f.value,
        min=f.min,
        max=f.max,
        mean=f.mean,
        std=f.std,
        variance_norm=VARIANCE_NORMS[f.variance_norm],
        fan_in=fan_in,
        fan_out=fan_out,
    )
