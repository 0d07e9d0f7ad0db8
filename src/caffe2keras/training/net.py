"""The TRAIN-phase net as a Keras model, and the map between its variables and Caffe's blobs.

The model is built by the same builder and converters as inference, with the training table
(:mod:`caffe2keras.training.layers`) in front. Which Caffe blob each Keras variable holds, and
in which element order, is read off the converters (:mod:`caffe2keras.parameter_slots`): this
gives the per-parameter ``lr_mult``/``decay_mult`` and lets the trained weights go back into a
``.caffemodel`` without a second table of layouts.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from caffe2keras.builder import build_model
from caffe2keras.caffe.weights import Weights
from caffe2keras.converters.base import Step
from caffe2keras.errors import ConversionWarning, NetError, UnsupportedParameterError
from caffe2keras.graph import Graph, Op, build_graph, is_training_type
from caffe2keras.layers import CaffeTrainingModel
from caffe2keras.layout import Layout
from caffe2keras.parameter_slots import ParameterSlot, parameter_slots
from caffe2keras.plan import check_supported
from caffe2keras.training.layers import training_rule_for

TRAIN = 0  # caffe.Phase


@dataclass
class TrainingNet:
    model: CaffeTrainingModel
    graph: Graph
    slots: list[ParameterSlot]
    # Layers the weights file lacks, as Caffe's copy_from leaves them: {layer: what its fillers made}.
    filled: dict[str, str] = field(default_factory=dict)

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
    """The Keras model of a TRAIN graph; layers that ``weights`` lacks start from their fillers,
    by the conversion's rule, random ones included (as Caffe's)."""
    applied: list[tuple[Op, list[Step]]] = []
    filled: dict[str, str] = {}
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
                on_steps=lambda op, steps: applied.append((op, steps)),
                allow_random=True,
                on_filled=filled.update,
            )
        except ConversionWarning as exc:
            raise NetError(f"{exc} Received: training=True") from None
    slots = parameter_slots(graph, layout, applied, training_rule_for)
    for slot in slots:
        if slot.lr_mult == 0 and not slot.tied:
            slot.variable.trainable = False
    return TrainingNet(model, graph, slots, filled)
