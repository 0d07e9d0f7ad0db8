"""Blob plumbing: Concat, Slice, Flatten, Reshape, Crop, Permute.

Flatten and Reshape are ``Reshape`` to Caffe's top shape with the batch copied (``0``), so
the file keeps a free batch size.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.node import Node, require
from caffe2keras.onnx.emit import Emission, emits


def _axis(node: Node, axis: int, rank: int, field: str) -> int:
    require(-rank <= axis < rank, node.op, f"axis out of range for a {rank}-D bottom", field, axis)
    return axis % rank


def _not_batch(node: Node, axis: int, what: str, field: str) -> None:
    require(
        axis != 0,
        node.op,
        f"{what} is not supported (the file's batch size is free)",
        field,
        axis,
        kind=UnsupportedParameterError,
    )


@emits("Concat")
def concat(node: Node, out: Emission) -> None:
    p = node.param.concat_param
    shapes = node.in_shapes
    axis = _axis(node, p.concat_dim if p.HasField("concat_dim") else p.axis, len(shapes[0]), "concat_param.axis")
    for shape in shapes[1:]:
        require(
            len(shape) == len(shapes[0]) and all(a == b for i, (a, b) in enumerate(zip(shape, shapes[0])) if i != axis),
            node.op,
            f"bottoms must agree on every axis but {axis}",
            "bottom_shapes",
            [tuple(s) for s in shapes],
        )
    if len(shapes) == 1:
        out.op("Identity", out.bottoms[0], top=0)
        return
    _not_batch(node, axis, "concatenating along the batch axis", "concat_param.axis")
    out.op("Concat", *out.bottoms, top=0, axis=axis)


@emits("Slice")
def slice_(node: Node, out: Emission) -> None:
    """``Split`` at Caffe's slice points (or into equal pieces)."""
    p = node.param.slice_param
    shape = node.in_shapes[0]
    axis = _axis(node, p.slice_dim if p.HasField("slice_dim") else p.axis, len(shape), "slice_param.axis")
    size, tops = shape[axis], len(node.op.tops)
    if p.slice_point:
        points = list(p.slice_point)
        require(
            len(points) == tops - 1,
            node.op,
            f"{tops} tops need {tops - 1} slice points",
            "slice_param.slice_point",
            points,
        )
        require(
            all(a < b for a, b in zip([0, *points], [*points, size])),
            node.op,
            f"slice points must increase strictly inside the axis (size {size})",
            "slice_param.slice_point",
            points,
        )
    else:
        require(
            size % tops == 0,
            node.op,
            f"axis size {size} does not split evenly into {tops} tops",
            "slice_param.axis",
            axis,
        )
        points = [size // tops * i for i in range(1, tops)]
    if tops == 1:
        out.op("Identity", out.bottoms[0], top=0)
        return
    _not_batch(node, axis, "slicing the batch axis", "slice_param.axis")
    sizes = [b - a for a, b in itertools.pairwise([0, *points, size])]
    out.add("Split", [out.bottoms[0], out.constant("sizes", sizes)], out.tops, axis=axis)


def _reshape_to(node: Node, out: Emission, shape: tuple, field: str, value) -> None:
    require(
        shape[0] == node.in_shapes[0][0],
        node.op,
        "changing the batch size is not supported (the file's batch size is free)",
        field,
        value,
        kind=UnsupportedParameterError,
    )
    out.op("Reshape", out.bottoms[0], out.constant("shape", [0, *shape[1:]]), top=0)


@emits("Flatten")
def flatten(node: Node, out: Emission) -> None:
    shape, p = node.in_shapes[0], node.param.flatten_param
    start = _axis(node, p.axis, len(shape), "flatten_param.axis")
    end = _axis(node, p.end_axis, len(shape), "flatten_param.end_axis")
    require(start <= end, node.op, "axis must not come after end_axis", "flatten_param.end_axis", p.end_axis)
    if start == 1 and end == len(shape) - 1:
        out.op("Flatten", out.bottoms[0], top=0, axis=1)
        return
    _reshape_to(
        node, out, (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :]), "flatten_param.axis", p.axis
    )


@emits("Reshape")
def reshape(node: Node, out: Emission) -> None:
    """Caffe's rule: ``shape`` replaces axes [axis, axis + num_axes); 0 copies, -1 takes the rest."""
    shape, p = node.in_shapes[0], node.param.reshape_param
    rank, dims = len(shape), list(p.shape.dim)
    start = p.axis if p.axis >= 0 else rank + 1 + p.axis
    require(0 <= start <= rank, node.op, "axis out of range", "reshape_param.axis", p.axis)
    end = rank if p.num_axes == -1 else start + p.num_axes
    require(p.num_axes >= -1 and end <= rank, node.op, "num_axes out of range", "reshape_param.num_axes", p.num_axes)
    require(sum(d == -1 for d in dims) <= 1, node.op, "at most one dimension may be -1", "reshape_param.shape", dims)
    require(all(d >= -1 for d in dims), node.op, "dimensions must be -1, 0 or positive", "reshape_param.shape", dims)
    require(
        all(start + i < rank for i, d in enumerate(dims) if d == 0),
        node.op,
        "a 0 copies an axis that does not exist",
        "reshape_param.shape",
        dims,
    )
    new = [shape[start + i] if d == 0 else d for i, d in enumerate(dims)]
    kept = math.prod(shape[start:end])
    if -1 in new:
        known = math.prod(d for d in new if d != -1)
        require(
            known > 0 and kept % known == 0,
            node.op,
            f"cannot infer -1: {kept} values over {known}",
            "reshape_param.shape",
            dims,
        )
        new[new.index(-1)] = kept // known
    require(
        math.prod(new) == kept,
        node.op,
        f"the new shape holds {math.prod(new)} values, the bottom {kept}",
        "reshape_param.shape",
        dims,
    )
    _reshape_to(node, out, (*shape[:start], *new, *shape[end:]), "reshape_param.shape", dims)


@emits("Crop")
def crop(node: Node, out: Emission) -> None:
    """``Slice`` of bottom 0 to bottom 1's size from the offsets, on the axes from ``axis`` on."""
    require(
        len(node.in_shapes) == 2,
        node.op,
        "Crop takes two bottoms (the blob and a blob of the target shape)",
        "bottom",
        [b.name for b in node.op.bottoms],
    )
    shape, reference = node.in_shapes
    p = node.param.crop_param
    rank = len(shape)
    axis = _axis(node, p.axis, rank, "crop_param.axis")
    offsets = list(p.offset)
    require(
        len(offsets) in (0, 1, rank - axis),
        node.op,
        f"give one offset, or one per cropped axis ({rank - axis})",
        "crop_param.offset",
        offsets,
    )
    _not_batch(node, axis, "cropping the batch axis", "crop_param.axis")
    starts = [0 if not offsets else offsets[0] if len(offsets) == 1 else offsets[i - axis] for i in range(axis, rank)]
    for i, start in zip(range(axis, rank), starts):
        require(
            shape[i] - start >= reference[i],
            node.op,
            f"axis {i}: offset {start} + size {reference[i]} exceeds the bottom's size {shape[i]}",
            "crop_param.offset",
            offsets,
        )
    ends = [start + reference[i] for i, start in zip(range(axis, rank), starts)]
    bounds = [
        out.constant(what, values)
        for what, values in (("starts", starts), ("ends", ends), ("axes", list(range(axis, rank))))
    ]
    out.op("Slice", out.bottoms[0], *bounds, top=0)


@emits("Permute")
def permute(node: Node, out: Emission) -> None:
    """``Transpose``: Caffe's ``order`` lists the leading axes; the others follow in order."""
    rank = len(node.in_shapes[0])
    order = [a % rank for a in node.param.permute_param.order]
    require(
        len(set(order)) == len(order) and all(-rank <= a < rank for a in node.param.permute_param.order),
        node.op,
        "order must name distinct axes",
        "permute_param.order",
        order,
    )
    order += [a for a in range(rank) if a not in order]
    require(
        order[0] == 0,
        node.op,
        "moving the batch axis is not supported",
        "permute_param.order",
        order,
        kind=UnsupportedParameterError,
    )
    if order == list(range(rank)):
        out.op("Identity", out.bottoms[0], top=0)
    else:
        out.op("Transpose", out.bottoms[0], top=0, perm=order)


@emits("ShuffleChannel")
def shuffle_channel(node: Node, out: Emission) -> None:
    """ShuffleNet's channel shuffle as a ``Gather`` of the channels: output channel ``i * group + j``
    is input channel ``j * (C / group) + i`` (a reshape-transpose-reshape without the ``Transpose``)."""
    shape, group = node.in_shapes[0], node.param.shuffle_channel_param.group
    require(len(shape) >= 2, node.op, "ShuffleChannel needs a channel axis", "bottom_shape", tuple(shape))
    require(
        group > 0 and shape[1] % group == 0,
        node.op,
        f"group must divide the {shape[1]} channels",
        "shuffle_channel_param.group",
        group,
    )
    order = np.arange(shape[1]).reshape(group, shape[1] // group).T.reshape(-1)
    out.op("Gather", out.bottoms[0], out.constant("order", order), top=0, axis=1)
