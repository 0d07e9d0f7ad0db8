"""The plan stage: one layer's node, shapes, refusal and (lazily) Keras steps, as every writer sees them."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from caffe2keras.caffe import read_net, read_weights
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.converters import LayerRule, rule_for
from caffe2keras.errors import UnsupportedLayersError, WeightsError
from caffe2keras.graph import build_graph
from caffe2keras.layout import Layout
from caffe2keras.plan import check_supported, plan_layer, refusal
from tests.shared import REPO

NET = """
input: "data" input_shape { dim: 1 dim: 3 dim: 5 dim: 5 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "py" type: "Python" bottom: "conv" top: "py" python_param { module: "mine" layer: "Gate" } }
layer { name: "py2" type: "Python" bottom: "py" top: "py2" python_param { module: "mine" layer: "Other" } }
"""


@pytest.fixture
def graph(tmp_path):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(NET)
    return build_graph(read_net(prototxt))


def _plan(graph, name, weights=None):
    op = next(op for op in graph.ops if op.name == name)
    return plan_layer(op, [graph.shapes.get(b) for b in op.bottoms], Layout("channels_first"), weights)


def test_a_plan_has_the_node_and_shapes_and_makes_its_steps_only_when_asked(graph):
    plan = _plan(graph, "conv")
    assert plan.refusal is None and plan.out_shapes == ((1, 4, 3, 3),)
    assert plan.node.in_shapes == ((1, 3, 5, 5),) and plan.node.weights is None
    assert plan.node.requested == {}  # the converter has not run
    assert [type(step.layer).__name__ for step in plan.steps] == ["Conv2D"]
    assert plan.node.requested == {0: (4, 3, 3, 3), 1: (4,)}
    assert plan.steps is plan.steps  # made once


def test_a_refused_layer_has_its_reason_and_no_node(graph):
    plan = _plan(graph, "py")
    assert plan.node is None and plan.out_shapes is None
    assert str(plan.refusal).startswith("mine.Gate: ") and plan.refusal == refusal(plan.op)
    with pytest.raises(UnsupportedLayersError, match="'py'"):
        plan.steps  # noqa: B018


def test_every_refused_layer_is_reported_at_once_with_each_detail(graph):
    with pytest.raises(UnsupportedLayersError, match=r"Python: 2 layers, first 'py' — mine\.Gate, mine\.Other: "):
        check_supported(graph)


def test_the_weights_are_checked_when_the_steps_are_made(graph, tmp_path):
    path = tmp_path / "net.caffemodel"
    write_caffemodel(path, [("conv", "Convolution", [np.zeros((4, 3, 3, 3), np.float32)])])
    plan = _plan(graph, "conv", read_weights(path))
    assert len(plan.node.weights) == 1
    with pytest.raises(WeightsError, match="needs blob 1 of shape"):
        plan.steps  # noqa: B018


def test_planning_runs_no_converter(graph):
    def convert(node):
        raise AssertionError("planning ran the converter")

    rule = LayerRule("Convolution", convert, rule_for("Convolution").shapes)
    op = next(op for op in graph.ops if op.name == "conv")
    plan = plan_layer(op, [graph.shapes[op.bottoms[0]]], Layout(), rule_for={"Convolution": rule}.get)
    assert plan.out_shapes == ((1, 4, 3, 3),)


SMALL_NET_TAIL = """
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
PLAN_WITHOUT_KERAS = """
import sys
from caffe2keras.caffe import read_net
from caffe2keras.graph import build_graph
from caffe2keras.layout import Layout
from caffe2keras.plan import plan_layer

graph = build_graph(read_net(sys.argv[1]))
for op in graph.ops:
    plan = plan_layer(op, [graph.shapes[b] for b in op.bottoms], Layout("channels_first"))
    graph.shapes.update(zip(op.tops, plan.out_shapes))
print(sorted(m for m in ("keras", "jax", "tensorflow") if m in sys.modules), graph.shapes[graph.outputs[0]])
"""


def test_planning_imports_no_keras(tmp_path):
    """The converters name Keras only through caffe2keras.converters.keras_layers, imported when a
    converter first makes a layer: the ONNX writer plans every layer without loading Keras."""
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(NET.split('layer { name: "py"')[0] + SMALL_NET_TAIL)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-c", PLAN_WITHOUT_KERAS, str(prototxt)], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[] (1, 10)"
