"""Class labels: reading a labels file, top-k decoding, and the labels a model carries.

A labels file is UTF-8 text of at most :data:`MAX_LABELS_BYTES`, with one label per line, in
class order, each line ended by ``\n`` or ``\r\n``. Each line is kept whole (a
``synset_words.txt`` line stays ``n01440764 tench, Tinca tinca``: the WordNet id is part of the
name users search for); trailing blank lines are dropped. Control characters (but tabs) are
refused: a form feed or a vertical tab would make a label count differ between readers, and an
escape sequence would reach the terminal the labels are printed on.

A converted model carries its labels in its preprocessing step (the ``labels`` of its
``CaffePreprocessing`` layer), so they travel inside the ``.keras`` file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from caffe2keras.caffe.limits import MIB, checked_input_file
from caffe2keras.caffe.prototxt import read_text
from caffe2keras.errors import ModelFileError, PreprocessingError

Labels = str | os.PathLike | Sequence[str]
# 21,841 ImageNet synsets take 0.7 MB; labels are held several times over while they are used.
MAX_LABELS_BYTES = 16 * MIB
_NOT_IN_A_LABEL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
FORMAT = "a labels file has one label per line, ended by \\n or \\r\\n, and no control characters"


def read_label_lines(path: str | os.PathLike) -> list[str]:
    """A labels file's lines as they are, after the format's checks (see the module's docstring)."""
    checked_input_file(path, "labels file", MAX_LABELS_BYTES)
    lines = read_text(path, f"{FORMAT}.").removeprefix("\ufeff").split("\n")  # a byte-order mark is no label
    lines = [line.removesuffix("\r") for line in lines]
    if lines and not lines[-1]:
        lines.pop()  # the newline that ends the last line
    for number, line in enumerate(lines, 1):
        bad = _NOT_IN_A_LABEL.search(line)
        if bad is not None:
            character = bad.group().encode("unicode_escape").decode("ascii")
            raise ModelFileError(path, f"line {number} holds the control character {character}; {FORMAT}.")
    return lines


def read_labels(labels: Labels) -> list[str]:
    """A labels file's lines (or a sequence of labels, as given)."""
    if not isinstance(labels, (str, os.PathLike)):
        return [str(label) for label in labels]
    lines = read_label_lines(labels)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ModelFileError(labels, "the labels file is empty; it needs one label per line.")
    return [line.strip() for line in lines]


def model_labels(model) -> list[str] | None:
    """The labels a converted model carries (``convert(..., labels=...)``), or None."""
    from caffe2keras.layers.preprocessing import CaffePreprocessing

    for layer in model.layers:
        if isinstance(layer, CaffePreprocessing) and layer.labels is not None:
            return list(layer.labels)
    return None


def check_label_count(labels: Sequence[str], classes: int, output: str) -> None:
    if len(labels) != classes:
        raise PreprocessingError(
            f"there are {len(labels)} labels, but output {output!r} has {classes} values per image; "
            f"give one label per class, in class order. Received: labels={len(labels)}"
        )


def decode_predictions(
    preds, labels: Labels | None = None, top: int = 5, *, model=None
) -> list[list[tuple[int, str, float]]]:
    """The ``top`` classes of each prediction, most probable first.

    Args:
        preds: the model's output, ``(N, classes)``, or ``(N, ...)`` with one value per class
            (a 4-D ``prob`` of ``(N, 1, 1, classes)`` included).
        labels: a labels file, a sequence of labels, or None: the labels ``model`` carries,
            else the class numbers.
        top: how many classes per image.
        model: the Keras model that gave ``preds``: its labels (``convert(..., labels=...)``)
            are used when ``labels`` is None, and errors name its output.

    Returns:
        For each image, ``[(class index, label, probability), ...]``; equal scores keep class order.
    """
    scores = np.asarray(preds, dtype=np.float64)
    scores = scores.reshape(len(scores), -1) if scores.ndim > 1 else scores.reshape(1, -1)
    classes = scores.shape[1]
    if labels is None and model is not None:
        labels = model_labels(model)
    names = read_labels(labels) if labels is not None else [str(i) for i in range(classes)]
    output = "preds" if model is None or len(model.outputs) != 1 else model.output_names[0]
    check_label_count(names, classes, output)
    if top < 1:
        raise PreprocessingError(f"top must be at least 1. Received: top={top}")
    decoded = []
    for row in scores:
        best = np.argsort(-row, kind="stable")[:top]
        decoded.append([(int(i), names[i], float(row[i])) for i in best])
    return decoded
