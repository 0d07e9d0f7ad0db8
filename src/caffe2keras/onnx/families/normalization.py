"""LRN, BatchNorm and MVN."""

from __future__ import annotations

import numpy as np

from caffe2keras.caffe.schema import enum_name
from caffe2keras.node import Node, batch_norm_statistics
from caffe2keras.onnx.emit import Emission, emits


@emits("LRN")
def lrn(node: Node, out: Emission) -> None:
    """Across channels, ONNX's ``LRN`` is Caffe's: ``x / (k + alpha / size * sum x^2) ^ beta`` over
    a window centred on each channel (``size`` odd). Within a channel, Caffe averages ``x^2`` over a
    ``size`` x ``size`` window padded by ``(size - 1) / 2``, dividing by the window clipped to the
    padded extent, and computes ``x * (1 + alpha * mean) ^ -beta``. The plan checked the rank and
    the odd ``size`` (converters.normalization.lrn_shapes)."""
    p = node.param.lrn_param
    shape = node.in_shapes[0]
    x = out.bottoms[0]
    if enum_name(p, "norm_region") == "ACROSS_CHANNELS":
        out.op("LRN", x, top=0, size=p.local_size, alpha=p.alpha, beta=p.beta, bias=p.k)
        return
    size, pad = p.local_size, (p.local_size - 1) // 2
    ends = [np.minimum(np.arange(n) - pad + size, n + pad) - (np.arange(n) - pad) for n in shape[2:]]
    area = np.outer(*ends).astype(np.float32)
    squares = out.op("Mul", x, x)
    mean = out.op("AveragePool", squares, kernel_shape=[size, size], pads=[pad] * 4, count_include_pad=1)
    scale = out.constant("alpha_over_area", p.alpha * size * size / area)
    base = out.op("Add", out.op("Mul", mean, scale), out.constant("one", np.float32(1)))
    out.op("Mul", x, out.op("Pow", base, out.constant("minus_beta", np.float32(-p.beta))), top=0)


@emits("BatchNorm")
def batch_norm(node: Node, out: Emission) -> None:
    """``BatchNormalization`` over the stored mean and variance, divided by the scale-factor blob."""
    p = node.param.batch_norm_param
    shape = node.in_shapes[0]
    channels = shape[1] if len(shape) > 1 else 1
    mean = node.blob(0, (channels,), "bottom_channels", channels)
    variance = node.blob(1, (channels,), "bottom_channels", channels)
    factor = node.blob(2, (1,), "bottom_channels", channels)
    x = out.bottoms[0]
    if p.HasField("use_global_stats") and not p.use_global_stats:
        _mean_variance_normalization(out, x, [a for a in range(len(shape)) if a != 1], p.eps, on_variance=True)
        return
    mean, variance = batch_norm_statistics(mean, variance, factor)
    ones, zeros = np.ones(channels, np.float32), np.zeros(channels, np.float32)
    statistics = [
        out.constant(w, v) for w, v in (("scale", ones), ("bias", zeros), ("mean", mean), ("variance", variance))
    ]
    out.op("BatchNormalization", x, *statistics, top=0, epsilon=p.eps)


def _mean_variance_normalization(
    out: Emission,
    x: str,
    axes: list[int],
    eps: float,
    *,
    on_variance: bool,
    normalize_variance: bool = True,
    top: str | None = None,
) -> str:
    """``(x - mean) / (std + eps)`` (``sqrt(variance + eps)`` when ``on_variance``) over ``axes``."""
    centred = out.op("Sub", x, out.op("ReduceMean", x, axes=axes, keepdims=1))
    if not normalize_variance:
        return out.op("Identity", centred, top=0)
    variance = out.op("ReduceMean", out.op("Mul", centred, centred), axes=axes, keepdims=1)
    epsilon = out.constant("eps", np.float32(eps))
    if on_variance:
        divisor = out.op("Sqrt", out.op("Add", variance, epsilon))
    else:
        divisor = out.op("Add", out.op("Sqrt", variance), epsilon)
    return out.op("Div", centred, divisor, top=0)


@emits("MVN")
def mvn(node: Node, out: Emission) -> None:
    """``(x - mean) / (std + eps)`` over (C,) H, W; the top has Caffe's 4 axes."""
    p = node.param.mvn_param
    shape = node.in_shapes[0]
    x = out.bottoms[0]
    if len(shape) < 4:  # Caffe reads the bottom through its legacy (num, channels, height, width) view
        x = out.op("Reshape", x, out.constant("shape", [0, *shape[1:], *(1,) * (4 - len(shape))]))
    axes = [1, 2, 3] if p.across_channels else [2, 3]
    _mean_variance_normalization(out, x, axes, p.eps, on_variance=False, normalize_variance=p.normalize_variance)


@emits("BN")
def bn(node: Node, out: Emission) -> None:
    """PSPNet's BN at test time, ``(x - mean) / sqrt(variance + eps) * slope + bias``: its four
    (1, C, 1, 1) blobs are BatchNormalization's inputs (the fork's CPU formula)."""
    channels = node.in_shapes[0][1]
    blobs = [node.blob(i, (1, channels, 1, 1), "bottom_channels", channels) for i in range(4)]
    names = [out.constant(what, b.reshape(channels)) for what, b in zip(("slope", "bias", "mean", "variance"), blobs)]
    out.op("BatchNormalization", out.bottoms[0], *names, top=0, epsilon=node.param.bn_param.eps)
