"""Element-wise layers, Softmax, and the layers that pass their bottom on (Split, Dropout)."""

from __future__ import annotations

import math

import numpy as np

from caffe2keras.converters.activations import inference_scale, softmax_axis
from caffe2keras.node import Node
from caffe2keras.onnx.emit import Emission, emits


@emits("Split")
def split(node: Node, out: Emission) -> None:
    """Every top is bottom 0."""
    for index in range(len(out.tops)):
        out.op("Identity", out.bottoms[0], top=index)


@emits("Dropout")
def dropout(node: Node, out: Emission) -> None:
    """Bottom 0 (Caffe's Dropout scales at training time), times caffe-fast-rcnn's test-time factor."""
    scale = inference_scale(node.op)
    if scale is None:
        out.op("Identity", out.bottoms[0], top=0)
    else:
        out.op("Mul", out.bottoms[0], out.constant("scale", np.float32(scale)), top=0)


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
    p = node.param.clip_param  # both bounds, as the plan checked (converters.activations.clip_shapes)
    low, high = out.constant("min", np.float32(p.min)), out.constant("max", np.float32(p.max))
    out.op("Clip", out.bottoms[0], low, high, top=0)


@emits("PReLU")
def prelu(node: Node, out: Emission) -> None:
    shape = node.in_shapes[0]
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


def _log_base(p) -> float:
    """``ln(base)``; ``base`` is positive or -1 (e), as the plan checked."""
    return 1.0 if p.base == -1 else math.log(p.base)


@emits("Exp")
def exp(node: Node, out: Emission) -> None:
    """``base ^ (shift + scale * x)`` as ``exp(ln(base) * (shift + scale * x))``."""
    p = node.param.exp_param
    log_base = _log_base(p)
    out.op("Exp", _affine(out, out.bottoms[0], p.scale * log_base, p.shift * log_base), top=0)


@emits("Log")
def log(node: Node, out: Emission) -> None:
    """``log_base(shift + scale * x)`` as ``ln(shift + scale * x) / ln(base)``."""
    p = node.param.log_param
    log_base = _log_base(p)
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
    out.op("Softmax", out.bottoms[0], top=0, axis=softmax_axis(node.op, len(node.in_shapes[0])))
