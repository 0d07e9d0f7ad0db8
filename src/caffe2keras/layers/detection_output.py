"""SSD's DetectionOutput (weiliu89/caffe): decode, per-class NMS and keep_top_k.

It computes what the SSD fork's CPU code computes, in the same float32 operations and
order, so that scores, boxes and every NMS decision agree. It keeps Keras' static shapes:
each image gets a fixed number of rows, its detections first (in Caffe's order), then
padding rows of -1.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops, saving

from caffe2keras.layers.common import PACKAGE, check_data_format
from caffe2keras.ssd_boxes import detection_rows, foreground_classes, nms_candidates

LOWEST_FLOAT32 = float(np.finfo(np.float32).min)  # Caffe's -FLT_MAX: "no confidence threshold"
CODE_TYPES = ("corner", "center_size", "corner_size")


def _count(mask):
    return ops.sum(ops.cast(mask, "int32"), axis=-1, keepdims=True)


def _stable_top_k(values, k: int):
    """Indices of the ``k`` largest values on the last axis, descending; equal values by
    index, as Caffe's ``std::stable_sort`` orders them.

    ``keras.ops.top_k`` leaves the order of equal values open. JAX's and TensorFlow's
    top_k document lower index first; Keras' PyTorch argsort is a stable sort.
    """
    backend = keras.backend.backend()
    if backend in ("jax", "tensorflow"):
        return ops.top_k(values, k)[1]
    if backend == "torch":
        return ops.argsort(-values, axis=-1)[..., :k]
    raise NotImplementedError(
        f"DetectionOutput needs the jax, tensorflow or torch backend for Caffe's order of "
        f"equal scores. Received: backend={backend!r}"
    )


def _jaccard(candidate, others, normalized: bool):
    """Caffe's JaccardOverlap of a candidate box with each of ``others`` (tuples of
    xmin, ymin, xmax, ymax, size), in float32; pixel boxes (``normalized`` false) count
    their last row and column, so boxes that touch overlap."""
    xmin1, ymin1, xmax1, ymax1, size1 = candidate
    xmin2, ymin2, xmax2, ymax2, size2 = others
    width = ops.minimum(xmax1, xmax2) - ops.maximum(xmin1, xmin2)
    height = ops.minimum(ymax1, ymax2) - ops.maximum(ymin1, ymin2)
    if normalized:
        disjoint = (xmin2 > xmax1) | (xmax2 < xmin1) | (ymin2 > ymax1) | (ymax2 < ymin1)
        overlapping = ~disjoint & (width > 0) & (height > 0)
        intersection = width * height
    else:
        overlapping = (width >= 0) & (height >= 0)
        intersection = (width + 1) * (height + 1)
    union = size1 + size2 - intersection
    return ops.where(overlapping, intersection / ops.where(overlapping, union, 1.0), 0.0)


def _box_size(xmin, ymin, xmax, ymax, normalized: bool):
    """Caffe's BBoxSize: 0 when xmax < xmin or ymax < ymin; a pixel box (``normalized``
    false) counts its last row and column."""
    invalid = (xmax < xmin) | (ymax < ymin)
    pad = 0.0 if normalized else 1.0
    return ops.where(invalid, 0.0, (xmax - xmin + pad) * (ymax - ymin + pad))


def _nms(boxes, valid, threshold: float, eta: float, normalized: bool):
    """Caffe's ApplyNMSFast over candidates sorted by score (last axis).

    A candidate is kept when its overlap with every box kept before it is at most the
    threshold; with ``eta < 1`` the threshold, while above 0.5, shrinks by ``eta`` after
    each kept box.
    """
    count = valid.shape[-1]
    position = ops.arange(count, dtype="int32")

    def step(i, state):
        keep, limit = state
        candidate = tuple(ops.take(b, i, axis=-1)[..., None] for b in boxes)
        overlap = _jaccard(candidate, boxes, normalized)
        blocked = ops.any(keep & ~(overlap <= limit[..., None]), axis=-1)
        kept = ops.take(valid, i, axis=-1) & ~blocked
        keep = ops.where(position == i, kept[..., None], keep)
        if eta < 1:
            limit = ops.where(kept & (limit > 0.5), limit * eta, limit)
        return keep, limit

    start = (ops.zeros_like(valid), ops.zeros_like(boxes[0][..., 0]) + threshold)
    return ops.fori_loop(0, count, step, start)[0]


@saving.register_keras_serializable(package=PACKAGE)
class DetectionOutput(layers.Layer):
    """SSD's DetectionOutput: decode boxes, per-class NMS, keep the best per image.

    Called on ``[loc, conf, priors]``: ``loc`` ``(N, num_priors * num_loc_classes * 4)``,
    ``conf`` ``(N, num_priors * num_classes)`` (trailing axes of size 1 allowed), ``priors``
    as :class:`PriorBox` gives them (batch 1 serves every image). Every step is Caffe's CPU
    code: scores must exceed
    ``confidence_threshold``; per class the ``top_k`` best (a stable sort: equal scores by
    prior index) go through greedy NMS (``nms_threshold``, adaptive ``eta``); then, if an
    image has more than ``keep_top_k``, the best ``keep_top_k`` are kept.

    Output: Caffe's rows ``[image_id, label, score, xmin, ymin, xmax, ymax]`` with the
    static shape ``(N, 1, rows, 7)`` (``channels_last``: ``(N, rows, 7, 1)``), ``rows`` =
    :func:`detection_rows`. Image ``i``'s detections come first in Caffe's order (label
    ascending, then score descending), then padding rows of -1. Where Caffe's blob would
    be empty (no detection in the whole batch) it holds ``[i, -1, -1, -1, -1, -1, -1]``
    per image, and so does row 0 of each image here. Caffe's blob is therefore the rows
    with ``image_id >= 0``, in order. Scores that tie at the ``keep_top_k`` cut are kept
    by label, then NMS order (Caffe's unstable sort leaves this open). With
    ``share_location`` and ``background_label_id=-1`` every class is foreground, as in
    Caffe's GPU code (its CPU code skips decoding the shared boxes and aborts).

    Args:
        num_classes: classes per prior in ``conf``.
        share_location: one box per prior for all classes (else one per class).
        background_label_id: the class never reported (-1: none).
        code_type: ``"corner"``, ``"center_size"`` or ``"corner_size"``.
        variance_encoded_in_target: the predictions already include the variances.
        keep_top_k: detections kept per image (-1: all).
        confidence_threshold: scores must exceed it (None: every score counts).
        nms_threshold, top_k, eta: NMS overlap limit, candidates per class (-1: all),
            adaptive factor.
        clip: clip the decoded boxes to [0, 1] before NMS (OpenCV's ``clip``).
        normalized_bbox: boxes in [0, 1] (else in pixels, OpenCV's ``normalized_bbox: false``:
            a box's width and height count its last pixel, ``xmax - xmin + 1``).
        data_format: ``"channels_last"`` or ``"channels_first"`` (the priors' and output's layout).
    """

    def __init__(
        self,
        num_classes,
        share_location=True,
        background_label_id=0,
        code_type="corner",
        variance_encoded_in_target=False,
        keep_top_k=-1,
        confidence_threshold=None,
        nms_threshold=0.3,
        top_k=-1,
        eta=1.0,
        clip=False,
        normalized_bbox=True,
        data_format="channels_last",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if code_type not in CODE_TYPES:
            raise ValueError(f"code_type must be one of {CODE_TYPES}. Received: code_type={code_type!r}")
        if not normalized_bbox and (code_type == "corner_size" or clip):
            raise ValueError(
                "pixel boxes (normalized_bbox=False) take code_type 'corner' or 'center_size' and no clip. "
                f"Received: code_type={code_type!r}, clip={clip}"
            )
        if not 0 < float(eta) <= 1:
            raise ValueError(f"eta must be in (0, 1]. Received: eta={eta}")
        self.num_classes = int(num_classes)
        self.share_location = bool(share_location)
        self.background_label_id = int(background_label_id)
        self.code_type = code_type
        self.variance_encoded_in_target = bool(variance_encoded_in_target)
        self.keep_top_k = int(keep_top_k)
        self.confidence_threshold = None if confidence_threshold is None else float(confidence_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self.eta = float(eta)
        self.clip = bool(clip)
        self.normalized_bbox = bool(normalized_bbox)
        self.data_format = check_data_format(data_format)
        self.classes = foreground_classes(self.num_classes, self.background_label_id)

    def _num_priors(self, priors_shape) -> int | None:
        length = priors_shape[1] if self.data_format == "channels_last" else priors_shape[2]
        return None if length is None else int(length) // 4

    def max_detections(self, num_priors: int) -> int:
        """Rows per image (see :func:`detection_rows`)."""
        return detection_rows(self.num_classes, self.background_label_id, self.top_k, self.keep_top_k, num_priors)

    def build(self, input_shape):
        loc_shape, conf_shape, priors_shape = input_shape
        num_priors = self._num_priors(priors_shape)
        if num_priors is None:
            return  # free sizes: checked by the reshapes when the model runs
        loc_classes = 1 if self.share_location else self.num_classes
        for name, shape, per_prior in (("loc", loc_shape, loc_classes * 4), ("conf", conf_shape, self.num_classes)):
            if math.prod(shape[1:]) != num_priors * per_prior:
                raise ValueError(
                    f"{name} must hold {per_prior} values for each of the {num_priors} priors. "
                    f"Received: {name}_shape={tuple(shape)}"
                )
        if num_priors * num_priors * 2 >= 2**31:
            raise ValueError(
                f"DetectionOutput sorts with int32 keys and supports up to 32767 priors. "
                f"Received: num_priors={num_priors}"
            )

    def _decode(self, loc, priors):
        """Caffe's DecodeBBox, in its float32 operation order; returns xmin, ymin, xmax, ymax."""
        pxmin, pymin, pxmax, pymax = (priors[:, 0, :, i][:, :, None] for i in range(4))
        if self.variance_encoded_in_target:
            v = [1.0] * 4
            scaled = [loc[..., i] for i in range(4)]
        else:
            v = [priors[:, 1, :, i][:, :, None] for i in range(4)]
            scaled = [v[i] * loc[..., i] for i in range(4)]
        if self.code_type == "corner":
            return pxmin + scaled[0], pymin + scaled[1], pxmax + scaled[2], pymax + scaled[3]
        width = pxmax - pxmin
        height = pymax - pymin
        if self.code_type == "corner_size":
            return (
                pxmin + scaled[0] * width,
                pymin + scaled[1] * height,
                pxmax + scaled[2] * width,
                pymax + scaled[3] * height,
            )
        if self.normalized_bbox:
            center_x = scaled[0] * width + (pxmin + pxmax) * 0.5
            center_y = scaled[1] * height + (pymin + pymax) * 0.5
        else:  # OpenCV's DecodeBBox: the prior's last pixel counts, so its center is half a pixel on
            width, height = width + 1.0, height + 1.0
            center_x = scaled[0] * width + (pxmin + width * 0.5)
            center_y = scaled[1] * height + (pymin + height * 0.5)
        half_w = ops.exp(scaled[2]) * width * 0.5
        half_h = ops.exp(scaled[3]) * height * 0.5
        return center_x - half_w, center_y - half_h, center_x + half_w, center_y + half_h

    def call(self, inputs):
        loc, conf, priors = inputs
        num_priors = self._num_priors(priors.shape)
        loc_classes = 1 if self.share_location else self.num_classes
        if self.data_format == "channels_last":
            priors = ops.transpose(priors, (0, 2, 1))
        priors = ops.reshape(priors, (-1, priors.shape[1], num_priors, 4))
        loc = ops.reshape(loc, (-1, num_priors, loc_classes, 4))
        conf = ops.reshape(conf, (-1, num_priors, self.num_classes))
        image_id = ops.cast(ops.arange(ops.shape(conf)[0]), conf.dtype)[:, None]
        rows = self.max_detections(num_priors)
        classes = self.classes
        candidates = nms_candidates(self.top_k, num_priors)
        if not classes or candidates == 0:
            return self._rows(image_id, ops.zeros_like(image_id, dtype="int32"), [], rows)

        # (N, classes, priors) per coordinate: each foreground class with its location class.
        decoded = self._decode(loc, priors)
        if self.clip:
            decoded = [ops.clip(c, 0.0, 1.0) for c in decoded]
        loc_index = [0] * len(classes) if self.share_location else classes
        coords = [ops.transpose(ops.take(c, loc_index, axis=2), (0, 2, 1)) for c in decoded]
        coords.append(_box_size(*coords, self.normalized_bbox))
        scores = ops.transpose(ops.take(conf, classes, axis=2), (0, 2, 1))

        threshold = LOWEST_FLOAT32 if self.confidence_threshold is None else self.confidence_threshold
        valid = scores > threshold
        order = _stable_top_k(ops.where(valid, scores, -np.inf), candidates)
        filled = ops.arange(candidates, dtype="int32") < _count(valid)
        boxes = [ops.take_along_axis(c, order, axis=-1) for c in coords]
        ranked_scores = ops.take_along_axis(scores, order, axis=-1)
        keep = _nms(boxes, filled, self.nms_threshold, self.eta, self.normalized_bbox)

        # Flattened (class, rank) is Caffe's output order: label, then score. keep_top_k takes the
        # best scores (equal ones by that order); the chosen then go out in that order.
        flat = (-1, len(classes) * candidates)
        keep = ops.reshape(keep, flat)
        flat_scores = ops.reshape(ranked_scores, flat)
        best = _stable_top_k(ops.where(keep, flat_scores, -np.inf), rows)
        position = ops.arange(rows, dtype="int32")
        count = ops.minimum(_count(keep), rows if self.keep_top_k < 0 else min(self.keep_top_k, rows))
        first = -ops.top_k(-ops.where(position < count, best, flat[1] + position), rows)[0]  # ascending, no ties
        first = ops.minimum(first, flat[1] - 1)  # padding rows gather something; _rows masks them
        labels = np.repeat(np.asarray(classes, np.float32), candidates)
        columns = [ops.take(ops.convert_to_tensor(labels), first), ops.take_along_axis(flat_scores, first, axis=-1)]
        columns += [ops.take_along_axis(ops.reshape(b, flat), first, axis=-1) for b in boxes[:4]]
        return self._rows(image_id, count, columns, rows)

    def _rows(self, image_id, count, columns, rows):
        """Stack the output; ``count`` valid rows per image, padding of -1, Caffe's empty-batch rows."""
        row = ops.arange(rows, dtype="int32")[None, :]
        filled = row < count
        batch_empty = ops.sum(count) == 0
        image_column = ops.where(filled | (batch_empty & (row == 0)), image_id, -1.0)
        values = [ops.where(filled, c, -1.0) for c in columns] or [-ops.ones_like(image_column)] * 6
        output = ops.stack([image_column, *values], axis=-1)[:, None]
        return ops.reshape(output, (-1, rows, 7, 1)) if self.data_format == "channels_last" else output

    def compute_output_shape(self, input_shape):
        rows = self.max_detections(self._num_priors(input_shape[2]))
        batch = input_shape[0][0]
        return (batch, rows, 7, 1) if self.data_format == "channels_last" else (batch, 1, rows, 7)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            share_location=self.share_location,
            background_label_id=self.background_label_id,
            code_type=self.code_type,
            variance_encoded_in_target=self.variance_encoded_in_target,
            keep_top_k=self.keep_top_k,
            confidence_threshold=self.confidence_threshold,
            nms_threshold=self.nms_threshold,
            top_k=self.top_k,
            eta=self.eta,
            clip=self.clip,
            normalized_bbox=self.normalized_bbox,
            data_format=self.data_format,
        )
        return config
