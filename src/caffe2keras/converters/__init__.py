"""One module per layer family; importing them registers their converters."""

from caffe2keras import use_default_backend

use_default_backend()  # conversion runs on JAX unless the user chose a backend: before Keras loads

from caffe2keras.converters import (  # noqa: E402, F401
    activations,
    arithmetic,
    convolution,
    detection,
    inner_product,
    normalization,
    parameter,
    pooling,
    rcnn,
    recurrent,
    reduction,
    resampling,
    reshaping,
    unsupported,
)
from caffe2keras.converters.base import (  # noqa: E402
    IDENTITY,
    LayerRule,
    Node,
    RegistryError,
    Step,
    register_rule,
    registered_types,
    rule_for,
)

__all__ = ["IDENTITY", "LayerRule", "Node", "RegistryError", "Step", "register_rule", "registered_types", "rule_for"]
