"""SSD's layers (weiliu89/caffe) converted and compared with OpenCV 4.x's Caffe runtime.

OpenCV implements Normalize, Permute, PriorBox and DetectionOutput with SSD's semantics
where these tests use them. Where it departs from Caffe (it sorts each image's detections
by score across classes, zero-pads a fixed-size blob, ignores eta, reads CORNER_SIZE as
CORNER, defaults PriorBox's clip to true and DetectionOutput's threshold to 0, and has no
per-channel scale with across_spatial), the prototxts here avoid the difference or the
comparison undoes it; the rest is covered by src/caffe2keras/layers/detection_test.py.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe import read_weights
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.synthetic import synthetic_weights
from caffe2keras.tolerance import compare
from caffe2keras.verification import verify
from caffe2keras.verification.detections import align_detections, caffe_detections, reference_detections
from tests.golden import assert_matches, run, save_and_reload
from tests.shared import FORMATS, SHARED, requires_shared

cv2 = pytest.importorskip("cv2")

MODELS = SHARED / "caffe" / "models" / "mobilenet_ssd"


def opencv_forward(prototxt, weights, inputs: dict, outputs: list[str]) -> list[np.ndarray]:
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights) if weights else None)
    for name, array in inputs.items():
        net.setInput(array, name)
    return [np.asarray(a) for a in net.forward(outputs)]


def convert_and_run(prototxt, weights, inputs: dict, outputs, data_format, tmp_path):
    model = caffe2keras.convert(prototxt, weights, outputs=outputs, data_format=data_format)
    reloaded = save_and_reload(model, tmp_path)
    order = [t.name for t in reloaded.inputs]
    return run(reloaded, [inputs[name] for name in order], data_format)


def opencv_detections(blob: np.ndarray) -> np.ndarray:
    return reference_detections(blob, "opencv")


def assert_detections_match(output: np.ndarray, reference: np.ndarray, what: str):
    """Our output, as Caffe's blob, against OpenCV's rows put in Caffe's order.

    Our rows must be in Caffe's order; rows of one image and label whose scores are within
    the tolerance may pair up in either order (see ``align_detections``).
    """
    actual = caffe_detections(output)
    assert actual.shape == reference.shape, f"{what}: {len(actual)} detections, OpenCV has {len(reference)}"
    assert len(reference), f"{what}: no detections; the comparison would be empty"
    image, label, score = actual[:, 0], actual[:, 1], actual[:, 2]
    same_image = np.diff(image) == 0
    same_label = same_image & (np.diff(label) == 0)
    assert np.all(np.diff(image) >= 0), f"{what}: images out of order"
    assert np.all(np.diff(label)[same_image] >= 0), f"{what}: labels out of order"
    assert np.all(np.diff(score)[same_label] <= 0), f"{what}: scores out of order"
    allowed = compare(reference, reference).allowed
    assert_matches(align_detections(actual, reference, allowed), reference, what)


# ------------------------------------------------------------------ MobileNet-SSD

# Sharper class scores (the mbox_conf layers' weights and biases times a factor) give
# tens of detections above the 0.25 threshold; the last case goes past keep_top_k (100).
MOBILENET_CASES = [
    ("deploy.prototxt", 6.0, "channels_last"),
    ("deploy.prototxt", 6.0, "channels_first"),
    ("deploy_root_newer.prototxt", 4.0, "channels_last"),
    ("deploy_root_newer.prototxt", 4.0, "channels_first"),
    ("deploy.prototxt", 8.0, "channels_last"),
]
MOBILENET_BLOBS = ["mbox_loc", "mbox_conf_flatten", "mbox_priorbox", "detection_out"]


@functools.cache
def mobilenet_case(prototxt_name: str, factor: float, directory: str):
    """(prototxt, weights path, input, OpenCV's outputs), once per session and worker."""
    prototxt = MODELS / prototxt_name
    layers = [
        (name, kind, [b * np.float32(factor) if "mbox_conf" in name else b for b in blobs])
        for name, kind, blobs in synthetic_weights(prototxt, seed=0)
    ]
    weights = f"{directory}/{prototxt.stem}-{factor}.caffemodel"
    write_caffemodel(weights, layers)
    image = np.random.default_rng(1).uniform(-1, 1, (1, 3, 300, 300)).astype(np.float32)
    return prototxt, weights, image, opencv_forward(prototxt, weights, {"data": image}, MOBILENET_BLOBS)


@requires_shared
@pytest.mark.slow  # a whole Zoo net; SSD's layers have fast tests of their own beside them
@pytest.mark.parametrize("prototxt_name, factor, data_format", MOBILENET_CASES)
def test_mobilenet_ssd_matches_opencv(prototxt_name, factor, data_format, tmp_path_factory, tmp_path):
    directory = tmp_path_factory.getbasetemp() / "mobilenet_ssd"
    directory.mkdir(exist_ok=True)
    prototxt, weights, image, references = mobilenet_case(prototxt_name, factor, str(directory))
    outputs = convert_and_run(prototxt, weights, {"data": image}, MOBILENET_BLOBS, data_format, tmp_path)
    for blob, actual, reference in zip(MOBILENET_BLOBS[:-1], outputs, references):
        assert_matches(actual, reference, f"{prototxt_name}: {blob}")
    detections = outputs[-1]
    assert detections.shape == (1, 1, 100, 7)
    expected = opencv_detections(references[-1])
    assert 10 <= len(expected) <= 100
    assert_detections_match(detections, expected, f"{prototxt_name}: detection_out")
    assert np.all(detections[0, 0, len(expected) :] == -1)


@requires_shared
@pytest.mark.slow
def test_mobilenet_ssd_converted_once_matches_opencv_at_other_sizes(tmp_path_factory, tmp_path):
    """Free height and width: PriorBox grids, the flattened heads and the number of priors
    follow each input's size."""
    directory = tmp_path_factory.getbasetemp() / "mobilenet_ssd"
    directory.mkdir(exist_ok=True)
    prototxt, weights, _, _ = mobilenet_case("deploy.prototxt", 6.0, str(directory))
    model = caffe2keras.convert(prototxt, weights, input_shapes={"data": (1, 3, None, None)}, outputs=MOBILENET_BLOBS)
    reloaded = save_and_reload(model, tmp_path)
    for height, width in [(257, 311), (330, 290)]:
        image = np.random.default_rng(height).uniform(-1, 1, (1, 3, height, width)).astype(np.float32)
        references = opencv_forward(prototxt, weights, {"data": image}, MOBILENET_BLOBS)
        outputs = run(reloaded, [image], "channels_last")
        for blob, actual, reference in zip(MOBILENET_BLOBS[:-1], outputs, references):
            assert_matches(actual, reference, f"{height}x{width}: {blob}")
        expected = opencv_detections(references[-1])
        assert len(expected) >= 5
        assert_detections_match(outputs[-1], expected, f"{height}x{width}: detection_out")


# ------------------------------------------------------------------ single layers


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


NORMALIZE_NET = """
input: "data" input_shape { dim: 2 dim: 4 dim: 5 dim: 6 }
layer { name: "image_shared" type: "Normalize" bottom: "data" top: "image_shared"
        norm_param { across_spatial: true channel_shared: true } }
layer { name: "position_per_channel" type: "Normalize" bottom: "data" top: "position_per_channel"
        norm_param { across_spatial: false channel_shared: false eps: 0.001 } }
layer { name: "position_shared" type: "Normalize" bottom: "data" top: "position_shared"
        norm_param { across_spatial: false } }
"""


@pytest.mark.parametrize("data_format", FORMATS)
def test_normalize_matches_opencv(data_format, tmp_path):
    rng = np.random.default_rng(0)
    prototxt = write(tmp_path, "normalize.prototxt", NORMALIZE_NET)
    weights = tmp_path / "normalize.caffemodel"
    # A channel-shared scale is a scalar blob, which Caffe writes without a shape.
    write_caffemodel(
        weights,
        [
            ("image_shared", "Normalize", [np.array(3.0, np.float32)]),
            ("position_per_channel", "Normalize", [rng.uniform(1, 5, 4).astype(np.float32)]),
            ("position_shared", "Normalize", [np.array(20.0, np.float32)]),
        ],
    )
    data = rng.standard_normal((2, 4, 5, 6)).astype(np.float32)
    data[1, :, 2, 3] = 0  # a zero vector: eps keeps it finite
    names = ["image_shared", "position_per_channel", "position_shared"]
    references = opencv_forward(prototxt, weights, {"data": data}, names)
    outputs = convert_and_run(prototxt, weights, {"data": data}, names, data_format, tmp_path)
    for name, actual, reference in zip(names, outputs, references):
        assert_matches(actual, reference, name)


def test_normalize_starts_from_its_scale_filler(tmp_path):
    """SSD nets declare scale_filler { value: 20 }: the architecture-only model starts there."""
    prototxt = write(
        tmp_path,
        "normalize.prototxt",
        NORMALIZE_NET.replace(
            "norm_param { across_spatial: false channel_shared: false eps: 0.001 }",
            'norm_param { across_spatial: false channel_shared: false scale_filler { type: "constant" value: 20 } }',
        ),
    )
    model = caffe2keras.convert(prototxt)
    np.testing.assert_array_equal(model.get_layer("position_per_channel").get_weights()[0], np.full(4, 20.0))
    np.testing.assert_array_equal(model.get_layer("image_shared").get_weights()[0], np.float32(1.0))


def test_scalar_blob_without_shape_reads_as_scalar(tmp_path):
    """Caffe's Blob::ToProto writes no shape for a 0-d blob; Blob::FromProto reads it back as ()."""
    path = tmp_path / "scalar.caffemodel"
    write_caffemodel(path, [("norm", "Normalize", [np.array(2.5, np.float32)])])
    (blob,) = read_weights(path)["norm"].blobs
    assert blob.shape == () and blob.data == np.float32(2.5)


PERMUTE_NET = """
input: "data" input_shape { dim: 2 dim: 3 dim: 4 dim: 5 }
layer { name: "nhwc" type: "Permute" bottom: "data" top: "nhwc" permute_param { order: 0 order: 2 order: 3 order: 1 } }
layer { name: "nwch" type: "Permute" bottom: "data" top: "nwch" permute_param { order: 0 order: 3 order: 1 order: 2 } }
layer { name: "flat" type: "Flatten" bottom: "nhwc" top: "flat" }
"""
# OpenCV wants every axis named; Caffe appends the unnamed ones in their old order.
PARTIAL_PERMUTES = """
layer { name: "partial" type: "Permute" bottom: "data" top: "partial" permute_param { order: 0 order: 2 } }
layer { name: "same" type: "Permute" bottom: "data" top: "same" permute_param { order: 0 order: 1 } }
"""


@pytest.mark.parametrize("data_format", FORMATS)
def test_permute_matches_opencv(data_format, tmp_path):
    prototxt = write(tmp_path, "permute.prototxt", PERMUTE_NET + PARTIAL_PERMUTES)
    data = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    names = ["nhwc", "nwch", "flat"]
    references = opencv_forward(write(tmp_path, "opencv.prototxt", PERMUTE_NET), None, {"data": data}, names)
    references += [np.transpose(data, (0, 2, 1, 3)), data]
    names += ["partial", "same"]
    outputs = convert_and_run(prototxt, None, {"data": data}, names, data_format, tmp_path)
    for name, actual, reference in zip(names, outputs, references):
        assert actual.shape == reference.shape, name
        np.testing.assert_array_equal(actual, reference, err_msg=name)


PRIOR_BOX_NET = """
input: "feature" input_shape { dim: 1 dim: 8 dim: 4 dim: 3 }
input: "image" input_shape { dim: 1 dim: 3 dim: 64 dim: 48 }
input: "pair" input_shape { dim: 1 dim: 1 dim: 1 dim: 2 }
layer { name: "step_offset_clip" type: "PriorBox" bottom: "feature" bottom: "image" top: "step_offset_clip"
        prior_box_param { min_size: 20 max_size: 40 aspect_ratio: 2 aspect_ratio: 3 clip: true step: 16
                          offset: 0.25 variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 } }
layer { name: "steps_no_flip" type: "PriorBox" bottom: "feature" bottom: "image" top: "steps_no_flip"
        prior_box_param { min_size: 12 aspect_ratio: 2 flip: false clip: false step_h: 15 step_w: 17.5
                          variance: 0.2 } }
layer { name: "squares" type: "PriorBox" bottom: "pair" bottom: "pair" top: "squares"
        prior_box_param { min_size: 2 aspect_ratio: 1 clip: true
                          variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 } }
"""


@pytest.mark.parametrize("data_format", FORMATS)
def test_prior_box_matches_opencv(data_format, tmp_path):
    prototxt = write(tmp_path, "prior_box.prototxt", PRIOR_BOX_NET)
    rng = np.random.default_rng(0)
    inputs = {
        name: rng.standard_normal(shape).astype(np.float32)
        for name, shape in (("feature", (1, 8, 4, 3)), ("image", (1, 3, 64, 48)), ("pair", (1, 1, 1, 2)))
    }
    names = ["step_offset_clip", "steps_no_flip", "squares"]
    references = opencv_forward(prototxt, None, inputs, names)
    outputs = convert_and_run(prototxt, None, inputs, names, data_format, tmp_path)
    for name, actual, reference in zip(names, outputs, references):
        assert_matches(actual, reference, name)
    # OpenCV's PriorBox_squares test: its expected values, written out.
    np.testing.assert_allclose(
        outputs[2].reshape(4, 4),
        [[0, 0, 0.75, 1], [0.25, 0, 1, 1], [0.1, 0.1, 0.2, 0.2], [0.1, 0.1, 0.2, 0.2]],
        atol=1e-7,
    )


DETECTION_NET = """
input: "feature" input_shape { dim: 1 dim: 1 dim: 4 dim: 4 }
input: "image" input_shape { dim: 1 dim: 3 dim: 100 dim: 100 }
input: "loc" input_shape { dim: 2 dim: 256 }
input: "loc_per_class" input_shape { dim: 2 dim: 1024 }
input: "conf" input_shape { dim: 2 dim: 256 }
layer { name: "priors" type: "PriorBox" bottom: "feature" bottom: "image" top: "priors"
        prior_box_param { min_size: 30 max_size: 60 aspect_ratio: 2 clip: false
                          variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 } }
layer { name: "center_size" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "priors" top: "center_size"
        detection_output_param { num_classes: 4 share_location: true background_label_id: 0 code_type: CENTER_SIZE
                                 keep_top_k: 12
                                 confidence_threshold: 0.2 nms_param { nms_threshold: 0.45 top_k: 20 } } }
layer { name: "corner" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "priors" top: "corner"
        detection_output_param { num_classes: 4 share_location: true background_label_id: 2 code_type: CORNER
                                 keep_top_k: 200
                                 confidence_threshold: 0.3 nms_param { nms_threshold: 0.3 } } }
layer { name: "per_class" type: "DetectionOutput" bottom: "loc_per_class" bottom: "conf" bottom: "priors"
        top: "per_class"
        detection_output_param { num_classes: 4 share_location: false background_label_id: -1 code_type: CENTER_SIZE
                                 keep_top_k: 30 confidence_threshold: 0.25
                                 nms_param { nms_threshold: 0.5 top_k: 16 } } }
layer { name: "clipped" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "priors" top: "clipped"
        detection_output_param { num_classes: 4 share_location: true background_label_id: 0 code_type: CENTER_SIZE
                                 keep_top_k: 200 confidence_threshold: 0.2 nms_param { nms_threshold: 0.45 }
                                 clip: true } }
layer { name: "unclipped" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "priors" top: "unclipped"
        detection_output_param { num_classes: 4 share_location: true background_label_id: 0 code_type: CENTER_SIZE
                                 keep_top_k: 200 confidence_threshold: 0.2 nms_param { nms_threshold: 0.45 } } }
"""


@pytest.mark.parametrize("data_format", FORMATS)
def test_detection_output_matches_opencv(data_format, tmp_path):
    """Two images; priors from a PriorBox (batch 1, as in Caffe) shared by both."""
    prototxt = write(tmp_path, "detection.prototxt", DETECTION_NET)
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 64, 4)) * 3
    inputs = {
        "feature": np.zeros((1, 1, 4, 4), np.float32),
        "image": np.zeros((1, 3, 100, 100), np.float32),
        "loc": (rng.standard_normal((2, 256)) * 0.5).astype(np.float32),
        "loc_per_class": (rng.standard_normal((2, 1024)) * 0.1).astype(np.float32),
        "conf": (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).reshape(2, 256).astype(np.float32),
    }
    names = ["center_size", "corner", "per_class", "clipped", "unclipped"]
    references = opencv_forward(prototxt, None, inputs, names)
    outputs = convert_and_run(prototxt, None, inputs, names, data_format, tmp_path)
    for name, actual, reference in zip(names, outputs, references):
        expected = opencv_detections(reference)
        assert set(expected[:, 0]) == {0, 1}, name
        assert_detections_match(actual, expected, name)
    # OpenCV's clip (its dialect of DetectionOutput) clamps the decoded boxes before NMS: here it
    # changes boxes that leave the image, so the two layers differ.
    clipped, unclipped = (caffe_detections(o)[:, 3:] for o in outputs[3:])
    assert clipped.min() >= 0 and clipped.max() <= 1 and (unclipped.min() < 0 or unclipped.max() > 1)


@pytest.mark.slow  # verify runs the net in OpenCV and Keras; the alignment has fast tests below
def test_verify_compares_detections_as_caffe_orders_them(tmp_path):
    """caffe2keras verify reads OpenCV's score-sorted, zero-padded blob in Caffe's order."""
    report = verify(write(tmp_path, "detection.prototxt", DETECTION_NET), None, against="opencv")
    assert report.ok, report.describe_first_divergence()
    rows = {row.blob: row for row in report.rows}
    assert all("detections compared in Caffe's order" in rows[name].note for name in ("center_size", "per_class"))


def test_align_detections_pairs_near_ties_only_within_a_run():
    reference = np.array(
        [[0, 1, 0.9, 0, 0, 1, 1], [0, 1, 0.5, 0, 0, 2, 2], [0, 1, 0.5, 0, 0, 3, 3], [0, 2, 0.5, 0, 0, 4, 4]], np.float32
    )
    swapped = reference[[0, 2, 1, 3]]
    np.testing.assert_array_equal(align_detections(swapped, reference, 1e-4), reference)
    across_labels = reference[[0, 1, 3, 2]]  # a row moved to another label's run stays misplaced
    assert np.abs(align_detections(across_labels, reference, 1e-4) - reference).max() > 0


# ------------------------------------------------------------------ errors

ERROR_NET = """
input: "data" input_shape { dim: 1 dim: 2 dim: 3 dim: 4 }
input: "volume" input_shape { dim: 1 dim: 2 dim: 3 dim: 4 dim: 5 }
input: "loc" input_shape { dim: 1 dim: 96 }
input: "conf" input_shape { dim: 1 dim: 72 }
input: "priors" input_shape { dim: 1 dim: 2 dim: 96 }
"""


@pytest.mark.parametrize(
    "layer, error, message",
    [
        (
            'type: "Permute" bottom: "data" permute_param { order: 0 order: 4 }',
            caffe2keras.ShapeError,
            "every axis must be below the bottom's 4 axes. Received: permute_param.order=[0, 4]",
        ),
        (
            'type: "Permute" bottom: "data" permute_param { order: 0 order: 2 order: 2 }',
            caffe2keras.ShapeError,
            "an axis is named twice",
        ),
        ('type: "Normalize" bottom: "volume"', caffe2keras.ShapeError, "Normalize takes blobs of 2 to 4 axes"),
        (
            'type: "PriorBox" bottom: "data" bottom: "data" prior_box_param { max_size: 4 }',
            caffe2keras.ShapeError,
            "give one or more positive min sizes. Received: prior_box_param.min_size=[]",
        ),
        (
            'type: "PriorBox" bottom: "data" bottom: "data" prior_box_param { min_size: 4 max_size: 3 }',
            caffe2keras.ShapeError,
            "each max size must exceed its min size",
        ),
        (
            'type: "PriorBox" bottom: "data" bottom: "data" prior_box_param { min_size: 4 variance: 0.1 variance: 0.2 }',
            caffe2keras.ShapeError,
            "give one positive variance or four",
        ),
        (
            'type: "PriorBox" bottom: "data" bottom: "data" prior_box_param { min_size: 4 step: 8 step_h: 8 step_w: 8 }',
            caffe2keras.ShapeError,
            "give either step or step_h/step_w, not both. Received: prior_box_param.step=8.0",
        ),
        (
            'type: "PriorBox" bottom: "data" bottom: "data" prior_box_param { min_size: 4 img_h: 8 }',
            caffe2keras.ShapeError,
            "img_h and img_w must both be positive",
        ),
        (
            'type: "PriorBox" bottom: "data" prior_box_param { min_size: 4 }',
            caffe2keras.ShapeError,
            "PriorBox takes two bottoms",
        ),
        (
            'type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "priors"',
            caffe2keras.ShapeError,
            "num_classes is required",
        ),
        (
            'type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "priors" '
            "detection_output_param { num_classes: 4 }",
            caffe2keras.ShapeError,
            "the conf bottom must be (N, 4 x 24 priors)",
        ),
        (
            'type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "priors" detection_output_param { '
            "num_classes: 3 nms_param { eta: 1.5 } }",
            caffe2keras.ShapeError,
            "eta must be in (0, 1]. Received: detection_output_param.nms_param.eta=1.5",
        ),
    ],
)
def test_parameter_errors_name_the_field(layer, error, message, tmp_path):
    prototxt = write(tmp_path, "net.prototxt", ERROR_NET + f'layer {{ name: "x" top: "x" {layer} }}')
    with pytest.raises(error, match=re.escape(message)) as caught:
        caffe2keras.convert(prototxt)
    assert "Layer 'x'" in str(caught.value)


def test_normalize_scale_of_the_wrong_size(tmp_path):
    prototxt = write(
        tmp_path,
        "net.prototxt",
        ERROR_NET + 'layer { name: "x" type: "Normalize" bottom: "data" '
        'top: "x" norm_param { channel_shared: false } }',
    )
    weights = tmp_path / "net.caffemodel"
    write_caffemodel(weights, [("x", "Normalize", [np.ones(3, np.float32)])])
    with pytest.raises(caffe2keras.WeightsError, match=re.escape("has shape (3,) but the prototxt gives (2,)")):
        caffe2keras.convert(prototxt, weights)


SSD_TEST_NET = """
name: "ssd_test"
layer {
  name: "data" type: "AnnotatedData" top: "data" top: "label"
  include { phase: TEST }
  transform_param {
    mean_value: 127.5 mean_value: 127.5 mean_value: 127.5 scale: 0.007843
    resize_param { prob: 1 resize_mode: WARP height: 32 width: 32 interp_mode: LINEAR }
    emit_constraint { emit_type: CENTER }
  }
  data_param { source: "test_lmdb" batch_size: 1 backend: LMDB }
  annotated_data_param {
    batch_sampler { sampler { min_scale: 0.3 max_scale: 1 } sample_constraint { min_jaccard_overlap: 0.1 }
                    max_sample: 1 max_trials: 50 }
    label_map_file: "labelmap.prototxt"
    anno_type: BBOX
  }
}
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 12 kernel_size: 3 stride: 8 pad: 1 } }
layer { name: "loc" type: "Convolution" bottom: "conv" top: "loc" convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "loc_flat" type: "Flatten" bottom: "loc" top: "loc_flat" }
layer { name: "conf" type: "Convolution" bottom: "conv" top: "conf" convolution_param { num_output: 3 kernel_size: 1 } }
layer { name: "conf_flat" type: "Flatten" bottom: "conf" top: "conf_flat" }
layer { name: "priors" type: "PriorBox" bottom: "conv" bottom: "data" top: "priors"
        prior_box_param { min_size: 10 variance: 0.1 } }
layer { name: "mbox_loss" type: "MultiBoxLoss" bottom: "loc_flat" bottom: "conf_flat" bottom: "priors"
        bottom: "label" top: "mbox_loss" include { phase: TRAIN }
        multibox_loss_param { loc_loss_type: SMOOTH_L1 conf_loss_type: SOFTMAX num_classes: 3 code_type: CENTER_SIZE
                              mining_type: MAX_NEGATIVE nms_param { nms_threshold: 0.45 } } }
layer { name: "detection_out" type: "DetectionOutput" bottom: "loc_flat" bottom: "conf_flat" bottom: "priors"
        top: "detection_out" include { phase: TEST }
        detection_output_param { num_classes: 3 code_type: CENTER_SIZE keep_top_k: 5 confidence_threshold: 0.01
                                 save_output_param { output_directory: "out" output_format: "VOC"
                                                     resize_param { height: 32 width: 32 } } } }
layer { name: "detection_eval" type: "DetectionEvaluate" bottom: "detection_out" bottom: "label"
        top: "detection_eval" include { phase: TEST }
        detection_evaluate_param { num_classes: 3 background_label_id: 0 overlap_threshold: 0.5 } }
"""


def test_ssd_test_prototxt_converts_without_its_training_layers(tmp_path):
    """SSD's test nets: AnnotatedData becomes the input, DetectionEvaluate is dropped like Accuracy."""
    prototxt = write(tmp_path, "test.prototxt", SSD_TEST_NET)
    model = caffe2keras.convert(prototxt, input_shapes={"data": (1, 3, 32, 32)}, data_format="channels_first")
    assert [t.name for t in model.inputs] == ["data"]
    assert model.output_names == ["detection_out"]
    assert model.outputs[0].shape == (None, 1, 5, 7)
