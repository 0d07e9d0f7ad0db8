"""Resizing layers of the segmentation forks: DeepLab/PSPNet's bilinear Interp and SegNet's unpooling."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from keras import layers, ops, saving

from caffe2keras.layers.common import PACKAGE, check_data_format, checked_shape, spatial_axes


class AxisWeights(NamedTuple):
    """Per output position along one axis: the lower source cell, the step to the upper one
    (0 at the last cell) and the weights of the two."""

    lower: np.ndarray
    step: np.ndarray
    lower_weight: np.ndarray
    upper_weight: np.ndarray


def interp_weights(size_in: int, size_out: int) -> AxisWeights:
    """Source positions and weights in float32, as Caffe's ``caffe_cpu_interp2`` computes them."""
    ratio = np.float32(size_in - 1) / np.float32(size_out - 1) if size_out > 1 else np.float32(0)
    source = ratio * np.arange(size_out, dtype=np.float32)
    lower = source.astype(np.int64)  # truncation, as C's int()
    upper_weight = (source - lower.astype(np.float32)).astype(np.float32)
    return AxisWeights(lower, (lower < size_in - 1).astype(np.int64), np.float32(1) - upper_weight, upper_weight)


def _mix(low, high, axis: int, weights: AxisWeights):
    shape = [1] * len(low.shape)
    shape[axis] = -1
    w0, w1 = (
        ops.convert_to_tensor(w.reshape(shape), dtype=low.dtype) for w in (weights.lower_weight, weights.upper_weight)
    )
    return w0 * low + w1 * high


def _blend(x, axis: int, weights: AxisWeights):
    """Linear interpolation of ``x`` along ``axis``."""
    return _mix(
        ops.take(x, weights.lower, axis=axis), ops.take(x, weights.lower + weights.step, axis=axis), axis, weights
    )


class _Resize2D(layers.Layer):
    """Base: a layer whose 4-D output has a spatial ``size`` (None: one it computes per input)."""

    def __init__(self, size, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.size = None if size is None else tuple(int(s) for s in size)
        if self.size is not None and (len(self.size) != 2 or min(self.size) <= 0):
            raise ValueError(f"size must be two positive integers. Received: size={size}")
        checked_shape("size", self.size or (), minimum=1)
        self.data_format = check_data_format(data_format)

    def _resized(self, input_shape):
        shape = list(input_shape)
        for axis, n in zip(spatial_axes(4, self.data_format), self.size):
            shape[axis] = n
        return tuple(shape)

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, data_format=self.data_format)
        return config


@saving.register_keras_serializable(package=PACKAGE)
class BilinearInterp(_Resize2D):
    """Bilinear resize with aligned corners, exactly as DeepLab's and PSPNet's ``Interp``.

    Output cell ``i`` reads source position ``i * (n_in - 1) / (n_out - 1)``
    (float32), blending the two neighbouring cells along the width first, then
    along the height. Equal sizes copy the input.

    Args:
        size: ``(height, width)`` of the output, or None: the input's size shrunk by
            ``shrink_factor`` (``(n - 1) // shrink + 1``), then zoomed by ``zoom_factor``
            (``n + (n - 1) * (zoom - 1)``), as the fork's factors size it, for each input.
        shrink_factor, zoom_factor: with ``size=None``; 1 leaves the size alone.
        data_format: ``"channels_last"`` or ``"channels_first"``.
    """

    def __init__(self, size, shrink_factor=1, zoom_factor=1, data_format="channels_last", **kwargs):
        self.shrink_factor, self.zoom_factor = int(shrink_factor), int(zoom_factor)
        if min(self.shrink_factor, self.zoom_factor) < 1:
            raise ValueError(
                f"shrink_factor and zoom_factor must be at least 1. Received: shrink_factor={shrink_factor}, "
                f"zoom_factor={zoom_factor}"
            )
        super().__init__(size, data_format=data_format, **kwargs)

    def _output_size(self, sizes):
        if self.size is not None:
            return self.size
        return tuple(None if n is None else (n - 1) // self.shrink_factor * self.zoom_factor + 1 for n in sizes)

    def compute_output_shape(self, input_shape):
        axes = spatial_axes(4, self.data_format)
        shape = list(input_shape)
        for axis, n in zip(axes, self._output_size([input_shape[a] for a in axes])):
            shape[axis] = n
        return tuple(shape)

    def call(self, inputs):
        row_axis, col_axis = spatial_axes(4, self.data_format)
        size_in = (inputs.shape[row_axis], inputs.shape[col_axis])
        size = self._output_size(size_in)
        if size_in == size:
            return inputs
        rows = interp_weights(size_in[0], size[0])
        cols = interp_weights(size_in[1], size[1])
        # Caffe blends along the width first, then along the height.
        top = _blend(ops.take(inputs, rows.lower, axis=row_axis), col_axis, cols)
        bottom = _blend(ops.take(inputs, rows.lower + rows.step, axis=row_axis), col_axis, cols)
        return _mix(top, bottom, row_axis, rows)

    def get_config(self):
        config = super().get_config()
        config.update(shrink_factor=self.shrink_factor, zoom_factor=self.zoom_factor)
        return config


@saving.register_keras_serializable(package=PACKAGE)
class MaxUnpooling2D(_Resize2D):
    """SegNet's max-unpooling: scatter each value to the cell its argmax mask names.

    Inputs ``[values, mask]`` of one shape; ``mask`` holds flat indices
    ``h * width + w`` into each channel of the ``size`` output (a MAX Pooling
    mask top, :class:`MaxPoolingWithArgmax2D`). Cells nobody writes are 0.
    When two values name one cell the later one (in raster order) wins, as in
    the fork's loop; indices outside the output are dropped (the fork aborts).

    Args:
        size: ``(height, width)`` of the output.
        data_format: ``"channels_last"`` or ``"channels_first"``.
    """

    def compute_output_shape(self, input_shape):
        return self._resized(input_shape[0])

    def call(self, inputs):
        values, mask = inputs
        if self.data_format == "channels_last":
            values, mask = (ops.transpose(t, (0, 3, 1, 2)) for t in (values, mask))
        channels, height, width = values.shape[1:]
        cells = self.size[0] * self.size[1]
        values = ops.reshape(values, (-1, height * width))
        target = ops.cast(ops.reshape(mask, (-1, height * width)), "int32")  # C's int(): truncation
        planes = ops.shape(values)[0]
        # Which input cell writes each output cell last: the largest 1-based position aimed at it.
        valid = ops.logical_and(target >= 0, target < cells)
        segment = ops.where(valid, ops.arange(planes, dtype="int32")[:, None] * cells + target, planes * cells)
        position = ops.broadcast_to(ops.arange(1, height * width + 1, dtype="int32")[None], ops.shape(target))
        writer = ops.segment_max(
            ops.reshape(position, (-1,)), ops.reshape(segment, (-1,)), num_segments=planes * cells + 1
        )
        writer = ops.maximum(ops.reshape(writer[:-1], (-1, cells)), 0)  # 0: nobody writes the cell
        written = ops.take_along_axis(values, ops.maximum(writer - 1, 0), axis=1)
        output = ops.reshape(ops.where(writer > 0, written, 0.0), (-1, channels, *self.size))
        if self.data_format == "channels_last":
            output = ops.transpose(output, (0, 2, 3, 1))
        return output
