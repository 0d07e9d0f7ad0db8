"""Inputs that once gave wrong successes or internal errors: NaN and Inf in a mean or a scale,
arrays that are not real numbers, truncated and oversized images, free-size nets below their
minimum size, and a mean image for a free-size input. Each is one clear error."""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe import schema
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.cli import main
from caffe2keras.errors import InputShapeError, PreprocessingError, VerifyError
from tests.golden import save_and_reload
from tests.shared import SHARED, requires_shared

cv2 = pytest.importorskip("cv2")

FREE = {"data": (1, 3, None, None)}
# Caffe's rules, by hand: conv1 (3, stride 2), pool1 (3, stride 2, ceil) and conv2 (3) leave a
# pixel from 13 on. With conv2 7 high, pool1 must give 7 rows: conv1 14, so 29 rows, 13 columns.
FCN = """name: "fcn"
input: "data"
input_shape { dim: 1 dim: 3 dim: 20 dim: 20 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 stride: 2 } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2" convolution_param { num_output: 5 kernel_size: 3 } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: AVE global_pooling: true } }
layer { name: "prob" type: "Softmax" bottom: "pool2" top: "prob" }
"""
TALL = FCN.replace("num_output: 5 kernel_size: 3", "num_output: 5 kernel_h: 7 kernel_w: 3")
TINY = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 6 dim: 5 }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 4 } }
"""


@pytest.fixture
def fcn(tmp_path):
    prototxt = tmp_path / "fcn.prototxt"
    prototxt.write_text(FCN)
    rng = np.random.default_rng(0)
    weights = tmp_path / "fcn.caffemodel"
    blobs = [
        ("conv1", "Convolution", [rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)]),
        ("conv2", "Convolution", [rng.standard_normal((5, 4, 3, 3)), rng.standard_normal(5)]),
    ]
    write_caffemodel(weights, [(n, t, [b.astype(np.float32) for b in bs]) for n, t, bs in blobs])
    return prototxt, weights


@pytest.fixture
def tiny(tmp_path):
    prototxt = tmp_path / "tiny.prototxt"
    prototxt.write_text(TINY)
    weights = tmp_path / "tiny.caffemodel"
    rng = np.random.default_rng(0)
    write_caffemodel(weights, [("fc", "InnerProduct", [rng.standard_normal((4, 90), np.float32), np.zeros(4, "f4")])])
    return prototxt, weights


def cli(argv, capsys) -> tuple[int, str]:
    status = main([str(a) for a in argv])
    return status, capsys.readouterr().err


def assert_one_error_line(status: int, stderr: str, *texts: str) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith("caffe2keras: error: ")]
    assert status != 0 and len(errors) == 1, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    for text in texts:
        assert text in errors[0], errors[0]


# ------------------------------------------------------------------ NaN and Inf in a mean or a scale


def mean_file(path, values: np.ndarray):
    blob = schema().BlobProto()
    blob.shape.dim.extend(values.shape)
    blob.data.extend(values.ravel().tolist())
    path.write_bytes(blob.SerializeToString())
    return path


@pytest.mark.parametrize("mean", ["nan,1,2", "1,inf,2", "-inf", "1e39,0,0"])
def test_a_mean_value_that_is_not_finite_is_refused(tiny, tmp_path, capsys, mean):
    status, err = cli(["convert", *tiny, f"--mean={mean}", "-o", tmp_path / "m.keras", "-q"], capsys)
    assert_one_error_line(status, err, "mean", "Received: mean[")
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.parametrize("scale", ["nan", "inf", "-1e39"])
def test_a_scale_that_is_not_finite_is_refused(tiny, tmp_path, capsys, scale):
    status, err = cli(["convert", *tiny, f"--scale={scale}", "-o", tmp_path / "m.keras", "-q"], capsys)
    assert_one_error_line(status, err, "Received: scale=")


def test_a_mean_file_holding_nan_is_refused_naming_the_file(tiny, tmp_path, capsys):
    values = np.full((1, 3, 6, 5), 100.0, np.float32)
    values[0, 1, 2, 3] = np.nan
    path = mean_file(tmp_path / "mean.binaryproto", values)
    status, err = cli(["convert", *tiny, "--mean", path, "-o", tmp_path / "m.keras", "-q"], capsys)
    assert_one_error_line(status, err, str(path), "mean[0, 1, 2, 3]=nan")


def test_the_preprocessing_layer_refuses_a_scale_that_is_not_finite():
    with pytest.raises(ValueError, match="finite"):
        caffe2keras.layers.CaffePreprocessing(scale=float("nan"))


# ------------------------------------------------------------------ arrays that are not real numbers


@pytest.mark.parametrize(
    "array",
    [
        np.array([[[1]]], dtype=object),
        np.zeros((2, 2, 3), complex),
        np.zeros((2, 2, 3), "M8[s]"),
        np.zeros((2, 2, 3), [("a", "f4")]),
        np.array([[["a", "b", "c"]]]),
    ],
    ids=["object", "complex", "datetime", "structured", "string"],
)
def test_preprocess_input_refuses_arrays_that_are_not_real_numbers(array):
    with pytest.raises(PreprocessingError, match=re.escape(f"Received: x.dtype={array.dtype}")):
        caffe2keras.preprocess_input(array, mean=[1.0, 2.0, 3.0])


@pytest.mark.parametrize("dtype", ["c8", "M8[s]", "m8[s]", [("a", "f4"), ("b", "i4")], "U2"])
def test_verify_refuses_inputs_that_are_not_real_numbers(tiny, tmp_path, capsys, dtype):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 6, 5), dtype))
    status, err = cli(["verify", *tiny, "--input", tmp_path / "x.npy"], capsys)
    assert_one_error_line(status, err, "x.npy", "Received: ")
    with pytest.raises(VerifyError, match="must hold real numbers"):
        caffe2keras.verify(*tiny, against={"data": np.zeros((1, 3, 6, 5), dtype), "fc": np.zeros((1, 4))})
    with pytest.raises(VerifyError, match="must hold real numbers"):
        caffe2keras.verify(*tiny, inputs=np.zeros((1, 3, 6, 5), dtype))


# ------------------------------------------------------------------ images: truncated, corrupt, bombs


def encoded(suffix: str, height: int = 20, width: int = 30) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)
    return cv2.imencode(suffix, pixels)[1].tobytes()


def png_chunks(header: bytes, idat: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_declaring(width: int, height: int) -> bytes:
    return png_chunks(struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0), zlib.compress(bytes(100)))


def interlaced_png(pixels: np.ndarray, declared: tuple[int, int] | None = None) -> bytes:
    """An 8-bit RGB PNG in Adam7 order (OpenCV writes none), each pass' rows unfiltered; its
    header says ``declared`` (height, width), by default the pixels' own size."""
    from caffe2keras.image_files import ADAM7

    height, width, _ = pixels.shape
    raw = b"".join(
        b"\0" + pixels[y, column::step_x].tobytes()
        for row, column, step_y, step_x in ADAM7
        if column < width
        for y in range(row, height, step_y)
    )
    height, width = declared or (height, width)
    return png_chunks(struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1), zlib.compress(raw))


@pytest.fixture
def tiny_model(tiny, tmp_path):
    path = tmp_path / "tiny.keras"
    caffe2keras.save_model(caffe2keras.convert(*tiny), path)
    return path


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
@pytest.mark.parametrize("keep", [0.5, 0.9, -2])
def test_a_truncated_image_is_refused(tiny_model, tmp_path, capsys, suffix, keep):
    data = encoded(suffix)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: int(len(data) * keep)] if keep > 0 else data[:keep])
    status, err = cli(["predict", tiny_model, path], capsys)
    assert_one_error_line(status, err, str(path), "truncated or corrupt")


def test_a_png_whose_data_is_shorter_than_its_header_says_is_refused(tiny_model, tmp_path, capsys):
    path = tmp_path / "short.png"
    path.write_bytes(png_declaring(100, 100))
    status, err = cli(["predict", tiny_model, path], capsys)
    assert_one_error_line(status, err, "image data holds 100 bytes, its header 30,100")
    assert "libpng" not in err


def test_libjpegs_complaints_are_said_once_as_our_warning(tiny_model, tmp_path, capfd):
    """libjpeg prints "Corrupt JPEG data: ..." on the C stderr; the fuzz run found it beside our error
    line (a file it cannot decode then says it in the error)."""
    data = encoded(".jpg")
    frame = data.index(b"\xff\xc0")
    path = tmp_path / "extra.jpg"
    path.write_bytes(data[:frame] + bytes(5) + data[frame:])
    assert main(["predict", str(tiny_model), str(path)]) == 0
    lines = capfd.readouterr().err.splitlines()
    assert all(line.startswith("caffe2keras: warning: ") for line in lines), lines
    assert any(
        line.endswith("the image is damaged: Corrupt JPEG data: 5 extraneous bytes before marker 0xc0")
        for line in lines
    )


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (9, 17), (8, 8)])
def test_an_interlaced_png_is_read_whole_and_checked_pass_by_pass(tmp_path, size):
    from caffe2keras.image_files import decode_image

    pixels = np.random.default_rng(0).integers(0, 255, (*size, 3), np.uint8)
    path = tmp_path / "interlaced.png"
    path.write_bytes(interlaced_png(pixels))
    np.testing.assert_array_equal(decode_image(path, cv2.IMREAD_UNCHANGED)[:, :, ::-1], pixels)
    path.write_bytes(interlaced_png(np.concatenate([pixels, pixels]), declared=size))  # more data than declared
    with pytest.raises(caffe2keras.ModelFileError, match="its image data holds"):
        decode_image(path, cv2.IMREAD_COLOR)


def test_a_png_whose_data_fails_its_crc_is_refused(tiny_model, tmp_path, capsys):
    data = bytearray(encoded(".png"))
    data[60] ^= 0x10  # inside the first IDAT chunk
    path = tmp_path / "flipped.png"
    path.write_bytes(bytes(data))
    status, err = cli(["predict", tiny_model, path], capsys)
    assert_one_error_line(status, err, "truncated or corrupt")


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".ppm"])
def test_whole_images_are_predicted_on(tiny_model, tmp_path, capsys, suffix):
    path = tmp_path / f"whole{suffix}"
    path.write_bytes(encoded(suffix) + (b"trailing bytes" if suffix == ".jpg" else b""))
    assert main(["predict", str(tiny_model), str(path), "--json"]) == 0


def test_an_image_bomb_is_refused_from_its_header(tiny_model, tmp_path, capsys):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(30000, 30000))
    status, err = cli(["predict", tiny_model, path], capsys)
    assert_one_error_line(status, err, "30000x30000", "CAFFE2KERAS_MAX_IMAGE_PIXELS", "Received: size=30000x30000")


def test_the_pixel_limit_is_set_by_the_environment(tiny_model, tmp_path, capsys, monkeypatch):
    path = tmp_path / "small.png"
    path.write_bytes(encoded(".png", 20, 30))
    monkeypatch.setenv("CAFFE2KERAS_MAX_IMAGE_PIXELS", "599")
    status, err = cli(["predict", tiny_model, path], capsys)
    assert_one_error_line(status, err, "600 pixels, more than the limit of 599")
    monkeypatch.setenv("CAFFE2KERAS_MAX_IMAGE_PIXELS", "600")
    assert main(["predict", str(tiny_model), str(path)]) == 0


def test_verify_reads_images_by_the_same_rules(tiny, tmp_path, capsys):
    path = tmp_path / "cut.jpg"
    path.write_bytes(encoded(".jpg")[:200])
    status, err = cli(["verify", *tiny, "--input", path], capsys)
    assert_one_error_line(status, err, "truncated or corrupt")


# ------------------------------------------------------------------ free sizes below the minimum


def test_the_minimum_size_is_computed_per_axis_from_caffes_rules(tmp_path):
    from caffe2keras.api import load_graph, shape_rule_or_none
    from caffe2keras.minimum_size import minimum_sizes

    for text, expected in ((FCN, (13, 13)), (TALL, (29, 13))):
        prototxt = tmp_path / "net.prototxt"
        prototxt.write_text(text)
        assert minimum_sizes(load_graph(prototxt, FREE), shape_rule_or_none) == {"data": expected}
        # A fixed size has no minimum to carry.
        assert minimum_sizes(load_graph(prototxt), shape_rule_or_none) == {}


def test_a_free_size_model_carries_its_minimum_through_a_safe_reload(fcn, tmp_path):
    reloaded = save_and_reload(caffe2keras.convert(*fcn, input_shapes=FREE), tmp_path)
    step = next(layer for layer in reloaded.layers if isinstance(layer, caffe2keras.layers.CaffePreprocessing))
    assert step.min_size == (13, 13)
    assert np.isfinite(np.asarray(reloaded(np.ones((1, 13, 13, 3), np.float32)))).all()
    with pytest.raises(ValueError, match=r"12x13, smaller than the 13x13"):
        reloaded(np.ones((1, 12, 13, 3), np.float32))


def test_predict_and_verify_refuse_inputs_below_the_minimum(fcn, tmp_path, capsys):
    model = tmp_path / "fcn.keras"
    assert main(["convert", *map(str, fcn), "--input-shape", "data=1,3,?,?", "-o", str(model), "-q"]) == 0
    image = tmp_path / "small.png"
    image.write_bytes(encoded(".png", 20, 12))
    status, err = cli(["predict", model, image], capsys)
    assert_one_error_line(status, err, "input 'data' is 20x12, smaller than the 13x13", "Received: data=20x12")
    np.save(tmp_path / "x.npy", np.ones((1, 3, 5, 40), np.float32))
    status, err = cli(["verify", *fcn, "--input-shape", "data=1,3,?,?", "--input", tmp_path / "x.npy"], capsys)
    assert_one_error_line(status, err, "5x40, smaller than the 13x13")
    with pytest.raises(InputShapeError, match="smaller than"):
        caffe2keras.verify(*fcn, inputs=np.ones((1, 3, 12, 12), np.float32), input_shapes=FREE)


def test_a_fixed_size_below_the_minimum_is_refused_at_conversion(fcn, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.ones((1, 3, 7, 7), np.float32))
    status, err = cli(["verify", *fcn, "--input", tmp_path / "x.npy"], capsys)
    assert_one_error_line(status, err, "conv2")


@requires_shared
@pytest.mark.slow
@pytest.mark.parametrize(
    "prototxt, minimum",
    [("trained/mtcnn/det1.prototxt", 11), ("models/squeezenet_v1.1/deploy.prototxt", 17)],
    ids=["pnet", "squeezenet"],
)
def test_shared_free_size_nets_refuse_every_size_below_their_minimum(prototxt, minimum):
    model = caffe2keras.convert(SHARED / "caffe" / prototxt, input_shapes=FREE)
    for size in range(1, minimum):
        with pytest.raises(ValueError, match="smaller than"):
            model(np.ones((1, size, minimum, 3), np.float32))
    outputs = model(np.ones((1, minimum, minimum, 3), np.float32))
    for output in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
        assert np.isfinite(np.asarray(output)).all()


# ------------------------------------------------------------------ a mean image for a free size


def test_a_mean_image_for_a_free_size_input_is_one_clear_error(fcn, tmp_path, capsys):
    path = mean_file(tmp_path / "mean.binaryproto", np.full((1, 3, 20, 20), 100.0, np.float32))
    out = tmp_path / "m.keras"
    status, err = cli(["convert", *fcn, "--input-shape", "data=1,3,?,?", "--mean", path, "-o", out, "-q"], capsys)
    assert_one_error_line(status, err, "free size", "--mean B,G,R", "Received: mean.shape=(3, 20, 20)")
    assert main(["convert", *map(str, fcn), "--input-shape", "data=1,3,?,?", "--mean", "1,2,3", "-o", str(out)]) == 0
