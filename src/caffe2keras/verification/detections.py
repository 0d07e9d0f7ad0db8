"""SSD detections compared as rows, whatever order each runtime gives them."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from caffe2keras.graph import BlobRef
from caffe2keras.tolerance import compare
from caffe2keras.verification.report import BlobRow, Status

PathLike = str | os.PathLike
InputSpec = np.ndarray | PathLike
Inputs = InputSpec | Mapping[str, InputSpec] | None


DETECTION_TYPES = frozenset({"DetectionOutput"})


def caffe_detections(output: np.ndarray) -> np.ndarray:
    """Caffe's DetectionOutput blob as ``(n, 7)`` rows, from the converted layer's padded output:
    the rows with ``image_id >= 0``, in order (see :class:`caffe2keras.layers.DetectionOutput`)."""
    rows = np.asarray(output).reshape(-1, 7)
    return rows[rows[:, 0] >= 0]


def reference_detections(blob: np.ndarray, kind: str) -> np.ndarray:
    """A reference's detection rows in Caffe's order (image, label ascending, score descending).

    OpenCV zero-pads its blob, sorts each image's rows by score across labels, and writes
    no row where Caffe writes ``[i, -1, ...]`` per image for a batch without detections.
    """
    rows = np.asarray(blob).reshape(-1, 7)
    if kind == "opencv":
        rows = rows[np.any(rows != 0, axis=1)]
        rows = rows[np.lexsort((-rows[:, 2], rows[:, 1], rows[:, 0]))]
    return rows


def align_detections(actual: np.ndarray, reference: np.ndarray, allowed: float) -> np.ndarray:
    """``actual``'s rows paired with ``reference``'s (as many of each, both in Caffe's order).

    Rows of one image and label whose reference scores are within ``allowed`` of the next
    form a run that may come in any order: float noise between two runtimes orders them
    (and OpenCV's own sort leaves even equal scores unordered). Within a run, each
    reference row takes the closest row not taken yet.
    """
    aligned = np.empty_like(reference)
    start = 0
    while start < len(reference):
        end = start + 1
        while (
            end < len(reference)
            and np.array_equal(reference[end, :2], reference[start, :2])
            and reference[end - 1, 2] - reference[end, 2] <= allowed
        ):
            end += 1
        free = list(range(start, end))
        for i in range(start, end):
            errors = [np.abs(actual[j].astype(np.float64) - reference[i]).max() for j in free]
            aligned[i] = actual[free.pop(int(np.argmin(errors)))]
        start = end
    return aligned


def detection_row(
    ref: BlobRef, writers, actual: np.ndarray, reference: np.ndarray, kind: str, atol: float, rtol: float
) -> BlobRow:
    ours, theirs = caffe_detections(actual), reference_detections(reference, kind)
    if kind == "opencv" and not len(theirs):
        ours = ours[ours[:, 1] != -1]
    if ours.shape != theirs.shape:
        return BlobRow(
            ref.name,
            writers,
            actual.shape,
            Status.SHAPE_MISMATCH,
            note=f"{len(ours)} detections, the reference {len(theirs)}",
        )
    allowed = compare(theirs, theirs, atol, rtol).allowed
    comparison = compare(align_detections(ours, theirs, allowed), theirs, atol, rtol)
    status = Status.OK if comparison.within_tolerance else Status.DIVERGED
    return BlobRow(
        ref.name,
        writers,
        actual.shape,
        status,
        comparison,
        f"{len(theirs)} detections compared in Caffe's order (rows with image_id >= 0)",
    )
