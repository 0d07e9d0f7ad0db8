"""What a weights file holds: blobs by layer, whichever format (binary or HDF5) they came from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class Blob:
    """One parameter blob. ``legacy`` marks a shape read from num/channels/height/width,
    which Caffe matches against a layer's blob shape padded to 4-D with leading 1s.

    A blob made with ``shape`` and ``load`` reads its values on first use of :attr:`data`:
    a converter compares the shape with the layer's first, so a file declaring more than
    the net needs is refused before anything is read or decompressed.
    """

    __slots__ = ("_data", "_load", "_shape", "legacy")

    def __init__(self, data: np.ndarray | None = None, legacy: bool = False, *, shape=None, load=None):
        if (data is None) == (load is None):
            raise ValueError("a Blob takes its data, or its shape and a load() that reads it.")
        self._data, self._load, self.legacy = data, load, legacy
        self._shape = tuple(int(d) for d in (data.shape if data is not None else shape))

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            self._data, self._load = self._load(), None
        return self._data

    def __repr__(self) -> str:
        return f"Blob(shape={self._shape}, legacy={self.legacy})"


@dataclass(frozen=True)
class LayerWeights:
    name: str
    type: str  # "" when the file does not say (HDF5 snapshots)
    blobs: tuple[Blob, ...]


Weights = dict[str, LayerWeights]
