"""How the command line reads its options: where flags may go, what shapes it accepts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from caffe2keras.cli import build_parser, main
from tests.cli_process import REPO


@pytest.mark.parametrize(
    "argv",
    [
        ["--debug", "convert", "net.prototxt", "-o", "m.keras"],
        ["convert", "net.prototxt", "-o", "m.keras", "--debug"],
        ["zoo", "download", "mtcnn_pnet", "--debug"],
    ],
)
def test_debug_is_accepted_before_and_after_the_command(argv):
    assert build_parser().parse_args(argv).debug is True


def test_debug_after_the_command_shows_the_traceback(tmp_path):
    from caffe2keras.errors import Caffe2KerasError

    with pytest.raises(Caffe2KerasError):
        main(["convert", str(tmp_path / "missing.prototxt"), "-o", str(tmp_path / "m.keras"), "--debug"])


def test_without_debug_the_flag_is_off():
    assert build_parser().parse_args(["convert", "net.prototxt", "-o", "m.keras"]).debug is False


def test_an_input_shape_given_twice_is_refused(tmp_path, capsys):
    argv = ["convert", "net.prototxt", "-o", str(tmp_path / "m.keras")]
    assert main([*argv, "--input-shape", "data=1,3,8,8", "--input-shape", "data=1,3,9,9"]) == 2
    err = capsys.readouterr().err
    assert "--input-shape gives blob 'data' twice" in err and "Received: 'data=1,3,9,9'" in err


def test_a_size_below_one_is_refused_by_name(tmp_path, capsys):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text('input: "data"\nlayer { name: "r" type: "ReLU" bottom: "data" top: "r" }\n')
    assert main(["convert", str(prototxt), "-o", str(tmp_path / "m.keras"), "--input-shape", "data=0,1,28,28"]) == 1
    err = capsys.readouterr().err
    assert "sizes must be whole numbers >= 1" in err and "Received: input_shapes['data']=(0, 1, 28, 28)" in err
    assert not (tmp_path / "m.keras").exists()


def test_convert_help_describes_the_command_and_free_sizes(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "fill it with the caffemodel's weights" in text
    assert "? is a free size" in text


@pytest.mark.parametrize("exhausted", [MemoryError(), OSError(12, "Cannot allocate memory")])
def test_running_out_of_memory_is_a_clear_error_not_an_internal_one(tmp_path, monkeypatch, capsys, exhausted):
    import caffe2keras.api

    def convert(*args, **kwargs):
        raise exhausted

    monkeypatch.setattr(caffe2keras.api, "convert", convert)
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text('layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 } } }\n')
    assert main(["convert", str(prototxt), "-o", str(tmp_path / "m.keras")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("caffe2keras: error: out of memory") and "internal error" not in err
    assert not (tmp_path / "m.keras").exists()


def test_convert_summary_says_what_loading_needs_and_counts_no_mean(tmp_path, capsys):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(
        'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }\n'
        'layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" '
        "pooling_param { pool: MAX kernel_size: 3 stride: 2 } }\n"
        'layer { name: "relu" type: "ReLU" bottom: "data" top: "relu" }\n'
    )
    ceil = ["convert", str(prototxt), "-o", str(tmp_path / "ceil.keras"), "--outputs", "pool", "--mean", "1,2,3"]
    assert main(ceil) == 0
    out = capsys.readouterr().out
    assert "0 parameters" in out
    assert "loading: needs caffe2keras to load (import caffe2keras): CaffePooling2D, CaffePreprocessing" in out
    assert main(["convert", str(prototxt), "-o", str(tmp_path / "plain.keras"), "--outputs", "relu"]) == 0
    assert "loading: plain Keras: loads with Keras alone" in capsys.readouterr().out


@pytest.mark.slow
def test_the_convert_summary_leaves_tensorflow_unimported(tmp_path):
    """Keras' serializer imports TensorFlow to ask whether a value is one of its shapes: seconds and
    about 760 MB of address space, for a model on another backend that holds none."""
    pytest.importorskip("tensorflow")
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(
        'input: "data"\ninput_shape { dim: 1 dim: 3 dim: 4 dim: 4 }\n'
        'layer { name: "relu" type: "ReLU" bottom: "data" top: "relu" }\n'
    )
    code = (
        "import sys; from caffe2keras.cli import main; "
        f"status = main(['convert', {str(prototxt)!r}, '-o', {str(tmp_path / 'm.keras')!r}]); "
        "print(status, 'tensorflow' in sys.modules)"
    )
    environment = dict(os.environ, PYTHONPATH=str(REPO / "src"), KERAS_BACKEND="jax")
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines()[-1] == "0 False", result.stdout + result.stderr


def test_a_solver_file_is_named_as_one(tmp_path, capsys):
    solver = tmp_path / "lenet_solver.prototxt"
    solver.write_text(
        '# The train/test net protocol buffer definition\nnet: "lenet_train_test.prototxt"\nbase_lr: 0.01\n'
    )
    assert main(["convert", str(solver), "-o", str(tmp_path / "m.keras")]) == 1
    err = capsys.readouterr().err
    assert "a Caffe solver file" in err and "'lenet_train_test.prototxt': convert that prototxt" in err
    assert "caffe2keras train" in err and not list(tmp_path.glob("*.keras"))


def test_a_reader_closing_the_pipe_is_no_internal_error():
    """`caffe2keras layers | head -1`: the command stops quietly, with SIGPIPE's status, as Unix tools do."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: every write fails
    try:
        result = subprocess.run(
            [sys.executable, "-m", "caffe2keras", "layers"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=str(REPO / "src")),
            timeout=120,
            text=True,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, "")


def test_a_malformed_option_value_is_one_error_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "net.prototxt", "-o", "m.keras", "--scale", "x"])
    lines = capsys.readouterr().err.splitlines()
    assert exit_info.value.code == 2
    assert lines == ["caffe2keras: error: argument --scale: invalid float value: 'x' (see: caffe2keras convert --help)"]
