"""``caffe2keras verify m.onnx``: each runtime's outputs against golden blobs or another runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest

from caffe2keras.cli import main
from caffe2keras.onnx import to_onnx
from caffe2keras.verification.runtimes import verify_onnx
from tests.golden import Case
from tests.onnx_cases import checked_blobs, prototxt_of, reference
from tests.shared import SHARED, requires_shared

pytest.importorskip("onnxruntime")
RUNTIMES = ["onnxruntime"] + (["opencv"] if pytest.importorskip("cv2", reason="") else [])


@pytest.fixture
def mtcnn(tmp_path):
    """MTCNN det3 with every blob as an output, and its golden blobs as a .npz."""
    case = Case.load(SHARED / "golden" / "trained" / "mtcnn_det3")
    blobs = checked_blobs(case, prototxt_of(case), every_blob=True)
    model = to_onnx(prototxt_of(case), case.path / "weights.caffemodel", tmp_path / "det3.onnx", outputs=blobs).path
    golden = {name: reference(case, name) for name in blobs}
    golden.update(zip(case.inputs, case.input_arrays()))
    np.savez(tmp_path / "golden.npz", **golden)
    return model, tmp_path / "golden.npz", blobs


@requires_shared
def test_every_blob_against_goldens_in_each_runtime(mtcnn, tmp_path, capsys):
    model, golden, blobs = mtcnn
    report_path = tmp_path / "report.json"
    args = ["verify", str(model), "--against", str(golden), "--runtime", ",".join(RUNTIMES), "--json"]
    assert main([*args, str(report_path)]) == 0
    reports = json.loads(report_path.read_text())
    assert len(reports) == len(RUNTIMES)
    for report in reports:
        assert sorted(row["blob"] for row in report["blobs"] if row["status"] == "ok") == sorted(blobs)
        assert {row["type"] for row in report["blobs"]} >= {"PReLU", "Pooling", "InnerProduct", "Softmax"}
    assert "first divergence" not in capsys.readouterr().out


@requires_shared
def test_first_divergent_blob_is_named(mtcnn):
    model, golden, _ = mtcnn
    blobs_with_error = dict(np.load(golden))
    blobs_with_error["conv2"] = blobs_with_error["conv2"] + 1  # every later blob stays right
    (report,) = verify_onnx(model, against=blobs_with_error)
    assert not report.ok
    assert report.first_divergence.blob == "conv2"
    assert report.first_divergence.layer_type in ("Convolution", "PReLU")
    assert [row.blob for row in report.failures] == ["conv2"]


@requires_shared
def test_runtime_against_runtime(mtcnn):
    model, _, blobs = mtcnn
    (report,) = verify_onnx(model, against="onnxruntime", runtimes=RUNTIMES[-1:])
    assert report.ok and [row.blob for row in report.rows] == blobs


@requires_shared
def test_unknown_runtime_is_refused(mtcnn, capsys):
    model, golden, _ = mtcnn
    assert main(["verify", str(model), "--against", str(golden), "--runtime", "tensorrt"]) == 2
    assert "Received: runtime='tensorrt'" in capsys.readouterr().err


@pytest.mark.parametrize("runtime, module", [("onnxruntime", "onnxruntime"), ("opencv", "cv2")])
def test_a_runtime_not_installed_names_what_to_install(runtime, module, monkeypatch):
    import importlib.util

    from caffe2keras.errors import VerifyError
    from caffe2keras.verification import runtimes

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == module else find_spec(name, *a))
    with pytest.raises(
        VerifyError, match=rf"needs {module}, which is not installed: pip install .*runtime='{runtime}'"
    ):
        runtimes._runner(runtime)
