"""The emitter registry and what an emitter writes into (:class:`Emission`).

An emitter is a short pure function ``emit(node, out)`` for one or more Caffe
types: it reads the layer's parameters, Caffe shapes and weights from the
:class:`~caffe2keras.node.Node` (the same one the Keras converters
get), and adds to ``out`` the ONNX nodes that compute the layer's tops from its
bottoms in Caffe's NCHW layout: one node where ONNX has the operator, else a
small fixed pattern. Nothing in this package imports Keras or TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from onnx import NodeProto, helper

from caffe2keras.node import Node

Emitter = Callable[[Node, "Emission"], None]

_EMITTERS: dict[str, Emitter] = {}


def emits(*types: str):
    """Decorator registering an ONNX emitter for one or more Caffe types."""

    def decorate(emit: Emitter) -> Emitter:
        for type_name in types:
            _EMITTERS[type_name] = emit
        return emit

    return decorate


def emitter_for(layer_type: str) -> Emitter | None:
    return _EMITTERS.get(layer_type)


def emitted_types() -> list[str]:
    return sorted(_EMITTERS)


class Emission:
    """The ONNX nodes and initializers of one Caffe layer.

    ``bottoms`` and ``tops`` are the ONNX names of the layer's blob values. A node whose outputs
    are the tops is named after the Caffe layer; helper nodes and their values are named
    ``<layer>/<what>``. ``weight`` arrays (views of the caffemodel) are streamed into the file
    as they are; ``constant`` arrays are small values the emitter computed.
    """

    def __init__(self, layer: str, bottoms: Sequence[str], tops: Sequence[str], top_shapes: Sequence[tuple]):
        self.layer, self.bottoms, self.tops = layer, list(bottoms), list(tops)
        # The tops' Caffe shapes, as the layer's plan gives them; an emitter whose ONNX tops differ
        # replaces them (DetectionOutput's rows, which Keras pads to a fixed count and ONNX does not).
        self.top_shapes = list(top_shapes)
        self.nodes: list[NodeProto] = []
        self.constants: dict[str, np.ndarray] = {}
        self.weights: dict[str, np.ndarray] = {}
        self._names: set[str] = set()

    def _claim(self, what: str) -> str:
        name, counter = f"{self.layer}/{what}", 0
        while name in self._names:
            counter += 1
            name = f"{self.layer}/{what}_{counter}"
        self._names.add(name)
        return name

    def add(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str] | int = 1, **attributes) -> list[str]:
        """Add one node; ``outputs`` names its outputs, or counts new helper values. Returns them."""
        if isinstance(outputs, int):  # a helper node is named as its first output
            outputs = [self._claim(op_type.lower()) for _ in range(outputs)]
            name = outputs[0]
        elif self.layer not in self._names:
            name = self.layer
        else:  # a layer with several output nodes (Split's copies): the first takes the layer's name
            name = self._claim(op_type.lower())
        self._names.add(name)
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), name=name, **attributes))
        return list(outputs)

    def op(self, op_type: str, *inputs: str, top: int | None = None, **attributes) -> str:
        """Add a one-output node; ``top`` makes its output that top of the layer. Returns the output."""
        outputs = [self.tops[top]] if top is not None else 1
        return self.add(op_type, inputs, outputs, **attributes)[0]

    def constant(self, what: str, value) -> str:
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        elif array.dtype.kind in "iu":
            array = array.astype(np.int64)
        name = self._claim(what)
        self.constants[name] = array
        return name

    def weight(self, what: str, array: np.ndarray) -> str:
        name = self._claim(what)
        self.weights[name] = array
        return name
