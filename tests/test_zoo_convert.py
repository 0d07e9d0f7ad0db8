"""`caffe2keras zoo convert` on a served fixture net: preprocessing built in, labels carried to `predict`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from caffe2keras.cli import main
from tests.test_zoo_download import zoo  # noqa: F401  (the served zoo fixture)


def test_zoo_convert_then_predict_prints_label_names(zoo, tmp_path, capsys):  # noqa: F811
    cv2 = pytest.importorskip("cv2")
    model = tmp_path / "tiny.keras"
    assert main(["zoo", "convert", "tiny", "-o", str(model), "-q"]) == 0
    image = tmp_path / "image.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    capsys.readouterr()
    assert main(["predict", str(model), str(image), "--top", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    labels = {entry["label"] for entry in report[0]["top"]}
    assert labels == {"n00000001 red thing", "n00000002 green thing", "n00000003 blue thing"}


def test_embedded_preprocessing_is_the_catalogs(zoo, tmp_path):  # noqa: F811
    """With the catalog's BGR mean and scale built in, RGB pixels give what the bare net gives Caffe's blob."""
    import keras

    import caffe2keras.layers  # noqa: F401  (registers the custom layers for loading)

    with_pre, bare = tmp_path / "pre.keras", tmp_path / "bare.keras"
    assert main(["zoo", "convert", "tiny", "-o", str(with_pre), "-q"]) == 0
    assert main(["zoo", "convert", "tiny", "-o", str(bare), "-q", "--no-preprocess"]) == 0
    rgb = np.random.default_rng(1).uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    pre = zoo.entries["tiny"]["preprocessing"]
    blob = (rgb[..., ::-1] - np.float32(pre["mean"])) * np.float32(pre["scale"])  # Caffe's input, by hand
    expected = keras.saving.load_model(bare, safe_mode=True).predict(blob, verbose=0)
    got = keras.saving.load_model(with_pre, safe_mode=True).predict(rgb, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
