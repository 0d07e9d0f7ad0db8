"""Shared by the custom layers (which never import the Caffe side)."""

from __future__ import annotations

# layout.py is neutral (NumPy only): the layers share its list without reaching the Caffe side.
from caffe2keras.layout import DATA_FORMATS

PACKAGE = "caffe2keras"


def check_data_format(data_format: str) -> str:
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be one of {DATA_FORMATS}. Received: data_format={data_format!r}")
    return data_format


def channel_axis(rank: int, data_format: str) -> int:
    return rank - 1 if data_format == "channels_last" else 1


def spatial_axes(rank: int, data_format: str) -> tuple[int, ...]:
    """The axes after batch and channels, in order."""
    return tuple(range(1, rank - 1)) if data_format == "channels_last" else tuple(range(2, rank))
