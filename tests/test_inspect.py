"""`caffe2keras inspect`: the layer table, its totals, and the --graph drawing."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.cli import main
from caffe2keras.summary import summarize
from tests.shared import SHARED, requires_shared

SVG = "{http://www.w3.org/2000/svg}"

NET = """
name: "mixed"
layer { name: "data" type: "Data" top: "data" top: "label" }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "py" type: "Python" bottom: "conv" top: "py" python_param { module: "mine" layer: "Gate" } }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 2 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""


@pytest.fixture
def mixed(tmp_path):
    prototxt = tmp_path / "mixed.prototxt"
    prototxt.write_text(NET)
    return prototxt


def test_rows_say_how_each_layer_converts_or_why_not(mixed):
    summary = summarize(mixed, input_shapes={"data": (1, 3, 5, 5)})
    rows = {row.name: row for row in summary.rows}
    assert [row.name for row in summary.rows] == ["data", "conv", "relu", "py", "fc", "loss"]
    assert rows["data"].status == "input" and rows["data"].top_shapes == ((1, 3, 5, 5), None)
    assert (rows["conv"].keras, rows["conv"].parameters, rows["conv"].top_shapes) == (
        "Conv2D",
        4 * 27 + 4,
        ((1, 4, 3, 3),),
    )
    assert rows["relu"].bottoms == rows["relu"].tops == ("conv",)
    assert rows["py"].status == "unsupported" and rows["py"].reason.startswith("mine.Gate: ")
    assert rows["fc"].keras == "Flatten → Dense" and rows["fc"].parameters == 36 * 2 + 2
    assert rows["loss"].status == "dropped"
    assert not summary.convertible
    assert summary.parameters == 112 + 74
    assert summary.totals.startswith("6 layers (3 ok, 1 input, 1 dropped, 1 unsupported); 186 parameters")
    assert summary.totals.endswith("unsupported types: Python")


def test_unknown_input_shapes_leave_the_shapes_unknown_not_an_error(mixed):
    summary = summarize(mixed)
    rows = {row.name: row for row in summary.rows}
    assert rows["conv"].status == "unknown" and rows["conv"].top_shapes == (None,)
    assert "--input-shape" in summary.totals
    # fc reads conv as the in-place ReLU left it: the reason names Caffe's blob, not a graph version.
    assert rows["fc"].status == "unknown" and rows["fc"].reason == "the shape of conv is not known"


def test_weights_give_the_counts_and_blobs_that_do_not_fit_are_errors(mixed, tmp_path):
    weights = tmp_path / "mixed.caffemodel"
    zeros = np.zeros
    write_caffemodel(
        weights, [("conv", "Convolution", [zeros((4, 3, 3, 3)), zeros(4)]), ("fc", "InnerProduct", [zeros((2, 35))])]
    )
    rows = {row.name: row for row in summarize(mixed, weights, input_shapes={"data": (1, 3, 5, 5)}).rows}
    assert rows["conv"].status == "ok" and rows["conv"].parameters == 112
    assert rows["fc"].status == "error" and "(2, 35)" in rows["fc"].reason and rows["fc"].parameters == 70


def test_cli_prints_the_table_and_draws_unsupported_layers_in_red(mixed, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "240")  # one table row per line, whatever terminal runs the tests
    svg = tmp_path / "net.svg"
    status = main(["inspect", str(mixed), "--input-shape", "data=1,3,5,5", "--graph", str(svg)])
    out = capsys.readouterr().out
    assert status == 1  # a layer cannot be converted
    assert "Flatten → Dense" in out and "6 layers" in out and f"wrote {svg}" in out
    nodes = _nodes(svg)
    assert "unsupported" in nodes["layer:py"]["class"].split()
    assert nodes["layer:conv"]["text"] == ["conv (Convolution)", "relu (ReLU)"]  # the in-place ReLU, folded
    assert "layer:relu" not in nodes and "layer:loss" not in nodes


def test_cli_refuses_a_graph_file_that_is_not_svg(mixed, capsys):
    assert main(["inspect", str(mixed), "--graph", "net.png"]) == 2
    assert "--graph writes an .svg file" in capsys.readouterr().err


def _nodes(path) -> dict[str, dict]:
    root = ET.parse(path).getroot()
    return {
        g.get("id"): {"class": g.get("class"), "text": [t.text for t in g.iter(f"{SVG}text")]}
        for g in root.iter(f"{SVG}g")
    }


@pytest.mark.slow
@requires_shared
@pytest.mark.parametrize("name", ["bvlc_googlenet", "resnet50"])
def test_graph_of_zoo_nets(name, tmp_path, capsys):
    from caffe2keras.caffe import read_net
    from caffe2keras.graph import build_graph

    prototxt = SHARED / "caffe" / "models" / name / "deploy.prototxt"
    svg = tmp_path / "net.svg"
    assert main(["inspect", str(prototxt), "--graph", str(svg)]) == 0
    nodes = _nodes(svg)
    graph = build_graph(read_net(prototxt))
    in_place = [op for op in graph.ops if op.tops[0].name == op.bottoms[0].name]
    layers = {k for k in nodes if k.startswith("layer:")}
    blobs = {k for k in nodes if k.startswith("blob:")}
    assert layers == {f"layer:{op.name}" for op in graph.ops if op not in in_place}
    # One box per blob name: every in-place write is folded into the layer that made the blob.
    assert sorted(nodes[b]["text"][0] for b in blobs) == sorted(graph.final)
    texts = {line for key in layers for line in nodes[key]["text"]}
    assert texts == {f"{op.name} ({op.type})" for op in graph.ops}
    if name == "resnet50":
        assert nodes["layer:res2a_branch2a"]["text"] == [
            "res2a_branch2a (Convolution)",
            "bn2a_branch2a (BatchNorm)",
            "scale2a_branch2a (Scale)",
            "res2a_branch2a_relu (ReLU)",
        ]
        assert nodes["blob:data"]["class"] == "node blob input"
    else:
        assert nodes["layer:inception_3a/1x1"]["text"] == [
            "inception_3a/1x1 (Convolution)",
            "inception_3a/relu_1x1 (ReLU)",
        ]
    root = ET.parse(svg).getroot()
    edges = [p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]
    assert len(edges) == sum(len(op.bottoms) + len(op.tops) for op in graph.ops if op not in in_place) + sum(
        len(op.bottoms) - 1 for op in in_place
    )


BATCHNORM = """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 4 dim: 4 } } }
layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" }
"""


def test_batchnorms_scale_factor_is_no_parameter(tmp_path):
    """BatchNorm's third blob divides the statistics; the Keras layer holds mean and variance only."""
    prototxt = tmp_path / "bn.prototxt"
    prototxt.write_text(BATCHNORM)
    weights = tmp_path / "bn.caffemodel"
    blobs = [np.ones(3, np.float32), np.ones(3, np.float32), np.full(1, 2.0, np.float32)]
    write_caffemodel(weights, [("bn", "BatchNorm", blobs)])
    for summary in (summarize(prototxt), summarize(prototxt, weights)):
        assert {row.name: row.parameters for row in summary.rows}["bn"] == 6
