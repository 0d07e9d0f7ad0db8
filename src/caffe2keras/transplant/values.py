"""A paired Caffe unit's blobs as the values of its Keras layer's variables.

Each function returns the values by variable and notes for the report, or raises
:class:`Mismatch` with the reason the two cannot pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
import numpy as np

from caffe2keras.converters.transforms import (
    batch_norm_statistics,
    dense_kernel_to_keras,
    depthwise_kernel_to_keras,
    kernel_to_keras,
)
from caffe2keras.transplant.caffe_side import CaffeUnit
from caffe2keras.transplant.keras_side import KerasTarget

EPSILON_MODES = ("layer", "variance")


class Mismatch(Exception):
    """The unit's blobs do not fit the Keras layer."""


@dataclass
class Assignment:
    values: list[tuple[object, np.ndarray]]  # (Keras variable, value)
    notes: list[str] = field(default_factory=list)
    epsilon: float | None = None  # a BatchNormalization epsilon to set


def _shape(array) -> tuple[int, ...]:
    return tuple(int(d) for d in array.shape)


def _bias(unit: CaffeUnit, layer, blobs, notes: list[str]) -> list[tuple[object, np.ndarray]]:
    """The bias variable's value: Caffe's, or zeros where the Caffe layer has none."""
    if not layer.use_bias:
        if len(blobs) > 1:
            raise Mismatch(f"the Caffe layer has a bias {_shape(blobs[1])}; the Keras layer has use_bias=False")
        return []
    if len(blobs) > 1:
        return [(layer.bias, blobs[1].reshape(-1))]
    notes.append("bias 0 (the Caffe layer has none)")
    return [(layer.bias, np.zeros(_shape(layer.bias), np.float32))]


def _convolution(unit: CaffeUnit, target: KerasTarget, notes: list[str]):
    layer, blobs = target.layer, unit.blobs[0]
    kernel = blobs[0]
    if isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)):
        channels = int(layer.kernel.shape[-2])
        if kernel.shape[1] != 1:
            raise Mismatch(f"a depthwise Keras layer needs one input channel per Caffe filter: {_shape(kernel)}")
        return [(layer.kernel, depthwise_kernel_to_keras(kernel, channels)), *_bias(unit, layer, blobs, notes)]
    if unit.kind == "conv":
        group = unit.key()[2] // kernel.shape[1]
        if layer.groups != group:
            raise Mismatch(f"the Caffe layer has group {group}; the Keras layer has groups={layer.groups}")
    elif unit.op.param.convolution_param.group != 1:
        raise Mismatch("Keras transposed convolutions have no groups")
    return [(layer.kernel, kernel_to_keras(kernel)), *_bias(unit, layer, blobs, notes)]


def _dense(unit: CaffeUnit, target: KerasTarget, notes: list[str]):
    layer, blobs = target.layer, unit.blobs[0]
    transpose = unit.op.param.inner_product_param.transpose
    weight = blobs[0].reshape(blobs[0].shape[-2:])
    flattened = target.flattened
    features, order = None, None
    if flattened is not None:
        features, order = flattened.caffe_features, flattened.order
        caffe = unit.bottom_shape
        if caffe is not None and tuple(caffe[1:]) != features and math.prod(caffe[1:]) == math.prod(features):
            raise Mismatch(
                f"Caffe flattens a {tuple(caffe[1:])} bottom; Keras flattens {flattened.shape}, "
                f"which is {features} in Caffe's layout"
            )
        if tuple(order) != tuple(range(len(order))):
            axes = ["C", "H", "W"] if len(order) == 3 else ["C", *(f"axis{i}" for i in range(2, len(order) + 1))]
            notes.append(f"rows {','.join(axes)} -> {','.join(axes[a] for a in order)}")
    elif unit.bottom_shape is not None and math.prod(unit.bottom_shape[2:]) > 1:
        notes.append(f"rows kept in Caffe's order (C,H,W of {tuple(unit.bottom_shape[1:])}): no Flatten feeds it")
    kernel = dense_kernel_to_keras(weight, transpose=transpose, features=features, order=order)
    return [(layer.kernel, kernel), *_bias(unit, layer, blobs, notes)]


def _batch_norm(unit: CaffeUnit, target: KerasTarget, notes: list[str], epsilon_mode: str):
    layer, blobs = target.layer, unit.blobs[0]
    p = unit.op.param.batch_norm_param
    if p.HasField("use_global_stats") and not p.use_global_stats:
        notes.append("Caffe normalizes with the batch's statistics (use_global_stats: false)")
    mean, variance = batch_norm_statistics(blobs[0], blobs[1], blobs[2] if len(blobs) > 2 else None)
    channels = mean.size
    scale = unit.scale
    values = []
    if layer.scale:
        values.append((layer.gamma, scale[0] if scale is not None else np.ones(channels, np.float32)))
        if scale is None:
            notes.append("gamma 1 (no Scale follows the BatchNorm)")
    elif scale is not None:
        raise Mismatch(f"the Keras layer has scale=False; Caffe's {unit.ops[1].name!r} scales")
    beta = scale[1] if scale is not None and len(scale) > 1 else None
    if layer.center:
        values.append((layer.beta, beta if beta is not None else np.zeros(channels, np.float32)))
        if beta is None:
            notes.append("beta 0 (the Caffe layers add none)")
    elif beta is not None:
        raise Mismatch(f"the Keras layer has center=False; Caffe's {unit.ops[1].name!r} adds a bias")
    epsilon = None
    if not math.isclose(layer.epsilon, p.eps, rel_tol=1e-7):
        if epsilon_mode == "layer":
            epsilon = p.eps
            notes.append(f"epsilon {layer.epsilon:g} -> {p.eps:g}")
        else:  # keep the layer's epsilon: Keras divides by sqrt(variance + epsilon) as Caffe did
            difference = p.eps - layer.epsilon
            variance = (variance.astype(np.float64) + difference).astype(np.float32)
            sign = "+" if difference > 0 else "-"
            notes.append(
                f"moving_variance {sign} {abs(difference):.3g}: Caffe's eps {p.eps:g}, the layer's epsilon {layer.epsilon:g}"
            )
    values += [(layer.moving_mean, mean), (layer.moving_variance, variance)]
    return values, epsilon


def _prelu(unit: CaffeUnit, target: KerasTarget, notes: list[str]):
    alpha = target.layer.alpha
    slopes = unit.blobs[0][0]
    if slopes.size != int(np.prod(alpha.shape)) or sum(d > 1 for d in alpha.shape) > 1:
        raise Mismatch(f"Caffe's slopes {_shape(slopes)} do not fit the Keras alpha {_shape(alpha)}")
    return [(alpha, slopes.reshape(_shape(alpha)))]


def assignment(unit: CaffeUnit, target: KerasTarget, epsilon_mode: str) -> Assignment:
    """The values ``target``'s variables take from ``unit``; raises :class:`Mismatch`."""
    if unit.kind is None:
        raise Mismatch(f"caffe2keras does not load {unit.op.type} weights into existing Keras layers")
    if unit.kind != target.kind:
        raise Mismatch(f"a {unit.type_label} layer's weights do not fit a Keras {type(target.layer).__name__}")
    notes: list[str] = []
    epsilon = None
    try:
        if unit.kind in ("conv", "deconv"):
            values = _convolution(unit, target, notes)
        elif unit.kind == "dense":
            values = _dense(unit, target, notes)
        elif unit.kind == "batchnorm":
            values, epsilon = _batch_norm(unit, target, notes, epsilon_mode)
        else:
            values = _prelu(unit, target, notes)
    except (ValueError, IndexError) as exc:  # a reshape or an axis of blobs that cannot fit the layer
        blobs = ", ".join(str(_shape(blob)) for blob in unit.blobs[0])
        raise Mismatch(f"Caffe's blobs {blobs} cannot take the layer's layout ({exc})") from None
    problems = [
        f"{variable.path}: Caffe gives {_shape(value)} in Keras' layout, the layer has {_shape(variable)}"
        for variable, value in values
        if _shape(value) != _shape(variable)
    ]
    given = {id(variable) for variable, _ in values}
    problems += [f"{v.path}: no Caffe blob fills it" for v in target.layer.weights if id(v) not in given]
    if problems:
        raise Mismatch("; ".join(problems))
    return Assignment(values, notes, epsilon)
