"""The project's tolerance rule, used by ``verify`` and by every test against a reference.

With ``y`` the value under test and ``ref`` the reference, both in float64::

    max abs error = max |y - ref|
    max rel error = max |y - ref| / max |ref|       (0 when both are 0, inf when only max|ref| is)
    within tolerance  <=>  max |y - ref| <= atol + rtol * max |ref|

with ``atol = rtol = 1e-4`` for every golden case. Positions where both values are the same
infinity or both are NaN count as equal; a NaN against a number is an infinite error.
``max |ref|`` is taken over the reference's finite values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ATOL = 1e-4
RTOL = 1e-4
TOLERANCE_RULE = "max|y - ref| <= atol + rtol * max|ref|"


@dataclass(frozen=True)
class Comparison:
    max_abs_error: float
    max_rel_error: float
    allowed: float  # atol + rtol * max|ref|
    worst_index: tuple[int, ...]  # where max_abs_error is, in Caffe's layout
    value: float  # the Keras value there
    reference_value: float

    @property
    def within_tolerance(self) -> bool:
        return self.max_abs_error <= self.allowed


def compare(actual: np.ndarray, reference: np.ndarray, atol: float = ATOL, rtol: float = RTOL) -> Comparison:
    """Compare two arrays of the same shape under the tolerance rule (see the module's docs)."""
    y = np.asarray(actual, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    same = (y == ref) | (np.isnan(y) & np.isnan(ref))
    with np.errstate(invalid="ignore"):
        error = np.where(same, 0.0, np.abs(y - ref))
    error[np.isnan(error)] = np.inf
    finite = np.abs(ref[np.isfinite(ref)])
    scale = float(finite.max()) if finite.size else 0.0
    if error.size == 0:
        return Comparison(0.0, 0.0, atol + rtol * scale, (), math.nan, math.nan)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(error)), error.shape))
    max_abs = float(error[worst])
    if scale > 0:
        max_rel = max_abs / scale
    else:
        max_rel = 0.0 if max_abs == 0 else math.inf
    return Comparison(max_abs, max_rel, atol + rtol * scale, worst, float(y[worst]), float(ref[worst]))
