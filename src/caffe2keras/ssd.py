"""SSD's PriorBox and DetectionOutput parameters, checked as the fork (weiliu89/caffe) checks them:
shared by the Keras converters and the ONNX writer."""

from __future__ import annotations

from caffe2keras.caffe.schema import enum_name
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.graph import Op
from caffe2keras.node import require
from caffe2keras.ssd_boxes import MAX_SIZES

CODE_TYPES = {"CORNER": "corner", "CENTER_SIZE": "center_size", "CORNER_SIZE": "corner_size"}


def _both_or_single(op: Op, p, pair: tuple[str, str], single: str, cast) -> tuple | None:
    """SSD's "either X or X_h/X_w" parameters, as (h, w) or None when unset."""
    height, width = pair
    if p.HasField(height) or p.HasField(width):
        require(
            not p.HasField(single),
            op,
            f"give either {single} or {height}/{width}, not both",
            f"prior_box_param.{single}",
            getattr(p, single),
        )
        values = (cast(getattr(p, height)), cast(getattr(p, width)))
        require(min(values) > 0, op, f"{height} and {width} must both be positive", f"prior_box_param.{height}", values)
        return values
    if p.HasField(single):
        value = cast(getattr(p, single))
        require(value > 0, op, f"{single} must be positive", f"prior_box_param.{single}", value)
        return (value, value)
    return None


def prior_box_args(op: Op) -> dict:
    """PriorBox's arguments from prior_box_param, checked as SSD checks them."""
    p = op.param.prior_box_param
    for field in ("offset_h", "offset_w", "width", "height"):
        require(
            not getattr(p, field),
            op,
            "OpenCV's explicit prior offsets and sizes are not supported (SSD's Caffe has no such field)",
            f"prior_box_param.{field}",
            list(getattr(p, field)),
            kind=UnsupportedParameterError,
        )
    min_sizes, max_sizes, variances = list(p.min_size), list(p.max_size), list(p.variance)
    require(
        min_sizes and min(min_sizes) > 0,
        op,
        "give one or more positive min sizes",
        "prior_box_param.min_size",
        min_sizes,
    )
    if max_sizes:
        require(
            len(max_sizes) == len(min_sizes),
            op,
            "give one max size per min size",
            "prior_box_param.max_size",
            max_sizes,
        )
        require(
            all(b > a for a, b in zip(min_sizes, max_sizes)),
            op,
            "each max size must exceed its min size",
            "prior_box_param.max_size",
            max_sizes,
        )
    aspect_ratios = list(p.aspect_ratio)
    require(
        all(r > 0 for r in aspect_ratios),
        op,
        "aspect ratios must be positive (SSD divides by them and takes their square roots)",
        "prior_box_param.aspect_ratio",
        aspect_ratios,
    )
    for field, values in (("min_size", min_sizes), ("aspect_ratio", aspect_ratios)):
        require(
            len(values) <= MAX_SIZES,
            op,
            f"caffe2keras takes at most {MAX_SIZES} values of {field}",
            f"prior_box_param.{field}",
            f"{len(values)} values",
            kind=UnsupportedParameterError,
        )
    require(
        len(variances) in (0, 1, 4) and all(v > 0 for v in variances),
        op,
        "give one positive variance or four",
        "prior_box_param.variance",
        variances,
    )
    return dict(
        min_sizes=min_sizes,
        max_sizes=max_sizes,
        aspect_ratios=aspect_ratios,
        flip=p.flip,
        clip=p.clip,
        variances=variances or [0.1],
        image_size=_both_or_single(op, p, ("img_h", "img_w"), "img_size", int),
        step=_both_or_single(op, p, ("step_h", "step_w"), "step", float),
        offset=p.offset,
    )


def detection_output_args(op: Op) -> dict:
    """DetectionOutput's arguments from detection_output_param, checked as SSD checks them."""
    p = op.param.detection_output_param
    require(p.HasField("num_classes"), op, "num_classes is required", "detection_output_param.num_classes", None)
    nms = p.nms_param
    require(
        nms.nms_threshold >= 0,
        op,
        "nms_threshold must not be negative",
        "detection_output_param.nms_param.nms_threshold",
        nms.nms_threshold,
    )
    require(0 < nms.eta <= 1, op, "eta must be in (0, 1]", "detection_output_param.nms_param.eta", nms.eta)
    require(
        p.normalized_bbox,
        op,
        "caffe2keras decodes boxes normalized to [0, 1] only (OpenCV's normalized_bbox: false adds 1 to "
        "every width and height and clips to a fourth bottom's size)",
        "detection_output_param.normalized_bbox",
        False,
        kind=UnsupportedParameterError,
    )
    return dict(
        num_classes=p.num_classes,
        share_location=p.share_location,
        background_label_id=p.background_label_id,
        code_type=CODE_TYPES[enum_name(p, "code_type")],
        variance_encoded_in_target=p.variance_encoded_in_target,
        keep_top_k=p.keep_top_k,
        confidence_threshold=p.confidence_threshold if p.HasField("confidence_threshold") else None,
        nms_threshold=nms.nms_threshold,
        top_k=nms.top_k if nms.HasField("top_k") else -1,
        eta=nms.eta,
        clip=p.clip,
    )
