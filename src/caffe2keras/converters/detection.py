"""SSD's layers (weiliu89/caffe): Normalize, Permute, PriorBox, DetectionOutput.

The parameter checks are the fork's own (its CHECKs and LOG(FATAL)s), raised as
caffe2keras errors that name the field.
"""

from __future__ import annotations

import math

from keras import layers

from caffe2keras.caffe.schema import enum_name
from caffe2keras.converters.base import IDENTITY, LayerDoc, Node, Step, converts, require, same_shapes
from caffe2keras.converters.fillers import caffe_filler
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.graph import Op, Shape
from caffe2keras.layers import DetectionOutput, Normalize, PriorBox
from caffe2keras.layers.detection_output import detection_rows
from caffe2keras.layers.prior_box import MAX_SIZES, prior_box_sizes

CODE_TYPES = {"CORNER": "corner", "CENTER_SIZE": "center_size", "CORNER_SIZE": "corner_size"}


def normalize_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    rank = len(in_shapes[0])
    require(
        2 <= rank <= 4,
        op,
        "Normalize takes blobs of 2 to 4 axes (Caffe reads num, channels, height, width)",
        "bottom_shape",
        in_shapes[0],
    )
    return same_shapes(op, in_shapes)


@converts(
    "Normalize",
    shapes=normalize_shapes,
    doc=LayerDoc(
        "`Normalize`",
        "`across_spatial`, `channel_shared`, `eps` under the root: `x / sqrt(sum(x²) + eps)`, then the learned scale; 2-D to 4-D blobs",
        origin="SSD",
    ),
)
def normalize(node: Node) -> Step:
    """SSD's Normalize (an L2 normalization times a learned scale) as the Normalize layer."""
    p = node.param.norm_param
    shape = () if p.channel_shared else (node.in_shapes[0][1],)
    scale = node.blob(0, shape, "norm_param.channel_shared", p.channel_shared)
    # SSD's default scale filler is the constant 1.
    initializer = caffe_filler(node.param, "norm_param.scale_filler", shape, 1.0)
    layer = Normalize(
        across_spatial=p.across_spatial,
        channel_shared=p.channel_shared,
        eps=p.eps,
        data_format=node.layout.data_format,
        scale_initializer=initializer,
    )
    return Step(layer, (scale,))


def permute_order(op: Op, rank: int) -> list[int]:
    """The full order: the given axes, then the others in their old order."""
    given = list(op.param.permute_param.order)
    require(
        all(axis < rank for axis in given),
        op,
        f"every axis must be below the bottom's {rank} axes",
        "permute_param.order",
        given,
    )
    require(len(set(given)) == len(given), op, "an axis is named twice", "permute_param.order", given)
    return given + [axis for axis in range(rank) if axis not in given]


def permute_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    shape = in_shapes[0]
    return [tuple(shape[axis] for axis in permute_order(op, len(shape)))]


@converts(
    "Permute",
    shapes=permute_shapes,
    doc=LayerDoc(
        "`Permute`", "`order`, unnamed axes after the named ones; moving the batch axis is unsupported", origin="SSD"
    ),
)
def permute(node: Node):
    """SSD's Permute as Keras' Permute of this layout's axes."""
    rank = len(node.in_shapes[0])
    order = permute_order(node.op, rank)
    if order == list(range(rank)):
        return IDENTITY
    require(
        order[0] == 0,
        node.op,
        "moving the batch axis is not supported",
        "permute_param.order",
        list(node.param.permute_param.order),
        kind=UnsupportedParameterError,
    )
    perm = node.layout.perm(rank)
    # Keras axis k of the output holds Caffe axis perm[k] of the top = Caffe axis order[perm[k]] of the bottom.
    return Step(layers.Permute(tuple(perm.index(order[perm[k]]) for k in range(1, rank))))


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


def prior_box_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    require(
        len(in_shapes) == 2,
        op,
        "PriorBox takes two bottoms (the feature map and the image)",
        "bottom",
        [b.name for b in op.bottoms],
    )
    require(
        all(len(s) == 4 for s in in_shapes),
        op,
        "PriorBox takes 4-D (N, C, H, W) bottoms",
        "bottom_shapes",
        [tuple(s) for s in in_shapes],
    )
    args = prior_box_args(op)
    sizes = prior_box_sizes(args["min_sizes"], args["max_sizes"], args["aspect_ratios"], args["flip"])
    height, width = in_shapes[0][2:]
    return [(1, 2, None if None in (height, width) else height * width * len(sizes) * 4)]


@converts(
    "PriorBox",
    shapes=prior_box_shapes,
    doc=LayerDoc(
        "`PriorBox`",
        "min/max sizes (truncated to integers, as Caffe does), aspect ratios, `flip`, `clip`, 1 or 4 variances, `img_size`/`img_h`/`img_w`, `step`/`step_h`/`step_w`, `offset`; a constant of the static shapes, Caffe's batch-1 blob repeated per image",
        origin="SSD",
    ),
)
def prior_box(node: Node) -> Step:
    """SSD's PriorBox as the PriorBox layer."""
    return Step(PriorBox(**prior_box_args(node.op), data_format=node.layout.data_format))


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
    )


def detection_output_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    require(
        len(in_shapes) in (3, 4),
        op,
        "DetectionOutput takes loc, conf and prior bottoms (and an image to visualize)",
        "bottom",
        [b.name for b in op.bottoms],
    )
    loc, conf, priors = in_shapes[:3]
    args = detection_output_args(op)
    vit = args["variance_encoded_in_target"]
    require(
        len(priors) == 3
        and priors[0] == 1
        and priors[1] in ((1, 2) if vit else (2,))
        and (priors[2] is None or priors[2] % 4 == 0),
        op,
        "the priors must have PriorBox's shape (1, 2, num_priors * 4)",
        "bottom_shapes",
        [tuple(s) for s in in_shapes],
    )
    num_priors = None if priors[2] is None else priors[2] // 4  # free: the boxes of the sizes it runs at
    loc_classes = 1 if args["share_location"] else args["num_classes"]
    for name, shape, per_prior in (("loc", loc, loc_classes * 4), ("conf", conf, args["num_classes"])):
        require(
            len(shape) >= 2
            and (
                num_priors is None
                if None in shape[1:]
                else shape[1] == math.prod(shape[1:]) == (num_priors or 0) * per_prior
            ),
            op,
            f"the {name} bottom must be (N, {per_prior} x {num_priors} priors)",
            "bottom_shapes",
            [tuple(s) for s in in_shapes],
        )
    require(
        loc[0] == conf[0],
        op,
        "loc and conf must have the same batch size",
        "bottom_shapes",
        [tuple(s) for s in in_shapes],
    )
    rows = detection_rows(
        args["num_classes"], args["background_label_id"], args["top_k"], args["keep_top_k"], num_priors
    )
    return [(loc[0], 1, rows, 7)]


@converts(
    "DetectionOutput",
    shapes=detection_output_shapes,
    doc=LayerDoc(
        "`DetectionOutput`",
        "CENTER_SIZE/CORNER/CORNER_SIZE, `variance_encoded_in_target`, `share_location`, `background_label_id`, `confidence_threshold`, per-class NMS (`nms_threshold`, `top_k`, adaptive `eta`), `keep_top_k`; see below for the output's static shape",
        origin="SSD",
    ),
)
def detection_output(node: Node) -> Step:
    """SSD's DetectionOutput (box decoding and non-maximum suppression) as the DetectionOutput layer."""
    # save_output_param and visualize only write files and draw; the blob does not change.
    layer = DetectionOutput(**detection_output_args(node.op), data_format=node.layout.data_format)
    return Step(layer, inputs=[0, 1, 2])
