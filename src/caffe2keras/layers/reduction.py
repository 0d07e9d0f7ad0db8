"""Caffe's ArgMax and Reduction: layers that shrink an axis."""

from __future__ import annotations

from keras import layers, ops, saving

from caffe2keras.layers.common import PACKAGE

ARGMAX_RETURNS = ("indices", "values", "indices_and_values")
REDUCTIONS = ("sum", "asum", "sumsq", "mean")


@saving.register_keras_serializable(package=PACKAGE)
class ArgMax(layers.Layer):
    """The ``top_k`` largest entries along ``axis``, in decreasing order (Caffe's ArgMax).

    Ties rank the larger index first, as Caffe's ``partial_sort`` of
    ``(value, index)`` pairs with ``std::greater`` does. Indices come out as
    floats, in the input's dtype, like every Caffe blob.

    Args:
        top_k: how many entries to keep; ``axis`` shrinks to this size.
        axis: the axis to rank along.
        returns: ``"indices"``, ``"values"``, or ``"indices_and_values"``, which
            stacks the two on a new axis just before ``axis`` (indices first).
    """

    def __init__(self, top_k=1, axis=-1, returns="indices", **kwargs):
        super().__init__(**kwargs)
        if int(top_k) < 1:
            raise ValueError(f"top_k must be at least 1. Received: top_k={top_k}")
        if returns not in ARGMAX_RETURNS:
            raise ValueError(f"returns must be one of {ARGMAX_RETURNS}. Received: returns={returns!r}")
        self.top_k = int(top_k)
        self.axis = int(axis)
        self.returns = returns

    def call(self, inputs):
        axis = self.axis % len(inputs.shape)
        ranked = ops.moveaxis(inputs, axis, -1)
        size = ranked.shape[-1]
        # top_k puts the lower index first among equals; on the reversed axis that is the larger index.
        values, reversed_positions = ops.top_k(ops.flip(ranked, axis=-1), self.top_k, sorted=True)
        indices = ops.cast((size - 1) - reversed_positions, inputs.dtype)
        if self.returns == "indices_and_values":
            stacked = ops.stack([indices, values], axis=-2)
            return ops.moveaxis(stacked, (-2, -1), (axis, axis + 1))
        return ops.moveaxis(indices if self.returns == "indices" else values, -1, axis)

    def compute_output_shape(self, input_shape):
        axis = self.axis % len(input_shape)
        shape = list(input_shape)
        shape[axis] = self.top_k
        if self.returns == "indices_and_values":
            shape.insert(axis, 2)
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(top_k=self.top_k, axis=self.axis, returns=self.returns)
        return config


@saving.register_keras_serializable(package=PACKAGE)
class Reduction(layers.Layer):
    """``coeff * reduce(x)`` over ``axes``, which are removed (Caffe's Reduction).

    Args:
        operation: ``"sum"``, ``"asum"`` (sum of absolute values), ``"sumsq"``
            (sum of squares) or ``"mean"``.
        axes: the axes to reduce.
        coeff: the factor applied to the result.
    """

    def __init__(self, operation="sum", axes=(-1,), coeff=1.0, **kwargs):
        super().__init__(**kwargs)
        if operation not in REDUCTIONS:
            raise ValueError(f"operation must be one of {REDUCTIONS}. Received: operation={operation!r}")
        self.operation = operation
        self.axes = tuple(int(a) for a in axes)
        self.coeff = float(coeff)

    def call(self, inputs):
        terms = {"asum": ops.absolute, "sumsq": ops.square}.get(self.operation, lambda x: x)(inputs)
        total = ops.sum(terms, axis=self.axes)
        coeff = self.coeff
        if self.operation == "mean":
            count = 1
            for axis in self.axes:
                count *= inputs.shape[axis]
            coeff /= count
        return total if coeff == 1 else total * coeff

    def compute_output_shape(self, input_shape):
        removed = {a % len(input_shape) for a in self.axes}
        return tuple(d for i, d in enumerate(input_shape) if i not in removed)

    def get_config(self):
        config = super().get_config()
        config.update(operation=self.operation, axes=self.axes, coeff=self.coeff)
        return config
