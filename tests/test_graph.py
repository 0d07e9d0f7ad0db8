"""The blob graph follows Caffe's rules: phases, inputs, in-place versions, outputs."""

from __future__ import annotations

import pytest

from caffe2keras.caffe import parse_net_text
from caffe2keras.errors import InputShapeError, LayerError, NetError
from caffe2keras.graph import BlobRef, build_graph

TRAIN_VAL = """
name: "tv"
layer { name: "train_data" type: "Data" top: "data" top: "label" include { phase: TRAIN } }
layer { name: "test_data" type: "Data" top: "data" top: "label" include { phase: TEST } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 } }
layer { name: "relu" type: "ReLU" bottom: "ip" top: "ip" }
layer { name: "drop" type: "Dropout" bottom: "ip" top: "ip" exclude { stage: "deploy" } }
layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def graph_of(text, **kwargs):
    return build_graph(parse_net_text(text), **kwargs)


def test_train_val_net_keeps_the_test_phase_and_drops_losses():
    graph = graph_of(TRAIN_VAL, input_shapes={"data": (1, 4)})
    assert [op.name for op in graph.ops] == ["ip", "relu", "drop"]
    assert graph.inputs == [BlobRef("data")]  # the label only fed dropped layers
    assert graph.outputs == [BlobRef("ip", 2)]  # the logits, after the in-place layers


def test_stages_and_levels_select_layers():
    graph = graph_of(TRAIN_VAL, input_shapes={"data": (1, 4)}, stages=["deploy"])
    assert [op.name for op in graph.ops] == ["ip", "relu"]


def test_in_place_layers_version_the_blob():
    graph = graph_of(TRAIN_VAL, input_shapes={"data": (1, 4)})
    relu, drop = graph.ops[1], graph.ops[2]
    assert relu.bottoms == [BlobRef("ip", 0)] and relu.tops == [BlobRef("ip", 1)]
    assert drop.tops == [BlobRef("ip", 2)] and graph.blob("ip") == BlobRef("ip", 2)


def test_legacy_input_fields_come_first_and_outputs_are_sorted_by_name():
    graph = graph_of("""
        input: "a" input: "b"
        input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 3 input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 3
        layer { name: "c" type: "Input" top: "c" input_param { shape { dim: 1 dim: 2 dim: 3 dim: 3 } } }
        layer { name: "zsum" type: "Eltwise" bottom: "a" bottom: "c" top: "zsum" }
        layer { name: "asum" type: "Eltwise" bottom: "b" bottom: "c" top: "asum" }
    """)
    assert [r.name for r in graph.inputs] == ["a", "b", "c"]
    assert [r.name for r in graph.outputs] == ["asum", "zsum"]
    assert graph.shapes[BlobRef("a")] == (1, 2, 3, 3)


def test_silenced_blobs_are_not_outputs():
    graph = graph_of("""
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }
        layer { name: "s" type: "Slice" bottom: "x" top: "p" top: "q" }
        layer { name: "quiet" type: "Silence" bottom: "q" }
    """)
    assert graph.outputs == [BlobRef("p")]


def test_silenced_blobs_are_the_outputs_when_there_is_no_other():
    """Colorization v2 silences its only result, class8_ab; Caffe would give nothing to read."""
    graph = graph_of("""
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }
        layer { name: "r" type: "ReLU" bottom: "x" top: "y" }
        layer { name: "s" type: "Slice" bottom: "y" top: "q" top: "p" }
        layer { name: "quiet" type: "Silence" bottom: "q" bottom: "p" }
    """)
    assert graph.outputs == [BlobRef("p"), BlobRef("q")]


def test_no_outputs_error_names_the_outputs_option():
    from caffe2keras.builder import build_model
    from caffe2keras.converters import rule_for
    from caffe2keras.layout import Layout

    graph = graph_of("""
        layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }
        layer { name: "r" type: "ReLU" bottom: "x" top: "y" }
    """)
    graph.outputs = []  # unreachable from a prototxt since silenced blobs count, kept as a guard
    with pytest.raises(NetError, match=r"outputs=\[\.\.\.\] \(CLI: --outputs"):
        build_model(graph, None, Layout("channels_last"), rule_for)


@pytest.mark.parametrize(
    "text, error, match",
    [
        ('layer { name: "l" type: "ReLU" bottom: "nowhere" top: "y" }', LayerError, "bottom blob 'nowhere'"),
        (
            'layer { name: "d" type: "Data" top: "data" } layer { name: "r" type: "ReLU" bottom: "data" top: "r" }',
            InputShapeError,
            "no shape is known for input blob",
        ),
        (
            'layer { name: "i" type: "Input" top: "x" input_param { shape { dim: 1 } } }'
            'layer { name: "a" type: "ReLU" bottom: "x" top: "y" } layer { name: "b" type: "ReLU" bottom: "x" top: "y" }',
            LayerError,
            "already produced",
        ),
        (
            'layer { name: "a" type: "ReLU" top: "y" include { phase: TEST } exclude { phase: TRAIN } }',
            LayerError,
            "not both",
        ),
        ("", NetError, "no inputs"),
    ],
)
def test_inconsistent_nets_are_refused(text, error, match):
    with pytest.raises(error, match=match):
        graph_of(text)


def test_input_shapes_for_unknown_blobs_are_refused():
    with pytest.raises(InputShapeError, match="not inputs of the net"):
        graph_of(TRAIN_VAL, input_shapes={"data": (1, 4), "dta": (1, 4)})


def test_unknown_blob_names_are_listed():
    graph = graph_of(TRAIN_VAL, input_shapes={"data": (1, 4)})
    with pytest.raises(NetError, match="Received: blob='fc7'"):
        graph.blob("fc7")


@pytest.mark.parametrize("shape", [(0, 1, 28, 28), (-1, 1, 28, 28), ()])
def test_input_shapes_must_be_positive(shape):
    with pytest.raises(
        InputShapeError, match=r"sizes must be whole numbers >= 1, or None .* Received: input_shapes\['data'\]="
    ):
        graph_of(TRAIN_VAL, input_shapes={"data": shape})


def test_an_empty_net_says_it_has_no_inputs(tmp_path):
    from caffe2keras.api import load_graph
    from caffe2keras.errors import NetError

    prototxt = tmp_path / "empty.prototxt"
    prototxt.write_text("")
    with pytest.raises(NetError) as raised:
        load_graph(prototxt)
    assert str(raised.value) == (
        f"{prototxt}: the net has no inputs: no Input or data layer and no 'input' field feeds a layer. "
        "Received: layers=0, input=[]"
    )
