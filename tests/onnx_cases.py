"""Golden cases written straight to ONNX (imported by the ONNX tests)."""

from __future__ import annotations

from pathlib import Path

from caffe2keras.caffe import read_net
from caffe2keras.graph import build_graph
from tests.golden import Case
from tests.shared import DEEPER_SIBLINGS, SHARED, case_dirs


def zoo_params() -> list:
    """The Zoo cases written to ONNX: all but the deeper siblings of a family."""
    return [p for p in case_dirs("zoo") if p.id not in DEEPER_SIBLINGS]


def prototxt_of(case: Case) -> Path:
    source = case.spec["source"]
    if source["kind"] == "rand":
        return case.path / "deploy.prototxt"
    folder = {"zoo": "models", "trained": "trained"}[source["kind"]]
    return SHARED / "caffe" / folder / source["dir"] / source["prototxt"]


def checked_blobs(case: Case, prototxt: Path, every_blob: bool) -> list[str]:
    """The net's outputs and probes, then (``every_blob``) every other blob Caffe recorded."""
    blobs = case.checked_blobs
    if every_blob:
        graph = build_graph(read_net(prototxt))
        names = dict.fromkeys(r.name for r in graph.blob_order() if r not in graph.inputs)
        blobs += [name for name in names if name not in blobs and case.has_blob(name)]
    return blobs


def reference(case: Case, blob: str):
    return case.reference(blob, "out" if blob in case.checked_blobs else "blob")
