"""Caffe parameter blobs in Keras' layouts.

One definition of each rearrangement, used by the converters and by
:func:`caffe2keras.load_caffe_weights`, which fills existing Keras models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from caffe2keras.arrays import owned_copy


def kernel_to_keras(kernel: np.ndarray) -> np.ndarray:
    """A Caffe kernel ``(a, b, spatial...)`` as Keras' ``(spatial..., b, a)`` (a view).

    Convolution ``(out, in / group, ...)`` becomes Keras' ``(..., in / group, out)``;
    Deconvolution ``(in, out / group, ...)`` becomes a transposed convolution's ``(..., out / group, in)``.
    """
    return np.transpose(kernel, (*range(2, kernel.ndim), 1, 0))


def depthwise_kernel_to_keras(kernel: np.ndarray, channels: int) -> np.ndarray:
    """A depthwise Caffe kernel ``(channels * multiplier, 1, spatial...)`` as Keras'
    ``(spatial..., channels, multiplier)``: Caffe output ``o`` reads input channel ``o // multiplier``."""
    multiplier = kernel.shape[0] // channels
    spatial = kernel.shape[2:]
    return kernel.reshape(channels, multiplier, *spatial).transpose(*range(2, 2 + len(spatial)), 0, 1)


def dense_kernel_to_keras(
    weight: np.ndarray,
    *,
    transpose: bool = False,
    features: Sequence[int] | None = None,
    order: Sequence[int] | None = None,
) -> np.ndarray:
    """InnerProduct's weight ``(outputs, inputs)`` (``transpose``: ``(inputs, outputs)``) as a
    Dense kernel ``(inputs, outputs)``.

    Caffe flattens its bottom ``features`` (e.g. ``(C, H, W)``) in that order; when Keras flattens
    those axes in another ``order`` (``(1, 2, 0)``: H, W, C), the rows are permuted to match, in
    one copy.
    """
    kernel = weight if transpose else weight.T
    if features is None or tuple(order) == tuple(range(len(features))):
        return kernel
    outputs = kernel.shape[1]
    # Permute a (features..., outputs) view, then copy it once into 2-D rows (a reshape of the
    # transposed view would copy it twice).
    by_axis = (
        weight.reshape(*features, outputs) if transpose else np.moveaxis(weight.reshape(outputs, *features), 0, -1)
    )
    return owned_copy(by_axis.transpose(*order, len(features))).reshape(-1, outputs)


def batch_norm_statistics(
    mean: np.ndarray, variance: np.ndarray, factor: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Caffe BatchNorm's running mean and variance, divided by its third blob, the running-average
    normalizer, as Caffe does (multiplied by its float32 inverse; a factor of 0 gives 0)."""
    if factor is None:
        return mean, variance
    inverse = np.float32(0.0) if factor.flat[0] == 0 else np.float32(1.0) / np.float32(factor.flat[0])
    return mean * inverse, variance * inverse
