"""Seeded random nets: each converts and agrees with OpenCV's Caffe runtime, and its weights
file cut short is refused with an error naming the file or the layer left without weights.

(Robustness against arbitrary bytes is fuzzed elsewhere; these check the numbers.)
"""

from __future__ import annotations

import numpy as np
import pytest

import caffe2keras
from caffe2keras.errors import ModelFileError, WeightsError
from caffe2keras.synthetic import synthetic_weights
from tests.golden import assert_matches
from tests.nets import convert_and_run, layer, net, opencv_forward, write_net

cv2 = pytest.importorskip("cv2")

SEEDS = range(8)


def random_body(rng: np.random.Generator, channels: int, size: int) -> tuple[str, str]:
    """2 to 5 layers OpenCV computes as Caffe does, then an InnerProduct; (body, last layer's name)."""
    body, bottom = "", "data"
    for index in range(int(rng.integers(2, 6))):
        name = f"l{index}"
        kind = rng.choice(["Convolution", "Pooling", "ReLU", "TanH", "Sigmoid"])
        if kind == "Convolution":
            kernel, stride, pad = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
            kernel = min(kernel, size + 2 * pad)
            channels = int(rng.integers(1, 7))
            params = (
                f"convolution_param {{ num_output: {channels} kernel_size: {kernel} stride: {stride} pad: {pad} "
                f"bias_term: {str(bool(rng.integers(2))).lower()} }}"
            )
            size = (size + 2 * pad - kernel) // stride + 1
        elif kind == "Pooling":
            # No padding: OpenCV clips padded windows by another rule than Caffe's (see the sweeps).
            kernel, stride = min(int(rng.integers(2, 4)), size), int(rng.integers(1, 3))
            method = rng.choice(["MAX", "AVE"])
            params = f"pooling_param {{ pool: {method} kernel_size: {kernel} stride: {stride} }}"
            size = -(-(size - kernel) // stride) + 1  # Caffe rounds up
        elif kind == "ReLU":
            params = f"relu_param {{ negative_slope: {rng.choice([0.0, 0.1])} }}"
        else:
            params = ""
        body += layer(str(kind), params, bottoms=(bottom,), tops=(name,), name=name)
        bottom = name
    body += layer(
        "InnerProduct",
        f"inner_product_param {{ num_output: {int(rng.integers(1, 9))} }}",
        bottoms=(bottom,),
        tops=("fc",),
        name="fc",
    )
    return body, "fc"


def random_net(seed: int) -> tuple[str, np.ndarray, str]:
    rng = np.random.default_rng(seed)
    channels, size = int(rng.integers(1, 5)), int(rng.integers(5, 13))
    body, last = random_body(rng, channels, size)
    x = rng.standard_normal((2, channels, size, size)).astype(np.float32)
    return net({"data": x.shape}, body), x, last


@pytest.mark.parametrize("seed", SEEDS)
def test_a_generated_net_matches_opencv(seed, tmp_path):
    text, x, last = random_net(seed)
    prototxt, _ = write_net(tmp_path, text)
    weights = synthetic_weights(prototxt, seed=seed)
    (reference,) = opencv_forward(tmp_path, text, {"data": x}, [last], weights)
    (actual,) = convert_and_run(tmp_path, text, [x], "channels_last", weights)
    assert_matches(actual, reference, f"seed {seed}: {last}")


@pytest.mark.parametrize("seed", SEEDS)
def test_a_generated_nets_weights_cut_short_are_refused(seed, tmp_path):
    text, _, _ = random_net(seed)
    prototxt, _ = write_net(tmp_path, text)
    _, weights = write_net(tmp_path, text, synthetic_weights(prototxt, seed=seed))
    data = weights.read_bytes()
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(data[: int(np.random.default_rng(seed).integers(1, len(data)))])
    with pytest.raises((ModelFileError, WeightsError)) as refused:
        caffe2keras.convert(prototxt, cut)
    assert "cut.caffemodel" in str(refused.value) or "weights file" in str(refused.value)
