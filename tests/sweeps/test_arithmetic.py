"""Sweeps of Scale, Bias and Eltwise against Caffe's formulas (tests/oracle.py) and OpenCV (see tests/sweep.py)."""

from __future__ import annotations

import numpy as np

from tests import oracle
from tests.sweep import OPENCV_NEGATIVE_AXIS, Case, Maker


def affine_case(
    m: Maker,
    name: str,
    layer_type: str,
    shape,
    axis: int = 1,
    num_axes: int = 1,
    bias_term: bool = False,
    opencv: str | None = None,
) -> Case:
    """Scale or Bias with a learned parameter over ``shape[axis:axis + num_axes]`` (-1: to the end)."""
    start = axis % len(shape)
    param_shape = tuple(shape[start:] if num_axes == -1 else shape[start : start + num_axes])
    param = {}
    if axis != 1:
        param["axis"] = axis
    if num_axes != 1:
        param["num_axes"] = num_axes
    blobs = [m.array(*param_shape)]
    if layer_type == "Scale" and bias_term:
        param["bias_term"] = True
        blobs.append(m.array(*param_shape))

    def reference(x, first, second=None):
        if layer_type == "Bias":
            return x + oracle.broadcast_from(first, len(shape), start)
        y = x * oracle.broadcast_from(first, len(shape), start)
        return y if second is None else y + oracle.broadcast_from(second, len(shape), start)

    field = "scale_param" if layer_type == "Scale" else "bias_param"
    return m.single(name, layer_type, shape, {field: param} if param else {}, reference, blobs, opencv)


def two_bottom_case(
    m: Maker, name: str, layer_type: str, shape, operand_shape, axis: int, opencv: str | None = None
) -> Case:
    """Scale/Bias whose multiplier/addend is bottom 1, lined up with bottom 0 from ``axis``."""
    x, operand = m.array(*shape), m.array(*operand_shape)
    lined_up = oracle.broadcast_from(operand, len(shape), axis)
    expected = x * lined_up if layer_type == "Scale" else x + lined_up
    field = "scale_param" if layer_type == "Scale" else "bias_param"
    return m.multi(name, layer_type, [x, operand], {field: {"axis": axis}}, expected, opencv=opencv)


OPENCV_NO_BIAS = "OpenCV has no Bias layer"
# Caffe saves the scalar of num_axes: 0 as a blob with no dims; OpenCV cannot read one.
OPENCV_SCALAR_BLOB = "OpenCV cannot read a blob without dims"


def scale_bias_cases() -> list[Case]:
    m = Maker(7)
    cases = []
    for layer_type in ("Scale", "Bias"):
        t = layer_type.lower()
        no_bias = OPENCV_NO_BIAS if layer_type == "Bias" else None
        cases += [
            affine_case(m, f"{t}_channel", layer_type, (2, 4, 3, 5), opencv=no_bias),
            affine_case(m, f"{t}_scalar", layer_type, (2, 4, 3, 5), num_axes=0, opencv=no_bias or OPENCV_SCALAR_BLOB),
            affine_case(m, f"{t}_chw", layer_type, (2, 3, 4, 5), num_axes=-1, opencv=no_bias),
            affine_case(m, f"{t}_ch", layer_type, (2, 3, 4, 5), num_axes=2, opencv=no_bias),
            affine_case(m, f"{t}_h", layer_type, (2, 3, 4, 5), axis=2, opencv=no_bias),
            affine_case(m, f"{t}_hw", layer_type, (2, 3, 4, 5), axis=2, num_axes=2, opencv=no_bias),
            affine_case(
                m, f"{t}_w_axis_minus1", layer_type, (2, 3, 4, 5), axis=-1, opencv=no_bias or OPENCV_NEGATIVE_AXIS
            ),
            affine_case(m, f"{t}_2d", layer_type, (2, 6), opencv=no_bias),
            affine_case(m, f"{t}_3d", layer_type, (2, 4, 5), opencv=no_bias),
            affine_case(m, f"{t}_3d_last_axis", layer_type, (2, 4, 5), axis=2, opencv=no_bias),
            two_bottom_case(m, f"{t}_bottom_nc", layer_type, (2, 3, 4, 5), (2, 3), 0, opencv=no_bias),
            two_bottom_case(m, f"{t}_bottom_full", layer_type, (2, 3, 4, 5), (2, 3, 4, 5), 0, opencv=no_bias),
            two_bottom_case(m, f"{t}_bottom_2d", layer_type, (2, 6), (2, 6), 0, opencv=no_bias),
            # bottom 1 past the batch axis: its own axis 0 is not a batch (BVLC allows any axis)
            two_bottom_case(m, f"{t}_bottom_ch_at_axis1", layer_type, (2, 3, 4, 5), (3, 4), 1, opencv=no_bias),
            two_bottom_case(m, f"{t}_bottom_chw_at_axis1", layer_type, (2, 3, 4, 5), (3, 4, 5), 1, opencv=no_bias),
            two_bottom_case(m, f"{t}_bottom_w_at_axis3", layer_type, (2, 3, 4, 5), (5,), 3, opencv=no_bias),
        ]
    cases += [
        affine_case(m, "scale_channel_bias", "Scale", (2, 4, 3, 5), bias_term=True),
        affine_case(m, "scale_hw_bias", "Scale", (2, 3, 4, 5), axis=2, num_axes=2, bias_term=True),
        affine_case(
            m, "scale_scalar_bias", "Scale", (2, 3, 4, 5), num_axes=0, bias_term=True, opencv=OPENCV_SCALAR_BLOB
        ),
    ]
    return cases


def eltwise_cases() -> list[Case]:
    m = Maker(8)
    cases = []
    for shape in ((2, 3, 4, 5), (2, 7)):
        rank = len(shape)
        for operation, params, combine in (
            ("sum", {}, lambda xs: sum(xs)),
            ("sum_coeff", {"operation": "SUM", "coeff": [0.5, -1.5]}, lambda xs: 0.5 * xs[0] - 1.5 * xs[1]),
            ("sum_ones", {"operation": "SUM", "coeff": [1.0, 1.0]}, lambda xs: xs[0] + xs[1]),
            ("prod", {"operation": "PROD"}, lambda xs: xs[0] * xs[1]),
            ("max", {"operation": "MAX"}, lambda xs: np.maximum(xs[0], xs[1])),
            ("sum3_coeff", {"coeff": [2.0, -1.0, 0.25]}, lambda xs: 2 * xs[0] - xs[1] + 0.25 * xs[2]),
            ("sum3", {"operation": "SUM"}, lambda xs: xs[0] + xs[1] + xs[2]),
            ("prod3", {"operation": "PROD"}, lambda xs: xs[0] * xs[1] * xs[2]),
            ("max3", {"operation": "MAX"}, lambda xs: np.maximum(np.maximum(xs[0], xs[1]), xs[2])),
        ):
            count = 3 if "3" in operation else 2
            xs = [m.array(*shape).astype(np.float64).astype(np.float32) for _ in range(count)]
            cases.append(
                m.multi(
                    f"{operation}_{rank}d",
                    "Eltwise",
                    xs,
                    {"eltwise_param": params} if params else {},
                    combine([x.astype(np.float64) for x in xs]),
                )
            )
    return cases


def test_scale_bias(check_sweep):
    check_sweep(scale_bias_cases)


def test_eltwise(check_sweep):
    check_sweep(eltwise_cases)
