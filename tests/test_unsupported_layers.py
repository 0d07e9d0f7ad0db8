"""Python layers and unknown types: reported together, before anything is built, with what to do."""

from __future__ import annotations

import pytest

import caffe2keras
from caffe2keras.cli import main

NET = """name: "rcnn"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "proposal" type: "Python" bottom: "data" top: "rois"
        python_param { module: "rpn.anchor_target_layer" layer: "AnchorTargetLayer" param_str: "'feat_stride': 16" } }
layer { name: "target" type: "Python" bottom: "rois" top: "targets"
        python_param { module: "rpn.proposal_target_layer" layer: "ProposalTargetLayer" } }
layer { name: "again" type: "Python" bottom: "targets" top: "more"
        python_param { module: "rpn.anchor_target_layer" layer: "AnchorTargetLayer" } }
layer { name: "mystery" type: "FancyNorm" bottom: "more" top: "out" }
"""


@pytest.fixture
def prototxt(tmp_path):
    path = tmp_path / "rcnn.prototxt"
    path.write_text(NET)
    return path


def test_python_layers_and_unknown_types_are_listed_together(prototxt):
    with pytest.raises(caffe2keras.UnsupportedLayersError) as caught:
        caffe2keras.convert(prototxt)
    message = str(caught.value)
    assert "2 unsupported layer type(s)" in message
    python_line, unknown_line = message.splitlines()[1:3]
    # Every distinct Python class, once, and how to convert them without running their code.
    assert python_line.startswith(
        "  Python: 3 layers, first 'proposal' — rpn.anchor_target_layer.AnchorTargetLayer, "
        "rpn.proposal_target_layer.ProposalTargetLayer: caffe2keras never imports or runs"
    )
    assert "register a converter for type 'Python'" in python_line
    assert unknown_line == "  FancyNorm: 1 layer, first 'mystery'"
    assert [t for t, *_ in caught.value.unsupported] == ["Python", "FancyNorm"]
    assert message.endswith("Received: types='Python, FancyNorm'")


def test_cli_prints_the_report_without_a_traceback(prototxt, tmp_path, capsys):
    output = tmp_path / "out.keras"
    status = main(["convert", str(prototxt), "-o", str(output)])
    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == ""
    assert captured.err.startswith(
        f"caffe2keras: error: {prototxt}: 2 unsupported layer type(s) in the net:\n  Python: 3 layers"
    )
    assert "Traceback" not in captured.err
    assert "caffe2keras.register_converter()" in captured.err
    assert not list(tmp_path.glob("*.keras"))
