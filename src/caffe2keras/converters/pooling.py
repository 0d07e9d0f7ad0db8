"""Pooling (MAX with its argmax mask top, AVE and test-time STOCHASTIC, global or windowed,
with Caffe's rounding), SPP, and Fast R-CNN's ROIPooling."""

from __future__ import annotations

import math
from dataclasses import dataclass

from caffe2keras.caffe.schema import enum_name
from caffe2keras.converters.axes import to_caffe_order
from caffe2keras.converters.base import LayerDoc, Node, Step, converts, require
from caffe2keras.converters.keras_layers import caffe_layers, layers
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.graph import Op, Shape
from caffe2keras.layer_arithmetic import pooled_sizes

METHODS = {"MAX": "max", "AVE": "average", "STOCHASTIC": "stochastic"}


@dataclass(frozen=True)
class PoolGeometry:
    method: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    ceil_mode: bool
    is_global: bool


def _pair(p, name: str, default: int | None) -> tuple[int, int] | None:
    if p.HasField(f"{name}_h") or p.HasField(f"{name}_w"):
        return (getattr(p, f"{name}_h"), getattr(p, f"{name}_w"))
    field = "kernel_size" if name == "kernel" else name
    if p.HasField(field) or default is None:
        return (getattr(p, field),) * 2
    return (default, default)


def pool_geometry(op: Op, input_shape: Shape) -> PoolGeometry:
    p = op.param.pooling_param
    require(len(input_shape) == 4, op, "pooling takes 4-D (N, C, H, W) inputs", "bottom_shape", tuple(input_shape))
    field = "pooling_param.ceil_mode"
    ceil_mode = p.round_mode == p.CEIL
    if p.HasField("ceil_mode"):
        require(
            not p.HasField("round_mode") or p.ceil_mode == ceil_mode,
            op,
            "round_mode and the fork field ceil_mode disagree",
            field,
            p.ceil_mode,
            kind=UnsupportedParameterError,
        )
        ceil_mode = p.ceil_mode
    if p.global_pooling:
        require(
            not (p.HasField("kernel_size") or p.HasField("kernel_h") or p.HasField("kernel_w")),
            op,
            "global pooling takes no kernel size",
            "pooling_param.kernel_size",
            p.kernel_size,
        )
        kernel = tuple(input_shape[2:])
    else:
        require(
            p.HasField("kernel_size") != (p.HasField("kernel_h") and p.HasField("kernel_w")),
            op,
            "give kernel_size, or both kernel_h and kernel_w",
            "pooling_param.kernel_size",
            p.kernel_size,
        )
        kernel = _pair(p, "kernel", None)
    geometry = PoolGeometry(
        METHODS[enum_name(p, "pool")], kernel, _pair(p, "stride", 1), _pair(p, "pad", 0), ceil_mode, p.global_pooling
    )
    require(
        all(k is None or k > 0 for k in geometry.kernel),
        op,
        "kernel sizes must be positive",
        "pooling_param.kernel_size",
        geometry.kernel,
    )
    require(
        all(s > 0 for s in geometry.stride), op, "strides must be positive", "pooling_param.stride", geometry.stride
    )
    require(
        all(k is None or p_ < k for p_, k in zip(geometry.pad, geometry.kernel)),
        op,
        "pad must be smaller than the kernel",
        "pooling_param.pad",
        geometry.pad,
    )
    if geometry.is_global:
        require(
            geometry.pad == (0, 0) and geometry.stride == (1, 1),
            op,
            "global pooling takes pad 0 and stride 1",
            "pooling_param.pad",
            geometry.pad,
        )
        require(
            geometry.method != "stochastic" or None not in geometry.kernel,
            op,
            "global STOCHASTIC pooling needs sizes fixed at conversion",
            "bottom_shape",
            tuple(input_shape),
        )
    if geometry.method == "stochastic":
        require(
            geometry.pad == (0, 0),
            op,
            "Caffe pads only MAX and AVE pooling",
            "pooling_param.pad",
            geometry.pad,
            kind=UnsupportedParameterError,
        )
    return geometry


def pooling_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    shape = in_shapes[0]
    g = pool_geometry(op, shape)
    require(
        len(op.tops) == 1 or (len(op.tops) == 2 and g.method == "max"),
        op,
        "only MAX pooling has a second (argmax mask) top",
        "top",
        [t.name for t in op.tops],
    )
    # A global pooling's window is the whole input, whatever its size.
    pooled = (1, 1) if g.is_global else pooled_sizes(shape[2:], g.kernel, g.stride, g.pad, g.ceil_mode)
    return [(shape[0], shape[1], *pooled)] * len(op.tops)


@converts(
    "Pooling",
    shapes=pooling_shapes,
    doc=LayerDoc(
        "`MaxPooling2D`, `AveragePooling2D`, `Global*Pooling2D`, `CaffePooling2D`, `MaxPoolingWithArgmax2D`",
        "MAX/AVE/STOCHASTIC (test time), global, ceil/floor (`round_mode`, fork `ceil_mode`); MAX's second top, the argmax mask, as Caffe numbers it (`h * W + w` per channel, first maximum wins)",
    ),
)
def pooling(node: Node) -> Step:
    """Caffe's Pooling as the plainest exact Keras pooling or CaffePooling2D (with a mask: MaxPoolingWithArgmax2D)."""
    shape = node.in_shapes[0]
    g = pool_geometry(node.op, shape)
    data_format = node.layout.data_format
    if len(node.op.tops) == 2:
        return Step(
            caffe_layers.MaxPoolingWithArgmax2D(g.kernel, g.stride, g.pad, g.ceil_mode, data_format=data_format)
        )
    return Step(pooling_layer(g, shape, node.out_shapes[0], data_format))


def pooling_layer(g: PoolGeometry, shape: Shape, out: Shape, data_format: str):
    """The plainest Keras layer that pools exactly as Caffe does for this geometry.

    Where a size is free, the layer must be exact at every size the model will see."""
    single_window = out[2:] == (1, 1) and g.pad == (0, 0) and g.kernel == tuple(shape[2:])
    if (single_window or g.is_global) and g.method != "stochastic":
        global_class = layers.GlobalMaxPooling2D if g.method == "max" else layers.GlobalAveragePooling2D
        return global_class(data_format=data_format, keepdims=True)
    # Keras' valid pooling is exact when no padding is needed and the windows tile like floor():
    # at every size when rounding down or with stride 1.
    floor_tiling = all(
        (not g.ceil_mode or s == 1) if n is None else o == (n - k) // s + 1
        for o, n, k, s in zip(out[2:], shape[2:], g.kernel, g.stride)
    )
    if g.pad == (0, 0) and floor_tiling and g.method != "stochastic":
        plain_class = layers.MaxPooling2D if g.method == "max" else layers.AveragePooling2D
        return plain_class(pool_size=g.kernel, strides=g.stride, padding="valid", data_format=data_format)
    return caffe_layers.CaffePooling2D(g.method, g.kernel, g.stride, g.pad, g.ceil_mode, data_format=data_format)


def spp_levels(op: Op, shape: Shape) -> list[tuple[PoolGeometry, Shape]]:
    """Caffe's SPP: level i pools into 2**i bins per side with kernel = stride = ceil(size / bins),
    padded by half the shortfall (rounded up), under Caffe's own pooling rules."""
    p = op.param.spp_param
    require(len(shape) == 4, op, "SPP takes 4-D (N, C, H, W) inputs", "bottom_shape", tuple(shape))
    require(
        p.pyramid_height >= 1, op, "pyramid_height must be at least 1", "spp_param.pyramid_height", p.pyramid_height
    )
    levels = []
    for level in range(p.pyramid_height):
        bins = 2**level
        kernel = tuple(-(-n // bins) for n in shape[2:])
        pad = tuple((k * bins - n + 1) // 2 for k, n in zip(kernel, shape[2:]))
        g = PoolGeometry(METHODS[enum_name(p, "pool")], kernel, kernel, pad, ceil_mode=True, is_global=False)
        require(
            all(q < k for q, k in zip(pad, kernel)),
            op,
            f"level {level} would pad {pad} with kernel {kernel}; Caffe's pooling needs pad < kernel "
            f"(the input {tuple(shape[2:])} is too small for {bins} bins)",
            "spp_param.pyramid_height",
            p.pyramid_height,
        )
        require(
            pad == (0, 0) or g.method != "stochastic",
            op,
            f"level {level} needs padding, which Caffe's stochastic pooling refuses",
            "spp_param.pool",
            p.pool,
        )
        pooled = pooled_sizes(shape[2:], kernel, kernel, pad, ceil_mode=True)
        levels.append((g, (shape[0], shape[1], *pooled)))
    return levels


def spp_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    levels = spp_levels(op, in_shapes[0])
    if len(levels) == 1:  # Caffe returns the single pooling's top as is
        return [levels[0][1]]
    return [(in_shapes[0][0], sum(math.prod(out[1:]) for _, out in levels))]


@converts(
    "SPP",
    shapes=spp_shapes,
    doc=LayerDoc(
        "pooling per level, `Flatten`, `Concatenate`",
        "`pyramid_height`, MAX/AVE; each level's kernel, stride and pad by Caffe's rule, pooled with Caffe's rounding; one level keeps its 4-D top",
    ),
)
def spp(node: Node) -> list[Step]:
    """Caffe's SPP as one pooling per pyramid level, each flattened in Caffe's order, concatenated."""
    shape = node.in_shapes[0]
    levels = spp_levels(node.op, shape)
    data_format = node.layout.data_format
    if len(levels) == 1:
        g, out = levels[0]
        return [Step(pooling_layer(g, shape, out, data_format))]
    steps, flattened = [], []
    for level, (g, out) in enumerate(levels):
        pooled = Step(pooling_layer(g, shape, out, data_format), inputs=[0], suffix=f"level{level}")
        steps.append(pooled)
        to_caffe = to_caffe_order(node.layout, 4)
        if to_caffe:
            steps.append(Step(to_caffe.layer, inputs=[pooled], suffix=f"level{level}_to_nchw"))
        steps.append(
            Step(layers.Flatten(data_format="channels_last"), inputs=[steps[-1]], suffix=f"level{level}_flatten")
        )
        flattened.append(steps[-1])
    return [*steps, Step(layers.Concatenate(axis=1), inputs=flattened)]


def roi_pooling_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    p = op.param.roi_pooling_param
    bottoms = [b.name for b in op.bottoms]
    require(len(in_shapes) == 2, op, "ROIPooling takes two bottoms: the feature map and the ROIs", "bottom", bottoms)
    features, rois = (tuple(s) for s in in_shapes)
    require(len(features) == 4, op, "the feature map must be 4-D (N, C, H, W)", "bottom_shape", features)
    require(
        math.prod(rois[1:]) == 5,
        op,
        f"each ROI is 5 numbers (batch index, x1, y1, x2, y2), got shape {rois}",
        "bottom",
        bottoms,
    )
    require(
        p.pooled_h > 0 and p.pooled_w > 0,
        op,
        "pooled_h and pooled_w must be positive",
        "roi_pooling_param.pooled_h",
        (p.pooled_h, p.pooled_w),
    )
    return [(rois[0], features[1], p.pooled_h, p.pooled_w)]


def roi_rows_steps(node: Node) -> list[Step]:
    """Bottom 1 as (R, 5) rows: (R, 5, 1, 1) and the like hold five numbers per ROI, whatever the layout."""
    if len(node.in_shapes[1]) == 2:
        return []
    return [Step(layers.Reshape((5,)), inputs=[1], suffix="rois")]


@converts(
    "ROIPooling",
    shapes=roi_pooling_shapes,
    doc=LayerDoc(
        "`ROIPooling`",
        "rbgirshick/caffe-fast-rcnn: `pooled_h/w`, `spatial_scale`, C's rounding; ROIs `(R, 5)` as bottom 1; the output's batch axis counts ROIs",
        origin="Fast R-CNN",
    ),
)
def roi_pooling(node: Node) -> list[Step]:
    """Fast R-CNN's ROIPooling as the ROIPooling layer."""
    p = node.param.roi_pooling_param
    steps = roi_rows_steps(node)
    pool = caffe_layers.ROIPooling((p.pooled_h, p.pooled_w), p.spatial_scale, data_format=node.layout.data_format)
    return [*steps, Step(pool, inputs=[0, steps[-1] if steps else 1])]


def shrinking_pools_upstream(graph, op: Op) -> list[str]:
    """Stride-1 Pooling layers feeding ``op`` whose output is smaller than their input, described.

    Darknet pads its stride-1 max pooling so that YOLOv3-tiny keeps 13x13; Caffe's arithmetic gives
    12x12, and the nets' Caffe ports patch Caffe's pooling code in C++ to match darknet. Stock Caffe
    then refuses the net where the shrunken branch meets another: that is where this is reported.
    """
    found, seen, pending = [], set(), list(op.bottoms)
    while pending:
        producer = graph.producers.get(pending.pop())
        if producer is None or id(producer) in seen:
            continue
        seen.add(id(producer))
        pending.extend(producer.bottoms)
        if producer.type != "Pooling" or not producer.bottoms:
            continue
        p = producer.param.pooling_param
        strides = (p.stride_h, p.stride_w) if p.HasField("stride_h") or p.HasField("stride_w") else (p.stride,) * 2
        before, after = graph.shapes.get(producer.bottoms[0]), graph.shapes.get(producer.tops[0])
        if strides == (1, 1) and before and after and len(before) == 4 and tuple(after[2:]) != tuple(before[2:]):
            found.append(
                f"Pooling layer {producer.name!r} (stride 1) gives {after[2]}x{after[3]} from {before[2]}x{before[3]}"
            )
    return found
