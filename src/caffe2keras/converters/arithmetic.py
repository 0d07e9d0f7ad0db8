"""Eltwise, Scale, Bias and SENet's Axpy: arithmetic between blobs and learned broadcast parameters."""

from __future__ import annotations

import numpy as np

from caffe2keras.converters.axes import canonical_axis, to_caffe_order, to_keras_order
from caffe2keras.converters.base import LayerDoc, Node, Step, converts, require
from caffe2keras.converters.fillers import caffe_filler
from caffe2keras.converters.keras_layers import caffe_layers, layers
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.graph import Op, Shape


def eltwise_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    require(len(in_shapes) >= 2, op, "Eltwise takes two or more bottoms", "bottom", [b.name for b in op.bottoms])
    require(
        all(s == in_shapes[0] for s in in_shapes),
        op,
        "all bottoms must have the same shape",
        "bottom_shapes",
        [tuple(s) for s in in_shapes],
    )
    p = op.param.eltwise_param
    if p.coeff:
        require(p.operation == p.SUM, op, "coefficients apply to SUM only", "eltwise_param.coeff", list(p.coeff))
        require(
            len(p.coeff) == len(in_shapes), op, "give one coefficient per bottom", "eltwise_param.coeff", list(p.coeff)
        )
    return [in_shapes[0]]


@converts(
    "Eltwise",
    shapes=eltwise_shapes,
    doc=LayerDoc("`Add`, `Multiply`, `Maximum`, `WeightedSum`", "SUM with `coeff`, PROD, MAX"),
)
def eltwise(node: Node) -> Step:
    """Caffe's Eltwise as Keras' Add, Multiply or Maximum, or WeightedSum for SUM with coefficients."""
    p = node.param.eltwise_param
    if p.operation == p.PROD:
        return Step(layers.Multiply())
    if p.operation == p.MAX:
        return Step(layers.Maximum())
    if p.coeff and any(c != 1 for c in p.coeff):
        return Step(caffe_layers.WeightedSum(p.coeff))
    return Step(layers.Add())


def _span(op: Op, shape: Shape, axis: int, num_axes: int, field: str) -> tuple[int, int]:
    """Caffe axes [start, end) covered by a Scale/Bias parameter."""
    start = canonical_axis(op, axis, len(shape), f"{field}.axis")
    end = len(shape) if num_axes == -1 else start + num_axes
    require(
        num_axes >= -1 and end <= len(shape),
        op,
        f"num_axes out of range for a {len(shape)}-D bottom",
        f"{field}.num_axes",
        num_axes,
    )
    return start, end


def broadcast_shape(shape: Shape, start: int, param_shape: Shape) -> list[int]:
    """The Caffe-layout shape that lines ``param_shape`` up with ``shape`` from axis ``start``."""
    full = [1] * len(shape)
    full[start : start + len(param_shape)] = param_shape
    return full


def operand_span(op: Op, in_shapes: list[Shape], field: str) -> tuple[int, Shape]:
    """(first axis, shape) of the multiplier/addend: bottom 1's shape, or the learned blob's."""
    shape = in_shapes[0]
    p = getattr(op.param, field)
    if len(in_shapes) == 2:
        start = canonical_axis(op, p.axis, len(shape), f"{field}.axis")
        other = tuple(in_shapes[1])
        require(
            tuple(shape[start : start + len(other)]) == other,
            op,
            f"bottom 1's shape {other} must match bottom 0's shape {tuple(shape)} from axis {start}",
            f"{field}.axis",
            p.axis,
        )
        return start, other
    start, end = _span(op, shape, p.axis, p.num_axes, field)
    return start, tuple(shape[start:end])


def scale_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    operand_span(op, in_shapes, "scale_param")
    return [in_shapes[0]]


def bias_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    operand_span(op, in_shapes, "bias_param")
    return [in_shapes[0]]


def _learned(node: Node, array: np.ndarray | None, start: int, param_shape: Shape) -> np.ndarray | None:
    """A learned Caffe parameter in the Affine layer's broadcast shape."""
    if array is None:
        return None
    full = np.reshape(array, broadcast_shape(node.in_shapes[0], start, param_shape))
    return node.layout.to_keras(full)[0]


def _affine_param_shape(node: Node, start: int, param_shape: Shape) -> tuple[int, ...]:
    require(
        start >= 1 or not param_shape,
        node.op,
        "a learned parameter over the batch axis is not supported",
        f"{'scale' if node.type == 'Scale' else 'bias'}_param.axis",
        start,
        kind=UnsupportedParameterError,
    )
    full = broadcast_shape(node.in_shapes[0], start, param_shape)
    return node.layout.keras_shape(full)[1:]


def _merge_bottoms(node: Node, start: int, param_shape: Shape, merge: layers.Layer) -> list[Step]:
    """Steps that reshape bottom 1 to broadcast against bottom 0 in this layout, then ``merge`` the two."""
    rank = len(node.in_shapes[0])
    if start > 0:
        return _merge_unbatched(node, start, param_shape, merge)
    target = broadcast_shape(node.in_shapes[0], 0, param_shape)
    steps = []
    to_caffe = to_caffe_order(node.layout, len(param_shape))
    if to_caffe:
        steps.append(Step(to_caffe.layer, inputs=[1], suffix="operand_to_nchw"))
    steps.append(Step(layers.Reshape(tuple(target[1:])), inputs=[steps[-1]] if steps else [1], suffix="operand"))
    back = to_keras_order(node.layout, rank)
    if back:
        steps.append(Step(back.layer, suffix="operand_from_nchw"))
    return [*steps, Step(merge, inputs=[0, steps[-1]])]


AFFINE = LayerDoc(
    "`Affine`; `Multiply`/`Add` with a second bottom (`BroadcastOperand` when it starts past axis 0)",
    "`axis`, `num_axes`, `bias_term`; a second bottom at any axis",
)


@converts("Scale", shapes=scale_shapes, doc=AFFINE)
def scale(node: Node) -> list[Step]:
    """Caffe's Scale as a learned Affine, or with two bottoms a broadcast Multiply by bottom 1."""
    p = node.param.scale_param
    start, param_shape = operand_span(node.op, list(node.in_shapes), "scale_param")
    if len(node.in_shapes) == 2:
        # The bias of a two-bottom Scale has bottom 1's shape, which includes the batch axis.
        require(
            not p.bias_term,
            node.op,
            "a learned bias over the batch axis is not supported",
            "scale_param.bias_term",
            True,
            kind=UnsupportedParameterError,
        )
        return _merge_bottoms(node, start, param_shape, layers.Multiply())
    gamma = _learned(node, node.blob(0, param_shape, "scale_param.num_axes", p.num_axes), start, param_shape)
    weights = [gamma]
    if p.bias_term:
        weights.append(_learned(node, node.blob(1, param_shape, "scale_param.bias_term", True), start, param_shape))
    keras_shape = _affine_param_shape(node, start, param_shape)
    # Caffe's default Scale filler is the constant 1.
    fillers = dict(
        gamma_initializer=caffe_filler(node.param, "scale_param.filler", param_shape, 1.0, keras_shape=keras_shape),
        beta_initializer=caffe_filler(node.param, "scale_param.bias_filler", param_shape, keras_shape=keras_shape),
    )
    return [Step(caffe_layers.Affine(keras_shape, use_scale=True, use_bias=p.bias_term, **fillers), weights)]


@converts("Bias", shapes=bias_shapes, doc=AFFINE)
def bias(node: Node) -> list[Step]:
    """Caffe's Bias as a learned Affine, or with two bottoms a broadcast Add of bottom 1."""
    p = node.param.bias_param
    start, param_shape = operand_span(node.op, list(node.in_shapes), "bias_param")
    if len(node.in_shapes) == 2:
        return _merge_bottoms(node, start, param_shape, layers.Add())
    beta = _learned(node, node.blob(0, param_shape, "bias_param.num_axes", p.num_axes), start, param_shape)
    keras_shape = _affine_param_shape(node, start, param_shape)
    filler = caffe_filler(node.param, "bias_param.filler", param_shape, keras_shape=keras_shape)
    return [Step(caffe_layers.Affine(keras_shape, use_scale=False, use_bias=True, beta_initializer=filler), [beta])]


def _merge_unbatched(node: Node, start: int, param_shape: Shape, merge: layers.Layer) -> list[Step]:
    """Bottom 1 covers axes ``start..`` (>= 1) of bottom 0: its own axis 0 is not a batch. It is
    put in Caffe's order, given bottom 0's rank with a leading 1, and moved to this layout."""
    rank = len(node.in_shapes[0])
    require(
        None not in param_shape,
        node.op,
        "a second bottom that does not cover the batch axis needs a fixed shape",
        "bottom_shapes",
        [tuple(s) for s in node.in_shapes],
        kind=UnsupportedParameterError,
    )
    steps = []
    to_caffe = to_caffe_order(node.layout, len(param_shape))
    if to_caffe:
        steps.append(Step(to_caffe.layer, inputs=[1], suffix="operand_to_nchw"))
    target = [1, *broadcast_shape(node.in_shapes[0], start, param_shape)[1:]]
    perm = node.layout.perm(rank)
    operand = caffe_layers.BroadcastOperand(target, None if perm == tuple(range(rank)) else perm)
    steps.append(Step(operand, inputs=[steps[-1]] if steps else [1], suffix="operand"))
    return [*steps, Step(merge, inputs=[0, steps[-1]])]


def axpy_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    bottoms = [b.name for b in op.bottoms]
    require(len(in_shapes) == 3, op, "Axpy takes three bottoms: a, x and y", "bottom", bottoms)
    a, x, y = (tuple(s) for s in in_shapes)
    require(
        len(x) >= 2 and x == y, op, f"x and y (bottoms 1 and 2) must have one shape, got {x} and {y}", "bottom", bottoms
    )
    require(
        a[:2] == x[:2] and all(d == 1 for d in a[2:]),
        op,
        f"a (bottom 0) must have shape (N, C) or (N, C, 1, ...) to scale x {x} per channel, got {a}",
        "bottom",
        bottoms,
    )
    return [x]


@converts(
    "Axpy",
    shapes=axpy_shapes,
    doc=LayerDoc("`Multiply` + `Add`", "`a * x + y`, `a` of shape (N, C) or (N, C, 1, 1)", origin="SENet"),
)
def axpy(node: Node) -> list[Step]:
    """SENet's Axpy: ``a * x + y`` with ``a`` one factor per sample and channel."""
    a_shape, x_shape, _ = node.in_shapes
    target = node.layout.keras_shape(broadcast_shape(x_shape, 0, a_shape[:2]))[1:]
    steps = []
    if node.layout.keras_shape(a_shape)[1:] != target:
        steps.append(Step(layers.Reshape(target), inputs=[0], suffix="scale"))
    scaled = Step(layers.Multiply(), inputs=[1, steps[-1] if steps else 0], suffix="scaled")
    return [*steps, scaled, Step(layers.Add(), inputs=[scaled, 2])]
