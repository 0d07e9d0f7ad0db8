"""LRN, BatchNorm, MVN, and the forks' BN (PSPNet's four-blob one and SegNet's two-blob one)."""

from __future__ import annotations

from caffe2keras.caffe.schema import enum_name
from caffe2keras.converters.axes import caffe_reshape_steps
from caffe2keras.converters.base import LayerDoc, Node, Step, converts, require, same_shapes
from caffe2keras.converters.fillers import caffe_filler
from caffe2keras.converters.keras_layers import caffe_layers, layers
from caffe2keras.converters.transforms import batch_norm_statistics
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.graph import Op, Shape

NORM_REGIONS = {"ACROSS_CHANNELS": "across_channels", "WITHIN_CHANNEL": "within_channel"}


def lrn_shapes(op, in_shapes):
    p = op.param.lrn_param
    require(len(in_shapes[0]) == 4, op, "LRN takes 4-D (N, C, H, W) inputs", "bottom_shape", in_shapes[0])
    require(p.local_size % 2 == 1, op, "local_size must be odd", "lrn_param.local_size", p.local_size)
    return same_shapes(op, in_shapes)


@converts("LRN", shapes=lrn_shapes, doc=LayerDoc("`LRN`", "ACROSS_CHANNELS and WITHIN_CHANNEL as Caffe computes each"))
def lrn(node: Node) -> Step:
    """Caffe's LRN as the LRN layer, across channels or within each channel."""
    p = node.param.lrn_param
    return Step(
        caffe_layers.LRN(
            size=p.local_size,
            alpha=p.alpha,
            beta=p.beta,
            k=p.k,
            norm_region=NORM_REGIONS[enum_name(p, "norm_region")],
            data_format=node.layout.data_format,
        )
    )


@converts(
    "BatchNorm",
    shapes=same_shapes,
    doc=LayerDoc(
        "`BatchNormalization`; `MeanVarianceNormalization`",
        "statistics divided by the scale-factor blob (0 stays 0), `eps`; `use_global_stats: false` normalizes with the statistics of the batch passed in one call (`model(x)`; `predict` splits batches)",
    ),
)
def batch_norm(node: Node) -> Step:
    """Caffe's BatchNorm as Keras' BatchNormalization over its stored statistics."""
    p = node.param.batch_norm_param
    if p.scale_bias:
        raise node.error(
            "NVIDIA Caffe's scale_bias (a scale and a shift blob after the statistics) is not supported; "
            "BVLC nets follow BatchNorm with a Scale layer instead",
            "batch_norm_param.scale_bias",
            True,
        )
    shape = node.in_shapes[0]
    channels = shape[1] if len(shape) > 1 else 1
    field = "bottom_channels"
    mean = node.blob(0, (channels,), field, channels)
    variance = node.blob(1, (channels,), field, channels)
    factor = node.blob(2, (1,), field, channels, folded=True)
    rank = len(shape)
    axis = node.keras_axis(1) if rank > 1 else -1
    if p.HasField("use_global_stats") and not p.use_global_stats:
        # The stored statistics are only updated, never used: each call normalizes with its batch's.
        axes = tuple(sorted(node.keras_axis(a) for a in range(rank) if a != 1))
        return Step(caffe_layers.MeanVarianceNormalization(axes, epsilon=p.eps, epsilon_on="variance"))
    if mean is not None:
        mean, variance = batch_norm_statistics(mean, variance, factor)
    norm = layers.BatchNormalization(
        axis=axis, epsilon=p.eps, momentum=p.moving_average_fraction, center=False, scale=False
    )
    return Step(norm, (mean, variance))


def mvn_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    shape = in_shapes[0]
    # Caffe reads the bottom through its legacy (num, channels, height, width) accessors.
    require(1 <= len(shape) <= 4, op, "MVN takes blobs of up to 4 axes", "bottom_shape", tuple(shape))
    return [(*shape, *(1,) * (4 - len(shape)))]


@converts(
    "MVN",
    shapes=mvn_shapes,
    doc=LayerDoc(
        "`MeanVarianceNormalization` (+ `Reshape`)",
        "`across_channels`, `normalize_variance`; `eps` added to the standard deviation, as Caffe does (OpenCV adds it to the variance); tops are 4-D as in Caffe",
    ),
)
def mvn(node: Node) -> list[Step]:
    """Caffe's MVN as the MeanVarianceNormalization layer."""
    p = node.param.mvn_param
    shape = node.in_shapes[0]
    first = 1 if p.across_channels else 2
    axes = tuple(sorted(node.keras_axis(a) for a in range(first, len(shape))))
    steps = [Step(caffe_layers.MeanVarianceNormalization(axes, p.normalize_variance, p.eps), suffix="mvn")]
    if node.out_shapes[0] != shape:
        steps += caffe_reshape_steps(node, shape, node.out_shapes[0], "bottom_shape")
    return steps


def bn_shapes(op, in_shapes):
    shape = in_shapes[0]
    require(
        2 <= len(shape) <= 4, op, "BN takes 2-D to 4-D inputs with channels on axis 1", "bottom_shape", tuple(shape)
    )
    return same_shapes(op, in_shapes)


SEGNET_BN_FIELDS = ("bn_mode", "scale_filler", "shift_filler")
PSPNET_BN_FIELDS = ("slope_filler", "bias_filler", "momentum", "eps", "frozen", "engine")
SEGNET_BN_EPSILON = 1e-9  # caffe-segnet's BNLayer::LayerSetUp, var_eps_


def _is_segnet_bn(node: Node) -> bool:
    """SegNet's BN names its own fields or holds two blobs; PSPNet's holds four."""
    p = node.param.bn_param
    segnet = [f for f in SEGNET_BN_FIELDS if p.HasField(f)]
    pspnet = [f for f in PSPNET_BN_FIELDS if p.HasField(f)]
    require(
        not (segnet and pspnet),
        node.op,
        f"bn_param mixes SegNet's BN fields {segnet} with PSPNet's {pspnet}; they are two different layers",
        f"bn_param.{segnet[0]}" if segnet else "bn_param",
        getattr(p, segnet[0]) if segnet else None,
        kind=UnsupportedParameterError,
    )
    return bool(segnet) or (not pspnet and node.weights is not None and len(node.weights) == 2)


def segnet_bn(node: Node) -> list[Step]:
    """alexgkendall/caffe-segnet's BN: ``x * scale + shift`` (bn_mode INFERENCE), after a
    normalization by the batch's own mean and variance plus 1e-9 in the default LEARN mode."""
    p = node.param.bn_param
    shape = node.in_shapes[0]
    require(len(shape) == 4, node.op, "SegNet's BN takes 4-D (N, C, H, W) inputs", "bottom_shape", tuple(shape))
    blob_shape = (1, shape[1], 1, 1)
    keras_shape = node.layout.keras_shape(blob_shape)[1:]
    scale, shift = (
        None if b is None else node.layout.to_keras(b)[0]
        for b in (node.blob(i, blob_shape, "bottom_channels", shape[1]) for i in range(2))
    )
    fillers = {
        f"{name}_initializer": caffe_filler(node.param, f"bn_param.{field}", blob_shape, keras_shape=keras_shape)
        for name, field in (("gamma", "scale_filler"), ("beta", "shift_filler"))
    }
    steps = []
    if enum_name(p, "bn_mode") == "LEARN":
        axes = tuple(sorted(node.keras_axis(a) for a in (0, 2, 3)))
        normalize = caffe_layers.MeanVarianceNormalization(axes, epsilon=SEGNET_BN_EPSILON, epsilon_on="variance")
        steps.append(Step(normalize, suffix="normalize"))
    return [*steps, Step(caffe_layers.Affine(keras_shape, use_scale=True, use_bias=True, **fillers), (scale, shift))]


@converts(
    "BN",
    shapes=bn_shapes,
    doc=LayerDoc(
        "`BatchNormalization`; `Affine` (+ `MeanVarianceNormalization`)",
        "hszhao/PSPNet's slope, bias, mean, variance blobs and `eps`, with its CPU formula (its cuDNN engine raises `eps` to 1e-5); alexgkendall/caffe-segnet's two-blob `BN` (`bn_mode`, `scale_filler`, `shift_filler`): `INFERENCE` is `x * scale + shift`, `LEARN` first normalizes by the batch's own statistics (`E[x²] - E[x]²` plus 1e-9)",
        origin="PSPNet, SegNet",
    ),
)
def bn(node: Node) -> Step | list[Step]:
    """The forks' BN: SegNet's (see :func:`segnet_bn`) or PSPNet's at test time: ``(x - mean) / sqrt(variance + eps) * slope + bias``.

    Its four blobs (slope, bias, mean, variance) have shape (1, C, 1, 1); unlike
    BatchNorm there is no scale-factor blob. The CPU formula is used: the fork's
    cuDNN engine raises eps to at least 1e-5.
    """
    if _is_segnet_bn(node):
        return segnet_bn(node)
    p = node.param.bn_param
    channels = node.in_shapes[0][1]
    blob_shape = (1, channels, 1, 1)
    blobs = [node.blob(i, blob_shape, "bottom_channels", channels) for i in range(4)]
    slope, bias, mean, variance = (None if b is None else b.reshape(channels) for b in blobs)
    # As the fork initializes: the fillers, a zero mean, and a variance of 1 when frozen, else 0.
    norm = layers.BatchNormalization(
        axis=node.keras_axis(1),
        epsilon=p.eps,
        momentum=p.momentum,
        gamma_initializer=caffe_filler(node.param, "bn_param.slope_filler", blob_shape, keras_shape=(channels,)),
        beta_initializer=caffe_filler(node.param, "bn_param.bias_filler", blob_shape, keras_shape=(channels,)),
        moving_variance_initializer="ones" if p.frozen else "zeros",
    )
    return Step(norm, (slope, bias, mean, variance))
