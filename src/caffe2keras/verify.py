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

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from caffe2keras.api import convert, load_graph
from caffe2keras.caffe import read_net
from caffe2keras.errors import InputShapeError, VerifyError
from caffe2keras.graph import BlobRef, Graph, Shape, build_graph
from caffe2keras.layout import DATA_FORMATS, Layout
from caffe2keras.tolerance import ATOL, RTOL, TOLERANCE_RULE, Comparison, compare

PathLike = str | os.PathLike
InputSpec = np.ndarray | PathLike
Inputs = InputSpec | Mapping[str, InputSpec] | None


class Status(str, Enum):
    OK = "ok"
    DIVERGED = "diverged"
    SHAPE_MISMATCH = "shape_mismatch"
    NOT_COMPARED = "not_compared"
    INPUT = "input"


FAILED = (Status.DIVERGED, Status.SHAPE_MISMATCH)


@dataclass(frozen=True)
class Writer:
    """A layer that writes a blob: the producer, then any in-place layers."""

    layer: str
    type: str


@dataclass(frozen=True)
class BlobRow:
    """One blob of the net, in network order, and how it compares with the reference."""

    blob: str
    writers: tuple[Writer, ...]  # empty for a net input no layer rewrites
    shape: tuple[int, ...]
    status: Status
    comparison: Comparison | None = None
    note: str = ""

    @property
    def layer(self) -> str | None:
        """The layer that gave the blob its final value."""
        return self.writers[-1].layer if self.writers else None

    @property
    def layer_type(self) -> str | None:
        return self.writers[-1].type if self.writers else None

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    def to_dict(self) -> dict:
        c = self.comparison
        return {
            "blob": self.blob,
            "layer": self.layer,
            "type": self.layer_type,
            "writers": [{"layer": w.layer, "type": w.type} for w in self.writers],
            "shape": list(self.shape),
            "status": self.status.value,
            "max_abs_error": _json_float(c.max_abs_error) if c else None,
            "max_rel_error": _json_float(c.max_rel_error) if c else None,
            "allowed_abs_error": _json_float(c.allowed) if c else None,
            "worst_index": list(c.worst_index) if c else None,
            "value": _json_float(c.value) if c else None,
            "reference_value": _json_float(c.reference_value) if c else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class InputInfo:
    blob: str
    shape: tuple[int, ...]
    source: str


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`: one row per blob, in network order."""

    prototxt: str
    weights: str | None
    reference_kind: str  # "opencv", "caffe" or "npz"
    reference: str  # a description: version, file
    data_format: str
    atol: float
    rtol: float
    inputs: list[InputInfo]
    rows: list[BlobRow]
    reference_only_blobs: list[str] = field(default_factory=list)

    @property
    def compared(self) -> list[BlobRow]:
        return [r for r in self.rows if r.comparison is not None or r.status is Status.SHAPE_MISMATCH]

    @property
    def failures(self) -> list[BlobRow]:
        return [r for r in self.rows if r.failed]

    @property
    def ok(self) -> bool:
        """At least one blob compared, and every compared blob within tolerance."""
        return bool(self.compared) and not self.failures

    @property
    def first_divergence(self) -> BlobRow | None:
        """The earliest blob in network order that is out of tolerance."""
        return next(iter(self.failures), None)

    def count(self, status: Status) -> int:
        return sum(r.status is status for r in self.rows)

    @property
    def tolerance(self) -> str:
        return f"max|y - ref| <= {self.atol:g} + {self.rtol:g} * max|ref|"

    @property
    def verdict(self) -> str:
        compared, skipped = len(self.compared), self.count(Status.NOT_COMPARED)
        not_compared = f"; {skipped} not compared" if skipped else ""
        if not compared:
            hint = ""
            if self.reference_only_blobs:
                hint = f"; the reference's blobs are {_name_list(self.reference_only_blobs)}"
            return f"NOT VERIFIED: no blob could be compared with the reference{hint}"
        if self.ok:
            return f"OK: all {compared} compared blobs within tolerance ({self.tolerance}){not_compared}"
        return (
            f"FAILED: {len(self.failures)} of {compared} compared blobs out of tolerance "
            f"({self.tolerance}){not_compared}"
        )

    def describe_first_divergence(self) -> list[str]:
        """``first divergence: <blob> (layer <name>, <type>)`` and the details, or nothing."""
        row = self.first_divergence
        if row is None:
            return []
        lines = [f"first divergence: {row.blob} (layer {row.layer}, {row.layer_type})"]
        if len(row.writers) > 1:
            chain = ", then in place by ".join(f"{w.layer} ({w.type})" for w in row.writers)
            lines.append(f"  blob {row.blob!r} is written by {chain}; the reference shows only the final value")
        c = row.comparison
        if c is not None:
            lines.append(
                f"  max|y - ref| = {c.max_abs_error:.4g} at {c.worst_index}: Keras {c.value:.6g}, "
                f"reference {c.reference_value:.6g}; allowed {c.allowed:.3g}"
            )
        else:
            lines.append(f"  {row.note}")
        return lines

    def to_dict(self) -> dict:
        first = self.first_divergence
        from caffe2keras._version import __version__

        return {
            "tool": f"caffe2keras {__version__}",
            "prototxt": self.prototxt,
            "weights": self.weights,
            "reference": {"kind": self.reference_kind, "description": self.reference},
            "data_format": self.data_format,
            "tolerance": {"atol": self.atol, "rtol": self.rtol, "rule": TOLERANCE_RULE},
            "inputs": [{"blob": i.blob, "shape": list(i.shape), "source": i.source} for i in self.inputs],
            "blobs": [dict(index=i, **row.to_dict()) for i, row in enumerate(self.rows)],
            "ok": self.ok,
            "verdict": self.verdict,
            "first_divergence": (
                None if first is None else {"blob": first.blob, "layer": first.layer, "type": first.layer_type}
            ),
            "counts": {
                "blobs": len(self.rows),
                "compared": len(self.compared),
                **{status.value: self.count(status) for status in Status},
            },
            "reference_only_blobs": self.reference_only_blobs,
        }

    def print(self, console=None) -> None:
        """Print the inputs, the table, the verdict and the first divergence with ``rich``."""
        print_report(self, console)

    def __repr__(self) -> str:
        return f"<VerifyReport {self.verdict}>"


def _json_float(value: float) -> float | str:
    """JSON has no infinities or NaN: those are written as the strings "inf", "-inf", "nan"."""
    return value if math.isfinite(value) else str(value)


def _name_list(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ---------------------------------------------------------------------------------------------
# References: each gives, per blob name, its value after the forward pass or why it has none.

ReferenceBlobs = dict[str, np.ndarray | str]  # a value, or why there is none


class Reference:
    kind: str
    description: str

    def inputs(self, names: Sequence[str]) -> dict[str, np.ndarray] | None:
        """The inputs the reference was computed from (a blob file's input blobs, by name,
        those it has), or None for a runtime that runs on whatever it is given."""
        return None

    def run(self, graph: Graph, arrays: Mapping[str, np.ndarray], blobs: Sequence[BlobRef]) -> ReferenceBlobs:
        raise NotImplementedError

    def extra_blobs(self, names: set[str]) -> list[str]:
        """Reference blobs the net does not have (a blob file keyed by other names)."""
        return []


class BlobsReference(Reference):
    """Reference blobs read from a ``.npz`` file or given as a mapping, keyed by Caffe blob name.

    ``/`` in a name may also be written ``__`` (as file names of blob dumps do).
    """

    kind = "npz"

    def __init__(self, blobs: Mapping[str, np.ndarray], description: str):
        self.blobs = dict(blobs)
        self.description = description

    @classmethod
    def from_file(cls, path: PathLike) -> BlobsReference:
        received = f"Received: against={str(path)!r}"
        try:
            data = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise VerifyError(f"reference blob file {str(path)!r} does not exist. {received}") from None
        except (OSError, ValueError) as exc:
            raise VerifyError(f"cannot read the reference blobs from {str(path)!r}: {exc}. {received}") from None
        if not hasattr(data, "files"):
            raise VerifyError(
                f"{str(path)!r} holds one array, not blobs by name; write them with numpy.savez. {received}"
            )
        with data:
            return cls({name: data[name] for name in data.files}, str(path))

    def key(self, name: str) -> str | None:
        for candidate in (name, name.replace("/", "__")):
            if candidate in self.blobs:
                return candidate
        return None

    def inputs(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        return {n: self.blobs[self.key(n)] for n in names if self.key(n) is not None}

    def run(self, graph, arrays, blobs) -> ReferenceBlobs:
        found: ReferenceBlobs = {}
        for ref in blobs:
            key = self.key(ref.name)
            found[ref.name] = self.blobs[key] if key is not None else "not in the reference blobs"
        return found

    def extra_blobs(self, names: set[str]) -> list[str]:
        matched = {self.key(n) for n in names}
        return sorted(k for k in self.blobs if k not in matched)


def _net_files(prototxt: PathLike, weights: PathLike | None) -> list[str]:
    """The file arguments of a runtime's net constructor: the weights are optional."""
    return [str(prototxt)] + ([] if weights is None else [str(weights)])


class PycaffeReference(Reference):
    """pycaffe: ``caffe.Net(prototxt, weights, caffe.TEST)``, then ``net.blobs[name].data``."""

    kind = "caffe"

    def __init__(self, prototxt: PathLike, weights: PathLike | None):
        os.environ.setdefault("GLOG_minloglevel", "2")  # keep Caffe's log off the report
        try:
            import caffe
        except Exception as exc:  # pycaffe fails in many ways: missing, or a broken build
            raise VerifyError(
                f"--against caffe needs pycaffe, which cannot be imported here ({type(exc).__name__}: {exc}). "
                "Use --against opencv, or a .npz of blobs dumped where Caffe runs. Received: against='caffe'"
            ) from None
        self.caffe = caffe
        self.files = _net_files(prototxt, weights)
        self.description = f"pycaffe {getattr(caffe, '__version__', '')}".strip()

    def run(self, graph, arrays, blobs) -> ReferenceBlobs:
        caffe = self.caffe
        try:
            net = caffe.Net(*self.files, caffe.TEST)
            reshaped = False
            for name, array in arrays.items():
                if name not in net.blobs:
                    raise VerifyError(f"pycaffe's net has no input blob {name!r}. Received: input={name!r}")
                blob = net.blobs[name]
                if tuple(blob.data.shape) != array.shape:
                    blob.reshape(*array.shape)
                    reshaped = True
            if reshaped:
                net.reshape()
            for name, array in arrays.items():
                net.blobs[name].data[...] = array
            net.forward()
            values = {name: np.array(blob.data, dtype=np.float32, copy=True) for name, blob in net.blobs.items()}
        except VerifyError:
            raise
        except Exception as exc:
            raise VerifyError(f"pycaffe could not run the net: {type(exc).__name__}: {exc}") from None
        return {ref.name: values.get(ref.name, "pycaffe's net has no such blob") for ref in blobs}


class OpenCVReference(Reference):
    """OpenCV 4.x's Caffe importer (``cv2.dnn``), an independent Caffe runtime.

    OpenCV names outputs by layer, so a blob is read from the layer that wrote it last (for an
    in-place blob, the in-place layer). OpenCV drops ``Split`` layers; their tops are read from
    the split blob's producer. Blobs of layers OpenCV does not keep are not compared.
    """

    kind = "opencv"

    def __init__(self, prototxt: PathLike, weights: PathLike | None):
        try:
            import cv2
        except ImportError:
            raise VerifyError(
                "--against opencv needs OpenCV 4.x: pip install 'opencv-python-headless<5' "
                "(or caffe2keras[verify]). Received: against='opencv'"
            ) from None
        if not hasattr(getattr(cv2, "dnn", None), "readNetFromCaffe"):
            raise VerifyError(
                f"this OpenCV ({cv2.__version__}) has no Caffe importer; install 'opencv-python-headless<5'. "
                "Received: against='opencv'"
            )
        if weights is not None and str(weights).endswith(".h5"):
            raise VerifyError(
                "OpenCV reads only binary .caffemodel weights, not Caffe's HDF5 snapshots; "
                f"verify with the .caffemodel, or --against caffe. Received: weights={str(weights)!r}"
            )
        self.cv2 = cv2
        self.files = _net_files(prototxt, weights)
        self.description = f"OpenCV {cv2.__version__} (cv2.dnn.readNetFromCaffe, no layer fusion)"

    def _error(self, doing: str, exc: Exception) -> VerifyError:
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return VerifyError(f"OpenCV could not {doing}: {message}")

    def _open(self, arrays):
        cv2 = self.cv2
        try:
            net = cv2.dnn.readNetFromCaffe(*self.files)
        except cv2.error as exc:
            raise self._error("read the net", exc) from None
        net.enableFusion(False)
        if hasattr(net, "enableWinograd"):  # OpenCV >= 4.7: exact convolutions, not Winograd's
            net.enableWinograd(False)
        for name, array in arrays.items():
            net.setInput(np.ascontiguousarray(array, dtype=np.float32), name)
        return net

    def run(self, graph, arrays, blobs) -> ReferenceBlobs:
        net = self._open(arrays)
        kept = set(net.getLayerNames())

        def source(ref: BlobRef) -> tuple[str, int] | np.ndarray | str:
            op = graph.producers.get(ref)
            if op is None:
                return arrays[ref.name]
            if op.type == "Split" and op.name not in kept:
                return source(op.bottoms[0])
            if op.name not in kept:
                return f"OpenCV's net has no layer {op.name!r}: its importer dropped it"
            return op.name, op.tops.index(ref)

        sources = {ref.name: source(ref) for ref in blobs}
        pins = [s for s in sources.values() if isinstance(s, tuple)]
        layers = list(dict.fromkeys(layer for layer, _ in pins))
        try:
            outputs = dict(zip(layers, net.forwardAndRetrieve(layers))) if layers else {}
            # OpenCV keeps only a requested layer's first output: later layers reuse the memory
            # of the others. A pass that ends at the layer reads them before anything reuses it.
            for layer in dict.fromkeys(layer for layer, index in pins if index > 0):
                outputs[layer] = list(outputs[layer][:1]) + list(net.forwardAndRetrieve([layer])[0][1:])
        except self.cv2.error as exc:
            raise self._error("run the net", exc) from None
        found: ReferenceBlobs = {}
        for name, src in sources.items():
            if isinstance(src, tuple):
                layer, index = src
                found[name] = np.array(outputs[layer][index], copy=True)
            else:
                found[name] = src
        return found


def open_reference(
    against: str | PathLike | Mapping[str, np.ndarray], prototxt: PathLike, weights: PathLike | None
) -> Reference:
    """``"opencv"``, ``"caffe"``, a ``.npz`` path, or a mapping of blob name -> NCHW array."""
    if isinstance(against, Mapping):
        return BlobsReference(against, "reference blobs given in memory")
    if against == "opencv":
        return OpenCVReference(prototxt, weights)
    if against == "caffe":
        return PycaffeReference(prototxt, weights)
    path = Path(against)
    if path.suffix != ".npz" and not path.is_file():
        raise VerifyError(
            "the reference must be 'opencv', 'caffe', or a .npz file of blobs keyed by Caffe blob "
            f"name. Received: against={str(against)!r}"
        )
    return BlobsReference.from_file(path)


# ---------------------------------------------------------------------------------------------
# Inputs


def read_input(spec: InputSpec, shape: Shape | None, blob: str) -> tuple[np.ndarray, str]:
    """One input array in Caffe's NCHW layout, and a description of where it came from.

    * an array: used as is (``float32``);
    * a ``.npy`` file: an NCHW array (a missing batch axis is added);
    * any other file: an image read with OpenCV (``IMREAD_COLOR``, or ``IMREAD_GRAYSCALE`` for a
      1-channel input), resized to the input's H×W with bilinear interpolation
      (``cv2.INTER_LINEAR``), kept in BGR channel order with raw 0–255 values — no mean, no
      scaling, as ``convert`` adds no preprocessing — and transposed HWC → CHW, batch 1.
    """
    if isinstance(spec, np.ndarray):
        return _with_rank(spec.astype(np.float32, copy=False), shape, blob, "array"), "array"
    path = Path(spec)
    if not path.is_file():
        raise VerifyError(f"input file {str(path)!r} for blob {blob!r} does not exist. Received: input={str(path)!r}")
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise VerifyError(
                f"cannot read input {str(path)!r} as a .npy array: {exc}. Received: input={str(path)!r}"
            ) from None
        return _with_rank(np.asarray(array, dtype=np.float32), shape, blob, str(path)), str(path)
    return _read_image(path, shape, blob)


def _with_rank(array: np.ndarray, shape: Shape | None, blob: str, origin: str) -> np.ndarray:
    if shape is not None and array.ndim == len(shape) - 1:
        array = array[None]
    if shape is not None and array.ndim != len(shape):
        raise InputShapeError(
            f"input {origin} for blob {blob!r} has shape {array.shape}, the net's input is "
            f"{len(shape)}-D {tuple(shape)} (Caffe's N,C,H,W layout). Received: {blob}={array.shape}"
        )
    return array


def _read_image(path: Path, shape: Shape | None, blob: str) -> tuple[np.ndarray, str]:
    try:
        import cv2
    except ImportError:
        raise VerifyError(
            f"reading the image {str(path)!r} needs OpenCV: pip install 'opencv-python-headless<5'. "
            f"Received: input={str(path)!r}"
        ) from None
    if shape is None or len(shape) != 4 or shape[1] not in (1, 3):
        raise InputShapeError(
            f"an image input needs a 4-D input blob with 1 or 3 channels and a known shape; blob {blob!r} "
            f"has shape {shape} (give one with --input-shape {blob}=1,3,H,W). Received: input={str(path)!r}"
        )
    channels, height, width = shape[1:]
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR)
    if image is None:
        raise VerifyError(
            f"OpenCV cannot read {str(path)!r} as an image (nor is it a .npy file). Received: input={str(path)!r}"
        )
    image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    image = image[:, :, None] if image.ndim == 2 else image
    order = "gray" if channels == 1 else "BGR"
    source = f"image {path} ({order}, resized to {height}x{width} bilinear, values 0-255, HWC->CHW)"
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None]), source


def _named_inputs(inputs: Inputs, names: Sequence[str]) -> dict[str, InputSpec]:
    if inputs is None:
        return {}
    if isinstance(inputs, Mapping):
        unknown = [n for n in inputs if n not in names]
        if unknown:
            raise InputShapeError(
                f"{_name_list(unknown)} {'is not an input' if len(unknown) == 1 else 'are not inputs'} of the net; "
                f"its inputs are {_name_list(list(names))}. Received: inputs={_name_list(list(inputs))}"
            )
        return dict(inputs)
    if len(names) != 1:
        raise InputShapeError(
            f"the net has {len(names)} inputs ({_name_list(list(names))}); name the blob each input is for "
            "(inputs={'blob': ...}, CLI: --input BLOB=FILE). Received: one unnamed input"
        )
    return {names[0]: inputs}


def _dictated_input(graph: Graph, ref: BlobRef, dictated: Mapping[str, np.ndarray], reference: Reference):
    """An input taken from a blob file, which must hold the value the net started from."""
    name = ref.name
    if name not in dictated:
        raise VerifyError(
            f"the reference blobs ({reference.description}) lack the net's input blob {name!r}, which they "
            f"were computed from; add it, or give the input (--input {name}=FILE). Received: input={name!r}"
        )
    if graph.final[name] != ref:
        rewriter = graph.producers[graph.final[name]]
        raise VerifyError(
            f"input blob {name!r} is rewritten in place by layer {rewriter.name!r} ({rewriter.type}), so the "
            f"reference blobs hold its final value, not the input; give the input (--input {name}=FILE). "
            f"Received: input={name!r}"
        )
    return np.asarray(dictated[name], dtype=np.float32)


def prepare_inputs(
    prototxt: PathLike,
    inputs: Inputs,
    reference: Reference,
    input_shapes: Mapping[str, Sequence[int]] | None,
    seed: int,
) -> tuple[dict[str, np.ndarray], list[InputInfo]]:
    """Every input blob's array (Caffe layout), in the net's input order."""
    declared = build_graph(read_net(prototxt), input_shapes, require_input_shapes=False)
    names = [ref.name for ref in declared.inputs]
    specs = _named_inputs(inputs, names)
    dictated = reference.inputs(names)
    rng = np.random.default_rng(seed)
    arrays, infos = {}, []
    for ref in declared.inputs:
        name, shape = ref.name, declared.shapes.get(ref)
        if name in specs:
            array, source = read_input(specs[name], shape, name)
        elif dictated is not None:
            array, source = _dictated_input(declared, ref, dictated, reference), "the reference's input blob"
        elif shape is None:
            raise InputShapeError(
                f"no shape is known for input blob {name!r}; give it an input file, or a shape with "
                f"--input-shape {name}=N,C,H,W (input_shapes=). Received: input_shapes={dict(input_shapes or {})!r}"
            )
        else:
            array, source = rng.standard_normal(shape, dtype=np.float32), f"random normal (seed {seed})"
        wanted = (input_shapes or {}).get(name)
        if wanted is not None and tuple(wanted) != array.shape:
            raise InputShapeError(
                f"input blob {name!r} gets an array of shape {array.shape}, but its shape is given as "
                f"{tuple(wanted)}. Received: input_shapes={dict(input_shapes or {})!r}"
            )
        arrays[name] = array
        infos.append(InputInfo(name, tuple(array.shape), source))
    return arrays, infos


# ---------------------------------------------------------------------------------------------


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
    outputs = model([layout.to_keras(arrays[ref.name]) for ref in graph.inputs], training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [layout.to_caffe(np.asarray(y)) for y in outputs]


# SSD's DetectionOutput writes a data-dependent number of rows; its blobs are compared as such.
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


def _detection_row(
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


def _row(ref: BlobRef, writers, actual: np.ndarray, reference, kind: str, atol: float, rtol: float) -> BlobRow:
    if isinstance(reference, str):
        return BlobRow(ref.name, writers, actual.shape, Status.NOT_COMPARED, note=reference)
    if writers and writers[-1].type in DETECTION_TYPES:
        return _detection_row(ref, writers, actual, np.asarray(reference), kind, atol, rtol)
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
        input_shapes: Caffe shapes of inputs the prototxt does not fix, as for ``convert``.
        atol, rtol: a blob is within tolerance when ``max|y - ref| <= atol + rtol * max|ref|``.
        data_format: the Keras model's layout; blobs are compared in Caffe's layout.
        on_step: called with a short description as each stage starts (for progress display).

    Returns:
        A :class:`VerifyReport`: ``.rows`` (one per blob, network order), ``.ok``,
        ``.first_divergence``, ``.to_dict()``. Raises :class:`caffe2keras.Caffe2KerasError` when the
        comparison cannot be made (``VerifyError``, or the conversion's own errors).
    """
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be one of {DATA_FORMATS}. Received: data_format={data_format!r}")
    if not (atol >= 0 and rtol >= 0):
        raise ValueError(f"atol and rtol must be >= 0. Received: atol={atol}, rtol={rtol}")
    step = on_step or (lambda _: None)
    reference = open_reference(against, prototxt, weights)
    arrays, input_infos = prepare_inputs(prototxt, inputs, reference, input_shapes, seed)
    shapes = {name: array.shape for name, array in arrays.items()}
    graph = load_graph(prototxt, shapes)
    blobs = blob_writers(graph)
    outputs = [ref for ref, writers in blobs if writers]

    step("converting")
    model = convert(
        prototxt, weights, input_shapes=shapes, outputs=[ref.name for ref in outputs], data_format=data_format
    )
    step("running the Keras model")
    ours = dict(zip(outputs, _keras_blobs(model, graph, arrays, Layout(data_format))))
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


STATUS_STYLE = {
    Status.OK: ("ok", "green"),
    Status.DIVERGED: ("DIVERGED", "bold red"),
    Status.SHAPE_MISMATCH: ("SHAPE MISMATCH", "bold red"),
    Status.NOT_COMPARED: ("not compared", "yellow"),
    Status.INPUT: ("input", "dim"),
}


def _error_text(value: float | None) -> str:
    return "" if value is None else f"{value:.2e}"


def print_report(report: VerifyReport, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal and "COLUMNS" not in os.environ:
            console = Console(width=240)  # a log or a pipe: keep one line per blob
    console.print(
        f"[bold]{escape(report.prototxt)}[/] + {escape(str(report.weights))} "
        f"against {escape(report.reference)}, {report.data_format}"
    )
    for info in report.inputs:
        console.print(f"input {escape(info.blob)} {info.shape}: {escape(info.source)}")
    table = Table(show_edge=False, pad_edge=False)
    for title, justify in (
        ("#", "right"),
        ("blob", "left"),
        ("layer", "left"),
        ("type", "left"),
        ("shape", "left"),
        ("max abs err", "right"),
        ("max rel err", "right"),
        ("status", "left"),
    ):
        table.add_column(title, justify=justify)
    with_notes = any(row.note for row in report.rows)
    if with_notes:
        table.add_column("note", style="dim")
    for index, row in enumerate(report.rows):
        label, style = STATUS_STYLE[row.status]
        c = row.comparison
        cells = [
            str(index),
            escape(row.blob),
            escape(" → ".join(w.layer for w in row.writers)),
            escape(" → ".join(w.type for w in row.writers)),
            "×".join(map(str, row.shape)),
            _error_text(c.max_abs_error if c else None),
            _error_text(c.max_rel_error if c else None),
            f"[{style}]{label}[/]",
        ]
        table.add_row(*cells, *([escape(row.note)] if with_notes else []))
    console.print(table)
    style = "bold green" if report.ok else "bold red"
    console.print(f"[{style}]{escape(report.verdict)}[/]")
    for line in report.describe_first_divergence():
        console.print(escape(line))
