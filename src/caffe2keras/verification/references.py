"""The references a conversion is verified against: blobs on file, pycaffe, OpenCV's Caffe runtime."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from caffe2keras.errors import ModelFileError, VerifyError
from caffe2keras.graph import BlobRef, Graph
from caffe2keras.numpy_files import read_npz

PathLike = str | os.PathLike
InputSpec = np.ndarray | PathLike
Inputs = InputSpec | Mapping[str, InputSpec] | None


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
        if not os.path.lexists(path):
            raise VerifyError(f"reference blob file {str(path)!r} does not exist. {received}")
        if str(path).endswith(".npy"):
            raise VerifyError(
                f"{str(path)!r} holds one array, not blobs by name; write them with numpy.savez. {received}"
            )
        try:
            blobs = read_npz(path)
        except ModelFileError as exc:
            raise VerifyError(f"cannot read the reference blobs from {str(path)!r}: {exc.reason} {received}") from None
        return cls(blobs, str(path))

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
        with tempfile.TemporaryDirectory(prefix="c2k-") as folder:
            files = list(self.files)
            rewritten = _with_input_layers(files[0], arrays)
            if rewritten is not None:
                files[0] = os.path.join(folder, "net.prototxt")
                Path(files[0]).write_text(rewritten)
            try:
                net = cv2.dnn.readNetFromCaffe(*files)
            except cv2.error as exc:
                raise self._error("read the net", exc) from None
        net.enableFusion(False)
        if hasattr(net, "enableWinograd"):  # OpenCV >= 4.7: exact convolutions, not Winograd's
            net.enableWinograd(False)
        try:
            for name, array in arrays.items():
                net.setInput(np.ascontiguousarray(array, dtype=np.float32), name)
        except cv2.error as exc:
            raise self._error("take the inputs", exc) from None
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


def _with_input_layers(prototxt: PathLike, arrays: Mapping[str, np.ndarray]) -> str | None:
    """The net's text with each data layer other than Input (MemoryData, Data...) made an Input layer
    of the given arrays' shapes, as OpenCV's importer takes only those; None when it has none."""
    from google.protobuf import text_format

    from caffe2keras.caffe import read_net
    from caffe2keras.graph import DATA_LAYER_TYPES

    net = read_net(prototxt)
    kept, changed = [], False
    for layer in net.layer:
        if layer.type in DATA_LAYER_TYPES and layer.type != "Input":
            changed = True
            tops = [top for top in layer.top if top in arrays]
            if not tops:
                continue
            replacement = type(layer)(name=layer.name, type="Input", top=tops)
            replacement.include.extend(layer.include)
            replacement.exclude.extend(layer.exclude)
            for top in tops:
                replacement.input_param.shape.add().dim.extend(arrays[top].shape)
            layer = replacement
        kept.append(layer)
    if not changed:
        return None
    del net.layer[:]
    net.layer.extend(kept)
    return text_format.MessageToString(net)


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
