"""Every import order docs/loading.md shows, each in a fresh process, as on a plain install.

``pip install caffe2keras`` brings JAX, not TensorFlow. The children run with ``KERAS_BACKEND``
unset, a Keras home of their own (no ``keras.json``), and TensorFlow blocked (``None`` in
``sys.modules`` makes its import fail as if it were not installed) where the case is the plain
install. Each loads a converted model that needs caffe2keras' layers and prints the backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

import caffe2keras
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.synthetic import synthetic_weights

pytestmark = pytest.mark.slow  # each case starts Python and Keras afresh: seconds each

SRC = os.path.dirname(os.path.dirname(caffe2keras.__file__))
NO_TENSORFLOW = "import sys; sys.modules['tensorflow'] = None\n"
LOAD = "model = keras.saving.load_model(PATH); print(keras.backend.backend())\n"

# The documented orders (docs/loading.md, "Import orders"), with what they print.
ORDERS = {
    "caffe2keras_then_keras": ("import caffe2keras\nimport keras\n", {}),
    "layers_then_keras": ("import caffe2keras.layers\nimport keras\n", {}),
    "convert_then_keras": ("from caffe2keras import convert\nimport keras\n", {}),
    "keras_then_caffe2keras_with_backend_set": ("import keras\nimport caffe2keras\n", {"KERAS_BACKEND": "jax"}),
}

# A ceil-mode pooling that Keras's own pooling cannot do: the model needs CaffePooling2D to load.
NET = """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("orders")
    prototxt = root / "net.prototxt"
    prototxt.write_text(NET)
    write_caffemodel(root / "net.caffemodel", synthetic_weights(prototxt, seed=0))
    model = caffe2keras.convert(prototxt, root / "net.caffemodel", preprocessing={"mean": [1.0], "scale": 0.5})
    path = root / "net.keras"
    caffe2keras.save_model(model, path)
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
    assert "caffe2keras>CaffePooling2D" in config and "caffe2keras>CaffePreprocessing" in config
    return path


def run_child(script: str, tmp_path, env_extra: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "PYTHONPATH")}
    env |= {"PYTHONPATH": SRC, "KERAS_HOME": str(tmp_path / "keras_home")} | env_extra
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("order", ORDERS)
def test_documented_order_loads_on_a_jax_only_install(order, saved, tmp_path):
    imports, env_extra = ORDERS[order]
    done = run_child(f"{NO_TENSORFLOW}{imports}PATH = {str(saved)!r}\n{LOAD}", tmp_path, env_extra)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "jax"


def test_installing_tensorflow_does_not_move_caffe2keras_off_jax(saved, tmp_path):
    pytest.importorskip("tensorflow")
    imports = ORDERS["caffe2keras_then_keras"][0]
    done = run_child(f"{imports}PATH = {str(saved)!r}\n{LOAD}", tmp_path, {})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "jax"


def test_importing_caffe2keras_imports_no_keras(tmp_path):
    done = run_child("import sys, caffe2keras\nprint('keras' in sys.modules)", tmp_path, {})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False"]
