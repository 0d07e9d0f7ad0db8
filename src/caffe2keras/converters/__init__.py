"""One module per layer family; importing them registers their converters.

Every module of this package is imported here, found by :mod:`pkgutil` in the package's own
directory (never the working directory), so a new converter module needs no line here. None of
them imports Keras (see :mod:`caffe2keras.converters.keras_layers`): planning runs without it.
"""

import importlib
import pkgutil

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

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and not _module.name.endswith("_test"):
        importlib.import_module(f"{__name__}.{_module.name}")


__all__ = ["IDENTITY", "LayerRule", "Node", "RegistryError", "Step", "register_rule", "registered_types", "rule_for"]
