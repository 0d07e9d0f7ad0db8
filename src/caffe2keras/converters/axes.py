"""Where Caffe's axes go in this layout: axis indices, and permutes to and from Caffe's order.

Caffe reshapes in its own (N, C, H, W) element order. In ``channels_last`` a
reshape therefore runs between two permutes, so that values land where Caffe
puts them (the classic Flatten -> InnerProduct CHW/HWC trap).
"""

from __future__ import annotations

from caffe2keras.converters.base import Node, Step, require
from caffe2keras.converters.keras_layers import caffe_layers, layers
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.graph import Op, Shape
from caffe2keras.layout import Layout


def canonical_axis(op: Op, axis: int, rank: int, field: str) -> int:
    """``axis`` of a ``rank``-D blob as Caffe counts it (negative from the end), in ``[0, rank)``."""
    require(-rank <= axis < rank, op, f"axis out of range for a {rank}-D blob", field, axis)
    return axis % rank


def require_not_batch_axis(op: Op, axis: int, what: str, field: str, value) -> None:
    """Refuse ``what`` on axis 0: a Keras layer sees one sample at a time, never across the batch."""
    require(axis != 0, op, f"{what} is not supported", field, value, kind=UnsupportedParameterError)


def to_caffe_order(layout: Layout, rank: int) -> Step | None:
    """A permute from this layout to Caffe's axis order (None when they agree)."""
    perm = layout.perm(rank)
    if perm == tuple(range(rank)):
        return None
    return Step(layers.Permute(tuple(perm.index(axis) for axis in range(1, rank))), suffix="to_nchw")


def to_keras_order(layout: Layout, rank: int) -> Step | None:
    """A permute from Caffe's axis order to this layout (None when they agree)."""
    perm = layout.perm(rank)
    if perm == tuple(range(rank)):
        return None
    return Step(layers.Permute(perm[1:]), suffix="from_nchw")


def in_caffe_order(node: Node, in_rank: int, out_rank: int, steps: list[Step]) -> list[Step]:
    """``steps`` (which work on Caffe-ordered tensors) between permutes from and to this layout."""
    to_caffe = to_caffe_order(node.layout, in_rank)
    back = to_keras_order(node.layout, out_rank)
    return [*([to_caffe] if to_caffe else []), *steps, *([back] if back else [])]


def caffe_reshape_steps(node: Node, in_shape: Shape, out_shape: Shape, field: str) -> list[Step]:
    """Steps that reshape in Caffe's element order, from and to this layout."""
    if in_shape[0] != out_shape[0]:
        # Values cross the batch axis (ROIs gathered into one row): only with every size known.
        require(
            None not in (*in_shape, *out_shape),
            node.op,
            "reshaping across the batch axis needs fixed sizes; convert with fixed input_shapes",
            field,
            tuple(out_shape),
            kind=UnsupportedParameterError,
        )
        return in_caffe_order(
            node, len(in_shape), len(out_shape), [Step(caffe_layers.tensor.BatchReshape(out_shape), suffix="reshape")]
        )
    target = tuple(out_shape[1:])
    if None in target:
        # Keras infers one free dimension (-1) when the model runs; Caffe's element order fixes the rest.
        require(
            target.count(None) == 1,
            node.op,
            f"the output {tuple(out_shape)} would have several free dimensions, which a reshape cannot "
            "infer; convert with fixed input_shapes",
            field,
            tuple(out_shape),
        )
        target = tuple(-1 if d is None else d for d in target)
    reshape = Step(layers.Reshape(target), suffix="reshape")
    return in_caffe_order(node, len(in_shape), len(out_shape), [reshape])
