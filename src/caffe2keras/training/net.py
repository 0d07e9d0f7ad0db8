"""The TRAIN-phase net as a Keras model, and the map between its variables and Caffe's blobs.

The model is built by the same builder and converters as inference, with the training table
(:mod:`caffe2keras.training.layers`) in front. Which Caffe blob each Keras variable holds, and
in which element order, is read off the converters themselves: each layer is converted once
more per blob with that blob's elements numbered 1..n, and the numbers that land in a variable
say where each element came from. This gives the per-parameter ``lr_mult``/``decay_mult`` and
lets the trained weights go back into a ``.caffemodel`` without a second table of layouts.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from caffe2keras.builder import build_model
from caffe2keras.caffe.weights import Blob, Weights
from caffe2keras.converters.base import Node, Step
from caffe2keras.errors import ConversionWarning, NetError, UnsupportedParameterError
from caffe2keras.graph import Graph, Op, build_graph, is_training_type
from caffe2keras.layers import CaffeTrainingModel
from caffe2keras.layout import Layout
from caffe2keras.plan import check_supported
from caffe2keras.training.layers import training_rule_for

TRAIN = 0  # caffe.Phase


@dataclass
class ParameterSlot:
    """One Caffe parameter blob held by one Keras variable."""

    layer: str
    layer_type: str
    index: int
    caffe_shape: tuple[int, ...]
    variable: object
    # For each element of the variable (flattened), its flat index in the Caffe blob; None when
    # the converter changes the values (then the blob cannot be written back).
    source: np.ndarray | None
    lr_mult: float = 1.0
    decay_mult: float = 1.0
    tied: bool = False  # the variable belongs to an earlier layer that shares it

    def caffe_value(self) -> np.ndarray:
        value = np.asarray(self.variable.numpy(), np.float32).ravel()
        blob = np.empty(value.size, np.float32)
        blob[self.source] = value
        return blob.reshape(self.caffe_shape)


@dataclass
class TrainingNet:
    model: CaffeTrainingModel
    graph: Graph
    slots: list[ParameterSlot]

    def multipliers(self) -> dict[str, tuple[float, float]]:
        """``{variable.path: (lr_mult, decay_mult)}`` where they are not 1 and 1."""
        return {
            s.variable.path: (s.lr_mult, s.decay_mult)
            for s in self.slots
            if not s.tied and (s.lr_mult, s.decay_mult) != (1.0, 1.0)
        }

    def caffe_layers(self) -> list[tuple[str, str, list[np.ndarray]]]:
        """Every layer with parameters as ``(name, type, blobs)``, in net order, for a ``.caffemodel``."""
        layers: dict[str, tuple[str, dict[int, np.ndarray]]] = {}
        for slot in self.slots:
            if slot.source is None:
                raise NetError(
                    f"layer {slot.layer!r} ({slot.layer_type}): its converter computes the Keras weights from "
                    f"blob {slot.index}, so they cannot be written back as Caffe's. Received: layer={slot.layer!r}"
                )
            layers.setdefault(slot.layer, (slot.layer_type, {}))[1][slot.index] = slot.caffe_value()
        return [(name, kind, [blobs[i] for i in sorted(blobs)]) for name, (kind, blobs) in layers.items()]


def train_graph(net, input_shapes, level: int | None = None, stages=None, *, phase: int = TRAIN) -> Graph:
    """The TRAIN-phase graph (Caffe's include/exclude rules), losses and Accuracy kept (or the
    TEST-phase one, for the solver's test net)."""
    graph = build_graph(net, input_shapes, phase=phase, level=level, stages=stages, keep_losses=True)
    check_supported(graph, training_rule_for)
    for op in graph.ops:
        _check_trainable(op, graph)
    return graph


def _check_trainable(op: Op, graph: Graph) -> None:
    if not is_training_type(op.type) and any(op.param.loss_weight):
        raise UnsupportedParameterError(
            op.name, op.type, "only loss layers may have a loss_weight here", "loss_weight", list(op.param.loss_weight)
        )
    for index, propagate in enumerate(op.param.propagate_down):
        if not propagate and index < len(op.bottoms) and op.bottoms[index] not in graph.inputs:
            raise UnsupportedParameterError(
                op.name,
                op.type,
                "propagate_down: false on a computed bottom is not supported",
                f"propagate_down[{index}]",
                False,
            )


def build_training_net(graph: Graph, weights: Weights | None, layout: Layout) -> TrainingNet:
    """The Keras model of a TRAIN graph; layers that ``weights`` lacks start from their fillers."""
    applied: list[tuple[Op, list[Step]]] = []
    with warnings.catch_warnings():
        # A parameter shared only in part would train as two copies: refuse it here.
        warnings.simplefilter("error", ConversionWarning)
        try:
            model = build_model(
                graph,
                weights,
                layout,
                training_rule_for,
                model_class=CaffeTrainingModel,
                fill_missing=True,
                on_steps=lambda op, steps: applied.append((op, steps)),
            )
        except ConversionWarning as exc:
            raise NetError(f"{exc} Received: training=True") from None
    slots = _parameter_slots(graph, layout, applied)
    for slot in slots:
        if slot.lr_mult == 0 and not slot.tied:
            slot.variable.trainable = False
    return TrainingNet(model, graph, slots)


def _parameter_slots(graph: Graph, layout: Layout, applied) -> list[ParameterSlot]:
    """A slot per Caffe blob and Keras variable; a layer sharing an earlier layer's parameters
    (``param { name: ... }``) gets slots on the same variables, marked ``tied``, so that its blobs
    are written too, as Caffe writes them, while the owner's multipliers apply (as in Caffe)."""
    slots = []
    seen: set[int] = set()
    for op, steps in applied:
        owned = {j for j, step in enumerate(steps) if id(step.layer) not in seen}
        seen.update(id(step.layer) for step in steps)
        if not any(step.layer.weights for step in steps):
            continue
        for index, shape, placements in _blob_placements(graph, layout, op):
            spec = op.param.param[index] if index < len(op.param.param) else None
            for j, k, source in placements:
                slots.append(
                    ParameterSlot(
                        op.name,
                        op.type,
                        index,
                        shape,
                        steps[j].layer.weights[k],
                        source,
                        spec.lr_mult if spec is not None else 1.0,
                        spec.decay_mult if spec is not None else 1.0,
                        tied=j not in owned,
                    )
                )
    return slots


def _blob_placements(graph: Graph, layout: Layout, op: Op):
    """For each Caffe blob of ``op``: its index, shape and ``(step, variable, source)`` placements."""
    rule = training_rule_for(op.type)
    in_shapes = tuple(graph.shapes[b] for b in op.bottoms)
    out_shapes = tuple(graph.shapes[t] for t in op.tops)
    probe = Node(op, in_shapes, out_shapes, layout)
    rule.convert(probe)
    shapes = probe.requested
    for index, shape in sorted(shapes.items()):
        blobs = tuple(
            Blob(np.arange(1, int(np.prod(s)) + 1, dtype=np.float64).reshape(s) if i == index else np.zeros(s))
            for i, s in sorted(shapes.items())
        )
        steps = rule.convert(Node(op, in_shapes, out_shapes, layout, blobs))
        steps = [steps] if isinstance(steps, Step) else list(steps)
        placements = []
        for j, step in enumerate(steps):
            for k, value in enumerate(step.weights):
                if value is None or not np.any(value):
                    continue
                codes = np.asarray(value).ravel()
                count = int(np.prod(shape))
                exact = codes.size == count and np.array_equal(np.sort(codes), np.arange(1, count + 1))
                placements.append((j, k, (codes - 1).astype(np.int64) if exact else None))
        yield index, tuple(shape), placements
