"""The Zoo and trained golden cases, written to ONNX, load and match real Caffe in OpenCV 5.

OpenCV 5 (which has no Caffe importer) lives in a venv of its own, beside this one (``venv-cv5``,
or the Python named by ``CAFFE2KERAS_OPENCV5_PYTHON``); the tests skip without it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from caffe2keras.onnx import to_onnx
from tests.golden import Case, assert_matches
from tests.onnx_cases import prototxt_of, zoo_params
from tests.shared import REPO, case_dirs, requires_shared

OPENCV5_PYTHON = Path(os.environ.get("CAFFE2KERAS_OPENCV5_PYTHON", Path(sys.prefix).parent / "venv-cv5/bin/python"))


def _opencv5_version() -> str | None:
    if not OPENCV5_PYTHON.exists():
        return None
    result = subprocess.run([str(OPENCV5_PYTHON), "-c", "import cv2; print(cv2.__version__)"], capture_output=True)
    return result.stdout.decode().strip() if result.returncode == 0 else None


VERSION = _opencv5_version()
pytestmark = [
    requires_shared,
    pytest.mark.skipif(VERSION is None or not VERSION.startswith("5."), reason=f"no OpenCV 5 at {OPENCV5_PYTHON}"),
]

# OpenCV 5's new engine computes a padded 1x1 Conv wrongly (SqueezeNet 1.0's conv10); the writer
# pads such a convolution's input with a Pad node first. Both engines are checked on that net.
PADDED_1X1 = {"squeezenet_v1.0"}


def run_opencv5(model: Path, case: Case, blobs: list[str], tmp_path: Path, engine: str = "auto") -> list[np.ndarray]:
    """``blobs`` computed by OpenCV 5's ``readNetFromONNX`` (in its own venv) on the case's inputs."""
    inputs = []
    for name, array in zip(case.inputs, case.input_arrays()):
        np.save(tmp_path / f"in_{name}.npy", array)
        inputs.append(f"{name}={tmp_path / f'in_{name}.npy'}")
    script = REPO / "tests" / "opencv5_run.py"
    command = [str(OPENCV5_PYTHON), str(script), str(model), str(tmp_path), engine, *inputs, "--", *blobs]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"OpenCV 5 failed on {model.name}: {result.stderr[-2000:]}"
    return [np.load(tmp_path / f"{blob.replace('/', '__')}.npy") for blob in blobs]


def _check(case: Case, weights: Path, tmp_path: Path, engine: str = "auto") -> None:
    blobs = case.checked_blobs
    model = to_onnx(prototxt_of(case), weights, tmp_path / "net.onnx", outputs=blobs).path
    for blob, actual in zip(blobs, run_opencv5(model, case, blobs, tmp_path, engine)):
        assert_matches(actual, case.reference(blob), f"{case.path.name} in OpenCV {VERSION}: blob {blob!r}")


@pytest.mark.parametrize("case_dir", case_dirs("trained"))
def test_trained_case(case_dir, tmp_path):
    case = Case.load(case_dir)
    _check(case, case_dir / "weights.caffemodel", tmp_path)


@pytest.mark.parametrize("case_dir", zoo_params())
def test_zoo_case(case_dir, zoo_weights, tmp_path):
    _check(Case.load(case_dir), zoo_weights(case_dir), tmp_path)


@pytest.mark.parametrize("case_dir", [p for p in case_dirs("zoo") if p.id in PADDED_1X1])
def test_classic_engine(case_dir, zoo_weights, tmp_path):
    _check(Case.load(case_dir), zoo_weights(case_dir), tmp_path, engine="classic")


@pytest.mark.slow  # a whole Zoo net
@pytest.mark.parametrize(
    "engine",
    [
        "auto",
        # The classic engine takes no TopK whose k is computed (the detections an image keeps).
        pytest.param("classic", marks=pytest.mark.xfail(reason="classic engine: TopK with a computed k", strict=True)),
    ],
)
def test_mobilenet_ssd(engine, tmp_path_factory, tmp_path):
    """MobileNet-SSD with its DetectionOutput loads in OpenCV 5 and gives OpenCV 4's Caffe detections."""
    from tests.test_onnx_ssd import CASES, _case, check_outputs
    from tests.test_ssd import MOBILENET_BLOBS

    prototxt_name, factor = CASES[-1]
    prototxt, weights, image, references = _case(prototxt_name, factor, tmp_path_factory)
    model = to_onnx(prototxt, weights, tmp_path / "ssd.onnx", outputs=MOBILENET_BLOBS).path
    np.save(tmp_path / "image.npy", image)
    command = [str(OPENCV5_PYTHON), str(REPO / "tests" / "opencv5_run.py"), str(model), str(tmp_path), engine]
    command += [f"data={tmp_path / 'image.npy'}", "--", *MOBILENET_BLOBS]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"OpenCV 5 failed: {result.stderr[-2000:]}"
    outputs = [np.load(tmp_path / f"{blob}.npy") for blob in MOBILENET_BLOBS]
    check_outputs(outputs, references, f"OpenCV {VERSION} ({engine})")
