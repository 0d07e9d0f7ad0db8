"""Blob plumbing: Concat, Slice, Flatten, Reshape, Crop, Permute, ShuffleChannel.

Their parameters and shapes are the plan's (:mod:`caffe2keras.converters.reshaping`): Flatten and
Reshape are ``Reshape`` to Caffe's top shape with the batch copied (``0``), so the file keeps a
free batch size.
"""

from __future__ import annotations

import itertools

import numpy as np

from caffe2keras.converters.detection import permute_order
from caffe2keras.converters.reshaping import concat_axis, crop_offsets, slice_points
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.node import Node, require
from caffe2keras.onnx.emit import Emission, emits


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
    if len(node.in_shapes) == 1:
        out.op("Identity", out.bottoms[0], top=0)
        return
    axis = concat_axis(node.op, len(node.in_shapes[0]))
    _not_batch(node, axis, "concatenating along the batch axis", "concat_param.axis")
    out.op("Concat", *out.bottoms, top=0, axis=axis)


@emits("Slice")
def slice_(node: Node, out: Emission) -> None:
    """``Split`` at Caffe's slice points (or into equal pieces)."""
    if len(node.op.tops) == 1:
        out.op("Identity", out.bottoms[0], top=0)
        return
    shape = node.in_shapes[0]
    axis, points = slice_points(node.op, shape)
    _not_batch(node, axis, "slicing the batch axis", "slice_param.axis")
    sizes = [b - a for a, b in itertools.pairwise([0, *points, shape[axis]])]
    out.add("Split", [out.bottoms[0], out.constant("sizes", sizes)], out.tops, axis=axis)


def _reshape_to_top(node: Node, out: Emission, field: str, value) -> None:
    shape = node.out_shapes[0]
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
    top = node.out_shapes[0]
    if len(top) == 2 and top[0] == node.in_shapes[0][0]:  # everything after the batch axis
        out.op("Flatten", out.bottoms[0], top=0, axis=1)
        return
    _reshape_to_top(node, out, "flatten_param.axis", node.param.flatten_param.axis)


@emits("Reshape")
def reshape(node: Node, out: Emission) -> None:
    _reshape_to_top(node, out, "reshape_param.shape", list(node.param.reshape_param.shape.dim))


@emits("Crop")
def crop(node: Node, out: Emission) -> None:
    """``Slice`` of bottom 0 to bottom 1's size from the offsets, on the axes from ``axis`` on."""
    shape, top = node.in_shapes[0], node.out_shapes[0]
    offsets = crop_offsets(node.op, list(node.in_shapes))
    axis = node.param.crop_param.axis % len(shape)
    _not_batch(node, axis, "cropping the batch axis", "crop_param.axis")
    axes = list(range(axis, len(shape)))
    bounds = [
        out.constant(what, values)
        for what, values in (
            ("starts", [offsets[i] for i in axes]),
            ("ends", [offsets[i] + top[i] for i in axes]),
            ("axes", axes),
        )
    ]
    out.op("Slice", out.bottoms[0], *bounds, top=0)


@emits("Permute")
def permute(node: Node, out: Emission) -> None:
    """``Transpose``: Caffe's ``order`` lists the leading axes; the others follow in order."""
    order = permute_order(node.op, len(node.in_shapes[0]))
    require(
        order[0] == 0,
        node.op,
        "moving the batch axis is not supported",
        "permute_param.order",
        order,
        kind=UnsupportedParameterError,
    )
    if order == list(range(len(order))):
        out.op("Identity", out.bottoms[0], top=0)
    else:
        out.op("Transpose", out.bottoms[0], top=0, perm=order)


@emits("ShuffleChannel")
def shuffle_channel(node: Node, out: Emission) -> None:
    """ShuffleNet's channel shuffle as a ``Gather`` of the channels: output channel ``i * group + j``
    is input channel ``j * (C / group) + i`` (a reshape-transpose-reshape without the ``Transpose``)."""
    channels, group = node.in_shapes[0][1], node.param.shuffle_channel_param.group
    order = np.arange(channels).reshape(group, channels // group).T.reshape(-1)
    out.op("Gather", out.bottoms[0], out.constant("order", order), top=0, axis=1)
