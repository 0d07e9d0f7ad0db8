"""InnerProduct (a Dense layer over the axes from ``axis`` on, flattened in Caffe's order) and Embed."""

from __future__ import annotations

import math

from caffe2keras.converters.axes import canonical_axis, in_caffe_order, to_caffe_order, to_keras_order
from caffe2keras.converters.base import LayerDoc, Node, Step, converts, require
from caffe2keras.converters.fillers import caffe_filler
from caffe2keras.converters.keras_layers import caffe_layers, layers
from caffe2keras.converters.transforms import dense_kernel_to_keras
from caffe2keras.errors import ShapeError
from caffe2keras.graph import Op, Shape
from caffe2keras.shape_rules import free_size_error


def inner_product_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    shape = in_shapes[0]
    p = op.param.inner_product_param
    axis = canonical_axis(op, p.axis, len(shape), "inner_product_param.axis")
    require(p.num_output > 0, op, "num_output must be positive", "inner_product_param.num_output", p.num_output)
    require(axis >= 1, op, "axis 0 would mix the batch into the features", "inner_product_param.axis", p.axis)
    return [(*shape[:axis], p.num_output)]


@converts(
    "InnerProduct",
    shapes=inner_product_shapes,
    doc=LayerDoc("`Dense` (+ `Flatten`)", "`axis`, `transpose`, implicit flatten in C,H,W order"),
)
def inner_product(node: Node) -> list[Step]:
    """Caffe's InnerProduct as Keras' Dense, its rows in this layout's flattening order."""
    shape = node.in_shapes[0]
    p = node.param.inner_product_param
    axis = canonical_axis(node.op, p.axis, len(shape), "inner_product_param.axis")
    free = None in shape[axis:]
    inputs = _inputs_of_free_sizes(node, axis) if free else math.prod(shape[axis:])
    field, num = "inner_product_param.num_output", p.num_output
    stored = (inputs, num) if p.transpose else (num, inputs)
    inputs_dim = ("bottom_shape[inner_product_param.axis:]", tuple(shape[axis:]))
    weight = node.blob(
        0, stored, field, num, dims=(inputs_dim, (field, num)) if p.transpose else ((field, num), inputs_dim)
    )
    bias = node.blob(1, (num,), field, num) if p.bias_term else None
    kernel = None
    if weight is not None:
        # Keras flattens (H, W, C) in channels_last: the kernel's rows follow, at no runtime cost.
        flattened = axis == 1 and node.layout.moves_channels(len(shape)) and not free
        order = tuple(a - 1 for a in node.layout.perm(len(shape))[1:])
        kernel = dense_kernel_to_keras(
            weight, transpose=p.transpose, features=shape[1:] if flattened else None, order=order
        )
    dense = layers.Dense(
        num,
        use_bias=p.bias_term,
        kernel_initializer=caffe_filler(
            node.param, "inner_product_param.weight_filler", stored, keras_shape=(inputs, num)
        ),
        bias_initializer=caffe_filler(node.param, "inner_product_param.bias_filler", (num,)),
    )
    weights = (kernel, bias) if p.bias_term else (kernel,)
    if axis == 1 and not free:
        flatten = [Step(layers.Flatten(data_format="channels_last"), suffix="flatten")] if len(shape) > 2 else []
        return [*flatten, Step(dense, weights)]
    # Features on the last axes, or of a size known only when the model runs: reshape in Caffe's
    # order to (..., inputs), apply, restore the layout.
    steps = [s for s in (to_caffe_order(node.layout, len(shape)),) if s]
    steps.append(Step(layers.Reshape((*shape[1:axis], inputs)), suffix="reshape"))
    steps.append(Step(dense, weights, suffix="dense"))
    back = to_keras_order(node.layout, axis + 1)
    return [*steps, back] if back else steps


def _inputs_of_free_sizes(node: Node, axis: int) -> int:
    """An InnerProduct reached by a free size takes the number of inputs its weights hold, so the
    model runs at the sizes that give that many (Caffe refuses the others, and so does the reshape)."""
    shape = node.in_shapes[0]
    p = node.param.inner_product_param
    if not node.weights or None in shape[1:axis]:
        raise free_size_error(node.op, node.in_shapes)
    inputs = node.weights[0].data.size // p.num_output
    require(
        inputs % math.prod(d for d in shape[axis:] if d is not None) == 0,
        node.op,
        f"the weights hold {inputs} inputs per output, which the bottom {tuple(shape)} cannot give",
        "inner_product_param.num_output",
        p.num_output,
        kind=ShapeError,
    )
    return inputs


def embed_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    p = op.param.embed_param
    require(p.num_output > 0, op, "num_output must be positive", "embed_param.num_output", p.num_output)
    require(p.input_dim > 0, op, "input_dim must be positive", "embed_param.input_dim", p.input_dim)
    return [(*in_shapes[0], p.num_output)]


@converts(
    "Embed",
    shapes=embed_shapes,
    doc=LayerDoc(
        "`Embedding` (+ `Affine` bias)",
        "`input_dim`, `num_output`, `bias_term`; float indices truncated as Caffe casts them",
    ),
)
def embed(node: Node) -> list[Step]:
    """Caffe's Embed as Keras' Embedding, plus a learned bias when it has one."""
    p = node.param.embed_param
    shape, out = node.in_shapes[0], node.out_shapes[0]
    # Caffe stores the table as (input_dim, num_output), as Keras does; indices are truncated floats.
    table = node.blob(0, (p.input_dim, p.num_output), "embed_param.input_dim", p.input_dim)
    table_shape = (p.input_dim, p.num_output)  # the same in Caffe and Keras
    filler = caffe_filler(node.param, "embed_param.weight_filler", table_shape, keras_shape=table_shape)
    steps = [
        Step(layers.Embedding(p.input_dim, p.num_output, embeddings_initializer=filler), (table,), suffix="embedding")
    ]
    if p.bias_term:
        bias = node.blob(1, (p.num_output,), "embed_param.bias_term", True)
        filler = caffe_filler(node.param, "embed_param.bias_filler", (p.num_output,))
        steps.append(
            Step(
                caffe_layers.Affine((p.num_output,), use_scale=False, use_bias=True, beta_initializer=filler),
                (bias,),
                suffix="bias",
            )
        )
    return in_caffe_order(node, len(shape), len(out), steps)
