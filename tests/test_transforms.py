"""The Caffe-to-Keras blob rearrangements, checked element by element (exact equality)."""

from __future__ import annotations

import itertools

import numpy as np

from caffe2keras.converters.transforms import (
    batch_norm_statistics,
    dense_kernel_to_keras,
    depthwise_kernel_to_keras,
    kernel_to_keras,
)

rng = np.random.default_rng(0)


def test_convolution_kernel_is_spatial_then_input_then_output():
    caffe = rng.standard_normal((4, 3, 2, 5)).astype(np.float32)  # (out, in, kh, kw)
    keras = kernel_to_keras(caffe)
    assert keras.shape == (2, 5, 3, 4)
    for o, i, y, x in itertools.product(*map(range, caffe.shape)):
        assert keras[y, x, i, o] == caffe[o, i, y, x]


def test_deconvolution_kernel_is_spatial_then_output_then_input():
    caffe = rng.standard_normal((3, 2, 4)).astype(np.float32)  # 1-D: (in, out, k)
    keras = kernel_to_keras(caffe)
    assert keras.shape == (4, 2, 3)  # Conv1DTranspose: (k, out, in)
    for i, o, k in itertools.product(*map(range, caffe.shape)):
        assert keras[k, o, i] == caffe[i, o, k]


def test_depthwise_kernel_groups_outputs_by_input_channel():
    channels, multiplier = 3, 2
    caffe = rng.standard_normal((channels * multiplier, 1, 2, 3)).astype(np.float32)
    keras = depthwise_kernel_to_keras(caffe, channels)
    assert keras.shape == (2, 3, channels, multiplier)
    for o, y, x in itertools.product(range(channels * multiplier), range(2), range(3)):
        assert keras[y, x, o // multiplier, o % multiplier] == caffe[o, 0, y, x]


def test_dense_kernel_rows_follow_keras_flatten_order():
    c, h, w, outputs = 3, 2, 4, 5
    # Small integers: every product and sum is exact in float32.
    weight = rng.integers(-3, 4, (outputs, c * h * w)).astype(np.float32)
    x = rng.integers(-3, 4, (c, h, w)).astype(np.float32)
    expected = weight @ x.reshape(-1)  # Caffe flattens C, H, W
    hwc = dense_kernel_to_keras(weight, features=(c, h, w), order=(1, 2, 0))
    assert np.array_equal(x.transpose(1, 2, 0).reshape(-1) @ hwc, expected)
    transposed = dense_kernel_to_keras(
        np.ascontiguousarray(weight.T), transpose=True, features=(c, h, w), order=(1, 2, 0)
    )
    assert np.array_equal(transposed, hwc)
    chw = dense_kernel_to_keras(weight, features=(c, h, w), order=(0, 1, 2))
    assert np.array_equal(chw, weight.T)
    assert np.array_equal(dense_kernel_to_keras(weight), weight.T)


def test_batch_norm_statistics_divide_by_the_factor_as_caffe():
    mean, variance = np.float32([2.0, -4.0]), np.float32([8.0, 1.0])
    got_mean, got_variance = batch_norm_statistics(mean, variance, np.float32([4.0]))
    assert np.array_equal(got_mean, [0.5, -1.0]) and np.array_equal(got_variance, [2.0, 0.25])
    zero_mean, zero_variance = batch_norm_statistics(mean, variance, np.float32([0.0]))
    assert not zero_mean.any() and not zero_variance.any()
    assert batch_norm_statistics(mean, variance, None) == (mean, variance)
