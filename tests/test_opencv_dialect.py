"""Fields of the Caffe dialects OpenCV 4's importer reads beyond BVLC (its opencv-caffe.proto),
and the caffe-fast-rcnn fork's: each one implemented, or refused with an error that names it."""

from __future__ import annotations

import numpy as np
import pytest

import caffe2keras
from tests.golden import assert_matches, run, save_and_reload
from tests.shared import FORMATS

DROPOUT_NET = """
input: "x" input_shape { dim: 2 dim: 3 dim: 4 dim: 5 }
layer { name: "drop" type: "Dropout" bottom: "x" top: "y" dropout_param { dropout_ratio: 0.3 scale_train: false } }
"""


def write(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("data_format", FORMATS)
def test_dropout_scale_train_false_scales_at_test_time(data_format, tmp_path):
    """caffe-fast-rcnn's dropout_layer.cpp: TEST multiplies by 1 / scale_, scale_ = 1 / (1 - ratio) as floats."""
    model = save_and_reload(caffe2keras.convert(write(tmp_path, DROPOUT_NET), data_format=data_format), tmp_path)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    (y,) = run(model, [x], data_format)
    scale = np.float32(1.0 / (1.0 - np.float64(np.float32(0.3))))
    assert_matches(y, x * np.float32(1.0 / np.float64(scale)), "drop")


def test_dropout_scale_train_false_does_not_scale_in_training(tmp_path):
    model = caffe2keras.convert(write(tmp_path, DROPOUT_NET), data_format="channels_first")
    x = np.random.default_rng(0).uniform(1, 2, (2, 3, 4, 5)).astype(np.float32)
    y = np.asarray(model(x, training=True))
    kept = y != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(y[kept], x[kept], rtol=1e-6)


@pytest.mark.parametrize(
    "layer, field",
    [
        (
            'layer { name: "bn" type: "BatchNorm" bottom: "x" top: "y" batch_norm_param { scale_bias: true } }',
            "batch_norm_param.scale_bias",
        ),
        (
            'layer { name: "p" type: "PriorBox" bottom: "x" bottom: "x" top: "y" '
            "prior_box_param { min_size: 2 width: 3 height: 4 } }",
            "prior_box_param.width",
        ),
        (
            'layer { name: "d" type: "DetectionOutput" bottom: "x" bottom: "x" bottom: "x" top: "y" '
            "detection_output_param { num_classes: 2 normalized_bbox: false clip: true } }",
            "detection_output_param.normalized_bbox",
        ),
    ],
)
def test_opencv_fields_caffe2keras_does_not_compute_are_refused_by_name(layer, field, tmp_path):
    from caffe2keras.errors import Caffe2KerasError

    prototxt = write(tmp_path, 'input: "x" input_shape { dim: 1 dim: 3 dim: 4 dim: 4 }\n' + layer)
    with pytest.raises(Caffe2KerasError, match=rf"Received: {field}="):
        caffe2keras.convert(prototxt)
