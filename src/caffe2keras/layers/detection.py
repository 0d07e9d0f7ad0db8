"""SSD's detection layers (weiliu89/caffe): Normalize, PriorBox and DetectionOutput.

Each computes what the SSD fork's CPU code computes, in the same float32
operations and order, so that scores, boxes and every NMS decision agree.
DetectionOutput keeps Keras' static shapes: each image gets a fixed number of
rows, its detections first (in Caffe's order), then padding rows of -1.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import initializers, layers, ops, saving

from caffe2keras.layers.common import PACKAGE, channel_axis, check_data_format, spatial_axes

LOWEST_FLOAT32 = float(np.finfo(np.float32).min)  # Caffe's -FLT_MAX: "no confidence threshold"
CODE_TYPES = ("corner", "center_size", "corner_size")


@saving.register_keras_serializable(package=PACKAGE)
class Normalize(layers.Layer):
    """L2 normalization with a learned scale, as SSD's Normalize computes it.

    ``across_spatial``: ``y = x / sqrt(sum(x^2 over C, H, W) + eps)``, one norm per image;
    otherwise ``y = x / sqrt(sum(x^2 over C) + eps)``, one norm per position. Then
    ``y *= scale``: one value (``channel_shared``) or one per channel. ``eps`` is
    added under the root, as Caffe does.

    Args:
        across_spatial: one norm per image (True) or per position (False).
        channel_shared: one learned scale for all channels (a scalar variable).
        eps: added to the sum of squares.
        data_format: ``"channels_last"`` or ``"channels_first"``.
        scale_initializer: the scale's initializer (SSD's default: ones).
    """

    def __init__(
        self,
        across_spatial=True,
        channel_shared=True,
        eps=1e-10,
        data_format="channels_last",
        scale_initializer="ones",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.across_spatial = bool(across_spatial)
        self.channel_shared = bool(channel_shared)
        self.eps = float(eps)
        self.data_format = check_data_format(data_format)
        self.scale_initializer = initializers.get(scale_initializer)

    def build(self, input_shape):
        rank = len(input_shape)
        if rank < 2:
            raise ValueError(f"Normalize needs inputs of rank 2 or more. Received: input_shape={input_shape}")
        channels = input_shape[channel_axis(rank, self.data_format)]
        shape = () if self.channel_shared else (channels,)
        self.scale = self.add_weight(name="scale", shape=shape, initializer=self.scale_initializer)

    def call(self, inputs):
        rank = len(inputs.shape)
        axis = channel_axis(rank, self.data_format)
        squares = ops.square(inputs)
        if self.across_spatial:
            norm = ops.sqrt(ops.sum(squares, axis=tuple(range(1, rank)), keepdims=True) + self.eps)
            y = inputs * (1.0 / norm)  # Caffe scales by the reciprocal here, and divides per position
        else:
            y = inputs / ops.sqrt(ops.sum(squares, axis=axis, keepdims=True) + self.eps)
        if self.channel_shared:
            return y * self.scale
        shape = [1] * rank
        shape[axis] = -1
        return y * ops.reshape(self.scale, shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            across_spatial=self.across_spatial,
            channel_shared=self.channel_shared,
            eps=self.eps,
            data_format=self.data_format,
            scale_initializer=initializers.serialize(self.scale_initializer),
        )
        return config


def prior_aspect_ratios(aspect_ratios, flip: bool) -> list[float]:
    """SSD's list: 1 first, then each new ratio (within 1e-6), and 1/ratio after it if ``flip``."""
    ratios = [1.0]
    for ratio in (float(np.float32(r)) for r in aspect_ratios):
        if any(abs(ratio - known) < 1e-6 for known in ratios):
            continue
        ratios.append(ratio)
        if flip:
            ratios.append(float(np.float32(1.0 / ratio)))  # stored in a float vector
    return ratios


def prior_box_sizes(min_sizes, max_sizes, aspect_ratios, flip: bool) -> list[tuple[float, float]]:
    """(width, height) of each prior of a cell, in Caffe's order.

    Caffe reads each size into an ``int`` (so 60.7 counts as 60), then per min size emits
    the square box, the sqrt(min * max) box, and one box per aspect ratio other than 1.
    """
    sizes = []
    for index, min_float in enumerate(min_sizes):
        min_size = int(min_float)
        sizes.append((float(min_size), float(min_size)))
        if max_sizes:
            side = float(np.float32(math.sqrt(min_size * int(max_sizes[index]))))
            sizes.append((side, side))
        for ratio in prior_aspect_ratios(aspect_ratios, flip):
            if abs(ratio - 1.0) < 1e-6:
                continue
            root = math.sqrt(ratio)
            sizes.append((float(np.float32(min_size * root)), float(np.float32(min_size / root))))
    return sizes


def prior_boxes(feature_size, image_size, step, sizes, offset: float, clip: bool, variances) -> np.ndarray:
    """SSD's PriorBox blob without the batch axis: ``(2, H * W * len(sizes) * 4)``.

    Row 0 holds ``[xmin, ymin, xmax, ymax]`` per cell and prior, normalized by the image
    size; row 1 the variances. Centres are float32 as in Caffe; the corners are computed
    in double and stored as float32, as Caffe's ``(center - size / 2.) / image`` does.
    """
    height, width = feature_size
    image_h, image_w = image_size
    step_h, step_w = (
        step
        if step is not None
        else (np.float32(image_h) / np.float32(height), np.float32(image_w) / np.float32(width))
    )
    center_y = ((np.arange(height, dtype=np.float32) + np.float32(offset)) * np.float32(step_h)).astype(np.float64)
    center_x = ((np.arange(width, dtype=np.float32) + np.float32(offset)) * np.float32(step_w)).astype(np.float64)
    box_w = np.array([w for w, _ in sizes], np.float64)
    box_h = np.array([h for _, h in sizes], np.float64)
    cx = center_x[None, :, None]
    cy = center_y[:, None, None]
    corners = np.stack(
        np.broadcast_arrays(
            (cx - box_w / 2.0) / image_w,
            (cy - box_h / 2.0) / image_h,
            (cx + box_w / 2.0) / image_w,
            (cy + box_h / 2.0) / image_h,
        ),
        axis=-1,
    ).astype(np.float32)
    if clip:
        corners = np.clip(corners, 0.0, 1.0)
    variance = np.resize(np.asarray(variances, np.float32), 4)  # one value repeats; four are per coordinate
    return np.stack([corners.reshape(-1), np.tile(variance, corners.size // 4)])


@saving.register_keras_serializable(package=PACKAGE)
class PriorBox(layers.Layer):
    """SSD's prior (default) boxes of a feature map: a constant of the input shapes.

    Called on ``[feature_map, image]`` (4-D); only their static spatial sizes are used.
    The output has Caffe's shape ``(1, 2, H * W * num_priors * 4)`` per image: row 0 the
    normalized ``[xmin, ymin, xmax, ymax]`` of every prior, row 1 their variances
    (``channels_last``: the last two axes swapped). Caffe's blob has batch 1; here it is
    repeated for every image of the batch.

    Args:
        min_sizes, max_sizes: box sizes in pixels (truncated to integers, as Caffe does);
            ``max_sizes`` empty or one per min size.
        aspect_ratios: extra ratios (``flip`` adds their inverses); ratio 1 is implied.
        clip: clip the corners to [0, 1].
        variances: one value, or four (per coordinate).
        image_size: ``(height, width)`` in pixels; None: the image input's size.
        step: ``(step_h, step_w)`` between cell centres in pixels; None: image size / feature size.
        offset: the centre's offset inside a cell, in cells.
        data_format: ``"channels_last"`` or ``"channels_first"``.
    """

    def __init__(
        self,
        min_sizes,
        max_sizes=(),
        aspect_ratios=(),
        flip=True,
        clip=False,
        variances=(0.1,),
        image_size=None,
        step=None,
        offset=0.5,
        data_format="channels_last",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.min_sizes = tuple(float(s) for s in min_sizes)
        self.max_sizes = tuple(float(s) for s in max_sizes)
        self.aspect_ratios = tuple(float(r) for r in aspect_ratios)
        self.flip = bool(flip)
        self.clip = bool(clip)
        self.variances = tuple(float(v) for v in variances)
        self.image_size = None if image_size is None else tuple(int(s) for s in image_size)
        self.step = None if step is None else tuple(float(s) for s in step)
        self.offset = float(offset)
        self.data_format = check_data_format(data_format)
        if not self.min_sizes:
            raise ValueError("PriorBox needs at least one min size. Received: min_sizes=()")
        if self.max_sizes and len(self.max_sizes) != len(self.min_sizes):
            raise ValueError(
                f"PriorBox needs one max size per min size. Received: min_sizes={self.min_sizes}, "
                f"max_sizes={self.max_sizes}"
            )
        if len(self.variances) not in (1, 4):
            raise ValueError(f"PriorBox takes one variance or four. Received: variances={self.variances}")
        self.sizes = prior_box_sizes(self.min_sizes, self.max_sizes, self.aspect_ratios, self.flip)

    def _spatial(self, shape) -> tuple[int, int]:
        if len(shape) != 4:
            raise ValueError(f"PriorBox takes 4-D inputs. Received: input_shape={shape}")
        return tuple(int(shape[a]) for a in spatial_axes(4, self.data_format))

    def _length(self, feature_shape) -> int:
        height, width = self._spatial(feature_shape)
        return height * width * len(self.sizes) * 4

    def build(self, input_shape):
        feature_shape, image_shape = input_shape
        image_size = self.image_size or self._spatial(image_shape)
        priors = prior_boxes(
            self._spatial(feature_shape), image_size, self.step, self.sizes, self.offset, self.clip, self.variances
        )
        self.priors = priors.T.copy() if self.data_format == "channels_last" else priors

    def call(self, inputs):
        feature = inputs[0]
        priors = ops.convert_to_tensor(self.priors, dtype=self.compute_dtype)
        return ops.broadcast_to(priors, (ops.shape(feature)[0], *self.priors.shape))

    def compute_output_shape(self, input_shape):
        length = self._length(input_shape[0])
        return (input_shape[0][0], length, 2) if self.data_format == "channels_last" else (input_shape[0][0], 2, length)

    def get_config(self):
        config = super().get_config()
        config.update(
            min_sizes=self.min_sizes,
            max_sizes=self.max_sizes,
            aspect_ratios=self.aspect_ratios,
            flip=self.flip,
            clip=self.clip,
            variances=self.variances,
            image_size=self.image_size,
            step=self.step,
            offset=self.offset,
            data_format=self.data_format,
        )
        return config


def foreground_classes(num_classes: int, background_label_id: int) -> list[int]:
    return [c for c in range(num_classes) if c != background_label_id]


def nms_candidates(top_k: int, num_priors: int) -> int:
    """Candidates per class that enter NMS (``top_k`` -1: all)."""
    return num_priors if top_k < 0 else min(top_k, num_priors)


def detection_rows(num_classes: int, background_label_id: int, top_k: int, keep_top_k: int, num_priors: int) -> int:
    """DetectionOutput's rows per image: ``keep_top_k``, or fewer when the net cannot
    produce that many (classes x NMS candidates); at least 1, for Caffe's "none found" row."""
    most = len(foreground_classes(num_classes, background_label_id)) * nms_candidates(top_k, num_priors)
    return max(1, most if keep_top_k < 0 else min(keep_top_k, most))


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


def _jaccard(candidate, others):
    """Caffe's JaccardOverlap of a candidate box with each of ``others`` (tuples of
    xmin, ymin, xmax, ymax, size), in float32."""
    xmin1, ymin1, xmax1, ymax1, size1 = candidate
    xmin2, ymin2, xmax2, ymax2, size2 = others
    disjoint = (xmin2 > xmax1) | (xmax2 < xmin1) | (ymin2 > ymax1) | (ymax2 < ymin1)
    width = ops.minimum(xmax1, xmax2) - ops.maximum(xmin1, xmin2)
    height = ops.minimum(ymax1, ymax2) - ops.maximum(ymin1, ymin2)
    overlapping = ~disjoint & (width > 0) & (height > 0)
    intersection = width * height
    union = size1 + size2 - intersection
    return ops.where(overlapping, intersection / ops.where(overlapping, union, 1.0), 0.0)


def _box_size(xmin, ymin, xmax, ymax):
    """Caffe's BBoxSize of a normalized box: 0 when xmax < xmin or ymax < ymin."""
    invalid = (xmax < xmin) | (ymax < ymin)
    return ops.where(invalid, 0.0, (xmax - xmin) * (ymax - ymin))


def _nms(boxes, valid, threshold: float, eta: float):
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
        overlap = _jaccard(candidate, boxes)
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
        data_format="channels_last",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if code_type not in CODE_TYPES:
            raise ValueError(f"code_type must be one of {CODE_TYPES}. Received: code_type={code_type!r}")
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
        self.data_format = check_data_format(data_format)
        self.classes = foreground_classes(self.num_classes, self.background_label_id)

    def _num_priors(self, priors_shape) -> int:
        length = priors_shape[1] if self.data_format == "channels_last" else priors_shape[2]
        return int(length) // 4

    def max_detections(self, num_priors: int) -> int:
        """Rows per image (see :func:`detection_rows`)."""
        return detection_rows(self.num_classes, self.background_label_id, self.top_k, self.keep_top_k, num_priors)

    def build(self, input_shape):
        loc_shape, conf_shape, priors_shape = input_shape
        num_priors = self._num_priors(priors_shape)
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
        center_x = scaled[0] * width + (pxmin + pxmax) * 0.5
        center_y = scaled[1] * height + (pymin + pymax) * 0.5
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
        loc_index = [0] * len(classes) if self.share_location else classes
        coords = [ops.transpose(ops.take(c, loc_index, axis=2), (0, 2, 1)) for c in decoded]
        coords.append(_box_size(*coords))
        scores = ops.transpose(ops.take(conf, classes, axis=2), (0, 2, 1))

        threshold = LOWEST_FLOAT32 if self.confidence_threshold is None else self.confidence_threshold
        valid = scores > threshold
        order = _stable_top_k(ops.where(valid, scores, -np.inf), candidates)
        filled = ops.arange(candidates, dtype="int32") < _count(valid)
        boxes = [ops.take_along_axis(c, order, axis=-1) for c in coords]
        ranked_scores = ops.take_along_axis(scores, order, axis=-1)
        keep = _nms(boxes, filled, self.nms_threshold, self.eta)

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
            data_format=self.data_format,
        )
        return config
