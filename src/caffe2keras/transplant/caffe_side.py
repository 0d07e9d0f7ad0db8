"""The Caffe side of :func:`caffe2keras.load_caffe_weights`: the net's weighted layers, as units.

A unit is what one Keras layer stands for: one Caffe layer with weights, or a
``BatchNorm`` together with the ``Scale`` that follows it (Keras'
``BatchNormalization`` does both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caffe2keras.caffe.weights import Weights
from caffe2keras.graph import BlobRef, Graph, Op, Shape

# Caffe type -> the family of Keras layers that can take its weights.
KINDS = {
    "Convolution": "conv",
    "DepthwiseConvolution": "conv",
    "ConvolutionDepthwise": "conv",
    "Deconvolution": "deconv",
    "InnerProduct": "dense",
    "BatchNorm": "batchnorm",
    "PReLU": "prelu",
}


@dataclass(frozen=True, eq=False)
class CaffeUnit:
    ops: tuple[Op, ...]  # the layer; for a BatchNorm, then its Scale
    blobs: tuple[tuple[np.ndarray, ...], ...]  # per op, in Caffe's layout
    index: int  # network order
    depth: int  # weighted units on the longest path from an input, this one included
    bottom_shape: Shape | None  # Caffe's shape of bottom 0, where the prototxt fixes it

    @property
    def op(self) -> Op:
        return self.ops[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(op.name for op in self.ops)

    @property
    def label(self) -> str:
        return " + ".join(self.names)

    @property
    def type_label(self) -> str:
        return " + ".join(op.type for op in self.ops)

    @property
    def kind(self) -> str | None:
        return KINDS.get(self.op.type)

    @property
    def scale(self) -> tuple[np.ndarray, ...] | None:
        return self.blobs[1] if len(self.ops) > 1 else None

    def shapes(self) -> str:
        return ", ".join(str(tuple(b.shape)) for blobs in self.blobs for b in blobs)

    def key(self) -> tuple | None:
        """What a Keras layer must match to pair with this unit by order and shapes."""
        blobs = self.blobs[0]
        if self.kind in ("conv", "deconv"):
            group = self.op.param.convolution_param.group
            first, second, *spatial = blobs[0].shape
            if self.op.type == "ConvolutionDepthwise":
                group = first
            if self.kind == "conv":  # (out, in / group, ...)
                return ("conv", first, second * group, tuple(spatial))
            return ("deconv", second * group, first, tuple(spatial))  # (in, out / group, ...)
        if self.kind == "dense":
            outputs, inputs = blobs[0].shape[-2:]
            if self.op.param.inner_product_param.transpose:
                inputs, outputs = outputs, inputs
            return ("dense", inputs, outputs)
        if self.kind in ("batchnorm", "prelu"):
            return (self.kind, blobs[0].size)
        return None


def _folds_into(scale: Op, batch_norm: Op, blobs: tuple[np.ndarray, ...]) -> bool:
    """A Scale applied straight to a BatchNorm's output, one factor per channel."""
    p = scale.param.scale_param
    return (
        scale.type == "Scale"
        and len(scale.bottoms) == 1
        and scale.bottoms[0] == batch_norm.tops[0]
        and p.axis == 1
        and bool(blobs)
        and blobs[0].ndim == 1
    )


def caffe_units(graph: Graph, weights: Weights) -> list[CaffeUnit]:
    """Every layer of ``graph`` with weights in ``weights``, BatchNorm + Scale folded, in network order."""
    blobs_of = {
        op.name: tuple(b.data for b in weights[op.name].blobs)
        for op in graph.ops
        if op.name in weights and weights[op.name].blobs
    }
    units: list[CaffeUnit] = []
    depth: dict[BlobRef, int] = {}
    folded: set[str] = set()
    for position, op in enumerate(graph.ops):
        below = max((depth.get(b, 0) for b in op.bottoms), default=0)
        weighted = op.name in blobs_of and op.name not in folded
        for top in op.tops:
            depth[top] = below + weighted
        if not weighted:
            continue
        ops, blobs = [op], [blobs_of[op.name]]
        if op.type == "BatchNorm":
            follower = next((o for o in graph.ops[position + 1 :] if op.tops[0] in o.bottoms), None)
            if follower is not None and _folds_into(follower, op, blobs_of.get(follower.name, ())):
                ops.append(follower)
                blobs.append(blobs_of[follower.name])
                folded.add(follower.name)
        bottom = graph.shapes.get(op.bottoms[0]) if op.bottoms else None
        units.append(CaffeUnit(tuple(ops), tuple(blobs), len(units), below + 1, bottom))
    return units
