import keras
import numpy as np
import pytest

from caffe2keras.layers.preprocessing import CaffePreprocessing

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (2, 5, 4, 3)).astype(np.float32)  # NHWC, RGB, 0-255
MEAN_IMAGE = RNG.uniform(0, 255, (5, 4, 3)).astype(np.float32)  # HWC, BGR


def caffe_blob(rgb_nhwc, mean, scale):
    """Caffe's DataTransformer on BGR pixels: (pixel - mean) * scale, in float32."""
    bgr = rgb_nhwc[..., ::-1].astype(np.float32)
    return (bgr - mean) * np.float32(scale)


@pytest.mark.parametrize(
    "mean", [np.array([104.0, 117.0, 123.0], np.float32), MEAN_IMAGE], ids=["per_channel", "mean_image"]
)
def test_rgb_input_becomes_caffes_blob(mean, reloaded_outputs):
    layer = CaffePreprocessing(mean_shape=mean.shape, scale=0.017, mean=mean)
    np.testing.assert_array_equal(reloaded_outputs(layer, IMAGES), caffe_blob(IMAGES, mean, 0.017))


def test_rgb_net_takes_the_images_in_order(reloaded_outputs):
    layer = CaffePreprocessing(mean_shape=(3,), channel_order="rgb", mean=np.array([1.0, 2.0, 3.0], np.float32))
    np.testing.assert_array_equal(reloaded_outputs(layer, IMAGES), IMAGES - [1.0, 2.0, 3.0])


@pytest.mark.parametrize("input_order, channel_order", [("rgb", "bgr"), ("bgr", "rgb"), (None, None)])
def test_earlier_files_input_order_computes_the_same(input_order, channel_order):
    layer = CaffePreprocessing.from_config({"input_order": input_order, "name": "data_preprocess"})
    assert layer.channel_order == channel_order
    assert "input_order" not in layer.get_config()


def test_channels_first(reloaded_outputs):
    mean = np.array([104.0, 117.0, 123.0], np.float32).reshape(3, 1, 1)
    layer = CaffePreprocessing(mean_shape=(3, 1, 1), scale=0.5, data_format="channels_first", mean=mean)
    nchw = IMAGES.transpose(0, 3, 1, 2)
    expected = caffe_blob(IMAGES, mean.reshape(3), 0.5).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(reloaded_outputs(layer, nchw), expected)


def test_gray_scale_only(reloaded_outputs):
    gray = IMAGES[..., :1]
    layer = CaffePreprocessing(scale=0.00390625, channel_order=None)
    np.testing.assert_array_equal(reloaded_outputs(layer, gray), gray * np.float32(0.00390625))


def test_uint8_input_is_cast():
    layer = CaffePreprocessing(mean_shape=(3,), mean=np.zeros(3, np.float32))
    out = keras.ops.convert_to_numpy(layer(IMAGES.astype(np.uint8)))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, IMAGES[..., ::-1])


def test_config_round_trip_keeps_labels(config_round_trip):
    layer = CaffePreprocessing(mean_shape=(5, 4, 3), scale=2.0, channel_order="rgb", labels=["cat", "dog"])
    config_round_trip(layer)
    assert layer.get_config()["labels"] == ["cat", "dog"]


def test_mean_is_a_non_trainable_weight():
    layer = CaffePreprocessing(mean_shape=(3,), mean=np.ones(3, np.float32))
    layer.build((None, 5, 4, 3))
    assert not layer.trainable_weights
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.non_trainable_weights[0]), np.ones(3))


@pytest.mark.parametrize(
    "kwargs, shape, message",
    [
        ({"channel_order": "bgr"}, (None, 5, 4, 1), "reverses 3 colour channels"),
        ({"mean_shape": (6, 4, 3)}, (None, 5, 4, 3), "does not fit"),
        ({"channel_order": "yuv"}, None, "channel_order must be"),
        ({"input_order": "yuv"}, None, "input_order must be"),
        ({"mean_shape": (3,), "mean": np.zeros(4)}, None, "must have shape"),
    ],
)
def test_errors_say_what_was_received(kwargs, shape, message):
    with pytest.raises(ValueError, match=message) as info:
        CaffePreprocessing(**kwargs).build(shape)
    assert "Received:" in str(info.value)
