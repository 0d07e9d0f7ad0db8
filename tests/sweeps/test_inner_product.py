"""Sweeps of InnerProduct against Caffe's formulas (tests/oracle.py) and OpenCV (see tests/sweep.py)."""

from __future__ import annotations

import math

from tests import oracle
from tests.sweep import Case, Maker


def ip_case(
    m: Maker,
    name: str,
    shape,
    num_output: int,
    axis: int = 1,
    transpose: bool = False,
    bias_term: bool = True,
    opencv: str | None = None,
) -> Case:
    params = {"num_output": num_output}
    if axis != 1:
        params["axis"] = axis
    if transpose:
        params["transpose"] = True
    if not bias_term:
        params["bias_term"] = False
    inputs = math.prod(shape[axis:])
    weight = m.array(*((inputs, num_output) if transpose else (num_output, inputs)))
    blobs = [weight, m.array(num_output)] if bias_term else [weight]

    def reference(x, w, b=None):
        return oracle.inner_product(x, w, b, axis % len(shape), transpose)

    return m.single(name, "InnerProduct", shape, {"inner_product_param": params}, reference, blobs, opencv)


# OpenCV's importer ignores inner_product_param.transpose.
OPENCV_NO_TRANSPOSE = "OpenCV ignores inner_product_param.transpose"


def inner_product_cases() -> list[Case]:
    m = Maker(4)
    return [
        ip_case(m, "fc_2d", (2, 7), 5),
        ip_case(m, "fc_3d", (2, 3, 5), 4),
        ip_case(m, "fc_4d", (2, 3, 4, 5), 6),
        ip_case(m, "fc_4d_axis2", (2, 3, 4, 5), 6, axis=2),
        ip_case(m, "fc_4d_axis3", (2, 3, 4, 5), 2, axis=3),
        ip_case(m, "fc_4d_axis_minus1", (2, 3, 4, 5), 3, axis=-1),
        ip_case(m, "fc_3d_axis2", (2, 3, 5), 4, axis=2),
        ip_case(m, "fc_5d", (2, 2, 3, 2, 3), 4),
        ip_case(m, "fc_no_bias", (2, 3, 2, 3), 4, bias_term=False),
        ip_case(m, "fc_2d_transpose", (2, 7), 5, transpose=True, opencv=OPENCV_NO_TRANSPOSE),
        ip_case(m, "fc_4d_transpose", (2, 3, 4, 5), 6, transpose=True, opencv=OPENCV_NO_TRANSPOSE),
        ip_case(m, "fc_4d_axis2_transpose", (2, 3, 4, 5), 3, axis=2, transpose=True, opencv=OPENCV_NO_TRANSPOSE),
    ]


def test_inner_product(check_sweep):
    check_sweep(inner_product_cases)
