"""2-D pooling with Caffe's windows, its argmax mask, and Fast R-CNN's ROI pooling.

Caffe places pooling windows at ``i * stride - pad`` and, by default, rounds
the output size up (``ceil``), dropping a last window that would start past
``size + pad``. Max pooling ignores padding (it pools the window clipped to
the input, and an empty window gives ``-FLT_MAX``); average pooling divides by
the window clipped to the *padded* extent, not to the input. Keras' own
pooling layers do neither, so this layer pads explicitly and corrects the
average's divisor.
"""

from __future__ import annotations

import numpy as np
from keras import layers, ops, saving

from caffe2keras.layer_arithmetic import pooled_sizes
from caffe2keras.layers.common import PACKAGE, channel_axis, check_data_format, spatial_axes

METHODS = ("max", "average", "stochastic")
LOWEST_FLOAT32 = float(np.finfo(np.float32).min)


def average_divisors(size: int, kernel: int, stride: int, pad: int, pooled: int) -> np.ndarray:
    """Per output position, the window length clipped to the padded extent."""
    starts = np.arange(pooled) * stride - pad
    ends = np.minimum(starts + kernel, size + pad)
    return (ends - starts).astype(np.float32)


class _CaffeWindows2D(layers.Layer):
    """What Caffe's pooling layers share: the windows' sizes, strides, pads and rounding."""

    def __init__(self, pool_size, strides, padding, ceil_mode, data_format, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = _pair(strides, "strides")
        self.padding = _pair(padding, "padding")
        self.ceil_mode = bool(ceil_mode)
        self.data_format = check_data_format(data_format)
        if any(p >= k for p, k in zip(self.padding, self.pool_size)):  # PoolingLayer::LayerSetUp
            raise ValueError(
                f"padding must be smaller than pool_size. Received: padding={self.padding}, pool_size={self.pool_size}"
            )

    def _geometry(self, input_shape):
        """(input size, output size) per spatial axis."""
        sizes = [input_shape[a] for a in spatial_axes(4, self.data_format)]
        return sizes, pooled_sizes(sizes, self.pool_size, self.strides, self.padding, self.ceil_mode)

    def _pooled_shape(self, input_shape):
        _sizes, pooled = self._geometry(input_shape)
        shape = list(input_shape)
        for axis, n in zip(spatial_axes(4, self.data_format), pooled):
            shape[axis] = n
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            pool_size=self.pool_size,
            strides=self.strides,
            padding=self.padding,
            ceil_mode=self.ceil_mode,
            data_format=self.data_format,
        )
        return config


@saving.register_keras_serializable(package=PACKAGE)
class CaffePooling2D(_CaffeWindows2D):
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
        super().__init__(pool_size, strides, padding, ceil_mode, data_format, **kwargs)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}. Received: method={method!r}")
        if method == "stochastic" and any(self.padding):
            raise ValueError(f"stochastic pooling takes no padding. Received: padding={self.padding}")
        self.method = method

    def compute_output_shape(self, input_shape):
        return self._pooled_shape(input_shape)

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
        # Indexed only where it crops: an exported graph would keep even a whole-tensor slice.
        x = inputs[tuple(crop)] if crop != [slice(None)] * 4 else inputs
        pool_args = dict(pool_size=self.pool_size, strides=self.strides, padding="valid", data_format=self.data_format)
        if self.method == "max":
            x = ops.pad(x, pad_width, constant_values=LOWEST_FLOAT32)
            return ops.max_pool(x, **pool_args)
        x = ops.pad(x, pad_width)
        if self.method == "stochastic":
            # At test time Caffe weights each value by its share of the window's sum.
            return ops.average_pool(ops.square(x), **pool_args) / ops.average_pool(x, **pool_args)
        divisors = np.multiply.outer(
            *(
                average_divisors(n, k, s, p, out)
                for n, k, s, p, out in zip(sizes, self.pool_size, self.strides, self.padding, pooled)
            )
        )
        # Without padding, rounding up can place a last window past the input: Caffe divides its
        # empty sum by a size of 0 and gets NaN, as 0 * inf does here.
        with np.errstate(divide="ignore"):
            correction = (self.pool_size[0] * self.pool_size[1]) / divisors
        correction = correction[:, :, None] if self.data_format == "channels_last" else correction[None]
        return ops.average_pool(x, **pool_args) * ops.convert_to_tensor(correction, dtype=x.dtype)

    def get_config(self):
        return {**super().get_config(), "method": self.method}


@saving.register_keras_serializable(package=PACKAGE)
class MaxPoolingWithArgmax2D(_CaffeWindows2D):
    """Caffe's MAX pooling with its second top: the pooled values and where each came from.

    Outputs ``[pooled, mask]``. ``mask`` holds, as floats, the flat index
    ``h * width + w`` of each maximum within its channel of the input, as
    Caffe's mask top (and SegNet's Upsample, which reads it) count. The window
    is clipped to the input; ties go to the first maximum in raster order.

    Args:
        pool_size, strides, padding, ceil_mode, data_format: as :class:`CaffePooling2D`.
    """

    def __init__(
        self, pool_size=(2, 2), strides=(2, 2), padding=(0, 0), ceil_mode=True, data_format="channels_last", **kwargs
    ):
        super().__init__(pool_size, strides, padding, ceil_mode, data_format, **kwargs)

    def compute_output_shape(self, input_shape):
        shape = self._pooled_shape(input_shape)
        return [shape, shape]

    def call(self, inputs):
        axes = spatial_axes(4, self.data_format)
        sizes, pooled = self._geometry(inputs.shape)
        # -inf padding never beats Caffe's starting value, -FLT_MAX, so padded cells never win.
        pad_width = [[0, 0] for _ in range(4)]
        for axis, n, k, s, p, out in zip(axes, sizes, self.pool_size, self.strides, self.padding, pooled):
            pad_width[axis] = [p, max((out - 1) * s + k - n - p, 0)]
        x = ops.pad(inputs, pad_width, constant_values=float("-inf"))
        best = ops.full_like(_window_cell(x, axes, (0, 0), self.strides, pooled), LOWEST_FLOAT32)
        argmax = ops.full_like(best, -1.0)
        rows = np.arange(pooled[0]) * self.strides[0] - self.padding[0]
        cols = np.arange(pooled[1]) * self.strides[1] - self.padding[1]
        for kh in range(self.pool_size[0]):
            for kw in range(self.pool_size[1]):
                value = _window_cell(x, axes, (kh, kw), self.strides, pooled)
                index = np.add.outer((rows + kh) * sizes[1], cols + kw).astype(np.float32)
                index = index[:, :, None] if self.data_format == "channels_last" else index[None]
                better = value > best
                best = ops.where(better, value, best)
                argmax = ops.where(better, ops.convert_to_tensor(index, dtype=value.dtype), argmax)
        return [best, argmax]


def _pair(values, name):
    values = tuple(int(v) for v in values)
    if len(values) != 2:
        raise ValueError(f"{name} must have 2 values. Received: {name}={values}")
    return values


def _window_cell(x, axes, offset, strides, pooled):
    """Element ``offset`` of every window: a strided slice of the padded input."""
    index = [slice(None)] * 4
    for axis, o, s, n in zip(axes, offset, strides, pooled):
        index[axis] = slice(o, o + (n - 1) * s + 1, s)
    return x[tuple(index)]


@saving.register_keras_serializable(package=PACKAGE)
class ROIPooling(layers.Layer):
    """Fast R-CNN's ROI max pooling, as rbgirshick/caffe-fast-rcnn computes it.

    Inputs ``[features, rois]``: a feature map and ``(R, 5)`` rows
    ``[batch_index, x1, y1, x2, y2]`` in input-image coordinates. The output has
    one ``pooled_size`` map per ROI (its batch axis counts ROIs).

    Each corner is scaled by ``spatial_scale`` and rounded half away from zero;
    the ROI spans ``max(end - start + 1, 1)`` cells per axis, cut into bins
    ``[floor(i * b), ceil((i + 1) * b))`` with ``b = span / pooled`` (float32
    arithmetic, as Caffe), shifted to the ROI's start and clipped to the map.
    A bin gives its maximum, or 0 when it is empty.

    Args:
        pooled_size: ``(pooled_h, pooled_w)``.
        spatial_scale: the feature map's size over the image's.
        data_format: of the feature map and the output.
    """

    def __init__(self, pooled_size, spatial_scale=1.0, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.pooled_size = _pair(pooled_size, "pooled_size")
        if min(self.pooled_size) <= 0:
            raise ValueError(f"pooled_size must be positive. Received: pooled_size={self.pooled_size}")
        self.spatial_scale = float(spatial_scale)
        self.data_format = check_data_format(data_format)

    def compute_output_shape(self, input_shape):
        features, rois = input_shape
        channels = features[channel_axis(4, self.data_format)]
        if self.data_format == "channels_last":
            return (rois[0], *self.pooled_size, channels)
        return (rois[0], channels, *self.pooled_size)

    def call(self, inputs):
        features, rois = inputs
        if self.data_format == "channels_first":
            features = ops.transpose(features, (0, 2, 3, 1))
        height, width = features.shape[1:3]
        rois = ops.reshape(ops.cast(rois, "float32"), (-1, 5))
        rows, row_empty = self._bins(rois[:, 2], rois[:, 4], self.pooled_size[0], height)
        cols, col_empty = self._bins(rois[:, 1], rois[:, 3], self.pooled_size[1], width)

        def pool_one(roi):
            batch_index, row_mask, col_mask = roi
            fmap = ops.take(features, batch_index, axis=0)  # (H, W, C)
            # The max over a rectangle: over each bin's columns, then over its rows.
            by_column = ops.max(ops.where(col_mask[:, None, :, None], fmap[None], float("-inf")), axis=2)
            return ops.max(ops.where(row_mask[:, None, :, None], by_column[None], float("-inf")), axis=2)

        # Caffe's int() of the stored float: truncation.
        batch_index = ops.cast(rois[:, 0], "int32")
        pooled = ops.map(pool_one, (batch_index, rows, cols))  # (R, PH, PW, C)
        empty = ops.logical_or(row_empty[:, :, None], col_empty[:, None, :])[..., None]
        # Caffe starts from -FLT_MAX and keeps 0 for an empty bin.
        pooled = ops.where(empty, 0.0, ops.maximum(pooled, LOWEST_FLOAT32))
        if self.data_format == "channels_first":
            pooled = ops.transpose(pooled, (0, 3, 1, 2))
        return pooled

    def _bins(self, begin, end, pooled, size):
        """Per ROI, which cells each bin covers along one axis, and which bins are empty."""
        start = _round_half_away(begin * self.spatial_scale)
        span = ops.maximum(_round_half_away(end * self.spatial_scale) - start + 1.0, 1.0)
        bin_size = _correctly_rounded_quotient(span, float(pooled))
        steps = ops.convert_to_tensor(np.arange(pooled + 1, dtype=np.float32))
        edges = steps[None, :] * bin_size[:, None]
        lower = ops.clip(ops.floor(edges[:, :-1]) + start[:, None], 0, size)
        upper = ops.clip(ops.ceil(edges[:, 1:]) + start[:, None], 0, size)
        cells = ops.convert_to_tensor(np.arange(size, dtype=np.float32))
        covered = ops.logical_and(cells[None, None, :] >= lower[:, :, None], cells[None, None, :] < upper[:, :, None])
        return covered, upper <= lower

    def get_config(self):
        config = super().get_config()
        config.update(pooled_size=self.pooled_size, spatial_scale=self.spatial_scale, data_format=self.data_format)
        return config


def _correctly_rounded_quotient(a, divisor: float):
    """``a / divisor`` rounded as IEEE float32 division rounds it.

    XLA's CPU division can be one unit in the last place off, which moves a
    bin edge that lands on a whole cell. One Newton step with an exact residual
    (``q`` split in halves whose products with a small integer ``divisor`` are
    exact) fixes it.
    """
    quotient = a / divisor
    scaled = quotient * 4097.0
    high = scaled - (scaled - quotient)
    low = quotient - high
    residual = (a - high * divisor) - low * divisor
    return quotient + residual / divisor


def _round_half_away(x):
    """C's round(): halves go away from zero (numpy and XLA round them to even)."""
    magnitude = ops.abs(x)
    whole = ops.floor(magnitude)
    return ops.sign(x) * (whole + ops.cast(magnitude - whole >= 0.5, x.dtype))
