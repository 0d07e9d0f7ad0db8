"""MobileNet-SSD written straight to ONNX: OpenCV 4's Caffe runtime's numbers and detections, in
onnxruntime and in OpenCV 5, with no Loop in the graph."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from caffe2keras.onnx import to_onnx
from tests.golden import assert_matches
from tests.shared import requires_shared
from tests.test_ssd import MOBILENET_BLOBS, assert_detections_match, mobilenet_case, opencv_detections

ort = pytest.importorskip("onnxruntime")

# Past keep_top_k (100) at 8.0; tens of detections at 6.0 and 4.0.
CASES = [("deploy.prototxt", 6.0), ("deploy_root_newer.prototxt", 4.0), ("deploy.prototxt", 8.0)]


def _case(prototxt_name, factor, tmp_path_factory):
    directory = tmp_path_factory.getbasetemp() / "mobilenet_ssd"
    directory.mkdir(exist_ok=True)
    return mobilenet_case(prototxt_name, factor, str(directory))


def check_outputs(outputs, references, what: str) -> None:
    for blob, actual, reference in zip(MOBILENET_BLOBS[:-1], outputs, references):
        assert_matches(actual, reference, f"{what}: {blob}")
    expected = opencv_detections(references[-1])
    assert 10 <= len(expected) <= 100
    assert outputs[-1].shape[:2] == (1, 1)
    assert_detections_match(outputs[-1], expected, f"{what}: detection_out")


@requires_shared
@pytest.mark.slow  # a whole Zoo net
@pytest.mark.parametrize("prototxt_name, factor", CASES)
def test_mobilenet_ssd_in_onnxruntime(prototxt_name, factor, tmp_path_factory, tmp_path):
    prototxt, weights, image, references = _case(prototxt_name, factor, tmp_path_factory)
    path = to_onnx(prototxt, weights, tmp_path / "ssd.onnx", outputs=MOBILENET_BLOBS).path
    model = onnx.load(str(path))
    kinds = {node.op_type for node in model.graph.node}
    assert "Loop" not in kinds and "NonMaxSuppression" in kinds
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    check_outputs(session.run(MOBILENET_BLOBS, {"data": image}), references, prototxt_name)


@requires_shared
@pytest.mark.slow
def test_mobilenet_ssd_batch_of_two(tmp_path_factory, tmp_path):
    """Each image's detections, keep_top_k per image, image ids in column 0."""
    prototxt, weights, image, references = _case("deploy.prototxt", 8.0, tmp_path_factory)
    path = to_onnx(prototxt, weights, tmp_path / "ssd.onnx", outputs=["detection_out"]).path
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (rows,) = session.run(["detection_out"], {"data": np.concatenate([image, image])})
    rows = rows.reshape(-1, 7)
    first, second = rows[rows[:, 0] == 0], rows[rows[:, 0] == 1]
    np.testing.assert_array_equal(first[:, 1:], second[:, 1:])
    assert_detections_match(first, opencv_detections(references[-1]), "image 0")
