"""Shared by the custom layers (which never import the Caffe side)."""

from __future__ import annotations

import math

# layout.py is neutral (NumPy only): the layers share its check without reaching the Caffe side.
from caffe2keras.layout import check_data_format  # noqa: F401  (re-exported to the layers)

PACKAGE = "caffe2keras"
# Values in one tensor a layer makes from its configuration: Caffe counts a blob's values in an
# int, and XLA aborts the process (no exception) on larger shapes, so a config is checked first.
MAX_TENSOR_SIZE = (1 << 31) - 1


def checked_shape(name: str, shape, minimum: int = 0) -> tuple[int, ...]:
    """``shape`` as integers, each at least ``minimum``, holding at most MAX_TENSOR_SIZE values."""
    dims = tuple(int(d) for d in shape)
    if any(d < minimum for d in dims) or math.prod(dims) > MAX_TENSOR_SIZE:
        raise ValueError(
            f"{name} must have dimensions >= {minimum} and at most {MAX_TENSOR_SIZE:,} values in all. "
            f"Received: {name}={shape}"
        )
    return dims


def channel_axis(rank: int, data_format: str) -> int:
    return rank - 1 if data_format == "channels_last" else 1


def spatial_axes(rank: int, data_format: str) -> tuple[int, ...]:
    """The axes after batch and channels, in order."""
    return tuple(range(1, rank - 1)) if data_format == "channels_last" else tuple(range(2, rank))
