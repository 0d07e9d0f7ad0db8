"""Convolution, Deconvolution (1-, 2- and 3-D, groups, dilation, asymmetric geometry) and Im2col.

Two forks' depthwise layers read ``convolution_param`` too:
``DepthwiseConvolution`` (yonghenglh6/DepthwiseConvolution, for MobileNet) is a
Convolution with a faster GPU kernel, so it converts as one; ``ConvolutionDepthwise``
(the fork farmingyard/ShuffleNet's prototxts use) ignores ``num_output`` and
``group`` and keeps one ``(C, 1, kh, kw)`` filter per input channel.
"""

from __future__ import annotations

import math

import numpy as np

from caffe2keras.caffe.weights import Blob
from caffe2keras.conv_geometry import ConvGeometry, conv_geometry
from caffe2keras.converters.base import LayerDoc, Node, Step, converts, require
from caffe2keras.converters.fillers import caffe_filler
from caffe2keras.converters.keras_layers import caffe_layers, layers
from caffe2keras.converters.transforms import depthwise_kernel_to_keras, kernel_to_keras
from caffe2keras.graph import Op, Shape


def _conv_output_size(size: int | None, pad: int, extent: int, stride: int) -> int | None:
    """Caffe's ``(size + 2 * pad - extent) / stride + 1`` in C++ integer division, which rounds
    toward zero: a kernel reaching past the padded input still gives one output (see
    :func:`_zeros_past_end`). A free size (None) stays free."""
    if size is None:
        return None
    span = size + 2 * pad - extent
    return (span // stride if span >= 0 else -(-span // stride)) + 1


def _zeros_past_end(size: int | None, pad: int, extent: int, stride: int, out: int | None) -> int:
    """Zeros to add after the padded input where Caffe's last window reads past it (im2col reads 0).

    That happens only when the kernel is larger than the padded input; a free size is assumed
    to be large enough (Keras then refuses the smaller inputs)."""
    if size is None:
        return 0
    return max(0, (out - 1) * stride + extent - size - 2 * pad)


def _output_shapes(op: Op, batch, channels: int, spatial: tuple, field: str, value) -> list[Shape]:
    """Each top's shape, once no spatial size is empty (the field and value that made it so named)."""
    require(
        all(n is None or n > 0 for n in spatial),
        op,
        f"the output would be empty (spatial size {spatial})",
        field,
        value,
    )
    return [(batch, channels, *spatial)] * len(op.tops)


def _check_wiring(op: Op, in_shapes: list[Shape]) -> None:
    """As Caffe's BaseConvolutionLayer: one top per bottom, every bottom of one shape."""
    bottoms = [b.name for b in op.bottoms]
    require(
        len(op.tops) == len(bottoms) >= 1,
        op,
        f"a convolution gives one top per bottom; it has {len(bottoms)} bottoms and {len(op.tops)} tops",
        "top",
        [t.name for t in op.tops],
    )
    require(
        all(shape == in_shapes[0] for shape in in_shapes),
        op,
        f"every bottom of a convolution has one shape; they have {tuple(in_shapes)}",
        "bottom",
        bottoms,
    )


def convolution_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    _check_wiring(op, in_shapes)
    g = conv_geometry(op, in_shapes[0])
    spatial = tuple(_conv_output_size(n, p, e, s) for n, p, e, s in zip(in_shapes[0][2:], g.pad, g.extent, g.stride))
    return _output_shapes(op, in_shapes[0][0], g.num_output, spatial, "convolution_param.kernel_size", g.kernel)


def deconvolution_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    _check_wiring(op, in_shapes)
    g = conv_geometry(op, in_shapes[0])
    spatial = tuple(
        None if n is None else s * (n - 1) + e - 2 * p
        for n, p, e, s in zip(in_shapes[0][2:], g.pad, g.extent, g.stride)
    )
    return _output_shapes(op, in_shapes[0][0], g.num_output, spatial, "convolution_param.pad", g.pad)


def _kernel_dims(g: ConvGeometry, first: tuple, second: tuple) -> tuple:
    """Which parameter sets each dimension of a (de)convolution kernel, for error messages."""
    return (first, second, *(("convolution_param.kernel_size", g.kernel),) * len(g.kernel))


def _weight_filler(node: Node, caffe_shape, keras_shape=None):
    return caffe_filler(node.param, "convolution_param.weight_filler", caffe_shape, keras_shape=keras_shape)


def _bias(node: Node, g: ConvGeometry) -> np.ndarray | None:
    return node.blob(1, (g.num_output,), "convolution_param.num_output", g.num_output)


def _checked_geometry(node: Node) -> tuple[ConvGeometry, int]:
    """The layer's geometry and input channels (its wiring checked by the shape rule)."""
    return conv_geometry(node.op, node.in_shapes[0]), node.in_shapes[0][1]


def _on_each_bottom(node: Node, steps: list[Step]) -> list[Step]:
    """Caffe convolves each bottom in turn with the same weights: the same Keras layers are
    called on each bottom, and an Identity named after the Caffe layer gives their outputs as
    its tops."""
    if len(node.op.bottoms) == 1:
        return steps
    chained, ends = [], []
    for bottom in range(len(node.op.bottoms)):
        previous = bottom
        for step in steps:
            # The first call creates the variables from the weights; later calls reuse them.
            link = Step(step.layer, step.weights if bottom == 0 else (), inputs=(previous,), suffix=step.suffix)
            chained.append(link)
            previous = link
        ends.append(previous)
    return [*chained, Step(layers.Identity(), inputs=tuple(ends))]


@converts(
    "ConvolutionDepthwise",
    "DepthwiseConvolution",
    shapes=convolution_shapes,
    doc=LayerDoc(
        "`DepthwiseConv2D`",
        "`ConvolutionDepthwise` (ShuffleNet's fork) keeps one filter per channel and ignores `num_output` and `group`, as the fork does; `DepthwiseConvolution` (MobileNet's fork) is a grouped Convolution",
        origin="forks",
    ),
)
@converts(
    "Convolution",
    shapes=convolution_shapes,
    doc=LayerDoc(
        "`Conv1D/2D/3D`, `DepthwiseConv2D` (+ `ZeroPadding`, `MaxPooling` as a subsampler)",
        "group, dilation, asymmetric kernel/stride/pad, `bias_term: false`; several bottoms share the weights",
    ),
)
def convolution(node: Node) -> list[Step]:
    """Caffe's Convolution (and the forks' depthwise types) as Keras' Conv1D/2D/3D or DepthwiseConv2D."""
    g, channels = _checked_geometry(node)
    spatial = len(g.kernel)
    data_format = node.layout.data_format
    kernel_shape = (g.num_output, channels // g.group, *g.kernel)
    kernel = node.blob(
        0,
        kernel_shape,
        "convolution_param.num_output",
        g.num_output,
        dims=_kernel_dims(
            g,
            ("convolution_param.num_output", g.num_output),
            ("bottom_channels/convolution_param.group", f"{channels}/{g.group}"),
        ),
    )
    bias = _bias(node, g) if g.bias_term else None
    steps = []
    extra = [
        _zeros_past_end(n, p, e, s, o)
        for n, p, e, s, o in zip(node.in_shapes[0][2:], g.pad, g.extent, g.stride, node.out_shapes[0][2:])
    ]
    # Keras' "same" is Caffe's symmetric pad exactly when stride is 1 and the pad centres the kernel.
    same = all(s == 1 and 2 * p == e - 1 for s, p, e in zip(g.stride, g.pad, g.extent)) and any(g.pad)
    if (any(g.pad) or any(extra)) and not same:
        padding_layer = (layers.ZeroPadding1D, layers.ZeroPadding2D, layers.ZeroPadding3D)[spatial - 1]
        pads = tuple((p, p + x) for p, x in zip(g.pad, extra))
        steps.append(Step(padding_layer(pads[0] if spatial == 1 else pads, data_format=data_format), suffix="pad"))
    # Keras refuses stride > 1 together with dilation > 1: convolve densely, then subsample.
    subsample = any(s > 1 for s in g.stride) and any(d > 1 for d in g.dilation)
    common = dict(
        bias_initializer=caffe_filler(node.param, "convolution_param.bias_filler", (g.num_output,)),
        strides=(1,) * spatial if subsample else g.stride,
        padding="same" if same else "valid",
        data_format=data_format,
        dilation_rate=g.dilation,
        use_bias=g.bias_term,
    )
    depthwise = spatial == 2 and g.group == channels and g.group > 1
    if depthwise:
        multiplier = g.num_output // channels
        if kernel is not None:
            kernel = depthwise_kernel_to_keras(kernel, channels)
        conv = layers.DepthwiseConv2D(
            g.kernel,
            depth_multiplier=multiplier,
            **common,
            depthwise_initializer=_weight_filler(node, kernel_shape, (*g.kernel, channels, multiplier)),
        )
    else:
        conv_class = (layers.Conv1D, layers.Conv2D, layers.Conv3D)[spatial - 1]
        conv = conv_class(
            g.num_output, g.kernel, groups=g.group, **common, kernel_initializer=_weight_filler(node, kernel_shape)
        )
        kernel = None if kernel is None else kernel_to_keras(kernel)
    steps.append(Step(conv, (kernel, bias) if g.bias_term else (kernel,), suffix="conv" if subsample else None))
    if subsample:
        pool_class = (layers.MaxPooling1D, layers.MaxPooling2D, layers.MaxPooling3D)[spatial - 1]
        steps.append(Step(pool_class(pool_size=1, strides=g.stride, padding="valid", data_format=data_format)))
    return _on_each_bottom(node, steps)


@converts(
    "Deconvolution",
    shapes=deconvolution_shapes,
    doc=LayerDoc(
        "`Conv1D/2D/3DTranspose`, `GroupedConv2DTranspose` (+ `Crop`)",
        "groups, dilation; pad crops the output; several bottoms share the weights",
    ),
)
def deconvolution(node: Node) -> list[Step]:
    """Caffe's Deconvolution as Keras' Conv*Transpose or GroupedConv2DTranspose, cropped by its pad."""
    g, channels = _checked_geometry(node)
    spatial = len(g.kernel)
    data_format = node.layout.data_format
    # Caffe stores a deconvolution's kernel as (input channels, outputs per group, spatial...).
    kernel = node.blob(
        0,
        (channels, g.num_output // g.group, *g.kernel),
        "convolution_param.num_output",
        g.num_output,
        dims=_kernel_dims(
            g,
            ("bottom_channels", channels),
            ("convolution_param.num_output/convolution_param.group", f"{g.num_output}/{g.group}"),
        ),
    )
    bias = _bias(node, g) if g.bias_term else None
    kernel = None if kernel is None else kernel_to_keras(kernel)
    weights = (kernel, bias) if g.bias_term else (kernel,)
    standard = g.group == 1 and not (any(s > 1 for s in g.stride) and any(d > 1 for d in g.dilation))
    common = dict(
        strides=g.stride,
        padding="valid",
        data_format=data_format,
        dilation_rate=g.dilation,
        use_bias=g.bias_term,
        kernel_initializer=_weight_filler(node, (channels, g.num_output // g.group, *g.kernel)),
        bias_initializer=caffe_filler(node.param, "convolution_param.bias_filler", (g.num_output,)),
    )
    if standard:
        conv_class = (layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose)[spatial - 1]
        deconv = conv_class(g.num_output, g.kernel, **common)
    elif spatial == 2:
        deconv = caffe_layers.GroupedConv2DTranspose(g.num_output, g.kernel, groups=g.group, **common)
    else:
        raise node.error(
            "grouped or strided-and-dilated deconvolutions are supported in 2-D only",
            "convolution_param.group",
            g.group,
        )

    # Caffe's full output is (n - 1) * s + k per axis, and its pad removes rows and columns from
    # both ends. Keras' "valid" Conv*Transpose is n * s + max(k - s, 0) long: longer when k < s,
    # at the end (GroupedConv2DTranspose gives Caffe's full output itself).
    def produced(n):
        return [(n - 1) * s + e if not standard else n * s + max(e - s, 0) for s, e in zip(g.stride, g.extent)]

    if produced(1) == [e - 2 * p for e, p in zip(g.extent, g.pad)]:
        return _on_each_bottom(node, [Step(deconv, weights)])  # the same length at every size: nothing to crop
    out_shape = node.layout.keras_shape(node.out_shapes[0])
    begin = node.layout.keras_shape((0, 0, *g.pad))
    # What is left past Caffe's output does not depend on the input size (checked at size 1).
    trim = node.layout.keras_shape((0, 0, *(n - e + p for n, p, e in zip(produced(1), g.pad, g.extent))))
    crop = caffe_layers.Crop(begin[1:], out_shape[1:], end_trim=trim[1:])
    return _on_each_bottom(node, [Step(deconv, weights, suffix="deconv"), Step(crop)])


def _im2col_as_convolution(op: Op, shape: Shape) -> Op:
    """Caffe's Im2col as the fixed grouped convolution that copies each window into channels:
    output channel ``c * K + k`` holds kernel position ``k`` (row-major) of input channel ``c``."""
    param = type(op.param)()
    param.CopyFrom(op.param)
    conv = param.convolution_param
    channels = shape[1]
    conv.group, conv.num_output, conv.bias_term = channels, channels, False
    as_convolution = Op(op.name, op.type, param, op.bottoms, op.tops)
    conv.num_output = channels * math.prod(conv_geometry(as_convolution, shape).kernel)
    return as_convolution


def im2col_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    return convolution_shapes(_im2col_as_convolution(op, in_shapes[0]), in_shapes)


@converts(
    "Im2col",
    shapes=im2col_shapes,
    doc=LayerDoc(
        "fixed grouped `Conv` with one-hot kernels",
        "Convolution's `kernel`/`stride`/`pad`/`dilation`; copies values exactly",
    ),
)
def im2col(node: Node) -> list[Step]:
    """Caffe's Im2col as a frozen grouped convolution with one-hot kernels."""
    shape = node.in_shapes[0]
    op = _im2col_as_convolution(node.op, shape)
    kernel = conv_geometry(op, shape).kernel
    window = math.prod(kernel)
    # One-hot kernels: multiplying by 1 and adding zeros copies the values exactly.
    one_hot = np.tile(np.eye(window, dtype=np.float32).reshape(window, 1, *kernel), (shape[1], 1) + (1,) * len(kernel))
    steps = convolution(Node(op, node.in_shapes, node.out_shapes, node.layout, (Blob(one_hot),)))
    for step in steps:
        step.layer.trainable = False  # a fixed rearrangement, not a parameter
    return steps
