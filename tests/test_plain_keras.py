"""A net of standard Keras layers loads and predicts with Keras alone, caffe2keras unimportable;
``import caffe2keras.layers`` imports nothing of the Caffe side and picks no backend."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.layout import Layout
from caffe2keras.synthetic import synthetic_weights
from tests.golden import Case, assert_matches
from tests.shared import SHARED, requires_shared

# Run with `python -I` (no PYTHONPATH, no user site) and caffe2keras made unimportable: the
# editable install would otherwise still find it.
PLAIN_KERAS = """
import sys
sys.modules["caffe2keras"] = None
import keras
import numpy as np
model = keras.saving.load_model(sys.argv[1])
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
print(keras.backend.backend())
"""


def installed(backend: str) -> bool:
    return importlib.util.find_spec({"jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}[backend]) is not None


def backends():
    """The backends to load in, JAX in the fast tier (each is a new process that imports its backend)."""
    return [
        pytest.param(
            b,
            marks=[pytest.mark.skipif(not installed(b), reason=f"{b} is not installed")]
            + [pytest.mark.slow] * (b != "jax"),
        )
        for b in ("jax", "tensorflow", "torch")
    ]


def predict_with_plain_keras(path, x, tmp_path, backend="jax"):
    np.save(tmp_path / "x.npy", x)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"KERAS_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-I", "-c", PLAIN_KERAS, str(path), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == backend
    return np.load(tmp_path / "y.npy")


def custom_objects_in(path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
    return sorted({part.split('"')[0] for part in config.split('"caffe2keras>')[1:]})


# BVLC's LeNet, with the fillers its training net declares.
LENET = """
name: "LeNet"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 28 dim: 28 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 50 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
        inner_product_param { num_output: 500 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 10 weight_filler { type: "gaussian" std: 0.01 } } }
layer { name: "prob" type: "Softmax" bottom: "ip2" top: "prob" }
"""


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    root = tmp_path_factory.mktemp("lenet")
    prototxt = root / "lenet.prototxt"
    prototxt.write_text(LENET)
    write_caffemodel(root / "lenet.caffemodel", synthetic_weights(prototxt, seed=0))
    model = caffe2keras.convert(prototxt, root / "lenet.caffemodel")
    caffe2keras.save_model(model, root / "lenet.keras")
    return model, root / "lenet.keras"


@pytest.mark.parametrize("backend", backends())
def test_lenet_loads_and_predicts_without_caffe2keras(lenet, backend, tmp_path):
    model, path = lenet
    assert custom_objects_in(path) == []
    x = np.random.default_rng(0).standard_normal((2, *model.input.shape[1:])).astype(np.float32)
    expected = model.predict(x, verbose=0)
    assert isinstance(expected, np.ndarray)  # one output: an array, not a list
    np.testing.assert_allclose(predict_with_plain_keras(path, x, tmp_path, backend), expected, rtol=1e-5, atol=1e-6)


@requires_shared
@pytest.mark.slow
def test_vgg16_loads_and_predicts_without_caffe2keras(zoo_weights, tmp_path):
    case = Case.load(SHARED / "golden" / "zoo" / "vgg16")
    model = caffe2keras.convert(SHARED / "caffe" / "models" / "vgg16" / "deploy.prototxt", zoo_weights(case.path))
    path = tmp_path / "vgg16.keras"
    caffe2keras.save_model(model, path)
    assert custom_objects_in(path) == []
    x = Layout("channels_last").to_keras(case.reference("data", "in"))
    expected = model.predict(x, verbose=0)
    del model
    actual = predict_with_plain_keras(path, x, tmp_path)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    assert_matches(actual, case.reference("prob"), "prob (real Caffe)")


LAYERS_IMPORT = """
import sys
import keras
before = set(sys.modules)
import caffe2keras.layers
print(sorted(set(sys.modules) - before))
"""


# The Caffe side, and what only it needs: none of it is for loading a model.
CAFFE_SIDE = ("google.protobuf", "h5py", "cv2", "caffe2keras.caffe", "caffe2keras.converters", "caffe2keras.verif")
CAFFE_SIDE += ("caffe2keras.api", "caffe2keras.builder", "caffe2keras.graph", "caffe2keras.cli")


@pytest.fixture(scope="module")
def added_by_importing_the_layers() -> list[str]:
    """The modules ``import caffe2keras.layers`` adds to Keras', in a fresh process (loading a
    saved model needs only that import)."""
    env = os.environ | {"KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", LAYERS_IMPORT], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.replace("'", '"'))


def test_importing_the_layers_imports_no_caffe_side(added_by_importing_the_layers):
    added = added_by_importing_the_layers
    assert [m for m in added if not m.startswith("caffe2keras")] == []  # nothing beyond what Keras loads
    assert [m for m in added if m.startswith(CAFFE_SIDE)] == []


def test_importing_the_layers_registers_every_layer_module(added_by_importing_the_layers):
    # A new layer module reloads from a saved model without a line in layers/__init__.py.
    package = Path(__file__).resolve().parents[1] / "src" / "caffe2keras" / "layers"
    modules = {p.stem for p in package.glob("*.py")} - {"__init__", "conftest"}
    expected = sorted(f"caffe2keras.layers.{m}" for m in modules if not m.endswith("_test"))
    assert sorted(m for m in added_by_importing_the_layers if m.startswith("caffe2keras.layers.")) == expected


def test_importing_the_layers_leaves_the_backend_to_keras(tmp_path):
    # Keras' own configuration file names a backend no one would default to.
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "numpy"}))
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"KERAS_HOME": str(tmp_path)}
    script = "import os, caffe2keras.layers, keras; print(keras.backend.backend(), os.environ.get('KERAS_BACKEND'))"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["numpy", "None"]


def test_importing_caffe2keras_defaults_to_jax_where_the_configured_backend_is_missing(tmp_path):
    """`import caffe2keras, keras` must not fail on Keras' default when that backend is not installed."""
    if importlib.util.find_spec("openvino") is not None:
        pytest.skip("openvino is installed: it cannot stand for a missing backend")
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "openvino"}))
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"KERAS_HOME": str(tmp_path)}
    script = "import caffe2keras, keras; print(keras.backend.backend())"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["jax"]
