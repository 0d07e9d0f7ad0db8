"""Build the Keras functional model from a shaped blob graph and per-layer converters."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np

from caffe2keras.arrays import is_owned, owned_copy, release_pages
from caffe2keras.caffe.weights import LayerWeights, Weights
from caffe2keras.converters import base
from caffe2keras.converters.base import Node, Step
from caffe2keras.errors import Caffe2KerasError, LayerError, NetError, UnsupportedLayersError, WeightsError
from caffe2keras.graph import BlobRef, Graph, Op
from caffe2keras.layout import Layout
from caffe2keras.sharing import SharedParameters


def keras_name(caffe_name: str) -> str:
    """Keras forbids '/' in names; Caffe nets use it a lot (``inception_3a/1x1``)."""
    return caffe_name.replace("/", "__") or "unnamed"


class NameTable:
    """Unique Keras layer names; names of output blobs are held back for the outputs."""

    def __init__(self, reserved: Sequence[str]):
        self.reserved = set(reserved)
        self.used: set[str] = set()

    def claim(self, name: str, *, reserved_ok: bool = False) -> str:
        candidate, counter = name, 0
        while candidate in self.used or (candidate in self.reserved and not reserved_ok):
            counter += 1
            candidate = f"{name}_{counter}"
        self.used.add(candidate)
        return candidate


def check_supported(graph: Graph, rule_for: Callable[[str], base.LayerRule | None]) -> None:
    """Report every layer type without a converter at once, before anything is built."""
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    reasons: dict[str, dict[str, None]] = {}  # type -> distinct reasons, in order
    details: dict[str, dict[str, None]] = {}
    for op in graph.ops:
        rule = rule_for(op.type)
        if rule is None:
            known = base.unsupported(op.type)
            reason = known.reason if known else ""
            if known and known.detail:
                details.setdefault(op.type, {})[known.detail(op)] = None
        elif rule.check is not None:
            reason = rule.check(op)
            if reason is None:
                continue
        else:
            continue
        counts[op.type] += 1
        first.setdefault(op.type, op.name)
        reasons.setdefault(op.type, {})[reason] = None
    if counts:
        raise UnsupportedLayersError(
            (t, counts[t], first[t], _join_reasons(details.get(t, {}), reasons[t])) for t in counts
        )


def _join_reasons(details, reasons) -> str:
    text = "; ".join(r for r in reasons if r)
    return f"{', '.join(details)}: {text}" if details else text


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
    """Call ``step.layer`` on ``inputs``, creating its variables from ``step.weights``."""
    layer = step.layer
    values = list(step.weights)
    if not values or layer.built:
        return layer(inputs)
    created = 0
    original = layer.add_weight

    def add_weight(*args, **kwargs):
        nonlocal created
        index = created
        created += 1
        if index < len(values) and values[index] is not None:
            if len(args) > 1:
                args = args[:1] + args[2:]
            kwargs["initializer"] = _PresetInitializer(np.asarray(values[index]), op, index)
            values[index] = None
        return original(*args, **kwargs)

    layer.add_weight = add_weight
    try:
        output = layer(inputs)
    finally:
        del layer.add_weight
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


def _apply_steps(steps: Sequence[Step], op: Op, bottoms: list, names: NameTable, final_name: str):
    results: dict[int, object] = {}
    previous = None
    for index, step in enumerate(steps):
        if step.inputs is None:
            selected = bottoms if index == 0 else [previous]
        else:
            selected = [bottoms[i] if isinstance(i, int) else results[id(i)] for i in step.inputs]
        last = index == len(steps) - 1
        if step.layer.built:
            pass  # a layer shared with an earlier Caffe layer keeps its name
        elif last:
            step.layer.name = final_name  # set before the layer is built
        else:
            suffix = step.suffix or re.sub(r"(?<!^)(?=[A-Z])", "_", type(step.layer).__name__).lower()
            step.layer.name = names.claim(f"{keras_name(op.name)}_{suffix}")
        previous = _call_with_weights(step, op, selected[0] if len(selected) == 1 else selected)
        results[id(step)] = previous
    return previous


def build_model(
    graph: Graph,
    weights: Weights | None,
    layout: Layout,
    rule_for: Callable[[str], base.LayerRule | None],
    outputs: Sequence[str] | None = None,
    on_layer: Callable[[Op], None] | None = None,
    input_layers: Mapping[str, keras.Layer] | None = None,
) -> keras.Model:
    """The Keras model of ``graph``; ``weights=None`` builds the architecture only.

    ``input_layers`` puts a layer between an input blob's ``keras.Input`` and the net (Caffe's
    preprocessing); it is named ``<input>_preprocess``.
    """
    output_refs = graph.outputs if outputs is None else [graph.blob(name) for name in outputs]
    if not output_refs:
        raise NetError("the net has no outputs: every blob is consumed by a layer.")
    if len({ref.name for ref in output_refs}) != len(output_refs):
        raise NetError(f"outputs must be distinct. Received: outputs={[r.name for r in output_refs]}")
    builder = _Builder(graph, weights, layout, rule_for, output_refs, input_layers or {})
    needed = _needed_ops(graph, output_refs)
    for op in graph.ops:
        if id(op) in needed:
            if on_layer is not None:
                on_layer(op)
            builder.convert(op)
    return keras.Model(builder.inputs, builder.outputs(), name=keras_name(graph.name or "caffe_net"))


class _Builder:
    """The Keras tensors of a graph's blob values, made op by op."""

    def __init__(self, graph, weights, layout, rule_for, output_refs, input_layers):
        self.graph, self.weights, self.layout, self.rule_for = graph, weights, layout, rule_for
        self.output_refs = output_refs
        self.names = NameTable([keras_name(ref.name) for ref in output_refs])
        self.tensors: dict[BlobRef, object] = {}
        self.producer_name: dict[BlobRef, str] = {}
        self.shared = SharedParameters()
        self.inputs = []
        for ref in graph.inputs:
            name = self.names.claim(keras_name(ref.name), reserved_ok=True)
            tensor = keras.Input(shape=layout.keras_shape(graph.shapes[ref])[1:], name=name)
            self.inputs.append(tensor)
            if ref.name in input_layers:
                layer = input_layers[ref.name]
                layer.name = self.names.claim(f"{name}_preprocess")
                tensor = layer(tensor)
            self.tensors[ref], self.producer_name[ref] = tensor, name

    def convert(self, op: Op) -> None:
        rule = self.rule_for(op.type)
        in_shapes = tuple(self.graph.shapes[b] for b in op.bottoms)
        out_shapes = tuple(rule.shapes(op, list(in_shapes))) if rule.shapes else None
        layer_weights = None
        if self.weights is not None:
            found: LayerWeights | None = self.weights.get(op.name)
            layer_weights = found.blobs if found is not None else ()
        node = Node(op, in_shapes, out_shapes or (), self.layout, layer_weights)
        steps = rule.convert(node)
        steps = [steps] if isinstance(steps, Step) else list(steps)
        node.check_all_blobs_used()
        steps = self.shared.apply(node, steps)
        # A layer without bottoms (Parameter) is wired to the first net input, which it ignores.
        bottoms = [self.tensors[b] for b in op.bottoms] or self.inputs[:1]
        produced = self._apply(op, steps, bottoms) if steps else [bottoms[0]] * len(op.tops)
        for blob in layer_weights or ():
            release_pages(blob.data)  # the layer's variables hold their own copies now
        if len(produced) != len(op.tops):
            raise LayerError(
                op.name,
                op.type,
                f"the converter made {len(produced)} outputs for {len(op.tops)} tops",
                "top",
                [t.name for t in op.tops],
            )
        for index, (top, tensor) in enumerate(zip(op.tops, produced)):
            self.graph.shapes[top] = self._checked_shape(op, index, tensor, in_shapes, out_shapes)
            self.tensors[top] = tensor

    def _apply(self, op: Op, steps: list[Step], bottoms: list) -> list:
        # The last step is named after the Caffe layer, or after the blob it makes if that is an output.
        single_output = op.tops[0] if len(op.tops) == 1 and op.tops[0] in self.output_refs else None
        base_name = keras_name(op.name)
        reserved_ok = single_output is not None and keras_name(single_output.name) == base_name
        if steps[-1].layer.built:  # tied to an earlier layer's parameters
            final_name = steps[-1].layer.name
        else:
            final_name = self.names.claim(base_name, reserved_ok=reserved_ok)
        try:
            result = _apply_steps(steps, op, bottoms, self.names, final_name)
        except Caffe2KerasError:
            raise
        except Exception as exc:  # Keras refusing a configuration: report it against the layer
            raise LayerError(op.name, op.type, f"Keras could not build this layer: {exc}", "type", op.type) from exc
        for top in op.tops:
            self.producer_name[top] = final_name
        return list(result) if isinstance(result, (list, tuple)) else [result]

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

    def outputs(self) -> list:
        """The output tensors, each named after its blob (through an Identity where needed)."""
        model_outputs = []
        for ref in self.output_refs:
            tensor = self.tensors[ref]
            wanted = keras_name(ref.name)
            if self.producer_name.get(ref) != wanted or any(t is tensor for t in model_outputs):
                name = self.names.claim(wanted, reserved_ok=wanted not in self.names.used)
                tensor = keras.layers.Identity(name=name)(tensor)
            model_outputs.append(tensor)
        return model_outputs


def _needed_ops(graph: Graph, output_refs: Sequence[BlobRef]) -> set[int]:
    """The ids of the ops the outputs depend on (others are not built)."""
    needed: set = set()
    pending = list(output_refs)
    seen: set[BlobRef] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        op = graph.producers.get(ref)
        if op is not None and id(op) not in needed:
            needed.add(id(op))
            pending.extend(op.bottoms)
    return needed
