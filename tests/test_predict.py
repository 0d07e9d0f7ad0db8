"""Labels, top-k, ``preprocess_input`` and ``caffe2keras predict`` on a tiny net, against numpy."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe.writer import blob_bytes, write_caffemodel
from caffe2keras.cli import main

CLASSES = 4
TRAIN_VAL = """
name: "tiny"
layer {
  name: "images" type: "MemoryData" top: "data" top: "label"
  memory_data_param { batch_size: 1 channels: 3 height: 6 width: 5 }
  transform_param { mean_value: 104 mean_value: 117 mean_value: 123 scale: 0.017 }
}
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 4 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
RNG = np.random.default_rng(0)
WEIGHT = RNG.standard_normal((CLASSES, 3 * 6 * 5)).astype(np.float32) * 0.5
BIAS = RNG.standard_normal(CLASSES).astype(np.float32)
LABELS = ["n01 tench, Tinca tinca", "n02 goldfish", "n03 shark", "n04 ray"]


@pytest.fixture
def tiny(tmp_path):
    prototxt = tmp_path / "tiny.prototxt"
    prototxt.write_text(TRAIN_VAL)
    weights = tmp_path / "tiny.caffemodel"
    write_caffemodel(weights, [("fc", "InnerProduct", [WEIGHT, BIAS])])
    (tmp_path / "labels.txt").write_text("\n".join(LABELS) + "\n\n")
    return prototxt, weights


def probabilities(rgb_hwc: np.ndarray) -> np.ndarray:
    """The tiny net by hand: Caffe's blob (BGR - mean) * scale, flattened C,H,W, then softmax."""
    blob = (rgb_hwc[..., ::-1].astype(np.float32) - np.float32([104, 117, 123])) * np.float32(0.017)
    logits = WEIGHT.astype(np.float64) @ blob.transpose(2, 0, 1).reshape(-1) + BIAS
    e = np.exp(logits - logits.max())
    return e / e.sum()


def write_image(path, rgb_hwc):
    import cv2

    cv2.imwrite(str(path), np.ascontiguousarray(rgb_hwc[..., ::-1]))  # PNG: lossless, as BGR
    return str(path)


def test_predict_prints_the_labels_the_model_carries(tiny, tmp_path, capsys):
    prototxt, weights = tiny
    model_path = tmp_path / "tiny.keras"
    argv = ["convert", str(prototxt), str(weights), "-o", str(model_path), "--preprocess", "-q"]
    assert main([*argv, "--labels", str(tmp_path / "labels.txt")]) == 0
    assert caffe2keras.model_labels(keras.saving.load_model(model_path)) == LABELS
    images = [RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8) for _ in range(2)]
    paths = [write_image(tmp_path / f"im{i}.png", im) for i, im in enumerate(images)]
    capsys.readouterr()
    assert main(["predict", str(model_path), *paths, "--json", "--top", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    for entry, path, image in zip(report, paths, images):
        expected = probabilities(image)
        best = np.argsort(-expected)[:3]
        assert entry["image"] == path
        assert [t["class"] for t in entry["top"]] == best.tolist()
        assert [t["label"] for t in entry["top"]] == [LABELS[i] for i in best]
        np.testing.assert_allclose([t["probability"] for t in entry["top"]], expected[best], atol=1e-5)


def test_predict_resizes_and_takes_labels_from_the_command_line(tiny, tmp_path, capsys):
    prototxt, weights = tiny
    model_path = tmp_path / "tiny.keras"
    assert main(["convert", str(prototxt), str(weights), "-o", str(model_path), "--preprocess", "-q"]) == 0
    big = write_image(tmp_path / "big.png", RNG.integers(0, 256, (60, 50, 3), dtype=np.uint8))
    labels = tmp_path / "other.txt"
    labels.write_text("a\nb\nc\nd\n")
    capsys.readouterr()
    assert main(["predict", str(model_path), big, "--labels", str(labels), "--top", "4"]) == 0
    table = capsys.readouterr().out
    assert "probability" in table
    assert all(f"│ {name} " in table for name in "abcd")


def test_predict_warns_when_the_model_has_no_preprocessing(tiny, tmp_path, capsys):
    prototxt, weights = tiny
    model_path = tmp_path / "raw.keras"
    assert main(["convert", str(prototxt), str(weights), "-o", str(model_path), "-q"]) == 0
    capsys.readouterr()
    image = write_image(tmp_path / "im.png", RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    assert main(["predict", str(model_path), image, "--top", "1"]) == 0
    err = capsys.readouterr().err
    assert err.count("caffe2keras: warning:") == 1 and "no preprocessing built in" in err


def test_convert_warns_in_one_line_what_caffe_did(tiny, tmp_path, capsys):
    prototxt, weights = tiny
    assert main(["convert", str(prototxt), str(weights), "-o", str(tmp_path / "m.keras"), "-q"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("caffe2keras: warning: Caffe's data layer 'images' fed blob 'data'")
    assert "minus the mean values 104, 117, 123, times 0.017" in lines[0] and "--preprocess" in lines[0]


def test_predict_errors_name_the_file(tiny, tmp_path, capsys):
    prototxt, weights = tiny
    model_path = tmp_path / "tiny.keras"
    assert main(["convert", str(prototxt), str(weights), "-o", str(model_path), "--preprocess", "-q"]) == 0
    assert main(["predict", str(model_path), str(tmp_path / "missing.png")]) == 1
    assert "missing.png: no such file." in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "none.keras"), str(prototxt)]) == 1
    assert "none.keras: no such file." in capsys.readouterr().err


FREE_SIZE_NET = """
name: "free"
input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" pooling_param { pool: AVE global_pooling: true } }
layer { name: "prob" type: "Softmax" bottom: "pool" top: "prob" }
"""


def test_predict_runs_a_free_size_model_at_each_images_own_size(tmp_path, capsys):
    """Global average pooling then softmax: each image's answer is its mean BGR pixel, by hand."""
    prototxt = tmp_path / "free.prototxt"
    prototxt.write_text(FREE_SIZE_NET)
    model_path = tmp_path / "free.keras"
    argv = ["convert", str(prototxt), "-o", str(model_path), "--input-shape", "data=1,3,?,?", "--mean", "104,117,123"]
    assert main([*argv, "-q"]) == 0
    sizes = [(6, 5), (9, 7), (6, 5)]  # two sizes: a batch of two and a batch of one
    images = [RNG.integers(0, 256, (*size, 3), dtype=np.uint8) for size in sizes]
    paths = [write_image(tmp_path / f"im{i}.png", image) for i, image in enumerate(images)]
    capsys.readouterr()
    assert main(["predict", str(model_path), *paths, "--json", "--top", "3"]) == 0
    for entry, image in zip(json.loads(capsys.readouterr().out), images):
        mean_bgr = image[..., ::-1].reshape(-1, 3).astype(np.float64).mean(axis=0) - [104, 117, 123]
        expected = np.exp(mean_bgr - mean_bgr.max()) / np.exp(mean_bgr - mean_bgr.max()).sum()
        by_class = {t["class"]: t["probability"] for t in entry["top"]}
        np.testing.assert_allclose([by_class[c] for c in range(3)], expected, atol=1e-5)


def test_predict_on_caffe_files_says_to_convert_first(tiny, tmp_path, capsys):
    prototxt, weights = tiny
    image = write_image(tmp_path / "im.png", RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    for path, kind in ((prototxt, "a Caffe net definition"), (weights, "a Caffe weights file")):
        assert main(["predict", str(path), image]) == 1
        err = capsys.readouterr().err
        assert f"{path}: this is {kind}, not a .keras model; convert it first with caffe2keras convert." in err
    (tmp_path / "notes.txt").write_text("not a model")
    assert main(["predict", str(tmp_path / "notes.txt"), image]) == 1
    err = capsys.readouterr().err
    assert "not a .keras model (a .keras file is a zip archive)" in err and "SavedModel" not in err


def test_predict_says_a_directory_is_a_directory(tiny, tmp_path, capsys):
    prototxt, weights = tiny
    model_path = tmp_path / "tiny.keras"
    assert main(["convert", str(prototxt), str(weights), "-o", str(model_path), "--preprocess", "-q"]) == 0
    capsys.readouterr()
    assert main(["predict", str(model_path), str(tmp_path)]) == 1
    assert f"{tmp_path}: is a directory, not an image file." in capsys.readouterr().err
    assert main(["predict", str(tmp_path), str(model_path)]) == 1
    assert f"{tmp_path}: is a directory, not a .keras model file." in capsys.readouterr().err


def test_bad_mean_is_an_error_and_leaves_no_file(tiny, tmp_path, capsys):
    prototxt, weights = tiny
    output = tmp_path / "m.keras"
    assert main(["convert", str(prototxt), str(weights), "-o", str(output), "--mean", "1,2"]) == 1
    err = capsys.readouterr().err
    assert "has 3 channels" in err and "Received: mean=[1.0, 2.0]" in err
    assert not list(tmp_path.glob("*.keras"))


def test_preprocess_input_outside_the_model(tiny):
    prototxt, _ = tiny
    images = RNG.integers(0, 256, (2, 6, 5, 3), dtype=np.uint8)
    blob = (images[..., ::-1].astype(np.float32) - np.float32([104, 117, 123])) * np.float32(0.017)
    np.testing.assert_array_equal(caffe2keras.preprocess_input(images, prototxt=prototxt), blob)
    given = caffe2keras.preprocess_input(images[0], mean=[104, 117, 123], scale=0.017)
    np.testing.assert_array_equal(given, blob[0])
    first = caffe2keras.preprocess_input(images.transpose(0, 3, 1, 2), prototxt=prototxt, data_format="channels_first")
    np.testing.assert_array_equal(first, blob.transpose(0, 3, 1, 2))


def test_preprocess_input_crops_a_mean_file(tmp_path):
    mean = RNG.uniform(0, 255, (3, 9, 8)).astype(np.float32)
    (tmp_path / "mean.binaryproto").write_bytes(blob_bytes(mean[None], legacy=True))
    images = RNG.integers(0, 256, (1, 6, 5, 3), dtype=np.uint8)
    got = caffe2keras.preprocess_input(images, mean=tmp_path / "mean.binaryproto", channel_order="rgb")
    np.testing.assert_array_equal(got, images - mean[:, 1:7, 1:6].transpose(1, 2, 0))


@pytest.mark.filterwarnings("ignore::caffe2keras.errors.ConversionWarning")
def test_labels_without_preprocessing_ride_on_an_identity_step(tiny):
    prototxt, weights = tiny
    model = caffe2keras.convert(prototxt, weights, labels=LABELS, preprocessing=None)
    assert caffe2keras.model_labels(model) == LABELS
    blob = RNG.standard_normal((1, 6, 5, 3)).astype(np.float32)
    step = model.get_layer("data_preprocess")
    np.testing.assert_array_equal(np.asarray(keras.Model(model.inputs, step.output).predict_on_batch(blob)), blob)
    with pytest.raises(caffe2keras.PreprocessingError, match=r"3 labels, but output 'prob' has 4 values"):
        caffe2keras.convert(prototxt, weights, labels=LABELS[:3])


@pytest.mark.parametrize(
    "preprocessing, message",
    [
        ({"input": "nope"}, r"no input 'nope'.*Received: input='nope'"),
        ({"mean": [1.0, 2.0, 3.0, 4.0]}, r"has 3 channels.*Received: mean="),
        ({"mean": np.zeros((3, 5, 5))}, r"at least its 6x5 pixels.*Received: mean.shape=\(3, 5, 5\)"),
        ({"channel_order": "yuv"}, r"channel_order must be one of"),
        ({"input_order": "bgr"}, r"replaced by channel_order.*input_order='bgr' is channel_order='rgb'"),
        ({"colour": "rgb"}, r"Received: keys=\['colour'\]"),
        ("yes", r"preprocessing must be True"),
    ],
)
def test_preprocessing_errors(tiny, preprocessing, message):
    with pytest.raises(caffe2keras.PreprocessingError, match=message):
        caffe2keras.convert(tiny[0], preprocessing=preprocessing)


def test_preprocessing_a_net_that_declares_none_needs_a_mean_or_scale(tmp_path):
    prototxt = tmp_path / "deploy.prototxt"
    prototxt.write_text(
        'input: "data" input_dim: 1 input_dim: 1 input_dim: 4 input_dim: 4\n'
        'layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }\n'
    )
    with pytest.raises(caffe2keras.PreprocessingError, match="declares no preprocessing"):
        caffe2keras.convert(prototxt, preprocessing=True)
    with pytest.raises(caffe2keras.PreprocessingError, match="'bgr' has the model reverse RGB images"):
        caffe2keras.convert(prototxt, preprocessing={"scale": 2.0, "channel_order": "bgr"})
    model = caffe2keras.convert(prototxt, preprocessing=caffe2keras.Preprocessing(scale=2.0))
    np.testing.assert_array_equal(np.asarray(model.predict_on_batch(-np.ones((1, 4, 4, 1)))), np.zeros((1, 4, 4, 1)))


def test_decode_predictions():
    preds = np.array([[0.1, 0.4, 0.1, 0.4], [0.7, 0.1, 0.1, 0.1]], np.float32).reshape(2, 1, 1, 4)
    top = caffe2keras.decode_predictions(preds, LABELS, top=3)
    assert [[i for i, _, _ in row] for row in top] == [[1, 3, 0], [0, 1, 2]]  # ties keep class order
    assert top[1][0][1] == "n01 tench, Tinca tinca"
    assert caffe2keras.decode_predictions(preds, top=1)[0] == [(1, "1", pytest.approx(0.4))]
    with pytest.raises(caffe2keras.PreprocessingError, match="3 labels, but output 'preds' has 4"):
        caffe2keras.decode_predictions(preds, LABELS[:3])


def test_decode_predictions_takes_the_labels_the_model_carries(tiny, tmp_path):
    prototxt, weights = tiny
    model = caffe2keras.convert(prototxt, weights, preprocessing={}, labels=LABELS)
    image = RNG.integers(0, 256, (1, 6, 5, 3)).astype(np.float32)
    top = caffe2keras.decode_predictions(model.predict(image, verbose=0), model=model, top=1)
    best = int(np.argmax(probabilities(image[0])))
    assert top == [[(best, LABELS[best], pytest.approx(probabilities(image[0])[best], abs=1e-5))]]
    with pytest.raises(caffe2keras.PreprocessingError, match="3 labels, but output 'prob' has 4"):
        caffe2keras.decode_predictions(model.predict(image, verbose=0), LABELS[:3], model=model)


def test_predict_names_the_models_output_when_labels_do_not_fit(tiny, tmp_path, capsys):
    prototxt, weights = tiny
    model_path = tmp_path / "tiny.keras"
    assert main(["convert", str(prototxt), str(weights), "-o", str(model_path), "--preprocess", "-q"]) == 0
    image = write_image(tmp_path / "im.png", RNG.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    (tmp_path / "three.txt").write_text("a\nb\nc\n")
    capsys.readouterr()
    assert main(["predict", str(model_path), image, "--labels", str(tmp_path / "three.txt")]) == 1
    assert "there are 3 labels, but output 'prob' has 4 values per image" in capsys.readouterr().err


def test_read_labels_keeps_whole_lines(tmp_path):
    path = tmp_path / "synset_words.txt"
    path.write_text("n01440764 tench, Tinca tinca\r\nn01443537 goldfish, Carassius auratus\n\n")
    assert caffe2keras.read_labels(path) == ["n01440764 tench, Tinca tinca", "n01443537 goldfish, Carassius auratus"]
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(caffe2keras.ModelFileError, match="empty"):
        caffe2keras.read_labels(tmp_path / "empty.txt")


def test_predict_streams_the_files_in_batches(tiny, tmp_path, capsys, monkeypatch):
    """70 files, batches of 32: no more than one batch is decoded at a time, and every file is answered."""
    import caffe2keras.images

    prototxt, weights = tiny
    model_path = tmp_path / "tiny.keras"
    assert main(["convert", str(prototxt), str(weights), "-o", str(model_path), "--preprocess", "-q"]) == 0
    path = write_image(tmp_path / "big.png", RNG.integers(0, 256, (200, 200, 3), dtype=np.uint8))
    read_images, decoded = caffe2keras.images.read_images, []

    def counting(paths, spec):
        decoded.append(len(paths))
        return read_images(paths, spec)

    monkeypatch.setattr(caffe2keras.images, "read_images", counting)
    capsys.readouterr()
    assert main(["predict", str(model_path), *[path] * 70, "--json", "--top", "1"]) == 0
    assert decoded == [32, 32, 6]
    assert [entry["image"] for entry in json.loads(capsys.readouterr().out)] == [path] * 70


def test_the_table_has_a_label_column_only_when_there_are_labels(capsys):
    from caffe2keras.cli.predict import print_table

    print_table(["cat.jpg"], [[(2, "2", 0.9), (0, "0", 0.1)]], "probability")
    numbers_only = capsys.readouterr().out
    print_table(["cat.jpg"], [[(2, "tabby", 0.9), (0, "tench", 0.1)]], "probability")
    labelled = capsys.readouterr().out
    assert "label" not in numbers_only and "class" in numbers_only
    assert "label" in labelled and "tabby" in labelled
