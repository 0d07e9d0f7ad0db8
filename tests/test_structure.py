"""The package keeps its own structure rules: every built-in converter says what it converts.

(That importing the layers leaves the Caffe side unloaded and registers every layer module is
checked in tests/test_plain_keras.py, from one fresh process.)"""

from __future__ import annotations

from caffe2keras.converters import registered_types, rule_for


def test_every_built_in_converter_has_a_docstring():
    converts = {rule_for(t).convert for t in registered_types()}
    built_in = {c for c in converts if c.__module__.startswith("caffe2keras.converters.")}
    assert len(built_in) > 40
    assert [f"{c.__module__}.{c.__name__}" for c in built_in if not (c.__doc__ or "").strip()] == []
