"""Which Keras variable holds each Caffe parameter blob, with the blob's ``lr_mult``/``decay_mult``.

Read off the converters themselves, so that no second table of layouts exists: each layer is
converted once more per blob, that blob given recognisable values and the others zeros, and the
variables the values land in hold the blob. With ``element_order`` the values are the numbers
1..n, which also say where each element went (training writes the trained blobs back into a
``.caffemodel``); without it the blob is a broadcast 1, which costs no memory (conversion only
needs the variable, to freeze it or carry its multipliers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from caffe2keras.caffe.weights import Blob
from caffe2keras.converters.base import LayerRule, Node, Step
from caffe2keras.graph import Graph, Op
from caffe2keras.layout import Layout

# Caffe's BatchNorm blobs are statistics, never updated by gradient: Caffe requires lr_mult 0 on
# them, which is no freezing (Keras' BatchNormalization with trainable=False stops using the
# batch's statistics).
STATISTICS_TYPES = ("BatchNorm",)


@dataclass(eq=False)  # compared by identity: its variable's == is elementwise
class ParameterSlot:
    """One Caffe parameter blob held by one Keras variable."""

    layer: str
    layer_type: str
    index: int
    caffe_shape: tuple[int, ...]
    variable: object
    # For each element of the variable (flattened), its flat index in the Caffe blob; None when
    # the converter changes the values (then the blob cannot be written back) or when the
    # element order was not asked for.
    source: np.ndarray | None
    lr_mult: float = 1.0
    decay_mult: float = 1.0
    tied: bool = False  # the variable belongs to an earlier layer that shares it
    keras_layer: object = None

    def caffe_value(self) -> np.ndarray:
        value = np.asarray(self.variable.numpy(), np.float32).ravel()
        blob = np.empty(value.size, np.float32)
        blob[self.source] = value
        return blob.reshape(self.caffe_shape)


def blob_multipliers(op: Op, index: int) -> tuple[float, float]:
    """``(lr_mult, decay_mult)`` of blob ``index`` of ``op``, Caffe's 1 and 1 where no ``param`` says."""
    specs = op.param.param
    return (specs[index].lr_mult, specs[index].decay_mult) if index < len(specs) else (1.0, 1.0)


def has_multipliers(op: Op) -> bool:
    """Whether any ``param`` block of ``op`` sets a multiplier other than 1."""
    return any((spec.lr_mult, spec.decay_mult) != (1.0, 1.0) for spec in op.param.param)


def parameter_slots(
    graph: Graph,
    layout: Layout,
    applied: list[tuple[Op, list[Step]]],
    rule_for: Callable[[str], LayerRule],
    *,
    element_order: bool = True,
    include: Callable[[Op], bool] = lambda op: True,
) -> list[ParameterSlot]:
    """A slot per Caffe blob and Keras variable of the ``(op, applied steps)`` given; a layer
    sharing an earlier layer's parameters (``param { name: ... }``) gets slots on the same
    variables, marked ``tied``, so that its blobs are written too, as Caffe writes them, while
    the owner's multipliers apply (as in Caffe). Only the ops ``include`` accepts get slots."""
    slots = []
    seen: set[int] = set()
    for op, steps in applied:
        owned = {j for j, step in enumerate(steps) if id(step.layer) not in seen}
        seen.update(id(step.layer) for step in steps)
        if not include(op) or not any(step.layer.weights for step in steps):
            continue
        for index, shape, placements in _blob_placements(graph, layout, op, rule_for(op.type), element_order):
            for j, k, source in placements:
                slots.append(
                    ParameterSlot(
                        op.name,
                        op.type,
                        index,
                        shape,
                        steps[j].layer.weights[k],
                        source,
                        *blob_multipliers(op, index),
                        tied=j not in owned,
                        keras_layer=steps[j].layer,
                    )
                )
    return slots


def _blob_placements(graph: Graph, layout: Layout, op: Op, rule: LayerRule, element_order: bool):
    """For each Caffe blob of ``op``: its index, shape and ``(step, variable, source)`` placements."""
    in_shapes = tuple(graph.shapes[b] for b in op.bottoms)
    out_shapes = tuple(graph.shapes[t] for t in op.tops)
    probe = Node(op, in_shapes, out_shapes, layout)
    rule.convert(probe)
    shapes = probe.requested
    for index, shape in sorted(shapes.items()):
        blobs = tuple(Blob(_probe_values(s, i == index, element_order)) for i, s in sorted(shapes.items()))
        steps = rule.convert(Node(op, in_shapes, out_shapes, layout, blobs))
        steps = [steps] if isinstance(steps, Step) else list(steps)
        placements = []
        for j, step in enumerate(steps):
            for k, value in enumerate(step.weights):
                if value is None or not np.any(value):
                    continue
                source = None
                if element_order:
                    codes = np.asarray(value).ravel()
                    count = int(np.prod(shape))
                    if codes.size == count and np.array_equal(np.sort(codes), np.arange(1, count + 1)):
                        source = (codes - 1).astype(np.int64)
                placements.append((j, k, source))
        yield index, tuple(shape), placements


def _probe_values(shape, marked: bool, element_order: bool) -> np.ndarray:
    if not marked:
        return np.zeros(shape)  # pages the system maps on first write only
    if element_order:
        return np.arange(1, int(np.prod(shape)) + 1, dtype=np.float64).reshape(shape)
    return np.broadcast_to(np.float64(1.0), shape)  # a view: no memory, whatever the blob's size


@dataclass
class TrainingSettings:
    """What a converted model keeps of its net's ``param`` blocks: the layers frozen
    (``trainable=False``) and ``{variable.path: (lr_mult, decay_mult)}`` for the rest."""

    frozen: list[str]
    multipliers: dict[str, tuple[float, float]]


def apply_param_blocks(
    graph: Graph, layout: Layout, applied: list[tuple[Op, list[Step]]], rule_for: Callable[[str], LayerRule]
) -> TrainingSettings:
    """Freeze the Keras layers of every Caffe layer whose blobs all have ``lr_mult: 0``, and
    return the multipliers of the others' variables, for :class:`~caffe2keras.layers.CaffeSolver`.

    A Keras ``BatchNormalization`` is never frozen (``trainable=False`` would also make it
    normalize by its moving statistics in training): its variables get ``lr_mult`` 0 instead.
    """
    from keras.layers import BatchNormalization

    def include(op: Op) -> bool:
        return op.type not in STATISTICS_TYPES and has_multipliers(op)

    by_layer: dict[str, list[ParameterSlot]] = {}
    for slot in parameter_slots(graph, layout, applied, rule_for, element_order=False, include=include):
        if not slot.tied:
            by_layer.setdefault(slot.layer, []).append(slot)
    frozen, multipliers = [], {}
    for name, slots in by_layer.items():
        kept = [s for s in slots if isinstance(s.keras_layer, BatchNormalization)]
        if len(kept) < len(slots) and all(s.lr_mult == 0 for s in slots):
            frozen.append(name)
            for slot in slots:
                if slot not in kept:
                    slot.keras_layer.trainable = False
            slots = kept
        for slot in slots:
            if (slot.lr_mult, slot.decay_mult) != (1.0, 1.0):
                multipliers[slot.variable.path] = (slot.lr_mult, slot.decay_mult)
    return TrainingSettings(frozen, multipliers)
