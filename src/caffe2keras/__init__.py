"""caffe2keras: Caffe models (prototxt + caffemodel) to Keras 3, with Caffe's exact numbers."""

import os

# JAX is the default backend; a user's KERAS_BACKEND setting wins. Set before Keras is imported.
os.environ.setdefault("KERAS_BACKEND", "jax")

from caffe2keras import layers
from caffe2keras.api import convert, parameter_shapes, register_converter
from caffe2keras.caffe import extend_schema
from caffe2keras.converters import Node, Step
from caffe2keras.errors import (
    Caffe2KerasError,
    ConversionWarning,
    InputShapeError,
    LayerError,
    ModelFileError,
    NetError,
    RegistryError,
    SchemaError,
    ShapeError,
    UnsupportedLayersError,
    UnsupportedParameterError,
    VerifyError,
    WeightsError,
)
from caffe2keras.saving import save_model
from caffe2keras.verify import VerifyReport, verify

__version__ = "0.1.0"

__all__ = [
    "Caffe2KerasError",
    "ConversionWarning",
    "InputShapeError",
    "LayerError",
    "ModelFileError",
    "NetError",
    "Node",
    "RegistryError",
    "SchemaError",
    "ShapeError",
    "Step",
    "UnsupportedLayersError",
    "UnsupportedParameterError",
    "VerifyError",
    "VerifyReport",
    "WeightsError",
    "convert",
    "extend_schema",
    "layers",
    "parameter_shapes",
    "register_converter",
    "save_model",
    "verify",
]
