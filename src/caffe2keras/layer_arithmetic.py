"""Arithmetic the custom layers share with the converters' shape rules, in plain Python and numpy:
planning a layer (the Keras builder's, ``inspect``'s, the ONNX writer's) loads no Keras."""

from __future__ import annotations

import math

import numpy as np


def pooled_sizes(sizes, kernel, stride, pad, ceil_mode: bool) -> tuple[int, ...]:
    """Caffe's output size per spatial axis (None for a free size).

    As soon as any axis is padded, Caffe drops a last window that starts at or past
    ``size + pad`` on *every* axis, padded or not (``PoolingLayer::Reshape``).
    """
    rounding = math.ceil if ceil_mode else math.floor
    clip = any(pad)
    pooled = []
    for n, k, s, p in zip(sizes, kernel, stride, pad):
        if n is None:  # a free size: known when the layer runs
            pooled.append(None)
            continue
        size = int(rounding((n + 2 * p - k) / s)) + 1
        pooled.append(size - 1 if clip and (size - 1) * s >= n + p else size)
    return tuple(pooled)


def faster_rcnn_anchors(base_size: float, ratios, scales) -> np.ndarray:
    """py-faster-rcnn's ``generate_anchors``: for each ratio, then each scale, a box
    ``(x1, y1, x2, y2)`` centred on the base box ``(0, 0, base_size - 1, base_size - 1)``.

    Widths are ``round(base_size / sqrt(ratio))``, heights ``round(width * ratio)``, halves
    rounded up (as OpenCV's ``floor(x + 0.5)``; py-faster-rcnn's ``np.round`` differs only at
    exact halves, which the published ratios never reach after the square root)."""
    centre = (base_size - 1) / 2
    anchors = []
    for ratio in ratios:
        width = np.floor(base_size / np.sqrt(ratio) + 0.5)
        height = np.floor(width * ratio + 0.5)
        for scale in scales:
            half_w, half_h = (scale * width - 1) / 2, (scale * height - 1) / 2
            anchors.append((centre - half_w, centre - half_h, centre + half_w, centre + half_h))
    return np.asarray(anchors, dtype=np.float32)
