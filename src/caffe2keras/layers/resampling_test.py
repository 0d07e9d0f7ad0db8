"""BilinearInterp and MaxUnpooling2D on hand-worked cases."""

import numpy as np
import pytest

from caffe2keras.layers.resampling import BilinearInterp, MaxUnpooling2D, interp_weights

FORMATS = ["channels_last", "channels_first"]


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(
    "size, expected",
    [
        ((3, 3), [[0, 0.5, 1], [1, 1.5, 2], [2, 2.5, 3]]),  # corners stay put
        ((1, 1), [[0]]),  # one output cell reads the first input cell
        ((2, 2), [[0, 1], [2, 3]]),  # the same size copies
    ],
)
def test_bilinear_interp(size, expected, data_format, reloaded_nchw_outputs):
    grid = np.array([[[[0, 1], [2, 3]]]], np.float32)
    (resized,) = reloaded_nchw_outputs(BilinearInterp(size, data_format=data_format), grid)
    np.testing.assert_array_equal(resized[0, 0], expected)


def test_interp_weights_follow_float32():
    weights = interp_weights(4, 7)  # ratio 0.5
    np.testing.assert_array_equal(weights.lower, [0, 0, 1, 1, 2, 2, 3])
    np.testing.assert_array_equal(weights.step, [1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(weights.upper_weight, [0, 0.5, 0, 0.5, 0, 0.5, 0])
    assert weights.upper_weight.dtype == np.float32


@pytest.mark.parametrize("data_format", FORMATS)
def test_max_unpooling(data_format, reloaded_nchw_outputs):
    values = np.array([[[[1, 2, 3]], [[4, 5, 6]]]], np.float32)  # (1, 2, 1, 3)
    # Channel 0: 2 and 3 both aim at cell 5; the later one wins. Channel 1: 7 and -1 are outside.
    mask = np.array([[[[0, 5, 5]], [[7, 2, -1]]]], np.float32)
    (unpooled,) = reloaded_nchw_outputs(MaxUnpooling2D((2, 3), data_format=data_format), values, mask)
    np.testing.assert_array_equal(unpooled[0, 0], [[1, 0, 0], [0, 0, 3]])
    np.testing.assert_array_equal(unpooled[0, 1], [[0, 0, 5], [0, 0, 0]])


@pytest.mark.parametrize("layer_class", [BilinearInterp, MaxUnpooling2D])
def test_config_round_trip(layer_class, config_round_trip):
    config_round_trip(layer_class((5, 6), data_format="channels_first"))


@pytest.mark.parametrize("layer_class", [BilinearInterp, MaxUnpooling2D])
@pytest.mark.parametrize(
    "arguments, message",
    [(dict(size=(0, 3)), "size must be two positive integers"), (dict(size=(2, 2), data_format="nchw"), "data_format")],
)
def test_rejects_bad_arguments(layer_class, arguments, message):
    with pytest.raises(ValueError, match=message) as raised:
        layer_class(**arguments)
    assert "Received:" in str(raised.value)


@pytest.mark.parametrize("shrink, zoom", [(1, 3), (2, 1), (3, 2)])
def test_bilinear_interp_by_factors_sizes_each_input_as_the_fork(
    shrink, zoom, free_size_model, config_round_trip, assert_close
):
    layer = BilinearInterp(None, shrink_factor=shrink, zoom_factor=zoom)
    config_round_trip(layer)
    model = free_size_model(layer, (None, None, 2))
    for height, width in [(5, 7), (8, 4)]:
        x = np.random.default_rng(height).standard_normal((1, height, width, 2)).astype(np.float32)
        size = tuple((n - 1) // shrink * zoom + 1 for n in (height, width))
        assert_close(model.predict_on_batch(x), np.asarray(BilinearInterp(size)(x)))
