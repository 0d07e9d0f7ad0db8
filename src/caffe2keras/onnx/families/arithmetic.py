"""Eltwise, and Scale and Bias over an axis span (learned, or by a second bottom)."""

from __future__ import annotations

import numpy as np

from caffe2keras.node import Node, require
from caffe2keras.onnx.emit import Emission, emits


@emits("Eltwise")
def eltwise(node: Node, out: Emission) -> None:
    """``Mul``/``Max`` of the bottoms, or ``Sum`` (each bottom first scaled by its coefficient)."""
    shapes = node.in_shapes
    require(len(shapes) >= 2, node.op, "Eltwise takes two or more bottoms", "bottom", [b.name for b in node.op.bottoms])
    require(
        all(s == shapes[0] for s in shapes),
        node.op,
        "all bottoms must have the same shape",
        "bottom_shapes",
        [tuple(s) for s in shapes],
    )
    p = node.param.eltwise_param
    if p.coeff:
        require(p.operation == p.SUM, node.op, "coefficients apply to SUM only", "eltwise_param.coeff", list(p.coeff))
        require(
            len(p.coeff) == len(shapes),
            node.op,
            "give one coefficient per bottom",
            "eltwise_param.coeff",
            list(p.coeff),
        )
    if p.operation == p.PROD:
        _chain(out, "Mul")
        return
    if p.operation == p.MAX:
        out.op("Max", *out.bottoms, top=0)
        return
    terms = [
        x if c == 1 else out.op("Mul", x, out.constant(f"coeff{i}", np.float32(c)))
        for i, (x, c) in enumerate(zip(out.bottoms, p.coeff or [1] * len(shapes)))
    ]
    out.op("Sum", *terms, top=0)


def _chain(out: Emission, op_type: str) -> None:
    """Caffe's order, bottom by bottom (``Mul`` takes two inputs)."""
    value = out.bottoms[0]
    for x in out.bottoms[1:-1]:
        value = out.op(op_type, value, x)
    out.op(op_type, value, out.bottoms[-1], top=0)


def _operand_span(node: Node, field: str) -> tuple[int, tuple[int, ...]]:
    """(first axis, shape) of the multiplier or addend: bottom 1's, or the learned blob's."""
    shape, p = node.in_shapes[0], getattr(node.param, field)
    rank = len(shape)
    require(-rank <= p.axis < rank, node.op, f"axis out of range for a {rank}-D bottom", f"{field}.axis", p.axis)
    start = p.axis % rank
    if len(node.in_shapes) == 2:
        other = tuple(node.in_shapes[1])
        require(
            tuple(shape[start : start + len(other)]) == other,
            node.op,
            f"bottom 1's shape {other} must match bottom 0's shape {tuple(shape)} from axis {start}",
            f"{field}.axis",
            p.axis,
        )
        return start, other
    end = rank if p.num_axes == -1 else start + p.num_axes
    require(
        p.num_axes >= -1 and end <= rank,
        node.op,
        f"num_axes out of range for a {rank}-D bottom",
        f"{field}.num_axes",
        p.num_axes,
    )
    return start, tuple(shape[start:end])


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
    start, span = _operand_span(node, "scale_param")
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
    start, span = _operand_span(node, "bias_param")
    addend = node.blob(0, span, "bias_param.num_axes", p.num_axes) if len(node.in_shapes) == 1 else None
    out.op("Add", out.bottoms[0], _operand(node, out, start, span, addend, "bias"), top=0)


@emits("Axpy")
def axpy(node: Node, out: Emission) -> None:
    """SENet's ``a * x + y``, ``a`` one factor per sample and channel."""
    bottoms = [b.name for b in node.op.bottoms]
    require(len(node.in_shapes) == 3, node.op, "Axpy takes three bottoms: a, x and y", "bottom", bottoms)
    a, x, y = (tuple(s) for s in node.in_shapes)
    require(len(x) >= 2 and x == y, node.op, f"x and y must have one shape, got {x} and {y}", "bottom", bottoms)
    require(
        a[:2] == x[:2] and all(d == 1 for d in a[2:]),
        node.op,
        f"a must have shape (N, C) or (N, C, 1, ...) to scale x {x} per channel, got {a}",
        "bottom",
        bottoms,
    )
    factor = out.op("Reshape", out.bottoms[0], out.constant("per_channel", [0, a[1], *(1,) * (len(x) - 2)]))
    out.op("Add", out.op("Mul", factor, out.bottoms[1]), out.bottoms[2], top=0)
