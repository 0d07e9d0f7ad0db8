"""LRN, BatchNorm and MVN."""

from __future__ import annotations

from keras import layers

from caffe2keras.converters.base import Node, Step, converts, require, same_shapes
from caffe2keras.converters.reshaping import caffe_reshape_steps
from caffe2keras.graph import Op, Shape
from caffe2keras.layers import LRN, MeanVarianceNormalization

NORM_REGIONS = {0: "across_channels", 1: "within_channel"}


def lrn_shapes(op, in_shapes):
    p = op.param.lrn_param
    require(len(in_shapes[0]) == 4, op, "LRN takes 4-D (N, C, H, W) inputs", "bottom_shape", in_shapes[0])
    require(p.local_size % 2 == 1, op, "local_size must be odd", "lrn_param.local_size", p.local_size)
    return same_shapes(op, in_shapes)


@converts("LRN", shapes=lrn_shapes)
def lrn(node: Node) -> Step:
    p = node.param.lrn_param
    return Step(LRN(size=p.local_size, alpha=p.alpha, beta=p.beta, k=p.k, norm_region=NORM_REGIONS[p.norm_region],
                    data_format=node.layout.data_format))


@converts("BatchNorm", shapes=same_shapes)
def batch_norm(node: Node) -> Step:
    p = node.param.batch_norm_param
    shape = node.in_shapes[0]
    channels = shape[1] if len(shape) > 1 else 1
    field = "bottom_channels"
    mean = node.blob(0, (channels,), field, channels)
    variance = node.blob(1, (channels,), field, channels)
    factor = node.blob(2, (1,), field, channels)
    rank = len(shape)
    axis = node.keras_axis(1) if rank > 1 else -1
    if p.HasField("use_global_stats") and not p.use_global_stats:
        # The stored statistics are only updated, never used: each call normalizes with its batch's.
        axes = tuple(sorted(node.keras_axis(a) for a in range(rank) if a != 1))
        return Step(MeanVarianceNormalization(axes, epsilon=p.eps, epsilon_on="variance"))
    if factor is not None:
        # Caffe's third blob is the running-average normalizer: statistics are divided by it (0 stays 0).
        inverse = 0.0 if factor[0] == 0 else 1.0 / factor[0]
        mean, variance = mean * inverse, variance * inverse
    norm = layers.BatchNormalization(axis=axis, epsilon=p.eps, momentum=p.moving_average_fraction,
                                     center=False, scale=False)
    return Step(norm, (mean, variance))


def mvn_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    shape = in_shapes[0]
    # Caffe reads the bottom through its legacy (num, channels, height, width) accessors.
    require(1 <= len(shape) <= 4, op, "MVN takes blobs of up to 4 axes", "bottom_shape", tuple(shape))
    return [(*shape, *(1,) * (4 - len(shape)))]


@converts("MVN", shapes=mvn_shapes)
def mvn(node: Node) -> list[Step]:
    p = node.param.mvn_param
    shape = node.in_shapes[0]
    first = 1 if p.across_channels else 2
    axes = tuple(sorted(node.keras_axis(a) for a in range(first, len(shape))))
    steps = [Step(MeanVarianceNormalization(axes, p.normalize_variance, p.eps), suffix="mvn")]
    if node.out_shapes[0] != shape:
        steps += caffe_reshape_steps(node, shape, node.out_shapes[0], "bottom_shape")
    return steps
