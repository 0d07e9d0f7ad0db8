"""Verify a conversion blob by blob against a reference run of the same Caffe net.

The converted Keras model is built with every blob as an output (the same conversion as
:func:`caffe2keras.convert`) and run on the same input as the reference:

* ``"opencv"``: OpenCV 4.x's independent Caffe runtime (``cv2.dnn.readNetFromCaffe``), with
  layer fusion and Winograd convolutions turned off so each layer's output is its own;
* ``"caffe"``: pycaffe (``caffe.Net(prototxt, weights, caffe.TEST)``), when importable;
* a ``.npz`` file (or a mapping) of reference blobs keyed by Caffe blob name, in Caffe's NCHW
  layout; its input blobs are the inputs.

A blob's value is the one pycaffe shows after the whole forward pass: in-place layers
overwrite their bottom, so blob ``conv1`` of ``conv1 -> relu1 (in place)`` is ReLU's output,
and its row stands where ``relu1`` runs.

Each blob is compared under the tolerance rule of :mod:`caffe2keras.tolerance`,
``max|y - ref| <= atol + rtol * max|ref|``, the project's rule for every golden case.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from caffe2keras.api import convert, load_graph
from caffe2keras.errors import ArgumentError
from caffe2keras.graph import BlobRef, Graph
from caffe2keras.layout import Layout, check_data_format
from caffe2keras.minimum_size import check_input_sizes
from caffe2keras.tolerance import ATOL, RTOL, compare
from caffe2keras.verification.detections import DETECTION_TYPES, detection_row
from caffe2keras.verification.inputs import prepare_inputs
from caffe2keras.verification.references import open_reference
from caffe2keras.verification.report import BlobRow, Status, VerifyReport, Writer

__all__ = ["ATOL", "RTOL", "BlobRow", "Status", "VerifyReport", "blob_writers", "compare", "verify"]

PathLike = str | os.PathLike
InputSpec = np.ndarray | PathLike
Inputs = InputSpec | Mapping[str, InputSpec] | None


def blob_writers(graph: Graph) -> list[tuple[BlobRef, tuple[Writer, ...]]]:
    """Every blob's final value in network order, with the layers that wrote it.

    A blob stands where its last writer runs (after an in-place chain); inputs come first.
    """
    writers: dict[str, list[Writer]] = {}
    for op in graph.ops:
        for top in op.tops:
            writers.setdefault(top.name, []).append(Writer(op.name, op.type))
    return [(ref, tuple(writers.get(ref.name, ()))) for ref in graph.blob_order() if graph.final[ref.name] == ref]


def _keras_blobs(model, graph: Graph, arrays: Mapping[str, np.ndarray], layout: Layout) -> list[np.ndarray]:
    feed = [layout.to_keras(arrays[ref.name]) for ref in graph.inputs]
    outputs = model(feed[0] if len(feed) == 1 else feed, training=False)  # the model's own structure
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [layout.to_caffe(np.asarray(y)) for y in outputs]


# SSD's DetectionOutput writes a data-dependent number of rows; its blobs are compared as such.


def _row(ref: BlobRef, writers, actual: np.ndarray, reference, kind: str, atol: float, rtol: float) -> BlobRow:
    if isinstance(reference, str):
        return BlobRow(ref.name, writers, actual.shape, Status.NOT_COMPARED, note=reference)
    if writers and writers[-1].type in DETECTION_TYPES:
        return detection_row(ref, writers, actual, np.asarray(reference), kind, atol, rtol)
    reference = np.asarray(reference)
    note = ""
    if reference.shape != actual.shape:
        if reference.size != actual.size:
            return BlobRow(
                ref.name, writers, actual.shape, Status.SHAPE_MISMATCH, note=f"reference shape {reference.shape}"
            )
        note = f"reference shape {reference.shape} read as {actual.shape}"
        reference = reference.reshape(actual.shape)
    comparison = compare(actual, reference, atol, rtol)
    status = Status.OK if comparison.within_tolerance else Status.DIVERGED
    return BlobRow(ref.name, writers, actual.shape, status, comparison, note)


def verify(
    prototxt: PathLike,
    weights: PathLike | None,
    *,
    against: str | PathLike | Mapping[str, np.ndarray] = "opencv",
    inputs: Inputs = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    atol: float = ATOL,
    rtol: float = RTOL,
    data_format: str = "channels_last",
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Convert a Caffe net and compare every blob with a reference run on the same input.

    Args:
        prototxt, weights: the net, as for :func:`caffe2keras.convert`.
        against: ``"opencv"`` (OpenCV 4.x's Caffe runtime), ``"caffe"`` (pycaffe), the path of a
            ``.npz`` of reference blobs keyed by Caffe blob name in NCHW layout, or such a mapping.
            The input blobs of a ``.npz``/mapping are the inputs.
        inputs: an array or file for a one-input net, or ``{blob: array or file}``; arrays and
            ``.npy`` files in Caffe's NCHW layout; other files are images (see :func:`read_input`).
            Inputs not given are drawn from a standard normal distribution seeded with ``seed``.
            An input's shape replaces the prototxt's, as a reshape in pycaffe would.
        input_shapes: Caffe shapes of inputs the prototxt does not fix, as for ``convert``. With
            free sizes (None) the model is converted once for any size and run at the sizes of
            ``inputs`` (which must then be given).
        atol, rtol: a blob is within tolerance when ``max|y - ref| <= atol + rtol * max|ref|``.
        data_format: the Keras model's layout; blobs are compared in Caffe's layout.
        on_step: called with a short description as each stage starts (for progress display).

    Returns:
        A :class:`VerifyReport`: ``.rows`` (one per blob, network order), ``.ok``,
        ``.first_divergence``, ``.to_dict()``. Raises :class:`caffe2keras.Caffe2KerasError` when the
        comparison cannot be made (``VerifyError``, or the conversion's own errors).
    """
    check_data_format(data_format)
    if not (isinstance(atol, (int, float)) and isinstance(rtol, (int, float)) and atol >= 0 and rtol >= 0):
        raise ArgumentError(f"atol and rtol must be >= 0. Received: atol={atol}, rtol={rtol}")
    step = on_step or (lambda _: None)
    reference = open_reference(against, prototxt, weights)
    arrays, input_infos = prepare_inputs(prototxt, inputs, reference, input_shapes, seed)
    shapes = {name: array.shape for name, array in arrays.items()}
    graph = load_graph(prototxt, shapes)
    blobs = blob_writers(graph)
    outputs = [ref for ref, writers in blobs if writers]

    step("converting")
    # Free sizes stay free: the model is converted once, as for any size, and run at the inputs' sizes.
    free = {name: shape for name, shape in (input_shapes or {}).items() if None in tuple(shape)}
    model = convert(
        prototxt,
        weights,
        input_shapes={**shapes, **free},
        outputs=[ref.name for ref in outputs],
        data_format=data_format,
    )
    layout = Layout(data_format)
    check_input_sizes(model, {name: layout.keras_shape(array.shape) for name, array in arrays.items()})
    step("running the Keras model")
    ours = dict(zip(outputs, _keras_blobs(model, graph, arrays, layout)))
    step(f"running the reference ({reference.description})")
    theirs = reference.run(graph, arrays, outputs)

    rows = []
    for ref, writers in blobs:
        if ref in ours:
            rows.append(_row(ref, writers, ours[ref], theirs[ref.name], reference.kind, atol, rtol))
        else:
            rows.append(BlobRow(ref.name, writers, tuple(arrays[ref.name].shape), Status.INPUT))
    return VerifyReport(
        prototxt=str(prototxt),
        weights=None if weights is None else str(weights),
        reference_kind=reference.kind,
        reference=reference.description,
        data_format=data_format,
        atol=atol,
        rtol=rtol,
        inputs=input_infos,
        rows=rows,
        reference_only_blobs=reference.extra_blobs(set(graph.final)),
    )


# ---------------------------------------------------------------------------------------------
# The report on a console
