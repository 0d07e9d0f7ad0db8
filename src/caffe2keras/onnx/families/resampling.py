"""The forks' Interp (PSPNet, DeepLab): bilinear resizing with aligned corners."""

from __future__ import annotations

from caffe2keras.converters.resampling import interp_sizes
from caffe2keras.node import Node
from caffe2keras.onnx.emit import Emission, emits


@emits("Interp")
def interp(node: Node, out: Emission) -> None:
    """``Slice`` for a negative pad_beg/pad_end, then ``Resize`` (linear, ``align_corners``: the fork
    maps output pixel ``i`` to ``i * (in - 1) / (out - 1)``) to sizes the batch and channels keep.
    The sizes are the plan's (:func:`caffe2keras.converters.resampling.interp_sizes`)."""
    p = node.param.interp_param
    size_in, size_out = interp_sizes(node.op, node.in_shapes[0])
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
