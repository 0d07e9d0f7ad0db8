"""Pooling (MAX and AVE, global or windowed, with Caffe's rounding and divisors)."""

from __future__ import annotations

import math

import numpy as np

from caffe2keras.caffe.schema import enum_name
from caffe2keras.converters.pooling import pool_geometry
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.node import Node, require
from caffe2keras.onnx.emit import Emission, emits


@emits("Pooling")
def pooling(node: Node, out: Emission) -> None:
    """``MaxPool``/``AveragePool`` with explicit end pads that give Caffe's output size (the plan's);
    an average whose Caffe divisor (the window clipped to ``size + pad``) is not the kernel's area
    everywhere is rescaled by a constant per output position."""
    shape = node.in_shapes[0]
    g = pool_geometry(node.op, shape)  # as the plan read and checked it
    require(
        len(node.op.tops) == 1,
        node.op,
        "the argmax mask top is not written to ONNX",
        "top",
        [t.name for t in node.op.tops],
        kind=UnsupportedParameterError,
    )
    require(
        g.method in ("max", "average"),
        node.op,
        "only MAX and AVE pooling are written to ONNX",
        "pooling_param.pool",
        enum_name(node.param.pooling_param, "pool"),
        kind=UnsupportedParameterError,
    )
    x = out.bottoms[0]
    if g.is_global:
        out.op("GlobalMaxPool" if g.method == "max" else "GlobalAveragePool", x, top=0)
        return
    kernel, stride, pad, sizes, pooled = g.kernel, g.stride, g.pad, shape[2:], node.out_shapes[0][2:]
    end_pads = [max(0, (o - 1) * s + k - n - q) for o, n, k, s, q in zip(pooled, sizes, kernel, stride, pad)]
    attributes = dict(kernel_shape=list(kernel), strides=list(stride), pads=[*pad, *end_pads])
    if g.method == "max":
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
    p = node.param.roi_pooling_param  # checked by the plan (converters.pooling.roi_pooling_shapes)
    boxes = out.op("Reshape", out.bottoms[1], out.constant("rois", [-1, 5]))
    out.op(
        "MaxRoiPool", out.bottoms[0], boxes, top=0, pooled_shape=[p.pooled_h, p.pooled_w], spatial_scale=p.spatial_scale
    )
