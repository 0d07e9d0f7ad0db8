"""Exports to ONNX, TensorFlow SavedModel and LiteRT, run in their own runtimes against real Caffe.

Skipped where the ``caffe2keras[export]`` extra (TensorFlow, tf2onnx, onnxruntime) is not installed.
Each net is converted and exported once per session (see ``tests/exported.py``); ONNX from
``channels_first`` models (the NCHW graph that ONNX runtimes expect), SavedModel and LiteRT from
``channels_last`` ones (TensorFlow's CPU kernels are NHWC).

This is the path of a Keras model (converted, perhaps fine-tuned) through TensorFlow. It is
checked on every random and trained net and on the Zoo's small nets and two architectures that
add what those lack (SqueezeNet's fire modules, MobileNet's depthwise convolutions and
BatchNorm). A Caffe net's own way to ONNX is the direct writer, checked on every Zoo net in
tests/test_onnx_writer.py: through TensorFlow and tf2onnx a big Zoo net costs minutes and many
GB (AlexNet alone took longer than the rest of this module) and would check nothing per layer
that these nets do not.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import caffe2keras
from caffe2keras.cli import main
from tests.exported import Export, exported_outputs, onnx_operators
from tests.golden import Case, assert_matches
from tests.shared import SHARED, case_dirs, requires_shared

EXPORT_MODULES = ("tensorflow", "tf2onnx", "onnx", "onnxruntime")
pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in EXPORT_MODULES),
    reason="the caffe2keras[export] extra is not installed",
)

# The Zoo nets checked here, in every format.
SMALL_ZOO_NETS = {"lenet_mnist", "cifar10_quick", "cifar10_full", "mnist_siamese"}
EXPORTED_ZOO_NETS = SMALL_ZOO_NETS | {"squeezenet_v1.1", "mobilenet_v1"}


def _session_directory(tmp_path_factory):
    """The session's directory for exports: under pytest-xdist, the parent of each worker's own."""
    session = tmp_path_factory.getbasetemp()
    root = (session.parent if os.environ.get("PYTEST_XDIST_WORKER") else session) / "exported"
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """``exports(group, [Export, ...])``: the group's nets exported and run, once per session."""
    root = _session_directory(tmp_path_factory)
    return lambda group, nets: exported_outputs(root, group, nets)


def _golden_source(case_dir, zoo_weights):
    """(key, prototxt, weights) of a golden case, zoo or trained."""
    case = Case.load(case_dir)
    source = case.spec["source"]
    if case_dir.parent.name == "zoo":
        return (
            f"zoo-{case_dir.name}",
            SHARED / "caffe" / "models" / source["dir"] / source["prototxt"],
            zoo_weights(case_dir),
        )
    prototxt = SHARED / "caffe" / "trained" / source["dir"] / source["prototxt"]
    return f"trained-{case_dir.name}", prototxt, case_dir / "weights.caffemodel"


def _golden_exports(case_dir, zoo_weights) -> list[Export]:
    """The case's net in ONNX from channels_first, and in SavedModel and LiteRT from channels_last."""
    case = Case.load(case_dir)
    key, prototxt, weights = _golden_source(case_dir, zoo_weights)
    inputs = dict(zip(case.inputs, case.input_arrays()))
    return [
        Export(f"{key}-cf", prototxt, weights, inputs, case.checked_blobs, "channels_first", ("onnx",)),
        Export(f"{key}-cl", prototxt, weights, inputs, case.checked_blobs, "channels_last", ("saved_model", "tflite")),
    ]


def _outputs(results, format: str) -> list:
    assert not isinstance(results, str), f"the export failed:\n{results}"
    return results[format]


def _is_small(case_dir) -> bool:
    return case_dir.parent.name == "trained" or case_dir.name in SMALL_ZOO_NETS


@pytest.fixture(scope="session")
def small_nets(exports, zoo_weights):
    """``small_nets()``: every small golden net's exports, by one TensorFlow process, on first call."""

    @functools.cache
    def export_all():
        cases = [p.values[0] for p in case_dirs("trained") + case_dirs("zoo") if p.values[0] is not None]
        small = [case_dir for case_dir in cases if _is_small(case_dir)]
        return exports("small-nets", [net for case_dir in small for net in _golden_exports(case_dir, zoo_weights)])

    return export_all


def _check_golden(case_dir, format, zoo_weights, exports, small_nets) -> None:
    case = Case.load(case_dir)
    nets = _golden_exports(case_dir, zoo_weights)
    (net,) = [n for n in nets if format in n.formats]
    results = small_nets() if _is_small(case_dir) else exports(net.key, [net])
    for blob, actual in zip(case.checked_blobs, _outputs(results[net.key], format)):
        assert_matches(actual, case.reference(blob), f"{case.path.name} as {format}: blob {blob!r}")


def _zoo_params():
    params = []
    for param in case_dirs("zoo"):
        (case_dir,) = param.values
        name = getattr(case_dir, "name", None)
        if case_dir is not None and name not in EXPORTED_ZOO_NETS:
            continue
        for format in ("onnx", "saved_model", "tflite"):
            params.append(pytest.param(case_dir, format, marks=param.marks, id=f"{param.id}-{format}"))
    return params


# The golden nets' exports start TensorFlow and export whole groups of nets (a minute or more): the
# slow tier, as is every export through TensorFlow. The fast tier writes LeNet's ONNX directly.
@pytest.mark.slow
@pytest.mark.parametrize("case_dir, format", _zoo_params())
def test_zoo_net_exports(case_dir, format, zoo_weights, exports, small_nets):
    _check_golden(case_dir, format, zoo_weights, exports, small_nets)


@pytest.fixture(scope="session")
def rand_nets(exports):
    """``rand_nets()``: every golden/rand net in ONNX, by one TensorFlow process, on first call."""

    @functools.cache
    def export_all():
        nets = []
        for param in case_dirs("rand"):
            (case_dir,) = param.values
            case = Case.load(case_dir)
            inputs = dict(zip(case.inputs, case.input_arrays()))
            prototxt, weights = case_dir / "deploy.prototxt", case_dir / "weights.caffemodel"
            nets.append(
                Export(case_dir.name, prototxt, weights, inputs, case.checked_blobs, "channels_first", ("onnx",))
            )
        return exports("rand-nets", nets)

    return export_all


@pytest.mark.slow
@pytest.mark.parametrize("case_dir", case_dirs("rand"))
def test_rand_net_exports_to_onnx(case_dir, rand_nets):
    """Random nets of every layer family that real Caffe ran."""
    case = Case.load(case_dir)
    for blob, actual in zip(case.checked_blobs, _outputs(rand_nets()[case_dir.name], "onnx")):
        assert_matches(actual, case.reference(blob), f"{case_dir.name} as onnx: blob {blob!r}")


@pytest.mark.slow
@pytest.mark.parametrize("format", ["onnx", "saved_model", "tflite"])
@pytest.mark.parametrize("case_dir", case_dirs("trained"))
def test_trained_net_exports(case_dir, format, zoo_weights, exports, small_nets):
    _check_golden(case_dir, format, zoo_weights, exports, small_nets)


# Nets whose ONNX graph must use the operators runtimes have fast kernels for, as Caffe's layers did:
# (operators present, operators absent).
NATURAL_GRAPHS = {
    # LRN across channels stays LRN, not Pow and sums; a grouped convolution stays one Conv.
    "rand1016": ({"LRN", "Conv/group=4"}, {"Pow"}),
    # The stride-2 depthwise convolutions keep an explicit Pad before them (equal numbers).
    "mobilenet_v1": ({"Conv/group=32", "Conv/group=1024"}, set()),
}


@requires_shared
@pytest.mark.slow  # reads the golden nets' exports
@pytest.mark.parametrize("name", NATURAL_GRAPHS)
def test_onnx_graph_keeps_caffe_operators(name, zoo_weights, exports, rand_nets, tmp_path_factory):
    if name.startswith("rand"):  # the random nets are exported together
        rand_nets()
        group, key = "rand-nets", name
    else:
        (net, *_) = _golden_exports(SHARED / "golden" / "zoo" / name, zoo_weights)
        exports(net.key, [net])
        group = key = net.key
    operators = set(onnx_operators(_session_directory(tmp_path_factory), group, key))
    present, absent = NATURAL_GRAPHS[name]
    assert present <= operators, f"{name}: missing {present - operators}"
    assert not absent & operators, f"{name}: has {absent & operators}"


@requires_shared
@pytest.mark.slow
def test_mobilenet_ssd_exports_to_onnx(exports, tmp_path_factory):
    from tests.test_ssd import MOBILENET_BLOBS, assert_detections_match, mobilenet_case, opencv_detections

    directory = tmp_path_factory.getbasetemp() / "mobilenet_ssd"
    directory.mkdir(exist_ok=True)
    prototxt, weights, image, references = mobilenet_case("deploy.prototxt", 6.0, str(directory))
    net = Export("mobilenet_ssd", prototxt, weights, {"data": image}, MOBILENET_BLOBS, "channels_first", ("onnx",))
    outputs = _outputs(exports(net.key, [net])[net.key], "onnx")
    for blob, actual, reference in zip(MOBILENET_BLOBS[:-1], outputs, references):
        assert_matches(actual, reference, f"MobileNet-SSD as onnx: {blob}")
    assert_detections_match(outputs[-1], opencv_detections(references[-1]), "MobileNet-SSD as onnx: detection_out")


@requires_shared
@pytest.mark.slow
def test_shufflenet_exports_to_onnx(exports, tmp_path):
    import cv2

    from caffe2keras.caffe.writer import write_caffemodel
    from caffe2keras.synthetic import synthetic_weights

    prototxt = SHARED / "caffe" / "models" / "shufflenet_v1_g3" / "deploy.prototxt"
    weights = tmp_path / "shufflenet.caffemodel"
    write_caffemodel(weights, synthetic_weights(prototxt, seed=0))
    image = np.random.default_rng(2).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32)
    opencv = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
    opencv.setInput(image)
    reference = opencv.forward()
    net = Export("shufflenet", prototxt, weights, {"data": image}, ["fc1000"], "channels_first", ("onnx",))
    (output,) = _outputs(exports(net.key, [net])[net.key], "onnx")
    assert_matches(output, reference, "ShuffleNet as onnx: fc1000")


# ------------------------------------------------------------------ command line and API

LENET = SHARED / "caffe" / "trained" / "lenet_mnist"


@requires_shared
def test_convert_writes_onnx_by_extension(tmp_path):
    import onnxruntime

    # A legal name as long as the system allows leaves no room to lengthen it for the temporary file.
    onnx_file = tmp_path / "out" / ("lenet" + "m" * 245 + ".onnx")
    weights = str(LENET / "lenet_iter_10000.caffemodel")
    assert main(["convert", str(LENET / "lenet.prototxt"), weights, "-o", str(onnx_file), "-q"]) == 0
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["data"]
    assert [o.name for o in session.get_outputs()] == ["prob"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@requires_shared
@pytest.mark.slow  # TensorFlow: seconds to import, then to trace the model
def test_export_writes_litert_and_saved_model(tmp_path):
    keras_file = tmp_path / "lenet.keras"
    weights = str(LENET / "lenet_iter_10000.caffemodel")
    assert main(["convert", str(LENET / "lenet.prototxt"), weights, "-o", str(keras_file), "-q"]) == 0
    assert main(["export", str(keras_file), "-o", str(tmp_path / "lenet.tflite"), "-q"]) == 0
    assert main(["export", str(keras_file), "-o", str(tmp_path / "saved"), "--format", "saved_model", "-q"]) == 0
    assert (tmp_path / "saved" / "saved_model.pb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lenet.keras", "lenet.tflite", "saved"]


def test_unknown_extension_is_refused(tmp_path):
    with pytest.raises(caffe2keras.ExportError, match=r"extension does not name an export format.*out\.pb"):
        caffe2keras.export_model(tmp_path / "model.keras", tmp_path / "out.pb")


def test_missing_extra_is_named(monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "tf2onnx" else real_find_spec(name))
    with pytest.raises(
        caffe2keras.ExportError, match=r"needs tf2onnx.*pip install 'caffe2keras\[export\]'.*convert NET\.prototxt"
    ):
        caffe2keras.export_model(tmp_path / "model.keras", tmp_path / "out.onnx")


@pytest.mark.slow  # starts TensorFlow in a subprocess; tests/test_file_safety.py covers the same writer
def test_cli_failure_leaves_no_partial_output(tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip file")
    result = subprocess.run(
        [sys.executable, "-m", "caffe2keras", "export", str(broken), "-o", str(tmp_path / "out.onnx")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "broken.keras: cannot load the Keras model" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.keras"]


@pytest.mark.slow  # imports tf2onnx, so TensorFlow
def test_tf2onnx_optimizers_collect_garbage_only_during_an_export():
    """The wrapped optimizer table builds the same optimizers, and is tf2onnx's own again after."""
    from tf2onnx import optimizer

    from caffe2keras.framework_internals import optimizer_copies_collected

    before = dict(optimizer._optimizers)
    with optimizer_copies_collected():
        during = dict(optimizer._optimizers)
        assert during.keys() == before.keys()
        assert all(during[name] is not factory for name, factory in before.items())
        assert all(type(during[name]()) is factory for name, factory in before.items())
    assert optimizer._optimizers == before


@requires_shared
@pytest.mark.slow  # two TensorFlow exports and a TensorFlow process; LeNet's exports are fast
def test_saved_model_and_litert_name_their_outputs_after_the_blobs(tmp_path):
    """O-Net's three outputs keep their blob names in both formats, each with its own values."""
    mtcnn = SHARED / "caffe" / "trained" / "mtcnn"
    keras_file = tmp_path / "onet.keras"
    assert (
        main(["convert", str(mtcnn / "det3.prototxt"), str(mtcnn / "det3.caffemodel"), "-o", str(keras_file), "-q"])
        == 0
    )
    assert main(["export", str(keras_file), "-o", str(tmp_path / "onet.tflite"), "-q"]) == 0
    assert main(["export", str(keras_file), "-o", str(tmp_path / "saved"), "--format", "saved_model", "-q"]) == 0
    script = f"""
import numpy as np, tensorflow as tf
x = np.random.default_rng(0).uniform(-1, 1, (1, 48, 48, 3)).astype(np.float32)
runner = tf.lite.Interpreter(model_path={str(tmp_path / "onet.tflite")!r}).get_signature_runner()
lite = runner(**{{runner.get_input_details().popitem()[0]: x}})
loaded = tf.saved_model.load({str(tmp_path / "saved")!r})  # kept: its variables live as long as it does
saved = loaded.serve(x)
for name in ("conv6-2", "conv6-3", "prob1"):
    print(name, lite[name].shape[-1], np.abs(lite[name] - np.asarray(saved[name])).max() < 1e-4)
print(sorted(lite) == sorted(saved) == ["conv6-2", "conv6-3", "prob1"])
"""
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["conv6-2", "4", "True", "conv6-3", "10", "True", "prob1", "2", "True", "True"]
