"""What every writer of a converted net reads of one Caffe layer: :class:`Node`.

It lives outside :mod:`caffe2keras.converters` (whose package imports Keras) so that the ONNX
writer reads layers exactly as the Keras converters do, without loading Keras.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from caffe2keras.caffe.weights import Blob
from caffe2keras.errors import ShapeError, UnsupportedParameterError, WeightsError
from caffe2keras.graph import Op, Shape, check_blob_shape
from caffe2keras.layout import Layout


@dataclass(frozen=True)
class Node:
    """A Caffe layer as a converter sees it.

    Attributes:
        name, type: the Caffe layer's name and type string.
        param: its ``LayerParameter`` (``node.param.convolution_param.num_output``,
            or a plugin's own field added with :func:`caffe2keras.extend_schema`).
        in_shapes, out_shapes: Caffe (N, C, H, W...) shapes of the bottoms and
            tops, batch included (``out_shapes`` is empty without a shape rule).
        layout: where Caffe's axes are in the Keras tensors: ``layout.data_format``,
            ``layout.keras_shape(caffe_shape)``, ``layout.to_keras(caffe_array)``;
            see also :meth:`keras_axis`.
        op: the graph node (bottoms and tops as blob references).

    Use :meth:`blob` for weights and :meth:`error` for parameters that cannot
    be converted.
    """

    op: Op
    in_shapes: tuple[Shape, ...]
    out_shapes: tuple[Shape, ...]
    layout: Layout
    # None: architecture only. A tuple (maybe empty): the blobs the weights file holds.
    weights: tuple[Blob, ...] | None = None
    _used: set = field(default_factory=set, compare=False, repr=False)
    # Every blob the converter asked for: index -> the shape the prototxt gives it.
    requested: dict = field(default_factory=dict, compare=False, repr=False)
    # Blobs folded into others (BatchNorm's scale factor): the Keras layer holds no weight for them.
    folded: set = field(default_factory=set, compare=False, repr=False)
    # The weights file has no entry for this layer: as in Caffe, its blobs are what its fillers make.
    from_fillers: bool = False
    # Whether a random filler may make them (else such a layer is refused).
    allow_random: bool = False
    # "blob i: filler" for each blob made from a filler, for the conversion's summary.
    filled: list = field(default_factory=list, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def type(self) -> str:
        return self.op.type

    @property
    def param(self):
        return self.op.param

    def error(self, message: str, field: str | None = None, value=None, kind=UnsupportedParameterError):
        """An error naming this layer, ending in ``Received: field=value``; ``raise node.error(...)``."""
        return kind(self.name, self.type, message, field, value)

    def keras_axis(self, caffe_axis: int, rank: int | None = None) -> int:
        """The Keras axis holding Caffe axis ``caffe_axis`` of a tensor of ``rank``
        (default: bottom 0's rank)."""
        rank = len(self.in_shapes[0]) if rank is None else rank
        return self.layout.axis(caffe_axis, rank)

    def blob(
        self, index: int, expected: Shape, field: str | None = None, value=None, *, dims=None, folded: bool = False
    ) -> np.ndarray | None:
        """Weight blob ``index`` as a float32 array of shape ``expected``, in Caffe's layout,
        or None when converting the architecture only. Every blob the weights file holds
        for the layer must be asked for.

        ``field``/``value`` name the parameter that sets the shape, for the error when the
        file disagrees; ``dims`` may name, per dimension, the ``(field, value)`` that sets
        that dimension, so that a mismatch is reported against the right one. ``folded``: the
        blob is folded into others and counts as no parameter of the Keras model.
        """
        expected = tuple(int(d) for d in expected)
        check_blob_shape(expected, self.name, self.type, f"weight blob {index}")
        if field is None:
            field, value = f"blobs[{index}].shape", expected
        self.requested[index] = expected
        if folded:
            self.folded.add(index)
        if self.weights is None:
            return None
        if self.from_fillers:
            return self._filled_blob(index, expected)
        self._used.add(index)
        if index >= len(self.weights):
            held = f"{len(self.weights)} blob(s)" if self.weights else "no blobs"
            raise WeightsError(
                self.name,
                self.type,
                f"the weights file holds {held} for this layer, but it needs blob {index} of shape {tuple(expected)}",
                field,
                value,
            )
        blob = self.weights[index]
        if blob.shape == expected:
            return blob.data
        # Caffe's legacy rule: num/channels/height/width match the shape padded to 4-D.
        if blob.legacy and len(expected) <= 4 and blob.shape == (1,) * (4 - len(expected)) + expected:
            return blob.data.reshape(expected)
        if dims is not None and len(blob.shape) == len(expected):
            differing = next(i for i, (a, b) in enumerate(zip(blob.shape, expected)) if a != b)
            field, value = dims[differing]
        raise WeightsError(
            self.name,
            self.type,
            f"weight blob {index} has shape {blob.shape} but the prototxt gives {expected}",
            field,
            value,
        )

    def _filled_blob(self, index: int, expected: Shape) -> np.ndarray:
        """Blob ``index`` as the prototxt's filler makes it, as Caffe keeps it for a layer the
        weights file lacks."""
        from caffe2keras.converters.fillers import RANDOM_FILLERS, blob_filler, filler_values  # a module above this one

        filler = blob_filler(self.type, self.param, index)
        if filler is None:
            raise WeightsError(
                self.name,
                self.type,
                "the weights file has no blobs for this layer, and caffe2keras does not know which "
                f"filler Caffe would start {self.type}'s blob {index} from",
                "blobs",
                0,
            )
        filler_field, default, kind = filler
        if kind in RANDOM_FILLERS and not self.allow_random:
            raise WeightsError(
                self.name,
                self.type,
                f"the weights file has no blobs for this layer and its prototxt starts blob {index} from a "
                f"random {kind!r} filler, so every conversion would differ; pass allow_random=True "
                "(CLI: --allow-random-init) to accept random values",
                filler_field,
                kind,
            )
        if kind != "constant" and kind not in RANDOM_FILLERS:
            raise WeightsError(
                self.name,
                self.type,
                f"the weights file has no blobs for this layer and caffe2keras cannot draw its {kind!r} filler",
                filler_field,
                kind,
            )
        values = filler_values(self.param, filler_field, default, expected)
        constant = kind == "constant" and values.size and np.all(values == values.flat[0])
        self.filled.append(f"blob {index} {kind} {values.flat[0]:g}" if constant else f"blob {index} {kind}")
        return values

    def check_all_blobs_used(self) -> None:
        if self.weights is not None and len(self.weights) > len(self._used):
            raise WeightsError(
                self.name,
                self.type,
                f"the weights file holds {len(self.weights)} blobs for this layer, but its "
                f"parameters use {len(self._used)}",
                "blobs",
                len(self.weights),
            )


def require(condition: bool, op: Op, message: str, field: str, value, kind=ShapeError) -> None:
    """Raise ``kind`` for ``op`` unless ``condition`` holds (for shape rules and converters)."""
    if not condition:
        raise kind(op.name, op.type, message, field, value)


def batch_norm_statistics(
    mean: np.ndarray, variance: np.ndarray, factor: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Caffe BatchNorm's running mean and variance, divided by its third blob, the running-average
    normalizer, as Caffe does (multiplied by its float32 inverse; a factor of 0 gives 0)."""
    if factor is None:
        return mean, variance
    inverse = np.float32(0.0) if factor.flat[0] == 0 else np.float32(1.0) / np.float32(factor.flat[0])
    return mean * inverse, variance * inverse
