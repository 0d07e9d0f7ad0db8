"""The axis helpers move values exactly where NumPy's transpose and Caffe's row-major reshape put them."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

import caffe2keras  # noqa: F401  (the default backend)
from caffe2keras.caffe import schema
from caffe2keras.converters.axes import (
    caffe_reshape_steps,
    canonical_axis,
    in_caffe_order,
    to_caffe_order,
    to_keras_order,
)
from caffe2keras.converters.base import Node, Step
from caffe2keras.errors import ShapeError, UnsupportedParameterError
from caffe2keras.graph import BlobRef, Op
from caffe2keras.layout import Layout

CHANNELS_LAST, CHANNELS_FIRST = Layout("channels_last"), Layout("channels_first")


def reshape_node(in_shape, out_shape, layout=CHANNELS_LAST) -> Node:
    op = Op("r", "Reshape", schema().LayerParameter(name="r", type="Reshape"), [BlobRef("x")], [BlobRef("y")])
    return Node(op, (in_shape,), (out_shape,), layout)


def run(steps: list[Step], x: np.ndarray) -> np.ndarray:
    for step in steps:
        x = ops.convert_to_numpy(step.layer(x))
    return x


def values(shape) -> np.ndarray:
    return np.arange(np.prod(shape), dtype="float32").reshape(shape)


@pytest.mark.parametrize(("axis", "expected"), [(0, 0), (3, 3), (-1, 3), (-4, 0), (-2, 2)])
def test_canonical_axis_counts_negative_axes_from_the_end(axis, expected):
    assert canonical_axis(reshape_node((1,), (1,)).op, axis, 4, "reshape_param.axis") == expected


@pytest.mark.parametrize("axis", [4, -5])
def test_canonical_axis_refuses_axes_outside_the_blob(axis):
    with pytest.raises(ShapeError, match=rf"Received: reshape_param.axis={axis}"):
        canonical_axis(reshape_node((1,), (1,)).op, axis, 4, "reshape_param.axis")


@pytest.mark.parametrize(("layout", "rank"), [(CHANNELS_FIRST, 4), (CHANNELS_FIRST, 3), (CHANNELS_LAST, 2)])
def test_no_permute_where_the_layout_keeps_caffe_order(layout, rank):
    assert to_caffe_order(layout, rank) is None
    assert to_keras_order(layout, rank) is None


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3, 5), (1, 2, 3, 4, 5)])
def test_permutes_match_the_layout_transposes(shape):
    caffe = values(shape)
    keras = CHANNELS_LAST.to_keras(caffe)
    assert np.array_equal(run([to_caffe_order(CHANNELS_LAST, len(shape))], keras), caffe)
    assert np.array_equal(run([to_keras_order(CHANNELS_LAST, len(shape))], caffe), keras)


@pytest.mark.parametrize("layout", [CHANNELS_LAST, CHANNELS_FIRST])
@pytest.mark.parametrize(
    ("in_shape", "out_shape"),
    [((2, 3, 4, 5), (2, 60)), ((2, 3, 4, 5), (2, 6, 2, 5)), ((2, 12), (2, 3, 2, 2)), ((2, 3, 4, 5), (2, 3, 20))],
)
def test_reshape_steps_keep_caffe_element_order(layout, in_shape, out_shape):
    caffe = values(in_shape)
    steps = caffe_reshape_steps(reshape_node(in_shape, out_shape, layout), in_shape, out_shape, "reshape_param.shape")
    assert np.array_equal(run(steps, layout.to_keras(caffe)), layout.to_keras(caffe.reshape(out_shape)))


def test_in_caffe_order_wraps_steps_in_the_permutes_each_rank_needs():
    node = reshape_node((2, 3, 4), (2, 3, 4, 5))
    inner = Step(object())
    into, same, back = in_caffe_order(node, 3, 4, [inner])
    assert (into.layer.dims, into.suffix, same, back.layer.dims, back.suffix) == (
        (2, 1),
        "to_nchw",
        inner,
        (2, 3, 1),
        "from_nchw",
    )
    assert in_caffe_order(node, 4, 2, [inner])[1:] == [inner]  # a 2-D result is in Caffe's order already
    assert in_caffe_order(reshape_node((2, 3, 4), (2, 3, 4), CHANNELS_FIRST), 4, 4, [inner]) == [inner]


def test_reshape_across_the_batch_axis_reshapes_the_whole_blob():
    (step,) = caffe_reshape_steps(reshape_node((2, 60), (4, 30)), (2, 60), (4, 30), "reshape_param.shape")
    assert step.layer.target_shape == (4, 30)


def test_reshape_across_a_free_batch_axis_is_refused():
    with pytest.raises(UnsupportedParameterError, match=r"needs fixed sizes.*Received: reshape_param.shape=\(4, 30\)"):
        caffe_reshape_steps(reshape_node((None, 60), (4, 30)), (None, 60), (4, 30), "reshape_param.shape")
