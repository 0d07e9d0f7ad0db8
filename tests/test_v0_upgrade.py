"""Pre-2014 (V0) nets upgrade as Caffe's UpgradeV0Net does, into the net a modern prototxt writes.

The V0 prototxts here are written from the format's facts: each layer is
``layers { layer { name type <flat fields> } bottom top }``, and zero padding is
a separate ``padding`` layer that Caffe merges into the convolution or pooling
it feeds.
"""

from __future__ import annotations

import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe import parse_net_text
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.errors import ConversionWarning, ModelFileError
from caffe2keras.synthetic import synthetic_weights

V0_NET = """name: "tiny"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 17 input_dim: 15
layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
layers {
  layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 3 stride: 2 group: 1 biasterm: true
          weight_filler { type: "gaussian" std: 0.1 } blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0 }
  bottom: "pad1" top: "conv1"
}
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
layers { layer { name: "pad2" type: "padding" pad: 1 } bottom: "conv1" top: "pad2" }
layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 3 stride: 2 } bottom: "pad2" top: "pool1" }
layers { layer { name: "norm1" type: "lrn" local_size: 3 alpha: 0.0001 beta: 0.75 } bottom: "pool1" top: "norm1" }
layers { layer { name: "conv2" type: "conv" num_output: 6 kernelsize: 1 group: 2 biasterm: false } bottom: "norm1" top: "conv2" }
layers { layer { name: "cat" type: "concat" concat_dim: 1 } bottom: "conv2" bottom: "norm1" top: "cat" }
layers { layer { name: "drop" type: "dropout" dropout_ratio: 0.3 } bottom: "cat" top: "cat" }
layers { layer { name: "fc" type: "innerproduct" num_output: 5 } bottom: "cat" top: "fc" }
layers { layer { name: "prob" type: "softmax" } bottom: "fc" top: "prob" }
"""

MODERN_NET = """name: "tiny"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 17 input_dim: 15
layer {
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 4 bias_term: true pad: 2 kernel_size: 3 group: 1 stride: 2
                      weight_filler { type: "gaussian" std: 0.1 } }
}
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1" lrn_param { local_size: 3 alpha: 0.0001 beta: 0.75 } }
layer { name: "conv2" type: "Convolution" bottom: "norm1" top: "conv2"
        convolution_param { num_output: 6 bias_term: false kernel_size: 1 group: 2 } }
layer { name: "cat" type: "Concat" bottom: "conv2" bottom: "norm1" top: "cat" concat_param { concat_dim: 1 } }
layer { name: "drop" type: "Dropout" bottom: "cat" top: "cat" dropout_param { dropout_ratio: 0.3 } }
layer { name: "fc" type: "InnerProduct" bottom: "cat" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def test_v0_net_upgrades_to_its_modern_equivalent():
    assert parse_net_text(V0_NET) == parse_net_text(MODERN_NET)


def test_v0_net_converts_to_the_same_model_as_its_modern_equivalent(tmp_path):
    paths = {}
    for name, text in (("v0", V0_NET), ("modern", MODERN_NET)):
        paths[name] = tmp_path / f"{name}.prototxt"
        paths[name].write_text(text)
    weights = tmp_path / "weights.caffemodel"
    write_caffemodel(weights, synthetic_weights(paths["modern"], seed=3))
    x = np.random.default_rng(0).standard_normal((1, 17, 15, 3)).astype(np.float32)
    old, new = (caffe2keras.convert(paths[name], weights) for name in ("v0", "modern"))
    assert [type(layer).__name__ for layer in old.layers] == [type(layer).__name__ for layer in new.layers]
    np.testing.assert_array_equal(np.asarray(old(x)), np.asarray(new(x)))


def test_v0_data_layers_move_their_fields_into_the_parameter_messages():
    net = parse_net_text(
        'layers { layer { name: "img" type: "images" source: "list.txt" batchsize: 8 new_height: 40 new_width: 30 '
        'cropsize: 24 mirror: true meanfile: "mean.binaryproto" scale: 0.5 shuffle_images: true rand_skip: 3 } '
        'top: "data" top: "label" }\n'
        'layers { layer { name: "win" type: "window_data" source: "w.txt" det_fg_threshold: 0.6 '
        'det_context_pad: 16 det_crop_mode: "square" } top: "d2" top: "l2" }'
    )
    images, window = net.layer
    assert images.type == "ImageData" and window.type == "WindowData"
    p = images.image_data_param
    assert (p.source, p.batch_size, p.new_height, p.new_width, p.shuffle, p.rand_skip) == (
        "list.txt",
        8,
        40,
        30,
        True,
        3,
    )
    t = images.transform_param
    assert (t.crop_size, t.mirror, t.mean_file, t.scale) == (24, True, "mean.binaryproto", 0.5)
    w = window.window_data_param
    assert (w.source, w.context_pad, w.crop_mode) == ("w.txt", 16, "square")
    assert w.fg_threshold == pytest.approx(0.6)


def test_a_field_caffe_ignores_for_the_type_is_ignored_with_a_warning():
    with pytest.warns(ConversionWarning, match="'relu1'.*'num_output'"):
        net = parse_net_text(
            'input: "x" layers { layer { name: "relu1" type: "relu" num_output: 3 } bottom: "x" top: "x" }'
        )
    assert net.layer[0].type == "ReLU"


@pytest.mark.parametrize(
    "text, message",
    [
        ('input: "x" layers { layer { name: "odd" type: "warp" } bottom: "x" top: "y" }', "V0 type 'warp'"),
        ('layers { layer { name: "c" type: "conv" num_output: 1 kernelsize: 1 } bottom: "x" top: "y" }', "'x'"),
        (
            'input: "x" layers { layer { name: "p" type: "padding" pad: 1 } bottom: "x" top: "p" }\n'
            'layers { layer { name: "r" type: "relu" } bottom: "p" top: "r" }',
            "padding layer 'p' feeds layer 'r'",
        ),
    ],
)
def test_v0_nets_caffe_cannot_upgrade_are_refused(text, message):
    with pytest.raises(ModelFileError, match=message):
        parse_net_text(text)
