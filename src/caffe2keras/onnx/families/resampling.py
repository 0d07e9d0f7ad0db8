"""The forks' Interp (PSPNet, DeepLab): bilinear resizing with aligned corners."""

from __future__ import annotations

from caffe2keras.errors import ShapeError, UnsupportedParameterError
from caffe2keras.node import Node, require
from caffe2keras.onnx.emit import Emission, emits


def _output_size(node: Node, size_in: tuple[int, int]) -> tuple[int, int]:
    """PSPNet's rules, in their order: shrink, zoom, height and width, or shrink then zoom."""
    p = node.param.interp_param
    shrink, zoom = p.HasField("shrink_factor"), p.HasField("zoom_factor")
    for present, field, value in ((shrink, "shrink_factor", p.shrink_factor), (zoom, "zoom_factor", p.zoom_factor)):
        require(not present or value >= 1, node.op, f"{field} must be at least 1", f"interp_param.{field}", value)
    shrunk = tuple((n - 1) // p.shrink_factor + 1 for n in size_in) if shrink else size_in
    if zoom:
        return tuple(n + (n - 1) * (p.zoom_factor - 1) for n in shrunk)
    if shrink:
        return shrunk
    if p.HasField("height") and p.HasField("width"):
        return (p.height, p.width)
    raise ShapeError(
        node.name,
        node.type,
        "Interp needs zoom_factor, shrink_factor, or height and width",
        "interp_param",
        str(p).replace("\n", " ").strip() or "{}",
    )


@emits("Interp")
def interp(node: Node, out: Emission) -> None:
    """``Slice`` for a negative pad_beg/pad_end, then ``Resize`` (linear, ``align_corners``: the fork
    maps output pixel ``i`` to ``i * (in - 1) / (out - 1)``) to sizes the batch and channels keep."""
    p = node.param.interp_param
    shape = node.in_shapes[0]
    require(
        len(node.in_shapes) == 1,
        node.op,
        "PSPNet's Interp takes one bottom",
        "bottom",
        [b.name for b in node.op.bottoms],
        kind=UnsupportedParameterError,
    )
    require(len(shape) == 4, node.op, "Interp takes 4-D (N, C, H, W) inputs", "bottom_shape", tuple(shape))
    require(
        p.pad_beg <= 0 and p.pad_end <= 0,
        node.op,
        "pad_beg and pad_end may only crop (be <= 0), as in the fork",
        "interp_param.pad_beg",
        (p.pad_beg, p.pad_end),
    )
    size_in = tuple(n + p.pad_beg + p.pad_end for n in shape[2:])
    require(
        all(n > 0 for n in size_in),
        node.op,
        f"cropping leaves nothing of the {shape[2:]} input",
        "interp_param.pad_end",
        p.pad_end,
    )
    size_out = _output_size(node, size_in)
    require(
        all(n > 0 for n in size_out),
        node.op,
        f"the output size {size_out} must be positive",
        "interp_param.height",
        p.height,
    )
    x = out.bottoms[0]
    if p.pad_beg or p.pad_end:
        starts = [-p.pad_beg] * 2
        bounds = [
            out.constant("starts", starts),
            out.constant("ends", [s + n for s, n in zip(starts, size_in)]),
            out.constant("axes", [2, 3]),
        ]
        x = out.op("Slice", x, *bounds)
    batch_channels = out.op("Slice", out.op("Shape", x), out.constant("from", [0]), out.constant("to", [2]))
    sizes = out.op("Concat", batch_channels, out.constant("size", list(size_out)), axis=0)
    out.add("Resize", [x, "", "", sizes], [out.tops[0]], mode="linear", coordinate_transformation_mode="align_corners")
