import numpy as np
import pytest
from keras import ops

from caffe2keras.layers.pooling import (
    CaffePooling2D,
    MaxPoolingWithArgmax2D,
    ROIPooling,
    _correctly_rounded_quotient,
    _round_half_away,
    average_divisors,
    pooled_sizes,
)

FLT_MAX = float(np.finfo(np.float32).max)


def caffe_pool(x, method, kernel, stride, pad, ceil_mode):
    """Caffe's windows, one output at a time (NCHW): MAX over the window clipped to the input,
    AVE over it divided by the window clipped to the padded extent, STOCHASTIC (test time) as
    sum(x^2) / sum(x)."""
    n, c, height, width = x.shape
    out = pooled_sizes((height, width), kernel, stride, pad, ceil_mode)
    y = np.empty((n, c, *out))
    for i in range(out[0]):
        for j in range(out[1]):
            h0, w0 = i * stride[0] - pad[0], j * stride[1] - pad[1]
            h1, w1 = min(h0 + kernel[0], height + pad[0]), min(w0 + kernel[1], width + pad[1])
            window = x[:, :, max(h0, 0) : min(h1, height), max(w0, 0) : min(w1, width)].astype(np.float64)
            if method == "max":
                y[:, :, i, j] = window.max(axis=(2, 3)) if window.size else -FLT_MAX
            elif method == "average":
                y[:, :, i, j] = window.sum(axis=(2, 3)) / ((h1 - h0) * (w1 - w0))
            else:
                y[:, :, i, j] = (window**2).sum(axis=(2, 3)) / window.sum(axis=(2, 3))
    return y


@pytest.mark.parametrize(
    "sizes, kernel, stride, pad, ceil_mode, expected",
    [
        ((7, 7), (2, 2), (2, 2), (0, 0), True, (4, 4)),  # ceil keeps the half window
        ((7, 7), (2, 2), (2, 2), (0, 0), False, (3, 3)),
        ((5, 5), (2, 2), (2, 2), (1, 1), True, (3, 3)),  # the 4th window would start at 6 = 5 + 1
        ((5, 7), (1, 3), (3, 3), (0, 1), True, (2, 3)),  # ...on every axis once any axis is padded
        ((5, 7), (1, 3), (3, 3), (0, 0), True, (3, 3)),  # no pad at all: no clip
        ((2, 5), (3, 3), (2, 2), (0, 0), True, (1, 2)),  # ceil(-0.5) + 1: one window over the input
    ],
)
def test_pooled_sizes_follow_caffe(sizes, kernel, stride, pad, ceil_mode, expected):
    assert pooled_sizes(sizes, kernel, stride, pad, ceil_mode) == expected


def test_average_divisors_stop_at_the_padded_extent():
    # 8 rows, kernel 3, stride 2, pad 1, 5 windows: the last starts at 7 and ends at 8 + 1.
    np.testing.assert_array_equal(average_divisors(8, 3, 2, 1, 5), [3, 3, 3, 3, 2])


CONFIGS = [
    dict(method="max", pool_size=(3, 3), strides=(2, 2), padding=(1, 1), ceil_mode=True),
    dict(method="max", pool_size=(2, 3), strides=(1, 2), padding=(0, 1), ceil_mode=False),
    dict(method="average", pool_size=(3, 3), strides=(2, 2), padding=(1, 1), ceil_mode=True),
    dict(method="average", pool_size=(2, 2), strides=(3, 3), padding=(1, 0), ceil_mode=True),
    dict(method="average", pool_size=(3, 2), strides=(2, 1), padding=(0, 0), ceil_mode=False),
    dict(method="stochastic", pool_size=(2, 2), strides=(2, 2), padding=(0, 0), ceil_mode=True),
]


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c['method']}-{c['pool_size']}-{c['padding']}")
def test_matches_caffe_windows(config, data_format, reloaded_outputs, assert_close):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 1.0, (2, 3, 7, 8)) if config["method"] == "stochastic" else rng.standard_normal((2, 3, 7, 8))
    x = (x - 3 * (config["method"] == "max")).astype(np.float32)  # negative maxima: padding must not win
    expected = caffe_pool(
        x, config["method"], config["pool_size"], config["strides"], config["padding"], config["ceil_mode"]
    )
    to_layout = (lambda a: a.transpose(0, 2, 3, 1)) if data_format == "channels_last" else (lambda a: a)
    layer = CaffePooling2D(**config, data_format=data_format)
    assert_close(reloaded_outputs(layer, to_layout(x)), to_layout(expected))
    assert layer.compute_output_shape((None, *to_layout(x).shape[1:])) == (None, *to_layout(expected).shape[1:])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c["method"])
def test_config_round_trip(config, config_round_trip):
    config_round_trip(CaffePooling2D(**config, data_format="channels_first", name="pool"))


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(method="median"), "method must be one of"),
        (dict(data_format="nchw"), "data_format"),
        (dict(pool_size=(2, 2, 2)), "pool_size must have 2 values"),
        (dict(pool_size=(2, 2), padding=(2, 0)), "padding must be smaller than pool_size"),
        (dict(method="stochastic", padding=(1, 1), pool_size=(3, 3)), "stochastic pooling takes no padding"),
    ],
)
def test_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message) as raised:
        CaffePooling2D(**arguments)
    assert "Received:" in str(raised.value)


GRID = np.array([[1, 5, 2], [5, 0, 3], [4, 4, 4]], np.float32)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize(
    "kernel, stride, pad, pooled, mask",
    [
        # Ties go to the first maximum in raster order: the 5 at index 1, not the one at 3.
        ((2, 2), (1, 1), (0, 0), [[5, 5], [5, 4]], [[1, 1], [3, 7]]),
        # Windows start at -1 and are clipped to the grid.
        ((3, 3), (2, 2), (1, 1), [[5, 5], [5, 4]], [[1, 1], [3, 7]]),
    ],
)
def test_max_pooling_with_argmax(kernel, stride, pad, pooled, mask, data_format, reloaded_nchw_outputs):
    layer = MaxPoolingWithArgmax2D(kernel, stride, pad, data_format=data_format)
    values, indices = reloaded_nchw_outputs(layer, GRID[None, None])
    np.testing.assert_array_equal(values[0, 0], pooled)
    np.testing.assert_array_equal(indices[0, 0], mask)


def test_max_pooling_with_argmax_config(config_round_trip):
    layer = MaxPoolingWithArgmax2D((3, 2), (2, 1), (1, 0), ceil_mode=False, data_format="channels_first")
    config_round_trip(layer)
    assert layer.compute_output_shape((None, 4, 7, 5)) == [(None, 4, 4, 4)] * 2


FEATURES = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize(
    "roi, expected",
    [
        ([0, 0, 0, 3, 3], [[5, 7], [13, 15]]),  # 4 cells per axis: bins [0, 2) and [2, 4)
        ([0, 0.5, 0, 3, 3], [[6, 7], [14, 15]]),  # x1 rounds up to 1: 3 columns, bins [1, 3) and [2, 4)
        ([0, 3, 3, 0, 0], [[15, 15], [15, 15]]),  # reversed corners: a 1x1 ROI at (3, 3)
        ([0, 10, 10, 12, 12], [[0, 0], [0, 0]]),  # outside the map: empty bins give 0
    ],
)
def test_roi_pooling(roi, expected, data_format, reloaded_nchw_outputs):
    layer = ROIPooling((2, 2), 1.0, data_format=data_format)
    (pooled,) = reloaded_nchw_outputs(layer, FEATURES, np.array([roi], np.float32))
    np.testing.assert_array_equal(pooled[0, 0], expected)


def test_roi_pooling_config(config_round_trip):
    layer = ROIPooling((6, 7), 0.0625, data_format="channels_first")
    config_round_trip(layer)
    assert layer.compute_output_shape([(2, 5, 9, 9), (None, 5)]) == (None, 5, 6, 7)


@pytest.mark.parametrize(
    "layer_class, arguments, message",
    [
        (MaxPoolingWithArgmax2D, dict(pool_size=(2, 2, 2)), "pool_size must have 2 values"),
        (MaxPoolingWithArgmax2D, dict(data_format="nchw"), "data_format"),
        (ROIPooling, dict(pooled_size=(0, 3)), "pooled_size must be positive"),
    ],
)
def test_new_layers_reject_bad_arguments(layer_class, arguments, message):
    arguments = {"pooled_size": (2, 2), **arguments} if layer_class is ROIPooling else arguments
    with pytest.raises(ValueError, match=message) as raised:
        layer_class(**arguments)
    assert "Received:" in str(raised.value)


def test_rounding_goes_away_from_zero():
    x = np.array([-2.5, -1.5, -0.5, -0.49999997, 0.49999997, 0.5, 1.5, 2.5], np.float32)
    np.testing.assert_array_equal(np.asarray(_round_half_away(ops.convert_to_tensor(x))), [-3, -2, -1, 0, 0, 1, 2, 3])


@pytest.mark.parametrize("divisor", [3, 6, 7, 14])
def test_quotient_is_ieee(divisor):
    a = np.arange(1, 5000, dtype=np.float32)
    quotient = _correctly_rounded_quotient(ops.convert_to_tensor(a), float(divisor))
    np.testing.assert_array_equal(np.asarray(quotient), a / np.float32(divisor))


@pytest.mark.parametrize(
    "method, kernel, stride, pad, ceil_mode",
    [
        ("max", (3, 3), (2, 2), (1, 1), True),  # the clip rule drops a window at some sizes
        ("average", (3, 2), (2, 2), (1, 0), True),  # divisors clipped to the padded extent
        ("average", (2, 2), (2, 2), (0, 0), True),  # a window past the input: Caffe's NaN
        ("max", (3, 3), (2, 3), (1, 1), False),
    ],
)
def test_caffe_pooling_with_free_sizes_pools_each_size_as_its_fixed_twin(
    method, kernel, stride, pad, ceil_mode, free_size_model, assert_close
):
    model = free_size_model(CaffePooling2D(method, kernel, stride, pad, ceil_mode), (None, None, 2))
    assert model.output_shape == (None, None, None, 2)
    for size in [(5, 5), (6, 9), (8, 7), (11, 4)]:
        x = np.random.default_rng(sum(size)).standard_normal((1, *size, 2)).astype(np.float32)
        fixed = np.asarray(CaffePooling2D(method, kernel, stride, pad, ceil_mode)(x))
        free = np.asarray(model.predict_on_batch(x))
        np.testing.assert_array_equal(np.isnan(free), np.isnan(fixed))  # Caffe's empty windows
        assert_close(np.nan_to_num(free), np.nan_to_num(fixed))
