import numpy as np
import pytest

from caffe2keras.layer_arithmetic import faster_rcnn_anchors
from caffe2keras.layers.proposal import Proposal

# py-faster-rcnn's generate_anchors() for base 16, ratios (0.5, 1, 2), scales (8, 16, 32).
PUBLISHED_ANCHORS = [
    [-84, -40, 99, 55],
    [-176, -88, 191, 103],
    [-360, -184, 375, 199],
    [-56, -56, 71, 71],
    [-120, -120, 135, 135],
    [-248, -248, 263, 263],
    [-36, -80, 51, 95],
    [-80, -168, 95, 183],
    [-168, -344, 183, 359],
]


def test_anchors_are_py_faster_rcnns():
    np.testing.assert_array_equal(faster_rcnn_anchors(16, (0.5, 1, 2), (8, 16, 32)), PUBLISHED_ANCHORS)


def proposals_reference(scores, deltas, im_info, anchors, stride, pre, post, threshold, min_size):
    """rbgirshick/py-faster-rcnn lib/rpn/proposal_layer.py ProposalLayer.forward (with
    bbox_transform_inv, clip_boxes, _filter_boxes and the greedy NMS), padded to ``post`` rows."""
    count = len(anchors)
    height, width = scores.shape[-2:]
    shift_x, shift_y = np.meshgrid(np.arange(width) * stride, np.arange(height) * stride)
    shifts = np.stack([shift_x.ravel(), shift_y.ravel(), shift_x.ravel(), shift_y.ravel()], axis=1)
    boxes = (np.asarray(anchors, np.float32)[None] + shifts[:, None]).reshape(-1, 4).astype(np.float32)
    d = deltas.transpose(0, 2, 3, 1).reshape(-1, 4)
    s = scores[:, count:].transpose(0, 2, 3, 1).reshape(-1)
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    cx, cy = boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h
    pcx, pcy = d[:, 0] * w + cx, d[:, 1] * h + cy
    pw, ph = np.exp(d[:, 2]) * w, np.exp(d[:, 3]) * h
    p = np.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], axis=1)
    info = im_info[0]
    p[:, 0::2] = np.maximum(np.minimum(p[:, 0::2], info[1] - 1), 0)
    p[:, 1::2] = np.maximum(np.minimum(p[:, 1::2], info[0] - 1), 0)
    keep = np.where((p[:, 2] - p[:, 0] + 1 >= min_size * info[2]) & (p[:, 3] - p[:, 1] + 1 >= min_size * info[2]))[0]
    p, s = p[keep], s[keep]
    order = np.argsort(-s, kind="stable")[:pre]
    p, s = p[order], s[order]
    areas = (p[:, 2] - p[:, 0] + 1) * (p[:, 3] - p[:, 1] + 1)
    suppressed = np.zeros(len(p), bool)
    kept = []
    for i in range(len(p)):
        if suppressed[i]:
            continue
        kept.append(i)
        xx1, yy1 = np.maximum(p[i, 0], p[:, 0]), np.maximum(p[i, 1], p[:, 1])
        xx2, yy2 = np.minimum(p[i, 2], p[:, 2]), np.minimum(p[i, 3], p[:, 3])
        inter = np.maximum(0, xx2 - xx1 + 1) * np.maximum(0, yy2 - yy1 + 1)
        overlap = inter / (areas[i] + areas - inter)
        suppressed |= (overlap > threshold) & (np.arange(len(p)) > i)
    kept = kept[:post]
    rois = np.zeros((post, 5), np.float32)
    rois[: len(kept), 1:] = p[kept]
    top_scores = np.zeros((post, 1), np.float32)
    top_scores[: len(kept), 0] = s[kept]
    return rois, top_scores


def rpn_outputs(height, width, seed, delta_scale=0.3):
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 1, (1, 18, height, width)).astype(np.float32)
    deltas = (delta_scale * rng.standard_normal((1, 36, height, width))).astype(np.float32)
    return scores, deltas


@pytest.mark.parametrize(
    "size, im_info, pre, post, min_size",
    [
        ((5, 7), (80, 112, 1.0), 6000, 300, 16),  # fewer survivors than rows: zero padding
        ((6, 9), (90, 140, 2.0), 100, 20, 16),  # min_size in unscaled pixels, both top-N cuts bind
        ((4, 4), (64, 64, 1.0), 0, 300, 0),  # pre_nms_topn 0: every box; no size filter
    ],
)
def test_matches_py_faster_rcnn(size, im_info, pre, post, min_size, reloaded_outputs):
    scores, deltas = rpn_outputs(*size, seed=sum(size), delta_scale=1.0)
    info = np.asarray([im_info], np.float32)
    layer = Proposal(PUBLISHED_ANCHORS, 16, pre, post, 0.7, min_size, score_output=True, data_format="channels_first")
    rois, top_scores = reloaded_outputs(layer, scores, deltas, info)
    expected_rois, expected_scores = proposals_reference(
        scores, deltas, info, PUBLISHED_ANCHORS, 16, pre or None, post, 0.7, min_size
    )
    np.testing.assert_allclose(rois, expected_rois, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(top_scores, expected_scores, rtol=1e-6)


@pytest.mark.slow  # two eager runs of the NMS loop; tests/test_rcnn.py checks channels_last against OpenCV
def test_channels_last_is_channels_first_transposed():
    scores, deltas = rpn_outputs(5, 6, seed=3)
    info = np.asarray([[80, 96, 1.0]], np.float32)
    first = Proposal(PUBLISHED_ANCHORS, data_format="channels_first")([scores, deltas, info])
    last = Proposal(PUBLISHED_ANCHORS)([scores.transpose(0, 2, 3, 1), deltas.transpose(0, 2, 3, 1), info])
    np.testing.assert_array_equal(np.asarray(first), np.asarray(last))


def test_config_round_trip(config_round_trip):
    config_round_trip(Proposal(PUBLISHED_ANCHORS, 16, 100, 10, 0.5, 16, True, True, "channels_first"))


@pytest.mark.parametrize("kwargs", [dict(anchors=[]), dict(anchors=[[0, 0, 1]]), dict(post_nms_topn=0)])
def test_refuses_bad_configs(kwargs):
    with pytest.raises(ValueError, match="Received"):
        Proposal(**{"anchors": PUBLISHED_ANCHORS, **kwargs})
