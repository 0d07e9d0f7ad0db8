"""Sweeps of Concat, Slice, Reshape, Flatten and Crop against Caffe's formulas (tests/oracle.py) and OpenCV (see tests/sweep.py)."""

from __future__ import annotations

import numpy as np

from tests import oracle
from tests.sweep import OPENCV_NEGATIVE_AXIS, Case, Maker

# OpenCV's Slice asserts when Caffe splits an axis evenly without slice points.
OPENCV_EVEN_SLICE = "OpenCV cannot slice evenly without slice_point"
# OpenCV's importer ignores the legacy concat_dim / slice_dim fields (it uses axis 1).
OPENCV_LEGACY_DIM = "OpenCV ignores concat_dim / slice_dim"


def concat_slice_cases() -> list[Case]:
    m = Maker(9)
    cases = []
    for name, shapes, params, axis, *opencv in (
        ("concat_c", [(2, 2, 3, 4), (2, 3, 3, 4), (2, 1, 3, 4)], {}, 1),
        ("concat_h", [(2, 2, 3, 4), (2, 2, 1, 4)], {"axis": 2}, 2),
        ("concat_w", [(2, 2, 3, 4), (2, 2, 3, 2), (2, 2, 3, 1)], {"axis": 3}, 3),
        ("concat_minus1", [(2, 2, 3, 4), (2, 2, 3, 3)], {"axis": -1}, 3),
        ("concat_dim_legacy", [(2, 2, 3, 4), (2, 2, 2, 4)], {"concat_dim": 2}, 2, OPENCV_LEGACY_DIM),
        ("concat_2d", [(2, 3), (2, 5)], {}, 1),
        ("concat_3d_last", [(2, 3, 2), (2, 3, 4)], {"axis": 2}, 2),
        ("concat_single", [(2, 3, 2, 2)], {}, 1),
    ):
        xs = [m.array(*shape) for shape in shapes]
        cases.append(
            m.multi(
                name,
                "Concat",
                xs,
                {"concat_param": params} if params else {},
                np.concatenate(xs, axis=axis),
                opencv=(opencv or [None])[0],
            )
        )
    for name, shape, params, axis, points, opencv in (
        ("slice_c", (2, 6, 3, 4), {"slice_point": [1, 4]}, 1, [1, 4], None),
        ("slice_c_even", (2, 6, 3, 4), {}, 1, [3], OPENCV_EVEN_SLICE),
        ("slice_h_even3", (2, 2, 6, 4), {"axis": 2}, 2, [2, 4], OPENCV_EVEN_SLICE),
        ("slice_w", (2, 2, 3, 5), {"axis": 3, "slice_point": [2]}, 3, [2], None),
        ("slice_minus1", (2, 2, 3, 5), {"axis": -1, "slice_point": [1, 2, 4]}, 3, [1, 2, 4], None),
        ("slice_dim_legacy", (2, 2, 5, 3), {"slice_dim": 2, "slice_point": [3]}, 2, [3], OPENCV_LEGACY_DIM),
        ("slice_2d", (2, 7), {"slice_point": [2, 5]}, 1, [2, 5], None),
    ):
        x = m.array(*shape)
        tops = [f"{name}_{i}" for i in range(len(points) + 1)]
        parts = oracle.caffe_slice(x, axis, points)
        cases.append(
            m.multi(
                name,
                "Slice",
                [x],
                {"slice_param": params} if params else {},
                dict(zip(tops, parts)),
                tops=tops,
                opencv=opencv,
            )
        )
    return cases


def reshape_cases() -> list[Case]:
    """Flatten and Reshape move values in Caffe's (row-major NCHW) order: numpy's reshape."""
    m = Maker(10)
    cases = []
    for name, shape, params, out in (
        ("flatten", (2, 3, 4, 5), {}, (2, 60)),
        ("flatten_axis2", (2, 3, 4, 5), {"axis": 2}, (2, 3, 20)),
        ("flatten_end_axis2", (2, 3, 4, 5), {"end_axis": 2}, (2, 12, 5)),
        ("flatten_end_minus2", (2, 3, 4, 5, 2), {"axis": 2, "end_axis": -2}, (2, 3, 20, 2)),
        ("flatten_3d", (2, 3, 4), {}, (2, 12)),
        ("flatten_2d", (2, 5), {}, (2, 5)),
    ):
        cases.append(
            m.single(
                name, "Flatten", shape, {"flatten_param": params} if params else {}, lambda x, out=out: x.reshape(out)
            )
        )
    for name, shape, params, out, *opencv in (
        ("reshape_0_minus1", (2, 3, 4, 5), {"shape": {"dim": [0, -1]}}, (2, 60)),
        ("reshape_0_0_minus1", (2, 3, 4, 5), {"shape": {"dim": [0, 0, -1]}}, (2, 3, 20)),
        ("reshape_split", (2, 6, 4, 5), {"shape": {"dim": [0, 2, -1, 5]}}, (2, 2, 12, 5)),
        ("reshape_4d_to_3d", (2, 6, 4, 5), {"shape": {"dim": [0, 4, 30]}}, (2, 4, 30)),
        ("reshape_2d_to_4d", (2, 24), {"shape": {"dim": [0, 2, 3, 4]}}, (2, 2, 3, 4)),
        ("reshape_axis1_num_axes2", (2, 3, 4, 5), {"shape": {"dim": [-1]}, "axis": 1, "num_axes": 2}, (2, 12, 5)),
        ("reshape_axis2", (2, 3, 4, 6), {"shape": {"dim": [2, -1]}, "axis": 2}, (2, 3, 2, 12)),
        # Caffe counts a negative axis from after the last one: -1 appends, -2 is the last axis.
        (
            "reshape_axis_minus2",
            (2, 3, 4, 6),
            {"shape": {"dim": [2, 3]}, "axis": -2},
            (2, 3, 4, 2, 3),
            OPENCV_NEGATIVE_AXIS,
        ),
        (
            "reshape_append_axis",
            (2, 3, 4, 6),
            {"shape": {"dim": [1]}, "axis": -1, "num_axes": 0},
            (2, 3, 4, 6, 1),
            OPENCV_NEGATIVE_AXIS,
        ),
        (
            "reshape_insert_axis",
            (2, 3, 4, 5),
            {"shape": {"dim": [1]}, "axis": 1, "num_axes": 0},
            (2, 1, 3, 4, 5),
            "OpenCV cannot insert an axis (num_axes: 0)",
        ),
        ("reshape_identity", (2, 3, 4, 5), {"shape": {"dim": [0, 0, 0, 0]}}, (2, 3, 4, 5)),
    ):
        cases.append(
            m.single(
                name,
                "Reshape",
                shape,
                {"reshape_param": params},
                lambda x, out=out: x.reshape(out),
                opencv=(opencv or [None])[0],
            )
        )
    return cases


def crop_cases() -> list[Case]:
    m = Maker(11)
    cases = []
    for name, shape, reference_shape, params, axis, offsets in (
        ("crop_default", (2, 3, 7, 8), (2, 3, 5, 4), {}, 2, []),
        ("crop_offset1", (2, 3, 7, 8), (1, 1, 5, 4), {"offset": [1]}, 2, [1]),
        ("crop_offsets_hw", (2, 3, 7, 8), (1, 1, 4, 5), {"offset": [2, 3]}, 2, [2, 3]),
        ("crop_axis1", (2, 5, 7, 8), (1, 3, 4, 5), {"axis": 1, "offset": [1, 2, 0]}, 1, [1, 2, 0]),
        ("crop_axis3", (2, 3, 4, 8), (1, 1, 1, 5), {"axis": 3, "offset": [2]}, 3, [2]),
        ("crop_axis_minus1", (2, 3, 4, 8), (1, 1, 1, 5), {"axis": -1, "offset": [3]}, 3, [3]),
        ("crop_3d", (2, 5, 9), (1, 2, 4), {"axis": 1, "offset": [2, 1]}, 1, [2, 1]),
    ):
        x, like = m.array(*shape), m.array(*reference_shape)
        cases.append(
            m.multi(
                name,
                "Crop",
                [x, like],
                {"crop_param": params} if params else {},
                oracle.crop(x, like.shape, axis, offsets),
            )
        )
    return cases


def test_concat_slice(check_sweep):
    check_sweep(concat_slice_cases)


def test_reshape(check_sweep):
    check_sweep(reshape_cases)


def test_crop(check_sweep):
    check_sweep(crop_cases)
