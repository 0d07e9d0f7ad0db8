"""The package keeps its own structure rules: the layers never reach the Caffe side, and every
built-in converter says what it converts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from caffe2keras.converters import registered_types, rule_for

CAFFE_SIDE = ("google.protobuf", "caffe2keras.caffe", "caffe2keras.graph", "caffe2keras.converters")


def test_importing_the_layers_leaves_the_caffe_side_unloaded():
    # Loading a saved model needs only caffe2keras.layers.
    probe = f"import sys, caffe2keras.layers; print(sorted(m for m in sys.modules if m.startswith({CAFFE_SIDE!r})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_built_in_converter_has_a_docstring():
    converts = {rule_for(t).convert for t in registered_types()}
    built_in = {c for c in converts if c.__module__.startswith("caffe2keras.converters.")}
    assert len(built_in) > 40
    assert [f"{c.__module__}.{c.__name__}" for c in built_in if not (c.__doc__ or "").strip()] == []


def test_importing_the_layers_registers_every_layer_module():
    # A new layer module reloads from a saved model without a line in layers/__init__.py.
    probe = (
        "import sys, caffe2keras.layers; print(sorted(m for m in sys.modules if m.startswith('caffe2keras.layers.')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    package = Path(__file__).resolve().parents[1] / "src" / "caffe2keras" / "layers"
    modules = {p.stem for p in package.glob("*.py")} - {"__init__", "conftest"}
    expected = sorted(f"caffe2keras.layers.{m}" for m in modules if not m.endswith("_test"))
    assert result.stdout.strip() == str(expected)
