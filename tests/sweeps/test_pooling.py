"""Sweeps of Pooling against Caffe's formulas (tests/oracle.py) and OpenCV (see tests/sweep.py)."""

from __future__ import annotations

from tests import oracle
from tests.oracle import spatial_fields
from tests.sweep import OPENCV_KERNEL_OVER_INPUT, Case, Maker

# OpenCV's importer does not read BVLC's round_mode (only the fork field ceil_mode).
OPENCV_NO_ROUND_MODE = "OpenCV does not read round_mode"
# BVLC's PoolingLayer::Reshape drops a last window starting at or past size + pad on every axis as
# soon as any pad is non-zero ("if (pad_h_ || pad_w_)"); OpenCV applies it per padded axis only.
OPENCV_CLIP_PER_AXIS = "OpenCV applies Caffe's clip rule only to padded axes"


def pool_case(
    m: Maker,
    name: str,
    shape,
    method: str,
    kernel=None,
    stride=(1, 1),
    pad=(0, 0),
    *,
    rounding: dict | None = None,
    ceil_mode: bool = True,
    is_global: bool = False,
    opencv: str | None = None,
) -> Case:
    """``rounding`` is how the prototxt says it (round_mode or the fork's ceil_mode); ``ceil_mode``
    is what it means."""
    params = {"pool": method.upper()}
    if is_global:
        params["global_pooling"] = True
        kernel = tuple(shape[2:])
    else:
        params.update(spatial_fields("kernel_size", kernel, "kernel"))
        params.update(spatial_fields("stride", stride, "stride", default=1))
        params.update(spatial_fields("pad", pad, "pad", default=0))
    params.update(rounding or {})

    def reference(x):
        return oracle.pooling(x, method, kernel, stride, pad, ceil_mode)

    return m.single(name, "Pooling", shape, {"pooling_param": params}, reference, opencv=opencv)


def pooling_cases() -> list[Case]:
    m = Maker(3)
    floor = {"round_mode": "FLOOR"}
    floor_cases = dict(rounding=floor, ceil_mode=False, opencv=OPENCV_NO_ROUND_MODE)
    cases = []
    for method in ("max", "ave"):
        cases += [
            pool_case(m, f"{method}_k2_s2", (2, 3, 6, 8), method, (2, 2), (2, 2)),
            # ceil adds a last window that hangs over the end (7 = 3 * 2 + 1).
            pool_case(m, f"{method}_k2_s2_odd_ceil", (2, 3, 7, 9), method, (2, 2), (2, 2)),
            pool_case(m, f"{method}_k2_s2_odd_floor", (2, 3, 7, 9), method, (2, 2), (2, 2), **floor_cases),
            pool_case(m, f"{method}_k3_s2", (2, 3, 7, 10), method, (3, 3), (2, 2)),
            pool_case(m, f"{method}_k3_s2_floor", (2, 3, 7, 10), method, (3, 3), (2, 2), **floor_cases),
            pool_case(
                m,
                f"{method}_k3_s2_fork_ceil_false",
                (2, 3, 8, 10),
                method,
                (3, 3),
                (2, 2),
                rounding={"ceil_mode": False},
                ceil_mode=False,
            ),
            pool_case(
                m, f"{method}_k3_s2_fork_ceil_true", (2, 3, 8, 10), method, (3, 3), (2, 2), rounding={"ceil_mode": True}
            ),
            pool_case(m, f"{method}_k3_s1_p1", (2, 3, 5, 6), method, (3, 3), (1, 1), (1, 1)),
            pool_case(m, f"{method}_k3_s2_p1", (2, 3, 6, 7), method, (3, 3), (2, 2), (1, 1)),
            # ceil's extra window starts inside the padding: 8 + 2 - 3 = 7 over stride 2 -> 5 windows.
            pool_case(m, f"{method}_k3_s2_p1_ceil_extra", (2, 3, 8, 8), method, (3, 3), (2, 2), (1, 1)),
            pool_case(m, f"{method}_k3_s2_p1_floor", (2, 3, 8, 8), method, (3, 3), (2, 2), (1, 1), **floor_cases),
            # Caffe's clip rule: a last window starting at or past size + pad is dropped (5 + 1).
            pool_case(m, f"{method}_k2_s2_p1_clip", (2, 3, 5, 5), method, (2, 2), (2, 2), (1, 1)),
            pool_case(m, f"{method}_k3_s3_p2_clip", (2, 2, 7, 6), method, (3, 3), (3, 3), (2, 2)),
            # The rule applies to every axis as soon as any axis is padded (here only W is).
            pool_case(
                m,
                f"{method}_clip_other_axis",
                (2, 2, 5, 7),
                method,
                (1, 3),
                (3, 3),
                (0, 1),
                opencv=OPENCV_CLIP_PER_AXIS,
            ),
            pool_case(m, f"{method}_pad_h1_w0", (2, 3, 6, 7), method, (3, 2), (2, 2), (1, 0)),
            pool_case(m, f"{method}_kh2_kw3_sh1_sw2", (2, 3, 6, 9), method, (2, 3), (1, 2)),
            pool_case(m, f"{method}_stride_over_kernel", (2, 3, 8, 11), method, (2, 2), (3, 3)),
            # Kernel larger than the input: ceil(-1 / 2) + 1 = 1 window, clipped to the input.
            pool_case(
                m, f"{method}_kernel_over_input", (2, 3, 2, 5), method, (3, 3), (2, 2), opencv=OPENCV_KERNEL_OVER_INPUT
            ),
            pool_case(m, f"{method}_kernel_over_input_pad", (2, 3, 3, 3), method, (4, 4), (2, 2), (1, 1)),
            pool_case(m, f"{method}_global", (2, 3, 5, 7), method, is_global=True),
            pool_case(m, f"{method}_global_1x1", (2, 3, 1, 1), method, is_global=True),
            pool_case(m, f"{method}_kernel_is_input", (2, 3, 4, 6), method, (4, 6), (2, 2)),
        ]
    return cases


def test_pooling(check_sweep):
    check_sweep(pooling_cases)
