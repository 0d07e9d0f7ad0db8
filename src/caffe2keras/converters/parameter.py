"""Parameter: a learned blob as a layer's output."""

from __future__ import annotations

from caffe2keras.converters.base import LayerDoc, Node, Step, converts, require
from caffe2keras.converters.keras_layers import caffe_layers
from caffe2keras.graph import Op, Shape


def parameter_layer_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    """Shape rule of the Parameter layer: one top of ``parameter_param.shape``, no bottoms."""
    shape = tuple(int(d) for d in op.param.parameter_param.shape.dim)
    require(not in_shapes, op, "Parameter takes no bottoms", "bottom", [b.name for b in op.bottoms])
    require(
        bool(shape) and all(d > 0 for d in shape),
        op,
        "the shape must have positive dimensions",
        "parameter_param.shape",
        shape,
    )
    return [shape]


@converts(
    "Parameter",
    shapes=parameter_layer_shapes,
    min_bottoms=0,
    doc=LayerDoc(
        "`LearnedTensor`",
        "the learned blob; its axis 0 is its own (fixed), not a batch; wired to the first input, which it ignores",
    ),
)
def parameter(node: Node) -> Step:
    """Caffe's Parameter as the LearnedTensor layer, whose output is its learned blob."""
    shape = node.out_shapes[0]
    value = node.blob(0, shape, "parameter_param.shape", shape)
    # The blob's axis 0 is its own, not a batch: the Keras tensor keeps it, fixed.
    keras_shape = node.layout.keras_shape(shape)
    return Step(caffe_layers.LearnedTensor(keras_shape), (None if value is None else node.layout.to_keras(value),))
