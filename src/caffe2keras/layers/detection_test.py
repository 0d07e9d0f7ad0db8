"""SSD's layers against references written here from the fork's C++ (weiliu89/caffe, branch ssd):
Normalize, PriorBox (with OpenCV's analytic PriorBox_squares case) and DetectionOutput
(decode, ApplyNMSFast, keep_top_k, the empty-blob rows), in both data formats."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import caffe2keras  # noqa: F401  (backend default)
from caffe2keras.layers import DetectionOutput, Normalize, PriorBox

FORMATS = ["channels_last", "channels_first"]
F32 = np.float32
FLT_MAX = float(np.finfo(np.float32).max)


def to_layout(array: np.ndarray, data_format: str) -> np.ndarray:
    """A Caffe-layout array in ``data_format`` (axis 1 last for rank >= 3)."""
    if data_format == "channels_first" or array.ndim < 3:
        return array
    return np.moveaxis(array, 1, -1)


def from_layout(array: np.ndarray, data_format: str) -> np.ndarray:
    if data_format == "channels_first" or array.ndim < 3:
        return array
    return np.moveaxis(array, -1, 1)


def roundtrip(layer):
    """The layer rebuilt from its config, as loading a saved model does."""
    return type(layer).from_config(layer.get_config())


# ------------------------------------------------------------------ Normalize


def caffe_normalize(x, scale, across_spatial, eps):
    """normalize_layer.cpp, per image: norm = sqrt(sum(x^2) + eps) over C*H*W or over C."""
    x64 = x.astype(np.float64)
    flat = x64.reshape(x.shape[0], x.shape[1], -1)
    if across_spatial:
        norm = np.sqrt((flat**2).sum(axis=(1, 2), keepdims=True) + eps)
    else:
        norm = np.sqrt((flat**2).sum(axis=1, keepdims=True) + eps)
    y = flat / norm * np.reshape(scale, (1, -1, 1))
    return y.reshape(x.shape)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("shape", [(2, 5), (2, 3, 7), (2, 4, 3, 5)])
@pytest.mark.parametrize("across_spatial", [True, False])
@pytest.mark.parametrize("channel_shared", [True, False])
def test_normalize_matches_caffe(shape, across_spatial, channel_shared, data_format):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(F32)
    x[0] = 0  # an all-zero image: eps keeps it finite
    scale = rng.uniform(5, 20, () if channel_shared else (shape[1],)).astype(F32)
    layer = Normalize(across_spatial=across_spatial, channel_shared=channel_shared, eps=1e-3, data_format=data_format)
    layer.build(to_layout(x, data_format).shape)
    layer.scale.assign(scale)
    y = from_layout(np.asarray(layer(to_layout(x, data_format))), data_format)
    np.testing.assert_allclose(y, caffe_normalize(x, scale, across_spatial, F32(1e-3)), rtol=1e-5, atol=1e-6)


def test_normalize_config_roundtrip():
    layer = Normalize(across_spatial=False, channel_shared=False, eps=1e-5, data_format="channels_first")
    assert roundtrip(layer).get_config() == layer.get_config()


# ------------------------------------------------------------------ PriorBox


def run_prior_box(layer, feature_shape, image_shape, data_format):
    """PriorBox on zero inputs of these Caffe shapes; the Caffe-layout output."""
    inputs = [np.zeros(to_layout(np.zeros(s), data_format).shape, F32) for s in (feature_shape, image_shape)]
    return from_layout(np.asarray(roundtrip(layer)(inputs)), data_format)


def caffe_prior_box(
    feature_hw,
    image_hw,
    min_sizes,
    max_sizes=(),
    ratios=(),
    flip=True,
    clip=False,
    variances=(0.1,),
    step=None,
    offset=0.5,
):
    """prior_box_layer.cpp's loops, one value at a time."""
    layer_h, layer_w = feature_hw
    img_h, img_w = image_hw
    ars = [1.0]
    for r in ratios:
        if all(abs(F32(r) - a) >= 1e-6 for a in ars):
            ars.append(F32(r))
            if flip:
                ars.append(F32(1.0 / F32(r)))
    step_h, step_w = step if step else (F32(img_h) / F32(layer_h), F32(img_w) / F32(layer_w))
    out = []

    def box(cx, cy, w, h):
        out.extend(
            F32(v)
            for v in ((cx - w / 2.0) / img_w, (cy - h / 2.0) / img_h, (cx + w / 2.0) / img_w, (cy + h / 2.0) / img_h)
        )

    for h in range(layer_h):
        for w in range(layer_w):
            cx = float(F32(F32(w + F32(offset)) * F32(step_w)))
            cy = float(F32(F32(h + F32(offset)) * F32(step_h)))
            for s, min_size in enumerate(min_sizes):
                min_size = int(min_size)
                box(cx, cy, float(min_size), float(min_size))
                if max_sizes:
                    side = float(F32(math.sqrt(min_size * int(max_sizes[s]))))
                    box(cx, cy, side, side)
                for ar in ars:
                    if abs(ar - 1.0) < 1e-6:
                        continue
                    box(cx, cy, float(F32(min_size * math.sqrt(ar))), float(F32(min_size / math.sqrt(ar))))
    corners = np.asarray(out, F32)
    if clip:
        corners = np.clip(corners, 0, 1)
    variance = np.tile(np.resize(np.asarray(variances, F32), 4), len(corners) // 4)
    return np.stack([corners, variance])[None]


@pytest.mark.parametrize("data_format", FORMATS)
def test_prior_box_squares_opencv_case(data_format):
    """OpenCV's PriorBox_squares: a 1x2 map and image, min_size 2, clip; ratio 1 is ignored."""
    layer = PriorBox(
        [2], aspect_ratios=[1.0], flip=True, clip=True, variances=[0.1, 0.1, 0.2, 0.2], data_format=data_format
    )
    out = run_prior_box(layer, (1, 1, 1, 2), (1, 1, 1, 2), data_format)
    expected = [[0.0, 0.0, 0.75, 1.0, 0.25, 0.0, 1.0, 1.0], [0.1, 0.1, 0.2, 0.2, 0.1, 0.1, 0.2, 0.2]]
    np.testing.assert_allclose(out, np.asarray([expected], F32), atol=1e-7)


PRIOR_CASES = {
    "ssd_head": dict(
        feature=(3, 3),
        image=(300, 300),
        min_sizes=[105.0],
        max_sizes=[150.0],
        ratios=[2.0, 3.0],
        variances=[0.1, 0.1, 0.2, 0.2],
    ),
    "two_min_sizes": dict(
        feature=(3, 4),
        image=(10, 10),
        min_sizes=[2.0, 3.0],
        max_sizes=[6.0, 7.0],
        ratios=[2.0],
        variances=[0.1, 0.1, 0.2, 0.2],
    ),
    "truncated_sizes_no_flip": dict(
        feature=(2, 5),
        image=(37, 51),
        min_sizes=[7.9],
        max_sizes=[12.6],
        ratios=[3.0, 1.0, 3.0000001, 0.5],
        flip=False,
        variances=[0.2],
    ),
    "step_offset_clip": dict(
        feature=(4, 3), image=(64, 48), min_sizes=[20.0], ratios=[2.0], clip=True, step=(15.0, 17.5), offset=0.25
    ),
}


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("case", sorted(PRIOR_CASES))
def test_prior_box_matches_caffe_loops(case, data_format):
    c = dict(PRIOR_CASES[case])
    feature, image = c.pop("feature"), c.pop("image")
    layer = PriorBox(
        c["min_sizes"],
        c.get("max_sizes", ()),
        c.get("ratios", ()),
        flip=c.get("flip", True),
        clip=c.get("clip", False),
        variances=c.get("variances", [0.1]),
        step=c.get("step"),
        offset=c.get("offset", 0.5),
        data_format=data_format,
    )
    out = run_prior_box(layer, (1, 8, *feature), (1, 3, *image), data_format)
    expected = caffe_prior_box(
        feature,
        image,
        c["min_sizes"],
        c.get("max_sizes", ()),
        c.get("ratios", ()),
        c.get("flip", True),
        c.get("clip", False),
        c.get("variances", [0.1]),
        c.get("step"),
        c.get("offset", 0.5),
    )
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_prior_box_given_image_size_ignores_the_image_input():
    layer = PriorBox([4], image_size=(40, 20), data_format="channels_first")
    out = run_prior_box(layer, (1, 1, 2, 2), (1, 3, 7, 9), "channels_first")
    np.testing.assert_allclose(out, caffe_prior_box((2, 2), (40, 20), [4]), atol=1e-7)


def test_prior_box_repeats_for_every_image():
    layer = PriorBox([2], data_format="channels_first")
    out = np.asarray(layer([np.zeros((3, 1, 2, 2), F32), np.zeros((3, 1, 4, 4), F32)]))
    assert out.shape == (3, 2, 16)
    np.testing.assert_array_equal(out[0], out[2])


# ------------------------------------------------------------------ DetectionOutput


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
    priors = np.repeat(to_layout(priors, data_format), len(loc), axis=0)
    inputs = [keras.Input(a.shape[1:]) for a in (loc, conf, priors)]
    model = keras.Model(inputs, roundtrip(layer)(inputs))
    out = from_layout(np.asarray(model.predict_on_batch([loc, conf, priors])), data_format)
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
    args = [loc, conf, np.repeat(to_layout(priors, "channels_last"), 3, axis=0)]
    np.testing.assert_array_equal(np.asarray(reloaded(args)), np.asarray(model(args)))


def test_detection_output_rejects_mismatched_predictions():
    priors = grid_priors(cells=2)
    layer = DetectionOutput(3)
    with pytest.raises(ValueError, match="conf must hold 3 values for each of the 12 priors"):
        layer([np.zeros((1, 48), F32), np.zeros((1, 30), F32), to_layout(priors, "channels_last")])
