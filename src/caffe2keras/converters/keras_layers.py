"""The Keras modules the converters make layers from, imported when a converter first makes one.

Planning a layer (its checks and shape rule) needs no Keras, so that the ONNX writer plans with the
same converters without loading Keras, JAX or TensorFlow: converter modules name Keras through
these stand-ins (``layers.Dense``, ``caffe_layers.Affine``, ``initializers.Constant``) and never
import it themselves.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from caffe2keras.default_backend import use_default_backend


class _OnFirstUse:
    """A module imported on first attribute access."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        use_default_backend()  # conversion runs on JAX unless the user chose a backend: before Keras loads
        module: ModuleType = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<{self._name}, imported on first use>"


layers = _OnFirstUse("keras.layers")
initializers = _OnFirstUse("keras.initializers")
caffe_layers = _OnFirstUse("caffe2keras.layers")  # the custom layers, which import Keras
caffe_initializers = _OnFirstUse("caffe2keras.layers.initializers")  # CaffeFiller and the filler types it knows
