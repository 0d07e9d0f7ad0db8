"""SSD's layers (weiliu89/caffe): Normalize, Permute, PriorBox, DetectionOutput.

The parameter checks are the fork's own (its CHECKs and LOG(FATAL)s), raised as
caffe2keras errors that name the field.
"""

from __future__ import annotations

import math

from caffe2keras.converters.base import IDENTITY, LayerDoc, Node, Step, converts, require, same_shapes
from caffe2keras.converters.fillers import caffe_filler
from caffe2keras.converters.keras_layers import caffe_layers, layers
from caffe2keras.graph import Op, Shape
from caffe2keras.ssd import detection_output_args, prior_box_args
from caffe2keras.ssd_boxes import detection_rows, prior_box_sizes


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
    layer = caffe_layers.Normalize(
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
        "`Permute`; `Transpose`",
        "`order`, unnamed axes after the named ones; one that moves the batch axis (CRNN) transposes the whole tensor",
        origin="SSD",
    ),
)
def permute(node: Node):
    """SSD's Permute as Keras' Permute of this layout's axes, or a Transpose where it moves the batch axis."""
    rank = len(node.in_shapes[0])
    order = permute_order(node.op, rank)
    if order == list(range(rank)):
        return IDENTITY
    perm = node.layout.perm(rank)
    # Keras axis k of the output holds Caffe axis perm[k] of the top = Caffe axis order[perm[k]] of the bottom.
    axes = tuple(perm.index(order[perm[k]]) for k in range(rank))
    if axes[0] != 0:  # the batch axis moves: only a transpose of the whole tensor does that
        return Step(caffe_layers.Transpose(axes, batch_size=node.in_shapes[0][0]))
    return Step(layers.Permute(axes[1:]))


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
    return Step(caffe_layers.PriorBox(**prior_box_args(node.op), data_format=node.layout.data_format))


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
        "CENTER_SIZE/CORNER/CORNER_SIZE, `variance_encoded_in_target`, `share_location`, `background_label_id`, `confidence_threshold`, per-class NMS (`nms_threshold`, `top_k`, adaptive `eta`), `keep_top_k`, OpenCV's `clip`; see below for the output's static shape",
        origin="SSD",
    ),
)
def detection_output(node: Node) -> Step:
    """SSD's DetectionOutput (box decoding and non-maximum suppression) as the DetectionOutput layer."""
    # save_output_param and visualize only write files and draw; the blob does not change.
    layer = caffe_layers.DetectionOutput(**detection_output_args(node.op), data_format=node.layout.data_format)
    return Step(layer, inputs=[0, 1, 2])
