"""Sweeps of in-place chains against Caffe's formulas (tests/oracle.py) and OpenCV (see tests/sweep.py)."""

from __future__ import annotations

import numpy as np

from tests import oracle
from tests.oracle import Layer, input_layer
from tests.sweep import Case, Maker


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


def test_inplace(check_sweep):
    check_sweep(inplace_cases)
