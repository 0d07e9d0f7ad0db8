"""`caffe2keras verify`: blob-by-blob comparison with real-Caffe blobs, OpenCV and (a stand-in for) pycaffe."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import types
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import caffe2keras
from caffe2keras.cli import main
from caffe2keras.verification import Status, compare
from caffe2keras.verification.inputs import read_input
from tests.shared import FORMATS, REPO, SHARED, requires_shared

cv2 = pytest.importorskip("cv2")

RAND = SHARED / "golden" / "rand"
SLICE_CASE = RAND / "rand1001"  # Slice (two tops) and in-place TanH/BNLL
SPLIT_CASE = RAND / "rand1002"  # an explicit Split layer and an in-place ReLU


def golden_blobs(case_dir: Path) -> dict[str, np.ndarray]:
    """Every blob real Caffe recorded for a case, keyed by blob name (``__`` in file names is ``/``)."""
    return {
        path.name[len("blob_") : -len(".npy")].replace("__", "/"): np.load(path)
        for path in sorted(case_dir.glob("blob_*.npy"))
    }


def write_npz(path: Path, blobs: dict[str, np.ndarray]) -> str:
    np.savez(path, **blobs)
    return str(path)


def case_args(case_dir: Path, weights: str = "weights.caffemodel") -> list[str]:
    return ["verify", str(case_dir / "deploy.prototxt"), str(case_dir / weights)]


# ---------------------------------------------------------------------------------------------
# The error measures, on hand-made values.


def test_compare_measures_abs_and_rel_error_against_max_abs_reference():
    c = compare(np.array([1.0, 2.5, -1.0]), np.array([1.0, 2.0, -4.0]), atol=1e-4, rtol=1e-4)
    assert c.max_abs_error == 3.0 and c.worst_index == (2,)
    assert c.max_rel_error == 3.0 / 4.0  # max|y - ref| / max|ref|
    assert c.allowed == pytest.approx(1e-4 + 1e-4 * 4.0)
    assert (c.value, c.reference_value) == (-1.0, -4.0)
    assert not c.within_tolerance


def test_compare_tolerance_is_inclusive_and_scales_with_the_reference():
    # allowed = 0.25 + 0.25 * max|ref| = 1.25 (all exact in binary)
    assert compare(np.array([5.25, 0.0]), np.array([4.0, -1.0]), atol=0.25, rtol=0.25).within_tolerance
    assert not compare(np.array([5.5, 0.0]), np.array([4.0, -1.0]), atol=0.25, rtol=0.25).within_tolerance


def test_compare_matching_nan_and_inf_are_equal_a_nan_against_a_number_is_not():
    same = compare(np.array([np.nan, np.inf, 1.0]), np.array([np.nan, np.inf, 1.0]))
    assert same.max_abs_error == 0.0 and same.within_tolerance
    assert compare(np.array([np.nan, 1.0]), np.array([0.0, 1.0])).max_abs_error == math.inf


def test_compare_zero_reference():
    assert compare(np.zeros(3), np.zeros(3)).max_rel_error == 0.0
    assert compare(np.ones(3), np.zeros(3)).max_rel_error == math.inf


# ---------------------------------------------------------------------------------------------
# Against real-Caffe blobs in a .npz (the acceptance test).


@requires_shared
@pytest.mark.parametrize("data_format", FORMATS)
def test_golden_blobs_pass_then_a_perturbed_middle_blob_is_the_first_divergence(data_format, tmp_path, capsys):
    blobs = golden_blobs(SLICE_CASE)
    good = write_npz(tmp_path / "good.npz", blobs)
    assert main([*case_args(SLICE_CASE), "--against", good, "--data-format", data_format]) == 0
    assert "OK: all 10 compared blobs within tolerance" in capsys.readouterr().out

    blobs["cat3"] = blobs["cat3"] + 0.5
    bad = write_npz(tmp_path / "bad.npz", blobs)
    assert main([*case_args(SLICE_CASE), "--against", bad, "--data-format", data_format]) == 1
    out = capsys.readouterr().out
    assert "FAILED: 1 of 10 compared blobs out of tolerance" in out
    assert "first divergence: cat3 (layer cat3, Concat)" in out


@requires_shared
def test_report_rows_follow_network_order_with_in_place_blobs_after_their_last_writer(tmp_path):
    blobs = golden_blobs(SLICE_CASE)
    blobs["deconv5"] = blobs["deconv5"] + 0.5  # written by deconv5, then in place by act6 (TanH)
    blobs["prob12"] = blobs["prob12"] + 0.5  # later in the net: not the first divergence
    report = caffe2keras.verify(SLICE_CASE / "deploy.prototxt", SLICE_CASE / "weights.caffemodel", against=blobs)
    assert [r.blob for r in report.rows] == [
        "data",
        "conv1",
        "slice2_a",
        "slice2_b",
        "cat3",
        "chsoftmax4",
        "deconv5",
        "deconv8",
        "flat10",
        "fc11",
        "prob12",
    ]
    assert report.rows[0].status is Status.INPUT
    deconv5 = report.rows[6]
    assert [(w.layer, w.type) for w in deconv5.writers] == [("deconv5", "Deconvolution"), ("act6", "TanH")]
    assert not report.ok
    assert report.first_divergence is deconv5
    assert (deconv5.layer, deconv5.layer_type) == ("act6", "TanH")
    assert deconv5.comparison.max_abs_error == pytest.approx(0.5, abs=1e-4)
    assert [r.blob for r in report.failures] == ["deconv5", "prob12"]
    assert report.describe_first_divergence()[0] == "first divergence: deconv5 (layer act6, TanH)"


@pytest.mark.parametrize("where", ["under_a_file", "a_directory", "proc"])
def test_an_unwritable_json_report_is_refused_before_the_run(where, tmp_path, capsys, monkeypatch):
    import caffe2keras.verification

    (tmp_path / "afile").write_text("")
    path, reason = {
        "under_a_file": (
            tmp_path / "afile" / "r.json",
            f"cannot write the file: {tmp_path / 'afile'} is not a directory",
        ),
        "a_directory": (tmp_path, "is a directory; give a file name."),
        "proc": (Path("/proc/r.json"), "cannot write the file: cannot create files in /proc"),
    }[where]
    if where == "proc" and not Path("/proc").is_dir():
        pytest.skip("no /proc here")

    def the_long_run(*args, **kwargs):
        raise AssertionError("the verification ran before the output was checked")

    monkeypatch.setattr(caffe2keras.verification, "verify", the_long_run)
    assert main(["verify", "net.prototxt", "net.caffemodel", "--json", str(path)]) == 2
    assert f"caffe2keras: error: {path}: {reason}" in capsys.readouterr().err
    assert not path.exists() or path.is_dir()


@requires_shared
def test_json_report_is_written_and_parses(tmp_path, capsys):
    blobs = golden_blobs(SLICE_CASE)
    blobs["slice2_b"] = blobs["slice2_b"] + 0.5
    report_path = tmp_path / "out" / "report.json"
    code = main([*case_args(SLICE_CASE), "--against", write_npz(tmp_path / "b.npz", blobs), "--json", str(report_path)])
    assert code == 1
    report = json.loads(report_path.read_text())
    assert report["ok"] is False
    assert report["first_divergence"] == {"blob": "slice2_b", "layer": "slice2", "type": "Slice"}
    assert report["reference"]["kind"] == "npz"
    assert report["tolerance"] == {"atol": 1e-4, "rtol": 1e-4, "rule": "max|y - ref| <= atol + rtol * max|ref|"}
    assert report["inputs"] == [{"blob": "data", "shape": [1, 1, 9, 24], "source": "the reference's input blob"}]
    rows = {row["blob"]: row for row in report["blobs"]}
    assert rows["slice2_b"]["status"] == "diverged"
    assert rows["slice2_b"]["max_abs_error"] == pytest.approx(0.5, abs=1e-4)
    assert rows["deconv8"]["writers"] == [
        {"layer": "deconv8", "type": "Deconvolution"},
        {"layer": "act9", "type": "BNLL"},
    ]
    assert report["counts"] == {
        "blobs": 11,
        "compared": 10,
        "ok": 9,
        "diverged": 1,
        "shape_mismatch": 0,
        "not_compared": 0,
        "input": 1,
    }
    assert not list(report_path.parent.glob(".*partial*"))


@requires_shared
def test_missing_blobs_are_not_compared_and_shapes_are_checked(tmp_path):
    blobs = golden_blobs(SLICE_CASE)
    del blobs["chsoftmax4"]
    blobs["fc11"] = blobs["fc11"].reshape(1, 6, 1, 1)  # same values, another shape: compared
    blobs["flat10"] = blobs["flat10"][:, :10]  # another size: a mismatch
    blobs["extra"] = np.zeros(3, np.float32)
    report = caffe2keras.verify(SLICE_CASE / "deploy.prototxt", SLICE_CASE / "weights.caffemodel", against=blobs)
    rows = {r.blob: r for r in report.rows}
    assert rows["chsoftmax4"].status is Status.NOT_COMPARED
    assert rows["fc11"].status is Status.OK and "(1, 6, 1, 1)" in rows["fc11"].note
    assert rows["flat10"].status is Status.SHAPE_MISMATCH
    assert report.first_divergence is rows["flat10"]
    assert report.reference_only_blobs == ["extra"]


@requires_shared
def test_nothing_to_compare_is_exit_2(tmp_path, capsys):
    only_input = write_npz(tmp_path / "in.npz", {"data": np.load(SLICE_CASE / "in_data.npy")})
    assert main([*case_args(SLICE_CASE), "--against", only_input]) == 2
    captured = capsys.readouterr()
    assert "NOT VERIFIED: no blob could be compared" in captured.out
    assert "nothing was compared" in captured.err


# ---------------------------------------------------------------------------------------------
# Against OpenCV 4.x's Caffe runtime.


@requires_shared
@pytest.mark.slow
def test_opencv_passes_on_zoo_squeezenet(zoo_weights, tmp_path, capsys):
    case_dir = SHARED / "golden" / "zoo" / "squeezenet_v1.1"
    prototxt = SHARED / "caffe" / "models" / "squeezenet_v1.1" / "deploy.prototxt"
    report_path = tmp_path / "squeezenet.json"
    code = main(
        [
            "verify",
            str(prototxt),
            str(zoo_weights(case_dir)),
            "--against",
            "opencv",
            "--input",
            str(case_dir / "in_data.npy"),
            "--json",
            str(report_path),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(report_path.read_text())
    assert report["reference"]["kind"] == "opencv"
    assert report["counts"]["compared"] == 39 and report["counts"]["not_compared"] == 0
    assert {row["blob"] for row in report["blobs"]} >= {"fire9/concat", "pool10", "prob"}


@requires_shared
def test_opencv_second_tops_and_split_tops_match_real_caffe():
    """OpenCV reuses the memory of a layer's later outputs, and drops Split layers: both are handled."""
    from caffe2keras.api import load_graph
    from caffe2keras.verification import blob_writers
    from caffe2keras.verification.references import OpenCVReference

    for case_dir, names in (
        (SLICE_CASE, ("slice2_a", "slice2_b", "deconv5")),
        (SPLIT_CASE, ("split2_a", "split2_b", "fc7")),
    ):
        prototxt, weights = case_dir / "deploy.prototxt", case_dir / "weights.caffemodel"
        graph = load_graph(prototxt)
        reference = OpenCVReference(prototxt, weights)
        values = reference.run(
            graph, {"data": np.load(case_dir / "in_data.npy")}, [ref for ref, _ in blob_writers(graph)]
        )
        golden = golden_blobs(case_dir)
        for name in names:
            np.testing.assert_allclose(values[name], golden[name], atol=1e-5, err_msg=f"{case_dir.name}: {name}")


@requires_shared
def test_opencv_verifies_a_case_with_a_split_layer(capsys):
    assert main([*case_args(SPLIT_CASE), "--input", str(SPLIT_CASE / "in_data.npy")]) == 0
    out = capsys.readouterr().out
    assert "input data (2, 1, 11, 11)" in out and "not compared" not in out


@requires_shared
def test_opencv_refuses_hdf5_weights(capsys):
    assert main([*case_args(SLICE_CASE, "weights.caffemodel.h5"), "--against", "opencv"]) == 2
    err = capsys.readouterr().err
    assert "OpenCV reads only binary .caffemodel weights" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# Against pycaffe: a stand-in module with pycaffe's API, serving the blobs real Caffe computed.


class FakeBlob:
    def __init__(self, shape):
        self.data = np.zeros(shape, np.float32)

    def reshape(self, *shape):
        self.data = np.zeros(shape, np.float32)


def fake_pycaffe(case_dir: Path, calls: list) -> types.ModuleType:
    golden = golden_blobs(case_dir)
    expected_input = np.load(case_dir / "in_data.npy")

    class Net:
        def __init__(self, prototxt, weights, phase):
            calls.append(("Net", prototxt, weights, phase))
            assert phase == module.TEST
            # pycaffe also lists the blobs of the Split layers Caffe inserts itself.
            self.blobs = OrderedDict((name, FakeBlob(value.shape)) for name, value in golden.items())
            self.blobs["conv1_split_0"] = FakeBlob(golden["conv1"].shape)

        def reshape(self):
            calls.append(("reshape",))

        def forward(self):
            calls.append(("forward",))
            assert np.array_equal(self.blobs["data"].data, expected_input), "not the input Caffe ran on"
            for name, value in golden.items():
                self.blobs[name].data[...] = value
            return {}

    module = types.ModuleType("caffe")
    module.TEST, module.TRAIN, module.Net = 1, 0, Net
    return module


@requires_shared
def test_pycaffe_reference_through_its_api(monkeypatch, capsys):
    calls = []
    monkeypatch.setitem(sys.modules, "caffe", fake_pycaffe(SLICE_CASE, calls))
    args = [*case_args(SLICE_CASE), "--against", "caffe", "--input", f"data={SLICE_CASE / 'in_data.npy'}"]
    assert main(args) == 0
    assert "OK: all 10 compared blobs within tolerance" in capsys.readouterr().out
    prototxt, weights = (str(p) for p in (SLICE_CASE / "deploy.prototxt", SLICE_CASE / "weights.caffemodel"))
    assert calls == [("Net", prototxt, weights, 1), ("forward",)]


@requires_shared
def test_pycaffe_reshapes_its_input_blob_to_the_given_input(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "caffe", fake_pycaffe(SLICE_CASE, calls))
    module = sys.modules["caffe"]
    original_init = module.Net.__init__

    def init_with_batch_10(self, *args):
        original_init(self, *args)
        self.blobs["data"] = FakeBlob((10, 1, 9, 24))  # like an old deploy file's input_dim: 10

    monkeypatch.setattr(module.Net, "__init__", init_with_batch_10)
    report = caffe2keras.verify(
        SLICE_CASE / "deploy.prototxt",
        SLICE_CASE / "weights.caffemodel",
        against="caffe",
        inputs=np.load(SLICE_CASE / "in_data.npy"),
    )
    assert report.ok
    assert ("reshape",) in calls and report.reference_kind == "caffe"


def test_without_pycaffe_the_error_says_what_to_use_instead(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "caffe", None)  # `import caffe` raises ImportError
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(
        'input: "data" input_shape { dim: 1 dim: 2 } layer { name: "r" type: "ReLU" bottom: "data" top: "r" }'
    )
    assert main(["verify", str(prototxt), str(tmp_path / "none.caffemodel"), "--against", "caffe"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("caffe2keras: error: --against caffe needs pycaffe") and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# Inputs.


def test_image_input_is_resized_bgr_0_to_255_chw(tmp_path):
    image = np.zeros((7, 5, 3), np.uint8)
    image[...] = (10, 20, 30)  # B, G, R as OpenCV stores them
    path = tmp_path / "pixel.png"
    cv2.imwrite(str(path), image)
    array, source = read_input(str(path), (1, 3, 4, 6), "data")
    assert array.shape == (1, 3, 4, 6) and array.dtype == np.float32
    assert np.array_equal(array[0, :, 0, 0], [10.0, 20.0, 30.0]) and np.ptp(array[0], axis=(1, 2)).max() == 0
    assert "BGR" in source and "4x6" in source
    gray, _ = read_input(str(path), (1, 1, 3, 3), "data")
    assert gray.shape == (1, 1, 3, 3)


def test_npy_input_gets_a_batch_axis_and_wrong_ranks_are_refused(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((3, 4, 4), np.float64))
    array, _ = read_input(str(tmp_path / "x.npy"), (1, 3, 4, 4), "data")
    assert array.shape == (1, 3, 4, 4) and array.dtype == np.float32
    with pytest.raises(caffe2keras.InputShapeError, match="has shape \\(3, 4, 4\\), the net's input is 2-D"):
        read_input(str(tmp_path / "x.npy"), (1, 3), "data")


@requires_shared
def test_random_inputs_are_deterministic(tmp_path):
    blobs_report = [
        caffe2keras.verify(SLICE_CASE / "deploy.prototxt", SLICE_CASE / "weights.caffemodel", seed=seed)
        for seed in (0, 0)
    ]
    first, second = ({r.blob: r.comparison.value for r in report.rows if r.comparison} for report in blobs_report)
    assert first == second
    assert blobs_report[0].inputs[0].source == "random normal (seed 0)"


@requires_shared
@pytest.mark.parametrize(
    "extra, message",
    [
        (["--against", "nonsense"], "the reference must be 'opencv', 'caffe', or a .npz file"),
        (["--input", "missing.npy"], "input file 'missing.npy' for blob 'data' does not exist"),
        (["--input", "a.npy", "--input", "b.npy"], "name the blob of each: --input BLOB=FILE"),
        (["--input", "label=x.npy"], "'label' is not an input of the net"),
        (["--input-shape", "data=1,1,9,24", "--input-shape", "nope=1"], "input_shapes names blobs that are not inputs"),
    ],
)
def test_usage_errors_exit_2_without_traceback(extra, message, capsys):
    assert main([*case_args(SLICE_CASE), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@requires_shared
def test_blob_file_inputs_must_be_there_unless_given(tmp_path, capsys):
    blobs = golden_blobs(SLICE_CASE)
    data = blobs.pop("data")
    npz = write_npz(tmp_path / "no_input.npz", blobs)
    assert main([*case_args(SLICE_CASE), "--against", npz]) == 2
    assert "lack the net's input blob 'data'" in capsys.readouterr().err
    np.save(tmp_path / "data.npy", data)
    assert main([*case_args(SLICE_CASE), "--against", npz, "--input", str(tmp_path / "data.npy")]) == 0


def test_blob_file_cannot_give_an_input_that_is_rewritten_in_place(tmp_path, capsys):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 } } }\n'
        'layer { name: "double" type: "Power" bottom: "data" top: "data" power_param { scale: 2 } }\n'
        'layer { name: "relu" type: "ReLU" bottom: "data" top: "out" }\n'
    )
    npz = write_npz(tmp_path / "blobs.npz", {"data": np.ones((1, 2), np.float32), "out": np.ones((1, 2), np.float32)})
    assert main(["verify", str(prototxt), str(tmp_path / "none.caffemodel"), "--against", npz]) == 2
    assert "rewritten in place by layer 'double' (Power)" in capsys.readouterr().err
    report = caffe2keras.verify(
        prototxt,
        None,
        against={"data": np.ones((1, 2)), "out": np.full((1, 2), 2.0)},
        inputs=np.array([[1.0, -3.0]], np.float32),
    )
    rows = {r.blob: r for r in report.rows}
    assert rows["data"].status is Status.DIVERGED  # 2 * [1, -3] against the ones given for its final value
    assert rows["data"].writers[0].layer == "double" and [r.blob for r in report.rows] == ["data", "out"]


def test_a_net_that_does_not_convert_is_exit_2_not_a_divergence(tmp_path, capsys):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 } } }\n'
        'layer { name: "py" type: "Python" bottom: "data" top: "out" python_param { module: "m" layer: "L" } }\n'
    )
    assert main(["verify", str(prototxt), str(tmp_path / "none.caffemodel")]) == 2
    err = capsys.readouterr().err
    assert "unsupported layer type" in err and "Traceback" not in err


def test_negative_tolerance_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["verify", "net.prototxt", "w.caffemodel", "--atol", "-1"])
    assert exc.value.code == 2 and "must be a number >= 0" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------


@requires_shared
def test_command_line_in_a_subprocess(tmp_path):
    blobs = golden_blobs(SLICE_CASE)
    blobs["chsoftmax4"] = blobs["chsoftmax4"] + 0.5
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "caffe2keras",
            *case_args(SLICE_CASE),
            "--against",
            write_npz(tmp_path / "b.npz", blobs),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "first divergence: chsoftmax4 (layer chsoftmax4, Softmax)" in result.stdout
    assert "\x1b[" not in result.stdout  # no colour codes in a pipe
    assert "Traceback" not in result.stderr
