"""Neuron layers (element-wise), Softmax and Dropout."""

from __future__ import annotations

import numpy as np

from caffe2keras.converters.axes import canonical_axis, require_not_batch_axis
from caffe2keras.converters.base import IDENTITY, LayerDoc, Node, Step, converts, require, same_shapes
from caffe2keras.converters.fillers import caffe_filler
from caffe2keras.converters.keras_layers import caffe_layers, layers
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.graph import Op, Shape


@converts(
    "ReLU",
    shapes=same_shapes,
    doc=LayerDoc("`ReLU`; a frozen `PReLU` for a negative `negative_slope` (Keras refuses one)", "`negative_slope`"),
)
def relu(node: Node) -> Step:
    """Caffe's ReLU as Keras' ReLU, leaky by ``negative_slope`` (a frozen PReLU when that is negative)."""
    slope = node.param.relu_param.negative_slope
    if slope < 0:
        # Keras' ReLU and LeakyReLU refuse negative slopes, which Caffe computes like any other.
        # A PReLU whose slope is frozen is the same function, and stays fixed in fine-tuning.
        rank = len(node.in_shapes[0])
        alpha = np.full((1,) * (rank - 1), slope, np.float32)
        return Step(layers.PReLU(shared_axes=list(range(1, rank)), trainable=False), (alpha,))
    return Step(layers.ReLU(negative_slope=slope) if slope else layers.ReLU())


@converts("ReLU6", shapes=same_shapes, doc=LayerDoc("`ReLU(max_value=6)`", "", origin="forks"))
def relu6(node: Node) -> Step:
    """The forks' ReLU6 as Keras' ``ReLU(max_value=6)``."""
    # The forks' ReLU6 (MobileNet v2 ports) has no parameters: min(max(x, 0), 6).
    return Step(layers.ReLU(max_value=6.0))


def prelu_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    require(len(in_shapes[0]) >= 2, op, "PReLU needs a channel axis", "bottom_shape", in_shapes[0])
    return same_shapes(op, in_shapes)


@converts("PReLU", shapes=prelu_shapes, doc=LayerDoc("`PReLU`", "shared or per channel"))
def prelu(node: Node) -> Step:
    """Caffe's PReLU as Keras' PReLU, one learned slope per channel or one for all."""
    shape = node.in_shapes[0]
    shared = node.param.prelu_param.channel_shared
    channels = shape[1]
    slopes = node.blob(0, (1,) if shared else (channels,), "prelu_param.channel_shared", shared)
    rank = len(shape)
    channel = node.keras_axis(1)
    shared_axes = [a for a in range(1, rank) if shared or a != channel]
    alpha_shape = [1 if a in shared_axes else channels for a in range(1, rank)]
    alpha = None if slopes is None else slopes.reshape(alpha_shape)
    # Caffe's default PReLU filler is the constant 0.25.
    initializer = caffe_filler(
        node.param, "prelu_param.filler", (1,) if shared else (channels,), 0.25, keras_shape=tuple(alpha_shape)
    )
    return Step(layers.PReLU(alpha_initializer=initializer, shared_axes=shared_axes), (alpha,))


SMOOTH_ACTIVATIONS = LayerDoc("`ELU`, `Activation`", "BNLL is softplus; Swish with `beta` ≠ 1 is `Swish`")


@converts("ELU", shapes=same_shapes, doc=SMOOTH_ACTIVATIONS)
def elu(node: Node) -> Step:
    """Caffe's ELU as Keras' ELU with its ``alpha``."""
    return Step(layers.ELU(alpha=node.param.elu_param.alpha))


@converts("Sigmoid", shapes=same_shapes, doc=SMOOTH_ACTIVATIONS)
def sigmoid(node: Node) -> Step:
    """Caffe's Sigmoid as Keras' sigmoid activation."""
    return Step(layers.Activation("sigmoid"))


@converts("TanH", shapes=same_shapes, doc=SMOOTH_ACTIVATIONS)
def tanh(node: Node) -> Step:
    """Caffe's TanH as Keras' tanh activation."""
    return Step(layers.Activation("tanh"))


@converts("BNLL", shapes=same_shapes, doc=SMOOTH_ACTIVATIONS)
def bnll(node: Node) -> Step:
    """Caffe's BNLL, ``log(1 + exp(x))``, as Keras' softplus activation."""
    # Caffe's BNLL is log(1 + exp(x)), computed stably: softplus.
    return Step(layers.Activation("softplus"))


ELEMENTWISE_FUNCTIONS = LayerDoc("custom element-wise layers", "Caffe's formulas, including its shortcuts")


@converts("AbsVal", shapes=same_shapes, doc=ELEMENTWISE_FUNCTIONS)
def absval(node: Node) -> Step:
    """Caffe's AbsVal as the AbsVal layer."""
    return Step(caffe_layers.AbsVal())


@converts("Power", shapes=same_shapes, doc=ELEMENTWISE_FUNCTIONS)
def power(node: Node) -> Step:
    """Caffe's Power, ``(shift + scale * x) ^ power``, as the Power layer."""
    p = node.param.power_param
    return Step(caffe_layers.Power(power=p.power, scale=p.scale, shift=p.shift))


def positive_base_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    """Exp's and Log's shape rule: ``base`` is positive, or -1 for e."""
    field = "exp_param" if op.type == "Exp" else "log_param"
    base = getattr(op.param, field).base
    require(
        base == -1 or base > 0,
        op,
        "base must be positive, or -1 for e",
        f"{field}.base",
        base,
        kind=UnsupportedParameterError,
    )
    return same_shapes(op, in_shapes)


@converts("Exp", shapes=positive_base_shapes, doc=ELEMENTWISE_FUNCTIONS)
def exp(node: Node) -> Step:
    """Caffe's Exp, ``base ^ (shift + scale * x)``, as the Exp layer."""
    p = node.param.exp_param
    return Step(caffe_layers.Exp(base=p.base, scale=p.scale, shift=p.shift))


@converts("Log", shapes=positive_base_shapes, doc=ELEMENTWISE_FUNCTIONS)
def log(node: Node) -> Step:
    """Caffe's Log, ``log_base(shift + scale * x)``, as the Log layer."""
    p = node.param.log_param
    return Step(caffe_layers.Log(base=p.base, scale=p.scale, shift=p.shift))


def clip_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    p = op.param.clip_param
    require(
        p.HasField("min") and p.HasField("max"),
        op,
        "Clip needs both min and max",
        "clip_param",
        f"min={p.min}, max={p.max}",
        kind=UnsupportedParameterError,
    )
    return same_shapes(op, in_shapes)


@converts("Clip", shapes=clip_shapes, doc=ELEMENTWISE_FUNCTIONS)
def clip(node: Node) -> Step:
    """Caffe's Clip as the Clip layer (both bounds must be given)."""
    p = node.param.clip_param
    return Step(caffe_layers.Clip(min=p.min, max=p.max))


@converts("Swish", shapes=same_shapes, doc=SMOOTH_ACTIVATIONS)
def swish(node: Node) -> Step:
    """Caffe's Swish, ``x * sigmoid(beta * x)``, as Keras' silu when ``beta`` is 1, else the Swish layer."""
    beta = node.param.swish_param.beta
    return Step(layers.Activation("silu") if beta == 1 else caffe_layers.Swish(beta=beta))


@converts(
    "Mish",
    shapes=same_shapes,
    doc=LayerDoc('`Activation("mish")`', "`x * tanh(ln(1 + exp(x)))`", origin="YOLOv4 forks"),
)
def mish(node: Node) -> Step:
    """The YOLOv4 forks' Mish, ``x * tanh(ln(1 + exp(x)))`` (no parameters), as Keras' mish activation."""
    return Step(layers.Activation("mish"))


@converts("Threshold", shapes=same_shapes, doc=ELEMENTWISE_FUNCTIONS)
def threshold(node: Node) -> Step:
    """Caffe's Threshold (1 above ``threshold``, else 0) as the Threshold layer."""
    return Step(caffe_layers.Threshold(threshold=node.param.threshold_param.threshold))


def dropout_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    p = op.param.dropout_param
    ratio = p.dropout_ratio
    require(0 <= ratio < 1, op, "dropout_ratio must be in [0, 1)", "dropout_param.dropout_ratio", ratio)
    require(
        not p.sample_weights_test,
        op,
        "Bayesian SegNet's Monte Carlo dropout draws a random mask at test time: its outputs are "
        "samples, which a deterministic model cannot give; set it to false for the mean",
        "dropout_param.sample_weights_test",
        True,
        kind=UnsupportedParameterError,
    )
    return same_shapes(op, in_shapes)


def inference_scale(op: Op) -> float | None:
    """The factor caffe-fast-rcnn's ``scale_train: false`` multiplies by at test time (None: none).

    It keeps the kept values unscaled in training and multiplies by ``1 / scale`` at test time, in
    the fork's float arithmetic: ``scale_ = 1 / (1 - threshold_)`` stored as a float, then ``1 / scale_``."""
    p = op.param.dropout_param
    if p.scale_train or p.dropout_ratio == 0:
        return None
    scale = np.float32(1.0 / (1.0 - np.float64(np.float32(p.dropout_ratio))))
    return float(np.float32(1.0 / np.float64(scale)))


@converts(
    "Dropout",
    shapes=dropout_shapes,
    doc=LayerDoc(
        "`Dropout` (+ `Rescaling`)",
        "`dropout_ratio`; caffe-fast-rcnn's `scale_train: false` (scaled by 1 - ratio at test time)",
    ),
)
def dropout(node: Node):
    """Caffe's Dropout as Keras' Dropout (nothing at all when the ratio is 0).

    caffe-fast-rcnn's ``scale_train: false`` (see :func:`inference_scale`): Keras' Dropout
    followed by that factor does both.
    """
    ratio = node.param.dropout_param.dropout_ratio
    # Identity at inference; kept so that fine-tuning regularizes as the Caffe net did.
    steps = [Step(layers.Dropout(ratio), suffix="dropout")] if ratio > 0 else []
    if (scale := inference_scale(node.op)) is not None:
        steps.append(Step(layers.Rescaling(scale)))
    if len(steps) == 1:
        return Step(steps[0].layer)
    return steps or IDENTITY


def softmax_axis(op: Op, rank: int) -> int:
    axis = canonical_axis(op, op.param.softmax_param.axis, rank, "softmax_param.axis")
    require_not_batch_axis(op, axis, "a softmax across the batch", "softmax_param.axis", axis)
    return axis


def softmax_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    softmax_axis(op, len(in_shapes[0]))
    return same_shapes(op, in_shapes)


@converts("Softmax", shapes=softmax_shapes, doc=LayerDoc("`Softmax`", "`axis`"))
def softmax(node: Node) -> Step:
    """Caffe's Softmax as Keras' Softmax along the same axis."""
    axis = softmax_axis(node.op, len(node.in_shapes[0]))
    return Step(layers.Softmax(axis=node.keras_axis(axis)))
