"""SSD's prior boxes (weiliu89/caffe's PriorBox CPU code) in numpy: shared by the Keras layer and
the ONNX writer, which writes them as a constant."""

from __future__ import annotations

import math

import numpy as np

# Real nets give a handful; the bound keeps a hostile config from taking minutes (the list is
# deduplicated pairwise, as SSD does).
MAX_SIZES = 1024


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


def foreground_classes(num_classes: int, background_label_id: int) -> list[int]:
    return [c for c in range(num_classes) if c != background_label_id]


def nms_candidates(top_k: int, num_priors: int) -> int:
    """Candidates per class that enter NMS (``top_k`` -1: all)."""
    return num_priors if top_k < 0 else min(top_k, num_priors)


def detection_rows(
    num_classes: int, background_label_id: int, top_k: int, keep_top_k: int, num_priors: int | None
) -> int | None:
    """DetectionOutput's rows per image: ``keep_top_k``, or fewer when the net cannot
    produce that many (classes x NMS candidates); at least 1, for Caffe's "none found" row.
    None when the number of priors is free (known when the model runs)."""
    if num_priors is None:
        return None
    most = len(foreground_classes(num_classes, background_label_id)) * nms_candidates(top_k, num_priors)
    return max(1, most if keep_top_k < 0 else min(keep_top_k, most))
