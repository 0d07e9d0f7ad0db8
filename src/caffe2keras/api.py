"""The public Python API: convert a Caffe model, register converters for custom types."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from caffe2keras.builder import build_model, check_supported
from caffe2keras.caffe import read_net, read_weights
from caffe2keras.converters.base import Converter, LayerRule, ShapeRule, register_rule, rule_for
from caffe2keras.converters.base import Node
from caffe2keras.errors import NetError
from caffe2keras.graph import Graph, build_graph, infer_shapes
from caffe2keras.layout import Layout

PathLike = str | os.PathLike


def convert(
    prototxt: PathLike,
    weights: PathLike | None = None,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    outputs: Sequence[str] | None = None,
    data_format: str = "channels_last",
):
    """Convert a Caffe net to a Keras functional model.

    Args:
        prototxt: the net definition (``deploy.prototxt``, ``train_val.prototxt``; current or V1 format).
        weights: a ``.caffemodel`` or ``.caffemodel.h5`` file, or None for the architecture only.
        input_shapes: Caffe (N, C, H, W) shapes of input blobs the prototxt does not fix, by blob name.
        outputs: blob names to return, in this order, each with its value after the whole forward
            pass (as pycaffe's ``net.blobs[name]``); default: Caffe's net outputs.
        data_format: ``"channels_last"`` (Caffe's axis 1 moved last in every tensor of rank >= 3)
            or ``"channels_first"`` (Caffe's own layout).

    Returns:
        A ``keras.Model`` whose inputs are named and ordered as the net's input blobs and whose
        outputs are named after their blobs. Raises :class:`caffe2keras.Caffe2KerasError`.
    """
    layout = Layout(data_format)
    graph = load_graph(prototxt, input_shapes)
    if outputs is not None:
        for name in outputs:
            graph.blob(name)
    loaded = read_weights(weights) if weights is not None else None
    return build_model(graph, loaded, layout, rule_for, outputs)


def load_graph(prototxt: PathLike, input_shapes: Mapping[str, Sequence[int]] | None = None) -> Graph:
    """Read a prototxt into a blob graph, and check every layer type has a converter."""
    graph = build_graph(read_net(prototxt), input_shapes)
    check_supported(graph, rule_for)
    return graph


def parameter_shapes(
    prototxt: PathLike, input_shapes: Mapping[str, Sequence[int]] | None = None
) -> dict[str, list[tuple[int, ...]]]:
    """The shape of every parameter blob the prototxt implies, by layer name, in Caffe's layout.

    Layers without parameters are left out. No Keras model is built.
    """
    graph = load_graph(prototxt, input_shapes)

    def shape_rule(op):
        rule = rule_for(op.type)
        if rule.shapes is None:
            raise NetError(f"layer {op.name!r} ({op.type}) has a converter without a shape rule. Received: type={op.type!r}")
        return rule.shapes

    infer_shapes(graph, shape_rule)
    shapes = {}
    for op in graph.ops:
        node = Node(op, tuple(graph.shapes[b] for b in op.bottoms), tuple(graph.shapes[t] for t in op.tops), Layout())
        rule_for(op.type).convert(node)
        if node.requested:
            shapes[op.name] = [node.requested[i] for i in sorted(node.requested)]
    return shapes


def register_converter(
    layer_type: str,
    convert: Converter,
    shapes: ShapeRule | None = None,
    *,
    replace: bool = False,
) -> None:
    """Teach caffe2keras a Caffe layer type.

    Args:
        layer_type: the type string as written in the prototxt (``type: "MyLayer"``).
        convert: ``convert(node) -> Step | list[Step]``; ``node`` carries the layer's
            parameters (``node.param``), Caffe shapes, layout and weights (``node.blob(i, shape, field, value)``).
            Return Keras layers wrapped in :class:`caffe2keras.Step`; use registered-serializable
            layers so that saved models reload with ``safe_mode=True``.
        shapes: ``shapes(op, input_shapes) -> output_shapes`` in Caffe's layout; when omitted
            the output shapes are read off the Keras layers.
        replace: allow replacing an existing converter (including a built-in one).
    """
    register_rule(LayerRule(layer_type, convert, shapes), replace=replace)
