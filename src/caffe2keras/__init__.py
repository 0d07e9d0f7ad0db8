"""caffe2keras: Caffe models (prototxt + caffemodel) to Keras 3, with Caffe's exact numbers.

Names are imported on first use (PEP 562), so ``import caffe2keras`` is quick and the
command line's ``--help`` imports neither Keras nor a backend. Importing the package
overrides no working backend choice, so ``import caffe2keras.layers`` (all that loading a
saved model needs) leaves a configured backend to Keras; the conversion side defaults to
JAX when it is first used.
"""

import importlib
import importlib.util
import json
import os

from caffe2keras._version import __version__ as __version__
from caffe2keras.default_backend import use_default_backend


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
if "KERAS_BACKEND" not in os.environ and importlib.util.find_spec(_keras_configured_backend()) is None:
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
