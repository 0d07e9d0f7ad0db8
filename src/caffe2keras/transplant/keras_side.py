"""The Keras side of :func:`caffe2keras.load_caffe_weights`: the model's layers with weights.

Keras has no public graph API: the functional graph is read through
``_nodes_by_depth``, and a model without one (subclassed) is taken as a chain
of its layers, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from caffe2keras.layout import Layout


@dataclass(frozen=True)
class Flattened:
    """How a Dense layer's input was flattened: the Keras shape before, and Caffe's axis order."""

    shape: tuple[int, ...]  # without the batch axis
    caffe_features: tuple[int, ...]  # the same tensor in Caffe's layout, (C, H, W...)
    order: tuple[int, ...]  # the Caffe feature axes in the order Keras flattens them


@dataclass(frozen=True, eq=False)
class KerasTarget:
    layer: keras.layers.Layer
    index: int  # model order
    depth: int  # weighted layers on the longest path from an input, this one included
    flattened: Flattened | None = None  # Dense layers fed by a Flatten

    @property
    def kind(self) -> str | None:
        return kind_of(self.layer)

    def key(self) -> tuple | None:
        """What a Caffe unit must match to pair with this layer by order and shapes."""
        layer, kind = self.layer, self.kind
        if kind == "conv":
            *spatial, inputs, outputs = layer.kernel.shape
            if isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)):
                return ("conv", inputs * outputs, inputs, tuple(spatial))  # (..., channels, multiplier)
            return ("conv", outputs, inputs * layer.groups, tuple(spatial))
        if kind == "deconv":
            *spatial, outputs, inputs = layer.kernel.shape
            return ("deconv", outputs, inputs, tuple(spatial))
        if kind == "dense":
            return ("dense", *layer.kernel.shape)
        if kind == "batchnorm":
            return ("batchnorm", int(layer.moving_mean.shape[0]))
        if kind == "prelu":
            return ("prelu", int(keras.ops.size(layer.alpha)))
        return None


def kind_of(layer) -> str | None:
    families = (
        ("deconv", (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)),
        (
            "conv",
            (
                keras.layers.Conv1D,
                keras.layers.Conv2D,
                keras.layers.Conv3D,
                keras.layers.DepthwiseConv1D,
                keras.layers.DepthwiseConv2D,
            ),
        ),
        ("dense", (keras.layers.Dense,)),
        ("batchnorm", (keras.layers.BatchNormalization,)),
        ("prelu", (keras.layers.PReLU,)),
    )
    return next((kind for kind, classes in families if isinstance(layer, classes)), None)


def _is_weighted(layer) -> bool:
    return bool(layer.weights) and not isinstance(layer, keras.Model)


def keras_targets(model: keras.Model) -> list[KerasTarget]:
    """Every layer of ``model`` (nested models included) that holds weights, in model order."""
    found: dict[int, KerasTarget] = {}
    _walk(model, 0, found)
    return sorted(found.values(), key=lambda t: t.index)


def _walk(model, base: int, found: dict[int, KerasTarget]) -> int:
    """Record the weighted layers of ``model`` whose inputs are ``base`` deep; return its output depth."""
    by_depth = getattr(getattr(model, "_functional", None) or model, "_nodes_by_depth", None)
    if not by_depth:
        depth = base
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                depth = _walk(layer, depth, found)
            elif _is_weighted(layer):
                depth += 1
                found.setdefault(id(layer), KerasTarget(layer, len(found), depth))
        return depth
    depth_of: dict[int, int] = {}
    deepest = base
    for level in sorted(by_depth, reverse=True):  # Keras counts depth from the outputs
        for node in by_depth[level]:
            below = max((depth_of.get(id(p), base) for p in node.parent_nodes), default=base)
            layer = node.operation
            if isinstance(layer, keras.Model):
                depth = _walk(layer, below, found)
            elif _is_weighted(layer):
                depth = below + 1
                flattened = _flattened(node) if kind_of(layer) == "dense" else None
                found.setdefault(id(layer), KerasTarget(layer, len(found), depth, flattened))
            else:
                depth = below
            depth_of[id(node)] = depth
            deepest = max(deepest, depth)
    return deepest


def _flattened(dense_node) -> Flattened | None:
    """How the Flatten feeding ``dense_node`` ordered its input, if a Flatten feeds it."""
    parents = dense_node.parent_nodes
    if len(parents) != 1 or not isinstance(parents[0].operation, keras.layers.Flatten):
        return None
    flatten_node = parents[0]
    shape = tuple(flatten_node.input_tensors[0].shape[1:])
    if len(shape) < 2 or None in shape:
        return None
    layout = Layout(_tensor_layout(flatten_node))
    perm = layout.perm(len(shape) + 1)  # Keras axis i holds Caffe axis perm[i]
    caffe_features = layout.caffe_shape((1, *shape))[1:]
    # Flatten(data_format="channels_first") moves axis 1 last before flattening.
    flattened_axes = perm[1:] if flatten_node.operation.data_format == "channels_last" else (*perm[2:], perm[1])
    return Flattened(shape, caffe_features, tuple(a - 1 for a in flattened_axes))


def _tensor_layout(node) -> str:
    """The data format of the nearest layer upstream that has one (the Keras default without one)."""
    pending = list(node.parent_nodes)
    while pending:
        parent = pending.pop(0)
        data_format = getattr(parent.operation, "data_format", None)
        if data_format in ("channels_last", "channels_first"):
            return data_format
        pending.extend(parent.parent_nodes)
    return keras.config.image_data_format()
