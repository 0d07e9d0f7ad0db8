"""Pooling (MAX and AVE, global or windowed, with Caffe's rounding and divisors)."""

from __future__ import annotations

import math

import numpy as np

from caffe2keras.caffe.schema import enum_name
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.node import Node, require
from caffe2keras.onnx.emit import Emission, emits


def _pair(p, name: str, default: int | None) -> tuple[int, int]:
    if p.HasField(f"{name}_h") or p.HasField(f"{name}_w"):
        return (getattr(p, f"{name}_h"), getattr(p, f"{name}_w"))
    field = "kernel_size" if name == "kernel" else name
    if p.HasField(field) or default is None:
        return (getattr(p, field),) * 2
    return (default, default)


def _ceil_mode(node: Node) -> bool:
    p = node.param.pooling_param
    ceil_mode = p.round_mode == p.CEIL
    if p.HasField("ceil_mode"):
        require(
            not p.HasField("round_mode") or p.ceil_mode == ceil_mode,
            node.op,
            "round_mode and the fork field ceil_mode disagree",
            "pooling_param.ceil_mode",
            p.ceil_mode,
            kind=UnsupportedParameterError,
        )
        ceil_mode = p.ceil_mode
    return ceil_mode


def pooled_size(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool, padded: bool) -> int:
    """Caffe's output size on one axis; once any axis is ``padded``, a last window starting at or
    past ``size + pad`` is dropped (``PoolingLayer::Reshape``)."""
    pooled = int((math.ceil if ceil_mode else math.floor)((size + 2 * pad - kernel) / stride)) + 1
    return pooled - 1 if padded and (pooled - 1) * stride >= size + pad else pooled


@emits("Pooling")
def pooling(node: Node, out: Emission) -> None:
    """``MaxPool``/``AveragePool`` with explicit end pads that give Caffe's output size; an average
    whose Caffe divisor (the window clipped to ``size + pad``) is not the kernel's area everywhere
    is rescaled by a constant per output position."""
    p = node.param.pooling_param
    shape = node.in_shapes[0]
    method = enum_name(p, "pool")
    require(len(shape) == 4, node.op, "pooling takes 4-D (N, C, H, W) inputs", "bottom_shape", tuple(shape))
    require(
        len(node.op.tops) == 1,
        node.op,
        "the argmax mask top is not written to ONNX",
        "top",
        [t.name for t in node.op.tops],
        kind=UnsupportedParameterError,
    )
    require(
        method in ("MAX", "AVE"),
        node.op,
        "only MAX and AVE pooling are written to ONNX",
        "pooling_param.pool",
        method,
        kind=UnsupportedParameterError,
    )
    x = out.bottoms[0]
    if p.global_pooling:
        require(
            not (p.HasField("kernel_size") or p.HasField("kernel_h")),
            node.op,
            "global pooling takes no kernel size",
            "pooling_param.kernel_size",
            p.kernel_size,
        )
        out.op("GlobalMaxPool" if method == "MAX" else "GlobalAveragePool", x, top=0)
        return
    require(
        p.HasField("kernel_size") != (p.HasField("kernel_h") and p.HasField("kernel_w")),
        node.op,
        "give kernel_size, or both kernel_h and kernel_w",
        "pooling_param.kernel_size",
        p.kernel_size,
    )
    kernel, stride, pad = _pair(p, "kernel", None), _pair(p, "stride", 1), _pair(p, "pad", 0)
    require(all(k > 0 for k in kernel), node.op, "kernel sizes must be positive", "pooling_param.kernel_size", kernel)
    require(all(s > 0 for s in stride), node.op, "strides must be positive", "pooling_param.stride", stride)
    require(
        all(q < k for q, k in zip(pad, kernel)),
        node.op,
        "pad must be smaller than the kernel",
        "pooling_param.pad",
        pad,
    )
    ceil_mode, sizes = _ceil_mode(node), shape[2:]
    pooled = [pooled_size(n, k, s, q, ceil_mode, any(pad)) for n, k, s, q in zip(sizes, kernel, stride, pad)]
    end_pads = [max(0, (o - 1) * s + k - n - q) for o, n, k, s, q in zip(pooled, sizes, kernel, stride, pad)]
    attributes = dict(kernel_shape=list(kernel), strides=list(stride), pads=[*pad, *end_pads])
    if method == "MAX":
        out.op("MaxPool", x, top=0, **attributes)
        return
    divisors = [
        np.minimum(np.arange(o) * s - q + k, n + q) - (np.arange(o) * s - q)
        for o, n, k, s, q in zip(pooled, sizes, kernel, stride, pad)
    ]
    area = np.outer(*divisors).astype(np.float32)
    if any(attributes["pads"]):
        # Zeros padded first: runtimes differ on AveragePool's own uneven pads (OpenCV 4 miscounts them).
        pads = [0, 0, *pad, 0, 0, *end_pads]
        x = out.op("Pad", x, out.constant("pads", pads))
        attributes["pads"] = [0, 0, 0, 0]
    if (area == math.prod(kernel)).all():
        out.op("AveragePool", x, top=0, **attributes)
        return
    # AveragePool divides by the kernel's area everywhere.
    mean = out.op("AveragePool", x, **attributes)
    out.op("Mul", mean, out.constant("divisor_fix", math.prod(kernel) / area), top=0)


@emits("ROIPooling")
def roi_pooling(node: Node, out: Emission) -> None:
    """``MaxRoiPool``: Fast R-CNN's bins (ROI corners scaled and rounded, bins floored and ceiled,
    empty bins 0), which ONNX's operator took from it. The ROIs are ``(R, 5)``: batch index, x1, y1,
    x2, y2."""
    p = node.param.roi_pooling_param
    require(
        len(node.in_shapes) == 2,
        node.op,
        "ROIPooling takes two bottoms: the feature map and the ROIs",
        "bottom",
        [b.name for b in node.op.bottoms],
    )
    features, rois = node.in_shapes
    require(len(features) == 4, node.op, "the feature map must be 4-D (N, C, H, W)", "bottom_shape", features)
    require(math.prod(rois[1:]) == 5, node.op, f"each ROI is 5 numbers, got shape {rois}", "bottom_shape", rois)
    require(
        p.pooled_h > 0 and p.pooled_w > 0,
        node.op,
        "pooled_h and pooled_w must be positive",
        "roi_pooling_param.pooled_h",
        (p.pooled_h, p.pooled_w),
    )
    boxes = out.op("Reshape", out.bottoms[1], out.constant("rois", [-1, 5]))
    out.op(
        "MaxRoiPool", out.bottoms[0], boxes, top=0, pooled_shape=[p.pooled_h, p.pooled_w], spatial_scale=p.spatial_scale
    )
