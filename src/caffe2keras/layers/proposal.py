"""Faster R-CNN's region proposals: anchors moved by the RPN's deltas, clipped, sorted, and NMS.

Caffe's proposal layers (py-faster-rcnn's ``rpn.proposal_layer.ProposalLayer``
and OpenCV's ``Proposal`` type) return as many rows as survive NMS, a number
known only from the data. A compiled Keras graph needs a fixed size, so this
layer always returns ``post_nms_topn`` rows, the surviving proposals first in
descending score order and then rows of zeros, as OpenCV's ``Proposal`` does.
"""

from __future__ import annotations

import numpy as np
from keras import layers, ops, saving

from caffe2keras.layers.common import PACKAGE, check_data_format


@saving.register_keras_serializable(package=PACKAGE)
class Proposal(layers.Layer):
    """Region proposals from an RPN, as py-faster-rcnn's ProposalLayer and OpenCV's Proposal compute them.

    Inputs ``[scores, deltas, im_info]``: the RPN's class probabilities ``(N, 2A, H, W)``
    (background for the A anchors, then foreground), its box deltas ``(N, 4A, H, W)``
    (``dx, dy, dw, dh`` per anchor) and ``im_info (N, 3)``: image height, width and
    scale. Only image 0 is read, as both implementations require a batch of one.

    Anchor ``a`` at cell ``(h, w)`` is ``anchors[a]`` shifted by ``feat_stride * (w, h)``;
    proposals are ordered by ``(h, w, a)``. Each is decoded around its anchor's centre
    (sizes counted ``x2 - x1 + 1``), clipped to ``[0, width - 1] x [0, height - 1]``,
    dropped when a side (``x2 - x1 + 1``) is below ``min_size * im_info[2]``, then the
    ``pre_nms_topn`` best go through greedy NMS (a box is suppressed when its overlap with
    a kept one exceeds ``nms_threshold``; areas count ``+ 1``) and the first
    ``post_nms_topn`` kept are returned.

    Outputs ``rois (post_nms_topn, 5)``, rows ``(0, x1, y1, x2, y2)``, and, with
    ``score_output``, their scores ``(post_nms_topn, 1)``; rows past the kept proposals
    are zeros.

    Args:
        anchors: the ``(A, 4)`` anchors of cell ``(0, 0)``.
        feat_stride: image pixels per feature-map cell.
        pre_nms_topn: how many of the best proposals NMS considers (0: all).
        post_nms_topn: how many rows the output has.
        nms_threshold: the overlap above which NMS suppresses a box.
        min_size: the smallest side kept, in pixels of the unscaled image (0: keep all).
        floor_image_size: truncate im_info's height and width to integers first (OpenCV).
        score_output: also return the scores.
        data_format: of ``scores`` and ``deltas``.
    """

    def __init__(
        self,
        anchors,
        feat_stride=16,
        pre_nms_topn=6000,
        post_nms_topn=300,
        nms_threshold=0.7,
        min_size=0.0,
        floor_image_size=False,
        score_output=False,
        data_format="channels_last",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.anchors = [[float(v) for v in box] for box in anchors]
        if not self.anchors or any(len(box) != 4 for box in self.anchors):
            raise ValueError(f"anchors must be a non-empty list of (x1, y1, x2, y2). Received: anchors={anchors}")
        self.feat_stride = float(feat_stride)
        self.pre_nms_topn = int(pre_nms_topn)
        self.post_nms_topn = int(post_nms_topn)
        if self.post_nms_topn < 1 or self.pre_nms_topn < 0:
            raise ValueError(
                "post_nms_topn must be positive and pre_nms_topn not negative. "
                f"Received: pre_nms_topn={pre_nms_topn}, post_nms_topn={post_nms_topn}"
            )
        self.nms_threshold = float(nms_threshold)
        self.min_size = float(min_size)
        self.floor_image_size = bool(floor_image_size)
        self.score_output = bool(score_output)
        self.data_format = check_data_format(data_format)

    def compute_output_shape(self, input_shape):
        rois = (self.post_nms_topn, 5)
        return [rois, (self.post_nms_topn, 1)] if self.score_output else rois

    def call(self, inputs):
        scores, deltas, im_info = inputs
        if self.data_format == "channels_first":
            scores, deltas = (ops.transpose(x, (0, 2, 3, 1)) for x in (scores, deltas))
        count = len(self.anchors)
        height, width = ops.shape(scores)[1], ops.shape(scores)[2]
        # (h, w, a) order: the foreground half of the channels, and four deltas per anchor.
        foreground = ops.reshape(scores[0, :, :, count:], (-1,))
        deltas = ops.reshape(deltas[0], (-1, 4))
        boxes = self._decode(self._shifted_anchors(height, width), deltas)
        info = ops.reshape(ops.cast(im_info, "float32"), (ops.shape(im_info)[0], -1))[0]
        image_h, image_w = (ops.floor(info[0]), ops.floor(info[1])) if self.floor_image_size else (info[0], info[1])
        limits = ops.stack([image_w - 1.0, image_h - 1.0, image_w - 1.0, image_h - 1.0])
        boxes = ops.maximum(ops.minimum(boxes, limits[None, :]), 0.0)
        valid = ops.ones_like(foreground, dtype="bool")
        if self.min_size > 0:
            smallest = self.min_size * info[2]
            sides = boxes[:, 2:] - boxes[:, :2] + 1.0
            valid = ops.logical_and(sides[:, 0] >= smallest, sides[:, 1] >= smallest)
        # Dropped boxes sort last, so the best pre_nms_topn are the best of those kept.
        ranked = ops.where(valid, foreground, float("-inf"))
        order = ops.argsort(-ranked)
        if self.pre_nms_topn:
            order = order[: self.pre_nms_topn]
        boxes, foreground, valid = (ops.take(x, order, axis=0) for x in (boxes, foreground, valid))
        kept = ops.logical_and(valid, ops.logical_not(self._suppressed(boxes, valid)))
        # The first post_nms_topn kept boxes, in score order, then zero rows.
        positions = ops.arange(ops.shape(kept)[0])
        first = ops.argsort(ops.where(kept, positions, positions + ops.shape(kept)[0]))[: self.post_nms_topn]
        taken = ops.take(kept, first, axis=0)[:, None]
        rois = ops.where(taken, ops.take(boxes, first, axis=0), 0.0)
        selected_scores = ops.where(taken, ops.take(foreground, first, axis=0)[:, None], 0.0)
        rows = ops.shape(rois)[0]
        padding = [[0, self.post_nms_topn - rows], [0, 0]]
        rois = ops.pad(ops.concatenate([ops.zeros_like(rois[:, :1]), rois], axis=1), padding)
        if self.score_output:
            return [rois, ops.pad(selected_scores, padding)]
        return rois

    def _shifted_anchors(self, height, width):
        anchors = ops.convert_to_tensor(np.asarray(self.anchors, np.float32))
        xs = ops.cast(ops.arange(width), "float32") * self.feat_stride
        ys = ops.cast(ops.arange(height), "float32") * self.feat_stride
        shift_y, shift_x = ops.meshgrid(ys, xs, indexing="ij")
        shifts = ops.stack([shift_x, shift_y, shift_x, shift_y], axis=-1)  # (H, W, 4)
        return ops.reshape(shifts[:, :, None, :] + anchors[None, None], (-1, 4))

    @staticmethod
    def _decode(anchors, deltas):
        """py-faster-rcnn's bbox_transform_inv (OpenCV's CENTER_SIZE decoding of unnormalized boxes)."""
        sizes = anchors[:, 2:] - anchors[:, :2] + 1.0
        centres = anchors[:, :2] + 0.5 * sizes
        new_centres = deltas[:, :2] * sizes + centres
        new_sizes = ops.exp(deltas[:, 2:]) * sizes
        return ops.concatenate([new_centres - 0.5 * new_sizes, new_centres + 0.5 * new_sizes], axis=1)

    def _suppressed(self, boxes, valid):
        """Greedy NMS over boxes in score order: which ones a better kept box suppresses."""
        areas = (boxes[:, 2] - boxes[:, 0] + 1.0) * (boxes[:, 3] - boxes[:, 1] + 1.0)
        positions = ops.arange(ops.shape(boxes)[0])

        def visit(i, suppressed):
            box = boxes[i]
            inter_w = ops.maximum(ops.minimum(box[2], boxes[:, 2]) - ops.maximum(box[0], boxes[:, 0]) + 1.0, 0.0)
            inter_h = ops.maximum(ops.minimum(box[3], boxes[:, 3]) - ops.maximum(box[1], boxes[:, 1]) + 1.0, 0.0)
            inter = inter_w * inter_h
            overlap = inter / (areas[i] + areas - inter)
            active = ops.logical_and(valid[i], ops.logical_not(suppressed[i]))
            hit = ops.logical_and(overlap > self.nms_threshold, positions > i)
            return ops.logical_or(suppressed, ops.logical_and(active, hit))

        return ops.fori_loop(0, ops.shape(boxes)[0], visit, ops.zeros_like(valid))

    def get_config(self):
        config = super().get_config()
        config.update(
            anchors=self.anchors,
            feat_stride=self.feat_stride,
            pre_nms_topn=self.pre_nms_topn,
            post_nms_topn=self.post_nms_topn,
            nms_threshold=self.nms_threshold,
            min_size=self.min_size,
            floor_image_size=self.floor_image_size,
            score_output=self.score_output,
            data_format=self.data_format,
        )
        return config
