"""Every Zoo prototxt converts (architecture only) and saves as .keras."""

from __future__ import annotations

import keras
import pytest

import caffe2keras
from tests.shared import SHARED


def zoo_prototxts():
    root = SHARED / "caffe" / "models"
    if not root.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{root} not found"), id="no-shared")]
    return [pytest.param(p, id=f"{p.parent.name}/{p.stem}") for p in sorted(root.glob("*/*.prototxt"))]


# Whole nets: the slow tier. The fast tier converts the small Zoo nets with their weights
# (tests/test_golden.py), and SSD's and ShuffleNet's layers in tests of their own.
@pytest.mark.slow
@pytest.mark.parametrize("prototxt", zoo_prototxts())
def test_architecture_converts_and_saves(prototxt, tmp_path):
    model = caffe2keras.convert(prototxt)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert reloaded.output_names == model.output_names
    assert [tuple(t.shape) for t in reloaded.outputs] == [tuple(t.shape) for t in model.outputs]
