"""Verify an ONNX file where it will run: each runtime's outputs against a reference, output by
output (as Polygraphy compares runtimes): error statistics per output, the first divergent one named.

Runtimes: ``onnxruntime``; ``opencv`` (the importable OpenCV's ``readNetFromONNX``, its default
engine) and, with OpenCV 5, ``opencv-classic`` (``ENGINE_CLASSIC``). The reference is a
``.npz`` of blobs by Caffe blob name (every one the file computes is compared, network order),
or another runtime (the file's outputs are compared). Nothing here imports Keras.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from caffe2keras.errors import VerifyError
from caffe2keras.graph import BlobRef
from caffe2keras.tolerance import ATOL, RTOL, compare
from caffe2keras.verification.detections import DETECTION_TYPES, detection_row
from caffe2keras.verification.report import BlobRow, InputInfo, Status, VerifyReport, Writer

RUNTIMES = ("onnxruntime", "opencv", "opencv-classic")
# The module each runtime imports, and how to install it.
RUNTIME_INSTALLS = {
    "onnxruntime": ("onnxruntime", "pip install onnxruntime (or caffe2keras[onnx])"),
    "opencv": ("cv2", "pip install opencv-python-headless (or caffe2keras[verify])"),
    "opencv-classic": ("cv2", "pip install 'opencv-python-headless>=5'"),
}
PathLike = str | os.PathLike


def _run_onnxruntime(model, feeds: Mapping[str, np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(list(names), dict(feeds))


def _run_opencv(model, feeds, names, engine: str = "ENGINE_AUTO") -> list[np.ndarray]:
    import cv2

    buffer = np.frombuffer(model.SerializeToString(), np.uint8)
    if hasattr(cv2.dnn, engine):
        net = cv2.dnn.readNetFromONNX(buffer, getattr(cv2.dnn, engine))
    elif engine == "ENGINE_AUTO":
        net = cv2.dnn.readNetFromONNX(buffer)
    else:
        raise VerifyError(f"OpenCV {cv2.__version__} has no {engine}. Received: runtime='opencv-classic'")
    for name, array in feeds.items():
        net.setInput(array, name)
    return [np.asarray(y) for y in net.forward(list(names))]


def _runner(runtime: str) -> Callable:
    if runtime in RUNTIME_INSTALLS and importlib.util.find_spec(RUNTIME_INSTALLS[runtime][0]) is None:
        module, install = RUNTIME_INSTALLS[runtime]
        raise VerifyError(
            f"--runtime {runtime} needs {module}, which is not installed: {install}. Received: runtime={runtime!r}"
        )
    if runtime == "onnxruntime":
        return _run_onnxruntime
    if runtime == "opencv":
        return _run_opencv
    if runtime == "opencv-classic":
        return lambda model, feeds, names: _run_opencv(model, feeds, names, "ENGINE_CLASSIC")
    raise VerifyError(f"Unknown runtime; choose from {', '.join(RUNTIMES)}. Received: runtime={runtime!r}")


def _with_outputs(model, names: Sequence[str]):
    """A copy of ``model`` whose outputs are ``names`` (intermediate values included)."""
    from onnx import TensorProto, helper

    copy = type(model)()
    copy.CopyFrom(model)
    known = {o.name for o in copy.graph.output}
    copy.graph.output.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in names if name not in known
    )
    return copy


def _inputs(model, reference: Mapping[str, np.ndarray], given: Mapping[str, np.ndarray], seed: int):
    rng = np.random.default_rng(seed)
    feeds, infos = {}, []
    for value in model.graph.input:
        name = value.name
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in value.type.tensor_type.shape.dim]
        if name in given:
            array, source = np.asarray(given[name], np.float32), "given"
        elif name in reference:
            array, source = np.asarray(reference[name], np.float32), "the reference's"
        else:
            array, source = rng.standard_normal(dims).astype(np.float32), f"random normal (seed {seed})"
        feeds[name] = array
        infos.append(InputInfo(name, tuple(array.shape), source))
    return feeds, infos


def _writers(model) -> dict[str, tuple[Writer, ...]]:
    """The node that computes each value, by value name: the Caffe layer and type for its tops
    (the writer records the type in the node's doc_string)."""
    return {
        out: (Writer(node.name, node.doc_string or node.op_type),) for node in model.graph.node for out in node.output
    }


def verify_onnx(
    path: PathLike,
    *,
    against: str | PathLike | Mapping[str, np.ndarray],
    runtimes: Sequence[str] = ("onnxruntime",),
    inputs: Mapping[str, np.ndarray] | None = None,
    atol: float = ATOL,
    rtol: float = RTOL,
    seed: int = 0,
) -> list[VerifyReport]:
    """One :class:`VerifyReport` per runtime: its outputs against ``against`` (a runtime's name,
    or a ``.npz``/mapping of blobs by Caffe blob name in NCHW layout)."""
    import onnx

    model = onnx.load(str(path))
    for runtime in runtimes:
        _runner(runtime)  # an unknown name fails before anything runs
    if isinstance(against, Mapping) or str(against).endswith(".npz"):
        blobs = dict(against) if isinstance(against, Mapping) else dict(np.load(against))
        description, kind = ("blobs given" if isinstance(against, Mapping) else str(against)), "npz"
    else:
        blobs, description, kind = None, str(against), str(against)
    feeds, infos = _inputs(model, blobs or {}, inputs or {}, seed)
    writers = _writers(model)
    if blobs is not None:
        names = [name for name in dict.fromkeys(writers) if name in blobs and name not in feeds]
        reference = {name: blobs[name] for name in names}
    else:
        names = [o.name for o in model.graph.output]
        reference = dict(zip(names, _runner(kind)(_with_outputs(model, names), feeds, names)))
    if not names:
        raise VerifyError(f"the reference names none of the file's values. Received: against={description!r}")
    probed = _with_outputs(model, names)
    reports = []
    for runtime in runtimes:
        try:
            actual = dict(zip(names, _runner(runtime)(probed, feeds, names)))
        except VerifyError:
            raise
        except Exception as exc:  # the runtime refusing the file is the finding: report it
            raise VerifyError(f"{runtime} could not run {path}: {exc}. Received: runtime={runtime!r}") from exc
        rows = [_row(name, writers.get(name, ()), actual[name], reference[name], atol, rtol) for name in names]
        reports.append(
            VerifyReport(str(path), None, kind, f"{description}, run in {runtime}", "NCHW", atol, rtol, infos, rows)
        )
    return reports


def _row(name: str, writers, actual: np.ndarray, reference: np.ndarray, atol: float, rtol: float) -> BlobRow:
    actual, reference = np.asarray(actual), np.asarray(reference)
    if writers and writers[-1].type in DETECTION_TYPES:
        return detection_row(BlobRef(name), writers, actual, reference, "caffe", atol, rtol)
    if actual.shape != reference.shape:
        if actual.size != reference.size:
            return BlobRow(name, writers, actual.shape, Status.SHAPE_MISMATCH, note=f"reference {reference.shape}")
        reference = reference.reshape(actual.shape)
    comparison = compare(actual, reference, atol, rtol)
    return BlobRow(
        name, writers, actual.shape, Status.OK if comparison.within_tolerance else Status.DIVERGED, comparison
    )
