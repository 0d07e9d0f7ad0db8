"""Every golden case written straight to ONNX matches real Caffe in onnxruntime; the graph's contract."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest

from caffe2keras.errors import UnsupportedLayersError
from caffe2keras.onnx import OPSET, to_onnx
from tests.golden import Case, assert_matches
from tests.onnx_cases import checked_blobs, prototxt_of, reference, zoo_params
from tests.shared import REPO, SHARED, case_dirs, requires_shared
from tests.test_golden import RAND_WEIGHTS

ort = pytest.importorskip("onnxruntime")


def _run(path, case: Case, blobs: list[str], batch: int = 1) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    feed = {n: np.concatenate([a] * batch) for n, a in zip(case.inputs, case.input_arrays()) if n in wanted}
    return session.run(blobs, feed)


def _check_case(case: Case, weights, tmp_path, every_blob: bool) -> onnx.ModelProto:
    prototxt = prototxt_of(case)
    blobs = checked_blobs(case, prototxt, every_blob)
    path = tmp_path / "net.onnx"
    to_onnx(prototxt, weights, path, outputs=blobs)
    for blob, actual in zip(blobs, _run(path, case, blobs)):
        assert_matches(actual, reference(case, blob), f"{case.path.name}: blob {blob!r}")
    model = onnx.load(str(path))
    _check_contract(model, prototxt)
    return model


def _check_contract(model: onnx.ModelProto, prototxt) -> None:
    """No Loop, no Transpose but Caffe's Permute layers, nodes named after their layers, a free batch."""
    from caffe2keras.caffe import read_net

    onnx.checker.check_model(model)
    assert [o.version for o in model.opset_import] == [OPSET]
    layers = {layer.name: layer.type for layer in read_net(prototxt).layer}
    for node in model.graph.node:
        assert node.op_type != "Loop"
        named = [name for name in layers if node.name == name or node.name.startswith(f"{name}/")]
        assert named, f"node {node.name!r} is named after no layer"
        layer = max(named, key=len)
        assert node.op_type != "Transpose" or layers[layer] == "Permute", node.name
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "N", value.name


@requires_shared
@pytest.mark.parametrize("weights_file", RAND_WEIGHTS)
@pytest.mark.parametrize("case_dir", case_dirs("rand"))
def test_rand_case(case_dir, weights_file, tmp_path):
    _check_case(Case.load(case_dir), case_dir / weights_file, tmp_path, every_blob=True)


@requires_shared
@pytest.mark.parametrize("case_dir", case_dirs("trained"))
def test_trained_case(case_dir, tmp_path):
    _check_case(Case.load(case_dir), case_dir / "weights.caffemodel", tmp_path, every_blob=True)


@requires_shared
@pytest.mark.parametrize("case_dir", zoo_params())
def test_zoo_case(case_dir, zoo_weights, tmp_path):
    _check_case(Case.load(case_dir), zoo_weights(case_dir), tmp_path, every_blob=False)


@requires_shared
def test_batch_is_free(tmp_path):
    case = Case.load(SHARED / "golden" / "trained" / "mtcnn_det3")
    path = to_onnx(prototxt_of(case), case.path / "weights.caffemodel", tmp_path / "net.onnx").path
    blobs = case.spec["output_order"]
    for blob, actual in zip(blobs, _run(path, case, blobs, batch=3)):
        assert actual.shape[0] == 3
        for row in actual:
            assert_matches(row[None], case.reference(blob), f"blob {blob!r}")


@requires_shared
def test_cli_writes_onnx_without_keras(tmp_path):
    """``convert -o m.onnx`` loads neither Keras nor TensorFlow (nor JAX)."""
    case = SHARED / "golden" / "trained" / "lenet_mnist"
    output = tmp_path / "lenet.onnx"
    script = (
        "import sys; from caffe2keras.cli import main; code = main(sys.argv[1:]); "
        "heavy = [m for m in ('keras', 'tensorflow', 'jax', 'tf2onnx') if m in sys.modules]; "
        "assert not heavy, heavy; sys.exit(code)"
    )
    prototxt = SHARED / "caffe" / "trained" / "lenet_mnist" / "lenet.prototxt"
    args = [sys.executable, "-c", script, "convert", str(prototxt), str(case / "weights.caffemodel"), "-o", str(output)]
    result = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=_env())
    assert result.returncode == 0, result.stderr
    assert "opset 13" in result.stdout
    assert [o.name for o in onnx.load(str(output)).graph.output] == ["prob"]


def _env():
    import os

    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}


def test_unsupported_types_are_reported_together(tmp_path):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(
        'input: "data" input_shape { dim: 1 dim: 3 dim: 4 dim: 4 }\n'
        'layer { name: "embed" type: "Embed" bottom: "data" top: "a" embed_param { num_output: 2 input_dim: 3 } }\n'
        'layer { name: "spp" type: "SPP" bottom: "data" top: "t" spp_param { pyramid_height: 2 } }\n'
    )
    with pytest.raises(UnsupportedLayersError) as info:
        to_onnx(prototxt, None, tmp_path / "net.onnx")
    assert [t for t, *_ in info.value.unsupported] == ["Embed", "SPP"]
    assert not (tmp_path / "net.onnx").exists()


@requires_shared
def test_weights_are_the_caffemodels_bytes(tmp_path):
    """Convolution and InnerProduct weights go into the file exactly as the caffemodel holds them."""
    from onnx import numpy_helper

    from caffe2keras.caffe import read_weights

    case = SHARED / "golden" / "trained" / "lenet_mnist"
    weights = read_weights(case / "weights.caffemodel")
    path = to_onnx(prototxt_of(Case.load(case)), case / "weights.caffemodel", tmp_path / "net.onnx").path
    stored = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    for layer, names in (("conv1", ("conv1/kernel", "conv1/bias")), ("ip2", ("ip2/weight", "ip2/bias"))):
        for blob, name in zip(weights[layer].blobs, names):
            np.testing.assert_array_equal(stored[name], blob.data)


@requires_shared
def test_export_of_a_prototxt_writes_onnx_straight(tmp_path):
    from caffe2keras.cli import main

    case = SHARED / "golden" / "trained" / "lenet_mnist"
    prototxt = SHARED / "caffe" / "trained" / "lenet_mnist" / "lenet.prototxt"
    output = tmp_path / "lenet.onnx"
    assert main(["export", str(prototxt), "--weights", str(case / "weights.caffemodel"), "-o", str(output)]) == 0
    assert [n.op_type for n in onnx.load(str(output)).graph.node][-1] == "Softmax"
    assert main(["export", str(prototxt), "-o", str(tmp_path / "lenet.tflite")]) == 2
