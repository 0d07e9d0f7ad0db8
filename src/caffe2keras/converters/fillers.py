"""The Caffe filler a parameter blob declares, as a Keras initializer.

Keras' own initializers stand for every filler they can express, so that a model made of
standard Keras layers loads with Keras alone; :class:`CaffeFiller` is left for the fillers
Keras lacks (``bilinear``, ``positive_unitball``, a sparse ``gaussian``).
"""

from __future__ import annotations

import math

import numpy as np

from caffe2keras.caffe.schema import enum_name
from caffe2keras.converters.keras_layers import caffe_initializers, initializers
from caffe2keras.graph import Shape
from caffe2keras.host_draws import drawn_on_host, fan_for, keras_fans

VARIANCE_NORMS = {"FAN_IN": "fan_in", "FAN_OUT": "fan_out", "AVERAGE": "average"}  # FillerParameter.VarianceNorm
KERAS_MODES = {"fan_in": "fan_in", "fan_out": "fan_out", "average": "fan_avg"}
# Caffe's variance is gain / n: xavier draws U(-sqrt(3/n), sqrt(3/n)), msra N(0, 2/n).
VARIANCE_FILLERS = {"xavier": (1.0, "uniform"), "msra": (2.0, "untruncated_normal")}


def caffe_filler(
    layer_param, field: str, caffe_shape: Shape, default_value: float = 0.0, *, keras_shape: Shape | None = None
) -> initializers.Initializer:
    """The initializer for a blob of Caffe shape ``caffe_shape`` whose filler is ``field``
    (e.g. ``"convolution_param.weight_filler"``); Caffe's default is a constant.

    ``keras_shape`` is the shape of the Keras variable; by default Caffe's kernel layout
    ``(out, in, spatial...)`` as Keras' ``(spatial..., in, out)``. Keras computes fans from
    it, Caffe from its own shape (``count / shape[0]`` in, ``count / shape[1]`` out): where
    they differ, ``VarianceScaling``'s scale makes up for it, so the draws have Caffe's
    variance. A fork's filler type that caffe2keras does not know falls back to the default
    constant (fillers only matter when a layer is re-initialized, never for converted values).
    """
    message_name, _, filler_name = field.partition(".")
    message = getattr(layer_param, message_name)
    if not message.HasField(filler_name) or getattr(message, filler_name).type not in caffe_initializers.FILLER_TYPES:
        return initializers.Constant(default_value)
    f = getattr(message, filler_name)
    fan_in, fan_out = _caffe_fans(caffe_shape)
    if f.type == "constant":
        return initializers.Constant(f.value)
    if f.type == "uniform":
        return initializers.RandomUniform(f.min, f.max)
    if f.type == "gaussian" and f.sparse < 0:
        return initializers.RandomNormal(f.mean, f.std)
    if f.type in VARIANCE_FILLERS:
        gain, distribution = VARIANCE_FILLERS[f.type]
        norm = VARIANCE_NORMS[enum_name(f, "variance_norm")]
        fans = keras_fans(_kernel_layout(caffe_shape) if keras_shape is None else keras_shape)
        return initializers.VarianceScaling(
            scale=gain * fan_for(KERAS_MODES[norm], *fans) / fan_for(KERAS_MODES[norm], fan_in, fan_out),
            mode=KERAS_MODES[norm],
            distribution=distribution,
        )
    return caffe_initializers.CaffeFiller(
        f.type,
        value=f.value,
        min=f.min,
        max=f.max,
        mean=f.mean,
        std=f.std,
        sparse=f.sparse,
        variance_norm=VARIANCE_NORMS[enum_name(f, "variance_norm")],
        fan_in=fan_in,
        fan_out=fan_out,
    )


def _caffe_fans(shape: Shape) -> tuple[int, int]:
    count = math.prod(shape)
    fan_in = count // shape[0] if shape and shape[0] else 1
    fan_out = count // shape[1] if len(shape) > 1 and shape[1] else count
    return fan_in, fan_out


def _kernel_layout(caffe_shape: Shape) -> Shape:
    """Caffe's ``(out, in, spatial...)`` as a Keras kernel's ``(spatial..., in, out)``."""
    if len(caffe_shape) < 2:
        return tuple(caffe_shape)
    return (*caffe_shape[2:], caffe_shape[1], caffe_shape[0])


# The filler field of each weight blob, by Caffe type, with the value Caffe's layer uses when the
# prototxt gives none (its LayerSetUp: Scale and Normalize start at 1, PReLU at 0.25, the rest at
# FillerParameter's constant 0). Caffe fills every blob this way before it copies the weights file's.
# A field of None: the layer sets the blob to its value, with no filler to declare (BatchNorm's 0s).
BLOB_FILLERS: dict[str, tuple[tuple[str | None, float], ...]] = {
    "Convolution": (("convolution_param.weight_filler", 0.0), ("convolution_param.bias_filler", 0.0)),
    "Deconvolution": (("convolution_param.weight_filler", 0.0), ("convolution_param.bias_filler", 0.0)),
    "InnerProduct": (("inner_product_param.weight_filler", 0.0), ("inner_product_param.bias_filler", 0.0)),
    "Embed": (("embed_param.weight_filler", 0.0), ("embed_param.bias_filler", 0.0)),
    "Scale": (("scale_param.filler", 1.0), ("scale_param.bias_filler", 0.0)),
    "Bias": (("bias_param.filler", 0.0),),
    "PReLU": (("prelu_param.filler", 0.25),),
    "Normalize": (("norm_param.scale_filler", 1.0),),
    "BatchNorm": ((None, 0.0),) * 3,
}
# Fillers that draw their values: a net starting from them differs at every conversion.
RANDOM_FILLERS = ("uniform", "gaussian", "xavier", "msra", "positive_unitball")


def blob_filler(layer_type: str, layer_param, index: int) -> tuple[str | None, float, str] | None:
    """``(field, default, filler type)`` of weight blob ``index`` of a ``layer_type`` layer, or None
    where caffe2keras does not know which filler makes it."""
    fields = BLOB_FILLERS.get(layer_type, ())
    if index >= len(fields):
        return None
    field, default = fields[index]
    if field is None:
        return None, default, "constant"
    message_name, _, filler_name = field.partition(".")
    message = getattr(layer_param, message_name)
    kind = getattr(message, filler_name).type if message.HasField(filler_name) else "constant"
    return field, default, kind


def filler_values(layer_param, field: str, default: float, caffe_shape: Shape) -> np.ndarray:
    """The values the filler ``field`` gives a blob of Caffe shape ``caffe_shape``, in that layout.

    A constant filler's are made without Keras, so that a writer that never loads Keras (the ONNX
    one) fills such blobs as the Keras builder does; drawn ones come from Keras' initializers'
    distributions, drawn on the host."""
    if field is None:
        return np.full(caffe_shape, default, np.float32)
    message_name, _, filler_name = field.partition(".")
    message = getattr(layer_param, message_name)
    if not message.HasField(filler_name):
        return np.full(caffe_shape, default, np.float32)
    if getattr(message, filler_name).type == "constant":
        return np.full(caffe_shape, getattr(message, filler_name).value, np.float32)
    initializer = caffe_filler(layer_param, field, caffe_shape, default, keras_shape=caffe_shape)
    draw = drawn_on_host(initializer) or initializer
    return np.asarray(draw(tuple(caffe_shape), dtype="float32"), dtype=np.float32)
