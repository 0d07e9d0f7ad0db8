"""Build the Keras functional model from a shaped blob graph.

Each layer's node, shapes and Keras steps come from its plan (:mod:`caffe2keras.plan`); the
builder only wires, names and calls the Keras layers, creating their variables from the weights.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence

from caffe2keras.default_backend import use_default_backend

use_default_backend()  # conversion runs on JAX unless the user chose a backend: before Keras loads

import keras  # noqa: E402
import numpy as np  # noqa: E402

from caffe2keras.arrays import is_owned, owned_copy, release_pages  # noqa: E402
from caffe2keras.caffe.weights import Weights  # noqa: E402
from caffe2keras.converters import base  # noqa: E402
from caffe2keras.converters.base import Step  # noqa: E402
from caffe2keras.converters.pooling import shrinking_pools_upstream  # noqa: E402
from caffe2keras.errors import (  # noqa: E402
    Caffe2KerasError,
    ConversionWarning,
    LayerError,
    NetError,
    ShapeError,
    WeightsError,
)
from caffe2keras.framework_internals import call_creating_variables  # noqa: E402
from caffe2keras.graph import BlobRef, Graph, Op, needed_ops  # noqa: E402
from caffe2keras.host_draws import drawn_on_host  # noqa: E402
from caffe2keras.keras_names import keras_name  # noqa: E402
from caffe2keras.layout import Layout  # noqa: E402
from caffe2keras.plan import LayerPlan, plan_layer  # noqa: E402
from caffe2keras.recursion import recursion_room  # noqa: E402
from caffe2keras.shape_rules import check_top_count  # noqa: E402
from caffe2keras.sharing import SharedParameters  # noqa: E402


class NameTable:
    """Unique Keras layer names, claimed in the order the builder hands them out."""

    def __init__(self):
        self.used: set[str] = set()

    def claim(self, name: str) -> str:
        candidate, counter = name, 0
        while candidate in self.used:
            counter += 1
            candidate = f"{name}_{counter}"
        self.used.add(candidate)
        return candidate


class _PresetInitializer:
    """Hands a layer's variable its converted value at creation: no random initialization, and
    the value is copied once, into memory the backend adopts as is (JAX on the CPU)."""

    def __init__(self, value: np.ndarray, op: Op, index: int):
        self.value, self.op, self.index = value, op, index

    def __call__(self, shape, dtype=None):
        if tuple(shape) != self.value.shape:
            raise WeightsError(
                self.op.name,
                self.op.type,
                f"variable {self.index} has shape {tuple(shape)} but the converted weights have "
                f"{self.value.shape} (a converter bug; please report it)",
                "blobs",
                len(self.op.param.blobs),
            )
        value = self.value
        if not (is_owned(value) and value.dtype == np.float32):
            value = owned_copy(value)
        if keras.backend.backend() == "jax":
            import jax

            return jax.device_put(value)  # adopts the aligned buffer: no copy on the CPU
        return value


def _call_with_weights(step: Step, op: Op, inputs):
    """Call ``step.layer`` on ``inputs``, creating its variables from ``step.weights`` (no random
    initialization first: VGG16's fc6 alone is 400 MB), or, without weights, from their
    initializers drawn on the host (:mod:`caffe2keras.host_draws`)."""
    layer = step.layer
    values = list(step.weights)
    if layer.built:
        return layer(inputs)
    if not values:
        return call_creating_variables(layer, inputs, lambda _, requested: drawn_on_host(requested))[0]

    def initializer_for(index: int, requested):
        if index >= len(values) or values[index] is None:
            return drawn_on_host(requested)
        initializer = _PresetInitializer(np.asarray(values[index]), op, index)
        values[index] = None  # the initializer holds the one reference
        return initializer

    output, created = call_creating_variables(layer, inputs, initializer_for)
    if created != len(values):
        raise LayerError(
            op.name,
            op.type,
            f"the Keras layer created {created} variables for "
            f"{len(values)} converted arrays (a converter bug; please report it)",
            "blobs",
            len(values),
        )
    return output


def build_model(
    graph: Graph,
    weights: Weights | None,
    layout: Layout,
    rule_for: Callable[[str], base.LayerRule | None],
    outputs: Sequence[str] | None = None,
    on_layer: Callable[[Op], None] | None = None,
    input_layers: Mapping[str, keras.Layer] | None = None,
    *,
    model_class: type = keras.Model,
    on_steps: Callable[[Op, list[Step]], None] | None = None,
    allow_random: bool = False,
    on_filled: Callable[[dict[str, str]], None] | None = None,
) -> keras.Model:
    """The Keras model of ``graph``; ``weights=None`` builds the architecture only.

    A layer the weights file lacks starts, as in Caffe, from its prototxt's fillers: constant
    ones, or random ones with ``allow_random``; a :class:`ConversionWarning` lists such layers,
    or ``on_filled({layer: what its fillers made})`` is called with them.

    ``input_layers`` puts a layer between an input blob's ``keras.Input`` and the net (Caffe's
    preprocessing); it is named ``<input>_preprocess``. ``model_class`` is the functional class
    (training's) and ``on_steps(op, steps)`` receives each layer's applied steps.
    """
    if outputs is not None and not outputs:
        raise NetError(
            "outputs names no blob; name at least one, or pass None for the net's outputs. Received: outputs=[]"
        )
    output_refs = graph.outputs if outputs is None else [graph.blob(name) for name in outputs]
    if not output_refs:
        raise NetError(
            "the net has no outputs: every blob is consumed by a layer. Name the blobs you want with "
            "outputs=[...] (CLI: --outputs NAME,...). Received: outputs=None"
        )
    if len({ref.name for ref in output_refs}) != len(output_refs):
        raise NetError(f"outputs must be distinct. Received: outputs={[r.name for r in output_refs]}")
    needed = needed_ops(graph, output_refs)
    ops = [op for op in graph.ops if id(op) in needed]
    builder = _Builder(graph, weights, layout, rule_for, ops, input_layers or {})
    builder.on_steps = on_steps
    builder.allow_random = allow_random
    for op in graph.ops:
        if id(op) not in needed:
            builder.validate(op)
            continue
        if on_layer is not None:
            on_layer(op)
        builder.convert(op)
    model_outputs = builder.outputs(output_refs)
    if builder.filled and on_filled is not None:
        on_filled(dict(builder.filled))
    elif builder.filled:
        warnings.warn(filled_report(builder.filled), ConversionWarning, stacklevel=3)
    # One input or output is a tensor, as in keras.applications; several stay a list.
    with recursion_room(len(graph.ops)):
        return model_class(
            _single_or_list(builder.inputs),
            _single_or_list(model_outputs),
            name=keras_name(graph.name or "caffe_net"),
        )


def filled_report(filled: Mapping[str, str]) -> str:
    """The report of the layers the weights file lacks, ``{layer: what its fillers made}``."""
    return "the weights file lacks these layers; as in Caffe, they start from their prototxt's fillers: " + "; ".join(
        filled.values()
    )


def _single_or_list(tensors: list):
    return tensors[0] if len(tensors) == 1 else tensors


class _Builder:
    """The Keras tensors of a graph's blob values, made op by op."""

    def __init__(self, graph, weights, layout, rule_for, ops: Sequence[Op], input_layers, allow_random=False):
        self.graph, self.weights, self.layout, self.rule_for = graph, weights, layout, rule_for
        self.allow_random = allow_random
        self.filled: dict[str, str] = {}  # layer name -> what its fillers made
        self.names = NameTable()
        self.tensors: dict[BlobRef, object] = {}
        self.producer_name: dict[BlobRef, str] = {}  # the Keras layer that made each blob value
        self.applied: set[int] = set()  # ids of the Keras layers already called
        self.on_steps: Callable[[Op, list[Step]], None] | None = None
        self.shared = SharedParameters()
        input_names = [self.names.claim(keras_name(ref.name)) for ref in graph.inputs]
        # Caffe's layer names next, so that helper layers and outputs never take one.
        self.layer_names = {id(op): self.names.claim(keras_name(op.name)) for op in ops}
        self.inputs = []
        for ref, name in zip(graph.inputs, input_names):
            tensor = keras.Input(shape=layout.keras_shape(graph.shapes[ref])[1:], name=name)
            self.inputs.append(tensor)
            if ref.name in input_layers:
                layer = input_layers[ref.name]
                layer.name = name = self.names.claim(f"{name}_preprocess")
                tensor = layer(tensor)
            self.tensors[ref], self.producer_name[ref] = tensor, name

    def _plan(self, op: Op) -> LayerPlan:
        try:
            return plan_layer(
                op,
                [self.graph.shapes[b] for b in op.bottoms],
                self.layout,
                self.weights,
                rule_for=self.rule_for,
                allow_random=self.allow_random,
            )
        except ShapeError as error:
            if len(op.bottoms) > 1 and (pools := shrinking_pools_upstream(self.graph, op)):
                raise ShapeError(
                    op.name,
                    op.type,
                    f"{error.detail.rstrip('.')}. {'; '.join(pools)}, as Caffe computes pooling. Darknet pads "
                    "its stride-1 max pooling to keep the size, and YOLOv3-tiny's Caffe ports patch Caffe's "
                    "pooling code in C++ to match it: stock Caffe refuses this net too",
                    error.field,
                    error.value,
                ) from None
            raise

    def _steps(self, plan: LayerPlan) -> list[Step]:
        steps = plan.steps
        if plan.node.filled:
            self.filled[plan.op.name] = f"{plan.op.name} ({plan.op.type}: {', '.join(plan.node.filled)})"
        return steps

    def validate(self, op: Op) -> None:
        """Check a layer no output needs, as Caffe sets up every layer: parameters, shapes, weights."""
        if self.rule_for(op.type).shapes is None or any(b not in self.graph.shapes for b in op.bottoms):
            return  # a plugin without a shape rule, or downstream of one: nothing to check against
        plan = self._plan(op)
        self._steps(plan)  # the converter checks the parameters and weights
        self.graph.shapes.update(zip(op.tops, plan.out_shapes))

    def convert(self, op: Op) -> None:
        plan = self._plan(op)
        node, out_shapes = plan.node, plan.out_shapes
        in_shapes, layer_weights = node.in_shapes, node.weights
        steps = self.shared.apply(node, self._steps(plan))
        # A layer without bottoms (Parameter) is wired to the first net input, which it ignores.
        bottoms = [self.tensors[b] for b in op.bottoms] or self.inputs[:1]
        if steps:
            produced = self._apply(op, steps, bottoms)
        else:  # Split, Dropout 0...: every top is bottom 0, through a Keras layer of the Caffe name
            produced = self._apply(op, [Step(keras.layers.Identity(), inputs=(0,))], bottoms) * len(op.tops)
        if self.on_steps is not None:
            self.on_steps(op, steps)
        for blob in layer_weights or ():
            release_pages(blob.data)  # the layer's variables hold their own copies now
        check_top_count(op, len(produced))
        for index, (top, tensor) in enumerate(zip(op.tops, produced)):
            self.graph.shapes[top] = self._checked_shape(op, index, tensor, in_shapes, out_shapes)
            self.tensors[top] = tensor

    def _apply(self, op: Op, steps: list[Step], bottoms: list) -> list:
        try:
            result = self._apply_steps(op, steps, bottoms)
        except Caffe2KerasError:
            raise
        except Exception as exc:  # Keras refusing a configuration: report it against the layer
            raise LayerError(
                op.name, op.type, f"Keras could not build this layer: {_keras_reason(exc)}", "type", op.type
            ) from exc
        for top in op.tops:
            self.producer_name[top] = steps[-1].layer.name
        return list(result) if isinstance(result, (list, tuple)) else [result]

    def _apply_steps(self, op: Op, steps: Sequence[Step], bottoms: list):
        """Name and call each step's layer; the last one is named after the Caffe layer."""
        results: dict[int, object] = {}
        previous = None
        for index, step in enumerate(steps):
            if step.inputs is None:
                selected = bottoms if index == 0 else [previous]
            else:
                selected = [bottoms[i] if isinstance(i, int) else results[id(i)] for i in step.inputs]
            # A layer tied to an earlier Caffe layer's parameters keeps that layer's name.
            if id(step.layer) not in self.applied:
                if index == len(steps) - 1:
                    step.layer.name = self.layer_names[id(op)]
                else:
                    suffix = step.suffix or re.sub(r"(?<!^)(?=[A-Z])", "_", type(step.layer).__name__).lower()
                    step.layer.name = self.names.claim(f"{keras_name(op.name)}_{suffix}")
                self.applied.add(id(step.layer))
            previous = _call_with_weights(step, op, selected[0] if len(selected) == 1 else selected)
            results[id(step)] = previous
        return previous

    def _checked_shape(self, op: Op, index: int, tensor, in_shapes, out_shapes) -> tuple:
        """Top ``index``'s Caffe shape: the shape rule's, which the Keras tensor must match."""
        keras_shape = tuple(tensor.shape[1:])
        if out_shapes is None:  # a plugin without a shape rule: read it off Keras
            return self.layout.caffe_shape((in_shapes[0][0] if in_shapes else 1, *keras_shape))
        expected = tuple(self.layout.keras_shape(out_shapes[index])[1:])
        if keras_shape != expected:
            raise LayerError(
                op.name,
                op.type,
                f"top {index} came out with Keras shape {keras_shape}, "
                f"Caffe's rules give {expected} (a converter bug; please report it)",
                "top",
                op.tops[index].name,
            )
        return out_shapes[index]

    def outputs(self, output_refs: Sequence[BlobRef]) -> list:
        """The output tensors. Each is named after its blob: by the layer that made it when that
        layer has the blob's name, else by an Identity of the blob's name. Where another layer
        already has that name (``fc7`` written in place by ``relu7``), the output keeps the name
        of the layer that made it (``relu7``); a tensor that is already an output is wrapped
        again, with a numeric suffix if needed."""
        model_outputs = []
        for ref in output_refs:
            tensor = self.tensors[ref]
            wanted = keras_name(ref.name)
            repeated = any(t is tensor for t in model_outputs)
            if repeated or (self.producer_name[ref] != wanted and wanted not in self.names.used):
                tensor = keras.layers.Identity(name=self.names.claim(wanted))(tensor)
            model_outputs.append(tensor)
        return model_outputs


_TERMINAL_STYLE = re.compile(r"\x1b\[[0-9;]*m")


def _keras_reason(exc: Exception) -> str:
    """Keras' message as one line: without its terminal styling and the dump of the call's
    arguments that follows it, so that the error stays one line like every other."""
    text = _TERMINAL_STYLE.sub("", str(exc)).split("Arguments received by", 1)[0]
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
