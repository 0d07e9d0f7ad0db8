"""Write a Caffe net as an ONNX file, layer by layer, from the Caffe graph (no Keras).

Each kept layer is planned as the Keras builder plans it (:func:`caffe2keras.plan.plan_layer`:
its refusal, its :class:`~caffe2keras.node.Node` of Caffe parameters, shapes and weights, and its
tops' Caffe shapes at the net's own batch size); its emitter adds the ONNX nodes. The file's
inputs and outputs take a free batch size.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto, helper, numpy_helper

from caffe2keras._version import __version__
from caffe2keras.caffe import read_net, read_weights
from caffe2keras.errors import NetError, WeightsError, about_file
from caffe2keras.graph import BlobRef, Graph, Op, build_graph, needed_ops
from caffe2keras.layout import Layout
from caffe2keras.onnx import families  # noqa: F401  (registers the emitters)
from caffe2keras.onnx.emit import Emission, emitter_for
from caffe2keras.onnx.opset import OPSET
from caffe2keras.onnx.stream import write_streamed
from caffe2keras.outputs import atomic_output, check_output_path
from caffe2keras.plan import Refusal, check_supported, plan_layer, reported_against

BATCH = "N"  # the free batch dimension of the file's inputs and outputs
NCHW = Layout("channels_first")

PathLike = str | os.PathLike


@dataclass(frozen=True)
class OnnxFile:
    """What :func:`to_onnx` wrote."""

    path: Path
    inputs: dict[str, tuple]  # blob -> shape, batch first (None: free)
    outputs: dict[str, tuple]
    nodes: int
    parameters: int

    def __str__(self) -> str:
        def shapes(blobs):
            return ", ".join(f"{name} {tuple('N' if d is None else d for d in shape)}" for name, shape in blobs.items())

        return (
            f"ONNX opset {OPSET}, {self.nodes} nodes, {self.parameters:,} parameters\n"
            f"inputs:  {shapes(self.inputs)}\noutputs: {shapes(self.outputs)}"
        )


def to_onnx(
    prototxt: PathLike,
    weights: PathLike | None,
    path: PathLike,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    outputs: Sequence[str] | None = None,
) -> OnnxFile:
    """Write the Caffe net ``prototxt`` with ``weights`` to the ONNX file ``path`` (opset 13).

    The graph is in Caffe's NCHW layout; its inputs and outputs are named after their blobs, with
    a free batch size, and each Caffe layer's nodes are named after it. ``outputs`` picks the
    blobs to output (default: the net's outputs). Neither Keras nor TensorFlow is imported.
    """
    with about_file(prototxt):
        graph = build_graph(read_net(prototxt), input_shapes)
        loaded = None if weights is None else read_weights(weights, layers={op.name for op in graph.ops})
        with about_file(weights, (WeightsError,)):
            model, streamed = build_model(graph, loaded, outputs)
    check_output_path(path, (prototxt, weights))
    with atomic_output(path, ".onnx") as partial, open(partial, "wb") as file:
        write_streamed(file, model, streamed)
    return OnnxFile(
        Path(path),
        {v.name: _dims(v) for v in model.graph.input},
        {v.name: _dims(v) for v in model.graph.output},
        len(model.graph.node),
        sum(a.size for a in streamed.values()) + sum(math.prod(t.dims) for t in model.graph.initializer),
    )


def _dims(value: onnx.ValueInfoProto) -> tuple:
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim)


def build_model(graph: Graph, weights, outputs: Sequence[str] | None = None):
    """The ONNX model of ``graph`` without its weights, and the weights to stream after it."""
    output_refs = graph.outputs if outputs is None else [graph.blob(name) for name in outputs]
    if not output_refs:
        raise NetError("the net has no outputs: every blob is consumed by a layer.")
    if len({ref.name for ref in output_refs}) != len(output_refs):
        raise NetError(f"outputs must be distinct. Received: outputs={[r.name for r in output_refs]}")
    needed = needed_ops(graph, output_refs)
    ops = [op for op in graph.ops if id(op) in needed]
    check_supported(ops, writer_refusal=_no_emitter)
    names = _tensor_names(graph, ops, output_refs)
    nodes, constants, streamed = [], {}, {}
    for op in ops:
        emission = _emit(graph, op, weights, names)
        nodes += emission.nodes
        constants.update(emission.constants)
        streamed.update(emission.weights)
    onnx_graph = helper.make_graph(
        nodes,
        graph.name or "caffe_net",
        [_value_info(names[ref], graph.shapes[ref]) for ref in graph.inputs if any(ref in op.bottoms for op in ops)],
        [_value_info(names[ref], graph.shapes[ref]) for ref in output_refs],
        [numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="caffe2keras",
        producer_version=__version__,
    )
    model.ir_version = 7  # the IR of opset 13: runtimes of that time read it
    return model, streamed


def _value_info(name: str, shape) -> onnx.ValueInfoProto:
    dims = [BATCH, *shape[1:]]  # None: a size known when the net runs
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def _no_emitter(op: Op) -> Refusal | None:
    return None if emitter_for(op.type) is not None else Refusal("caffe2keras has no ONNX writer for this type")


def _tensor_names(graph: Graph, ops: Sequence[Op], output_refs) -> dict[BlobRef, str]:
    """Each blob value's ONNX name: its blob's name for the value the net ends with (and for the
    outputs); a value a later layer overwrites in place is ``<blob>@<version>``."""
    names = {}
    for ref in [*graph.inputs, *(t for op in ops for t in op.tops)]:
        final = graph.final.get(ref.name) == ref or ref in output_refs
        names[ref] = ref.name if final else f"{ref.name}@{ref.version}"
    return names


def _emit(graph: Graph, op: Op, weights, names) -> Emission:
    """The layer's ONNX nodes, from its plan: the Keras converters' parameter checks, output
    shapes and weight blobs, so that the two writers cannot drift apart."""
    in_shapes = tuple(graph.shapes[b] for b in op.bottoms)
    plan = plan_layer(op, in_shapes, NCHW, weights)
    emission = Emission(op.name, [names[b] for b in op.bottoms], [names[t] for t in op.tops], plan.out_shapes)
    with reported_against(op, in_shapes):
        emitter_for(op.type)(plan.node, emission)
    plan.node.check_all_blobs_used()
    tops = set(emission.tops)
    for onnx_node in emission.nodes:
        if tops.intersection(onnx_node.output):
            onnx_node.doc_string = op.type  # the Caffe type, which verify reports
    graph.shapes.update(zip(op.tops, emission.top_shapes))
    return emission
