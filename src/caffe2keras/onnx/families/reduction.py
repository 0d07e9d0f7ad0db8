"""ArgMax, Reduction and Tile."""

from __future__ import annotations

import math

import numpy as np

from caffe2keras.caffe.schema import enum_name
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.node import Node, require
from caffe2keras.onnx.emit import Emission, emits

FLOAT = 1  # onnx.TensorProto.FLOAT
REDUCE = {"SUM": "ReduceSum", "ASUM": "ReduceL1", "SUMSQ": "ReduceSumSquare", "MEAN": "ReduceMean"}


def _axis(node: Node, axis: int, rank: int, field: str) -> int:
    """``axis`` in ``[0, rank)`` (the plan checked its range), refused where it is the batch's."""
    require(
        axis % rank != 0,
        node.op,
        "an axis over the batch is not supported (the file's batch size is free)",
        field,
        axis,
        kind=UnsupportedParameterError,
    )
    return axis % rank


@emits("ArgMax")
def argmax(node: Node, out: Emission) -> None:
    """``TopK`` over the axis reversed, so that equal values go to the larger index as Caffe's
    ``partial_sort`` gives them; indices as floats. Without an axis, over each item flattened, the
    top ``(N, 1 or 2, top_k, 1...)``."""
    p = node.param.argmax_param
    shape = node.in_shapes[0]
    x = out.bottoms[0]
    if p.HasField("axis"):
        axis = _axis(node, p.axis, len(shape), "argmax_param.axis")
    else:
        axis = 1
        x = out.op("Flatten", x, axis=1)
    size = shape[axis] if p.HasField("axis") else math.prod(shape[1:])
    reversed_x = out.op(
        "Slice",
        x,
        out.constant("start", [-1]),
        out.constant("end", [-(2**62)]),
        out.constant("axis", [axis]),
        out.constant("step", [-1]),
    )
    values, order = out.add("TopK", [reversed_x, out.constant("k", [p.top_k])], 2, axis=axis, largest=1, sorted=1)
    last = out.constant("last", np.int64(size - 1))
    indices = out.op("Cast", out.op("Sub", last, order), to=FLOAT)
    if p.HasField("axis"):
        out.op("Identity", values if p.out_max_val else indices, top=0)
        return
    rows = [indices, values] if p.out_max_val else [indices]
    stacked = out.op(
        "Concat", *[out.op("Unsqueeze", r, out.constant(f"row{i}", [1])) for i, r in enumerate(rows)], axis=1
    )
    trailing = [1] * (max(len(shape), 3) - 3)
    out.op("Reshape", stacked, out.constant("shape", [0, len(rows), p.top_k, *trailing]), top=0)


@emits("Reduction")
def reduction(node: Node, out: Emission) -> None:
    """SUM, ASUM, SUMSQ or MEAN of every axis from ``axis`` on, times ``coeff``."""
    p = node.param.reduction_param
    rank = len(node.in_shapes[0])
    axis = _axis(node, p.axis, rank, "reduction_param.axis")
    operation = enum_name(p, "operation")
    axes = list(range(axis, rank))
    x = out.bottoms[0]
    if operation == "MEAN":
        reduced = out.op("ReduceMean", x, axes=axes, keepdims=0)
    else:
        reduced = out.op(
            REDUCE[operation],
            x,
            *([out.constant("axes", axes)] if operation == "SUM" else []),
            keepdims=0,
            **({} if operation == "SUM" else {"axes": axes}),
        )
    if p.coeff == 1:
        out.op("Identity", reduced, top=0)
    else:
        out.op("Mul", reduced, out.constant("coeff", np.float32(p.coeff)), top=0)


@emits("Tile")
def tile(node: Node, out: Emission) -> None:
    p = node.param.tile_param
    rank = len(node.in_shapes[0])
    axis = _axis(node, p.axis, rank, "tile_param.axis")
    repeats = [p.tiles if i == axis else 1 for i in range(rank)]
    out.op("Tile", out.bottoms[0], out.constant("repeats", repeats), top=0)
