"""Independent oracles for the layer sweeps: Caffe's formulas in numpy, and OpenCV's Caffe importer.

The numpy functions are written straight from BVLC Caffe's C++ (``src/caffe/layers/*.cpp``):
explicit windows and loops, float64 accumulation, nothing from caffe2keras. Every array is in
Caffe's (N, C, ...) layout.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FLT_MAX = float(np.finfo(np.float32).max)


# --------------------------------------------------------------------------- prototxt writing


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v if v.isupper() else f'"{v}"'  # enum names are bare words
    return repr(v)


def fields(values: Mapping[str, object]) -> str:
    """``{"num_output": 4, "kernel_size": [3, 2]}`` -> ``num_output: 4 kernel_size: 3 kernel_size: 2``.

    A nested mapping becomes a sub-message; a list repeats the field.
    """
    parts = []
    for name, v in values.items():
        for item in v if isinstance(v, (list, tuple)) else [v]:
            if isinstance(item, Mapping):
                parts.append(f"{name} {{ {fields(item)} }}")
            else:
                parts.append(f"{name}: {_value(item)}")
    return " ".join(parts)


def spatial_fields(
    name: str, values: Sequence[int], hw_name: str | None = None, default: int | None = None, repeated: bool = False
) -> dict:
    """One geometry field as a prototxt writer would give it: omitted when all are ``default``,
    one value when all agree, ``<hw_name>_h``/``_w`` for 2-D, else repeated per axis."""
    values = list(values)
    if default is not None and all(v == default for v in values) and not repeated:
        return {}
    if len(set(values)) == 1 and not repeated:
        return {name: values[0]}
    if len(values) == 2 and hw_name is not None and not repeated:
        return {f"{hw_name}_h": values[0], f"{hw_name}_w": values[1]}
    return {name: values}


@dataclass
class Layer:
    name: str
    type: str
    bottoms: Sequence[str]
    tops: Sequence[str]
    params: Mapping[str, object] = field(default_factory=dict)  # e.g. {"convolution_param": {...}}
    blobs: Sequence[np.ndarray] = ()

    def prototxt(self) -> str:
        wiring = "".join(f' bottom: "{b}"' for b in self.bottoms) + "".join(f' top: "{t}"' for t in self.tops)
        body = f" {fields(self.params)}" if self.params else ""
        return f'layer {{ name: "{self.name}" type: "{self.type}"{wiring}{body} }}'


def input_layer(name: str, shape: Sequence[int]) -> Layer:
    return Layer(name, "Input", (), (name,), {"input_param": {"shape": {"dim": list(shape)}}})


def net_prototxt(layers: Sequence[Layer], name: str = "sweep") -> str:
    return f'name: "{name}"\n' + "\n".join(layer.prototxt() for layer in layers) + "\n"


# --------------------------------------------------------------------------- OpenCV


def opencv_forward(
    prototxt: Path, caffemodel: Path | None, inputs: Mapping[str, np.ndarray], outputs: Sequence[tuple[str, int]]
) -> list[np.ndarray]:
    """Run OpenCV's Caffe importer; ``outputs`` are (layer name, top index), OpenCV's naming."""
    import cv2

    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel) if caffemodel else "")
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.enableFusion(False)  # each layer as Caffe computes it, not folded into its neighbours
    for name, array in inputs.items():
        net.setInput(np.ascontiguousarray(array, dtype=np.float32), name)
    layers = list(dict.fromkeys(layer for layer, _ in outputs))
    results = dict(zip(layers, net.forwardAndRetrieve(layers)))
    return [np.asarray(results[layer][index]) for layer, index in outputs]


# --------------------------------------------------------------------------- Caffe's formulas


def _window(start: int, length: int, step: int) -> slice:
    return slice(start, start + step * (length - 1) + 1, step)


def convolution(x, weight, bias, stride, pad, dilation, group=1) -> np.ndarray:
    """``ConvolutionLayer`` (im2col + gemm per group), any number of spatial axes.

    ``out[n, o, p] = b[o] + sum_{c, k} w[o, c, k] * xpad[n, g*Cg + c, p*stride + k*dilation]``,
    where Caffe's output size is ``(in + 2*pad - extent) / stride + 1`` in C++ integer division.
    """
    x = np.asarray(x, np.float64)
    weight = np.asarray(weight, np.float64)
    n, channels, *size = x.shape
    outputs, per_group, *kernel = weight.shape
    assert per_group * group == channels and outputs % group == 0
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    out_size = [int((s + 2 * p - e) / st) + 1 for s, p, e, st in zip(size, pad, extent, stride)]
    # Zero padding past the end too: im2col reads zeros wherever a window leaves the padded input.
    after = [max(p, (o - 1) * st + e - s - p) for s, p, e, st, o in zip(size, pad, extent, stride, out_size)]
    xp = np.pad(x, [(0, 0), (0, 0), *zip(pad, after)])
    y = np.zeros((n, outputs, *out_size))
    out_per_group = outputs // group
    for g in range(group):
        cin = slice(g * per_group, (g + 1) * per_group)
        cout = slice(g * out_per_group, (g + 1) * out_per_group)
        for offset in itertools.product(*(range(k) for k in kernel)):
            index = tuple(_window(k * d, o, st) for k, d, o, st in zip(offset, dilation, out_size, stride))
            y[:, cout] += np.einsum(
                "nc...,mc->nm...", xp[(slice(None), cin, *index)], weight[(cout, slice(None), *offset)]
            )
    if bias is not None:
        y += np.asarray(bias, np.float64).reshape(1, -1, *[1] * len(size))
    return y


def deconvolution(x, weight, bias, stride, pad, dilation, group=1) -> np.ndarray:
    """``DeconvolutionLayer``: the convolution's backward pass (gemm, then col2im), pad cropped.

    The weight blob is (C_in, C_out / group, kernel...); input channel ``c`` of group ``g``
    adds ``w[c, m, k] * x[n, c, i]`` to ``full[n, g*Mg + m, i*stride + k*dilation]``.
    """
    x = np.asarray(x, np.float64)
    weight = np.asarray(weight, np.float64)
    n, channels, *size = x.shape
    _, out_per_group, *kernel = weight.shape
    outputs = out_per_group * group
    per_group = channels // group
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    full = np.zeros((n, outputs, *[st * (s - 1) + e for s, st, e in zip(size, stride, extent)]))
    for g in range(group):
        cin = slice(g * per_group, (g + 1) * per_group)
        cout = slice(g * out_per_group, (g + 1) * out_per_group)
        for offset in itertools.product(*(range(k) for k in kernel)):
            index = tuple(_window(k * d, s, st) for k, d, s, st in zip(offset, dilation, size, stride))
            full[(slice(None), cout, *index)] += np.einsum(
                "nc...,cm->nm...", x[:, cin], weight[(cin, slice(None), *offset)]
            )
    crop = tuple(slice(p, f - p) for p, f in zip(pad, full.shape[2:]))
    y = full[(slice(None), slice(None), *crop)]
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape(1, -1, *[1] * len(size))
    return y


def pooled_size(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool, any_pad: bool) -> int:
    """``PoolingLayer::Reshape``: float ceil/floor, then, if *any* axis is padded, drop a last
    window that starts at or past ``size + pad``."""
    rounding = math.ceil if ceil_mode else math.floor
    pooled = int(rounding(np.float32(size + 2 * pad - kernel) / np.float32(stride))) + 1
    if any_pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def pooling(x, method: str, kernel, stride, pad, ceil_mode=True) -> np.ndarray:
    """``PoolingLayer::Forward_cpu`` for MAX and AVE, window by window."""
    x = np.asarray(x, np.float64)
    n, c, height, width = x.shape
    any_pad = any(pad)
    out_h, out_w = (
        pooled_size(s, k, st, p, ceil_mode, any_pad) for s, k, st, p in zip((height, width), kernel, stride, pad)
    )
    y = np.empty((n, c, out_h, out_w))
    for ph in range(out_h):
        for pw in range(out_w):
            hstart, wstart = ph * stride[0] - pad[0], pw * stride[1] - pad[1]
            if method == "max":
                hend, wend = min(hstart + kernel[0], height), min(wstart + kernel[1], width)
                hstart, wstart = max(hstart, 0), max(wstart, 0)
                window = x[:, :, hstart:hend, wstart:wend]
                y[:, :, ph, pw] = window.max(axis=(2, 3)) if window.size else -FLT_MAX
            else:
                hend, wend = min(hstart + kernel[0], height + pad[0]), min(wstart + kernel[1], width + pad[1])
                pool_size = (hend - hstart) * (wend - wstart)
                hstart, wstart = max(hstart, 0), max(wstart, 0)
                hend, wend = min(hend, height), min(wend, width)
                y[:, :, ph, pw] = x[:, :, hstart:hend, wstart:wend].sum(axis=(2, 3)) / pool_size
    return y


def lrn_across_channels(x, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """``CrossChannelForward``: ``x * (k + alpha/size * sum of x^2 over the channel window)^-beta``."""
    x = np.asarray(x, np.float64)
    half = (size - 1) // 2
    channels = x.shape[1]
    scale = np.full(x.shape, k, np.float64)
    for ch in range(channels):
        window = x[:, max(ch - half, 0) : min(ch + half + 1, channels)]
        scale[:, ch] += alpha / size * np.sum(window**2, axis=1)
    return x * scale**-beta


def lrn_within_channel(x, size: int, alpha: float, beta: float) -> np.ndarray:
    """``WithinChannelForward``: square, AVE-pool ``size x size`` with pad ``(size-1)/2`` (divisor
    always ``size^2``), then ``x * (1 + alpha * pooled)^-beta``; ``k`` is not used."""
    half = (size - 1) // 2
    pooled = pooling(np.asarray(x, np.float64) ** 2, "ave", (size, size), (1, 1), (half, half))
    return x * (1 + alpha * pooled) ** -beta


def inner_product(x, weight, bias, axis: int = 1, transpose: bool = False) -> np.ndarray:
    """``InnerProductLayer``: the axes from ``axis`` on are flattened (row-major) into K."""
    x = np.asarray(x, np.float64)
    outer = x.shape[:axis]
    flat = x.reshape(math.prod(outer), -1)
    w = np.asarray(weight, np.float64)
    y = flat @ (w if transpose else w.T)
    if bias is not None:
        y = y + bias
    return y.reshape(*outer, y.shape[-1])


def batch_norm(x, mean, variance, factor, eps: float) -> np.ndarray:
    """``BatchNormLayer`` with global statistics: both divided by blob 2 (0 stays 0)."""
    scale = 0.0 if factor[0] == 0 else 1.0 / float(factor[0])
    shape = [1, -1] + [1] * (np.ndim(x) - 2)
    m = (np.asarray(mean, np.float64) * scale).reshape(shape)
    v = (np.asarray(variance, np.float64) * scale).reshape(shape)
    return (np.asarray(x, np.float64) - m) / np.sqrt(v + eps)


def broadcast_from(param, rank: int, axis: int) -> np.ndarray:
    """``param`` lined up with a rank-``rank`` blob from ``axis`` (Scale/Bias's outer/inner split)."""
    param = np.asarray(param, np.float64)
    return param.reshape((1,) * axis + param.shape + (1,) * (rank - axis - param.ndim))


def softmax(x, axis: int) -> np.ndarray:
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def caffe_slice(x, axis: int, points: Sequence[int]) -> list[np.ndarray]:
    edges = [0, *points, x.shape[axis]]
    return [np.take(x, range(a, b), axis=axis) for a, b in itertools.pairwise(edges)]


def crop(x, shape, axis: int, offsets: Sequence[int]) -> np.ndarray:
    """``CropLayer``: axes from ``axis`` on take ``shape[i]`` values from ``offset``."""
    index = []
    for i, _size in enumerate(x.shape):
        if i < axis:
            index.append(slice(None))
        else:
            o = offsets[0] if len(offsets) == 1 else offsets[i - axis] if offsets else 0
            index.append(slice(o, o + shape[i]))
    return np.asarray(x)[tuple(index)]


def relu(x, negative_slope: float = 0.0):
    return np.maximum(x, 0) + negative_slope * np.minimum(x, 0)


def prelu(x, slopes, channel_shared: bool):
    a = float(slopes[0]) if channel_shared else broadcast_from(slopes, np.ndim(x), 1)
    return np.maximum(x, 0) + a * np.minimum(x, 0)


def elu(x, alpha: float):
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1))


def sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


def bnll(x):
    """Caffe's stable form: ``x > 0 ? x + log(1 + exp(-x)) : log(1 + exp(x))``."""
    x = np.asarray(x, np.float64)
    return np.where(x > 0, x + np.log1p(np.exp(-np.abs(x))), np.log1p(np.exp(-np.abs(x))))


def power(x, power: float, scale: float, shift: float):
    """``PowerLayer``: ``(shift + scale*x)^power``; a constant when ``power*scale == 0``."""
    if power * scale == 0:
        return np.full(np.shape(x), 1.0 if power == 0 else shift**power)
    return (shift + scale * np.asarray(x, np.float64)) ** power


def exp(x, base: float, scale: float, shift: float):
    log_base = 1.0 if base == -1 else math.log(base)
    return np.exp(log_base * (shift + scale * np.asarray(x, np.float64)))


def log(x, base: float, scale: float, shift: float):
    y = np.log(shift + scale * np.asarray(x, np.float64))
    return y if base == -1 else y / math.log(base)


def swish(x, beta: float):
    return np.asarray(x, np.float64) * sigmoid(beta * np.asarray(x, np.float64))


def threshold(x, t: float):
    return (np.asarray(x) > t).astype(np.float64)


def clip(x, low: float, high: float):
    return np.maximum(low, np.minimum(np.asarray(x, np.float64), high))
