"""Sweeps of Convolution and Deconvolution against Caffe's formulas (tests/oracle.py) and OpenCV (see tests/sweep.py)."""

from __future__ import annotations

import functools

from tests import oracle
from tests.oracle import spatial_fields
from tests.sweep import OPENCV_KERNEL_OVER_INPUT, Case, Maker

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


def test_convolution(check_sweep):
    check_sweep(convolution_cases)


def test_deconvolution(check_sweep):
    check_sweep(deconvolution_cases)
