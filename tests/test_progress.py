"""Progress bars: opt-in in the API, on a terminal (or --progress) in the CLI, never with --quiet."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe.writer import write_caffemodel, write_hdf5_weights
from caffe2keras.cli import main

PROTOTXT = """
name: "small"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 3 kernel_size: 3 } }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 2 } }
"""


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    layers = [
        ("conv", "Convolution", [rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)]),
        ("fc", "InnerProduct", [rng.standard_normal((2, 12)), rng.standard_normal(2)]),
    ]
    (tmp_path / "net.prototxt").write_text(PROTOTXT)
    write_caffemodel(tmp_path / "net.caffemodel", layers)
    write_hdf5_weights(tmp_path / "net.caffemodel.h5", layers)
    return tmp_path


def test_api_shows_bars_only_when_asked(files, capsys):
    caffe2keras.convert(files / "net.prototxt", files / "net.caffemodel")
    assert capsys.readouterr().err == ""
    caffe2keras.convert(files / "net.prototxt", files / "net.caffemodel", progress=True)
    err = capsys.readouterr().err
    assert "reading" in err and "building" in err


@pytest.mark.parametrize(
    "flags, bars, summary", [([], False, True), (["--progress"], True, True), (["--quiet"], False, False)]
)
def test_cli_progress_and_quiet(files, capsys, flags, bars, summary):
    output = files / "out.keras"
    assert main(["convert", str(files / "net.prototxt"), str(files / "net.caffemodel"), "-o", str(output), *flags]) == 0
    captured = capsys.readouterr()
    assert ("saving" in captured.err) is bars  # pytest's stderr is not a terminal
    assert ("wrote" in captured.out) is summary
    assert output.exists()


def test_cli_refuses_progress_with_quiet(files):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(files / "net.prototxt"), "-o", str(files / "x.keras"), "--progress", "--quiet"])
    assert exit_info.value.code == 2


def test_model_outlives_its_mapped_caffemodel(files):
    mapped = caffe2keras.convert(files / "net.prototxt", files / "net.caffemodel")
    (files / "net.caffemodel").unlink()
    gc.collect()
    from_hdf5 = caffe2keras.convert(files / "net.prototxt", files / "net.caffemodel.h5")
    for a, b in zip(mapped.weights, from_hdf5.weights, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    x = np.random.default_rng(1).standard_normal((1, 4, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(mapped.predict_on_batch(x), from_hdf5.predict_on_batch(x))
