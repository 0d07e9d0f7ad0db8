"""Every way a user can hand us a broken model: one clear error, the right exception, no output file.

The CLI must print one ``caffe2keras: error: ...`` message naming the layer, type, field and value
where there is one, exit non-zero without a traceback, and leave no ``.keras`` (nor a
``.partial.keras``) behind; an existing output file is left as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import caffe2keras
from caffe2keras import (
    InputShapeError,
    LayerError,
    ModelFileError,
    ShapeError,
    UnsupportedLayersError,
    UnsupportedParameterError,
    WeightsError,
)
from caffe2keras.caffe.writer import layer_bytes, write_caffemodel
from caffe2keras.cli import main
from tests.shared import REPO, SHARED, requires_shared

NET = """name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param { num_output: 5 } }
"""


def _blobs(*shapes):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(np.float32) for shape in shapes]


GOOD_WEIGHTS = [("conv1", "Convolution", _blobs((4, 3, 3, 3), (4,))), ("fc", "InnerProduct", _blobs((5, 144), (5,)))]


@dataclass
class Broken:
    """A broken input: its files, the exception it must raise and what the message must name."""

    prototxt: Path
    weights: Path | None
    error: type
    names: tuple[str, ...]
    attributes: dict | None = None  # LayerError attributes, or UnsupportedLayersError.unsupported

    def argv(self, output: Path) -> list[str]:
        files = [str(self.prototxt)] + ([str(self.weights)] if self.weights else [])
        return ["convert", *files, "-o", str(output)]


def _write(directory: Path, name: str, content: str | bytes) -> Path:
    path = directory / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return path


def _net_with(directory: Path, weights) -> tuple[Path, Path]:
    weights_path = directory / "weights.caffemodel"
    write_caffemodel(weights_path, weights)
    return _write(directory, "net.prototxt", NET), weights_path


def truncated_ours(d: Path, fraction: float) -> Broken:
    prototxt, weights = _net_with(d, GOOD_WEIGHTS)
    data = weights.read_bytes()
    cut = _write(d, "cut.caffemodel", data[: max(1, int(len(data) * fraction))])
    return Broken(prototxt, cut, ModelFileError, ("cut.caffemodel", "truncated or corrupt"))


def truncated_at_layer_boundary(d: Path) -> Broken:
    # Cut exactly after conv1: the prefix parses, and fc's weights are missing. Caffe would keep
    # what fc's filler made; a random filler is refused (a constant one would convert, with a warning).
    _, weights = _net_with(d, GOOD_WEIGHTS)
    prototxt = _write(
        d, "net.prototxt", NET.replace("num_output: 5", 'num_output: 5 weight_filler { type: "gaussian" }')
    )
    boundary = len(layer_bytes(*GOOD_WEIGHTS[0]))
    cut = _write(d, "cut.caffemodel", weights.read_bytes()[:boundary])
    return Broken(
        prototxt,
        cut,
        WeightsError,
        ("'fc'", "InnerProduct", "random 'gaussian' filler", "inner_product_param.weight_filler='gaussian'"),
        {
            "layer": "fc",
            "layer_type": "InnerProduct",
            "field": "inner_product_param.weight_filler",
            "value": "gaussian",
        },
    )


def empty_weights(d: Path) -> Broken:
    prototxt, _ = _net_with(d, GOOD_WEIGHTS)
    return Broken(prototxt, _write(d, "empty.caffemodel", b""), ModelFileError, ("empty.caffemodel", "no layers"))


def corrupt_weights(d: Path) -> Broken:
    prototxt, _ = _net_with(d, GOOD_WEIGHTS)
    noise = np.random.default_rng(1).bytes(4096)
    return Broken(prototxt, _write(d, "noise.caffemodel", noise), ModelFileError, ("noise.caffemodel", "corrupt"))


def corrupt_hdf5(d: Path) -> Broken:
    prototxt, _ = _net_with(d, GOOD_WEIGHTS)
    junk = b"\x89HDF\r\n\x1a\n" + np.random.default_rng(2).bytes(512)
    return Broken(prototxt, _write(d, "junk.caffemodel.h5", junk), ModelFileError, ("junk.caffemodel.h5", "HDF5"))


def prototxt_as_weights(d: Path) -> Broken:
    prototxt, _ = _net_with(d, GOOD_WEIGHTS)
    return Broken(prototxt, prototxt, ModelFileError, ("net.prototxt", "not a readable binary caffemodel"))


def weights_as_prototxt(d: Path) -> Broken:
    _, weights = _net_with(d, GOOD_WEIGHTS)
    return Broken(weights, None, ModelFileError, ("weights.caffemodel", "not a text file"))


def missing_file(d: Path) -> Broken:
    prototxt, _ = _net_with(d, GOOD_WEIGHTS)
    return Broken(prototxt, d / "nowhere.caffemodel", ModelFileError, ("nowhere.caffemodel", "no such file"))


def num_output_mismatch(d: Path) -> Broken:
    prototxt, weights = _net_with(d, [("conv1", "Convolution", _blobs((6, 3, 3, 3), (6,))), GOOD_WEIGHTS[1]])
    return Broken(
        prototxt,
        weights,
        WeightsError,
        ("'conv1'", "Convolution", "(6, 3, 3, 3)", "(4, 3, 3, 3)", "convolution_param.num_output=4"),
        {"layer": "conv1", "layer_type": "Convolution", "field": "convolution_param.num_output", "value": 4},
    )


def missing_layer(d: Path) -> Broken:
    # fc is in the file with no blobs: Caffe refuses the count (a layer absent from the file
    # would keep its fillers' values instead).
    prototxt, weights = _net_with(d, [GOOD_WEIGHTS[0], ("fc", "InnerProduct", [])])
    return Broken(
        prototxt,
        weights,
        WeightsError,
        ("'fc'", "InnerProduct", "(5, 144)"),
        {"layer": "fc", "layer_type": "InnerProduct"},
    )


def extra_blob(d: Path) -> Broken:
    prototxt, weights = _net_with(d, [("conv1", "Convolution", _blobs((4, 3, 3, 3), (4,), (4,))), GOOD_WEIGHTS[1]])
    return Broken(
        prototxt,
        weights,
        WeightsError,
        ("'conv1'", "Convolution", "3 blobs", "blobs=3"),
        {"layer": "conv1", "layer_type": "Convolution", "field": "blobs", "value": 3},
    )


def syntax_error(d: Path) -> Broken:
    text = NET.replace("num_output: 4 kernel_size: 3 }", "num_output: 4 kernel_size: 3")
    return Broken(_write(d, "net.prototxt", text), None, ModelFileError, ("net.prototxt", "line 5", "closing '}'"))


def unknown_field(d: Path) -> Broken:
    text = NET.replace("num_output: 4", "num_ouput: 4")
    return Broken(
        _write(d, "net.prototxt", text),
        None,
        ModelFileError,
        ("net.prototxt", "ConvolutionParameter", '"num_ouput"', "extend_schema"),
    )


def bad_enum(d: Path) -> Broken:
    text = NET.replace('type: "ReLU"', 'type: "ReLU" relu_param { engine: FAST }')
    return Broken(_write(d, "net.prototxt", text), None, ModelFileError, ("net.prototxt", "FAST"))


def missing_input_shape(d: Path) -> Broken:
    text = NET.replace(" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } }", "")
    return Broken(_write(d, "net.prototxt", text), None, InputShapeError, ("'data'", "--input-shape"))


def missing_legacy_input_shape(d: Path) -> Broken:
    text = 'input: "data"\n' + "\n".join(line for line in NET.splitlines() if "Input" not in line)
    return Broken(_write(d, "net.prototxt", text), None, InputShapeError, ("'data'", "'input' field"))


UNSUPPORTED_LAYERS = """
layer { name: "py1" type: "Python" bottom: "fc" top: "py1" python_param { module: "my.mod" layer: "Thing" } }
layer { name: "fancy1" type: "FancyLayer" bottom: "py1" top: "f1" }
layer { name: "py2" type: "Python" bottom: "f1" top: "py2" }
layer { name: "fancy2" type: "FancyLayer" bottom: "py2" top: "f2" }
layer { name: "fancy3" type: "FancyLayer" bottom: "f2" top: "f3" }
layer { name: "odd" type: "AnotherOne" bottom: "f3" top: "f4" }
"""


def unsupported_types(d: Path) -> Broken:
    return Broken(
        _write(d, "net.prototxt", NET + UNSUPPORTED_LAYERS),
        None,
        UnsupportedLayersError,
        (
            "3 unsupported layer type(s)",
            "Python: 2 layers, first 'py1'",
            "my.mod.Thing",
            "FancyLayer: 3 layers, first 'fancy1'",
            "AnotherOne: 1 layer, first 'odd'",
        ),
        {"unsupported": [("Python", 2, "py1"), ("FancyLayer", 3, "fancy1"), ("AnotherOne", 1, "odd")]},
    )


V0_NET = """name: "v0"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layers { layer { name: "pad1" type: "padding" pad: 1 } bottom: "data" top: "pad1" }
layers { layer { name: "fc1" type: "innerproduct" num_output: 4 } bottom: "pad1" top: "fc1" }
"""


def v0_padding_into_inner_product(d: Path) -> Broken:
    # Caffe's V0 upgrade merges a padding layer only into the convolution or pooling it feeds.
    return Broken(
        _write(d, "net.prototxt", V0_NET),
        None,
        ModelFileError,
        ("net.prototxt", "padding layer 'pad1'", "'fc1'", "'innerproduct'", "conv or pool"),
    )


def group_mismatch(d: Path) -> Broken:
    text = NET.replace("kernel_size: 3", "kernel_size: 3 group: 2")
    return Broken(
        _write(d, "net.prototxt", text),
        None,
        ShapeError,
        ("'conv1'", "Convolution", "convolution_param.group=2"),
        {"layer": "conv1", "layer_type": "Convolution", "field": "convolution_param.group", "value": 2},
    )


def _layer_after_net(d: Path, layer: str, error: type, names: tuple[str, ...], attributes: dict | None = None):
    """NET with ``layer`` appended, broken as ``error`` says."""
    return Broken(_write(d, "net.prototxt", NET + layer + "\n"), None, error, names, attributes)


def softmax_over_batch(d: Path) -> Broken:
    return _layer_after_net(
        d,
        'layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" softmax_param { axis: 0 } }',
        UnsupportedParameterError,
        ("'prob'", "Softmax", "softmax_param.axis=0"),
        {"layer": "prob", "layer_type": "Softmax", "field": "softmax_param.axis", "value": 0},
    )


def reduction_over_batch(d: Path) -> Broken:
    # Reduction's default axis 0 sums the whole batch into one number.
    return _layer_after_net(
        d,
        'layer { name: "total" type: "Reduction" bottom: "conv1" top: "total" }',
        UnsupportedParameterError,
        ("'total'", "Reduction", "reduction_param.axis=0"),
    )


def pooling_past_its_input(d: Path) -> Broken:
    # conv1's top is 6x6: a 7x7 window leaves nothing (Caffe would make a top of no values).
    return _layer_after_net(
        d,
        'layer { name: "pool" type: "Pooling" bottom: "conv1" top: "pool" pooling_param { kernel_size: 7 } }',
        ShapeError,
        ("'pool'", "Pooling", "empty", "pooling_param.kernel_size=(7, 7)"),
        {"layer": "pool", "layer_type": "Pooling", "field": "pooling_param.kernel_size", "value": (7, 7)},
    )


BROKEN = {
    "truncated_10": lambda d: truncated_ours(d, 0.1),
    "truncated_half": lambda d: truncated_ours(d, 0.5),
    "truncated_last_byte": lambda d: truncated_ours(d, 0.9999),
    "truncated_at_layer_boundary": truncated_at_layer_boundary,
    "empty_weights": empty_weights,
    "corrupt_weights": corrupt_weights,
    "corrupt_hdf5": corrupt_hdf5,
    "prototxt_as_weights": prototxt_as_weights,
    "weights_as_prototxt": weights_as_prototxt,
    "missing_file": missing_file,
    "num_output_mismatch": num_output_mismatch,
    "missing_layer": missing_layer,
    "extra_blob": extra_blob,
    "syntax_error": syntax_error,
    "unknown_field": unknown_field,
    "bad_enum": bad_enum,
    "missing_input_shape": missing_input_shape,
    "missing_legacy_input_shape": missing_legacy_input_shape,
    "unsupported_types": unsupported_types,
    "v0_padding_into_inner_product": v0_padding_into_inner_product,
    "group_mismatch": group_mismatch,
    "softmax_over_batch": softmax_over_batch,
    "reduction_over_batch": reduction_over_batch,
    "pooling_past_its_input": pooling_past_its_input,
}


def _assert_clean_failure(
    code: int, stderr: str, stdout: str, broken: Broken, output_dir: Path, one_line: bool = True
) -> None:
    assert code == 1, stderr
    assert "Traceback" not in stderr
    assert stdout == ""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[0].startswith("caffe2keras: error: "), stderr
    if one_line and broken.error is not UnsupportedLayersError:  # that one lists a line per type
        assert len(lines) == 1, stderr
    for name in broken.names:
        assert name in stderr, f"{name!r} not in: {stderr}"
    assert sorted(p.name for p in output_dir.iterdir()) == [], "the CLI left files behind"


@pytest.mark.parametrize("kind", list(BROKEN))
def test_cli_refuses_cleanly(kind, tmp_path, capsys):
    broken = BROKEN[kind](tmp_path)
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    code = main(broken.argv(output_dir / "model.keras"))
    captured = capsys.readouterr()
    _assert_clean_failure(code, captured.err, captured.out, broken, output_dir)


@pytest.mark.parametrize("kind", list(BROKEN))
def test_api_raises_the_right_error(kind, tmp_path):
    broken = BROKEN[kind](tmp_path)
    with pytest.raises(broken.error) as raised:
        caffe2keras.convert(broken.prototxt, broken.weights)
    assert type(raised.value) is broken.error
    for name in broken.names:
        assert name in str(raised.value)
    expected = broken.attributes or {}
    if isinstance(raised.value, LayerError):
        for attribute, value in expected.items():
            assert getattr(raised.value, attribute) == value, attribute
        source = broken.weights if isinstance(raised.value, WeightsError) else broken.prototxt
        assert raised.value.path == str(source)
        assert str(raised.value).startswith(f"{source}: Layer {raised.value.layer!r} ({raised.value.layer_type}): ")
    if isinstance(raised.value, UnsupportedLayersError):
        assert [u[:3] for u in raised.value.unsupported] == expected["unsupported"]


def test_cli_in_a_subprocess(tmp_path):
    """The installed entry point: a real process, real stderr, and its exit status."""
    broken = num_output_mismatch(tmp_path)
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "caffe2keras", *broken.argv(output_dir / "model.keras")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    # Libraries may warn on stderr at import; the error is our one line.
    errors = [line for line in result.stderr.splitlines() if line.startswith("caffe2keras:")]
    assert len(errors) == 1, result.stderr
    _assert_clean_failure(result.returncode, errors[0], result.stdout, broken, output_dir)


def test_a_failed_conversion_keeps_the_previous_output(tmp_path, capsys):
    broken = num_output_mismatch(tmp_path)
    output = tmp_path / "model.keras"
    output.write_bytes(b"the previous model")
    assert main(broken.argv(output)) == 1
    assert output.read_bytes() == b"the previous model"
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".keras") == ["model.keras"]


def test_a_failed_save_leaves_no_partial_file(tmp_path, capsys, monkeypatch):
    from caffe2keras import saving

    prototxt, weights = _net_with(tmp_path, GOOD_WEIGHTS)
    output_dir = tmp_path / "out"

    def save_half_then_fail(model, path, **kwargs):
        Path(path).write_bytes(b"half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(saving, "save_model", save_half_then_fail)
    assert main(["convert", str(prototxt), str(weights), "-o", str(output_dir / "model.keras")]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"caffe2keras: error: {output_dir / 'model.keras'}: cannot write the file: No space left on device."
    )
    assert list(output_dir.iterdir()) == []


def test_an_output_under_a_file_is_a_clean_error(tmp_path, capsys):
    prototxt, weights = _net_with(tmp_path, GOOD_WEIGHTS)
    (tmp_path / "not_a_dir").write_text("")
    assert main(["convert", str(prototxt), str(weights), "-o", str(tmp_path / "not_a_dir" / "m.keras")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("caffe2keras: error: ") and "cannot write the file" in err and "Traceback" not in err


def test_output_must_be_a_keras_file(tmp_path, capsys):
    prototxt, weights = _net_with(tmp_path, GOOD_WEIGHTS)
    assert main(["convert", str(prototxt), str(weights), "-o", str(tmp_path / "model.h5")]) == 2
    assert "must be a .keras, .onnx or .tflite file" in capsys.readouterr().err
    assert not (tmp_path / "model.h5").exists()


# Real caffemodels written by Caffe itself, cut at several points.
REAL_MODELS = [
    ("golden/trained/lenet_mnist/weights.caffemodel", "caffe/trained/lenet_mnist/lenet.prototxt"),
    ("caffe/trained/lenet_mnist/lenet_iter_10000.caffemodel", "caffe/trained/lenet_mnist/lenet.prototxt"),
]


@requires_shared
@pytest.mark.parametrize("fraction", [0.00001, 0.25, 0.5, 0.75, 0.99999])
@pytest.mark.parametrize("weights, prototxt", REAL_MODELS, ids=["current_format", "v1_format"])
def test_truncated_real_caffemodel(weights, prototxt, fraction, tmp_path, capsys):
    data = (SHARED / weights).read_bytes()
    cut = _write(tmp_path, "cut.caffemodel", data[: max(1, int(len(data) * fraction))])
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    broken = Broken(SHARED / prototxt, cut, ModelFileError, ("cut.caffemodel", "truncated or corrupt"))
    code = main(broken.argv(output_dir / "model.keras"))
    captured = capsys.readouterr()
    _assert_clean_failure(code, captured.err, captured.out, broken, output_dir)
    with pytest.raises(ModelFileError):
        caffe2keras.convert(SHARED / prototxt, cut)
