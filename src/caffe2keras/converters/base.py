"""What a converter receives (:class:`Node`), returns (:class:`Step`), and the registry.

A converter is a small pure function ``convert(node) -> Step | list[Step]``
for one Caffe type. It reads the layer's parameters, its Caffe input/output
shapes and its weights from the node, and returns the Keras layers to apply,
each with the arrays its variables start from. The builder wires, names and
applies them. A shape rule ``shapes(op, input_shapes) -> output_shapes``
gives Caffe's output shapes before anything is built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from caffe2keras.caffe.schema import schema_snapshot
from caffe2keras.errors import RegistryError
from caffe2keras.graph import Op, Shape
from caffe2keras.node import Node, require  # defined without Keras, for the ONNX writer
from caffe2keras.shape_rules import ShapeRule


@dataclass(frozen=True, eq=False)
class Step:
    """One Keras layer to apply, as a converter returns it.

    Args:
        layer: a new, unbuilt Keras layer. For a model that reloads with
            ``safe_mode=True``, use Keras' own layers or layers registered with
            ``keras.saving.register_keras_serializable`` -- never ``Lambda``.
        weights: the initial values of the variables the layer creates, in
            creation order, in the layer's own layout (``None`` keeps that
            variable's initializer; an empty sequence keeps them all).
        inputs: what the layer is called on: ints are the Caffe layer's
            bottoms, :class:`Step` objects earlier steps' outputs. By default
            the first step takes every bottom (one tensor, or a list of them)
            and each later step the previous step's output.
        suffix: names a step that is not the last, ``<layer>_<suffix>``; the
            last step is named after the Caffe layer and its output(s) become
            the Caffe layer's top(s).
    """

    layer: object
    weights: Sequence[np.ndarray | None] = ()
    inputs: Sequence[int | Step] | None = None
    suffix: str | None = None  # names a step that is not the last: "<layer>_<suffix>"


Build = Step | Sequence[Step]
IDENTITY: Build = ()  # every top is bottom 0 (Split, Dropout at test time...)


Converter = Callable[[Node], Build]


@dataclass(frozen=True, eq=False)
class LayerDoc:
    """What the layer table (the docs' Supported layers page, ``caffe2keras layers``) says of a type: Markdown cells.

    Types registered with the same ``LayerDoc`` object share one row of the table.
    """

    keras: str  # the Keras layers it becomes
    notes: str  # what of Caffe's behaviour is covered
    origin: str = ""  # where the type comes from when not BVLC Caffe: "forks", "SSD"...


@dataclass(frozen=True)
class LayerRule:
    type: str
    convert: Converter
    shapes: ShapeRule | None  # None: derived from the Keras layers' output shapes
    # Checked before anything is built; returns a reason the layer cannot be converted.
    check: Callable[[Op], str | None] | None = None
    # Caffe's CheckBlobCounts: built-in layers read at least one blob (Parameter none); a plugin's
    # converter decides for itself.
    min_bottoms: int = 0
    doc: LayerDoc | None = None  # its row of the layer table; None: a bare row (a plugin's)
    # A plugin registering this type replaces the built-in rule without replace=True (the built-in
    # "Python" rule knows a few published classes; a user's converter takes every Python layer).
    yields_to_plugins: bool = False


_RULES: dict[str, LayerRule] = {}


def register_rule(rule: LayerRule, *, replace: bool = False) -> LayerRule:
    if rule.type in _RULES and not replace and not _RULES[rule.type].yields_to_plugins:
        existing = _RULES[rule.type].convert
        raise RegistryError(
            f"a converter for Caffe type {rule.type!r} is already registered "
            f"({existing.__module__}.{getattr(existing, '__qualname__', existing)}); pass replace=True to "
            f"override it. Received: layer_type={rule.type!r}"
        )
    _RULES[rule.type] = rule
    return rule


def converts(*types: str, shapes: ShapeRule | None, doc: LayerDoc | None = None, check=None, min_bottoms: int = 1):
    """Decorator registering a built-in converter for one or more Caffe types, with their row of
    the layer table (``doc``)."""

    def decorate(convert: Converter) -> Converter:
        for type_name in types:
            register_rule(LayerRule(type_name, convert, shapes, check, min_bottoms, doc))
        return convert

    return decorate


def rule_for(layer_type: str) -> LayerRule | None:
    return _RULES.get(layer_type)


@contextlib.contextmanager
def registry_snapshot() -> Iterator[None]:
    """Undo, on leaving the block, every converter registered (or replaced) and every schema
    extension added inside it: plugins' tests each start from the built-in registry."""
    rules = dict(_RULES)
    with schema_snapshot():
        try:
            yield
        finally:
            _RULES.clear()
            _RULES.update(rules)


@dataclass(frozen=True)
class Unsupported:
    """Why caffe2keras has no converter for a Caffe type, for the unsupported-layers report."""

    reason: str
    # What tells one such layer from another (a Python layer's class), listed with the reason.
    detail: Callable[[Op], str] | None = None
    doc: LayerDoc | None = None  # its row of the layer table


_UNSUPPORTED: dict[str, Unsupported] = {}


def declare_unsupported(
    layer_type: str, reason: str, detail: Callable[[Op], str] | None = None, doc: LayerDoc | None = None
) -> None:
    """Record why a Caffe type is not converted; a registered converter still takes precedence."""
    _UNSUPPORTED[layer_type] = Unsupported(reason, detail, doc)


def unsupported(layer_type: str) -> Unsupported | None:
    return _UNSUPPORTED.get(layer_type)


def registered_types() -> list[str]:
    return sorted(_RULES)


def registered_rules() -> list[LayerRule]:
    """Every registered rule, in registration order."""
    return list(_RULES.values())


def unsupported_types() -> dict[str, Unsupported]:
    """Every type declared unsupported, in declaration order."""
    return dict(_UNSUPPORTED)


def same_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    """Shape rule of element-wise layers: each top has the shape of bottom 0."""
    return [in_shapes[0]] * len(op.tops)


def nonempty_output_shapes(op: Op, batch, channels: int, spatial: tuple, field: str, value) -> list[Shape]:
    """Each top's shape, once no spatial size is empty (the field and value that made it so named).

    Caffe would make a top of no values, which Keras cannot build: refused as the layer's own error."""
    require(
        all(n is None or n > 0 for n in spatial),
        op,
        f"the output would be empty (spatial size {spatial})",
        field,
        value,
    )
    return [(batch, channels, *spatial)] * len(op.tops)
