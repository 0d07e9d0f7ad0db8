"""ArgMax and Reduction: layers that rank or sum away axes."""

from __future__ import annotations

import math

from caffe2keras.caffe.schema import enum_name
from caffe2keras.converters.axes import canonical_axis, in_caffe_order, require_not_batch_axis
from caffe2keras.converters.base import LayerDoc, Node, Step, converts, require
from caffe2keras.converters.keras_layers import caffe_layers, layers
from caffe2keras.graph import Op, Shape

REDUCTIONS = {"SUM": "sum", "ASUM": "asum", "SUMSQ": "sumsq", "MEAN": "mean"}


def argmax_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    shape = in_shapes[0]
    p = op.param.argmax_param
    require(p.top_k >= 1, op, "top_k must be at least 1", "argmax_param.top_k", p.top_k)
    if p.HasField("axis"):
        axis = canonical_axis(op, p.axis, len(shape), "argmax_param.axis")
        require(
            p.top_k <= shape[axis],
            op,
            f"top_k exceeds the size of axis {axis} ({shape[axis]})",
            "argmax_param.top_k",
            p.top_k,
        )
        return [tuple(p.top_k if i == axis else d for i, d in enumerate(shape))]
    per_item = math.prod(shape[1:])
    require(p.top_k <= per_item, op, f"top_k exceeds the {per_item} values of one item", "argmax_param.top_k", p.top_k)
    # Without an axis Caffe ranks each item's values flattened, and writes (N, 1 or 2, top_k, 1, ...).
    out = [1] * max(len(shape), 3)
    out[0], out[1], out[2] = shape[0], 2 if p.out_max_val else 1, p.top_k
    return [tuple(out)]


@converts(
    "ArgMax",
    shapes=argmax_shapes,
    doc=LayerDoc(
        "`ArgMax`",
        "`top_k`, `out_max_val`, `axis` ≥ 1; without `axis`, each item flattened and the top `(N, 1 or 2, top_k, 1)`; ties go to the larger index (Caffe's `partial_sort`); indices are floats",
    ),
)
def argmax(node: Node) -> Step | list[Step]:
    """Caffe's ArgMax as the ArgMax layer, along one axis or over each sample's flattened values."""
    p = node.param.argmax_param
    shape = node.in_shapes[0]
    if p.HasField("axis"):
        axis = canonical_axis(node.op, p.axis, len(shape), "argmax_param.axis")
        require_not_batch_axis(node.op, axis, "ranking across the batch", "argmax_param.axis", p.axis)
        return Step(caffe_layers.ArgMax(p.top_k, node.keras_axis(axis), "values" if p.out_max_val else "indices"))
    out = node.out_shapes[0]
    return in_caffe_order(
        node,
        len(shape),
        len(out),
        [
            Step(layers.Reshape((math.prod(shape[1:]),)), suffix="flatten"),
            Step(
                caffe_layers.ArgMax(p.top_k, -1, "indices_and_values" if p.out_max_val else "indices"), suffix="argmax"
            ),
            Step(layers.Reshape(out[1:]), suffix="reshape"),
        ],
    )


def _reduction_axis(op: Op, rank: int) -> int:
    return canonical_axis(op, op.param.reduction_param.axis, rank, "reduction_param.axis")


def reduction_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    # Caffe reduces every axis from `axis` on; the top keeps the ones before.
    return [tuple(in_shapes[0][: _reduction_axis(op, len(in_shapes[0]))])]


@converts(
    "Reduction",
    shapes=reduction_shapes,
    doc=LayerDoc(
        "`Reduction`",
        "SUM, ASUM, SUMSQ, MEAN, `coeff`; every axis from `axis` on (`axis` ≥ 1: Caffe's default 0 sums the batch into one number)",
    ),
)
def reduction(node: Node) -> Step:
    """Caffe's Reduction (SUM, ASUM, SUMSQ or MEAN of the trailing axes) as the Reduction layer."""
    p = node.param.reduction_param
    rank = len(node.in_shapes[0])
    axis = _reduction_axis(node.op, rank)
    require_not_batch_axis(
        node.op,
        axis,
        "reducing the batch axis to a scalar (axis 0 is Caffe's default; set reduction_param.axis to 1 or more)",
        "reduction_param.axis",
        p.axis,
    )
    axes = tuple(sorted(node.keras_axis(a) for a in range(axis, rank)))
    return Step(caffe_layers.Reduction(REDUCTIONS[enum_name(p, "operation")], axes, p.coeff))
