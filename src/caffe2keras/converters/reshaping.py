"""Blob plumbing: Split, Concat, Slice, Flatten, Reshape, Crop, Tile, BatchReindex, and the forks'
ShuffleChannel and Reorg.

Flatten and Reshape keep Caffe's element order (see :mod:`caffe2keras.converters.axes`).
"""

from __future__ import annotations

import itertools
import math

from caffe2keras.converters.axes import caffe_reshape_steps, canonical_axis, in_caffe_order, require_not_batch_axis
from caffe2keras.converters.base import IDENTITY, LayerDoc, Node, Step, converts, require, same_shapes
from caffe2keras.converters.keras_layers import caffe_layers, layers
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.graph import Op, Shape

JOIN_AND_SPLIT = LayerDoc("(identity), `Concatenate`, `Slice`", "`axis` / legacy `concat_dim`, `slice_dim`")


@converts("Split", shapes=same_shapes, doc=JOIN_AND_SPLIT)
def split(node: Node):
    """Caffe's Split: every top is the bottom."""
    return IDENTITY


def concat_axis(op: Op, rank: int) -> int:
    p = op.param.concat_param
    axis = p.concat_dim if p.HasField("concat_dim") else p.axis
    return canonical_axis(op, axis, rank, "concat_param.axis")


def concat_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    axis = concat_axis(op, len(in_shapes[0]))
    for shape in in_shapes[1:]:
        require(
            len(shape) == len(in_shapes[0])
            and all(a == b for i, (a, b) in enumerate(zip(shape, in_shapes[0])) if i != axis),
            op,
            f"bottoms must agree on every axis but {axis}",
            "bottom_shapes",
            [tuple(s) for s in in_shapes],
        )
    out = list(in_shapes[0])
    sizes = [s[axis] for s in in_shapes]
    out[axis] = None if None in sizes else sum(sizes)
    return [tuple(out)]


@converts("Concat", shapes=concat_shapes, doc=JOIN_AND_SPLIT)
def concat(node: Node):
    """Caffe's Concat as Keras' Concatenate along the same axis."""
    if len(node.in_shapes) == 1:
        return IDENTITY
    axis = concat_axis(node.op, len(node.in_shapes[0]))
    require_not_batch_axis(node.op, axis, "concatenating along the batch axis", "concat_param.axis", axis)
    return Step(layers.Concatenate(axis=node.keras_axis(axis)))


def slice_points(op: Op, shape: Shape) -> tuple[int, list[int]]:
    p = op.param.slice_param
    axis = canonical_axis(op, p.slice_dim if p.HasField("slice_dim") else p.axis, len(shape), "slice_param.axis")
    size = shape[axis]
    tops = len(op.tops)
    if p.slice_point:
        points = list(p.slice_point)
        require(
            len(points) == tops - 1, op, f"{tops} tops need {tops - 1} slice points", "slice_param.slice_point", points
        )
        require(
            all(a < b for a, b in zip([0, *points], [*points, size])),
            op,
            f"slice points must increase strictly inside the axis (size {size})",
            "slice_param.slice_point",
            points,
        )
    else:
        require(
            size % tops == 0, op, f"axis size {size} does not split evenly into {tops} tops", "slice_param.axis", axis
        )
        points = [size // tops * i for i in range(1, tops)]
    return axis, points


def slice_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    shape = in_shapes[0]
    axis, points = slice_points(op, shape)
    edges = [0, *points, shape[axis]]
    return [tuple(b - a if i == axis else d for i, d in enumerate(shape)) for a, b in itertools.pairwise(edges)]


@converts("Slice", shapes=slice_shapes, doc=JOIN_AND_SPLIT)
def slice_(node: Node):
    """Caffe's Slice as the Slice layer, one top per piece."""
    if len(node.op.tops) == 1:
        return IDENTITY
    axis, points = slice_points(node.op, node.in_shapes[0])
    require_not_batch_axis(node.op, axis, "slicing the batch axis", "slice_param.axis", axis)
    return Step(caffe_layers.Slice(node.keras_axis(axis), points))


def flatten_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    shape = in_shapes[0]
    p = op.param.flatten_param
    start = canonical_axis(op, p.axis, len(shape), "flatten_param.axis")
    end = canonical_axis(op, p.end_axis, len(shape), "flatten_param.end_axis")
    require(start <= end, op, "axis must not come after end_axis", "flatten_param.end_axis", p.end_axis)
    return [(*shape[:start], _product(shape[start : end + 1]), *shape[end + 1 :])]


def _product(dims) -> int | None:
    """The number of values over ``dims``; None when one of them is free."""
    return None if None in dims else math.prod(dims)


RESHAPES = LayerDoc("`Permute` + `Reshape`", "in Caffe's element order; `0` and `-1` in shapes")


@converts("Flatten", shapes=flatten_shapes, doc=RESHAPES)
def flatten(node: Node):
    """Caffe's Flatten as a reshape in Caffe's element order."""
    return caffe_reshape_steps(node, node.in_shapes[0], node.out_shapes[0], "flatten_param.axis")


def reshape_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    shape = in_shapes[0]
    p = op.param.reshape_param
    rank = len(shape)
    start = p.axis if p.axis >= 0 else rank + 1 + p.axis
    require(0 <= start <= rank, op, "axis out of range", "reshape_param.axis", p.axis)
    end = rank if p.num_axes == -1 else start + p.num_axes
    require(p.num_axes >= -1 and end <= rank, op, "num_axes out of range", "reshape_param.num_axes", p.num_axes)
    dims = list(p.shape.dim)
    require(sum(d == -1 for d in dims) <= 1, op, "at most one dimension may be -1", "reshape_param.shape", dims)
    new = []
    for i, d in enumerate(dims):
        if d == 0:
            require(
                start + i < rank,
                op,
                f"dim {i} copies axis {start + i}, which does not exist",
                "reshape_param.shape",
                dims,
            )
            new.append(shape[start + i])
        else:
            require(d >= -1, op, "dimensions must be -1, 0 or positive", "reshape_param.shape", dims)
            new.append(d)
    kept = _product(shape[start:end])
    if kept is None:
        return [(*shape[:start], *_free_reshape(op, shape[start:end], new, dims), *shape[end:])]
    if -1 in new:
        known = math.prod(d for d in new if d != -1)
        require(
            known > 0 and kept % known == 0,
            op,
            f"cannot infer -1: {kept} values over {known}",
            "reshape_param.shape",
            dims,
        )
        new[new.index(-1)] = kept // known
    require(
        math.prod(new) == kept,
        op,
        f"the new shape holds {math.prod(new)} values, the bottom {kept}",
        "reshape_param.shape",
        dims,
    )
    return [(*shape[:start], *new, *shape[end:])]


def _free_reshape(op: Op, old: Shape, new: list, dims: list) -> list:
    """The reshaped dimensions when some of the old ones are free: -1 takes what the others
    leave, or the free dimensions are carried over (by 0) as they are."""
    if -1 in new:
        require(
            None not in new,
            op,
            "-1 cannot be inferred next to a copied free dimension",
            "reshape_param.shape",
            dims,
        )
        return [None if d == -1 else d for d in new]
    fixed_old = math.prod(d for d in old if d is not None)
    fixed_new = math.prod(d for d in new if d is not None)
    require(
        new.count(None) == list(old).count(None) and fixed_old == fixed_new,
        op,
        f"this reshape fixes sizes that are free at conversion ({tuple(old)} into {tuple(dims)}); "
        "use -1 or 0 for them, or convert with fixed input_shapes",
        "reshape_param.shape",
        dims,
    )
    return new


@converts("Reshape", shapes=reshape_shapes, doc=RESHAPES)
def reshape(node: Node):
    """Caffe's Reshape as a reshape in Caffe's element order."""
    if node.in_shapes[0] == node.out_shapes[0]:
        return IDENTITY
    return caffe_reshape_steps(node, node.in_shapes[0], node.out_shapes[0], "reshape_param.shape")


def crop_offsets(op: Op, in_shapes: list[Shape]) -> list[int]:
    """Per Caffe axis, where the crop starts (0 for axes before crop_param.axis)."""
    require(
        len(in_shapes) == 2,
        op,
        "Crop takes two bottoms (the blob and a blob of the target shape)",
        "bottom",
        [b.name for b in op.bottoms],
    )
    shape, reference = in_shapes
    p = op.param.crop_param
    rank = len(shape)
    axis = canonical_axis(op, p.axis, rank, "crop_param.axis")
    offsets = list(p.offset)
    require(
        len(offsets) in (0, 1, rank - axis),
        op,
        f"give one offset, or one per cropped axis ({rank - axis})",
        "crop_param.offset",
        offsets,
    )
    result = []
    for i in range(rank):
        if i < axis:
            result.append(0)
            continue
        offset = 0 if not offsets else offsets[0] if len(offsets) == 1 else offsets[i - axis]
        require(
            # A free size is checked when the model runs.
            None in (shape[i], reference[i]) or shape[i] - offset >= reference[i],
            op,
            f"axis {i}: offset {offset} + size {reference[i]} exceeds the bottom's size {shape[i]}",
            "crop_param.offset",
            offsets,
        )
        result.append(offset)
    return result


def crop_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    crop_offsets(op, in_shapes)  # validates the offsets against both bottoms
    axis = canonical_axis(op, op.param.crop_param.axis, len(in_shapes[0]), "crop_param.axis")
    return [tuple(in_shapes[1][i] if i >= axis else d for i, d in enumerate(in_shapes[0]))]


@converts("Crop", shapes=crop_shapes, doc=LayerDoc("`Crop`", "`axis`, `offset`"))
def crop(node: Node):
    """Caffe's Crop as the Crop layer: bottom 0 cut to bottom 1's size from the offsets."""
    offsets = crop_offsets(node.op, list(node.in_shapes))
    out = node.out_shapes[0]
    require(
        out[0] == node.in_shapes[0][0],
        node.op,
        "cropping the batch axis is not supported",
        "crop_param.axis",
        node.param.crop_param.axis,
        kind=UnsupportedParameterError,
    )
    begin = node.layout.keras_shape(offsets)[1:]
    size = node.layout.keras_shape(out)[1:]
    return Step(caffe_layers.Crop(begin, size))


def tile_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    shape = in_shapes[0]
    p = op.param.tile_param
    axis = canonical_axis(op, p.axis, len(shape), "tile_param.axis")
    require(p.HasField("tiles") and p.tiles > 0, op, "tiles must be given and positive", "tile_param.tiles", p.tiles)
    return [tuple(d * p.tiles if i == axis else d for i, d in enumerate(shape))]


@converts("Tile", shapes=tile_shapes, doc=LayerDoc("`Tile`", "`axis` ≥ 1, `tiles`"))
def tile(node: Node) -> Step:
    """Caffe's Tile as the Tile layer."""
    p = node.param.tile_param
    axis = canonical_axis(node.op, p.axis, len(node.in_shapes[0]), "tile_param.axis")
    require_not_batch_axis(node.op, axis, "tiling the batch axis", "tile_param.axis", p.axis)
    # Whole copies of the block from `axis` on, one after another: the same along any layout.
    return Step(caffe_layers.Tile(node.keras_axis(axis), p.tiles))


def batch_reindex_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    require(
        len(in_shapes) == 2,
        op,
        "BatchReindex takes two bottoms (the blob and the indices)",
        "bottom",
        [b.name for b in op.bottoms],
    )
    require(
        len(in_shapes[1]) == 1, op, "the indices must be a 1-D blob", "bottom_shapes", [tuple(s) for s in in_shapes]
    )
    return [(in_shapes[1][0], *in_shapes[0][1:])]


@converts(
    "BatchReindex",
    shapes=batch_reindex_shapes,
    doc=LayerDoc("`BatchReindex`", "gathers items along the batch axis; the output's batch is the index blob's length"),
)
def batch_reindex(node: Node) -> Step:
    """Caffe's BatchReindex as the BatchReindex layer: the samples bottom 1 indexes."""
    return Step(caffe_layers.BatchReindex())


def shuffle_channel_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    shape = in_shapes[0]
    group = op.param.shuffle_channel_param.group
    require(len(shape) >= 2, op, "ShuffleChannel needs a channel axis", "bottom_shape", tuple(shape))
    require(
        group > 0 and shape[1] % group == 0,
        op,
        f"group must divide the {shape[1]} channels",
        "shuffle_channel_param.group",
        group,
    )
    return [shape]


@converts(
    "ShuffleChannel",
    shapes=shuffle_channel_shapes,
    doc=LayerDoc("`Reshape` + `Permute` + `Reshape`", "`group`", origin="ShuffleNet"),
)
def shuffle_channel(node: Node):
    """ShuffleNet's shuffle: the channels, viewed as (group, C / group), transposed."""
    shape = node.in_shapes[0]
    group = node.param.shuffle_channel_param.group
    if group in (1, shape[1]):
        return IDENTITY
    keras_shape = node.layout.keras_shape(shape)[1:]
    axis = node.keras_axis(1) - 1  # in the shape without the batch axis
    grouped = [*keras_shape[:axis], group, shape[1] // group, *keras_shape[axis + 1 :]]
    swap = list(range(1, len(grouped) + 1))
    swap[axis], swap[axis + 1] = swap[axis + 1], swap[axis]
    return [
        Step(layers.Reshape(tuple(grouped)), suffix="groups"),
        Step(layers.Permute(tuple(swap)), suffix="transpose"),
        Step(layers.Reshape(keras_shape)),
    ]


def reorg_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    p = op.param.reorg_param
    shape = tuple(in_shapes[0])
    require(len(shape) == 4, op, "Reorg takes 4-D (N, C, H, W) inputs", "bottom_shape", shape)
    require(p.HasField("stride") and p.stride > 0, op, "Reorg needs a positive stride", "reorg_param.stride", p.stride)
    n, c, h, w = shape
    s = p.stride
    require(c % (s * s) == 0, op, f"stride * stride must divide the {c} channels", "reorg_param.stride", s)
    if p.reverse:
        return [(n, c // (s * s), h * s, w * s)]
    require(h % s == 0 and w % s == 0, op, f"stride must divide the height and width {(h, w)}", "reorg_param.stride", s)
    return [(n, c * s * s, h // s, w // s)]


@converts(
    "Reorg",
    shapes=reorg_shapes,
    doc=LayerDoc(
        "`Reshape` + `Permute` + `Reshape`",
        "darknet's own index order (not a plain space-to-depth), as gklz1982/caffe-yolov2 and OpenCV compute it; `stride`, `reverse`",
        origin="YOLOv2",
    ),
)
def reorg(node: Node) -> list[Step]:
    """YOLOv2's Reorg as darknet computes it, and the Caffe YOLOv2 forks (gklz1982/caffe-yolov2) copy it.

    With ``reverse: true`` it moves blocks of channels into space: output
    ``[c, j * s + a, i * s + b]`` is input ``[(a * s + b) * C' + c, j, i]`` with
    ``C' = C / s^2``. Without it, darknet runs the inverse of that loop with the
    input's own sizes: it reads the ``(C, H, W)`` input as if it were
    ``(C', H * s, W * s)``, gathers it into a ``(C, H, W)`` order and hands that
    buffer on as ``(C * s^2, H / s, W / s)``. It is not a plain space-to-depth.
    """
    _n, c, h, w = node.in_shapes[0]
    s = node.param.reorg_param.stride
    blocks = c // (s * s)
    if node.param.reorg_param.reverse:
        regroup = [
            Step(layers.Reshape((s, s, blocks, h, w)), suffix="blocks"),
            Step(layers.Permute((3, 4, 1, 5, 2)), suffix="to_space"),
        ]
    else:
        regroup = [
            Step(layers.Reshape((blocks, h, s, w, s)), suffix="blocks"),
            Step(layers.Permute((3, 5, 1, 2, 4)), suffix="to_channels"),
        ]
    regroup.append(Step(layers.Reshape(tuple(node.out_shapes[0][1:])), suffix="reshape"))
    return in_caffe_order(node, 4, 4, regroup)
