"""One module per layer family; importing them registers their converters."""

from caffe2keras.converters import (  # noqa: F401
    activations,
    arithmetic,
    convolution,
    detection,
    inner_product,
    normalization,
    parameter,
    pooling,
    recurrent,
    reduction,
    resampling,
    reshaping,
    unsupported,
)
from caffe2keras.converters.base import (
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
