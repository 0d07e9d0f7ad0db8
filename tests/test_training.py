"""``caffe2keras train`` against real Caffe's training runs (``../shared/golden/train``).

Each case runs the acceptance command in a copy of its folder:
``caffe2keras train solver.prototxt --weights init.caffemodel --max-iter 30 --losses OUT/losses.npz
--save-caffemodel OUT/final.caffemodel``, then compares every net output of every iteration, the
final blobs and the learning rates with Caffe's. The small nets run in the fast tier; the
LeNet-sized ones (each compiles its own training step) are slow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from google.protobuf import text_format

from caffe2keras.caffe import read_net, read_weights
from caffe2keras.cli import main
from caffe2keras.tolerance import compare
from caffe2keras.training import optimizer_of
from caffe2keras.training.solver import read_solver_file
from tests.shared import REPO, case_dirs, requires_shared

ITERATIONS = 30
FAST_CASES = {"euclidean_regression", "hinge", "sigmoid_multilabel", "softmax_ignore_valid"}
COMMAND = [
    "train",
    "solver.prototxt",
    "--weights",
    "init.caffemodel",
    "--max-iter",
    str(ITERATIONS),
    "--losses",
    "OUT/losses.npz",
    "--save-caffemodel",
    "OUT/final.caffemodel",
    "-q",
]


# Runs where two float32 implementations part further than the tolerance, whatever the code. In
# lenet_nesterov, at iteration 2, a pool2 window (sample 1, row 0, col 1, channel 21) holds two
# scores 2e-7 apart (about 3 ulps of a 500-term conv2 sum): exact arithmetic and our float32 pick
# the first, Caffe's sgemm rounding evidently the other, so one gradient goes to another position.
# The losses agree to 1e-7 up to iteration 2 and part from iteration 3 on (2.2e-4 at 28; a conv2
# weight ends 2.7e-4 off). Evidence that it is that choice and no semantic: the first update
# matches iter1.caffemodel to 1 ulp, all 30 iterations of our max-pool choices match float64, and a
# run whose initial weights move by 1 ulp picks Caffe's side of that window and then tracks Caffe
# (losses within 3.7e-7 to iteration 25, conv2/ip1/ip2 within 1e-7 after 30 Nesterov steps).
ROUNDING_BOUND = {
    "lenet_nesterov": "a max-pool near-tie (2e-7 apart) at iteration 2 that Caffe's float32 decides the other way",
}


def tiered(params):
    tiered = []
    for p in params:
        marks = [] if p.id in FAST_CASES or p.id == "no-shared" else [pytest.mark.slow]
        if p.id in ROUNDING_BOUND:
            marks.append(pytest.mark.xfail(reason=ROUNDING_BOUND[p.id], strict=False))
        tiered.append(pytest.param(*p.values, marks=marks, id=p.id))
    return tiered


def copy_case(case, tmp_path):
    folder = tmp_path / case.name
    shutil.copytree(case, folder)
    return folder


def check_against_caffe(folder):
    reference = np.load(folder / "losses.npz")
    produced = np.load(folder / "OUT" / "losses.npz")
    assert sorted(produced) == sorted(reference)
    for key in reference:
        got, ref = produced[key], reference[key]
        assert got.shape == ref.shape and got.dtype == np.float32
        assert abs(got[0] - ref[0]) <= 1e-5 * abs(ref[0]) + 1e-7, f"{key} at iteration 0: {got[0]} vs {ref[0]}"
        comparison = compare(got, ref)
        assert comparison.within_tolerance, f"{key}: {comparison} (iteration {comparison.worst_index})"
    trained, final = read_weights(folder / "OUT" / "final.caffemodel"), read_weights(folder / "final.caffemodel")
    assert set(trained) == {name for name, layer in final.items() if layer.blobs}
    for name, layer in trained.items():
        for index, (blob, ref) in enumerate(zip(layer.blobs, final[name].blobs, strict=True)):
            comparison = compare(blob.data.reshape(ref.shape), ref.data)
            assert comparison.within_tolerance, f"{name}[{index}]: {comparison}"


@requires_shared
@pytest.mark.parametrize("case", tiered(case_dirs("train")))
def test_train_as_caffe(case, tmp_path, monkeypatch):
    folder = copy_case(case, tmp_path)
    monkeypatch.chdir(folder)
    assert main(COMMAND) == 0
    check_against_caffe(folder)


@requires_shared
@pytest.mark.parametrize("case", case_dirs("train"))
def test_learning_rates(case):
    solver = read_solver_file(case / "solver.prototxt")
    schedule = optimizer_of(solver, {}).schedule
    rates = [np.float32(schedule(i * solver.iter_size)) for i in range(ITERATIONS)]
    # Bit for bit: Caffe's rate is a float, the golden file holds it widened to double.
    np.testing.assert_array_equal(rates, np.load(case / "lrs.npy").astype(np.float32))


@requires_shared
@pytest.mark.slow
def test_train_in_a_subprocess_and_opencv_reads_the_caffemodel(tmp_path):
    case = next(p.values[0] for p in case_dirs("train") if p.id == "bn_scale")
    folder = copy_case(case, tmp_path)
    command = [sys.executable, "-m", "caffe2keras", *COMMAND]
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600, env=_env())
    assert result.returncode == 0, result.stderr
    check_against_caffe(folder)
    check_opencv_reads(folder, (1, 28, 28))


@requires_shared
def test_fine_tuning_starts_a_layer_the_weights_lack_from_its_filler(tmp_path):
    from caffe2keras.caffe.writer import write_caffemodel
    from caffe2keras.training import from_solver

    case = next(p.values[0] for p in case_dirs("train") if p.id == "finetune")
    init = read_weights(case / "init.caffemodel")
    pretrained = tmp_path / "pretrained.caffemodel"
    write_caffemodel(pretrained, [(n, w.type, [b.data for b in w.blobs]) for n, w in init.items() if n != "ip2_ft"])
    training = from_solver(case / "solver.prototxt", pretrained)
    blobs = {name: arrays for name, _, arrays in training.net.caffe_layers()}
    np.testing.assert_array_equal(blobs["conv1"][0], init["conv1"].blobs[0].data)
    assert np.std(blobs["ip2_ft"][0]) > 0 and not np.array_equal(blobs["ip2_ft"][0], init["ip2_ft"].blobs[0].data)
    assert not training.model.get_layer("conv1").trainable_weights  # lr_mult 0 freezes
    # The conversion's filler rule and report: random fillers drawn, as Caffe does.
    assert training.net.filled == {"ip2_ft": "ip2_ft (InnerProduct: blob 0 gaussian, blob 1 constant 0)"}


@requires_shared
def test_opencv_reads_the_trained_caffemodel(tmp_path, monkeypatch):
    case = next(p.values[0] for p in case_dirs("train") if p.id == "euclidean_regression")
    folder = copy_case(case, tmp_path)
    monkeypatch.chdir(folder)
    assert main([*COMMAND[:5], "2", *COMMAND[6:]]) == 0
    check_opencv_reads(folder, (1, 8, 8))


def check_opencv_reads(folder, data_shape):
    """OpenCV 4 loads the written weights into the TEST net and computes what caffe2keras does."""
    cv2 = pytest.importorskip("cv2")
    import caffe2keras

    deploy = folder / "deploy.prototxt"
    deploy.write_text(deploy_text(folder / "train.prototxt", data_shape))
    weights = folder / "OUT" / "final.caffemodel"
    net = cv2.dnn.readNetFromCaffe(str(deploy), str(weights))
    x = np.random.default_rng(0).random((2, *data_shape), dtype=np.float32)
    net.setInput(x)
    model = caffe2keras.convert(deploy, weights, data_format="channels_first")
    assert compare(net.forward(), np.asarray(model(x))).within_tolerance


def deploy_text(train_prototxt, data_shape) -> str:
    """The TEST net of a training case: an Input for ``data``, no losses, no Accuracy."""
    net = read_net(train_prototxt)
    kept = [layer for layer in net.layer if layer.type != "HDF5Data" and not layer.type.endswith(("Loss", "Accuracy"))]
    del net.layer[:]
    data = net.layer.add(name="data", type="Input", top=["data"])
    data.input_param.shape.add(dim=[2, *data_shape])
    net.layer.extend(kept)
    return text_format.MessageToString(net)


def _env():
    import os

    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
