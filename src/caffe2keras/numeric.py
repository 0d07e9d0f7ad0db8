"""Checks that values entering a model are real, finite numbers, with errors that name them.

numpy converts almost anything to float32: a complex array loses its imaginary part, a datetime
becomes a count of ticks, an object array of numbers passes, and NaN or Inf in a mean or a scale
turns every output into NaN. Each check raises the caller's own error class, so that a
verification input and a preprocessing option each fail as their own kind of error.
"""

from __future__ import annotations

import numpy as np

# numpy's dtype kinds of real numbers: booleans, signed and unsigned integers, floats.
REAL_KINDS = "biuf"
_KIND_NAMES = {
    "c": "complex numbers",
    "m": "time spans",
    "M": "dates",
    "O": "Python objects",
    "S": "byte strings",
    "U": "strings",
    "V": "structured records",
}


def require_real(array, field: str, error, described: str | None = None) -> np.ndarray:
    """``array`` as a numpy array when its dtype holds real numbers; else ``error(message)``
    naming ``field`` (``described``: how the message's sentence names it, default ``field``)."""
    array = array if isinstance(array, np.ndarray) else _as_array(array, field, error)
    if array.dtype.kind not in REAL_KINDS or array.dtype.names is not None:
        what = _KIND_NAMES.get(array.dtype.kind, "values that are not numbers")
        raise error(
            f"{described or field} must hold real numbers; it holds {what}. Received: {field}.dtype={array.dtype}"
        )
    return array


def _as_array(value, field: str, error) -> np.ndarray:
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged lists and the like
        raise error(f"{field} must be an array of real numbers: {exc}. Received: {field}={value!r:.80}") from None


def require_finite(values, field: str, error) -> None:
    """``error`` naming ``field`` and its first value that is NaN or infinite as float32 (the
    model's type: 1e39 is finite in Python and infinite there), if it holds one."""
    array = np.asarray(values)
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~np.isfinite(array.astype(np.float32))
    if array.ndim == 0:
        if bad:
            raise error(f"{field} must be a finite float32 number. Received: {field}={array}")
        return
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise error(
            f"{field} must hold finite float32 numbers; {int(bad.sum())} of its {array.size} values are NaN or "
            f"infinite. Received: {field}[{', '.join(map(str, index))}]={array[index]}"
        )
