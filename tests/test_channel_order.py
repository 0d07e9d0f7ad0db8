"""Trained nets on real photos: the CLI, the API and Caffe's own pipeline give the same classes.

A converted model with preprocessing takes RGB 0-255; ``channel_order`` says the order the net was
trained on. The oracle is Caffe's ``DataTransformer::Transform`` at TEST time written in numpy
(data_transformer.cpp: centre crop, minus the mean, times the scale, on the image in the net's
channel order), fed to the model converted without preprocessing. The photos ship inside
scikit-image's wheel, so the test runs offline.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import caffe2keras
from caffe2keras.cli import main
from tests.shared import SHARED, requires_shared

TRAINED = SHARED / "caffe" / "trained"
CIFAR10_LABELS = "airplane automobile bird cat deer dog frog horse ship truck".split()
CIFAR10_MEAN_RGB = (125.3, 123.0, 113.9)  # the issue's example: CIFAR-10's channel means, R, G, B
MTCNN_MEAN, MTCNN_SCALE = (127.5,), 0.0078125

# Each test converts a net three times and loads it twice: seconds, so all are in the slow tier.
pytestmark = [
    requires_shared,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::caffe2keras.errors.ConversionWarning"),
]
skimage_data = pytest.importorskip("skimage.data")
cv2 = pytest.importorskip("cv2")


def caffe_transform(image_rgb: np.ndarray, channel_order: str, mean, scale: float, crop: int = 0) -> np.ndarray:
    """``DataTransformer::Transform(cv::Mat)`` at TEST: an (H, W, 3) RGB image to the net's (C, H', W') blob.

    Caffe takes the image's channels as they are stored: BGR as ``cv::imread`` decodes files, RGB
    where the training data was written from RGB planes. ``mean`` is one value per channel of
    that order (or one for all), as ``transform_param.mean_value``.
    """
    pixels = image_rgb[..., ::-1] if channel_order == "bgr" else image_rgb
    height, width = pixels.shape[:2]
    top, left = ((height - crop) // 2, (width - crop) // 2) if crop else (0, 0)
    size = (crop or height, crop or width)
    blob = pixels[top : top + size[0], left : left + size[1]].transpose(2, 0, 1).astype(np.float32)
    return (blob - np.float32(mean).reshape(-1, 1, 1)) * np.float32(scale)


def photo(name: str, size: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """One of scikit-image's photos (RGB uint8), cut to ``box`` and resized as ``predict`` resizes."""
    image = getattr(skimage_data, name)()
    if box is not None:
        top, left, bottom, right = box
        image = image[top:bottom, left:right]
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)


def predicted(model_path, files, labels=None) -> list[list[tuple[int, float]]]:
    """``caffe2keras predict --json``'s top 3 (class, score) of each file."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["predict", str(model_path), *map(str, files), "--top", "3", "--json"]) == 0
    return [[(entry["class"], entry["probability"]) for entry in image["top"]] for image in json.loads(out.getvalue())]


def top3(scores: np.ndarray) -> list[list[tuple[int, float]]]:
    rows = np.asarray(scores).reshape(len(scores), -1)
    return [[(int(i), float(row[i])) for i in np.argsort(-row, kind="stable")[:3]] for row in rows]


def assert_same_top(got, expected, what: str):
    for got_image, expected_image in zip(got, expected, strict=True):
        assert [c for c, _ in got_image] == [c for c, _ in expected_image], what
        np.testing.assert_allclose([s for _, s in got_image], [s for _, s in expected_image], atol=1e-4, err_msg=what)


def check_three_ways(tmp_path, prototxt, weights, images, channel_order, mean, scale, flags, outputs=None):
    """The CLI (convert + predict on PNG files), the API and the numpy DataTransformer agree."""
    import keras

    files = []
    for index, image in enumerate(images):
        files.append(tmp_path / f"photo{index}.png")  # PNG: the files hold exactly the resized pixels
        cv2.imwrite(str(files[-1]), image[..., ::-1])
    model_path = tmp_path / "net.keras"
    output_flags = ["--outputs", ",".join(outputs)] if outputs else []
    assert main(["convert", str(prototxt), str(weights), "-o", str(model_path), "-q", *flags, *output_flags]) == 0
    cli = predicted(model_path, files)

    options = {"mean": list(mean), "scale": scale, "channel_order": channel_order}
    model = caffe2keras.convert(prototxt, weights, outputs=outputs, preprocessing=options)
    batch = np.stack(images)
    api = top3(model.predict_on_batch(batch))
    plain = caffe2keras.convert(prototxt, weights, outputs=outputs)
    outside = top3(plain.predict_on_batch(caffe2keras.preprocess_input(batch, **options)))

    blobs = np.stack([caffe_transform(image, channel_order, mean, scale) for image in images])
    caffe = top3(plain.predict_on_batch(blobs.transpose(0, 2, 3, 1)))
    reloaded = top3(keras.saving.load_model(model_path, safe_mode=True).predict_on_batch(batch))
    for name, got in [("CLI", cli), ("API", api), ("preprocess_input", outside), ("reloaded", reloaded)]:
        assert_same_top(got, caffe, f"{name} against Caffe's DataTransformer")
    return caffe


def test_cifar10_quick_on_chelsea_is_the_issues_rgb_answer(tmp_path):
    """The issue's example: fed as trained (RGB), the cat photo gives frog 0.43-0.44, then cat 0.28-0.29."""
    net = TRAINED / "cifar10_quick"
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(CIFAR10_LABELS) + "\n")
    mean = ",".join(map(str, CIFAR10_MEAN_RGB))
    flags = ["--mean", mean, "--channel-order", "rgb", "--labels", str(labels)]
    images = [photo("chelsea", 32), photo("astronaut", 32), photo("coffee", 32)]
    top = check_three_ways(
        tmp_path,
        net / "cifar10_quick.prototxt",
        net / "cifar10_quick_iter_5000.caffemodel",
        images,
        "rgb",
        CIFAR10_MEAN_RGB,
        1.0,
        flags,
    )
    (first, p_first), (second, p_second) = top[0][:2]
    assert (CIFAR10_LABELS[first], CIFAR10_LABELS[second]) == ("frog", "cat")
    assert p_first == pytest.approx(0.44, abs=0.01) and p_second == pytest.approx(0.29, abs=0.01)


def test_cifar10_full_on_photos(tmp_path):
    net = TRAINED / "cifar10_full"
    mean = ",".join(map(str, CIFAR10_MEAN_RGB))
    images = [photo("chelsea", 32), photo("astronaut", 32), photo("coffee", 32)]
    check_three_ways(
        tmp_path,
        net / "cifar10_full.prototxt",
        net / "cifar10_full_iter_70000.caffemodel",
        images,
        "rgb",
        CIFAR10_MEAN_RGB,
        1.0,
        ["--mean", mean, "--channel-order", "rgb"],
    )


def test_mtcnn_rnet_finds_the_astronauts_face(tmp_path):
    """R-Net (det2) scores 24x24 crops; MTCNN's MATLAB code fed them RGB and transposed (H and W swapped)."""
    net = TRAINED / "mtcnn"
    face = photo("astronaut", 24, box=(80, 180, 180, 280)).transpose(1, 0, 2)
    coffee = photo("coffee", 24).transpose(1, 0, 2)
    flags = ["--mean", "127.5", "--scale", str(MTCNN_SCALE), "--channel-order", "rgb"]
    top = check_three_ways(
        tmp_path,
        net / "det2.prototxt",
        net / "det2.caffemodel",
        [face, coffee],
        "rgb",
        MTCNN_MEAN,
        MTCNN_SCALE,
        flags,
        outputs=["prob1"],
    )
    face_score = dict(top[0])[1]
    assert face_score > 0.9
