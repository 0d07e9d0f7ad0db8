"""Element-wise layers, Softmax, and the layers that pass their bottom on (Split, Dropout)."""

from __future__ import annotations

import math

import numpy as np

from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.node import Node, require
from caffe2keras.onnx.emit import Emission, emits


@emits("Split", "Dropout")
def identity(node: Node, out: Emission) -> None:
    """Every top is bottom 0 (Caffe's Dropout scales at training time only)."""
    if node.type == "Dropout":
        ratio = node.param.dropout_param.dropout_ratio
        require(0 <= ratio < 1, node.op, "dropout_ratio must be in [0, 1)", "dropout_param.dropout_ratio", ratio)
    for index in range(len(out.tops)):
        out.op("Identity", out.bottoms[0], top=index)


@emits("ReLU")
def relu(node: Node, out: Emission) -> None:
    slope = node.param.relu_param.negative_slope
    if slope:
        out.op("LeakyRelu", out.bottoms[0], top=0, alpha=slope)
    else:
        out.op("Relu", out.bottoms[0], top=0)


@emits("ReLU6")
def relu6(node: Node, out: Emission) -> None:
    out.op("Clip", out.bottoms[0], out.constant("min", np.float32(0)), out.constant("max", np.float32(6)), top=0)


@emits("Clip")
def clip(node: Node, out: Emission) -> None:
    p = node.param.clip_param
    require(
        p.HasField("min") and p.HasField("max"),
        node.op,
        "Clip needs both min and max",
        "clip_param",
        f"min={p.min}, max={p.max}",
        kind=UnsupportedParameterError,
    )
    low, high = out.constant("min", np.float32(p.min)), out.constant("max", np.float32(p.max))
    out.op("Clip", out.bottoms[0], low, high, top=0)


@emits("PReLU")
def prelu(node: Node, out: Emission) -> None:
    shape = node.in_shapes[0]
    require(len(shape) >= 2, node.op, "PReLU needs a channel axis", "bottom_shape", shape)
    shared = node.param.prelu_param.channel_shared
    slopes = node.blob(0, (1,) if shared else (shape[1],), "prelu_param.channel_shared", shared)
    # One slope per channel, broadcast over the axes after it.
    broadcast = (1,) if shared else (shape[1], *(1,) * (len(shape) - 2))
    out.op("PRelu", out.bottoms[0], out.constant("slope", slopes.reshape(broadcast)), top=0)


@emits("ELU")
def elu(node: Node, out: Emission) -> None:
    out.op("Elu", out.bottoms[0], top=0, alpha=node.param.elu_param.alpha)


@emits("Sigmoid", "TanH", "AbsVal")
def plain(node: Node, out: Emission) -> None:
    out.op({"Sigmoid": "Sigmoid", "TanH": "Tanh", "AbsVal": "Abs"}[node.type], out.bottoms[0], top=0)


@emits("BNLL")
def bnll(node: Node, out: Emission) -> None:
    """``log(1 + exp(x))`` as Caffe computes it without overflow: ``max(x, 0) + log(1 + exp(-|x|))``."""
    x = out.bottoms[0]
    tail = out.op(
        "Log", out.op("Add", out.constant("one", np.float32(1)), out.op("Exp", out.op("Neg", out.op("Abs", x))))
    )
    out.op("Add", out.op("Relu", x), tail, top=0)


def _affine(out: Emission, x: str, scale: float, shift: float) -> str:
    """``shift + scale * x``, skipping what changes nothing."""
    if scale != 1:
        x = out.op("Mul", x, out.constant("scale", np.float32(scale)))
    if shift != 0:
        x = out.op("Add", x, out.constant("shift", np.float32(shift)))
    return x


@emits("Power")
def power(node: Node, out: Emission) -> None:
    p = node.param.power_param
    base = _affine(out, out.bottoms[0], p.scale, p.shift)
    if p.power == 1:
        out.op("Identity", base, top=0)
    else:
        out.op("Pow", base, out.constant("power", np.float32(p.power)), top=0)


def _log_base(node: Node, p, field: str) -> float:
    require(
        p.base == -1 or p.base > 0,
        node.op,
        "base must be positive, or -1 for e",
        field,
        p.base,
        kind=UnsupportedParameterError,
    )
    return 1.0 if p.base == -1 else math.log(p.base)


@emits("Exp")
def exp(node: Node, out: Emission) -> None:
    """``base ^ (shift + scale * x)`` as ``exp(ln(base) * (shift + scale * x))``."""
    p = node.param.exp_param
    log_base = _log_base(node, p, "exp_param.base")
    out.op("Exp", _affine(out, out.bottoms[0], p.scale * log_base, p.shift * log_base), top=0)


@emits("Log")
def log(node: Node, out: Emission) -> None:
    """``log_base(shift + scale * x)`` as ``ln(shift + scale * x) / ln(base)``."""
    p = node.param.log_param
    log_base = _log_base(node, p, "log_param.base")
    natural = out.op("Log", _affine(out, out.bottoms[0], p.scale, p.shift))
    if log_base == 1:
        out.op("Identity", natural, top=0)
    else:
        out.op("Mul", natural, out.constant("inverse_log_base", np.float32(1 / log_base)), top=0)


@emits("Swish")
def swish(node: Node, out: Emission) -> None:
    x, beta = out.bottoms[0], node.param.swish_param.beta
    gate = out.op("Sigmoid", x if beta == 1 else out.op("Mul", x, out.constant("beta", np.float32(beta))))
    out.op("Mul", x, gate, top=0)


@emits("Threshold")
def threshold(node: Node, out: Emission) -> None:
    above = out.op(
        "Greater", out.bottoms[0], out.constant("threshold", np.float32(node.param.threshold_param.threshold))
    )
    out.op("Cast", above, top=0, to=1)  # 1: FLOAT


@emits("Softmax")
def softmax(node: Node, out: Emission) -> None:
    rank = len(node.in_shapes[0])
    axis = node.param.softmax_param.axis
    require(-rank <= axis < rank, node.op, f"axis out of range for a {rank}-D bottom", "softmax_param.axis", axis)
    require(
        axis % rank != 0,
        node.op,
        "a softmax across the batch is not supported",
        "softmax_param.axis",
        axis,
        kind=UnsupportedParameterError,
    )
    out.op("Softmax", out.bottoms[0], top=0, axis=axis % rank)
