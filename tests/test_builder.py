"""The Keras model contract: names, order, layouts, in-place outputs, architecture-only builds."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest

import caffe2keras
from caffe2keras.builder import _call_with_weights
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.converters import Step
from caffe2keras.errors import NetError
from tests.golden import run, save_and_reload

NET = """
name: "contract/net"
input: "data" input_shape { dim: 1 dim: 3 dim: 5 dim: 4 }
layer { name: "side" type: "Input" top: "side" input_param { shape { dim: 1 dim: 2 } } }
layer { name: "conv/1" type: "Convolution" bottom: "data" top: "conv/1"
        convolution_param { num_output: 2 kernel_size: 3 pad: 1 } }
layer { name: "fc7" type: "InnerProduct" bottom: "conv/1" top: "fc7" inner_product_param { num_output: 2 } }
layer { name: "relu7" type: "ReLU" bottom: "fc7" top: "fc7" }
layer { name: "sum" type: "Eltwise" bottom: "fc7" bottom: "side" top: "sum" }
layer { name: "prob" type: "Softmax" bottom: "sum" top: "prob" }
"""


@pytest.fixture
def net(tmp_path):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(NET)
    rng = np.random.default_rng(0)
    write_caffemodel(
        tmp_path / "net.caffemodel",
        [
            ("conv/1", "Convolution", [rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2)]),
            ("fc7", "InnerProduct", [rng.standard_normal((2, 40)), rng.standard_normal(2)]),
        ],
    )
    return prototxt, tmp_path / "net.caffemodel"


def test_inputs_outputs_and_layer_names(net):
    model = caffe2keras.convert(*net)
    assert [t.name for t in model.inputs] == ["data", "side"]
    assert model.output_names == ["prob"]
    assert model.name == "contract__net"
    assert model.get_layer("conv__1").__class__.__name__ == "Conv2D"
    assert tuple(model.inputs[0].shape) == (None, 5, 4, 3)


def test_requested_outputs_follow_the_order_and_show_values_after_in_place_layers(net, tmp_path):
    prototxt, weights = net
    model = caffe2keras.convert(prototxt, weights, outputs=["fc7", "conv/1", "prob"])
    # Blob fc7's value is relu7's output (in place), and the name fc7 is the InnerProduct layer's.
    assert model.output_names == ["relu7", "conv__1", "prob"]
    assert model.get_layer("fc7").__class__.__name__ == "Dense"
    assert model.get_layer("relu7").__class__.__name__ == "ReLU"
    rng = np.random.default_rng(1)
    data, side = rng.standard_normal((1, 3, 5, 4), np.float32), rng.standard_normal((1, 2), np.float32)
    fc7, _, prob = run(save_and_reload(model, tmp_path), [data, side], "channels_last")
    assert (fc7 >= 0).all()
    expected = np.exp(fc7 + side) / np.exp(fc7 + side).sum()
    np.testing.assert_allclose(prob, expected, rtol=1e-5)


def test_data_formats_agree(net):
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((1, 3, 5, 4), np.float32), rng.standard_normal((1, 2), np.float32)]
    last = run(caffe2keras.convert(*net, data_format="channels_last"), arrays, "channels_last")
    first = run(caffe2keras.convert(*net, data_format="channels_first"), arrays, "channels_first")
    np.testing.assert_allclose(last[0], first[0], rtol=1e-5, atol=1e-6)


def test_architecture_only_uses_caffes_fillers(net):
    model = caffe2keras.convert(net[0])
    kernel = model.get_layer("conv__1").kernel
    np.testing.assert_array_equal(np.asarray(kernel), np.zeros((3, 3, 3, 2)))  # Caffe's default filler


def test_a_batch_norm_the_weights_lack_starts_at_caffes_zeros(net, tmp_path):
    prototxt, weights = net
    prototxt.write_text(NET + 'layer { name: "bn" type: "BatchNorm" bottom: "prob" top: "prob" }\n')
    with pytest.warns(caffe2keras.ConversionWarning, match=r"bn \(BatchNorm: blob 0 constant 0, blob 1 constant 0"):
        model = caffe2keras.convert(prototxt, weights)
    assert not any(np.any(np.asarray(w)) for w in model.get_layer("bn").weights)


def test_outputs_must_be_distinct_and_known(net):
    with pytest.raises(NetError, match="distinct"):
        caffe2keras.convert(*net, outputs=["prob", "prob"])
    with pytest.raises(NetError, match="Received: blob='nope'"):
        caffe2keras.convert(*net, outputs=["nope"])


def test_inputs_the_outputs_do_not_need_stay_in_the_model(net, tmp_path):
    model = caffe2keras.convert(*net, outputs=["conv/1"])
    assert [t.name for t in model.inputs] == ["data", "side"]
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((1, 3, 5, 4), np.float32), rng.standard_normal((1, 2), np.float32)]
    (out,) = run(save_and_reload(model, tmp_path), arrays, "channels_last")
    assert out.shape == (1, 2, 5, 4)


class _PositionalWeights(keras.layers.Layer):
    """Creates its variables with every add_weight argument passed by position, then by keyword."""

    def build(self, input_shape):
        self.first = self.add_weight((2,), "zeros", "float32")
        self.second = self.add_weight(name="second", initializer="zeros", shape=(3,))

    def call(self, x):
        return x


def test_converted_values_reach_variables_however_add_weight_is_called():
    layer = _PositionalWeights()
    step = Step(layer, (np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0, 5.0], np.float32)))
    _call_with_weights(step, SimpleNamespace(name="w", type="Plugin", param=None), keras.Input((2,)))
    np.testing.assert_array_equal(np.asarray(layer.first), [1, 2])
    np.testing.assert_array_equal(np.asarray(layer.second), [3, 4, 5])
    assert "add_weight" not in vars(layer)  # the layer's own method again
