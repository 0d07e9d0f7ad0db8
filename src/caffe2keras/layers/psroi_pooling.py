"""R-FCN's position-sensitive ROI pooling (daijifeng001/caffe-rfcn's PSROIPooling)."""

from __future__ import annotations

import numpy as np
from keras import layers, ops, saving

from caffe2keras.layers.common import PACKAGE, channel_axis, check_data_format
from caffe2keras.layers.pooling import _correctly_rounded_quotient, _round_half_away


@saving.register_keras_serializable(package=PACKAGE)
class PSROIPooling(layers.Layer):
    """Position-sensitive average ROI pooling, as R-FCN's Caffe fork computes it.

    Inputs ``[features, rois]``: a map of ``output_dim * group_size**2`` channels and
    ``(R, 5)`` rows ``[batch_index, x1, y1, x2, y2]`` in image coordinates. The output
    has ``(output_dim, group_size, group_size)`` per ROI (its batch axis counts ROIs).

    Corners are rounded half away from zero; the ROI spans ``[round(x1), round(x2) + 1)``
    times ``spatial_scale``, at least 0.1, cut into ``group_size`` bins per axis; bin
    ``(i, j)`` covers cells ``[floor(start + i * b), ceil(start + (i + 1) * b))`` clipped to
    the map (float32 arithmetic, as the fork). Output channel ``d`` of bin ``(i, j)`` is the
    mean of input channel ``(d * group_size + i) * group_size + j`` over the bin, or 0 when
    the bin is empty.

    Args:
        output_dim: channels per output.
        group_size: bins per axis.
        spatial_scale: the feature map's size over the image's.
        data_format: of the feature map and the output.
    """

    def __init__(self, output_dim, group_size, spatial_scale=1.0, data_format="channels_last", **kwargs):
        super().__init__(**kwargs)
        self.output_dim = int(output_dim)
        self.group_size = int(group_size)
        if self.output_dim <= 0 or self.group_size <= 0:
            raise ValueError(
                f"output_dim and group_size must be positive. Received: output_dim={output_dim}, "
                f"group_size={group_size}"
            )
        self.spatial_scale = float(spatial_scale)
        self.data_format = check_data_format(data_format)

    def compute_output_shape(self, input_shape):
        features, rois = input_shape
        channels = features[channel_axis(4, self.data_format)]
        if channels is not None and channels != self.output_dim * self.group_size**2:
            raise ValueError(
                f"the feature map needs output_dim * group_size**2 = {self.output_dim * self.group_size**2} "
                f"channels. Received: channels={channels}"
            )
        groups = (self.group_size, self.group_size)
        if self.data_format == "channels_last":
            return (rois[0], *groups, self.output_dim)
        return (rois[0], self.output_dim, *groups)

    def call(self, inputs):
        features, rois = inputs
        if self.data_format == "channels_first":
            features = ops.transpose(features, (0, 2, 3, 1))
        height, width = features.shape[1:3]
        groups = self.group_size
        # Channel (d * G + i) * G + j holds output channel d of bin (i, j).
        features = ops.reshape(features, (-1, height, width, self.output_dim, groups, groups))
        rois = ops.reshape(ops.cast(rois, "float32"), (-1, 5))
        rows = self._bins(rois[:, 2], rois[:, 4], height)
        cols = self._bins(rois[:, 1], rois[:, 3], width)

        def pool_one(roi):
            batch_index, row_mask, col_mask = roi
            fmap = ops.take(features, batch_index, axis=0)  # (H, W, D, G, G)
            total = ops.einsum("ih,jw,hwdij->ijd", row_mask, col_mask, fmap)
            area = ops.sum(row_mask, axis=1)[:, None] * ops.sum(col_mask, axis=1)[None, :]
            # An empty bin gives 0 (Caffe's is_empty), not 0 / 0.
            return ops.where(area[:, :, None] > 0, total / ops.maximum(area, 1.0)[:, :, None], 0.0)

        # Caffe's int() of the stored float: truncation.
        batch_index = ops.cast(rois[:, 0], "int32")
        pooled = ops.map(pool_one, (batch_index, rows, cols))  # (R, G, G, D)
        if self.data_format == "channels_first":
            pooled = ops.transpose(pooled, (0, 3, 1, 2))
        return pooled

    def _bins(self, begin, end, size):
        """Per ROI, a 0/1 mask of the cells each bin covers along one axis."""
        start = _round_half_away(begin) * self.spatial_scale
        stop = (_round_half_away(end) + 1.0) * self.spatial_scale
        bin_size = _correctly_rounded_quotient(ops.maximum(stop - start, 0.1), float(self.group_size))
        steps = ops.convert_to_tensor(np.arange(self.group_size + 1, dtype=np.float32))
        edges = steps[None, :] * bin_size[:, None] + start[:, None]
        lower = ops.clip(ops.floor(edges[:, :-1]), 0, size)
        upper = ops.clip(ops.ceil(edges[:, 1:]), 0, size)
        cells = ops.convert_to_tensor(np.arange(size, dtype=np.float32))
        covered = ops.logical_and(cells[None, None, :] >= lower[:, :, None], cells[None, None, :] < upper[:, :, None])
        return ops.cast(covered, "float32")

    def get_config(self):
        config = super().get_config()
        config.update(
            output_dim=self.output_dim,
            group_size=self.group_size,
            spatial_scale=self.spatial_scale,
            data_format=self.data_format,
        )
        return config
