"""2-D pooling with Caffe's windows.

Caffe places pooling windows at ``i * stride - pad`` and, by default, rounds
the output size up (``ceil``), dropping a last window that would start past
``size + pad``. Max pooling ignores padding (it pools the window clipped to
the input, and an empty window gives ``-FLT_MAX``); average pooling divides by
the window clipped to the *padded* extent, not to the input. Keras' own
pooling layers do neither, so this layer pads explicitly and corrects the
average's divisor.
"""

from __future__ import annotations

import math

import numpy as np
from keras import layers, ops, saving

from caffe2keras.layers.common import PACKAGE, spatial_axes

METHODS = ("max", "average", "stochastic")
LOWEST_FLOAT32 = float(np.finfo(np.float32).min)


def pooled_sizes(sizes, kernel, stride, pad, ceil_mode: bool) -> tuple[int, ...]:
    """Caffe's output size per spatial axis.

    As soon as any axis is padded, Caffe drops a last window that starts at or past
    ``size + pad`` on *every* axis, padded or not (``PoolingLayer::Reshape``).
    """
    rounding = math.ceil if ceil_mode else math.floor
    clip = any(pad)
    pooled = []
    for n, k, s, p in zip(sizes, kernel, stride, pad):
        size = int(rounding((n + 2 * p - k) / s)) + 1
        pooled.append(size - 1 if clip and (size - 1) * s >= n + p else size)
    return tuple(pooled)


def average_divisors(size: int, kernel: int, stride: int, pad: int, pooled: int) -> np.ndarray:
    """Per output position, the window length clipped to the padded extent."""
    starts = np.arange(pooled) * stride - pad
    ends = np.minimum(starts + kernel, size + pad)
    return (ends - starts).astype(np.float32)


@saving.register_keras_serializable(package=PACKAGE)
class CaffePooling2D(layers.Layer):
    """Max, average or (test-time) stochastic pooling exactly as Caffe computes it.

    Args:
        method: ``"max"``, ``"average"`` or ``"stochastic"``.
        pool_size: ``(kernel_h, kernel_w)``.
        strides: ``(stride_h, stride_w)``.
        padding: Caffe's symmetric ``(pad_h, pad_w)``.
        ceil_mode: round the output size up (Caffe's default) or down.
        data_format: ``"channels_last"`` or ``"channels_first"``.
    """

    def __init__(
        self,
        method="max",
        pool_size=(2, 2),
        strides=(1, 1),
        padding=(0, 0),
        ceil_mode=True,
        data_format="channels_last",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}. Received: method={method!r}")
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"Invalid data_format. Received: data_format={data_format!r}")
        self.method = method
        self.pool_size = tuple(int(k) for k in pool_size)
        self.strides = tuple(int(s) for s in strides)
        self.padding = tuple(int(p) for p in padding)
        self.ceil_mode = bool(ceil_mode)
        self.data_format = data_format
        for name, values in (("pool_size", self.pool_size), ("strides", self.strides), ("padding", self.padding)):
            if len(values) != 2:
                raise ValueError(f"{name} must have 2 values. Received: {name}={values}")
        if any(p >= k for p, k in zip(self.padding, self.pool_size)):
            raise ValueError(
                f"padding must be smaller than pool_size. Received: padding={self.padding}, "
                f"pool_size={self.pool_size}"
            )
        if method == "stochastic" and any(self.padding):
            raise ValueError(f"stochastic pooling takes no padding. Received: padding={self.padding}")

    def _geometry(self, input_shape):
        """(input size, output size) per spatial axis."""
        sizes = [input_shape[a] for a in spatial_axes(4, self.data_format)]
        return sizes, pooled_sizes(sizes, self.pool_size, self.strides, self.padding, self.ceil_mode)

    def compute_output_shape(self, input_shape):
        sizes, pooled = self._geometry(input_shape)
        shape = list(input_shape)
        for axis, n in zip(spatial_axes(4, self.data_format), pooled):
            shape[axis] = n
        return tuple(shape)

    def call(self, inputs):
        sizes, pooled = self._geometry(inputs.shape)
        axes = spatial_axes(4, self.data_format)
        pad_width = [[0, 0] for _ in range(4)]
        crop = [slice(None)] * 4
        for axis, n, k, s, p, out in zip(axes, sizes, self.pool_size, self.strides, self.padding, pooled):
            # The padded extent the windows cover; it can end before n + 2p (floor) or after it (ceil).
            after = (out - 1) * s + k - n - p
            pad_width[axis] = [p, max(after, 0)]
            if after < 0:
                crop[axis] = slice(0, n + after)
        x = inputs[tuple(crop)]
        pool_args = dict(pool_size=self.pool_size, strides=self.strides, padding="valid", data_format=self.data_format)
        if self.method == "max":
            x = ops.pad(x, pad_width, constant_values=LOWEST_FLOAT32)
            return ops.max_pool(x, **pool_args)
        x = ops.pad(x, pad_width)
        if self.method == "stochastic":
            # At test time Caffe weights each value by its share of the window's sum.
            return ops.average_pool(ops.square(x), **pool_args) / ops.average_pool(x, **pool_args)
        divisors = np.multiply.outer(
            *(average_divisors(n, k, s, p, out) for n, k, s, p, out in zip(sizes, self.pool_size, self.strides, self.padding, pooled))
        )
        correction = (self.pool_size[0] * self.pool_size[1]) / divisors
        correction = correction[:, :, None] if self.data_format == "channels_last" else correction[None]
        return ops.average_pool(x, **pool_args) * ops.convert_to_tensor(correction, dtype=x.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            method=self.method,
            pool_size=self.pool_size,
            strides=self.strides,
            padding=self.padding,
            ceil_mode=self.ceil_mode,
            data_format=self.data_format,
        )
        return config
