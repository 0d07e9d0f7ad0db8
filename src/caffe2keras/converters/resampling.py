"""The segmentation forks' resizing layers: Interp (DeepLab, PSPNet) and Upsample (YOLOv3 ports, SegNet)."""

from __future__ import annotations

from caffe2keras.converters.base import IDENTITY, LayerDoc, Node, Step, converts, require
from caffe2keras.converters.keras_layers import caffe_layers, layers
from caffe2keras.errors import ShapeError, UnsupportedParameterError
from caffe2keras.graph import Op, Shape


def _spatial_input(op: Op, shape: Shape) -> tuple[int, int, int, int]:
    require(len(shape) == 4, op, f"{op.type} takes 4-D (N, C, H, W) inputs", "bottom_shape", tuple(shape))
    return tuple(shape)


def interp_sizes(op: Op, shape: Shape) -> tuple[tuple[int, int], tuple[int, int]]:
    """(the input size after pad_beg/pad_end, the output size), by PSPNet's rules in their order."""
    p = op.param.interp_param
    _, _, height, width = _spatial_input(op, shape)
    require(
        p.pad_beg <= 0 and p.pad_end <= 0,
        op,
        "pad_beg and pad_end may only crop (be <= 0), as in the fork",
        "interp_param.pad_beg",
        (p.pad_beg, p.pad_end),
    )
    crop = p.pad_beg + p.pad_end
    size_in = tuple(None if n is None else n + crop for n in (height, width))
    require(
        all(n is None or n > 0 for n in size_in),
        op,
        f"cropping leaves nothing of the {height}x{width} input",
        "interp_param.pad_end",
        p.pad_end,
    )
    shrink, zoom = p.HasField("shrink_factor"), p.HasField("zoom_factor")
    for present, field, value in ((shrink, "shrink_factor", p.shrink_factor), (zoom, "zoom_factor", p.zoom_factor)):
        require(not present or value >= 1, op, f"{field} must be at least 1", f"interp_param.{field}", value)

    def shrunk(n):
        return None if n is None else (n - 1) // p.shrink_factor + 1

    def zoomed(n):
        return None if n is None else n + (n - 1) * (p.zoom_factor - 1)

    if shrink and not zoom:
        size_out = tuple(shrunk(n) for n in size_in)
    elif zoom and not shrink:
        size_out = tuple(zoomed(n) for n in size_in)
    elif p.HasField("height") and p.HasField("width"):
        size_out = (p.height, p.width)
    elif shrink and zoom:
        size_out = tuple(zoomed(shrunk(n)) for n in size_in)
    else:
        raise ShapeError(
            op.name,
            op.type,
            "Interp needs zoom_factor, shrink_factor, or height and width",
            "interp_param",
            str(p).replace("\n", " ").strip() or "{}",
        )
    require(
        all(n is None or n > 0 for n in size_out),
        op,
        f"the output size {size_out} must be positive",
        "interp_param.height",
        p.height,
    )
    return size_in, size_out


def interp_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    require(
        len(in_shapes) == 1,
        op,
        "PSPNet's Interp takes one bottom",
        "bottom",
        [b.name for b in op.bottoms],
        kind=UnsupportedParameterError,
    )
    _, size_out = interp_sizes(op, in_shapes[0])
    return [(*in_shapes[0][:2], *size_out)]


@converts(
    "Interp",
    shapes=interp_shapes,
    doc=LayerDoc(
        "`BilinearInterp` (+ `Crop`)",
        "`zoom_factor`, `shrink_factor`, `height`/`width` in the fork's order of precedence; `pad_beg`/`pad_end` crop (≤ 0, as the fork requires); aligned corners with the fork's float32 weights",
        origin="DeepLab, PSPNet",
    ),
)
def interp(node: Node) -> list[Step]:
    """The forks' Interp as the BilinearInterp layer, after a crop when its pads shrink the input."""
    shape = node.in_shapes[0]
    size_in, size_out = interp_sizes(node.op, shape)
    p = node.param.interp_param
    steps = []
    if p.pad_beg or p.pad_end:
        # The fork reads the cropped input from (-pad_beg, -pad_beg) on both axes.
        begin = node.layout.keras_shape((0, 0, -p.pad_beg, -p.pad_beg))[1:]
        trim = node.layout.keras_shape((0, 0, -p.pad_end, -p.pad_end))[1:]
        size = node.layout.keras_shape((*shape[:2], *size_in))[1:]
        steps.append(Step(caffe_layers.Crop(begin, size, end_trim=trim), suffix="crop"))
    if None in size_out:  # free sizes: the factors give the output's size when the model runs
        shrink = p.shrink_factor if p.HasField("shrink_factor") else 1
        zoom = p.zoom_factor if p.HasField("zoom_factor") else 1
        resize = caffe_layers.BilinearInterp(
            None, shrink_factor=shrink, zoom_factor=zoom, data_format=node.layout.data_format
        )
    else:
        resize = caffe_layers.BilinearInterp(size_out, data_format=node.layout.data_format)
    return [*steps, Step(resize)]


def _unpooled_size(op: Op, shape: Shape) -> tuple[int, int]:
    """SegNet's output size: upsample_h/upsample_w, else the input times scale (less pad_out)."""
    p = op.param.upsample_param
    if p.HasField("upsample_h") and p.HasField("upsample_w"):
        require(
            p.upsample_h > 1 and p.upsample_w > 1,
            op,
            "upsample_h and upsample_w must exceed 1",
            "upsample_param.upsample_h",
            (p.upsample_h, p.upsample_w),
        )
        return (p.upsample_h, p.upsample_w)
    per_axis = p.HasField("scale_h") or p.HasField("scale_w")
    require(
        not per_axis or (p.HasField("scale_h") and p.HasField("scale_w") and not p.HasField("scale")),
        op,
        "give upsample_h and upsample_w, or scale, or scale_h and scale_w",
        "upsample_param.scale_h",
        (p.scale_h, p.scale_w),
    )
    scales = (p.scale_h, p.scale_w) if per_axis else (p.scale, p.scale)
    require(min(scales) > 1, op, "scales must exceed 1", "upsample_param.scale", scales)
    pad_out = (int(p.pad_out_h), int(p.pad_out_w))
    require(
        all(s == 2 or not pad for s, pad in zip(scales, pad_out)),
        op,
        "pad_out_h/pad_out_w need a scale of 2",
        "upsample_param.pad_out_h",
        (p.pad_out_h, p.pad_out_w),
    )
    return tuple(n * s - pad for n, s, pad in zip(shape[2:], scales, pad_out))


def _nearest_scale(op: Op) -> int:
    """The YOLOv3 ports' one-bottom Upsample: nearest, by an integer ``scale``."""
    p = op.param.upsample_param
    for field in ("scale_h", "scale_w", "pad_out_h", "pad_out_w", "upsample_h", "upsample_w"):
        require(
            not p.HasField(field),
            op,
            "a one-bottom (nearest) Upsample takes only scale; the SegNet fields need the pooling mask as bottom 1",
            f"upsample_param.{field}",
            getattr(p, field),
            kind=UnsupportedParameterError,
        )
    # The forks disagree on the default (1 in the YOLOv3 ports, 2 in SegNet): insist on it.
    require(
        p.HasField("scale"),
        op,
        "give scale explicitly: the forks' defaults differ",
        "upsample_param.scale",
        None,
        kind=UnsupportedParameterError,
    )
    require(p.scale >= 1, op, "scale must be positive", "upsample_param.scale", p.scale)
    return p.scale


def upsample_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    shape = _spatial_input(op, in_shapes[0])
    bottoms = [b.name for b in op.bottoms]
    require(
        len(in_shapes) in (1, 2), op, "Upsample takes the blob and, for unpooling, its pooling mask", "bottom", bottoms
    )
    if len(in_shapes) == 1:
        scale = _nearest_scale(op)
        return [(*shape[:2], *(None if n is None else n * scale for n in shape[2:]))]
    require(
        tuple(in_shapes[1]) == shape, op, f"the mask (bottom 1) must have bottom 0's shape {shape}", "bottom", bottoms
    )
    return [(*shape[:2], *_unpooled_size(op, shape))]


@converts(
    "Upsample",
    shapes=upsample_shapes,
    doc=LayerDoc(
        "`UpSampling2D`; `MaxUnpooling2D`",
        "one bottom: nearest by `scale` (give it: the forks' defaults differ); two bottoms (values, MAX pooling mask): SegNet's unpooling to `upsample_h/w`, or `scale` or `scale_h/w` less `pad_out_h/w`",
        origin="YOLOv3 ports, SegNet",
    ),
)
def upsample(node: Node):
    """The forks' Upsample as Keras' nearest UpSampling2D, or with a pooling mask as MaxUnpooling2D."""
    data_format = node.layout.data_format
    if len(node.in_shapes) == 2:
        return Step(caffe_layers.MaxUnpooling2D(node.out_shapes[0][2:], data_format=data_format))
    scale = _nearest_scale(node.op)
    if scale == 1:
        return IDENTITY
    return Step(layers.UpSampling2D(size=(scale, scale), data_format=data_format, interpolation="nearest"))
