"""The table of supported Caffe layers, as the README and ``caffe2keras layers --markdown`` show it.

One row per group of Caffe types with what they become in Keras and what of Caffe's behaviour
is covered. The registry says which types exist; these rows say what to write about them.
:func:`table_rows` checks the two agree: every type with a converter, every data layer and every
type declared unsupported has exactly one row, and no row names a type caffe2keras does not know.
"""

from __future__ import annotations

from dataclasses import dataclass

from caffe2keras.converters.base import registered_types, unsupported
from caffe2keras.graph import DATA_LAYER_TYPES

HEADER = ("Caffe type", "Keras layer", "Notes")


@dataclass(frozen=True)
class LayerRow:
    types: tuple[str, ...]
    keras: str  # Markdown
    notes: str  # Markdown
    origin: str = ""  # where the types come from when not BVLC Caffe: "forks", "SSD"...

    @property
    def cells(self) -> tuple[str, str, str]:
        names = ", ".join(f"`{t}`" for t in self.types)
        return (f"{names} ({self.origin})" if self.origin else names, self.keras, self.notes)


LAYER_ROWS = (
    LayerRow(
        ("Input", *sorted(DATA_LAYER_TYPES - {"Input"})),  # the builder makes each data layer an input
        "`keras.Input`",
        "shapes from the prototxt or `input_shapes=`",
    ),
    LayerRow(
        ("Convolution",),
        "`Conv1D/2D/3D`, `DepthwiseConv2D` (+ `ZeroPadding`, `MaxPooling` as a subsampler)",
        "group, dilation, asymmetric kernel/stride/pad, `bias_term: false`",
    ),
    LayerRow(
        ("ConvolutionDepthwise", "DepthwiseConvolution"),
        "`DepthwiseConv2D`",
        "`ConvolutionDepthwise` (ShuffleNet's fork) keeps one filter per channel and ignores `num_output` and `group`, as the fork does; `DepthwiseConvolution` (MobileNet's fork) is a grouped Convolution",
        origin="forks",
    ),
    LayerRow(
        ("Deconvolution",),
        "`Conv1D/2D/3DTranspose`, `GroupedConv2DTranspose` (+ `Crop`)",
        "groups, dilation; pad crops the output",
    ),
    LayerRow(
        ("Pooling",),
        "`MaxPooling2D`, `AveragePooling2D`, `Global*Pooling2D`, `CaffePooling2D`, `MaxPoolingWithArgmax2D`",
        "MAX/AVE/STOCHASTIC (test time), global, ceil/floor (`round_mode`, fork `ceil_mode`); MAX's second top, the argmax mask, as Caffe numbers it (`h * W + w` per channel, first maximum wins)",
    ),
    LayerRow(
        ("ROIPooling",),
        "`ROIPooling`",
        "rbgirshick/caffe-fast-rcnn: `pooled_h/w`, `spatial_scale`, C's rounding; ROIs `(R, 5)` as bottom 1; the output's batch axis counts ROIs",
        origin="Fast R-CNN",
    ),
    LayerRow(("InnerProduct",), "`Dense` (+ `Flatten`)", "`axis`, `transpose`, implicit flatten in C,H,W order"),
    LayerRow(
        ("ReLU",), "`ReLU`; a frozen `PReLU` for a negative `negative_slope` (Keras refuses one)", "`negative_slope`"
    ),
    LayerRow(("ReLU6",), "`ReLU(max_value=6)`", "", origin="forks"),
    LayerRow(("PReLU",), "`PReLU`", "shared or per channel"),
    LayerRow(
        ("ELU", "Sigmoid", "TanH", "BNLL", "Swish"),
        "`ELU`, `Activation`",
        "BNLL is softplus; Swish with `beta` ≠ 1 is `Swish`",
    ),
    LayerRow(
        ("AbsVal", "Power", "Exp", "Log", "Clip", "Threshold"),
        "custom element-wise layers",
        "Caffe's formulas, including its shortcuts",
    ),
    LayerRow(("Softmax",), "`Softmax`", "`axis`"),
    LayerRow(
        ("Dropout",),
        "`Dropout` (+ `Rescaling`)",
        "`dropout_ratio`; caffe-fast-rcnn's `scale_train: false` (scaled by 1 - ratio at test time)",
    ),
    LayerRow(("LRN",), "`LRN`", "ACROSS_CHANNELS and WITHIN_CHANNEL as Caffe computes each"),
    LayerRow(
        ("BatchNorm",),
        "`BatchNormalization`; `MeanVarianceNormalization`",
        "statistics divided by the scale-factor blob (0 stays 0), `eps`; `use_global_stats: false` normalizes with the statistics of the batch passed in one call (`model(x)`; `predict` splits batches)",
    ),
    LayerRow(
        ("MVN",),
        "`MeanVarianceNormalization` (+ `Reshape`)",
        "`across_channels`, `normalize_variance`; `eps` added to the standard deviation, as Caffe does (OpenCV adds it to the variance); tops are 4-D as in Caffe",
    ),
    LayerRow(
        ("BN",),
        "`BatchNormalization`",
        "hszhao/PSPNet's slope, bias, mean, variance blobs and `eps`, with its CPU formula (its cuDNN engine raises `eps` to 1e-5); SegNet's `BN` has another `bn_param` and is not read",
        origin="PSPNet",
    ),
    LayerRow(
        ("Scale", "Bias"),
        "`Affine`; `Multiply`/`Add` with a second bottom (`BroadcastOperand` when it starts past axis 0)",
        "`axis`, `num_axes`, `bias_term`; a second bottom at any axis",
    ),
    LayerRow(("Eltwise",), "`Add`, `Multiply`, `Maximum`, `WeightedSum`", "SUM with `coeff`, PROD, MAX"),
    LayerRow(("Axpy",), "`Multiply` + `Add`", "`a * x + y`, `a` of shape (N, C) or (N, C, 1, 1)", origin="SENet"),
    LayerRow(
        ("Concat", "Slice", "Split"), "`Concatenate`, `Slice`, (identity)", "`axis` / legacy `concat_dim`, `slice_dim`"
    ),
    LayerRow(("Flatten", "Reshape"), "`Permute` + `Reshape`", "in Caffe's element order; `0` and `-1` in shapes"),
    LayerRow(("Crop",), "`Crop`", "`axis`, `offset`"),
    LayerRow(("Tile",), "`Tile`", "`axis` ≥ 1, `tiles`"),
    LayerRow(
        ("ArgMax",),
        "`ArgMax`",
        "`top_k`, `out_max_val`, `axis` ≥ 1; without `axis`, each item flattened and the top `(N, 1 or 2, top_k, 1)`; ties go to the larger index (Caffe's `partial_sort`); indices are floats",
    ),
    LayerRow(
        ("Reduction",),
        "`Reduction`",
        "SUM, ASUM, SUMSQ, MEAN, `coeff`; every axis from `axis` on (`axis` ≥ 1: Caffe's default 0 sums the batch into one number)",
    ),
    LayerRow(
        ("Embed",),
        "`Embedding` (+ `Affine` bias)",
        "`input_dim`, `num_output`, `bias_term`; float indices truncated as Caffe casts them",
    ),
    LayerRow(
        ("SPP",),
        "pooling per level, `Flatten`, `Concatenate`",
        "`pyramid_height`, MAX/AVE; each level's kernel, stride and pad by Caffe's rule, pooled with Caffe's rounding; one level keeps its 4-D top",
    ),
    LayerRow(
        ("Im2col",),
        "fixed grouped `Conv` with one-hot kernels",
        "Convolution's `kernel`/`stride`/`pad`/`dilation`; copies values exactly",
    ),
    LayerRow(
        ("Parameter",),
        "`LearnedTensor`",
        "the learned blob; its axis 0 is its own (fixed), not a batch; wired to the first input, which it ignores",
    ),
    LayerRow(
        ("BatchReindex",),
        "`BatchReindex`",
        "gathers items along the batch axis; the output's batch is the index blob's length",
    ),
    LayerRow(
        ("LSTM", "RNN"),
        "`CaffeLSTM`, `CaffeRNN`",
        "see [Recurrent layers](#recurrent-layers): gates i, f, o, g; `cont`; static input; `expose_hidden`",
    ),
    LayerRow(("LSTMUnit",), "`LSTMUnit`", "one LSTM step: `c_prev (1, N, H)`, gates `(1, N, 4H)`, `cont (1, N)`"),
    LayerRow(
        ("Normalize",),
        "`Normalize`",
        "`across_spatial`, `channel_shared`, `eps` under the root: `x / sqrt(sum(x²) + eps)`, then the learned scale; 2-D to 4-D blobs",
        origin="SSD",
    ),
    LayerRow(
        ("Permute",),
        "`Permute`",
        "`order`, unnamed axes after the named ones; moving the batch axis is unsupported",
        origin="SSD",
    ),
    LayerRow(
        ("PriorBox",),
        "`PriorBox`",
        "min/max sizes (truncated to integers, as Caffe does), aspect ratios, `flip`, `clip`, 1 or 4 variances, `img_size`/`img_h`/`img_w`, `step`/`step_h`/`step_w`, `offset`; a constant of the static shapes, Caffe's batch-1 blob repeated per image",
        origin="SSD",
    ),
    LayerRow(
        ("DetectionOutput",),
        "`DetectionOutput`",
        "CENTER_SIZE/CORNER/CORNER_SIZE, `variance_encoded_in_target`, `share_location`, `background_label_id`, `confidence_threshold`, per-class NMS (`nms_threshold`, `top_k`, adaptive `eta`), `keep_top_k`, OpenCV's `clip`; see below for the output's static shape",
        origin="SSD",
    ),
    LayerRow(("ShuffleChannel",), "`Reshape` + `Permute` + `Reshape`", "`group`", origin="ShuffleNet"),
    LayerRow(
        ("Reorg",),
        "`Reshape` + `Permute` + `Reshape`",
        "darknet's own index order (not a plain space-to-depth), as gklz1982/caffe-yolov2 and OpenCV compute it; `stride`, `reverse`",
        origin="YOLOv2",
    ),
    LayerRow(
        ("Interp",),
        "`BilinearInterp` (+ `Crop`)",
        "`zoom_factor`, `shrink_factor`, `height`/`width` in the fork's order of precedence; `pad_beg`/`pad_end` crop (≤ 0, as the fork requires); aligned corners with the fork's float32 weights",
        origin="DeepLab, PSPNet",
    ),
    LayerRow(
        ("Upsample",),
        "`UpSampling2D`; `MaxUnpooling2D`",
        "one bottom: nearest by `scale` (give it: the forks' defaults differ); two bottoms (values, MAX pooling mask): SegNet's unpooling to `upsample_h/w`, or `scale` or `scale_h/w` less `pad_out_h/w`",
        origin="YOLOv3 ports, SegNet",
    ),
    LayerRow(
        ("Filter",),
        "—",
        "**unsupported**: the output's batch size is the number of non-zero selectors, known only from the data, which a compiled Keras graph (JAX, XLA) cannot express",
    ),
    LayerRow(
        ("Python",),
        "—",
        "**unsupported** unless you register a converter: its code is never imported or run (see [Custom layers](guide/custom-layers.md))",
    ),
)


def table_rows() -> list[LayerRow]:
    """:data:`LAYER_ROWS`, then one bare row per converter registered without one (a plugin's).

    Raises:
        ValueError: a row names a type that has no converter, is no data layer and is not
            declared unsupported, or a type has two rows.
    """
    documented = [t for row in LAYER_ROWS for t in row.types]
    repeated = sorted({t for t in documented if documented.count(t) > 1})
    known = {*registered_types(), *DATA_LAYER_TYPES}
    unknown = [t for t in documented if t not in known and unsupported(t) is None]
    if repeated or unknown:
        raise ValueError(f"the layer table is out of date. Received: repeated={repeated}, unknown={unknown}")
    extra = [LayerRow((t,), "(a registered converter)", "") for t in registered_types() if t not in documented]
    return [*LAYER_ROWS, *extra]


def markdown_table(rows: list[LayerRow]) -> str:
    """The rows as a GitHub Markdown table, as the README's "Supported layers" shows it."""
    lines = [
        "|" + "|".join(f" {cell} " if cell else " " for cell in row) + "|" for row in (HEADER, *(r.cells for r in rows))
    ]
    lines.insert(1, "|" + "|".join("---" for _ in HEADER) + "|")
    return "\n".join(lines) + "\n"
