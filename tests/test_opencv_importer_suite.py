"""OpenCV's own Caffe importer tests, rebuilt: one case per OpenCV test that reads a Caffe model.

Sources: ``opencv/opencv`` ``modules/dnn/test/test_layers.cpp`` and ``test_caffe_importer.cpp``
(4.x), paired with their prototxts in ``../shared/caffe/opencv_layers`` by its ``MANIFEST.md``.
Case ids are OpenCV's ``Suite.Test`` names, with the prototxt or the parameters in brackets where
one OpenCV test runs several.

OpenCV's reference ``.npy`` files (real Caffe's outputs) and its caffemodels are not available
here, so each case runs against an independent reference of its own:

* OpenCV 4's ``readNetFromCaffe`` on the same prototxt, with synthetic weights in a caffemodel
  (OpenCV's test itself checks that OpenCV equals real Caffe on these prototxts);
* numpy written from Caffe's C++ where OpenCV is known to differ from Caffe (MVN);
* the expected values OpenCV's test writes in its source (Scale, Crop, pooling, PriorBox...).

Cases whose data only exists in ``opencv_extra`` (whole-model caffemodels and ``.npy``
references) or whose layers are FlowNet2-Caffe's custom ones skip with that reason.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest

import caffe2keras
from caffe2keras.api import load_graph
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.errors import Caffe2KerasError
from caffe2keras.synthetic import synthetic_weights
from tests import oracle
from tests.golden import assert_matches, run, save_and_reload
from tests.nets import layer, net
from tests.shared import FORMATS, SHARED
from tests.test_bvlc_layers import caffe_mvn
from tests.test_forks import roi_inputs

LAYERS = SHARED / "caffe" / "opencv_layers"
COMMON_BLOB = (2, 6, 75, 113)  # the shape of OpenCV's shared blob.npy (the prototxts' input_dim header)


def stored(name: str):
    """A prototxt of OpenCV's layer tests from ../shared; the case skips where it is absent."""
    path = LAYERS / name
    if not path.exists():
        pytest.skip(f"OpenCV's layer-test prototxt not found: {path}")
    return path


def random(shape, seed: int = 0, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


def convert_and_run(prototxt, weights, inputs: dict, data_format, tmp_path, **convert_args) -> list[np.ndarray]:
    """Our outputs, after a save and a reload with safe_mode=True, fed by input name."""
    model = caffe2keras.convert(prototxt, weights, data_format=data_format, **convert_args)
    reloaded = save_and_reload(model, tmp_path)
    return run(reloaded, [inputs[t.name] for t in reloaded.inputs], data_format)


# ---------------------------------------------------------------- Test_Caffe_layers::testLayerUsingCaffeModels


def uniform_inputs(shapes: dict[str, tuple[int, ...]]) -> Callable[[], dict[str, np.ndarray]]:
    return lambda: {name: random(shape, seed) for seed, (name, shape) in enumerate(shapes.items())}


def roi_pooling_inputs() -> dict[str, np.ndarray]:
    features, rois = roi_inputs()
    return {"input": features, "rois": rois}


def against_opencv(base: str, inputs: dict[str, tuple[int, ...]] | Callable, outputs=("output",), blobs=None):
    """OpenCV's harness: feed ``inputs`` (shapes for uniform values, or a maker of the arrays),
    compare the first tops of the ``outputs`` layers (the ``blobs``, where they are named otherwise)
    with OpenCV 4's on the same prototxt and weights."""
    make_inputs = inputs if callable(inputs) else uniform_inputs(inputs)
    blobs = list(blobs or outputs)

    def check(data_format, tmp_path):
        pytest.importorskip("cv2")
        prototxt = stored(f"{base}.prototxt")
        arrays = make_inputs()
        shapes = {name: array.shape for name, array in arrays.items()}
        layers = synthetic_weights(prototxt, seed=1, input_shapes=shapes)
        weights = None
        if layers:
            weights = tmp_path / f"{base}.caffemodel"
            write_caffemodel(weights, layers)
        references = oracle.opencv_forward(prototxt, weights, arrays, [(name, 0) for name in outputs])
        actual = convert_and_run(prototxt, weights, arrays, data_format, tmp_path, input_shapes=shapes, outputs=blobs)
        for name, y, reference in zip(blobs, actual, references):
            assert_matches(y, reference.reshape(y.shape) if y.size == reference.size else reference, name)

    return check


def mvn_against_caffe(data_format, tmp_path):
    # OpenCV adds eps under the square root, Caffe's mvn_layer.cpp to the standard deviation.
    x = random(COMMON_BLOB)
    (actual,) = convert_and_run(stored("layer_mvn.prototxt"), None, {"input": x}, data_format, tmp_path)
    assert_matches(actual, caffe_mvn(x, across_channels=False, normalize_variance=True, eps=0.1), "layer_mvn")


def reshape_split_slice_give_the_input_back(data_format, tmp_path):
    x = random((6, 12))
    prototxt = stored("reshape_and_slice_routines.prototxt")
    (actual,) = convert_and_run(
        prototxt, None, {"input": x}, data_format, tmp_path, input_shapes={"input": x.shape}, outputs=["output"]
    )
    np.testing.assert_array_equal(actual, x)


# ---------------------------------------------------------------- Test_Caffe (test_caffe_importer.cpp)


def multiple_inputs(data_format, tmp_path):
    blue_green1, red1, blue_green2, red2 = (random((1, c, 10, 11), seed) for seed, c in enumerate((2, 1, 2, 1)))
    inputs = {
        "old_style_input_blue_green": blue_green1,
        "different_name_for_red": red1,
        "input_layer_blue_green": blue_green2,
        "old_style_input_red": red2,
    }
    (actual,) = convert_and_run(stored("net_input.prototxt"), None, inputs, data_format, tmp_path)
    expected = np.concatenate([blue_green1, red1], axis=1) + np.concatenate([blue_green2, red2], axis=1)
    assert_matches(actual, expected, "net_input")


def shared_weights(data_format, tmp_path):
    """Two layers named "conv" and two named "sum" read the same blobs: 1x1 weights of one, no bias."""
    weights = tmp_path / "shared_weights.caffemodel"
    zero = np.zeros(1, np.float32)
    conv = ("conv", "Convolution", [np.ones((1, 1, 1, 1), np.float32), zero])
    write_caffemodel(weights, [conv, ("sum", "InnerProduct", [np.ones((1, 4), np.float32), zero])])
    inputs = {
        "input_1": np.array([[[[0, 2], [4, 6]]]], np.float32),
        "input_2": np.array([[[[1, 3], [5, 7]]]], np.float32),
    }
    (actual,) = convert_and_run(stored("shared_weights.prototxt"), weights, inputs, data_format, tmp_path)
    np.testing.assert_array_equal(actual, [[12, 16]])


def read_googlenet(data_format, tmp_path):
    """OpenCV only reads the prototxt; here every layer must have a converter and a shape."""
    prototxt = SHARED / "caffe" / "models" / "bvlc_googlenet" / "deploy.prototxt"
    if not prototxt.exists():
        pytest.skip(f"{prototxt} not found")
    graph = load_graph(prototxt)
    assert graph.ops


# ---------------------------------------------------------------- test_layers.cpp's own expected values


SCALE_INPUT = (2, 3, 4, 5)


def scale_untrainable(axis: int, dims: int, fusion: bool):
    """``Scale_untrainable``: ``scale_input`` times ``scale_weights`` of shape inpShape[axis:axis+dims],
    after a 1x1 depthwise convolution of ones when the case checks OpenCV's conv fusion."""

    def check(data_format, tmp_path):
        weights_shape = SCALE_INPUT[axis : axis + dims]
        body = ""
        bottom = "scale_input"
        layers = []
        if fusion:
            conv = "convolution_param { kernel_size: 1 num_output: 3 group: 3 bias_term: false }"
            body += layer("Convolution", conv, ("scale_input",), ("conv",), name="testConv")
            layers.append(("testConv", "Convolution", [np.ones((3, 1, 1, 1), np.float32)]))
            bottom = "conv"
        body += layer("Scale", f"scale_param {{ axis: {axis} }}", (bottom, "scale_weights"), ("out",), "testLayer")
        prototxt = tmp_path / "scale.prototxt"
        prototxt.write_text(net({"scale_input": SCALE_INPUT, "scale_weights": weights_shape}, body))
        weights = None
        if layers:
            weights = tmp_path / "scale.caffemodel"
            write_caffemodel(weights, layers)
        x, w = random(SCALE_INPUT, 1), random(weights_shape, 2)
        # The test's loop: element i is multiplied by w[(i / spatialSize) % w.size].
        spatial = int(np.prod(SCALE_INPUT[axis + dims :]))
        expected = (x.reshape(-1) * w.reshape(-1)[(np.arange(x.size) // spatial) % w.size]).reshape(x.shape)
        inputs = {"scale_input": x, "scale_weights": w}
        (actual,) = convert_and_run(prototxt, weights, inputs, data_format, tmp_path)
        assert_matches(actual, expected, f"Scale axis {axis}, {dims} weight axes")

    return check


CROP_INPUT, CROP_SIZE = (1, 3, 20, 30), (1, 3, 10, 12)


def crop(axis: int, offsets: int, offset: int):
    """``Crop``: ``cropImage`` cut to ``sizImage``'s shape from ``axis`` on; OpenCV expects an error
    where Caffe's crop_layer.cpp CHECKs fail (offset count, or a window past the input)."""

    def check(data_format, tmp_path):
        params = "".join(f" offset: {offset}" for _ in range(offsets))
        body = layer("Crop", f"crop_param {{ axis: {axis}{params} }}", ("cropImage", "sizImage"), ("out",), "testCrop")
        prototxt = tmp_path / "crop.prototxt"
        prototxt.write_text(net({"cropImage": CROP_INPUT, "sizImage": CROP_SIZE}, body))
        start = offset if offsets else 0
        invalid = (offsets > 1 and offsets != 4 - axis) or any(
            CROP_SIZE[i] + start > CROP_INPUT[i] for i in range(axis, 4)
        )
        if invalid:
            with pytest.raises(Caffe2KerasError, match="Received: "):
                caffe2keras.convert(prototxt, data_format=data_format)
            return
        x, size = random(CROP_INPUT, 1), random(CROP_SIZE, 2)
        (actual,) = convert_and_run(prototxt, None, {"cropImage": x, "sizImage": size}, data_format, tmp_path)
        window = tuple(slice(start, start + CROP_SIZE[i]) if i >= axis else slice(None) for i in range(4))
        np.testing.assert_array_equal(actual, x[window])

    return check


def average_pooling_kernel_area(data_format, tmp_path):
    prototxt = tmp_path / "pool.prototxt"
    prototxt.write_text(
        net({"data": (1, 1, 3, 3)}, layer("Pooling", "pooling_param { pool: AVE kernel_size: 2 stride: 2 }"))
    )
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    (actual,) = convert_and_run(prototxt, None, {"data": x}, data_format, tmp_path)
    assert_matches(actual, np.array([[[[3, 4.5], [7.5, 9]]]], np.float32), "AVE pooling")


def prior_box_squares(data_format, tmp_path):
    params = (
        "prior_box_param { min_size: 2 flip: true clip: true aspect_ratio: 1 "
        "variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 }"
    )
    prototxt = tmp_path / "priors.prototxt"
    prototxt.write_text(net({"data": (1, 1, 1, 2)}, layer("PriorBox", params, ("data", "data"))))
    (actual,) = convert_and_run(prototxt, None, {"data": random((1, 1, 1, 2))}, data_format, tmp_path)
    expected = [[0, 0, 0.75, 1], [0.25, 0, 1, 1], [0.1, 0.1, 0.2, 0.2], [0.1, 0.1, 0.2, 0.2]]
    assert_matches(actual.reshape(4, 4), np.asarray(expected, np.float32), "PriorBox")


def dwconv_prelu(inputs: int, outputs: int):
    """``Layer_Test_DWconv_Prelu``: group-3 3x3 convolution of ones (weights -(o+1), bias o+1), then
    PReLU with slopes o+1; the test's own formula gives each output channel's constant."""

    def check(data_format, tmp_path):
        body = layer(
            "Convolution",
            f"convolution_param {{ kernel_size: 3 num_output: {outputs} group: 3 }}",
            ("data",),
            ("conv",),
            "dwconv",
        )
        body += layer("PReLU", "", ("conv",), ("out",), "dw_relu")
        prototxt = tmp_path / "dwconv.prototxt"
        prototxt.write_text(net({"data": (1, inputs, 16, 16)}, body))
        channel = np.arange(outputs, dtype=np.float32)
        weights = tmp_path / "dwconv.caffemodel"
        kernel = -np.broadcast_to((channel + 1)[:, None, None, None], (outputs, inputs // 3, 3, 3))
        write_caffemodel(
            weights,
            [
                ("dwconv", "Convolution", [np.ascontiguousarray(kernel), channel + 1]),
                ("dw_relu", "PReLU", [channel + 1]),
            ],
        )
        x = np.ones((1, inputs, 16, 16), np.float32)
        (actual,) = convert_and_run(prototxt, weights, {"data": x}, data_format, tmp_path)
        depth = inputs // 3
        expected = ((-9 * depth * (channel + 1) + channel + 1) * (channel + 1))[None, :, None, None]
        assert_matches(actual, np.broadcast_to(expected, (1, outputs, 14, 14)), "dwconv + PReLU")

    return check


def fused_concat(data_format, tmp_path):
    body = layer("AbsVal", "", ("data",), ("abs",), "someLayer")
    body += layer("Concat", "concat_param { axis: 1 }", ("abs", "abs"), ("out",), "testConcat")
    prototxt = tmp_path / "concat.prototxt"
    prototxt.write_text(net({"data": (1, 2, 3, 4)}, body))
    x = random((1, 2, 3, 4), low=0.0)
    (actual,) = convert_and_run(prototxt, None, {"data": x}, data_format, tmp_path)
    np.testing.assert_array_equal(actual, np.concatenate([x, x], axis=1))


def reshape(input_shape, expected_shape, params: str):
    """``Layer_Test_Reshape``: the shape Caffe's reshape rules give."""

    def check(data_format, tmp_path):
        prototxt = tmp_path / "reshape.prototxt"
        prototxt.write_text(net({"data": input_shape}, layer("Reshape", f"reshape_param {{ {params} }}")))
        x = random(input_shape)
        (actual,) = convert_and_run(prototxt, None, {"data": x}, data_format, tmp_path)
        np.testing.assert_array_equal(actual, x.reshape(expected_shape))

    return check


# ---------------------------------------------------------------- the cases


def skipped(reason: str):
    return pytest.mark.skip(reason=reason)


FLOWNET = "FlowNet2-Caffe custom layer, not a Caffe dialect caffe2keras converts; its prototxt and .npy are not stored"
EXTRA = "needs {} from opencv_extra (a large caffemodel and OpenCV's reference; not obtainable here)"
RECURRENT = "OpenCV feeds its LSTM/RNN layer .npy weights directly, without a Caffe model; those .npy are not stored"

LAYER_CASES = [
    ("Test_Caffe_layers.Softmax", against_opencv("layer_softmax", {"input": COMMON_BLOB})),
    ("Test_Caffe_layers.LRN[layer_lrn_spatial]", against_opencv("layer_lrn_spatial", {"input": COMMON_BLOB})),
    ("Test_Caffe_layers.LRN[layer_lrn_channels]", against_opencv("layer_lrn_channels", {"input": COMMON_BLOB})),
    ("Test_Caffe_layers.Convolution", against_opencv("layer_convolution", {"input": COMMON_BLOB})),
    ("Test_Caffe_layers.DeConvolution", against_opencv("layer_deconvolution", {"input": (2, 12, 36, 37)})),
    ("Test_Caffe_layers.InnerProduct", against_opencv("layer_inner_product", {"input": COMMON_BLOB})),
    ("Test_Caffe_layers.Pooling_max", against_opencv("layer_pooling_max", {"input": COMMON_BLOB})),
    ("Test_Caffe_layers.Pooling_ave", against_opencv("layer_pooling_ave", {"input": COMMON_BLOB})),
    ("Test_Caffe_layers.MVN", mvn_against_caffe),
    ("Test_Caffe_layers.BatchNorm[layer_batch_norm]", against_opencv("layer_batch_norm", {"input": COMMON_BLOB})),
    (
        "Test_Caffe_layers.BatchNorm[layer_batch_norm_local_stats]",
        against_opencv("layer_batch_norm_local_stats", {"input": (1, 2, 3, 4)}),
    ),
    ("Test_Caffe_layers.ReLU", against_opencv("layer_relu", {"input": COMMON_BLOB})),
    ("Test_Caffe_layers.Dropout", against_opencv("layer_dropout", {"input": COMMON_BLOB})),
    ("Test_Caffe_layers.Concat[layer_concat]", against_opencv("layer_concat", {"input": COMMON_BLOB})),
    ("Test_Caffe_layers.Concat[layer_concat_optim]", against_opencv("layer_concat_optim", {"input": (1, 2, 3, 4)})),
    (
        "Test_Caffe_layers.Concat[layer_concat_shared_input]",
        against_opencv("layer_concat_shared_input", {"input": (1, 2, 3, 4)}),
    ),
    ("Test_Caffe_layers.Fused_Concat", fused_concat),
    ("Test_Caffe_layers.Eltwise", against_opencv("layer_eltwise", {"input": COMMON_BLOB})),
    ("Test_Caffe_layers.PReLU", against_opencv("layer_prelu", {"input": COMMON_BLOB})),
    ("Test_Caffe_layers.layer_prelu_fc", against_opencv("layer_prelu_fc", {"input": (2, 3, 4, 5)})),
    ("Test_Caffe_layers.Reshape_Split_Slice", reshape_split_slice_give_the_input_back),
    ("Test_Caffe_layers.Interp", against_opencv("layer_interp", {"input": (2, 3, 4, 5)})),
    (
        "Test_Caffe_layers.Conv2Inputs",
        against_opencv(
            "conv_2_inps", {"input_0": (1, 3, 4, 5), "input_1": (1, 3, 4, 5)}, outputs=("eltwise_sum",), blobs=("out",)
        ),
    ),
    ("Test_Caffe_layers.Average_pooling_kernel_area", average_pooling_kernel_area),
    ("Test_Caffe_layers.PriorBox_squares", prior_box_squares),
    (
        "Test_Caffe_layers.PriorBox_repeated",
        against_opencv("prior_box", {"data": (1, 3, 10, 10), "shape": (1, 2, 3, 4)}, outputs=("priorbox",)),
    ),
    (
        "Layer_Test_ROIPooling.Accuracy",
        against_opencv("net_roi_pooling", roi_pooling_inputs),
    ),
    ("Layer_Test_Reshape.Accuracy[4x3x1x2]", reshape((4, 3, 1, 2), (4, 3, 2), "shape { } axis: 2 num_axes: 1")),
    ("Layer_Test_Reshape.Accuracy[1x128x4x4]", reshape((1, 128, 4, 4), (1, 2048), "shape { dim: -1 dim: 2048 }")),
    ("Layer_Test_Reshape.Accuracy[1x2x3]", reshape((1, 2, 3), (3, 1, 2), "shape { dim: 3 dim: 1 dim: 2 }")),
]

SCALE_AXES = [(0, 1), (0, 2), (0, 3), (0, 4), (1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (3, 1)]
SCALE_CASES = [
    (
        f"Layer_Test.Scale_untrainable[axis{axis}-dims{dims}-{'fusion' if fusion else 'nofusion'}]",
        scale_untrainable(axis, dims, fusion),
    )
    for (axis, dims), fusion in itertools.product(SCALE_AXES, (False, True))
]
CROP_CASES = [
    (f"Layer_Test.Crop[axis{axis}-offsets{count}-value{value}]", crop(axis, count, value))
    for axis, count, value in itertools.product((0, 1, 2), (0, 1, 2, 4), (3, 4))
]
DWCONV_CASES = [
    (f"Layer_Test_DWconv_Prelu.Accuracy[{inputs}-{outputs}]", dwconv_prelu(inputs, outputs))
    for inputs, outputs in itertools.product((3, 6), (3, 6))
]
IMPORTER_CASES = [
    ("Test_Caffe.multiple_inputs", multiple_inputs),
    ("Test_Caffe.shared_weights", shared_weights),
    ("Test_Caffe.read_googlenet", read_googlenet),
]

UNAVAILABLE = [
    ("Test_Caffe_layers.Accum[accum]", FLOWNET),
    ("Test_Caffe_layers.Accum[accum_ref]", FLOWNET),
    ("Test_Caffe_layers.FlowWarp", FLOWNET),
    ("Test_Caffe_layers.ChannelNorm", FLOWNET),
    ("Test_Caffe_layers.DataAugmentation[data_augmentation]", FLOWNET),
    ("Test_Caffe_layers.DataAugmentation[data_augmentation_2x1]", FLOWNET),
    ("Test_Caffe_layers.DataAugmentation[data_augmentation_8x6]", FLOWNET),
    ("Test_Caffe_layers.Correlation", FLOWNET),
    ("Test_Caffe_layers.Resample[nearest]", FLOWNET.replace("; its prototxt and .npy are not stored", "")),
    ("Test_Caffe_layers.Resample[nearest_2inps]", FLOWNET.replace("; its prototxt and .npy are not stored", "")),
    ("Test_Caffe_layers.FasterRCNN_Proposal", "covered by tests/test_rcnn.py's OpenCV Proposal cases"),
    ("Layer_LSTM_Test_Accuracy_with_.CaffeRecurrent", RECURRENT),
    ("Layer_RNN_Test_Accuracy_with_.CaffeRecurrent", RECURRENT),
    ("Test_Caffe.memory_read", EXTRA.format("bvlc_googlenet.caffemodel")),
    ("Test_Caffe.read_gtsrb", "needs gtsrb.prototxt from opencv_extra (not stored here)"),
    ("Reproducibility_AlexNet.Accuracy", EXTRA.format("bvlc_alexnet.caffemodel")),
    ("Reproducibility_AlexNet_fp16.Accuracy", EXTRA.format("bvlc_alexnet.caffemodel")),
    ("Reproducibility_GoogLeNet.Batching", EXTRA.format("bvlc_googlenet.caffemodel")),
    ("Reproducibility_GoogLeNet.IntermediateBlobs", EXTRA.format("bvlc_googlenet.caffemodel")),
    ("Reproducibility_GoogLeNet.SeveralCalls", EXTRA.format("bvlc_googlenet.caffemodel")),
    ("Reproducibility_GoogLeNet_fp16.Accuracy", EXTRA.format("bvlc_googlenet.caffemodel")),
    ("Reproducibility_FCN.Accuracy", EXTRA.format("fcn8s-heavy-pascal.caffemodel")),
    ("Reproducibility_SSD.Accuracy", EXTRA.format("VGG_ILSVRC2016_SSD_300x300_iter_440000.caffemodel")),
    ("Reproducibility_MobileNet_SSD.Accuracy", EXTRA.format("MobileNetSSD_deploy.caffemodel")),
    ("Reproducibility_ResNet50.Accuracy", EXTRA.format("ResNet-50-model.caffemodel")),
    ("Reproducibility_SqueezeNet_v1_1.Accuracy", EXTRA.format("squeezenet_v1.1.caffemodel")),
    ("Test_Caffe_nets.Colorization", EXTRA.format("colorization_release_v2.caffemodel")),
    ("Test_Caffe_nets.DenseNet_121", EXTRA.format("DenseNet_121.caffemodel")),
    ("Test_Caffe_nets.opencv_face_detector", EXTRA.format("opencv_face_detector.caffemodel")),
    ("Test_Caffe_nets.FasterRCNN_vgg16", EXTRA.format("VGG16_faster_rcnn_final.caffemodel")),
    ("Test_Caffe_nets.FasterRCNN_zf", EXTRA.format("ZF_faster_rcnn_final.caffemodel")),
    ("Test_Caffe_nets.RFCN", EXTRA.format("resnet50_rfcn_final.caffemodel")),
]

# Cases over ~5 s on the 2-core CI machine; the rest of the suite stays in the fast tier.
SLOW = {
    "Test_Caffe_layers.Softmax",
    "Test_Caffe_layers.Convolution",
    "Test_Caffe_layers.DeConvolution",
    "Test_Caffe_layers.Concat[layer_concat_optim]",
    "Test_Caffe_layers.Concat[layer_concat_shared_input]",
    "Test_Caffe_layers.layer_prelu_fc",
}


# The fast tier runs one instance of each parametrised OpenCV test's family; the full run runs all.
REPEATS = ("-fusion]", "-value4]", "DWconv_Prelu.Accuracy[6-")


def marks(name: str) -> list:
    return [pytest.mark.slow] if name in SLOW or any(repeat in name for repeat in REPEATS) else []


CASES = [
    pytest.param(check, id=name, marks=marks(name))
    for name, check in LAYER_CASES + SCALE_CASES + CROP_CASES + DWCONV_CASES + IMPORTER_CASES
] + [pytest.param(None, id=name, marks=skipped(reason)) for name, reason in UNAVAILABLE]


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("check", CASES)
def test_opencv_caffe_importer(check, data_format, tmp_path):
    check(data_format, tmp_path)
