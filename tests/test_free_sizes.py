"""One conversion with free (None) height and width, run at many sizes, gives Caffe's numbers.

Each model is converted once with ``input_shapes={"data": (1, C, None, None)}``, saved and
reloaded with ``safe_mode=True``, then run at several odd sizes and compared with real Caffe's
outputs (the goldens, at their own size) and with OpenCV's Caffe runtime, which reshapes the
whole net to each input it gets.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.cli.common import parse_shape_args
from caffe2keras.errors import ShapeError
from caffe2keras.synthetic import synthetic_weights
from tests.golden import assert_matches, run, save_and_reload
from tests.oracle import opencv_forward
from tests.shared import FORMATS, SHARED, requires_shared

cv2 = pytest.importorskip("cv2")

FREE = {"data": (1, 3, None, None)}


def compare_at_sizes(reloaded, prototxt, weights, blobs, sizes, data_format="channels_last", channels=3):
    """The reloaded model against OpenCV at each (height, width); ``blobs`` are (layer, top index)."""
    for height, width in sizes:
        x = np.random.default_rng(height * 1000 + width).standard_normal((1, channels, height, width))
        x = x.astype(np.float32)
        references = opencv_forward(prototxt, weights, {"data": x}, blobs)
        outputs = run(reloaded, [x], data_format)
        for (layer, _), actual, reference in zip(blobs, outputs, references):
            assert_matches(actual, reference, f"{prototxt.name} at {height}x{width}: {layer}")


# ------------------------------------------------------------------ MTCNN's P-Net, real weights

DET1 = SHARED / "golden" / "trained" / "mtcnn_det1"


@requires_shared
@pytest.mark.slow  # eleven sizes, each built and run; test_small_fcn_matches_opencv_at_odd_sizes is fast
@pytest.mark.parametrize("data_format", FORMATS)
def test_mtcnn_det1_runs_at_every_pyramid_size(data_format, tmp_path):
    prototxt, weights = SHARED / "caffe" / "trained" / "mtcnn" / "det1.prototxt", DET1 / "weights.caffemodel"
    outputs = ["conv4-1", "conv4-2", "prob1"]
    model = caffe2keras.convert(prototxt, weights, input_shapes=FREE, outputs=outputs, data_format=data_format)
    assert model.input_shape[1:3] in ((None, None), (3, None))
    reloaded = save_and_reload(model, tmp_path)
    # Real Caffe at the golden's own size.
    golden = run(reloaded, [np.load(DET1 / "in_data.npy")], data_format)
    for name, actual in zip(outputs, golden):
        assert_matches(actual, np.load(DET1 / f"blob_{name}.npy"), f"det1 golden: {name}")
    # Odd sizes: ceil-rounded pooling leaves a partial last window on some axes and not others.
    sizes = [(13, 17), (31, 23), (47, 40)]
    compare_at_sizes(reloaded, prototxt, weights, [(n, 0) for n in outputs], sizes, data_format)


# ------------------------------------------------------------------ a small fully convolutional net

SMALL_FCN = """name: "small_fcn"
input: "data"
input_shape { dim: 1 dim: 3 dim: 28 dim: 28 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 6 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pool2" type: "Pooling" bottom: "pool1" top: "pool2"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pool3" type: "Pooling" bottom: "pool2" top: "pool3"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool2" top: "conv2"
        convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "up" type: "Deconvolution" bottom: "conv2" top: "up"
        convolution_param { num_output: 4 kernel_size: 4 stride: 2 pad: 1 } }
layer { name: "side" type: "Convolution" bottom: "pool1" top: "side"
        convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "up_crop" type: "Crop" bottom: "up" bottom: "side" top: "up_crop" crop_param { axis: 2 } }
layer { name: "fuse" type: "Eltwise" bottom: "up_crop" bottom: "side" top: "fuse" }
layer { name: "up2" type: "Deconvolution" bottom: "fuse" top: "up2"
        convolution_param { num_output: 2 kernel_size: 6 stride: 2 } }
layer { name: "score" type: "Crop" bottom: "up2" bottom: "data" top: "score" crop_param { axis: 2 offset: 1 } }
layer { name: "gpool" type: "Pooling" bottom: "conv2" top: "gpool" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "gpool" top: "fc" inner_product_param { num_output: 3 } }
layer { name: "flat" type: "Flatten" bottom: "conv2" top: "flat" }
layer { name: "rows" type: "Reshape" bottom: "flat" top: "rows" reshape_param { shape { dim: 0 dim: 4 dim: -1 } } }
layer { name: "prob" type: "Softmax" bottom: "rows" top: "prob" softmax_param { axis: 1 } }
"""
SMALL_FCN_BLOBS = [(name, 0) for name in ("pool1", "pool2", "pool3", "up", "up_crop", "score", "fc", "prob")]


@pytest.fixture(scope="module")
def small_fcn(tmp_path_factory):
    directory = tmp_path_factory.mktemp("small_fcn")
    prototxt = directory / "small_fcn.prototxt"
    prototxt.write_text(SMALL_FCN)
    weights = directory / "small_fcn.caffemodel"
    write_caffemodel(weights, synthetic_weights(prototxt, seed=5))
    return prototxt, weights


@pytest.mark.parametrize("data_format", FORMATS)
def test_small_fcn_matches_opencv_at_odd_sizes(small_fcn, data_format, tmp_path):
    """Ceil pooling and its clip rule, AVE divisors at the borders, deconvolution crops, Crop against
    a free reference, global pooling, Flatten and Reshape with -1: all computed per size."""
    prototxt, weights = small_fcn
    model = caffe2keras.convert(
        prototxt, weights, input_shapes=FREE, outputs=[b for b, _ in SMALL_FCN_BLOBS], data_format=data_format
    )
    reloaded = save_and_reload(model, tmp_path)
    sizes = [(16, 16), (9, 11), (21, 14), (33, 26)]
    compare_at_sizes(reloaded, prototxt, weights, SMALL_FCN_BLOBS, sizes, data_format)


def test_fixed_sizes_keep_keras_pooling_where_it_is_exact(small_fcn):
    """The static path is unchanged: sizes known at conversion pick the plainest exact layer."""
    prototxt, weights = small_fcn
    fixed = caffe2keras.convert(prototxt, weights, outputs=["pool3"])
    free = caffe2keras.convert(prototxt, weights, input_shapes=FREE, outputs=["pool3"])
    kinds = [{type(layer).__name__ for layer in model.layers} for model in (fixed, free)]
    assert "MaxPooling2D" in kinds[0]
    # At a free size, a ceil-rounded window may hang over the edge: Caffe's own rule decides.
    assert "MaxPooling2D" not in kinds[1] and "CaffePooling2D" in kinds[1]


# ------------------------------------------------------------------ what needs a fixed size


def _net(layers: str) -> str:
    return 'name: "n" input: "data" input_shape { dim: 1 dim: 2 dim: 8 dim: 8 }\n' + layers


@pytest.mark.parametrize(
    "layers, layer",
    [
        (
            'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 2 } }',
            "fc",
        ),
        (
            'layer { name: "r" type: "Reshape" bottom: "data" top: "r" reshape_param { shape { dim: 0 dim: 2 dim: 64 } } }',
            "r",
        ),
        ('layer { name: "s" type: "Slice" bottom: "data" top: "a" top: "b" slice_param { axis: 2 } }', "s"),
    ],
)
def test_layers_that_need_a_fixed_size_name_themselves(layers, layer, tmp_path):
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(_net(layers))
    with pytest.raises(ShapeError, match=f"Layer '{layer}'.*(free|fixed)") as caught:
        caffe2keras.convert(prototxt, input_shapes={"data": (1, 2, None, None)})
    assert caught.value.layer == layer


def test_inner_product_takes_a_free_size_its_weights_fit(tmp_path):
    """GoogLeNet and ResNet end in an InnerProduct: its weights fix how many values it takes, so
    the model runs at the sizes whose last feature map has that size, as Caffe does."""
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(
        _net(
            'layer { name: "pool" type: "Pooling" bottom: "data" top: "pool" '
            "pooling_param { pool: AVE kernel_size: 4 stride: 1 } }\n"
            'layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 3 } }'
        )
    )
    weights = tmp_path / "net.caffemodel"
    write_caffemodel(weights, synthetic_weights(prototxt, seed=1))
    reloaded = save_and_reload(
        caffe2keras.convert(prototxt, weights, input_shapes={"data": (1, 2, None, None)}), tmp_path
    )
    for size in [(8, 8), (4, 28)]:  # pool is 5x5 or 1x25: 50 values either way, as fc's weights take
        x = np.random.default_rng(0).standard_normal((1, 2, *size)).astype(np.float32)
        (reference,) = opencv_forward(prototxt, weights, {"data": x}, [("fc", 0)])
        assert_matches(run(reloaded, [x], "channels_last")[0], reference, f"fc at {size}")


def test_cli_reads_question_marks_as_free_sizes():
    assert parse_shape_args(["data=1,3,?,?", "im_info=1,3"]) == {"data": (1, 3, None, None), "im_info": (1, 3)}


@requires_shared
def test_verify_runs_a_free_size_model_at_the_inputs_size():
    prototxt, weights = SHARED / "caffe" / "trained" / "mtcnn" / "det1.prototxt", DET1 / "weights.caffemodel"
    x = np.random.default_rng(2).standard_normal((1, 3, 29, 35)).astype(np.float32)
    report = caffe2keras.verify(prototxt, weights, against="opencv", inputs={"data": x}, input_shapes=FREE)
    assert report.ok, report.first_divergence
    assert report.inputs[0].shape == (1, 3, 29, 35)
    prob = next(row for row in report.rows if row.blob == "prob1")
    assert prob.shape == (1, 2, 10, 13)


# ------------------------------------------------------------------ Zoo nets (slow)

ZOO_SIZES = {
    "squeezenet_v1.1": [(227, 227), (131, 173)],
    "squeezenet_v1.0": [(199, 241)],
    "caffenet_full_conv": [(451, 451), (300, 259)],
    "fcn8s_voc": [(500, 500), (131, 97)],
}


@requires_shared
@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(ZOO_SIZES))
def test_zoo_nets_at_free_sizes(case, zoo_weights, tmp_path):
    """Real Caffe at the golden's size, OpenCV at the others, from one conversion."""
    case_dir = SHARED / "golden" / "zoo" / case
    prototxt = SHARED / "caffe" / "models" / case / "deploy.prototxt"
    weights = zoo_weights(case_dir)
    meta = json.loads((case_dir / "case.json").read_text())
    blobs = [*meta["output_order"], *meta.get("probes", [])]
    reloaded = save_and_reload(caffe2keras.convert(prototxt, weights, input_shapes=FREE, outputs=blobs), tmp_path)
    golden_in = np.load(case_dir / "in_data.npy")
    golden_size = tuple(golden_in.shape[2:])
    outputs = run(reloaded, [golden_in], "channels_last")
    for name, actual in zip(meta["output_order"], outputs):
        assert_matches(actual, np.load(case_dir / f"out_{name}.npy"), f"{case} golden: {name}")
    others = [size for size in ZOO_SIZES[case] if size != golden_size]
    compare_at_sizes(reloaded, prototxt, weights, [(b, 0) for b in blobs], others)
