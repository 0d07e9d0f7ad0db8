"""SSD's layers (weiliu89/caffe): Normalize, PriorBox, DetectionOutput (Permute is in reshaping).

DetectionOutput is written without ``Loop``: ``TopK`` takes each class's ``top_k`` best priors,
``NonMaxSuppression`` runs once over (image, class) pairs as its batch, and the detections an
image keeps (``keep_top_k``) are those that fewer than ``keep_top_k`` of its others outrank.
"""

from __future__ import annotations

import numpy as np

from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.node import Node, require
from caffe2keras.onnx.emit import Emission, emits
from caffe2keras.ssd import detection_output_args, prior_box_args
from caffe2keras.ssd_boxes import foreground_classes, nms_candidates, prior_box_sizes, prior_boxes

FLOAT = 1  # onnx.TensorProto.FLOAT


@emits("Normalize")
def normalize(node: Node, out: Emission) -> None:
    """``x / sqrt(sum x^2 + eps) * scale``, the sum over channels (or the whole sample)."""
    p = node.param.norm_param
    shape = node.in_shapes[0]
    scale = node.blob(0, () if p.channel_shared else (shape[1],), "norm_param.channel_shared", p.channel_shared)
    x = out.bottoms[0]
    axes = list(range(1, len(shape))) if p.across_spatial else [1]
    sums = out.op("ReduceSum", out.op("Mul", x, x), out.constant("axes", axes), keepdims=1)
    norm = out.op("Sqrt", out.op("Add", sums, out.constant("eps", np.float32(p.eps))))
    if p.across_spatial:  # the fork multiplies by the reciprocal of one norm per sample
        normalized = out.op("Mul", x, out.op("Reciprocal", norm))
    else:
        normalized = out.op("Div", x, norm)
    broadcast = scale if p.channel_shared else scale.reshape((shape[1], *(1,) * (len(shape) - 2)))
    out.op("Mul", normalized, out.constant("scale", broadcast), top=0)


@emits("PriorBox")
def prior_box(node: Node, out: Emission) -> None:
    """A constant: the boxes depend on the bottoms' sizes only."""
    shapes = node.in_shapes
    args = prior_box_args(node.op)
    sizes = prior_box_sizes(args["min_sizes"], args["max_sizes"], args["aspect_ratios"], args["flip"])
    image = args["image_size"] or tuple(shapes[1][2:])
    boxes = prior_boxes(
        tuple(shapes[0][2:]), image, args["step"], sizes, args["offset"], args["clip"], args["variances"]
    )
    out.op("Identity", out.constant("boxes", boxes[None]), top=0)


def _decode(out: Emission, loc: list[str], prior: list[str], variance: list[str] | None, code: str) -> list[str]:
    """Caffe's DecodeBBox per coordinate, in its float32 operation order."""
    scaled = loc if variance is None else [out.op("Mul", v, x) for v, x in zip(variance, loc)]
    xmin, ymin, xmax, ymax = prior
    if code == "corner":
        return [out.op("Add", p, s) for p, s in zip(prior, scaled)]
    width, height = out.op("Sub", xmax, xmin), out.op("Sub", ymax, ymin)
    if code == "corner_size":
        sides = [width, height, width, height]
        return [out.op("Add", p, out.op("Mul", s, side)) for p, s, side in zip(prior, scaled, sides)]
    half = out.constant("half", np.float32(0.5))
    centres = [
        out.op("Add", out.op("Mul", s, side), out.op("Mul", out.op("Add", low, high), half))
        for s, side, low, high in ((scaled[0], width, xmin, xmax), (scaled[1], height, ymin, ymax))
    ]
    halves = [
        out.op("Mul", out.op("Mul", out.op("Exp", s), side), half)
        for s, side in ((scaled[2], width), (scaled[3], height))
    ]
    return [
        out.op("Sub", centres[0], halves[0]),
        out.op("Sub", centres[1], halves[1]),
        out.op("Add", centres[0], halves[0]),
        out.op("Add", centres[1], halves[1]),
    ]


def _column(out: Emission, matrix: str, index: int) -> str:
    return out.op("Gather", matrix, out.constant(f"column{index}", np.int64(index)), axis=1)


def _columns(out: Emission, boxes: str, what: str) -> list[str]:
    """The 4 coordinates of (..., 4) boxes, each without the last axis (OpenCV 5's classic engine
    cannot ``Split`` a constant)."""
    return [out.op("Gather", boxes, out.constant(f"{what}{i}", np.int64(i)), axis=-1) for i in range(4)]


@emits("DetectionOutput")
def detection_output(node: Node, out: Emission) -> None:
    """Rows ``[image_id, label, score, xmin, ymin, xmax, ymax]`` in Caffe's order (image, label
    ascending, score descending) and shape ``(1, 1, detections, 7)``; no detection gives no rows
    (Caffe gives one row of -1)."""
    a = detection_output_args(node.op)
    require(
        a["share_location"],
        node.op,
        "only shared locations are written to ONNX",
        "detection_output_param.share_location",
        False,
        kind=UnsupportedParameterError,
    )
    require(
        a["normalized_bbox"],
        node.op,
        "only boxes normalized to [0, 1] are written to ONNX (its NonMaxSuppression does not count a pixel box's "
        "last row and column)",
        "detection_output_param.normalized_bbox",
        False,
        kind=UnsupportedParameterError,
    )
    require(
        a["eta"] == 1,
        node.op,
        "adaptive NMS (eta < 1) is not written to ONNX",
        "detection_output_param.nms_param.eta",
        a["eta"],
        kind=UnsupportedParameterError,
    )
    prior_shape = node.in_shapes[2]
    priors, classes = prior_shape[2] // 4, a["num_classes"]
    foreground = foreground_classes(classes, a["background_label_id"])
    top_k = nms_candidates(a["top_k"], priors)
    # As many rows as there are detections: Keras' layer pads to the plan's fixed count.
    out.top_shapes[0] = (1, 1, None, 7)
    loc, conf, prior = out.bottoms[:3]

    # Boxes (N, priors) per coordinate; the priors' (priors,) rows broadcast against them.
    coords = _columns(out, out.op("Reshape", loc, out.constant("loc_shape", [0, priors, 4])), "loc")
    prior_rows = out.op("Reshape", prior, out.constant("prior_shape", [prior_shape[1], priors, 4]))
    boxes = _columns(out, out.op("Gather", prior_rows, out.constant("row0", np.int64(0)), axis=0), "prior")
    variance = None
    if not a["variance_encoded_in_target"]:
        variance = _columns(out, out.op("Gather", prior_rows, out.constant("row1", np.int64(1)), axis=0), "variance")
    decoded = _decode(out, coords, boxes, variance, a["code_type"])

    # Each foreground class's top_k scores (N, classes, top_k) and the boxes of those priors.
    by_class = np.arange(priors)[None, :] * classes + np.asarray(foreground)[:, None]
    flat_conf = out.op("Reshape", conf, out.constant("conf_shape", [0, priors * classes]))
    scores = out.op("Gather", flat_conf, out.constant("by_class", by_class), axis=1)
    best, order = out.add("TopK", [scores, out.constant("top_k", [top_k])], 2, axis=-1, largest=1, sorted=1)
    chosen = out.op("Reshape", order, out.constant("chosen_shape", [0, len(foreground) * top_k]))
    candidates = [
        out.op("Unsqueeze", out.op("GatherElements", c, chosen, axis=1), out.constant("last", [2])) for c in decoded
    ]
    candidate_boxes = out.op(
        "Reshape", out.op("Concat", *candidates, axis=2), out.constant("nms_boxes", [-1, top_k, 4])
    )
    candidate_scores = out.op("Reshape", best, out.constant("nms_scores", [-1, 1, top_k]))

    # NMS with (image, class) pairs as its batch: selected rows [pair, 0, rank].
    nms_inputs = [
        candidate_boxes,
        candidate_scores,
        out.constant("max_boxes", [top_k]),
        out.constant("iou", [np.float32(a["nms_threshold"])]),
    ]
    if a["confidence_threshold"] is not None:
        nms_inputs.append(out.constant("score_threshold", [np.float32(a["confidence_threshold"])]))
    selected = out.op("NonMaxSuppression", *nms_inputs)
    pair, rank = _column(out, selected, 0), _column(out, selected, 2)
    flat = out.op("Add", out.op("Mul", pair, out.constant("top_k_scalar", np.int64(top_k))), rank)
    image = out.op("Div", pair, out.constant("classes", np.int64(len(foreground))))
    label = out.op(
        "Gather",
        out.constant("labels", np.asarray(foreground, np.float32)),
        out.op("Mod", pair, out.constant("classes_mod", np.int64(len(foreground)))),
    )
    score = out.op("Gather", out.op("Reshape", best, out.constant("flat", [-1])), flat)
    flat_boxes = out.op("Reshape", candidate_boxes, out.constant("box_rows", [-1, 4]))
    box = out.op("Gather", flat_boxes, flat, axis=0)

    # Caffe's order is (image, label, score descending): the order of ``flat``. keep_top_k keeps,
    # per image, the detections fewer than keep_top_k others outrank (equal scores by that order).
    key = out.op("Cast", flat, to=FLOAT)
    if a["keep_top_k"] >= 0:

        def pairwise(x, what):
            return (
                out.op("Unsqueeze", x, out.constant(f"{what}_rows", [1])),
                out.op("Unsqueeze", x, out.constant(f"{what}_columns", [0])),
            )

        image_i, image_j = pairwise(image, "image")
        score_i, score_j = pairwise(score, "score")
        key_i, key_j = pairwise(key, "key")
        ahead = out.op(
            "Or",
            out.op("Greater", score_j, score_i),
            out.op("And", out.op("Equal", score_j, score_i), out.op("Less", key_j, key_i)),
        )
        outranked = out.op("And", out.op("Equal", image_j, image_i), ahead)
        count = out.op("ReduceSum", out.op("Cast", outranked, to=FLOAT), out.constant("over_j", [1]), keepdims=0)
        kept = out.op("Less", count, out.constant("keep_top_k", np.float32(a["keep_top_k"])))
        key = out.op("Where", kept, key, out.constant("dropped", np.float32(np.finfo(np.float32).max)))
        total = out.op("ReduceSum", out.op("Cast", kept, to=7), out.constant("all", [0]), keepdims=1)
    else:
        total = out.op("Shape", key)
    _, rows = out.add("TopK", [key, total], 2, axis=0, largest=0, sorted=1)
    columns = [out.op("Cast", image, to=FLOAT), label, score]
    columns = [out.op("Unsqueeze", c, out.constant(f"as_column{i}", [1])) for i, c in enumerate(columns)]
    table = out.op("Gather", out.op("Concat", *columns, box, axis=1), rows, axis=0)
    out.op("Reshape", table, out.constant("rows", [1, 1, -1, 7]), top=0)
