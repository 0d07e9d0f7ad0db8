"""Every Caffe layer a conversion keeps is a Keras layer of the same name, on every Zoo prototxt."""

from __future__ import annotations

import pytest

import caffe2keras
from caffe2keras.api import load_graph
from caffe2keras.caffe import read_net
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.graph import DATA_LAYER_TYPES, is_dropped_type
from caffe2keras.keras_names import keras_name
from caffe2keras.synthetic import synthetic_weights
from tests.shared import DEEPER_SIBLINGS, HEAVY_ZOO, SHARED

# Nets with more layers than this take tens of seconds to build on a small CPU.
SLOW_LAYER_COUNT = 60


def _is_slow(path) -> bool:
    return path.read_text().count("layer {") > SLOW_LAYER_COUNT or path.parent.name in HEAVY_ZOO


def zoo_prototxts():
    root = SHARED / "caffe" / "models"
    if not root.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{root} not found"), id="no-shared")]
    return [
        pytest.param(
            path,
            id=f"{path.parent.name}/{path.stem}",
            marks=[pytest.mark.slow] * _is_slow(path),
        )
        for path in sorted(root.glob("*/*.prototxt"))
        if path.parent.name not in DEEPER_SIBLINGS
    ]


@pytest.mark.parametrize("prototxt", zoo_prototxts())
def test_every_kept_caffe_layer_is_found_by_its_name(prototxt, tmp_path):
    kept = [op.name for op in load_graph(prototxt).ops]
    # What the conversion does not keep is what docs/contract.md lists: losses, Accuracy, Silence,
    # HDF5Output, DetectionEvaluate, and data layers (which become inputs named after their tops).
    left_out = {layer.name for layer in read_net(prototxt).layer} - set(kept)
    assert all(
        is_dropped_type(layer.type) or layer.type in DATA_LAYER_TYPES
        for layer in read_net(prototxt).layer
        if layer.name in left_out
    )
    # With weights: without them JAX compiles a random draw for every weight shape (minutes for
    # GoogLeNet on two cores), and the names are the same.
    weights = tmp_path / "synthetic.caffemodel"
    write_caffemodel(weights, synthetic_weights(prototxt))
    model = caffe2keras.convert(prototxt, weights)
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    for name in kept:
        model.get_layer(keras_name(name))  # raises ValueError when missing
    # Layers Keras names itself (re_lu_3, softmax...) would show that a name was lost.
    expected = {keras_name(n) for n in kept} | {t.name for t in model.inputs} | set(model.output_names)
    helpers = [n for n in names if n not in expected]
    assert all(any(n.startswith(f"{keras_name(k)}_") for k in kept) for n in helpers), helpers
