"""caffe2keras: Caffe models (prototxt + caffemodel) to Keras 3, with Caffe's exact numbers.

Names are imported on first use (PEP 562), so ``import caffe2keras`` is quick and the
command line's ``--help`` imports neither Keras nor a backend. Importing the package picks
the backend (``caffe2keras.keras_setup`` states the rule: ``KERAS_BACKEND``, else a chosen
one in ``keras.json``, else JAX) and registers the custom layers as soon as Keras is
imported, so ``keras.saving.load_model`` then loads every converted model.
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

from caffe2keras._version import __version__ as __version__  # noqa: E402
from caffe2keras.default_backend import use_default_backend as use_default_backend  # noqa: E402
from caffe2keras.keras_setup import choose_backend, register_layers_with_keras  # noqa: E402

choose_backend()
register_layers_with_keras()


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
    "to_onnx": "caffe2keras.onnx",
    "save_model": "caffe2keras.saving",
    "parameter_multipliers": "caffe2keras.saving",
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

__all__ = sorted([*_EXPORTS, "__version__", "layers", "use_default_backend"])


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
