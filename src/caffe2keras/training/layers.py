"""Converters of the layers a TRAIN net adds or computes differently: the losses, Accuracy and
BatchNorm with batch statistics. They live in their own table, which :func:`training_rule_for`
consults before the inference converters, so a TEST-phase conversion never sees them."""

from __future__ import annotations

import numpy as np

from caffe2keras.caffe import read_blob_file
from caffe2keras.caffe.schema import enum_name
from caffe2keras.converters.axes import canonical_axis
from caffe2keras.converters.base import LayerRule, Node, Step, require, rule_for
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.graph import Op, Shape
from caffe2keras.layers.losses import (
    Accuracy,
    ContrastiveLoss,
    EuclideanLoss,
    HingeLoss,
    InfogainLoss,
    SigmoidCrossEntropyLoss,
    SoftmaxWithLoss,
)
from caffe2keras.layers.normalization import CaffeBatchNorm

_TRAINING_RULES: dict[str, LayerRule] = {}


def training_rule_for(layer_type: str) -> LayerRule | None:
    """The converter of ``layer_type`` in a net built for training."""
    return _TRAINING_RULES.get(layer_type) or rule_for(layer_type)


def _training(*types: str, shapes):
    def decorate(convert):
        for name in types:
            _TRAINING_RULES[name] = LayerRule(name, convert, shapes, None, 1)
        return convert

    return decorate


def _count(shape: Shape) -> int:
    return int(np.prod(shape))


def _scalar(bottoms: int, tops: int = 1):
    """A shape rule: ``bottoms`` inputs in, one scalar out (Caffe's loss blob has no axes)."""

    def shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
        require(
            len(in_shapes) == bottoms, op, f"the layer takes {bottoms} bottoms", "bottom", [b.name for b in op.bottoms]
        )
        require(
            len(op.tops) == tops,
            op,
            f"caffe2keras makes only the {'loss' if tops == 1 else 'value'} top of this layer",
            "top",
            [t.name for t in op.tops],
            kind=UnsupportedParameterError,
        )
        return [()]

    return shapes


def _loss_weight(node: Node) -> float:
    weights = node.param.loss_weight
    return float(weights[0]) if weights else 1.0


def _normalization(node: Node, default: str) -> str:
    p = node.param.loss_param
    if p.HasField("normalization"):
        return enum_name(p, "normalization").lower()
    if p.HasField("normalize"):
        return "valid" if p.normalize else "batch_size"
    return default


def _ignore_label(param, message) -> int | None:
    return getattr(param, message).ignore_label if getattr(param, message).HasField("ignore_label") else None


def _class_axes(node: Node, axis_field: str, axis: int) -> tuple[int, tuple[int, ...]]:
    """The Keras class axis and the Keras axes before Caffe's ``axis`` of bottom 0."""
    rank = len(node.in_shapes[0])
    axis = canonical_axis(node.op, axis, rank, axis_field)
    return node.keras_axis(axis), tuple(node.keras_axis(a) for a in range(axis))


def _labels_match(op: Op, in_shapes: list[Shape], axis: int, field: str) -> None:
    scores = in_shapes[0]
    axis = canonical_axis(op, axis, len(scores), field)
    positions = _count(scores) // max(scores[axis], 1)
    require(
        _count(in_shapes[1]) == positions,
        op,
        f"the label blob must hold one label per position ({positions}), as Caffe checks",
        "bottom_shapes",
        tuple(tuple(s) for s in in_shapes),
    )


def softmax_loss_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    out = _scalar(2)(op, in_shapes)
    _labels_match(op, in_shapes, op.param.softmax_param.axis, "softmax_param.axis")
    return out


@_training("SoftmaxWithLoss", shapes=softmax_loss_shapes)
def softmax_with_loss(node: Node) -> Step:
    class_axis, outer_axes = _class_axes(node, "softmax_param.axis", node.param.softmax_param.axis)
    return Step(
        SoftmaxWithLoss(
            class_axis=class_axis,
            outer_axes=outer_axes,
            ignore_label=_ignore_label(node.param, "loss_param"),
            normalization=_normalization(node, "valid"),
            loss_weight=_loss_weight(node),
        )
    )


def infogain_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    bottoms = 3 if len(in_shapes) == 3 else 2
    out = _scalar(bottoms)(op, in_shapes)
    _labels_match(op, in_shapes, op.param.infogain_loss_param.axis, "infogain_loss_param.axis")
    return out


@_training("InfogainLoss", shapes=infogain_shapes)
def infogain_loss(node: Node) -> Step:
    p = node.param.infogain_loss_param
    class_axis, outer_axes = _class_axes(node, "infogain_loss_param.axis", p.axis)
    classes = node.in_shapes[0][canonical_axis(node.op, p.axis, len(node.in_shapes[0]), "infogain_loss_param.axis")]
    matrix = None
    if len(node.in_shapes) == 2:
        if not p.source:
            raise node.error(
                "the infogain matrix H comes from source (a .binaryproto) or a third bottom",
                "infogain_loss_param.source",
                "",
            )
        matrix = read_blob_file(p.source).astype(np.float32)
        if matrix.size != classes * classes:
            raise node.error(f"H must be {classes} x {classes}", "infogain_loss_param.source", p.source)
    return Step(
        InfogainLoss(
            infogain=None if matrix is None else matrix.reshape(classes, classes),
            class_axis=class_axis,
            outer_axes=outer_axes,
            normalization=_normalization(node, "valid"),
            loss_weight=_loss_weight(node),
        )
    )


@_training("EuclideanLoss", shapes=_scalar(2))
def euclidean_loss(node: Node) -> Step:
    a, b = node.in_shapes
    require(_count(a[1:]) == _count(b[1:]), node.op, "both bottoms must hold as many values", "bottom_shapes", (a, b))
    return Step(EuclideanLoss(loss_weight=_loss_weight(node)))


@_training("SigmoidCrossEntropyLoss", shapes=_scalar(2))
def sigmoid_cross_entropy_loss(node: Node) -> Step:
    a, b = node.in_shapes
    require(_count(a) == _count(b), node.op, "scores and targets must hold as many values", "bottom_shapes", (a, b))
    return Step(
        SigmoidCrossEntropyLoss(
            ignore_label=_ignore_label(node.param, "loss_param"),
            normalization=_normalization(node, "batch_size"),
            loss_weight=_loss_weight(node),
        )
    )


@_training("HingeLoss", shapes=_scalar(2))
def hinge_loss(node: Node) -> Step:
    scores = node.in_shapes[0]
    if node.layout.moves_channels(len(scores)) and _count(scores[2:]) != 1:
        raise node.error(
            "HingeLoss on scores with spatial axes is only supported in channels_first",
            "bottom_shape",
            tuple(scores),
        )
    norm = enum_name(node.param.hinge_loss_param, "norm").lower()
    return Step(HingeLoss(norm=norm, loss_weight=_loss_weight(node)))


@_training("ContrastiveLoss", shapes=_scalar(3))
def contrastive_loss(node: Node) -> Step:
    p = node.param.contrastive_loss_param
    return Step(ContrastiveLoss(margin=p.margin, legacy_version=p.legacy_version, loss_weight=_loss_weight(node)))


def accuracy_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    out = _scalar(2)(op, in_shapes)
    _labels_match(op, in_shapes, op.param.accuracy_param.axis, "accuracy_param.axis")
    return out


@_training("Accuracy", shapes=accuracy_shapes)
def accuracy(node: Node) -> Step:
    p = node.param.accuracy_param
    if any(node.param.loss_weight):
        raise node.error(
            "Accuracy cannot be a loss (Caffe cannot backpropagate it)", "loss_weight", list(node.param.loss_weight)
        )
    class_axis, _ = _class_axes(node, "accuracy_param.axis", p.axis)
    return Step(
        Accuracy(top_k=p.top_k, class_axis=class_axis, ignore_label=_ignore_label(node.param, "accuracy_param"))
    )


def batch_norm_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    return [in_shapes[0]] * len(op.tops)


@_training("BatchNorm", shapes=batch_norm_shapes)
def batch_norm(node: Node) -> Step:
    """Caffe's BatchNorm with its blobs as they are, batch statistics in training."""
    p = node.param.batch_norm_param
    for index, spec in enumerate(node.param.param):
        if spec.lr_mult != 0:
            raise node.error(
                "BatchNorm's statistics are not parameters to learn (Caffe requires lr_mult 0)",
                f"param[{index}].lr_mult",
                spec.lr_mult,
            )
    shape = node.in_shapes[0]
    channels = shape[1] if len(shape) > 1 else 1
    blobs = [node.blob(i, (channels,) if i < 2 else (1,), "bottom_channels", channels) for i in range(3)]
    return Step(
        CaffeBatchNorm(
            axis=node.keras_axis(1) if len(shape) > 1 else -1,
            epsilon=p.eps,
            moving_average_fraction=p.moving_average_fraction,
            use_global_stats=p.use_global_stats if p.HasField("use_global_stats") else None,
        ),
        blobs,
    )
