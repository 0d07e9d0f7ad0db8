import keras
import numpy as np
import pytest

from caffe2keras.layers.losses import (
    Accuracy,
    ContrastiveLoss,
    EuclideanLoss,
    HingeLoss,
    InfogainLoss,
    SigmoidCrossEntropyLoss,
    SoftmaxWithLoss,
)

# Caffe's gradients are checked with JAX's autodiff (the default backend).
on_jax = pytest.mark.skipif(keras.backend.backend() != "jax", reason="gradients are taken with jax.grad")
RNG = np.random.default_rng(7)
SCORES = RNG.normal(size=(6, 4)).astype(np.float32)
LABELS = np.array([0, 3, -1, 2, 1, -1], np.float32)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def value(layer, *inputs):
    return float(np.asarray(layer([np.asarray(x) for x in inputs])))


@pytest.mark.parametrize("normalization, normalizer", [("valid", 4), ("full", 6), ("batch_size", 6), ("none", 1)])
def test_softmax_with_loss_ignores_a_label_and_normalizes_as_caffe(normalization, normalizer):
    kept = LABELS != -1
    log_p = np.log(softmax(SCORES.astype(np.float64)))[np.arange(6), np.where(kept, LABELS, 0).astype(int)]
    expected = -log_p[kept].sum() / normalizer
    layer = SoftmaxWithLoss(ignore_label=-1, normalization=normalization)
    assert value(layer, SCORES, LABELS) == pytest.approx(expected, rel=1e-6)


@on_jax
def test_softmax_with_loss_gradient_is_caffes():
    import jax

    labels = np.array([0, 3, 1, 2, 1, 0], np.float32)
    layer = SoftmaxWithLoss(normalization="valid")
    grad = jax.grad(lambda s: layer([s, labels]))(SCORES)
    expected = (softmax(SCORES) - np.eye(4)[labels.astype(int)]) / 6
    np.testing.assert_allclose(grad, expected, atol=1e-7)


def test_softmax_with_loss_on_spatial_scores_uses_the_class_axis():
    scores = RNG.normal(size=(2, 3, 3, 5)).astype(np.float32)  # N, H, W, C (channels_last)
    labels = RNG.integers(0, 5, size=(2, 3, 3, 1)).astype(np.float32)
    p = softmax(scores.astype(np.float64).reshape(-1, 5))
    expected = -np.log(p[np.arange(18), labels.ravel().astype(int)]).sum() / 2
    assert value(SoftmaxWithLoss(normalization="batch_size"), scores, labels) == pytest.approx(expected, rel=1e-6)


def test_infogain_with_the_identity_is_the_softmax_loss():
    labels = np.array([0, 3, 1, 2, 1, 0], np.float32)
    infogain = InfogainLoss(infogain=np.eye(4))
    assert value(infogain, SCORES, labels) == pytest.approx(value(SoftmaxWithLoss(), SCORES, labels), rel=1e-6)


def test_euclidean_loss():
    a, b = RNG.normal(size=(2, 5, 3)).astype(np.float32)
    assert value(EuclideanLoss(), a, b) == pytest.approx(((a - b) ** 2).sum() / 10, rel=1e-6)


def test_sigmoid_cross_entropy_divides_by_the_batch_and_skips_ignored_targets():
    targets = RNG.integers(0, 2, size=(6, 4)).astype(np.float32)
    targets[0, 0] = -1
    x = SCORES.astype(np.float64)
    terms = targets * np.log(1 / (1 + np.exp(-x))) + (1 - targets) * np.log(1 - 1 / (1 + np.exp(-x)))
    expected = -(terms * (targets != -1)).sum() / 6
    assert value(SigmoidCrossEntropyLoss(ignore_label=-1), SCORES, targets) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_hinge_loss(norm):
    labels = np.array([0, 3, 1, 2, 1, 0], np.float32)
    t = SCORES.copy()
    t[np.arange(6), labels.astype(int)] *= -1
    margins = np.maximum(0, 1 + t)
    expected = (margins if norm == "l1" else margins**2).sum() / 6
    assert value(HingeLoss(norm=norm), SCORES, labels) == pytest.approx(expected, rel=1e-6)


@on_jax
def test_contrastive_loss_and_caffes_gradient_for_dissimilar_pairs():
    import jax

    a, b = RNG.normal(scale=0.3, size=(2, 4, 3)).astype(np.float32)
    similar = np.array([1, 0, 0, 1], np.float32)
    d = np.sqrt(((a - b) ** 2).sum(-1))
    expected = (similar * d**2 + (1 - similar) * np.maximum(2.0 - d, 0) ** 2).sum() / 8
    layer = ContrastiveLoss(margin=2.0)
    assert value(layer, a, b, similar) == pytest.approx(expected, rel=1e-6)
    grad = jax.grad(lambda x: layer([x, b, similar]))(a)
    beta = np.where(similar == 1, 1.0, -np.maximum(2.0 - d, 0) / (d + 1e-4)) / 4
    np.testing.assert_allclose(grad, beta[:, None] * (a - b), atol=1e-6)


def test_accuracy_top_k_counts_ties_against_the_label():
    scores = np.array([[1, 2, 3], [3, 3, 1], [0, 5, 1]], np.float32)
    labels = np.array([2, 0, 2], np.float32)
    assert value(Accuracy(), scores, labels) == pytest.approx(1 / 3)  # the tie in row 1 counts as a miss
    assert value(Accuracy(top_k=2), scores, labels) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "layer",
    [
        SoftmaxWithLoss(class_axis=1, outer_axes=(0,), ignore_label=3, normalization="full", loss_weight=0.5),
        InfogainLoss(infogain=np.eye(2), normalization="none"),
        SigmoidCrossEntropyLoss(ignore_label=-1, normalization="valid", loss_weight=2.0),
        HingeLoss(norm="l2"),
        ContrastiveLoss(margin=3.0, legacy_version=True),
        EuclideanLoss(loss_weight=0.1),
        Accuracy(top_k=5, class_axis=1, ignore_label=0),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_config_round_trip(layer, config_round_trip):
    config_round_trip(layer)
