"""Eltwise, and Scale and Bias over an axis span (learned, or by a second bottom)."""

from __future__ import annotations

import numpy as np

from caffe2keras.converters.arithmetic import operand_span
from caffe2keras.node import Node
from caffe2keras.onnx.emit import Emission, emits


@emits("Eltwise")
def eltwise(node: Node, out: Emission) -> None:
    """``Mul``/``Max`` of the bottoms, or ``Sum`` (each bottom first scaled by its coefficient)."""
    p = node.param.eltwise_param  # checked by the plan (converters.arithmetic.eltwise_shapes)
    if p.operation == p.PROD:
        _chain(out, "Mul")
        return
    if p.operation == p.MAX:
        out.op("Max", *out.bottoms, top=0)
        return
    terms = [
        x if c == 1 else out.op("Mul", x, out.constant(f"coeff{i}", np.float32(c)))
        for i, (x, c) in enumerate(zip(out.bottoms, p.coeff or [1] * len(out.bottoms)))
    ]
    out.op("Sum", *terms, top=0)


def _chain(out: Emission, op_type: str) -> None:
    """Caffe's order, bottom by bottom (``Mul`` takes two inputs)."""
    value = out.bottoms[0]
    for x in out.bottoms[1:-1]:
        value = out.op(op_type, value, x)
    out.op(op_type, value, out.bottoms[-1], top=0)


def _broadcast(node: Node, start: int, span: tuple) -> tuple[int, ...]:
    """The operand's shape lined up with bottom 0 from ``start`` (ONNX broadcasts from the right)."""
    return (*span, *(1,) * (len(node.in_shapes[0]) - start - len(span)))


def _operand(node: Node, out: Emission, start: int, span: tuple, blob: np.ndarray | None, what: str) -> str:
    if blob is not None:
        return out.constant(what, np.reshape(blob, _broadcast(node, start, span)))
    target = list(_broadcast(node, start, span))
    if start == 0:
        target[0] = 0  # bottom 1 carries the batch axis: keep whatever size it has
    return out.op("Reshape", out.bottoms[1], out.constant("operand_shape", target))


@emits("Scale")
def scale(node: Node, out: Emission) -> None:
    p = node.param.scale_param
    start, span = operand_span(node.op, node.in_shapes, "scale_param")
    learned = len(node.in_shapes) == 1
    multiplier = node.blob(0, span, "scale_param.num_axes", p.num_axes) if learned else None
    factor = _operand(node, out, start, span, multiplier, "scale")
    if not p.bias_term:
        out.op("Mul", out.bottoms[0], factor, top=0)
        return
    bias = node.blob(1 if learned else 0, span, "scale_param.bias_term", True)
    scaled = out.op("Mul", out.bottoms[0], factor)
    out.op("Add", scaled, out.constant("bias", np.reshape(bias, _broadcast(node, start, span))), top=0)


@emits("Bias")
def bias(node: Node, out: Emission) -> None:
    p = node.param.bias_param
    start, span = operand_span(node.op, node.in_shapes, "bias_param")
    addend = node.blob(0, span, "bias_param.num_axes", p.num_axes) if len(node.in_shapes) == 1 else None
    out.op("Add", out.bottoms[0], _operand(node, out, start, span, addend, "bias"), top=0)


@emits("Axpy")
def axpy(node: Node, out: Emission) -> None:
    """SENet's ``a * x + y``, ``a`` one factor per sample and channel."""
    a, x = node.in_shapes[:2]  # as the plan checked them (converters.arithmetic.axpy_shapes)
    factor = out.op("Reshape", out.bottoms[0], out.constant("per_channel", [0, a[1], *(1,) * (len(x) - 2)]))
    out.op("Add", out.op("Mul", factor, out.bottoms[1]), out.bottoms[2], top=0)
