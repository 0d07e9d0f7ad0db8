"""Sweeps of Softmax and the neurons against Caffe's formulas (tests/oracle.py) and OpenCV (see tests/sweep.py)."""

from __future__ import annotations

import numpy as np

from tests import oracle
from tests.sweep import Case, Maker


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


def test_softmax(check_sweep):
    check_sweep(softmax_cases)


def test_neuron(check_sweep):
    check_sweep(neuron_cases)
