"""Caffe weights into an existing Keras model: :func:`load_caffe_weights`.

Caffe layers pair with Keras layers by ``mapping``, then by name, then by the
order and shapes of their weights: a Caffe layer and a Keras layer pair when
their weights have the same shapes (in Keras' layout) and the same number of
weighted layers lies on the longest path from the input to each, ties going
by network order (this pairs ResNet's shortcut and last convolutions, which
have equal shapes, whatever order each framework lists them in). Leftovers
pair by shapes and order alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from caffe2keras.caffe import read_net, read_weights
from caffe2keras.converters.base import rule_for
from caffe2keras.errors import ArgumentError, WeightsPairingError, about_file
from caffe2keras.graph import build_graph
from caffe2keras.keras_names import keras_name
from caffe2keras.shape_rules import infer_known_shapes
from caffe2keras.transplant.caffe_side import CaffeUnit, caffe_units
from caffe2keras.transplant.keras_side import KerasTarget, keras_targets
from caffe2keras.transplant.values import EPSILON_MODES, Assignment, Mismatch, assignment

PathLike = str | os.PathLike


@dataclass(frozen=True)
class LayerPairing:
    """One Keras layer filled from one Caffe layer (or a BatchNorm and its Scale)."""

    caffe_layers: tuple[str, ...]
    caffe_type: str  # "BatchNorm + Scale" for a folded pair
    keras_layer: str
    keras_class: str
    paired_by: str  # "mapping", "name" or "order"
    shapes: tuple[tuple[int, ...], ...]  # of the Keras variables, in the layer's order
    notes: tuple[str, ...] = ()

    @property
    def parameters(self) -> int:
        return sum(int(np.prod(s)) for s in self.shapes)


@dataclass
class WeightsReport:
    """What :func:`load_caffe_weights` loaded: every pairing, in Caffe's network order."""

    prototxt: str
    weights: str
    model: str
    pairings: list[LayerPairing]
    left_out: list[str] = field(default_factory=list)  # Caffe layers mapped to None

    @property
    def parameters(self) -> int:
        return sum(p.parameters for p in self.pairings)

    @property
    def summary(self) -> str:
        left_out = f"; left out: {', '.join(self.left_out)}" if self.left_out else ""
        return (
            f"loaded {len(self.pairings)} Keras layers of {self.model!r} ({self.parameters:,} parameters) "
            f"from {self.weights}{left_out}"
        )

    def __rich__(self):
        from rich.console import Group
        from rich.table import Table

        from caffe2keras.console import console_text

        table = Table(show_edge=False, pad_edge=False)
        for title in ("#", "Caffe layer", "type", "Keras layer", "class", "by", "shapes", "notes"):
            table.add_column(title, justify="right" if title == "#" else "left")
        for index, p in enumerate(self.pairings):
            table.add_row(
                str(index),
                console_text(" + ".join(p.caffe_layers)),
                console_text(p.caffe_type),
                console_text(p.keras_layer),
                p.keras_class,
                p.paired_by,
                ", ".join("×".join(map(str, s)) for s in p.shapes),
                console_text("; ".join(p.notes)),
            )
        return Group(table, console_text(self.summary))

    def print(self, console=None) -> None:
        """Print the pairing table with ``rich`` (also in notebooks)."""
        from caffe2keras.console import report_console

        (console or report_console()).print(self)

    def __repr__(self) -> str:
        return f"<WeightsReport {self.summary}>"


def load_caffe_weights(
    keras_model,
    prototxt: PathLike,
    weights: PathLike,
    *,
    mapping: Mapping[str, str | None] | None = None,
    epsilon: str = "layer",
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> WeightsReport:
    """Fill an existing Keras model's layers from a Caffe model's weights, all or nothing.

    Args:
        keras_model: a built Keras model (functional, sequential, nested models included),
            e.g. ``keras.applications.VGG16(weights=None)``.
        prototxt, weights: the Caffe net and its ``.caffemodel`` or ``.caffemodel.h5``.
        mapping: ``{caffe_layer: keras_layer}`` pairs that override the automatic pairing;
            ``None`` as the Keras layer leaves that Caffe layer's weights out.
        epsilon: where a ``BatchNormalization``'s epsilon differs from Caffe's ``eps``:
            ``"layer"`` sets the layer's epsilon to Caffe's (the statistics stay Caffe's
            exactly); ``"variance"`` keeps the layer's epsilon and adds the difference to the
            moving variance (for weights files, which carry no epsilon).
        input_shapes: Caffe shapes of inputs the prototxt does not fix; only used to check
            the order in which an InnerProduct's input was flattened.

    Returns:
        A :class:`WeightsReport` of the pairing (``report.print()`` shows it).

    Raises:
        WeightsPairingError: some Caffe layer with weights or Keras layer with weights is
            unpaired, or a pair's shapes do not fit; every such problem is listed, and no
            weight is changed.
    """
    import keras

    if not isinstance(epsilon, str) or epsilon not in EPSILON_MODES:
        raise ArgumentError(f"epsilon must be one of {EPSILON_MODES}. Received: epsilon={epsilon!r}")
    if not isinstance(keras_model, keras.Model):
        raise ArgumentError(
            f"keras_model must be a built keras.Model. Received: keras_model={type(keras_model).__name__}"
        )
    with about_file(prototxt):
        graph = build_graph(read_net(prototxt), input_shapes, require_input_shapes=False)
        infer_known_shapes(graph, lambda op: getattr(rule_for(op.type), "shapes", None))
    units = caffe_units(graph, read_weights(weights))
    targets = keras_targets(keras_model)
    pairs, left_out, problems = _pair(units, targets, dict(mapping or {}))
    assignments: list[tuple[CaffeUnit, KerasTarget, str, Assignment]] = []
    for unit, target, how in pairs:
        try:
            assignments.append((unit, target, how, assignment(unit, target, epsilon)))
        except Mismatch as exc:
            problems.append(f"{_describe(unit)} -> {_describe(target)}, paired by {how}: {exc}")
    paired_units = {id(u) for u, _, _ in pairs} | {id(u) for u in left_out}
    paired_targets = {id(t) for _, t, _ in pairs}
    unpaired_caffe = [_describe(u, bare=True) for u in units if id(u) not in paired_units]
    unpaired_keras = [_describe(t, bare=True) for t in targets if id(t) not in paired_targets]
    if problems or unpaired_caffe or unpaired_keras:
        raise WeightsPairingError(
            f"Keras model {keras_model.name!r}",
            unpaired_caffe,
            unpaired_keras,
            problems,
            caffe_layers=len(units),
            paired=len(assignments),
        )
    for _, target, _, done in assignments:
        for variable, value in done.values:
            variable.assign(np.asarray(value, dtype=variable.dtype))
        if done.epsilon is not None:
            target.layer.epsilon = done.epsilon
    if any(done.epsilon is not None for *_, done in assignments):
        for compiled in ("predict_function", "test_function", "train_function"):
            if getattr(keras_model, compiled, None) is not None:
                setattr(keras_model, compiled, None)  # traced with the old epsilon
    assignments.sort(key=lambda item: item[0].index)
    return WeightsReport(
        str(prototxt),
        str(weights),
        keras_model.name,
        [
            LayerPairing(
                unit.names,
                unit.type_label,
                target.layer.name,
                type(target.layer).__name__,
                how,
                tuple(tuple(int(d) for d in variable.shape) for variable, _ in done.values),
                tuple(done.notes),
            )
            for unit, target, how, done in assignments
        ],
        [u.label for u in left_out],
    )


def _describe(item: CaffeUnit | KerasTarget, bare: bool = False) -> str:
    if isinstance(item, CaffeUnit):
        text = f"{item.label!r} ({item.type_label}"
        return f"{text}, blobs {item.shapes()})" if bare else f"{text})"
    layer = item.layer
    text = f"{layer.name!r} ({type(layer).__name__}"
    if bare:
        text += ", weights " + ", ".join(str(tuple(v.shape)) for v in layer.weights)
    return text + ")"


def _pair(units: list[CaffeUnit], targets: list[KerasTarget], mapping: dict[str, str | None]):
    """(unit, target, how) pairs, the units mapped to None, and the mapping's own problems."""
    by_name = {t.layer.name: t for t in targets}
    unit_of = {name: unit for unit in units for name in unit.names}
    pairs: list[tuple[CaffeUnit, KerasTarget, str]] = []
    left_out: list[CaffeUnit] = []
    problems: list[str] = []
    taken: set[int] = set()

    def take(unit, target, how):
        pairs.append((unit, target, how))
        taken.update((id(unit), id(target)))

    for caffe_layer, keras_layer in mapping.items():
        unit, target = unit_of.get(caffe_layer), by_name.get(keras_layer)
        if unit is None:
            problems.append(f"mapping: the net has no Caffe layer with weights named {caffe_layer!r}")
        elif keras_layer is None:
            left_out.append(unit)
            taken.add(id(unit))
        elif target is None:
            problems.append(f"mapping: the Keras model has no layer with weights named {keras_layer!r}")
        elif id(target) in taken or id(unit) in taken:
            problems.append(f"mapping: {caffe_layer!r} -> {keras_layer!r} pairs a layer already paired")
        else:
            take(unit, target, "mapping")
    for unit in units:
        target = next((by_name.get(keras_name(n)) for n in unit.names if keras_name(n) in by_name), None)
        if id(unit) not in taken and target is not None and id(target) not in taken:
            take(unit, target, "name")
    # By shapes and depth, then by shapes alone; network order within each.
    for with_depth in (True, False):
        buckets: dict[tuple, tuple[list, list]] = {}
        for side, items in ((0, units), (1, targets)):
            for item in items:
                key = item.key()
                if id(item) not in taken and key is not None:
                    buckets.setdefault((key, item.depth if with_depth else None), ([], []))[side].append(item)
        for caffe, keras in buckets.values():
            for unit, target in zip(caffe, keras):
                take(unit, target, "order")
    return pairs, left_out, problems
