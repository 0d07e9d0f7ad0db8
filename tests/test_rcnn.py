"""Two-stage detectors as published: Faster R-CNN's proposals (py-faster-rcnn's Python
ProposalLayer, OpenCV's Proposal type) and R-FCN's PSROIPooling, then the whole nets.

Oracles: OpenCV 4 (it owns the Proposal type and runs PSROIPooling as the fork does), and
numpy written from py-faster-rcnn's Python (src/caffe2keras/layers/proposal_test.py) for the
Python layer, whose size filter OpenCV leaves out.
"""

from __future__ import annotations

import numpy as np
import pytest

import caffe2keras
from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.layer_arithmetic import faster_rcnn_anchors
from caffe2keras.layers.proposal_test import PUBLISHED_ANCHORS, proposals_reference
from caffe2keras.synthetic import synthetic_weights
from caffe2keras.tolerance import compare
from caffe2keras.verification.detections import align_detections, caffe_detections, reference_detections
from tests import oracle
from tests.golden import assert_matches, run, save_and_reload
from tests.nets import convert_and_run, layer, net, opencv_forward, write_net
from tests.shared import FORMATS, REPO

PUBLISHED = REPO / "tests" / "data" / "published"
PYTHON_PROPOSAL = (
    """python_param { module: 'rpn.proposal_layer' layer: 'ProposalLayer' param_str: "'feat_stride': 16" }"""
)
OPENCV_PROPOSAL = "proposal_param { ratio: 0.5 ratio: 1 ratio: 2 scale: 8 scale: 16 scale: 32 }"
RPN_BOTTOMS = ("scores", "deltas", "im_info")


def rpn_inputs(height, width, image, seed=0, delta_scale=0.3):
    rng = np.random.default_rng(seed)
    return {
        "scores": rng.uniform(0, 1, (1, 18, height, width)).astype(np.float32),
        "deltas": (delta_scale * rng.standard_normal((1, 36, height, width))).astype(np.float32),
        "im_info": np.asarray([image], np.float32),
    }


def rpn_net(inputs, proposal_type, params, tops=("rois",)):
    shapes = {name: array.shape for name, array in inputs.items()}
    return net(shapes, layer(proposal_type, params, RPN_BOTTOMS, tops, name="proposal"))


# ---------------------------------------------------------------- OpenCV's Proposal


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(
    "size, image, params",
    [
        ((8, 10), (128, 160, 1.0), ""),  # fewer than 300 survive: OpenCV's zero rows
        ((12, 15), (190.7, 239.2, 2.0), "pre_nms_topn: 200 post_nms_topn: 50 nms_thresh: 0.5"),  # OpenCV truncates
        ((6, 6), (96, 96, 1.0), "feat_stride: 8 base_size: 8 min_size: 40"),  # min_size: read, not applied
    ],
)
def test_opencv_proposal_matches_opencv(size, image, params, data_format, tmp_path):
    inputs = rpn_inputs(*size, image, seed=size[0])
    text = rpn_net(inputs, "Proposal", OPENCV_PROPOSAL.replace("}", f"{params} }}"), ("rois", "scores_out"))
    prototxt, _ = write_net(tmp_path, text)
    rois, scores = oracle.opencv_forward(prototxt, None, inputs, [("proposal", 0), ("proposal", 1)])
    actual = convert_and_run(tmp_path, text, list(inputs.values()), data_format)
    assert_matches(actual[0], rois, "rois")
    assert_matches(actual[1], scores, "scores")


def test_opencv_proposal_needs_its_anchors(tmp_path):
    inputs = rpn_inputs(4, 4, (64, 64, 1.0))
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(rpn_net(inputs, "Proposal", "proposal_param { scale: 8 }"))
    with pytest.raises(UnsupportedParameterError, match=r"proposal_param\.ratio"):
        caffe2keras.convert(prototxt)


# ---------------------------------------------------------------- py-faster-rcnn's Python layer


@pytest.mark.parametrize("data_format", FORMATS)
def test_python_proposal_layer_matches_py_faster_rcnn(data_format, tmp_path):
    inputs = rpn_inputs(9, 12, (144, 192, 1.5), seed=5, delta_scale=1.0)
    text = rpn_net(inputs, "Python", PYTHON_PROPOSAL, ("rois", "scores_out"))
    actual = convert_and_run(tmp_path, text, list(inputs.values()), data_format)
    expected = proposals_reference(*inputs.values(), PUBLISHED_ANCHORS, 16, 6000, 300, 0.7, 16)
    for blob, y, reference in zip(("rois", "scores"), actual, expected):
        assert_matches(y, reference, blob)


def test_python_proposal_layer_reads_scales(tmp_path):
    inputs = rpn_inputs(5, 6, (80, 96, 1.0), seed=2, delta_scale=1.0)
    inputs["scores"], inputs["deltas"] = inputs["scores"][:, :12], inputs["deltas"][:, :24]  # 6 anchors
    params = PYTHON_PROPOSAL.replace("'feat_stride': 16", "'feat_stride': 16, 'scales': (4, 8)")
    [rois] = convert_and_run(tmp_path, rpn_net(inputs, "Python", params), list(inputs.values()), FORMATS[0])
    anchors = faster_rcnn_anchors(16, (0.5, 1, 2), (4, 8))
    expected, _ = proposals_reference(*inputs.values(), anchors, 16, 6000, 300, 0.7, 16)
    assert_matches(rois, expected, "rois")


@pytest.mark.parametrize(
    "param_str, match",
    [
        ("'scales': (8, 16)", "lacks"),
        ("'feat_stride': 16, 'ratios': [1]", "would be ignored"),
        ("__import__('os').system('true')", "must be a mapping"),
        ("'feat_stride': -4", "positive"),
    ],
)
def test_python_proposal_layer_param_str_is_data_never_code(param_str, match, tmp_path):
    inputs = rpn_inputs(4, 4, (64, 64, 1.0))
    params = PYTHON_PROPOSAL.replace("'feat_stride': 16", param_str.replace('"', "'"))
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(rpn_net(inputs, "Python", params))
    with pytest.raises(UnsupportedParameterError, match=match):
        caffe2keras.convert(prototxt)


def test_other_python_layers_are_still_reported(tmp_path):
    inputs = rpn_inputs(4, 4, (64, 64, 1.0))
    body = layer("Python", PYTHON_PROPOSAL, RPN_BOTTOMS, ("rois",), name="proposal") + layer(
        "Python", "python_param { module: 'rpn.proposal_target_layer' layer: 'ProposalTargetLayer' }", ("rois",), ("t",)
    )
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(net({k: v.shape for k, v in inputs.items()}, body))
    with pytest.raises(caffe2keras.UnsupportedLayersError, match="rpn.proposal_target_layer.ProposalTargetLayer"):
        caffe2keras.convert(prototxt)


# ---------------------------------------------------------------- R-FCN's PSROIPooling


@pytest.mark.parametrize("data_format", FORMATS)
def test_psroi_pooling_matches_opencv(data_format, tmp_path):
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2, 18, 6, 8)).astype(np.float32)
    rois = np.array(
        [[0, 0, 0, 15, 11], [1, 2.4, 3.5, 9.6, 7.5], [0, 5, 5, 5, 5], [1, -3, 1, 20, 30]], np.float32
    ).reshape(4, 5, 1, 1)  # R-FCN's published (R, 5, 1, 1) rois input
    inputs = {"features": features, "rois": rois}
    params = "psroi_pooling_param { spatial_scale: 0.5 output_dim: 2 group_size: 3 }"
    text = net({k: v.shape for k, v in inputs.items()}, layer("PSROIPooling", params, ("features", "rois"), ("out",)))
    [expected] = opencv_forward(tmp_path, text, inputs, ["l"])
    [actual] = convert_and_run(tmp_path, text, list(inputs.values()), data_format)
    assert_matches(actual, expected, "psroipooled")


@pytest.mark.parametrize(
    "params, field",
    [
        ("output_dim: 2 group_size: 3", "spatial_scale"),
        ("spatial_scale: 0.5 output_dim: 3 group_size: 3", "output_dim"),
    ],
)
def test_psroi_pooling_refuses_what_the_fork_refuses(params, field, tmp_path):
    text = net(
        {"features": (1, 18, 6, 8), "rois": (3, 5)},
        layer("PSROIPooling", f"psroi_pooling_param {{ {params} }}", ("features", "rois"), ("out",)),
    )
    prototxt = tmp_path / "net.prototxt"
    prototxt.write_text(text)
    with pytest.raises(caffe2keras.Caffe2KerasError, match=f"psroi_pooling_param.{field}"):
        caffe2keras.convert(prototxt)


# ---------------------------------------------------------------- OpenCV's DetectionOutput on pixel boxes


def pixel_boxes(rng, count, size):
    """``count`` proposals ``(xmin, ymin, xmax, ymax)`` in a ``size`` x ``size`` image, some on whole pixels."""
    corners = np.sort(rng.uniform(0, size, (count, 2, 2)), axis=1)
    corners[: count // 2] = np.round(corners[: count // 2])  # whole pixels: some boxes touch
    return corners.transpose(0, 2, 1).reshape(count, 4)[:, [0, 2, 1, 3]].astype(np.float32)


@pytest.mark.parametrize("data_format", FORMATS)
def test_detection_output_on_pixel_boxes_matches_opencv(data_format, tmp_path):
    """OpenCV's Faster R-CNN and R-FCN prototxts end in a DetectionOutput on the proposals, in pixels
    (normalized_bbox: false): widths count the last pixel in decoding, box sizes and overlaps."""
    rng = np.random.default_rng(3)
    proposals, classes = 40, 5
    logits = rng.standard_normal((proposals, classes)) * 2
    inputs = {
        "loc": (0.2 * rng.standard_normal((1, proposals * classes * 4))).astype(np.float32),
        "loc_shared": (0.2 * rng.standard_normal((1, proposals * 4))).astype(np.float32),
        "conf": (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).reshape(1, -1).astype(np.float32),
        "priors": pixel_boxes(rng, proposals, 60).reshape(1, 1, -1),
    }
    common = "variance_encoded_in_target: true normalized_bbox: false background_label_id: 0"
    text = net(
        {name: array.shape for name, array in inputs.items()},
        layer(
            "DetectionOutput",
            f"detection_output_param {{ num_classes: {classes} share_location: false code_type: CENTER_SIZE "
            f"keep_top_k: 100 nms_param {{ nms_threshold: 0.3 }} {common} }}",
            ("loc", "conf", "priors"),
            ("faster_rcnn",),
            name="faster_rcnn",
        )
        + layer(
            "DetectionOutput",
            f"detection_output_param {{ num_classes: {classes} share_location: true code_type: CORNER "
            f"keep_top_k: 30 confidence_threshold: 0.1 nms_param {{ nms_threshold: 0.2 }} {common} }}",
            ("loc_shared", "conf", "priors"),
            ("corner",),
            name="corner",
        ),
    )
    names = ["faster_rcnn", "corner"]
    references = opencv_forward(tmp_path, text, inputs, names)
    outputs = convert_and_run(tmp_path, text, list(inputs.values()), data_format, outputs=names)
    for name, output, reference in zip(names, outputs, references):
        expected = reference_detections(reference, "opencv")
        actual = caffe_detections(output)
        assert actual.shape == expected.shape and len(expected), f"{name}: {len(actual)} rows, OpenCV {len(expected)}"
        assert_matches(align_detections(actual, expected, compare(expected, expected).allowed), expected, name)


# OpenCV's Faster R-CNN post-processing (opencv_extra's faster_rcnn_vgg16.prototxt): every ROI's
# scores and boxes gathered into one row across the batch axis, then a DetectionOutput on pixel boxes.
OPENCV_POSTPROCESSING = """
layer { name: "cls_prob_reshape" type: "Reshape" bottom: "cls_prob" top: "cls_prob_reshape"
        reshape_param { shape { dim: 1 dim: -1 } } }
layer { name: "bbox_pred_reshape" type: "Reshape" bottom: "bbox_pred" top: "bbox_pred_reshape"
        reshape_param { shape { dim: 1 dim: -1 } } }
layer { name: "proposal_crop" type: "Slice" bottom: "rois" top: "proposal_batch_ids" top: "proposal_bboxes"
        slice_param { axis: 1 slice_point: 1 } }
layer { name: "proposal_reshape" type: "Reshape" bottom: "proposal_bboxes" top: "proposal_reshape"
        reshape_param { shape { dim: 1 dim: 1 dim: -1 } } }
layer { name: "detection_out" type: "DetectionOutput" bottom: "bbox_pred_reshape" bottom: "cls_prob_reshape"
        bottom: "proposal_reshape" top: "detection_out"
        detection_output_param { num_classes: 21 share_location: false background_label_id: 0
                                 nms_param { nms_threshold: 0.3 } code_type: CENTER_SIZE keep_top_k: 100
                                 variance_encoded_in_target: true normalized_bbox: false } }
"""


# OpenCV's R-FCN (opencv_extra's rfcn_pascal_voc_resnet50.prototxt, the zoo's rfcn_resnet50): class-
# agnostic boxes, background's 4 deltas sliced off, one location for every class.
OPENCV_RFCN_POSTPROCESSING = """
layer { name: "bbox_pred_slice" type: "Slice" bottom: "bbox_pred" top: "bbox_pred_bg" top: "bbox_pred_fg"
        slice_param { axis: 1 slice_point: 4 } }
""" + OPENCV_POSTPROCESSING.replace(
    'bottom: "bbox_pred" top: "bbox_pred_reshape"', 'bottom: "bbox_pred_fg" top: "bbox_pred_reshape"'
).replace("share_location: false", "share_location: true")


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(
    "postprocessing, deltas_per_roi",
    [(OPENCV_POSTPROCESSING, 84), (OPENCV_RFCN_POSTPROCESSING, 8)],
    ids=["faster_rcnn", "rfcn"],
)
def test_opencv_faster_rcnn_postprocessing_matches_opencv(postprocessing, deltas_per_roi, data_format, tmp_path):
    rng = np.random.default_rng(4)
    rois = 50
    logits = rng.standard_normal((rois, 21)) * 2
    inputs = {
        "cls_prob": (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32),
        "bbox_pred": (0.2 * rng.standard_normal((rois, deltas_per_roi))).astype(np.float32),
        "rois": np.concatenate([np.zeros((rois, 1), np.float32), pixel_boxes(rng, rois, 200)], axis=1),
    }
    text = net({name: array.shape for name, array in inputs.items()}, postprocessing)
    (reference,) = opencv_forward(tmp_path, text, inputs, ["detection_out"])
    (output,) = convert_and_run(tmp_path, text, list(inputs.values()), data_format, outputs=["detection_out"])
    expected = reference_detections(reference, "opencv")
    actual = caffe_detections(output)
    assert actual.shape == expected.shape and len(expected), f"{len(actual)} rows, OpenCV {len(expected)}"
    assert_matches(align_detections(actual, expected, compare(expected, expected).allowed), expected, "detection_out")


# ---------------------------------------------------------------- the published nets


def _weights(tmp_path, prototxt, input_shapes, seed, scaled=None):
    layers = synthetic_weights(prototxt, seed=seed, input_shapes=input_shapes)
    for name, _type, blobs in layers:
        if name in (scaled or {}):
            blobs[:] = [b * np.float32(scaled[name]) for b in blobs]
    path = tmp_path / "weights.caffemodel"
    write_caffemodel(path, layers)
    return path


def opencv_dialect(text: str) -> str:
    """The published net with its Python proposal layer as OpenCV runs Faster R-CNN: its Proposal type."""
    start = text.index("python_param {")
    end = text.index("}", start) + 1
    return (text[:start] + OPENCV_PROPOSAL + text[end:]).replace("type: 'Python'", "type: 'Proposal'")


# Synthetic weights scaled so the proposals have one right answer. Small RPN deltas (standard
# deviation about 0.06) keep every proposal above py-faster-rcnn's 16-pixel minimum, which OpenCV
# does not apply: the two semantics then agree (checked in the test with py-faster-rcnn's own
# rule). ZF's synthetic RPN outputs come out ten times VGG16's: its deltas need a tenth of the
# scale, and its scores a tenth too, or the softmax saturates to ties at 1.0 whose order in the
# top 300 neither implementation defines.
RPN_SCALES = {
    "faster_rcnn_vgg16": {"rpn_bbox_pred": 0.05},
    "faster_rcnn_zf": {"rpn_bbox_pred": 0.005, "rpn_cls_score": 0.1},
}


# VGG16's and ZF's layers are the same types, wired alike: ZF, the smaller, checks channels_first.
@pytest.mark.slow  # VGG16 or ZF with 300 ROIs through fc6/fc7
@pytest.mark.parametrize(
    "name, data_format", [("faster_rcnn_vgg16", "channels_last"), *(("faster_rcnn_zf", f) for f in FORMATS)]
)
def test_faster_rcnn_as_published_matches_opencv(name, data_format, tmp_path):
    prototxt = PUBLISHED / name / "test.prototxt"
    shapes = {"data": (1, 3, 128, 160), "im_info": (1, 3)}
    weights = _weights(tmp_path, prototxt, shapes, seed=1, scaled=RPN_SCALES[name])
    rng = np.random.default_rng(0)
    inputs = {"data": rng.uniform(-100, 100, shapes["data"]).astype(np.float32)}
    inputs["im_info"] = np.asarray([[128, 160, 1.0]], np.float32)
    dialect = tmp_path / "opencv.prototxt"
    dialect.write_text(opencv_dialect(prototxt.read_text()).replace("dim: 224\n  dim: 224", "dim: 128\n  dim: 160"))
    layers = ["rpn_cls_prob_reshape", "rpn_bbox_pred", "proposal", "cls_prob", "bbox_pred"]
    scores, deltas, *references = oracle.opencv_forward(dialect, weights, inputs, [(name, 0) for name in layers])
    filtered, _ = proposals_reference(scores, deltas, inputs["im_info"], PUBLISHED_ANCHORS, 16, 6000, 300, 0.7, 16)
    unfiltered, _ = proposals_reference(scores, deltas, inputs["im_info"], PUBLISHED_ANCHORS, 16, 6000, 300, 0.7, 0)
    np.testing.assert_array_equal(filtered, unfiltered)
    assert_matches(filtered, references[0], "py-faster-rcnn's proposals against OpenCV's")
    outputs = ["rois", "cls_prob", "bbox_pred"]
    model = caffe2keras.convert(prototxt, weights, input_shapes=shapes, data_format=data_format, outputs=outputs)
    actual = run(save_and_reload(model, tmp_path), list(inputs.values()), data_format)
    for blob, y, reference in zip(outputs, actual, references):
        assert_matches(y, reference, f"{name} blob {blob!r}")


@pytest.mark.slow  # ResNet-50 at 224 x 224
@pytest.mark.parametrize("data_format", FORMATS)
def test_rfcn_resnet50_as_published_matches_opencv(data_format, tmp_path):
    prototxt = PUBLISHED / "rfcn_resnet50" / "test.prototxt"
    shapes = {"data": (1, 3, 224, 224), "rois": (6, 5, 1, 1)}
    weights = _weights(tmp_path, prototxt, shapes, seed=2)
    rng = np.random.default_rng(1)
    corners = np.sort(rng.uniform(-10, 230, (6, 2, 2)), axis=1).reshape(6, 4)
    inputs = {
        "data": rng.uniform(-100, 100, shapes["data"]).astype(np.float32),
        "rois": np.concatenate([np.zeros((6, 1)), corners[:, [0, 2, 1, 3]]], axis=1).astype(np.float32)[
            ..., None, None
        ],
    }
    outputs = ["cls_prob", "bbox_pred"]
    model = caffe2keras.convert(prototxt, weights, input_shapes=shapes, data_format=data_format, outputs=outputs)
    actual = run(save_and_reload(model, tmp_path), list(inputs.values()), data_format)
    references = oracle.opencv_forward(
        prototxt, weights, inputs, [(name, 0) for name in ("cls_prob", "ave_bbox_pred_rois")]
    )
    for blob, y, reference in zip(outputs, actual, references):
        assert_matches(y, reference.reshape(y.shape), f"R-FCN blob {blob!r}")
