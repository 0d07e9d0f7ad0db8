"""Caffe's fillers become Keras' own initializers, drawing with Caffe's variance, where Keras has one."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import caffe2keras
from caffe2keras.layers import CaffeFiller

# Caffe's shapes, fans (count / shape[0] in, count / shape[1] out) and variances:
# xavier U(-sqrt(3/n), sqrt(3/n)) has variance 1/n, msra N(0, 2/n) has 2/n.
NET = """
input: "data" input_shape { dim: 1 dim: 8 dim: 6 dim: 6 }
input: "ids" input_shape { dim: 1 dim: 5 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 64 kernel_size: 3
                            weight_filler { type: "xavier" variance_norm: AVERAGE } } }
layer { name: "dw" type: "Convolution" bottom: "conv" top: "dw"
        convolution_param { num_output: 128 group: 64 kernel_size: 3
                            weight_filler { type: "msra" variance_norm: FAN_OUT } } }
layer { name: "ip" type: "InnerProduct" bottom: "dw" top: "ip"
        inner_product_param { num_output: 300 transpose: true weight_filler { type: "msra" } } }
layer { name: "prelu" type: "PReLU" bottom: "ip" top: "prelu" prelu_param { filler { type: "xavier" } } }
layer { name: "scale" type: "Scale" bottom: "conv" top: "scaled"
        scale_param { filler { type: "msra" variance_norm: FAN_OUT } } }
layer { name: "embed" type: "Embed" bottom: "ids" top: "embed"
        embed_param { input_dim: 1000 num_output: 20 bias_term: false weight_filler { type: "xavier" } } }
layer { name: "up" type: "Deconvolution" bottom: "conv" top: "up"
        convolution_param { num_output: 4 kernel_size: 4 stride: 2 bias_term: false
                            weight_filler { type: "bilinear" } } }
layer { name: "sparse" type: "InnerProduct" bottom: "prelu" top: "sparse"
        inner_product_param { num_output: 50 bias_term: false
                              weight_filler { type: "gaussian" std: 0.1 sparse: 15 } } }
layer { name: "uniform" type: "InnerProduct" bottom: "prelu" top: "uniform"
        inner_product_param { num_output: 4 weight_filler { type: "uniform" min: -2 max: 3 }
                              bias_filler { type: "constant" value: 0.5 } } }
"""
CAFFE_VARIANCES = {  # layer: (its initializer's attribute, Caffe's variance)
    "conv": ("kernel_initializer", 1 / ((72 + 576) / 2)),  # (64, 8, 3, 3), AVERAGE
    "dw": ("depthwise_initializer", 2 / 1152),  # (128, 1, 3, 3), FAN_OUT
    "ip": ("kernel_initializer", 2 / 300),  # (512, 300) with transpose: true, FAN_IN
    "prelu": ("alpha_initializer", 1 / 1),  # (300,): fan_in 1
    "scale": ("gamma_initializer", 2 / 64),  # (64,): fan_out 64
    "embed_embedding": ("embeddings_initializer", 1 / 20),  # (1000, 20); the Embedding step of "embed"
}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    prototxt = tmp_path_factory.mktemp("fillers") / "net.prototxt"
    prototxt.write_text(NET)
    return caffe2keras.convert(prototxt)


@pytest.mark.parametrize("name", sorted(CAFFE_VARIANCES))
def test_xavier_and_msra_are_variance_scaling_with_caffes_variance(model, name):
    attribute, caffe_variance = CAFFE_VARIANCES[name]
    layer = model.get_layer(name)
    variable = layer.weights[0]
    initializer = getattr(layer, attribute)
    assert isinstance(initializer, keras.initializers.VarianceScaling)
    # Draws at the variable's own shape (Keras takes the fans from it), with fresh seeds (an
    # initializer repeats its draws), until the variance is known to about 1 % (5 sigma at 5 %).
    config, draws = initializer.get_config(), []
    while sum(d.size for d in draws) < 20_000:
        reseeded = type(initializer).from_config({**config, "seed": len(draws)})
        draws.append(np.asarray(reseeded(variable.shape)))
    variance = np.concatenate([d.ravel() for d in draws]).var()
    assert variance == pytest.approx(caffe_variance, rel=0.05)


def test_keras_initializers_where_keras_has_them(model):
    uniform = model.get_layer("uniform")
    assert isinstance(uniform.kernel_initializer, keras.initializers.RandomUniform)
    assert (uniform.kernel_initializer.minval, uniform.kernel_initializer.maxval) == (-2, 3)
    assert isinstance(uniform.bias_initializer, keras.initializers.Constant)
    assert uniform.bias_initializer.value == 0.5
    assert isinstance(model.get_layer("up").kernel_initializer, CaffeFiller)


def test_sparse_gaussian_keeps_values_with_caffes_probability(model):
    # Caffe keeps each value with probability sparse / shape[0]: 15 / 50 for its (50, 300) blob.
    initializer = model.get_layer("sparse").kernel_initializer
    assert isinstance(initializer, CaffeFiller)
    values = np.asarray(initializer((300, 50)))
    assert (values != 0).mean() == pytest.approx(15 / 50, rel=0.05)  # 15,000 draws: about 4 % is 3 sigma
