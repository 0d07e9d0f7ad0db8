"""Layers with kernels: Convolution (and the forks' depthwise types), Deconvolution, InnerProduct.

Caffe's kernels are ONNX's (``Conv``'s OIHW, ``ConvTranspose``'s IOHW, ``Gemm``'s B with
``transB``), so the weights go into the file exactly as the caffemodel holds them.
"""

from __future__ import annotations

import math

from caffe2keras.conv_geometry import ConvGeometry, conv_geometry
from caffe2keras.node import Node
from caffe2keras.onnx.emit import Emission, emits


def _geometry(node: Node) -> ConvGeometry:
    """The geometry as the plan read and checked it (every bottom has the first's shape)."""
    return conv_geometry(node.op, node.in_shapes[0])


def _kernel_and_bias(node: Node, out: Emission, kernel_shape: tuple, num_output: int) -> list[str]:
    kernel = node.blob(0, kernel_shape, "convolution_param.num_output", num_output)
    names = [out.weight("kernel", kernel)]
    if node.param.convolution_param.bias_term:
        names.append(out.weight("bias", node.blob(1, (num_output,), "convolution_param.num_output", num_output)))
    return names


def _attributes(g: ConvGeometry, end_pads) -> dict:
    return dict(
        kernel_shape=list(g.kernel),
        strides=list(g.stride),
        dilations=list(g.dilation),
        group=g.group,
        pads=[*g.pad, *end_pads],
    )


@emits("Convolution", "DepthwiseConvolution", "ConvolutionDepthwise")
def convolution(node: Node, out: Emission) -> None:
    """``Conv`` with Caffe's pads; where Caffe's output size, which rounds toward zero, has a last
    window reaching past the padded input, ONNX pads that window's end with zeros as im2col reads.
    A padded 1x1 kernel is a ``Pad`` then an unpadded ``Conv``."""
    g = _geometry(node)
    channels = node.in_shapes[0][1]
    inputs = _kernel_and_bias(node, out, (g.num_output, channels // g.group, *g.kernel), g.num_output)
    end_pads = [
        pad + max(0, (produced - 1) * stride + extent - size - 2 * pad)
        for size, produced, pad, extent, stride in zip(
            node.in_shapes[0][2:], node.out_shapes[0][2:], g.pad, g.extent, g.stride
        )
    ]
    attributes = _attributes(g, end_pads)
    # OpenCV 5's default engine computes a padded 1x1 Conv wrongly: the zeros go in first.
    padded_first = all(k == 1 for k in g.kernel) and any(attributes["pads"])
    if padded_first:
        pads = out.constant("pads", [0, 0, *g.pad, 0, 0, *end_pads])
        attributes["pads"] = [0] * len(attributes["pads"])
    # As Caffe's BaseConvolutionLayer, top i is bottom i convolved with the one set of weights.
    for top, x in enumerate(out.bottoms):
        out.op("Conv", out.op("Pad", x, pads) if padded_first else x, *inputs, top=top, **attributes)


@emits("Deconvolution")
def deconvolution(node: Node, out: Emission) -> None:
    """``ConvTranspose``: Caffe's ``stride * (n - 1) + extent - 2 * pad`` is ONNX's output with the same pads."""
    g = _geometry(node)
    channels = node.in_shapes[0][1]
    inputs = _kernel_and_bias(node, out, (channels, g.num_output // g.group, *g.kernel), g.num_output)
    attributes = _attributes(g, g.pad)
    for top, x in enumerate(out.bottoms):  # one set of weights for every bottom, as convolution's
        out.op("ConvTranspose", x, *inputs, top=top, **attributes)


@emits("InnerProduct")
def inner_product(node: Node, out: Emission) -> None:
    """``Gemm`` on the bottom flattened from ``axis`` (``MatMul`` when axes stay before it)."""
    shape = node.in_shapes[0]
    p = node.param.inner_product_param
    rank = len(shape)
    axis = len(node.out_shapes[0]) - 1  # the plan's top: the axes before it, then num_output
    num, inputs = p.num_output, math.prod(shape[axis:])
    weight = node.blob(0, (inputs, num) if p.transpose else (num, inputs), "inner_product_param.num_output", num)
    bias = node.blob(1, (num,), "inner_product_param.num_output", num) if p.bias_term else None
    x = out.bottoms[0]
    if axis == 1:
        if rank > 2:
            x = out.op("Flatten", x, axis=1)
        terms = [out.weight("weight", weight)] + ([out.weight("bias", bias)] if bias is not None else [])
        out.op("Gemm", x, *terms, top=0, transB=0 if p.transpose else 1)
        return
    flat = out.op("Reshape", x, out.constant("shape", [0] * axis + [inputs]))
    kernel = out.weight("weight", weight if p.transpose else weight.T)
    if bias is None:
        out.op("MatMul", flat, kernel, top=0)
    else:
        out.op("Add", out.op("MatMul", flat, kernel), out.weight("bias", bias), top=0)
