"""caffe2keras: Caffe models (prototxt + caffemodel) to Keras 3, with Caffe's exact numbers.

Names are imported on first use (PEP 562), so ``import caffe2keras`` is quick and the
command line's ``--help`` imports neither Keras nor a backend. Importing the package
overrides no working backend choice, so ``import caffe2keras.layers`` (all that loading a
saved model needs) leaves a configured backend to Keras; the conversion side defaults to
JAX when it is first used.
"""

import os
import sys


def _started_as_our_module() -> bool:
    """Whether this import is ``python -m caffe2keras[...]`` finding its package (``-m`` is still argv[0])."""
    if sys.argv[:1] != ["-m"]:
        return False
    args = getattr(sys, "orig_argv", [])
    for index, arg in enumerate(args[1:], 1):
        if arg.startswith("-m"):
            module = arg[2:] or (args[index + 1] if index + 1 < len(args) else "")
            return module.split(".")[0] == "caffe2keras"
    return False


# `python -m caffe2keras` puts the working directory first on sys.path, so a `numpy.py` or `keras.py`
# lying there would be imported, and run, in place of the real module. This package is found
# already and its modules come from its own folder: the working directory is taken off the path
# before anything else is imported (see docs/robustness.md).
if _started_as_our_module() and sys.path and sys.path[0] == os.getcwd():
    del sys.path[0]

import importlib  # noqa: E402  (after the path is cleaned)
import importlib.util  # noqa: E402
import json  # noqa: E402

from caffe2keras._version import __version__ as __version__  # noqa: E402
from caffe2keras.default_backend import use_default_backend  # noqa: E402


def _keras_configured_backend() -> str:
    """The backend Keras will load without ``KERAS_BACKEND``: its config file's, else its default."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as file:
            return str(json.load(file).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


# Keras' own default, TensorFlow, is seldom installed beside caffe2keras (which brings JAX): where
# the backend Keras would load is missing, `import keras` would fail, so JAX becomes the default.
# A backend that is set, or configured and installed, is left alone.
# A dotted or odd name from the config file is no backend, and find_spec would import its parent package.
_configured = _keras_configured_backend()
if "KERAS_BACKEND" not in os.environ and (
    not _configured.isidentifier() or importlib.util.find_spec(_configured) is None
):
    use_default_backend()


# Public name -> the module that defines it.
_EXPORTS = {
    "convert": "caffe2keras.api",
    "parameter_shapes": "caffe2keras.api",
    "register_converter": "caffe2keras.api",
    "registry_snapshot": "caffe2keras.converters.base",
    "extend_schema": "caffe2keras.caffe",
    "Node": "caffe2keras.converters",
    "Step": "caffe2keras.converters",
    "Preprocessing": "caffe2keras.preprocessing",
    "preprocess_input": "caffe2keras.preprocessing",
    "decode_predictions": "caffe2keras.labels",
    "model_labels": "caffe2keras.labels",
    "read_labels": "caffe2keras.labels",
    "export_model": "caffe2keras.export",
    "save_model": "caffe2keras.saving",
    "summarize": "caffe2keras.summary",
    "NetSummary": "caffe2keras.summary",
    "load_caffe_weights": "caffe2keras.transplant",
    "WeightsReport": "caffe2keras.transplant",
    "VerifyReport": "caffe2keras.verification",
    "verify": "caffe2keras.verification",
    **dict.fromkeys(
        (
            "ArgumentError",
            "CacheError",
            "Caffe2KerasError",
            "ConversionWarning",
            "DownloadError",
            "HashMismatchError",
            "ExportError",
            "InputShapeError",
            "LayerError",
            "ModelFileError",
            "NetError",
            "PreprocessingError",
            "RegistryError",
            "SchemaError",
            "ShapeError",
            "UnsupportedLayersError",
            "UnsupportedParameterError",
            "UnverifiedNetError",
            "VerifyError",
            "WeightsError",
            "WeightsPairingError",
            "ZooError",
        ),
        "caffe2keras.errors",
    ),
}

__all__ = sorted([*_EXPORTS, "__version__", "layers"])


def __getattr__(name: str):
    if name == "layers":  # the custom layers, registered for loading saved models
        return importlib.import_module("caffe2keras.layers")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'caffe2keras' has no attribute {name!r}")
    use_default_backend()
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__():
    return __all__
