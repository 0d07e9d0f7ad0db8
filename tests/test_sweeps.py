"""Per-layer parameter sweeps against Caffe's formulas (tests/oracle.py) and OpenCV 4.x.

Every family's cases form one net; it is converted in both data formats, saved and reloaded with
``safe_mode=True``, and each configuration's blobs are compared with the numpy reference written
from BVLC Caffe's C++ and, where OpenCV computes the layer as Caffe does, with OpenCV's Caffe
importer. Where OpenCV is left out, the case says why.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from tests import oracle
from tests.golden import assert_matches
from tests.oracle import Layer, input_layer, spatial_fields
from tests.shared import case_dirs, requires_shared
from tests.sweep import FORMATS, Case, Family, Maker, check_family

try:
    import cv2
except ImportError:  # the test extra installs it; without it only Caffe's formulas judge
    cv2 = None

# Caffe's sizes round (2 - 3) / 2 to 0 (C++ division; float ceil for pooling), giving one
# window where the kernel exceeds the input; OpenCV computes an empty output.
OPENCV_KERNEL_OVER_INPUT = "OpenCV gives no window where the kernel exceeds the input"
OPENCV_ND_DECONV = "OpenCV has no 1-D or 3-D Deconvolution"
OPENCV_3D_GROUP_DILATION = "OpenCV fails on a grouped, dilated 3-D convolution"
# OpenCV sizes a dilated Deconvolution as if undilated; BVLC's deconv_layer.cpp uses the dilated
# extent: stride * (in - 1) + dilation * (kernel - 1) + 1 - 2 * pad.
OPENCV_DILATED_DECONV = "OpenCV ignores dilation in Deconvolution"


# --------------------------------------------------------------------------- Convolution


def conv_case(
    m: Maker,
    name: str,
    shape,
    num_output: int,
    kernel,
    stride=None,
    pad=None,
    dilation=None,
    group: int = 1,
    bias_term: bool = True,
    repeated: bool = False,
    opencv: str | None = None,
    layer_type: str = "Convolution",
) -> Case:
    spatial = len(shape) - 2
    stride, dilation = stride or (1,) * spatial, dilation or (1,) * spatial
    pad = pad or (0,) * spatial
    params = {
        "num_output": num_output,
        **spatial_fields("kernel_size", kernel, "kernel", repeated=repeated),
        **spatial_fields("stride", stride, "stride", default=1, repeated=repeated),
        **spatial_fields("pad", pad, "pad", default=0, repeated=repeated),
        **spatial_fields("dilation", dilation, None, default=1),
    }
    if group != 1:
        params["group"] = group
    if not bias_term:
        params["bias_term"] = False
    if layer_type == "Convolution":
        weight, formula = m.array(num_output, shape[1] // group, *kernel), oracle.convolution
    else:  # Caffe keeps a deconvolution's kernel as (input channels, outputs per group, kernel...)
        weight, formula = m.array(shape[1], num_output // group, *kernel), oracle.deconvolution
    blobs = [weight, m.array(num_output)] if bias_term else [weight]

    def reference(x, w, b=None):
        return formula(x, w, b, stride, pad, dilation, group)

    return m.single(name, layer_type, shape, {"convolution_param": params}, reference, blobs, opencv)


def convolution_cases() -> list[Case]:
    m = Maker(1)
    return [
        conv_case(m, "k3", (2, 3, 7, 9), 4, (3, 3)),
        conv_case(m, "k3_same", (2, 3, 7, 9), 4, (3, 3), pad=(1, 1)),
        conv_case(m, "k5_same", (2, 2, 6, 5), 3, (5, 5), pad=(2, 2)),
        conv_case(m, "k2_even", (2, 3, 7, 8), 2, (2, 2)),
        conv_case(m, "k4_p1", (2, 3, 7, 9), 3, (4, 4), pad=(1, 1)),
        conv_case(m, "k1_s2", (2, 4, 7, 9), 5, (1, 1), stride=(2, 2)),
        conv_case(m, "k3_s2_p1", (2, 3, 9, 11), 4, (3, 3), stride=(2, 2), pad=(1, 1)),
        conv_case(m, "k3_s3", (2, 3, 10, 11), 4, (3, 3), stride=(3, 3)),
        conv_case(m, "k3_s3_p2", (2, 2, 7, 8), 3, (3, 3), stride=(3, 3), pad=(2, 2)),
        conv_case(m, "k2_s3", (2, 2, 8, 7), 3, (2, 2), stride=(3, 3)),
        conv_case(m, "pad_h1_w0", (2, 3, 7, 9), 4, (3, 3), pad=(1, 0)),
        conv_case(m, "pad_h0_w2_s2", (2, 3, 7, 9), 4, (3, 3), stride=(2, 2), pad=(0, 2)),
        conv_case(m, "pad_h2_w1_s1", (2, 3, 5, 6), 2, (3, 3), pad=(2, 1)),
        conv_case(m, "kh3_kw1", (2, 3, 7, 9), 4, (3, 1)),
        conv_case(m, "kh1_kw5_sh2", (2, 3, 7, 9), 4, (1, 5), stride=(2, 1), pad=(0, 2)),
        conv_case(m, "kh2_kw3_sh3_sw2", (2, 2, 11, 9), 3, (2, 3), stride=(3, 2), pad=(1, 0)),
        conv_case(m, "repeated_kernel", (2, 2, 7, 9), 3, (3, 2), stride=(1, 2), pad=(1, 0), repeated=True),
        conv_case(m, "dil2_same", (2, 3, 9, 9), 4, (3, 3), pad=(2, 2), dilation=(2, 2)),
        conv_case(m, "dil2", (2, 3, 9, 10), 4, (3, 3), dilation=(2, 2)),
        conv_case(m, "dil2_s2_p1", (2, 3, 9, 11), 4, (3, 3), stride=(2, 2), pad=(1, 1), dilation=(2, 2)),
        conv_case(m, "dil3_s3", (2, 2, 13, 11), 3, (3, 3), stride=(3, 3), dilation=(3, 3)),
        conv_case(m, "dil2_kh3_kw2_s2", (2, 2, 11, 9), 3, (3, 2), stride=(2, 1), pad=(2, 1), dilation=(2, 2)),
        conv_case(m, "group2", (2, 4, 7, 9), 6, (3, 3), pad=(1, 1), group=2),
        conv_case(m, "group3_s2", (2, 6, 9, 7), 9, (3, 3), stride=(2, 2), group=3),
        conv_case(m, "group2_no_bias", (2, 4, 7, 9), 2, (1, 1), group=2, bias_term=False),
        conv_case(m, "depthwise", (2, 4, 7, 9), 4, (3, 3), pad=(1, 1), group=4),
        conv_case(m, "depthwise_mult2", (2, 3, 7, 9), 6, (3, 3), group=3),
        conv_case(m, "depthwise_mult3_s2_p1", (2, 2, 9, 8), 6, (3, 3), stride=(2, 2), pad=(1, 1), group=2),
        conv_case(
            m, "depthwise_dil2_s2", (2, 3, 11, 9), 3, (3, 3), stride=(2, 2), pad=(1, 2), dilation=(2, 2), group=3
        ),
        conv_case(m, "depthwise_no_bias", (2, 4, 6, 7), 4, (3, 3), stride=(2, 2), group=4, bias_term=False),
        conv_case(m, "no_bias", (2, 3, 7, 9), 4, (3, 3), stride=(2, 2), pad=(1, 1), bias_term=False),
        conv_case(m, "one_pixel", (2, 3, 1, 1), 4, (1, 1)),
        conv_case(m, "kernel_is_input", (2, 3, 5, 4), 4, (5, 4)),
        # C++'s (2 - 3) / 2 + 1 = 1 row: the window reads past the input, where im2col gives zeros.
        conv_case(m, "kernel_over_input", (2, 3, 2, 5), 4, (3, 3), stride=(2, 2), opencv=OPENCV_KERNEL_OVER_INPUT),
        # N-D convolutions: Caffe's num_spatial_axes = rank - 2.
        conv_case(m, "conv1d", (2, 3, 11), 4, (3,), stride=(2,), pad=(1,)),
        conv_case(m, "conv1d_dil2_group", (2, 4, 12), 6, (3,), dilation=(2,), group=2),
        conv_case(m, "conv3d", (2, 2, 5, 6, 7), 3, (3, 2, 3), stride=(2, 1, 2), pad=(1, 0, 1)),
        conv_case(
            m,
            "conv3d_group_dil",
            (2, 4, 6, 7, 5),
            4,
            (2, 2, 2),
            dilation=(2, 1, 2),
            group=2,
            bias_term=False,
            opencv=OPENCV_3D_GROUP_DILATION,
        ),
    ]


# --------------------------------------------------------------------------- Deconvolution


deconv_case = functools.partial(conv_case, layer_type="Deconvolution")


def deconvolution_cases() -> list[Case]:
    m = Maker(2)
    return [
        deconv_case(m, "k3", (2, 3, 5, 6), 4, (3, 3)),
        deconv_case(m, "k3_p1", (2, 3, 5, 6), 4, (3, 3), pad=(1, 1)),
        deconv_case(m, "k4_s2_p1", (2, 3, 5, 6), 4, (4, 4), stride=(2, 2), pad=(1, 1)),
        deconv_case(m, "k2_s2", (2, 3, 5, 7), 2, (2, 2), stride=(2, 2)),
        deconv_case(m, "k3_s3_p1", (2, 2, 4, 5), 3, (3, 3), stride=(3, 3), pad=(1, 1)),
        deconv_case(m, "k1_s3", (2, 3, 4, 5), 2, (1, 1), stride=(3, 3)),
        deconv_case(m, "k2_s3", (2, 3, 4, 5), 2, (2, 2), stride=(3, 3)),
        deconv_case(m, "k2_s3_p1", (2, 3, 4, 5), 2, (2, 2), stride=(3, 3), pad=(1, 1)),
        deconv_case(m, "pad_h1_w0", (2, 3, 5, 6), 4, (3, 3), stride=(2, 2), pad=(1, 0)),
        deconv_case(m, "kh3_kw2_sh1_sw2", (2, 3, 5, 6), 2, (3, 2), stride=(1, 2), pad=(0, 1)),
        deconv_case(m, "kh1_kw4_sh3_sw2", (2, 2, 4, 5), 3, (1, 4), stride=(3, 2), pad=(0, 1)),
        deconv_case(m, "group2", (2, 4, 5, 6), 6, (3, 3), stride=(2, 2), pad=(1, 1), group=2),
        deconv_case(m, "group4_depthwise", (2, 4, 5, 6), 4, (4, 4), stride=(2, 2), pad=(1, 1), group=4),
        deconv_case(m, "group3_mult2_no_bias", (2, 3, 4, 5), 6, (3, 3), stride=(3, 3), group=3, bias_term=False),
        deconv_case(m, "dil2", (2, 3, 5, 6), 2, (3, 3), dilation=(2, 2), opencv=OPENCV_DILATED_DECONV),
        deconv_case(m, "dil2_p2", (2, 3, 5, 6), 2, (3, 3), pad=(2, 2), dilation=(2, 2), opencv=OPENCV_DILATED_DECONV),
        deconv_case(
            m, "dil2_s2", (2, 3, 5, 6), 2, (3, 3), stride=(2, 2), dilation=(2, 2), opencv=OPENCV_DILATED_DECONV
        ),
        deconv_case(
            m,
            "dil3_s2_p1_group2",
            (2, 4, 4, 5),
            2,
            (2, 3),
            stride=(2, 3),
            pad=(1, 1),
            dilation=(3, 2),
            group=2,
            opencv=OPENCV_DILATED_DECONV,
        ),
        deconv_case(m, "no_bias", (2, 3, 5, 6), 4, (4, 4), stride=(2, 2), pad=(1, 1), bias_term=False),
        deconv_case(m, "deconv1d", (2, 3, 7), 4, (4,), stride=(2,), pad=(1,), opencv=OPENCV_ND_DECONV),
        deconv_case(
            m, "deconv3d", (2, 2, 3, 4, 5), 3, (2, 3, 2), stride=(2, 1, 2), pad=(0, 1, 1), opencv=OPENCV_ND_DECONV
        ),
    ]


# --------------------------------------------------------------------------- Pooling


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


# --------------------------------------------------------------------------- InnerProduct


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


# --------------------------------------------------------------------------- LRN and BatchNorm


# OpenCV's across-channel LRN does not apply k as Caffe does; real Caffe's blobs of
# golden/rand1022 (k: 2) agree with the formula (test_oracle_matches_real_caffe).
OPENCV_LRN_K = "OpenCV mishandles LRN's k != 1 across channels"
# Caffe's default alpha is 1; OpenCV uses another value when the prototxt leaves it out.
OPENCV_LRN_DEFAULT_ALPHA = "OpenCV's LRN has a different default alpha"


def lrn_cases() -> list[Case]:
    m = Maker(5)
    cases = []
    for size in (1, 3, 5):
        for alpha, beta, k in ((1e-4, 0.75, 1.0), (0.5, 0.75, 2.0), (2.0, 1.5, 0.5), (0.7, 0.5, 1.0)):
            tag = f"{size}_{alpha:g}_{beta:g}_{k:g}".replace(".", "p")
            across = {"local_size": size, "alpha": alpha, "beta": beta, "k": k}
            cases.append(
                m.single(
                    f"across_{tag}",
                    "LRN",
                    (2, 7, 4, 5),
                    {"lrn_param": across},
                    lambda x, a=across: oracle.lrn_across_channels(x, a["local_size"], a["alpha"], a["beta"], a["k"]),
                    opencv=OPENCV_LRN_K if k != 1 else None,
                )
            )
            within = {**across, "norm_region": "WITHIN_CHANNEL"}
            cases.append(
                m.single(
                    f"within_{tag}",
                    "LRN",
                    (2, 3, 6, 7),
                    {"lrn_param": within},
                    lambda x, a=within: oracle.lrn_within_channel(x, a["local_size"], a["alpha"], a["beta"]),
                )
            )
    # A window wider than the channels (5 over 3), and the defaults (size 5, alpha 1, beta 0.75, k 1).
    cases.append(
        m.single(
            "across_wider_than_channels",
            "LRN",
            (2, 3, 4, 4),
            {"lrn_param": {"local_size": 5}},
            lambda x: oracle.lrn_across_channels(x, 5, 1.0, 0.75, 1.0),
            opencv=OPENCV_LRN_DEFAULT_ALPHA,
        )
    )
    cases.append(
        m.single(
            "within_defaults",
            "LRN",
            (2, 2, 5, 5),
            {"lrn_param": {"norm_region": "WITHIN_CHANNEL"}},
            lambda x: oracle.lrn_within_channel(x, 5, 1.0, 0.75),
            opencv=OPENCV_LRN_DEFAULT_ALPHA,
        )
    )
    cases.append(
        m.single(
            "across_wider_than_channels_alpha",
            "LRN",
            (2, 3, 4, 4),
            {"lrn_param": {"local_size": 5, "alpha": 1.0}},
            lambda x: oracle.lrn_across_channels(x, 5, 1.0, 0.75, 1.0),
        )
    )
    return cases


def batch_norm_cases() -> list[Case]:
    m = Maker(6)
    cases = []
    for name, shape, factor, eps in (
        ("factor_1", (2, 4, 5, 3), 1.0, None),
        ("factor_999", (2, 4, 5, 3), 999.98, None),
        ("factor_0", (2, 3, 4, 4), 0.0, None),
        ("factor_0p5_eps_1e-3", (2, 3, 4, 4), 0.5, 1e-3),
        ("eps_0p1", (2, 3, 4, 4), 1.0, 0.1),
        ("bottom_2d", (2, 6), 2.0, None),
        ("bottom_3d", (2, 4, 5), 1.0, 1e-4),
    ):
        channels = shape[1]
        blobs = [
            m.array(channels) * factor,
            (m.array(channels, low=0.2, high=2.0) * factor).astype(np.float32),
            np.array([factor], np.float32),
        ]
        params = {"batch_norm_param": {"use_global_stats": True, **({"eps": eps} if eps is not None else {})}}
        cases.append(
            m.single(
                f"bn_{name}",
                "BatchNorm",
                shape,
                params,
                lambda x, mean, var, f, e=eps: oracle.batch_norm(x, mean, var, f, 1e-5 if e is None else e),
                blobs,
            )
        )
    return cases


# --------------------------------------------------------------------------- Scale, Bias, Eltwise


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
OPENCV_NEGATIVE_AXIS = "OpenCV's importer fails on this negative axis"
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


# --------------------------------------------------------------------------- blob plumbing


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


def softmax_cases() -> list[Case]:
    m = Maker(12)
    cases = []
    for name, shape, axis in (
        ("softmax_c", (2, 4, 3, 5), None),
        ("softmax_h", (2, 4, 3, 5), 2),
        ("softmax_w", (2, 4, 3, 5), 3),
        ("softmax_minus1", (2, 4, 3, 5), -1),
        ("softmax_minus3", (2, 4, 3, 5), -3),
        ("softmax_2d", (2, 7), None),
        ("softmax_3d_last", (2, 3, 6), 2),
        ("softmax_5d", (2, 3, 2, 3, 2), 3),
    ):
        x = m.array(*shape) * 3
        params = {"softmax_param": {"axis": axis}} if axis is not None else {}
        cases.append(m.single(name, "Softmax", x, params, lambda x, a=axis: oracle.softmax(x, 1 if a is None else a)))
    return cases


# --------------------------------------------------------------------------- neurons


OPENCV_NO_CLIP = "OpenCV has no Clip layer"
OPENCV_NO_THRESHOLD = "OpenCV has no Threshold layer"
# BVLC's log_layer.cpp computes log(scale * x + shift) / log(base); OpenCV ignores all three.
OPENCV_LOG_PARAMS = "OpenCV's Log ignores base, scale and shift"
# BVLC's swish_layer.cpp computes x * sigmoid(beta * x); OpenCV ignores beta.
OPENCV_SWISH_BETA = "OpenCV's Swish ignores beta"


def neuron_cases() -> list[Case]:
    m = Maker(13)
    shape = (2, 3, 4, 5)
    cases = []

    def add(name, layer_type, params, reference, x=None, blobs=(), opencv=None):
        x = m.array(*shape) * 2 if x is None else x
        cases.append(m.single(name, layer_type, x, params, reference, blobs, opencv))

    for slope in (None, 0.0, 0.1, 0.5, 1.5, -0.3):
        params = {} if slope is None else {"relu_param": {"negative_slope": slope}}
        add(
            f"relu_{slope}".replace(".", "p").replace("-", "minus"),
            "ReLU",
            params,
            lambda x, a=slope or 0.0: oracle.relu(x, a),
        )
    for name, prelu_shape, shared in (
        ("4d", shape, False),
        ("4d_shared", shape, True),
        ("2d", (2, 6), False),
        ("3d", (2, 4, 5), False),
        ("2d_shared", (2, 6), True),
    ):
        slopes = m.array(1 if shared else prelu_shape[1], low=-0.5, high=0.5)
        params = {"prelu_param": {"channel_shared": True}} if shared else {}
        add(
            f"prelu_{name}",
            "PReLU",
            params,
            lambda x, a, sh=shared: oracle.prelu(x, a, sh),
            m.array(*prelu_shape),
            [slopes],
        )
    for alpha in (None, 0.5, 2.0):
        params = {} if alpha is None else {"elu_param": {"alpha": alpha}}
        add(f"elu_{alpha}".replace(".", "p"), "ELU", params, lambda x, a=alpha or 1.0: oracle.elu(x, a))
    add("sigmoid", "Sigmoid", {}, oracle.sigmoid, m.array(*shape) * 5)
    add("tanh", "TanH", {}, lambda x: np.tanh(x.astype(np.float64)), m.array(*shape) * 3)
    add("absval", "AbsVal", {}, np.abs)
    add("bnll", "BNLL", {}, oracle.bnll, m.array(*shape) * 20)  # large |x|: Caffe's stable branches
    positive = m.array(*shape, low=0.1, high=3.0)
    for name, p, x in (
        ("square_half_plus1", {"power": 2.0, "scale": 0.5, "shift": 1.0}, None),
        ("cube", {"power": 3.0, "scale": 1.5}, None),
        ("sqrt", {"power": 0.5}, positive),
        ("inverse", {"power": -1.0, "shift": 0.5}, positive),
        ("linear", {"scale": 2.0, "shift": -1.0}, None),
        ("power0", {"power": 0.0, "scale": 3.0}, None),
        ("scale0", {"power": 2.0, "scale": 0.0, "shift": 3.0}, None),
        ("defaults", {}, None),
    ):
        full = {"power": 1.0, "scale": 1.0, "shift": 0.0, **p}
        add(
            f"power_{name}",
            "Power",
            {"power_param": p} if p else {},
            lambda x, f=full: oracle.power(x, f["power"], f["scale"], f["shift"]),
            x,
        )
    for name, p in (
        ("e", {}),
        ("base2", {"base": 2.0}),
        ("scale_shift", {"scale": 0.5, "shift": 1.0}),
        ("base10_shift", {"base": 10.0, "scale": -0.3, "shift": -1.0}),
    ):
        full = {"base": -1.0, "scale": 1.0, "shift": 0.0, **p}
        add(
            f"exp_{name}",
            "Exp",
            {"exp_param": p} if p else {},
            lambda x, f=full: oracle.exp(x, f["base"], f["scale"], f["shift"]),
        )
    for name, p in (
        ("e", {}),
        ("base2", {"base": 2.0, "scale": 2.0, "shift": 1.0}),
        ("base10", {"base": 10.0}),
        ("scale_shift", {"scale": 0.5, "shift": 0.25}),
    ):
        full = {"base": -1.0, "scale": 1.0, "shift": 0.0, **p}
        add(
            f"log_{name}",
            "Log",
            {"log_param": p} if p else {},
            lambda x, f=full: oracle.log(x, f["base"], f["scale"], f["shift"]),
            positive,
            opencv=OPENCV_LOG_PARAMS if p else None,
        )
    for name, low, high in (("sym", -0.3, 0.4), ("relu6", 0.0, 6.0)):
        add(
            f"clip_{name}",
            "Clip",
            {"clip_param": {"min": low, "max": high}},
            lambda x, lo=low, hi=high: oracle.clip(x, lo, hi),
            m.array(*shape) * 4,
            opencv=OPENCV_NO_CLIP,
        )
    for beta in (None, 2.0, 0.5):
        params = {} if beta is None else {"swish_param": {"beta": beta}}
        add(
            f"swish_{beta}".replace(".", "p"),
            "Swish",
            params,
            lambda x, b=beta or 1.0: oracle.swish(x, b),
            opencv=OPENCV_SWISH_BETA if beta not in (None, 1.0) else None,
        )
    for t in (None, 0.5, -0.2):
        params = {} if t is None else {"threshold_param": {"threshold": t}}
        add(
            f"threshold_{t}".replace(".", "p").replace("-", "minus"),
            "Threshold",
            params,
            lambda x, t=t or 0.0: oracle.threshold(x, t),
            opencv=OPENCV_NO_THRESHOLD,
        )
    for ratio in (None, 0.3, 0.0):
        params = {} if ratio is None else {"dropout_param": {"dropout_ratio": ratio}}
        add(f"dropout_{ratio}".replace(".", "p"), "Dropout", params, lambda x: x)  # TEST phase: a copy
    return cases


# --------------------------------------------------------------------------- in-place chains


def inplace_cases() -> list[Case]:
    """Several in-place layers on one blob; consumers mid-chain see the value of that moment, and a
    requested blob has its value after the whole forward pass (as pycaffe's net.blobs shows it)."""
    m = Maker(14)
    cases = []

    # conv -> ReLU -> Scale -> Dropout, all in place on "chain".
    x = m.array(2, 3, 5, 6)
    w, b, gamma, beta = m.array(4, 3, 3, 3), m.array(4), m.array(4), m.array(4)
    conv = oracle.convolution(x, w, b, (1, 1), (1, 1), (1, 1))
    final = oracle.relu(conv) * gamma.reshape(1, 4, 1, 1) + beta.reshape(1, 4, 1, 1)
    cases.append(
        Case(
            "chain",
            [
                input_layer("chain_x", x.shape),
                Layer(
                    "chain",
                    "Convolution",
                    ["chain_x"],
                    ["chain"],
                    {"convolution_param": {"num_output": 4, "kernel_size": 3, "pad": 1}},
                    [w, b],
                ),
                Layer("chain_relu", "ReLU", ["chain"], ["chain"]),
                Layer(
                    "chain_scale", "Scale", ["chain"], ["chain"], {"scale_param": {"bias_term": True}}, [gamma, beta]
                ),
                Layer("chain_drop", "Dropout", ["chain"], ["chain"]),
            ],
            {"chain_x": x},
            {"chain": final},
        )
    )

    # A consumer between two in-place layers: "mid_pool" reads the ReLU'd value, "mid" ends doubled.
    x = m.array(2, 3, 5, 5)
    w = m.array(4, 3, 3, 3)
    relu = oracle.relu(oracle.convolution(x, w, None, (1, 1), (1, 1), (1, 1)))
    pooled = oracle.pooling(relu, "max", (3, 3), (1, 1), (1, 1))
    doubled = 2 * relu + 0.5
    cases.append(
        Case(
            "mid",
            [
                input_layer("mid_x", x.shape),
                Layer(
                    "mid",
                    "Convolution",
                    ["mid_x"],
                    ["mid"],
                    {"convolution_param": {"num_output": 4, "kernel_size": 3, "pad": 1, "bias_term": False}},
                    [w],
                ),
                Layer("mid_relu", "ReLU", ["mid"], ["mid"]),
                Layer(
                    "mid_pool",
                    "Pooling",
                    ["mid"],
                    ["mid_pool"],
                    {"pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 1, "pad": 1}},
                ),
                Layer("mid_power", "Power", ["mid"], ["mid"], {"power_param": {"scale": 2.0, "shift": 0.5}}),
                Layer("mid_sum", "Eltwise", ["mid", "mid_pool"], ["mid_sum"]),
            ],
            {"mid_x": x},
            {"mid": doubled, "mid_pool": pooled, "mid_sum": doubled + pooled},
        )
    )

    # BatchNorm + Scale + ReLU in place (the ResNet pattern), the blob requested mid-net.
    x = m.array(2, 4, 3, 5)
    mean, var, gamma, beta = m.array(4), m.array(4, low=0.5, high=2.0), m.array(4), m.array(4)
    normalized = oracle.batch_norm(x, mean, var, [1.0], 1e-5)
    activated = oracle.relu(normalized * gamma.reshape(1, 4, 1, 1) + beta.reshape(1, 4, 1, 1))
    wf = m.array(3, 60)
    cases.append(
        Case(
            "resnet",
            [
                input_layer("resnet_x", x.shape),
                Layer(
                    "resnet",
                    "Convolution",
                    ["resnet_x"],
                    ["resnet"],
                    {"convolution_param": {"num_output": 4, "kernel_size": 1, "bias_term": False}},
                    [np.eye(4, dtype=np.float32).reshape(4, 4, 1, 1)],
                ),
                Layer("resnet_bn", "BatchNorm", ["resnet"], ["resnet"], {}, [mean, var, np.ones(1, np.float32)]),
                Layer(
                    "resnet_scale", "Scale", ["resnet"], ["resnet"], {"scale_param": {"bias_term": True}}, [gamma, beta]
                ),
                Layer("resnet_relu", "ReLU", ["resnet"], ["resnet"]),
                Layer(
                    "resnet_fc",
                    "InnerProduct",
                    ["resnet"],
                    ["resnet_fc"],
                    {"inner_product_param": {"num_output": 3, "bias_term": False}},
                    [wf],
                ),
            ],
            {"resnet_x": x},
            {"resnet": activated, "resnet_fc": oracle.inner_product(activated, wf, None)},
        )
    )

    # In place on a Split's top, and on a net input.
    x = m.array(2, 3, 4, 4)
    cases.append(
        Case(
            "split",
            [
                input_layer("split_x", x.shape),
                Layer("split_x_abs", "AbsVal", ["split_x"], ["split_x"]),
                Layer("split", "Split", ["split_x"], ["split_a", "split_b"]),
                Layer("split_tanh", "TanH", ["split_a"], ["split_a"]),
                Layer(
                    "split_prod",
                    "Eltwise",
                    ["split_a", "split_b"],
                    ["split_prod"],
                    {"eltwise_param": {"operation": "PROD"}},
                ),
            ],
            {"split_x": x},
            {
                "split_x": np.abs(x),
                "split_a": np.tanh(np.abs(x)),
                "split_b": np.abs(x),
                "split_prod": np.tanh(np.abs(x)) * np.abs(x),
            },
        )
    )
    return cases


# --------------------------------------------------------------------------- the oracle itself


def _geometry(p, name: str, hw: str | None, default: int) -> tuple[int, int]:
    """A 2-D geometry field as Caffe reads it: ``<hw>_h``/``<hw>_w``, else the (repeated) field."""
    if hw is not None and p.HasField(f"{hw}_h"):
        return getattr(p, f"{hw}_h"), getattr(p, f"{hw}_w")
    value = getattr(p, name)
    if isinstance(value, int):
        return (value, value) if p.HasField(name) else (default, default)
    values = list(value) or [default]
    return (values[0], values[-1])


def _oracle_for(layer, blobs):
    """The numpy oracle of one real-Caffe layer (the types OpenCV gets wrong in places)."""
    if layer.type in ("Convolution", "Deconvolution"):
        p = layer.convolution_param
        geometry = (
            _geometry(p, "stride", "stride", 1),
            _geometry(p, "pad", "pad", 0),
            _geometry(p, "dilation", None, 1),
            p.group,
        )
        function = oracle.convolution if layer.type == "Convolution" else oracle.deconvolution
        return lambda x: function(x, blobs[0], blobs[1] if p.bias_term else None, *geometry)
    if layer.type == "Pooling":
        p = layer.pooling_param
        if p.global_pooling:
            return lambda x: oracle.pooling(x, ("max", "ave")[p.pool], x.shape[2:], (1, 1), (0, 0))
        kernel = _geometry(p, "kernel_size", "kernel", 0)
        return lambda x: oracle.pooling(
            x,
            ("max", "ave")[p.pool],
            kernel,
            _geometry(p, "stride", "stride", 1),
            _geometry(p, "pad", "pad", 0),
            p.round_mode == p.CEIL,
        )
    if layer.type == "LRN":
        p = layer.lrn_param
        if p.norm_region == p.WITHIN_CHANNEL:
            return lambda x: oracle.lrn_within_channel(x, p.local_size, p.alpha, p.beta)
        return lambda x: oracle.lrn_across_channels(x, p.local_size, p.alpha, p.beta, p.k)
    return None


@requires_shared
@pytest.mark.parametrize("case_dir", case_dirs("rand"))
def test_oracle_matches_real_caffe(case_dir):
    """The numpy formulas give real Caffe's blobs, fed real Caffe's bottoms: they may judge OpenCV.

    Layers whose bottom or top is rewritten later (in place) are skipped, since Caffe recorded
    only each blob's final value.
    """
    import h5py

    from caffe2keras.caffe import read_net

    layers = list(read_net(case_dir / "deploy.prototxt").layer)
    with h5py.File(case_dir / "weights.caffemodel.h5") as f:
        weights = {
            name: [np.asarray(f["data"][name][str(i)]) for i in range(len(f["data"][name]))] for name in f["data"]
        }
    checked = 0
    for index, layer in enumerate(layers):
        rewritten = {top for later in layers[index + 1 :] for top in later.top}
        function = _oracle_for(layer, weights.get(layer.name, []))
        if function is None or rewritten & {*layer.bottom, *layer.top}:
            continue
        x = np.load(case_dir / f"blob_{layer.bottom[0]}.npy")
        assert_matches(function(x), np.load(case_dir / f"blob_{layer.top[0]}.npy"), f"{layer.name} ({layer.type})")
        checked += 1
    if not checked:
        pytest.skip("no layer of an oracle-checked type with recorded bottom and top")


FAMILIES = {
    "convolution": convolution_cases,
    "deconvolution": deconvolution_cases,
    "pooling": pooling_cases,
    "inner_product": inner_product_cases,
    "lrn": lrn_cases,
    "batch_norm": batch_norm_cases,
    "scale_bias": scale_bias_cases,
    "eltwise": eltwise_cases,
    "concat_slice": concat_slice_cases,
    "reshape": reshape_cases,
    "crop": crop_cases,
    "softmax": softmax_cases,
    "neurons": neuron_cases,
    "inplace": inplace_cases,
}


@pytest.fixture(autouse=True, scope="module")
def quick_jax_compiles():
    """Compile JAX programs without XLA's optimization passes while the sweeps run.

    Hundreds of small distinct layers cost one XLA compile each (when Keras initializes a reloaded
    layer's variables, and on the first call); unoptimized compiles are ~7x faster. Results are the
    same computation, within float rounding far below the tolerance.
    """
    import keras

    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    """Each family written once per module, with OpenCV's outputs (they do not depend on the format)."""
    built = {}

    def get(name: str) -> tuple[Family, dict]:
        if name not in built:
            family = Family.write(name, FAMILIES[name](), tmp_path_factory.mktemp(name))
            built[name] = family, family.opencv_outputs() if cv2 else {}
        return built[name]

    return get


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("name", list(FAMILIES))
def test_sweep(name, data_format, families, tmp_path):
    family, opencv = families(name)
    check_family(family, data_format, tmp_path, opencv)
