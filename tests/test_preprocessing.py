"""Caffe's preprocessing built into trained models: raw uint8 images give what Caffe's blob gives.

The oracle is Caffe's DataTransformer at TEST time, written here in numpy: the image in BGR
order, centre-cropped mean image (or per-channel values) subtracted, times ``scale``, in float32.
"""

from __future__ import annotations

import shutil

import keras
import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe.writer import blob_bytes
from caffe2keras.cli import main
from tests.golden import assert_matches
from tests.shared import SHARED, requires_shared

TRAINED = SHARED / "caffe" / "trained"
pytestmark = [requires_shared, pytest.mark.filterwarnings("ignore::caffe2keras.errors.ConversionWarning")]


def raw_images(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Two raw uint8 RGB images (N, H, W, 3): crops of MTCNN's test photo, and noise."""
    import cv2

    photo = cv2.imread(str(TRAINED / "mtcnn" / "test1.jpg"))[:, :, ::-1]
    crop = cv2.resize(photo[100:250, 150:300], (width, height), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return np.stack([crop, noise])


def caffe_blob(rgb_nhwc: np.ndarray, mean_chw: np.ndarray | None, scale: float) -> np.ndarray:
    """Caffe's DataTransformer::Transform at TEST on BGR images, as NHWC float32."""
    bgr_nchw = rgb_nhwc[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32)
    if mean_chw is not None:
        height, width = bgr_nchw.shape[2:]
        h_off, w_off = (mean_chw.shape[1] - height) // 2, (mean_chw.shape[2] - width) // 2
        bgr_nchw = bgr_nchw - mean_chw[:, h_off : h_off + height, w_off : w_off + width]
    return (bgr_nchw * np.float32(scale)).transpose(0, 2, 3, 1)


def outputs(model, x) -> list[np.ndarray]:
    y = model.predict_on_batch(x)
    return [np.asarray(v) for v in (y if isinstance(y, (list, tuple)) else [y])]


def assert_same_outputs(preprocessed, plain, raw, blob):
    """The preprocessing step makes Caffe's blob exactly, and the nets agree after it."""
    step = preprocessed.get_layer("data_preprocess")
    made = keras.Model(preprocessed.inputs, step.output).predict_on_batch(raw)
    np.testing.assert_array_equal(np.asarray(made), blob)
    for got, expected in zip(outputs(preprocessed, raw), outputs(plain, blob)):
        assert_matches(got, expected, "the preprocessed net against the plain one")


def test_lenet_takes_its_scale_from_the_train_val_transform_param():
    prototxt, weights = (
        TRAINED / "lenet_mnist" / "lenet_train_test.prototxt",
        TRAINED / "lenet_mnist" / "lenet_iter_10000.caffemodel",
    )
    shapes = {"data": (1, 1, 28, 28)}
    model = caffe2keras.convert(prototxt, weights, input_shapes=shapes, preprocessing=True)
    with pytest.warns(caffe2keras.ConversionWarning, match=r"'mnist' fed blob 'data'.* times 0.00390625.*--preprocess"):
        plain = caffe2keras.convert(prototxt, weights, input_shapes=shapes)
    gray = raw_images(28, 28)[..., :1]
    assert_same_outputs(model, plain, gray, gray.astype(np.float32) * np.float32(0.00390625))
    assert model.get_layer("data_preprocess").get_config()["channel_order"] is None


@pytest.fixture
def cifar_mean():
    """A mean image as Caffe's compute_image_mean writes it: (1, 3, 32, 32) in a BlobProto."""
    return np.random.default_rng(1).uniform(60, 190, (3, 32, 32)).astype(np.float32)


@pytest.mark.parametrize("net", ["cifar10_quick", "cifar10_full"])
def test_cifar10_mean_file_is_found_next_to_the_prototxt(net, cifar_mean, tmp_path):
    prototxt = tmp_path / f"{net}_train_test.prototxt"
    shutil.copy(TRAINED / net / prototxt.name, prototxt)
    (tmp_path / "mean.binaryproto").write_bytes(blob_bytes(cifar_mean[None], legacy=True))
    weights = next((TRAINED / net).glob("*.caffemodel"))
    shapes = {"data": (1, 3, 32, 32)}
    model = caffe2keras.convert(prototxt, weights, input_shapes=shapes, preprocessing=True)
    plain = caffe2keras.convert(prototxt, weights, input_shapes=shapes, preprocessing=None)
    raw = raw_images(32, 32)
    assert_same_outputs(model, plain, raw, caffe_blob(raw, cifar_mean, 1.0))


def test_cifar10_mean_from_the_command_line_is_centre_cropped(tmp_path):
    """A larger mean image (Caffe's crop_size case) is cropped at ((H - h) // 2, (W - w) // 2)."""
    mean = np.random.default_rng(2).uniform(0, 255, (3, 37, 36)).astype(np.float32)
    (tmp_path / "big_mean.binaryproto").write_bytes(blob_bytes(mean[None], legacy=True))
    net = TRAINED / "cifar10_quick"
    prototxt, weights = net / "cifar10_quick_train_test.prototxt", net / "cifar10_quick_iter_5000.caffemodel"
    output = tmp_path / "cifar.keras"
    args = ["convert", str(prototxt), str(weights), "-o", str(output), "--input-shape", "data=1,3,32,32", "-q"]
    assert main([*args, "--mean", str(tmp_path / "big_mean.binaryproto")]) == 0
    model = keras.saving.load_model(output, safe_mode=True)
    plain = caffe2keras.convert(prototxt, weights, input_shapes={"data": (1, 3, 32, 32)})
    raw = raw_images(32, 32, seed=3)
    assert_same_outputs(model, plain, raw, caffe_blob(raw, mean, 1.0))


def test_a_missing_mean_file_is_named(tmp_path):
    prototxt = tmp_path / "cifar10_quick_train_test.prototxt"
    shutil.copy(TRAINED / "cifar10_quick" / prototxt.name, prototxt)
    with pytest.raises(caffe2keras.ModelFileError, match=r"mean\.binaryproto.*not found.*--mean"):
        caffe2keras.convert(prototxt, input_shapes={"data": (1, 3, 32, 32)}, preprocessing=True)


# P-Net in the fast tier; R-Net and O-Net add no preprocessing of their own.
@pytest.mark.parametrize(
    "net, size",
    [("det1", 12), pytest.param("det2", 24, marks=pytest.mark.slow), pytest.param("det3", 48, marks=pytest.mark.slow)],
)
def test_mtcnn_with_mean_and_scale_flags(net, size, tmp_path):
    prototxt, weights = TRAINED / "mtcnn" / f"{net}.prototxt", TRAINED / "mtcnn" / f"{net}.caffemodel"
    output = tmp_path / f"{net}.keras"
    flags = ["--mean", "127.5,127.5,127.5", "--scale", "0.0078125", "-q"]
    assert main(["convert", str(prototxt), str(weights), "-o", str(output), *flags]) == 0
    model = keras.saving.load_model(output, safe_mode=True)
    plain = caffe2keras.convert(prototxt, weights)
    raw = raw_images(size, size)
    assert_same_outputs(model, plain, raw, caffe_blob(raw, np.full((3, 1, 1), 127.5, np.float32), 0.0078125))


def test_channels_first_models_take_channels_first_images(cifar_mean, tmp_path):
    net = TRAINED / "cifar10_quick"
    prototxt, weights = net / "cifar10_quick_train_test.prototxt", net / "cifar10_quick_iter_5000.caffemodel"
    (tmp_path / "mean.binaryproto").write_bytes(blob_bytes(cifar_mean[None], legacy=True))
    options = {"input_shapes": {"data": (1, 3, 32, 32)}, "data_format": "channels_first"}
    model = caffe2keras.convert(prototxt, weights, preprocessing={"mean": tmp_path / "mean.binaryproto"}, **options)
    plain = caffe2keras.convert(prototxt, weights, **options)
    raw = raw_images(32, 32)
    to_nchw = (0, 3, 1, 2)
    blob = caffe_blob(raw, cifar_mean, 1.0).transpose(to_nchw)
    assert_same_outputs(model, plain, raw.transpose(to_nchw), blob)


def test_a_missing_mean_file_names_where_it_was_looked_for(tmp_path):
    from caffe2keras.preprocessing import find_mean_file

    prototxt = tmp_path / "deploy.prototxt"
    with pytest.raises(caffe2keras.ModelFileError) as raised:
        find_mean_file("examples/cifar10/mean.binaryproto", prototxt)
    message = str(raised.value)
    assert str(tmp_path / "examples/cifar10/mean.binaryproto") in message
    assert str(tmp_path / "mean.binaryproto") in message
    assert message.endswith("Received: transform_param.mean_file='examples/cifar10/mean.binaryproto'")
