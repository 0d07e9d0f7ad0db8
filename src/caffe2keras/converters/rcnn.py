"""Two-stage detectors' layers: Faster R-CNN's region proposals (py-faster-rcnn's Python
``rpn.proposal_layer.ProposalLayer`` and OpenCV's ``Proposal`` type) and R-FCN's PSROIPooling.

The proposal layers' output count depends on the data; the converted layer always returns
``post_nms_topn`` rows, the kept proposals first and then zeros, as OpenCV does.
"""

from __future__ import annotations

import ast
import math

from caffe2keras.converters.base import LayerDoc, LayerRule, Node, Step, converts, register_rule, require, unsupported
from caffe2keras.converters.keras_layers import caffe_layers
from caffe2keras.converters.pooling import roi_rows_steps
from caffe2keras.errors import UnsupportedParameterError
from caffe2keras.graph import Op, Shape
from caffe2keras.layer_arithmetic import faster_rcnn_anchors

# py-faster-rcnn's lib/fast_rcnn/config.py, cfg.TEST: the values its ProposalLayer reads at test time.
PY_FASTER_RCNN_TEST = dict(pre_nms_topn=6000, post_nms_topn=300, nms_threshold=0.7, min_size=16.0)
PY_FASTER_RCNN_RATIOS = (0.5, 1.0, 2.0)  # generate_anchors' default; the layer passes only scales
PY_FASTER_RCNN_KEYS = {"feat_stride": True, "scales": False}  # param_str key -> required


def _check_rpn_inputs(op: Op, in_shapes: list[Shape], anchors: int) -> None:
    bottoms = [b.name for b in op.bottoms]
    require(
        len(in_shapes) == 3,
        op,
        "a proposal layer takes the RPN's scores, its box deltas and im_info",
        "bottom",
        bottoms,
    )
    scores, deltas, info = (tuple(s) for s in in_shapes)
    require(
        len(scores) == 4 and scores[1] == 2 * anchors,
        op,
        f"the scores must be (1, 2 x {anchors} anchors, H, W)",
        "bottom_shapes",
        [scores, deltas, info],
    )
    require(
        len(deltas) == 4 and deltas[1] == 4 * anchors and deltas[2:] == scores[2:],
        op,
        f"the deltas must be (1, 4 x {anchors} anchors, H, W) with the scores' H and W",
        "bottom_shapes",
        [scores, deltas, info],
    )
    require(
        math.prod(d for d in info[1:] if d is not None) >= 3,
        op,
        "im_info must hold the image's height, width and scale",
        "bottom_shapes",
        [scores, deltas, info],
    )
    require(
        scores[0] in (1, None),
        op,
        "proposal layers take one image at a time",
        "bottom_shapes",
        [scores, deltas, info],
        kind=UnsupportedParameterError,
    )


def _proposal_tops(op: Op, rows: int) -> list[Shape]:
    require(
        len(op.tops) in (1, 2),
        op,
        "a proposal layer has the rois top and, optionally, the scores",
        "top",
        [t.name for t in op.tops],
    )
    return [(rows, 5), (rows, 1)][: len(op.tops)]


# ---------------------------------------------------------------- OpenCV's Proposal


def _opencv_anchors(op: Op):
    p = op.param.proposal_param
    require(
        len(p.ratio) > 0 and len(p.scale) > 0,
        op,
        "OpenCV's Proposal needs its anchors' ratios and scales",
        "proposal_param.ratio",
        list(p.ratio),
        kind=UnsupportedParameterError,
    )
    require(p.feat_stride > 0, op, "feat_stride must be positive", "proposal_param.feat_stride", p.feat_stride)
    require(p.post_nms_topn > 0, op, "post_nms_topn must be positive", "proposal_param.post_nms_topn", 0)
    return faster_rcnn_anchors(p.base_size, p.ratio, p.scale)


def proposal_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    _check_rpn_inputs(op, in_shapes, len(_opencv_anchors(op)))
    return _proposal_tops(op, op.param.proposal_param.post_nms_topn)


@converts(
    "Proposal",
    shapes=proposal_shapes,
    doc=LayerDoc(
        "`Proposal`",
        "OpenCV's type, as OpenCV runs it: anchors from `base_size`, `ratio`, `scale`; `feat_stride`, `pre_nms_topn`, `post_nms_topn`, `nms_thresh` (`min_size` is read and, as in OpenCV, not applied); always `post_nms_topn` rows, zeros after the kept ones (see [Published models](published-models.md))",
        origin="OpenCV",
    ),
)
def proposal(node: Node) -> Step:
    """OpenCV's Proposal as the Proposal layer, exactly as OpenCV runs it.

    OpenCV reads ``min_size`` and applies no size filter (its proposal_layer.cpp leaves the
    filter out), so no box is dropped for its size here either; it truncates im_info's height
    and width to integers."""
    p = node.param.proposal_param
    layer = caffe_layers.Proposal(
        _opencv_anchors(node.op).tolist(),
        feat_stride=p.feat_stride,
        pre_nms_topn=p.pre_nms_topn,
        post_nms_topn=p.post_nms_topn,
        nms_threshold=p.nms_thresh,
        min_size=0.0,
        floor_image_size=True,
        score_output=len(node.op.tops) == 2,
        data_format=node.layout.data_format,
    )
    return Step(layer)


# ---------------------------------------------------------------- Python layers


def _python_class(op: Op) -> str:
    p = op.param.python_param
    return f"{p.module}.{p.layer}"


def faster_rcnn_settings(op: Op) -> dict:
    """py-faster-rcnn's ProposalLayer settings: its param_str read as data (never run), and cfg.TEST."""
    text = op.param.python_param.param_str
    field = "python_param.param_str"
    # The layer reads param_str as a YAML mapping; the published ones are Python-literal pairs,
    # one per line or comma-separated, which literal_eval reads as data without running anything.
    entries = [line.strip().rstrip(",") for line in text.replace(",", "\n").splitlines() if line.strip()]
    try:
        values = ast.literal_eval("{" + ", ".join(entries) + "}")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise UnsupportedParameterError(
            op.name, op.type, "param_str must be a mapping such as 'feat_stride': 16", field, text
        ) from None
    require(isinstance(values, dict), op, "param_str must be a mapping", field, text, kind=UnsupportedParameterError)
    unknown = sorted(str(k) for k in values if k not in PY_FASTER_RCNN_KEYS)
    require(
        not unknown,
        op,
        f"ProposalLayer reads only {sorted(PY_FASTER_RCNN_KEYS)}; {unknown} would be ignored by it",
        field,
        text,
        kind=UnsupportedParameterError,
    )
    missing = [k for k, needed in PY_FASTER_RCNN_KEYS.items() if needed and k not in values]
    require(not missing, op, f"param_str lacks {missing}", field, text, kind=UnsupportedParameterError)
    stride, scales = values["feat_stride"], values.get("scales", (8, 16, 32))
    require(
        isinstance(stride, (int, float)) and stride > 0,
        op,
        "feat_stride must be a positive number",
        field,
        text,
        kind=UnsupportedParameterError,
    )
    require(
        isinstance(scales, (list, tuple)) and scales and all(isinstance(s, (int, float)) and s > 0 for s in scales),
        op,
        "scales must be a list of positive numbers",
        field,
        text,
        kind=UnsupportedParameterError,
    )
    anchors = faster_rcnn_anchors(16, PY_FASTER_RCNN_RATIOS, [float(s) for s in scales])
    return dict(anchors=anchors.tolist(), feat_stride=float(stride), **PY_FASTER_RCNN_TEST)


def faster_rcnn_proposal_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    settings = faster_rcnn_settings(op)
    _check_rpn_inputs(op, in_shapes, len(settings["anchors"]))
    return _proposal_tops(op, settings["post_nms_topn"])


def faster_rcnn_proposal(node: Node) -> Step:
    """py-faster-rcnn's ProposalLayer (TEST phase) as the Proposal layer, with its size filter."""
    layer = caffe_layers.Proposal(
        **faster_rcnn_settings(node.op),
        score_output=len(node.op.tops) == 2,
        data_format=node.layout.data_format,
    )
    return Step(layer)


# Python layer classes converted from what their published code computes: class -> (convert, shapes).
PYTHON_LAYERS = {"rpn.proposal_layer.ProposalLayer": (faster_rcnn_proposal, faster_rcnn_proposal_shapes)}


def _python_rule(op: Op):
    known = PYTHON_LAYERS.get(_python_class(op))
    if known is None:
        raise UnsupportedParameterError(
            op.name, op.type, unsupported("Python").reason, "python_param", _python_class(op)
        )
    return known


def _unsupported_python(op: Op) -> str | None:
    return None if _python_class(op) in PYTHON_LAYERS else unsupported("Python").reason


def python_layer(node: Node) -> Step:
    """A Python layer whose class caffe2keras knows (PYTHON_LAYERS), converted from what its
    published code computes; the code itself is never imported or run."""
    return _python_rule(node.op)[0](node)


def python_layer_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    return _python_rule(op)[1](op, in_shapes)


register_rule(
    LayerRule(
        "Python",
        python_layer,
        python_layer_shapes,
        check=_unsupported_python,
        doc=LayerDoc(
            "`Proposal`",
            "py-faster-rcnn's `rpn.proposal_layer.ProposalLayer` (its `param_str` read as data; `cfg.TEST`'s 6000/300/0.7/16; see [Published models](published-models.md)); any other class is **unsupported** unless you register a converter: its code is never imported or run (see [Custom layers](guide/custom-layers.md))",
        ),
        yields_to_plugins=True,
    )
)


# ---------------------------------------------------------------- R-FCN


def psroi_pooling_shapes(op: Op, in_shapes: list[Shape]) -> list[Shape]:
    p = op.param.psroi_pooling_param
    for field in ("spatial_scale", "output_dim", "group_size"):
        require(
            p.HasField(field),
            op,
            "the fork requires spatial_scale, output_dim and group_size",
            f"psroi_pooling_param.{field}",
            None,
        )
    require(p.output_dim > 0, op, "output_dim must be positive", "psroi_pooling_param.output_dim", p.output_dim)
    require(p.group_size > 0, op, "group_size must be positive", "psroi_pooling_param.group_size", p.group_size)
    bottoms = [b.name for b in op.bottoms]
    require(len(in_shapes) == 2, op, "PSROIPooling takes the score maps and the ROIs", "bottom", bottoms)
    features, rois = (tuple(s) for s in in_shapes)
    require(len(features) == 4, op, "the score maps must be 4-D (N, C, H, W)", "bottom_shape", features)
    channels = p.output_dim * p.group_size**2
    require(
        features[1] == channels,
        op,
        f"the score maps need output_dim x group_size^2 = {channels} channels, got {features[1]}",
        "psroi_pooling_param.output_dim",
        p.output_dim,
    )
    require(
        math.prod(rois[1:]) == 5,
        op,
        f"each ROI is 5 numbers (batch index, x1, y1, x2, y2), got shape {rois}",
        "bottom",
        bottoms,
    )
    return [(rois[0], p.output_dim, p.group_size, p.group_size)]


@converts(
    "PSROIPooling",
    shapes=psroi_pooling_shapes,
    doc=LayerDoc(
        "`PSROIPooling`",
        "daijifeng001/caffe-rfcn: `spatial_scale`, `output_dim`, `group_size`; position-sensitive average per bin, the fork's float32 bins; the output's batch axis counts ROIs",
        origin="R-FCN",
    ),
)
def psroi_pooling(node: Node) -> list[Step]:
    """R-FCN's PSROIPooling as the PSROIPooling layer."""
    p = node.param.psroi_pooling_param
    steps = roi_rows_steps(node)
    pool = caffe_layers.PSROIPooling(p.output_dim, p.group_size, p.spatial_scale, data_format=node.layout.data_format)
    return [*steps, Step(pool, inputs=[0, steps[-1] if steps else 1])]
