"""Caffe's loss layers and Accuracy, for training: each returns its (unweighted) scalar.

A loss layer carries its ``loss_weight``; :class:`caffe2keras.layers.CaffeTrainingModel` adds
the weighted values of its loss outputs up into the loss Keras minimises, as Caffe's net does.
Labels are read as Caffe reads them: cast to int, truncating.
"""

from __future__ import annotations

import numpy as np
from keras import layers, ops, saving

from caffe2keras.layers.common import PACKAGE

NORMALIZATIONS = ("full", "valid", "batch_size", "none")
FLT_MIN = float(np.finfo(np.float32).tiny)
# Caffe's InfogainLoss clamps probabilities at kLOG_THRESHOLD before the log.
INFOGAIN_LOG_THRESHOLD = 1e-20
LOG_FLT_MIN = float(np.log(FLT_MIN))
LOG_INFOGAIN_THRESHOLD = float(np.log(INFOGAIN_LOG_THRESHOLD))


class CaffeLoss(layers.Layer):
    """Base of the loss layers: ``loss_weight`` scales the value in the training loss (not the output)."""

    is_caffe_loss = True

    def __init__(self, loss_weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.loss_weight = float(loss_weight)

    def compute_output_shape(self, input_shape):
        return ()

    def get_config(self):
        return {**super().get_config(), "loss_weight": self.loss_weight}


def _check_normalization(normalization: str) -> str:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}. Received: normalization={normalization!r}")
    return normalization


def _class_last(scores, class_axis: int):
    """``scores`` with the class axis last, flattened to (positions, classes)."""
    moved = ops.moveaxis(scores, class_axis, -1)
    return ops.reshape(moved, (-1, moved.shape[-1]))


def _normalizer(normalization: str, positions, valid, outer):
    """Caffe's ``LossLayer::GetNormalizer``, at least 1."""
    value = {"full": positions, "valid": valid, "batch_size": outer, "none": 1.0}[normalization]
    return ops.maximum(ops.cast(value, "float32"), 1.0)


def _outer_count(tensor, outer_axes):
    count = 1
    for axis in outer_axes:
        count = count * ops.shape(tensor)[axis]
    return count


def _labels_and_mask(labels, ignore_label):
    labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
    if ignore_label is None:
        return labels, ops.ones(ops.shape(labels), "float32")
    valid = ops.cast(ops.not_equal(labels, ignore_label), "float32")
    return ops.where(labels == ignore_label, 0, labels), valid


@saving.register_keras_serializable(package=PACKAGE)
class SoftmaxWithLoss(CaffeLoss):
    """Caffe's SoftmaxWithLoss: ``-sum(log(max(softmax(scores)[label], FLT_MIN))) / normalizer``.

    Args:
        class_axis: the axis of the scores holding the classes.
        outer_axes: the axes before Caffe's softmax axis (their product is the BATCH_SIZE normalizer).
        ignore_label: a label whose positions count neither in the loss nor in VALID's normalizer.
        normalization: ``"full"`` (every position), ``"valid"`` (non-ignored), ``"batch_size"``, ``"none"``.
        loss_weight: the weight in the training loss.
    """

    def __init__(
        self, class_axis=-1, outer_axes=(0,), ignore_label=None, normalization="valid", loss_weight=1.0, **kwargs
    ):
        super().__init__(loss_weight, **kwargs)
        self.class_axis = int(class_axis)
        self.outer_axes = tuple(int(a) for a in outer_axes)
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self.normalization = _check_normalization(normalization)

    def call(self, inputs):
        scores, labels = inputs
        flat = _class_last(scores, self.class_axis)
        labels, valid = _labels_and_mask(labels, self.ignore_label)
        log_prob = ops.take_along_axis(ops.log_softmax(flat, axis=-1), labels[:, None], axis=-1)[:, 0]
        loss = -ops.sum(ops.maximum(log_prob, LOG_FLT_MIN) * valid)
        normalizer = _normalizer(
            self.normalization, ops.shape(flat)[0], ops.sum(valid), _outer_count(scores, self.outer_axes)
        )
        return loss / normalizer

    def get_config(self):
        config = super().get_config()
        config.update(
            class_axis=self.class_axis,
            outer_axes=self.outer_axes,
            ignore_label=self.ignore_label,
            normalization=self.normalization,
        )
        return config


@saving.register_keras_serializable(package=PACKAGE)
class InfogainLoss(SoftmaxWithLoss):
    """Caffe's InfogainLoss: ``-sum_l H[label, l] * log(max(softmax(scores)_l, 1e-20)) / normalizer``.

    ``infogain`` is the (classes, classes) matrix H; without it, H comes as a third input.
    Caffe's InfogainLoss has no ``ignore_label``: every position counts.
    """

    def __init__(self, infogain=None, **kwargs):
        super().__init__(**kwargs)
        self.infogain = None if infogain is None else np.asarray(infogain, np.float32).tolist()

    def call(self, inputs):
        scores, labels, *given = inputs
        matrix = given[0] if given else ops.convert_to_tensor(np.asarray(self.infogain, np.float32))
        flat = _class_last(scores, self.class_axis)
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        weights = ops.take(ops.reshape(matrix, (flat.shape[-1], flat.shape[-1])), labels, axis=0)
        log_prob = ops.maximum(ops.log_softmax(flat, axis=-1), LOG_INFOGAIN_THRESHOLD)
        positions = ops.shape(flat)[0]
        normalizer = _normalizer(self.normalization, positions, positions, _outer_count(scores, self.outer_axes))
        return -ops.sum(weights * log_prob) / normalizer

    def get_config(self):
        return {**super().get_config(), "infogain": self.infogain}


@saving.register_keras_serializable(package=PACKAGE)
class EuclideanLoss(CaffeLoss):
    """Caffe's EuclideanLoss: ``sum((a - b)^2) / (2 N)``, N the batch size."""

    def call(self, inputs):
        a, b = inputs
        return ops.sum(ops.square(a - b)) / (2.0 * ops.cast(ops.shape(a)[0], "float32"))


@saving.register_keras_serializable(package=PACKAGE)
class SigmoidCrossEntropyLoss(CaffeLoss):
    """Caffe's SigmoidCrossEntropyLoss, in its overflow-free form, normalised by BATCH_SIZE by default.

    Targets equal to ``ignore_label`` (compared as ints) count neither in the loss nor in VALID's
    normalizer.
    """

    def __init__(self, ignore_label=None, normalization="batch_size", loss_weight=1.0, **kwargs):
        super().__init__(loss_weight, **kwargs)
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self.normalization = _check_normalization(normalization)

    def call(self, inputs):
        scores, targets = inputs
        x = ops.reshape(scores, (-1,))
        t = ops.reshape(ops.cast(targets, "float32"), (-1,))
        valid = ops.ones_like(x)
        if self.ignore_label is not None:
            valid = ops.cast(ops.not_equal(ops.cast(t, "int32"), self.ignore_label), "float32")
        positive = ops.cast(x >= 0, "float32")
        terms = x * (t - positive) - ops.log(1.0 + ops.exp(x - 2.0 * x * positive))
        loss = -ops.sum(terms * valid)
        return loss / _normalizer(self.normalization, ops.shape(x)[0], ops.sum(valid), ops.shape(scores)[0])

    def get_config(self):
        return {**super().get_config(), "ignore_label": self.ignore_label, "normalization": self.normalization}


@saving.register_keras_serializable(package=PACKAGE)
class HingeLoss(CaffeLoss):
    """Caffe's HingeLoss on (N, classes) scores: with t = -score for the true class and +score
    otherwise, ``sum(max(0, 1 + t)) / N`` (``norm="l1"``) or ``sum(max(0, 1 + t)^2) / N`` (``"l2"``)."""

    def __init__(self, norm="l1", loss_weight=1.0, **kwargs):
        super().__init__(loss_weight, **kwargs)
        if norm not in ("l1", "l2"):
            raise ValueError(f"norm must be 'l1' or 'l2'. Received: norm={norm!r}")
        self.norm = norm

    def call(self, inputs):
        scores, labels = inputs
        flat = ops.reshape(scores, (ops.shape(scores)[0], -1))
        true = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), flat.shape[-1], dtype=flat.dtype)
        margins = ops.relu(1.0 + flat * (1.0 - 2.0 * true))
        total = ops.sum(margins) if self.norm == "l1" else ops.sum(ops.square(margins))
        return total / ops.cast(ops.shape(scores)[0], "float32")

    def get_config(self):
        return {**super().get_config(), "norm": self.norm}


@saving.register_keras_serializable(package=PACKAGE)
class ContrastiveLoss(CaffeLoss):
    """Caffe's ContrastiveLoss on pairs (a, b) with similarity y:
    ``sum(y d^2 + (1 - y) max(margin - d, 0)^2) / 2N``, d = ||a - b||
    (``legacy_version``: ``max(margin - d^2, 0)``).

    The dissimilar pairs' gradient divides by ``d + 1e-4``, as Caffe's backward pass does.
    """

    def __init__(self, margin=1.0, legacy_version=False, loss_weight=1.0, **kwargs):
        super().__init__(loss_weight, **kwargs)
        self.margin = float(margin)
        self.legacy_version = bool(legacy_version)

    def call(self, inputs):
        a, b, similar = inputs
        count = ops.shape(a)[0]
        diff = ops.reshape(a - b, (count, -1))
        dist_sq = ops.sum(ops.square(diff), axis=-1)
        similar = ops.cast(ops.cast(ops.reshape(similar, (-1,)), "int32") != 0, "float32")
        if self.legacy_version:
            dissimilar = ops.relu(self.margin - dist_sq)
        else:
            dist = ops.sqrt(dist_sq)
            hinge = ops.relu(self.margin - dist)
            # Forward: hinge^2. Backward: Caffe's -2 hinge / (d + 1e-4) per unit of (a - b).
            slope = ops.stop_gradient(-2.0 * hinge / (dist + 1e-4))[:, None] * ops.stop_gradient(diff)
            surrogate = ops.sum(slope * diff, axis=-1)
            dissimilar = ops.stop_gradient(ops.square(hinge)) + surrogate - ops.stop_gradient(surrogate)
        total = ops.sum(similar * dist_sq + (1.0 - similar) * dissimilar)
        return total / (2.0 * ops.cast(count, "float32"))

    def get_config(self):
        return {**super().get_config(), "margin": self.margin, "legacy_version": self.legacy_version}


@saving.register_keras_serializable(package=PACKAGE)
class Accuracy(layers.Layer):
    """Caffe's Accuracy: the share of (non-ignored) positions whose label's score is among the
    ``top_k`` highest; a score tying the label's counts as higher, as in Caffe."""

    def __init__(self, top_k=1, class_axis=-1, ignore_label=None, **kwargs):
        super().__init__(**kwargs)
        self.top_k = int(top_k)
        self.class_axis = int(class_axis)
        self.ignore_label = None if ignore_label is None else int(ignore_label)

    def call(self, inputs):
        scores, labels = inputs
        flat = _class_last(scores, self.class_axis)
        labels, valid = _labels_and_mask(labels, self.ignore_label)
        true_score = ops.take_along_axis(flat, labels[:, None], axis=-1)
        better = ops.sum(ops.cast(flat >= true_score, "float32"), axis=-1) - 1.0
        correct = ops.cast(better < self.top_k, "float32") * valid
        count = ops.sum(valid)
        return ops.stop_gradient(ops.where(count > 0, ops.sum(correct) / ops.maximum(count, 1.0), 0.0))

    def compute_output_shape(self, input_shape):
        return ()

    def get_config(self):
        config = super().get_config()
        config.update(top_k=self.top_k, class_axis=self.class_axis, ignore_label=self.ignore_label)
        return config
