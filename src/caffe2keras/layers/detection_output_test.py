"""DetectionOutput against a reference written here from the SSD fork's C++ (weiliu89/caffe, branch ssd):
decode, ApplyNMSFast, keep_top_k and the empty-blob rows, in both data formats."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import caffe2keras  # noqa: F401  (backend default)
from caffe2keras.layers import DetectionOutput
from caffe2keras.layout import Layout

F32 = np.float32
FLT_MAX = float(np.finfo(np.float32).max)


def caffe_decode(prior, variance, loc, code, vit):
    """bbox_util.cpp's DecodeBBox for one box, in float32 scalars."""
    v = [F32(1)] * 4 if vit else [F32(x) for x in variance]
    p = [F32(x) for x in prior]
    t = [F32(x) for x in loc]
    if code == "corner":
        return [p[i] + v[i] * t[i] if not vit else p[i] + t[i] for i in range(4)]
    width, height = p[2] - p[0], p[3] - p[1]
    if code == "corner_size":
        scale = [width, height, width, height]
        return [p[i] + (v[i] * t[i] if not vit else t[i]) * scale[i] for i in range(4)]
    cx = F32((p[0] + p[2]) / 2.0)
    cy = F32((p[1] + p[3]) / 2.0)
    tx, ty, tw, th = (t[i] if vit else v[i] * t[i] for i in range(4))
    cx, cy = tx * width + cx, ty * height + cy
    w, h = np.exp(tw) * width, np.exp(th) * height
    return [
        F32(float(cx) - float(w) / 2),
        F32(float(cy) - float(h) / 2),
        F32(float(cx) + float(w) / 2),
        F32(float(cy) + float(h) / 2),
    ]


def caffe_size(b):
    return F32(0) if b[2] < b[0] or b[3] < b[1] else (b[2] - b[0]) * (b[3] - b[1])


def caffe_jaccard(b1, b2):
    if b2[0] > b1[2] or b2[2] < b1[0] or b2[1] > b1[3] or b2[3] < b1[1]:
        return F32(0)
    w = min(b1[2], b2[2]) - max(b1[0], b2[0])
    h = min(b1[3], b2[3]) - max(b1[1], b2[1])
    if w > 0 and h > 0:
        inter = w * h
        return inter / (caffe_size(b1) + caffe_size(b2) - inter)
    return F32(0)


def caffe_nms(boxes, scores, threshold, nms_threshold, eta, top_k):
    """ApplyNMSFast: stable sort by score, top_k, greedy keep with the adaptive threshold."""
    order = sorted((i for i in range(len(scores)) if scores[i] > threshold), key=lambda i: -scores[i])
    if top_k > -1:
        order = order[:top_k]
    kept, limit = [], F32(nms_threshold)
    for i in order:
        if all(caffe_jaccard(boxes[i], boxes[k]) <= limit for k in kept):
            kept.append(i)
            if eta < 1 and limit > 0.5:
                limit = limit * F32(eta)
    return kept


def caffe_detection_output(
    loc,
    conf,
    priors,
    num_classes,
    share_location=True,
    background=0,
    code="corner",
    vit=False,
    keep_top_k=-1,
    threshold=None,
    nms_threshold=0.3,
    top_k=-1,
    eta=1.0,
):
    """DetectionOutputLayer::Forward_cpu: Caffe's (1, 1, n, 7) blob."""
    num, num_priors = loc.shape[0], priors.shape[2] // 4
    loc_classes = 1 if share_location else num_classes
    loc = loc.reshape(num, num_priors, loc_classes, 4)
    conf = conf.reshape(num, num_priors, num_classes)
    prior_boxes = priors[0, 0].reshape(-1, 4)
    variances = priors[0, 1].reshape(-1, 4) if priors.shape[1] > 1 else np.ones_like(prior_boxes)
    threshold = -FLT_MAX if threshold is None else F32(threshold)
    rows = []
    for i in range(num):
        decoded = {
            (-1 if share_location else c): [
                caffe_decode(prior_boxes[p], variances[p], loc[i, p, c], code, vit) for p in range(num_priors)
            ]
            for c in range(loc_classes)
        }
        indices = {}
        for c in range(num_classes):
            if c != background:
                boxes = decoded[-1 if share_location else c]
                indices[c] = caffe_nms(boxes, conf[i, :, c], threshold, nms_threshold, eta, top_k)
        if keep_top_k > -1 and sum(map(len, indices.values())) > keep_top_k:
            # Caffe's std::sort leaves equal scores unordered; caffe2keras keeps label, then NMS order.
            pairs = [(conf[i, idx, c], c, idx) for c in sorted(indices) for idx in indices[c]]
            pairs = sorted(pairs, key=lambda t: -t[0])[:keep_top_k]
            indices = {}
            for _, c, idx in pairs:
                indices.setdefault(c, []).append(idx)
        for c in sorted(indices):
            boxes = decoded[-1 if share_location else c]
            rows += [[i, c, conf[i, idx, c], *boxes[idx]] for idx in indices[c]]
    if not rows:
        rows = [[i, -1, -1, -1, -1, -1, -1] for i in range(num)]
    return np.asarray(rows, F32).reshape(1, 1, -1, 7)


def run_detection_output(layer, loc, conf, priors, data_format):
    """The layer on Caffe-layout inputs: its (N, 1, rows, 7) output and Caffe's blob from it.

    It runs compiled (``predict_on_batch``): one compilation instead of one per eager op.
    """
    priors = np.repeat(Layout(data_format).to_keras(priors), len(loc), axis=0)
    inputs = [keras.Input(a.shape[1:]) for a in (loc, conf, priors)]
    model = keras.Model(inputs, type(layer).from_config(layer.get_config())(inputs))
    out = Layout(data_format).to_caffe(np.asarray(model.predict_on_batch([loc, conf, priors])))
    rows = out.reshape(-1, 7)
    return out, rows[rows[:, 0] >= 0].reshape(1, 1, -1, 7)


def grid_priors(cells=4, variances=(0.1, 0.1, 0.2, 0.2)):
    """Overlapping priors on a grid (so NMS has work): 3 boxes per cell."""
    boxes = []
    for y in range(cells):
        for x in range(cells):
            cx, cy = (x + 0.5) / cells, (y + 0.5) / cells
            for w, h in ((0.3, 0.3), (0.45, 0.25), (0.25, 0.45)):
                boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    boxes = np.asarray(boxes, F32).reshape(-1)
    return np.stack([boxes, np.tile(np.asarray(variances, F32), len(boxes) // 4)])[None]


def random_predictions(num, num_priors, num_classes, loc_classes, seed, sharpness=4.0):
    rng = np.random.default_rng(seed)
    loc = (rng.standard_normal((num, num_priors * loc_classes * 4)) * 0.5).astype(F32)
    logits = rng.standard_normal((num, num_priors, num_classes)) * sharpness
    conf = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return loc, conf.reshape(num, -1).astype(F32)


# Every case has 4 classes, so that the eager op cache serves them all.
DETECTION_CASES = {
    "ssd_defaults": dict(code="center_size", keep_top_k=20, threshold=0.2, nms_threshold=0.45, top_k=30),
    "corner": dict(code="corner", threshold=0.3, nms_threshold=0.3),
    "corner_size_unshared": dict(
        share_location=False, code="corner_size", threshold=0.25, nms_threshold=0.5, keep_top_k=15
    ),
    "variance_in_target_no_background": dict(
        background=-1, code="center_size", vit=True, threshold=0.4, nms_threshold=0.4
    ),
    "adaptive_eta": dict(code="center_size", threshold=0.1, nms_threshold=0.9, eta=0.7, top_k=25),
    "no_threshold_small_top_k": dict(background=2, code="center_size", nms_threshold=0.45, top_k=5, keep_top_k=7),
    "keep_top_k_zero": dict(code="corner", threshold=0.2, keep_top_k=0),
    "nothing_above_threshold": dict(code="center_size", threshold=0.999, keep_top_k=10),
}
NUM_CLASSES = 4


def detection_layer(case, data_format):
    c = DETECTION_CASES[case]
    return DetectionOutput(
        NUM_CLASSES,
        share_location=c.get("share_location", True),
        background_label_id=c.get("background", 0),
        code_type=c["code"],
        variance_encoded_in_target=c.get("vit", False),
        keep_top_k=c.get("keep_top_k", -1),
        confidence_threshold=c.get("threshold"),
        nms_threshold=c.get("nms_threshold", 0.3),
        top_k=c.get("top_k", -1),
        eta=c.get("eta", 1.0),
        data_format=data_format,
    )


# The data format only changes how the priors come in and the output goes out.
@pytest.mark.parametrize(
    "case, data_format",
    [(case, "channels_last") for case in sorted(DETECTION_CASES)]
    + [("ssd_defaults", "channels_first"), ("corner_size_unshared", "channels_first")],
)
def test_detection_output_matches_caffe(case, data_format):
    c = DETECTION_CASES[case]
    priors = grid_priors()
    num_priors = priors.shape[2] // 4
    loc_classes = 1 if c.get("share_location", True) else NUM_CLASSES
    loc, conf = random_predictions(3, num_priors, NUM_CLASSES, loc_classes, seed=len(case))
    layer = detection_layer(case, data_format)
    out, blob = run_detection_output(layer, loc, conf, priors, data_format)
    reference = caffe_detection_output(
        loc,
        conf,
        priors,
        NUM_CLASSES,
        c.get("share_location", True),
        c.get("background", 0),
        c["code"],
        c.get("vit", False),
        c.get("keep_top_k", -1),
        c.get("threshold"),
        c.get("nms_threshold", 0.3),
        c.get("top_k", -1),
        c.get("eta", 1.0),
    )
    assert out.shape == (3, 1, layer.max_detections(num_priors), 7)
    assert blob.shape == reference.shape
    np.testing.assert_allclose(blob, reference, rtol=1e-6, atol=1e-6)


def test_detection_output_rows_per_image_and_padding():
    """Image 1 has no detection: it gets only padding rows; the others keep theirs, in order."""
    priors = grid_priors()
    loc, conf = random_predictions(3, priors.shape[2] // 4, NUM_CLASSES, 1, seed=7)
    conf.reshape(3, -1, NUM_CLASSES)[1] = [1.0, 0.0, 0.0, 0.0]  # all background
    layer = DetectionOutput(
        NUM_CLASSES, code_type="center_size", confidence_threshold=0.3, nms_threshold=0.45, keep_top_k=6
    )
    out, blob = run_detection_output(layer, loc, conf, priors, "channels_last")
    assert np.all(out[1] == -1)
    for image in (0, 2):
        rows = out[image, 0]
        filled = rows[:, 0] >= 0
        assert 0 < filled.sum() and np.all(filled[: filled.sum()])  # detections first, padding after
        assert np.all(rows[filled, 0] == image) and np.all(rows[~filled] == -1)
    reference = caffe_detection_output(
        loc, conf, priors, NUM_CLASSES, code="center_size", keep_top_k=6, threshold=0.3, nms_threshold=0.45
    )
    np.testing.assert_allclose(blob, reference, atol=1e-6)


def test_detection_output_equal_scores():
    """Equal scores: NMS order is by prior index (Caffe's stable sort); at the keep_top_k cut
    the lower label wins (Caffe's std::sort leaves it open)."""
    priors = grid_priors()
    num_priors = priors.shape[2] // 4
    loc = np.zeros((3, num_priors * 4), F32)
    conf = np.zeros((3, num_priors, NUM_CLASSES), F32)
    conf[:, [21, 0, 45], 2] = 0.5  # three far-apart priors, same score, in class 2
    conf[:, [33, 12], 3] = 0.5
    conf[:, [40, 7], 1] = 0.25
    layer = DetectionOutput(NUM_CLASSES, code_type="corner", confidence_threshold=0.1, nms_threshold=0.99, keep_top_k=4)
    out, _ = run_detection_output(layer, loc, conf.reshape(3, -1), priors, "channels_last")
    boxes = priors[0, 0].reshape(-1, 4)
    expected = [[label, 0.5, *boxes[p]] for label, p in ((2, 0), (2, 21), (2, 45), (3, 12))]
    for image in range(3):
        np.testing.assert_allclose(out[image, 0, :, 1:], np.asarray(expected, F32), atol=1e-7)


def test_detection_output_empty_batch_rows():
    """No detection anywhere: Caffe's blob holds [i, -1, ...] per image; row 0 of each image here."""
    priors = grid_priors()
    loc, conf = random_predictions(3, priors.shape[2] // 4, NUM_CLASSES, 1, seed=1)
    layer = DetectionOutput(NUM_CLASSES, confidence_threshold=1.0, keep_top_k=5, data_format="channels_first")
    out, blob = run_detection_output(layer, loc, conf, priors, "channels_first")
    np.testing.assert_array_equal(blob[0, 0], [[i, -1, -1, -1, -1, -1, -1] for i in range(3)])
    assert np.all(out[:, :, 1:] == -1)


def test_detection_output_saves_and_reloads(tmp_path):
    priors = grid_priors()
    num_priors = priors.shape[2] // 4
    inputs = [
        keras.Input((num_priors * 4,)),
        keras.Input((num_priors * NUM_CLASSES,)),
        keras.Input((num_priors * 4, 2)),
    ]
    model = keras.Model(inputs, DetectionOutput(NUM_CLASSES, code_type="center_size", keep_top_k=4)(inputs))
    model.save(tmp_path / "det.keras")
    reloaded = keras.saving.load_model(tmp_path / "det.keras", safe_mode=True)
    loc, conf = random_predictions(3, num_priors, NUM_CLASSES, 1, seed=3)
    args = [loc, conf, np.repeat(Layout("channels_last").to_keras(priors), 3, axis=0)]
    np.testing.assert_array_equal(np.asarray(reloaded(args)), np.asarray(model(args)))


def test_detection_output_rejects_mismatched_predictions():
    priors = grid_priors(cells=2)
    layer = DetectionOutput(3)
    with pytest.raises(ValueError, match="conf must hold 3 values for each of the 12 priors"):
        layer([np.zeros((1, 48), F32), np.zeros((1, 30), F32), Layout("channels_last").to_keras(priors)])


def test_detection_output_pixel_boxes_round_trip_their_config():
    layer = DetectionOutput(3, code_type="center_size", normalized_bbox=False)
    assert DetectionOutput.from_config(layer.get_config()).normalized_bbox is False


@pytest.mark.parametrize("args", [dict(code_type="corner_size"), dict(code_type="corner", clip=True)])
def test_detection_output_pixel_boxes_refuse_what_opencv_does_not_decode(args):
    with pytest.raises(ValueError, match="pixel boxes"):
        DetectionOutput(3, normalized_bbox=False, **args)
