"""One module per layer family; importing them registers their converters.

Every module of this package is imported here, found by :mod:`pkgutil` in the package's own
directory (never the working directory), so a new converter module needs no line here.
"""

import importlib
import pkgutil

from caffe2keras.default_backend import use_default_backend

use_default_backend()  # conversion runs on JAX unless the user chose a backend: before Keras loads

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and not _module.name.endswith("_test"):
        importlib.import_module(f"{__name__}.{_module.name}")

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
