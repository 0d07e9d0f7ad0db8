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
from dataclasses import dataclass, field

import numpy as np

from caffe2keras.caffe.schema import schema_snapshot
from caffe2keras.caffe.weights import Blob
from caffe2keras.errors import RegistryError, ShapeError, UnsupportedParameterError, WeightsError
from caffe2keras.graph import Op, Shape, ShapeRule, check_blob_shape
from caffe2keras.layout import Layout


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


@dataclass(frozen=True)
class Node:
    """A Caffe layer as a converter sees it.

    Attributes:
        name, type: the Caffe layer's name and type string.
        param: its ``LayerParameter`` (``node.param.convolution_param.num_output``,
            or a plugin's own field added with :func:`caffe2keras.extend_schema`).
        in_shapes, out_shapes: Caffe (N, C, H, W...) shapes of the bottoms and
            tops, batch included (``out_shapes`` is empty without a shape rule).
        layout: where Caffe's axes are in the Keras tensors: ``layout.data_format``,
            ``layout.keras_shape(caffe_shape)``, ``layout.to_keras(caffe_array)``;
            see also :meth:`keras_axis`.
        op: the graph node (bottoms and tops as blob references).

    Use :meth:`blob` for weights and :meth:`error` for parameters that cannot
    be converted.
    """

    op: Op
    in_shapes: tuple[Shape, ...]
    out_shapes: tuple[Shape, ...]
    layout: Layout
    # None: architecture only. A tuple (maybe empty): the blobs the weights file holds.
    weights: tuple[Blob, ...] | None = None
    _used: set = field(default_factory=set, compare=False, repr=False)
    # Every blob the converter asked for: index -> the shape the prototxt gives it.
    requested: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def type(self) -> str:
        return self.op.type

    @property
    def param(self):
        return self.op.param

    def error(self, message: str, field: str | None = None, value=None, kind=UnsupportedParameterError):
        """An error naming this layer, ending in ``Received: field=value``; ``raise node.error(...)``."""
        return kind(self.name, self.type, message, field, value)

    def keras_axis(self, caffe_axis: int, rank: int | None = None) -> int:
        """The Keras axis holding Caffe axis ``caffe_axis`` of a tensor of ``rank``
        (default: bottom 0's rank)."""
        rank = len(self.in_shapes[0]) if rank is None else rank
        return self.layout.axis(caffe_axis, rank)

    def blob(
        self, index: int, expected: Shape, field: str | None = None, value=None, *, dims=None
    ) -> np.ndarray | None:
        """Weight blob ``index`` as a float32 array of shape ``expected``, in Caffe's layout,
        or None when converting the architecture only. Every blob the weights file holds
        for the layer must be asked for.

        ``field``/``value`` name the parameter that sets the shape, for the error when the
        file disagrees; ``dims`` may name, per dimension, the ``(field, value)`` that sets
        that dimension, so that a mismatch is reported against the right one.
        """
        expected = tuple(int(d) for d in expected)
        check_blob_shape(expected, self.name, self.type, f"weight blob {index}")
        if field is None:
            field, value = f"blobs[{index}].shape", expected
        self.requested[index] = expected
        if self.weights is None:
            return None
        self._used.add(index)
        if index >= len(self.weights):
            held = f"{len(self.weights)} blob(s)" if self.weights else "no blobs"
            raise WeightsError(
                self.name,
                self.type,
                f"the weights file holds {held} for this layer, but it needs blob {index} of shape {tuple(expected)}",
                field,
                value,
            )
        blob = self.weights[index]
        if blob.shape == expected:
            return blob.data
        # Caffe's legacy rule: num/channels/height/width match the shape padded to 4-D.
        if blob.legacy and len(expected) <= 4 and blob.shape == (1,) * (4 - len(expected)) + expected:
            return blob.data.reshape(expected)
        if dims is not None and len(blob.shape) == len(expected):
            differing = next(i for i, (a, b) in enumerate(zip(blob.shape, expected)) if a != b)
            field, value = dims[differing]
        raise WeightsError(
            self.name,
            self.type,
            f"weight blob {index} has shape {blob.shape} but the prototxt gives {expected}",
            field,
            value,
        )

    def check_all_blobs_used(self) -> None:
        if self.weights is not None and len(self.weights) > len(self._used):
            raise WeightsError(
                self.name,
                self.type,
                f"the weights file holds {len(self.weights)} blobs for this layer, but its "
                f"parameters use {len(self._used)}",
                "blobs",
                len(self.weights),
            )


def require(condition: bool, op: Op, message: str, field: str, value, kind=ShapeError) -> None:
    """Raise ``kind`` for ``op`` unless ``condition`` holds (for shape rules and converters)."""
    if not condition:
        raise kind(op.name, op.type, message, field, value)


Converter = Callable[[Node], Build]


@dataclass(frozen=True, eq=False)
class LayerDoc:
    """What the layer table (README, ``caffe2keras layers``) says of a type: Markdown cells.

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


_RULES: dict[str, LayerRule] = {}


def register_rule(rule: LayerRule, *, replace: bool = False) -> LayerRule:
    if rule.type in _RULES and not replace:
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
