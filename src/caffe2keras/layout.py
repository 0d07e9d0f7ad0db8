"""Where Caffe's axes live in a Keras tensor.

Caffe tensors are ``(N, C, ...)``. In ``channels_first`` a Keras tensor has
the same order. In ``channels_last`` every tensor of rank >= 3 has Caffe's
axis 1 moved last: ``(N, C, H, W) -> (N, H, W, C)``; tensors of rank <= 2 are
unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caffe2keras.errors import ArgumentError

DATA_FORMATS = ("channels_last", "channels_first")


def check_data_format(data_format: str) -> str:
    """``data_format`` when it is one of :data:`DATA_FORMATS` (an ``ArgumentError``, a ``ValueError``, if not)."""
    if data_format not in DATA_FORMATS:
        raise ArgumentError(f"data_format must be one of {DATA_FORMATS}. Received: data_format={data_format!r}")
    return data_format


@dataclass(frozen=True)
class Layout:
    data_format: str = "channels_last"

    def __post_init__(self):
        check_data_format(self.data_format)

    @property
    def channels_last(self) -> bool:
        return self.data_format == "channels_last"

    def moves_channels(self, rank: int) -> bool:
        return self.channels_last and rank >= 3

    def perm(self, rank: int) -> tuple[int, ...]:
        """Keras axis i holds Caffe axis ``perm(rank)[i]``."""
        if self.moves_channels(rank):
            return (0, *range(2, rank), 1)
        return tuple(range(rank))

    def axis(self, caffe_axis: int, rank: int) -> int:
        """The Keras axis holding Caffe axis ``caffe_axis`` (negative axes allowed)."""
        return self.perm(rank).index(caffe_axis % rank)

    def keras_shape(self, caffe_shape) -> tuple:
        perm = self.perm(len(caffe_shape))
        return tuple(caffe_shape[a] for a in perm)

    def caffe_shape(self, keras_shape) -> tuple:
        perm = self.perm(len(keras_shape))
        shape = [0] * len(keras_shape)
        for keras_axis, caffe_axis in enumerate(perm):
            shape[caffe_axis] = keras_shape[keras_axis]
        return tuple(shape)

    def to_keras(self, array: np.ndarray) -> np.ndarray:
        """A Caffe-layout array in this layout (a view where possible)."""
        return np.transpose(array, self.perm(array.ndim))

    def to_caffe(self, array: np.ndarray) -> np.ndarray:
        return np.transpose(array, np.argsort(self.perm(array.ndim)))
