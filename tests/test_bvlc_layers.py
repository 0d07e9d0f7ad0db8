"""BVLC layers beyond the classic set, each against an independent oracle.

The references are written here from Caffe's own loops (``src/caffe/layers/*.cpp``),
or are OpenCV's Caffe importer where it implements the layer as Caffe does.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import caffe2keras
from tests import oracle
from tests.golden import assert_matches
from tests.nets import convert_and_run, layer, net, opencv_forward, write_net
from tests.shared import FORMATS

RNG = np.random.default_rng(20240607)


def single(type_: str, params: str, x: np.ndarray, data_format, tmp_path, layers=()) -> np.ndarray:
    text = net({"data": x.shape}, layer(type_, params))
    return convert_and_run(tmp_path, text, [x], data_format, layers)[0]


# ---------------------------------------------------------------- ArgMax


def caffe_argmax(x: np.ndarray, top_k: int, out_max_val: bool, axis: int | None) -> np.ndarray:
    """ArgMaxLayer::Forward_cpu: rank (value, index) pairs with std::greater, keep top_k."""
    if axis is None:
        dim, axis_dist = math.prod(x.shape[1:]), 1
        out_shape = [1] * max(x.ndim, 3)
        out_shape[0], out_shape[2] = x.shape[0], top_k
        if out_max_val:
            out_shape[1] = 2
    else:
        dim, axis_dist = x.shape[axis], math.prod(x.shape[axis + 1 :])
        out_shape = list(x.shape)
        out_shape[axis] = top_k
    data = x.ravel()
    top = np.zeros(math.prod(out_shape), np.float32)
    for i in range(x.size // dim):
        pairs = [(data[(i // axis_dist * dim + j) * axis_dist + i % axis_dist], j) for j in range(dim)]
        ranked = sorted(pairs, reverse=True)[:top_k]
        for j, (value, index) in enumerate(ranked):
            if axis is None:
                top[2 * i * top_k + j if out_max_val else i * top_k + j] = index
                if out_max_val:
                    top[2 * i * top_k + top_k + j] = value
            else:
                top[(i // axis_dist * top_k + j) * axis_dist + i % axis_dist] = value if out_max_val else index
    return top.reshape(out_shape)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(
    "shape, params",
    [
        ((2, 3, 4, 5), "top_k: 1"),
        ((2, 3, 4, 5), "top_k: 4 out_max_val: true"),
        ((3, 7), "top_k: 3 out_max_val: true"),
        ((2, 5, 3), "top_k: 2"),
        ((2, 3, 4, 5), "axis: 1 top_k: 2"),
        ((2, 3, 4, 5), "axis: 2 top_k: 3 out_max_val: true"),
        ((4, 6), "axis: -1 top_k: 6"),
    ],
)
def test_argmax_ranks_like_caffe_partial_sort(shape, params, data_format, tmp_path):
    # Few distinct values: many ties, which Caffe breaks toward the larger index.
    x = RNG.integers(0, 4, shape).astype(np.float32)
    p = caffe2keras.caffe.parse_net_text(net({"data": shape}, layer("ArgMax", f"argmax_param {{ {params} }}")))
    q = p.layer[0].argmax_param
    reference = caffe_argmax(x, q.top_k, q.out_max_val, q.axis % len(shape) if q.HasField("axis") else None)
    actual = single("ArgMax", f"argmax_param {{ {params} }}", x, data_format, tmp_path)
    np.testing.assert_array_equal(actual, reference)


def test_argmax_across_the_batch_is_refused(tmp_path):
    prototxt, _ = write_net(tmp_path, net({"data": (2, 3)}, layer("ArgMax", "argmax_param { axis: 0 }")))
    with pytest.raises(caffe2keras.UnsupportedParameterError, match="argmax_param.axis=0"):
        caffe2keras.convert(prototxt)


# ---------------------------------------------------------------- Reduction

OPERATIONS = {
    "SUM": np.sum,
    "ASUM": lambda v, axis: np.abs(v).sum(axis),
    "SUMSQ": lambda v, axis: (v * v).sum(axis),
    "MEAN": np.mean,
}


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(
    "operation, axis, coeff",
    [("SUM", 1, 1.0), ("ASUM", 2, -0.5), ("SUMSQ", 3, 2.0), ("MEAN", -1, 1.0), ("MEAN", 1, 3.0)],
)
def test_reduction_reduces_every_axis_from_axis_on(operation, axis, coeff, data_format, tmp_path):
    shape = (2, 3, 4, 5)
    x = RNG.standard_normal(shape).astype(np.float32)
    params = f"reduction_param {{ operation: {operation} axis: {axis} coeff: {coeff} }}"
    first = axis % len(shape)
    rows = x.reshape(math.prod(shape[:first]), -1).astype(np.float64)
    reference = (OPERATIONS[operation](rows, axis=1) * coeff).reshape(shape[:first])
    assert_matches(single("Reduction", params, x, data_format, tmp_path), reference, f"Reduction {params}")


def test_reduction_of_the_whole_batch_is_refused(tmp_path):
    prototxt, _ = write_net(tmp_path, net({"data": (2, 3)}, layer("Reduction")))
    with pytest.raises(caffe2keras.UnsupportedParameterError, match="reduction_param.axis"):
        caffe2keras.convert(prototxt)


# ---------------------------------------------------------------- Tile


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(
    "shape, axis, tiles",
    [((2, 3, 4, 5), 1, 3), ((2, 3, 4, 5), 2, 2), ((2, 3, 4, 5), -1, 2), ((2, 3), 1, 4), ((2, 3, 4), 2, 1)],
)
def test_tile_copies_the_inner_block(shape, axis, tiles, data_format, tmp_path):
    x = RNG.standard_normal(shape).astype(np.float32)
    first = axis % len(shape)
    # TileLayer: for each outer index, copy the block from `axis` on `tiles` times.
    outer, inner = math.prod(shape[:first]), math.prod(shape[first:])
    out_shape = tuple(d * tiles if i == first else d for i, d in enumerate(shape))
    reference = np.broadcast_to(x.reshape(outer, 1, inner), (outer, tiles, inner)).reshape(out_shape)
    actual = single("Tile", f"tile_param {{ axis: {axis} tiles: {tiles} }}", x, data_format, tmp_path)
    np.testing.assert_array_equal(actual, reference)


# ---------------------------------------------------------------- MVN


def caffe_mvn(x: np.ndarray, across_channels: bool, normalize_variance: bool, eps: float) -> np.ndarray:
    """MVNLayer::Forward_cpu: per item (or item and channel), eps added to the standard deviation."""
    legacy = x.reshape(*x.shape, *(1,) * (4 - x.ndim)).astype(np.float64)
    axes = (1, 2, 3) if across_channels else (2, 3)
    centred = legacy - legacy.mean(axis=axes, keepdims=True)
    if not normalize_variance:
        return centred
    return centred / (np.sqrt((centred**2).mean(axis=axes, keepdims=True)) + eps)


MVN_CASES = [
    ((2, 3, 5, 7), True, True, 1e-9),
    ((2, 3, 5, 7), False, True, 1e-9),
    ((2, 3, 5, 7), True, False, 1e-9),
    ((2, 3, 5, 7), False, True, 0.1),
    ((3, 4), True, True, 0.5),
    ((2, 3, 5), False, True, 1e-3),
]


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("shape, across, normalize, eps", MVN_CASES)
def test_mvn_adds_eps_to_the_standard_deviation(shape, across, normalize, eps, data_format, tmp_path):
    x = (RNG.standard_normal(shape) * 2 + 1).astype(np.float32)
    params = (
        f"mvn_param {{ across_channels: {str(across).lower()} "
        f"normalize_variance: {str(normalize).lower()} eps: {eps} }}"
    )
    actual = single("MVN", params, x, data_format, tmp_path)
    assert_matches(actual, caffe_mvn(x, across, normalize, eps), f"MVN {params}")


@pytest.mark.parametrize("across", [True, False])
def test_mvn_matches_opencv(across, tmp_path):
    # OpenCV adds eps under the square root instead, so it only agrees when eps is negligible.
    x = (RNG.standard_normal((2, 3, 6, 5)) * 3 - 1).astype(np.float32)
    text = net({"data": x.shape}, layer("MVN", f"mvn_param {{ across_channels: {str(across).lower()} }}"))
    (reference,) = opencv_forward(tmp_path, text, {"data": x}, ["l"])
    for data_format in FORMATS:
        assert_matches(
            convert_and_run(tmp_path, text, [x], data_format)[0], reference, f"MVN vs OpenCV ({data_format})"
        )


# ---------------------------------------------------------------- BatchNorm with the batch's statistics


def batch_norm_blobs(channels: int) -> list[np.ndarray]:
    # Stored statistics that would give other numbers if they were used.
    return [np.full(channels, 5, np.float32), np.full(channels, 7, np.float32), np.array([2], np.float32)]


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("shape, eps", [((4, 3, 5, 6), 1e-5), ((4, 3, 5, 6), 0.3), ((6, 5), 1e-3), ((5, 2, 7), 1e-5)])
def test_batch_norm_with_local_stats_uses_the_batch(shape, eps, data_format, tmp_path):
    x = (RNG.standard_normal(shape) * 3 + 2).astype(np.float32)
    params = f"batch_norm_param {{ use_global_stats: false eps: {eps} }}"
    layers = [("l", "BatchNorm", batch_norm_blobs(shape[1]))]
    axes = tuple(a for a in range(len(shape)) if a != 1)
    centred = x.astype(np.float64) - x.mean(axis=axes, keepdims=True)
    reference = centred / np.sqrt((centred**2).mean(axis=axes, keepdims=True) + eps)
    assert_matches(single("BatchNorm", params, x, data_format, tmp_path, layers), reference, f"BatchNorm {shape}")


# ---------------------------------------------------------------- Embed


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("shape, bias_term", [((5,), True), ((3, 4), True), ((2, 3, 4), False), ((2, 2, 3, 2), True)])
def test_embed_looks_up_truncated_indices(shape, bias_term, data_format, tmp_path):
    vocabulary, width = 7, 3
    # Caffe casts each float to int: 2.9 reads row 2.
    x = (RNG.integers(0, vocabulary, shape) + RNG.uniform(0, 0.95, shape)).astype(np.float32)
    table = RNG.standard_normal((vocabulary, width)).astype(np.float32)
    bias = RNG.standard_normal(width).astype(np.float32)
    blobs = [table, bias] if bias_term else [table]
    params = f"embed_param {{ num_output: {width} input_dim: {vocabulary} bias_term: {str(bias_term).lower()} }}"
    reference = table[x.astype(np.int64)] + (bias if bias_term else 0)
    actual = single("Embed", params, x, data_format, tmp_path, [("l", "Embed", blobs)])
    assert_matches(actual, reference, f"Embed {shape}")


# ---------------------------------------------------------------- SPP


def caffe_spp(x: np.ndarray, pyramid_height: int, method: str) -> np.ndarray:
    levels = []
    for level in range(pyramid_height):
        bins = 2**level
        kernel = [math.ceil(n / bins) for n in x.shape[2:]]
        pad = [(k * bins - n + 1) // 2 for k, n in zip(kernel, x.shape[2:])]
        levels.append(oracle.pooling(x, method, kernel, kernel, pad))
    if pyramid_height == 1:
        return levels[0]
    return np.concatenate([level.reshape(x.shape[0], -1) for level in levels], axis=1)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(
    "shape, height, method",
    [
        ((2, 3, 13, 9), 3, "MAX"),
        ((2, 3, 13, 9), 3, "AVE"),
        ((1, 4, 7, 7), 2, "AVE"),
        ((2, 2, 6, 11), 2, "MAX"),
        ((2, 3, 5, 4), 1, "MAX"),
        ((1, 2, 9, 4), 3, "AVE"),
    ],
)
def test_spp_pools_each_level_as_caffe(shape, height, method, data_format, tmp_path):
    x = RNG.standard_normal(shape).astype(np.float32)
    params = f"spp_param {{ pyramid_height: {height} pool: {method} }}"
    actual = single("SPP", params, x, data_format, tmp_path)
    assert_matches(actual, caffe_spp(x, height, method.lower()), f"SPP {params} on {shape}")


def test_spp_refuses_an_input_too_small_for_its_bins(tmp_path):
    # 4 bins over 5 rows: kernel 2, pad 2, which Caffe's pooling refuses.
    prototxt, _ = write_net(tmp_path, net({"data": (1, 1, 5, 8)}, layer("SPP", "spp_param { pyramid_height: 3 }")))
    with pytest.raises(caffe2keras.ShapeError, match="pad < kernel"):
        caffe2keras.convert(prototxt)


# ---------------------------------------------------------------- Im2col


def caffe_im2col(x: np.ndarray, kernel, pad, stride, dilation) -> np.ndarray:
    """im2col_cpu: row (c * kh + i) * kw + j holds input channel c at kernel offset (i, j)."""
    n, channels, height, width = x.shape
    (kh, kw), (ph, pw), (sh, sw), (dh, dw) = kernel, pad, stride, dilation
    out_h = (height + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    out_w = (width + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    out = np.zeros((n, channels * kh * kw, out_h, out_w), np.float32)
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                for oh in range(out_h):
                    for ow in range(out_w):
                        ih, iw = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                        if 0 <= ih < height and 0 <= iw < width:
                            out[:, (c * kh + i) * kw + j, oh, ow] = x[:, c, ih, iw]
    return out


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(
    "params, geometry",
    [
        ("kernel_size: 3 pad: 1", ((3, 3), (1, 1), (1, 1), (1, 1))),
        ("kernel_h: 2 kernel_w: 3 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0", ((2, 3), (1, 0), (2, 1), (1, 1))),
        ("kernel_size: 3 stride: 2 dilation: 2 pad: 2", ((3, 3), (2, 2), (2, 2), (2, 2))),
    ],
)
def test_im2col_copies_each_window_into_channels(params, geometry, data_format, tmp_path):
    x = RNG.standard_normal((2, 3, 7, 8)).astype(np.float32)
    actual = single("Im2col", f"convolution_param {{ {params} }}", x, data_format, tmp_path)
    np.testing.assert_array_equal(actual, caffe_im2col(x, *geometry))


# ---------------------------------------------------------------- Parameter


@pytest.mark.parametrize("data_format", FORMATS)
def test_parameter_blob_feeds_the_net_and_is_an_output(data_format, tmp_path):
    shape = (1, 3, 2, 4)
    value = RNG.standard_normal(shape).astype(np.float32)
    body = layer(
        "Parameter", "parameter_param { shape { dim: 1 dim: 3 dim: 2 dim: 4 } }", bottoms=(), tops=("p",), name="p"
    ) + layer("Eltwise", "", bottoms=("data", "p"), tops=("sum",), name="sum")
    x = RNG.standard_normal(shape).astype(np.float32)
    total, parameter = convert_and_run(
        tmp_path, net({"data": shape}, body), [x], data_format, [("p", "Parameter", [value])], outputs=["sum", "p"]
    )
    np.testing.assert_array_equal(parameter, value)
    np.testing.assert_allclose(total, x + value, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- BatchReindex


@pytest.mark.parametrize("data_format", FORMATS)
def test_batch_reindex_gathers_items(data_format, tmp_path):
    x = RNG.standard_normal((4, 3, 2, 5)).astype(np.float32)
    indices = np.array([2, 0, 2, 3, 1], np.float32)
    text = net({"data": x.shape, "permutation": indices.shape}, layer("BatchReindex", bottoms=("data", "permutation")))
    (actual,) = convert_and_run(tmp_path, text, [x, indices], data_format)
    np.testing.assert_array_equal(actual, x[[2, 0, 2, 3, 1]])


# ---------------------------------------------------------------- Filter


def test_filter_is_reported_with_its_reason(tmp_path):
    text = net({"data": (4, 3), "keep": (4, 1)}, layer("Filter", bottoms=("data", "keep")))
    prototxt, _ = write_net(tmp_path, text)
    with pytest.raises(caffe2keras.UnsupportedLayersError, match="Filter: 1 layer, first 'l' — its output's batch"):
        caffe2keras.convert(prototxt)


# ---------------------------------------------------------------- one (de)convolution over several bottoms


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("type_", ["Convolution", "Deconvolution"])
def test_convolution_applies_its_weights_to_each_bottom(type_, data_format, tmp_path):
    """BaseConvolutionLayer: top i is bottom i convolved with the layer's one set of weights."""
    shape = (2, 3, 7, 6)
    first, second = (RNG.standard_normal(shape).astype(np.float32) for _ in range(2))
    weight_shape = (4, 3, 3, 2) if type_ == "Convolution" else (3, 4, 3, 2)
    weight, bias = RNG.standard_normal(weight_shape).astype(np.float32), RNG.standard_normal(4).astype(np.float32)
    params = "convolution_param { num_output: 4 kernel_h: 3 kernel_w: 2 stride: 2 pad: 1 }"
    text = net({"a": shape, "b": shape}, layer(type_, params, ("a", "b"), ("ya", "yb")))
    actual = convert_and_run(tmp_path, text, [first, second], data_format, [("l", type_, [weight, bias])])
    reference = oracle.convolution if type_ == "Convolution" else oracle.deconvolution
    for x, y in zip((first, second), actual):
        assert_matches(y, reference(x, weight, bias, (2, 2), (1, 1), (1, 1)), type_)


def test_convolution_bottoms_of_different_shapes_are_refused(tmp_path):
    text = net(
        {"a": (1, 3, 6, 6), "b": (1, 3, 5, 6)},
        layer("Convolution", "convolution_param { num_output: 2 kernel_size: 1 }", ("a", "b"), ("ya", "yb")),
    )
    prototxt, _ = write_net(tmp_path, text)
    with pytest.raises(
        caffe2keras.Caffe2KerasError,
        match=r"every bottom of a convolution has one shape.*Received: bottom=\['a', 'b'\]",
    ):
        caffe2keras.convert(prototxt)
