"""The verification report: blob rows and their comparisons under the tolerance rule
(:mod:`caffe2keras.tolerance`)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from caffe2keras._version import __version__
from caffe2keras.tolerance import TOLERANCE_RULE, Comparison
from caffe2keras.verification.status import Status

PathLike = str | os.PathLike
InputSpec = np.ndarray | PathLike
Inputs = InputSpec | Mapping[str, InputSpec] | None


FAILED = (Status.DIVERGED, Status.SHAPE_MISMATCH)


@dataclass(frozen=True)
class Writer:
    """A layer that writes a blob: the producer, then any in-place layers."""

    layer: str
    type: str


@dataclass(frozen=True)
class BlobRow:
    """One blob of the net, in network order, and how it compares with the reference."""

    blob: str
    writers: tuple[Writer, ...]  # empty for a net input no layer rewrites
    shape: tuple[int, ...]
    status: Status
    comparison: Comparison | None = None
    note: str = ""

    @property
    def layer(self) -> str | None:
        """The layer that gave the blob its final value."""
        return self.writers[-1].layer if self.writers else None

    @property
    def layer_type(self) -> str | None:
        return self.writers[-1].type if self.writers else None

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    def to_dict(self) -> dict:
        c = self.comparison
        return {
            "blob": self.blob,
            "layer": self.layer,
            "type": self.layer_type,
            "writers": [{"layer": w.layer, "type": w.type} for w in self.writers],
            "shape": list(self.shape),
            "status": self.status.value,
            "max_abs_error": _json_float(c.max_abs_error) if c else None,
            "max_rel_error": _json_float(c.max_rel_error) if c else None,
            "allowed_abs_error": _json_float(c.allowed) if c else None,
            "worst_index": list(c.worst_index) if c else None,
            "value": _json_float(c.value) if c else None,
            "reference_value": _json_float(c.reference_value) if c else None,
            "note": self.note,
        }


@dataclass(frozen=True)
class InputInfo:
    blob: str
    shape: tuple[int, ...]
    source: str


@dataclass
class VerifyReport:
    """The outcome of :func:`verify`: one row per blob, in network order."""

    prototxt: str
    weights: str | None
    reference_kind: str  # "opencv", "caffe" or "npz"
    reference: str  # a description: version, file
    data_format: str
    atol: float
    rtol: float
    inputs: list[InputInfo]
    rows: list[BlobRow]
    reference_only_blobs: list[str] = field(default_factory=list)

    @property
    def compared(self) -> list[BlobRow]:
        return [r for r in self.rows if r.comparison is not None or r.status is Status.SHAPE_MISMATCH]

    @property
    def failures(self) -> list[BlobRow]:
        return [r for r in self.rows if r.failed]

    @property
    def ok(self) -> bool:
        """At least one blob compared, and every compared blob within tolerance."""
        return bool(self.compared) and not self.failures

    @property
    def first_divergence(self) -> BlobRow | None:
        """The earliest blob in network order that is out of tolerance."""
        return next(iter(self.failures), None)

    def count(self, status: Status) -> int:
        return sum(r.status is status for r in self.rows)

    @property
    def tolerance(self) -> str:
        return f"max|y - ref| <= {self.atol:g} + {self.rtol:g} * max|ref|"

    @property
    def verdict(self) -> str:
        compared, skipped = len(self.compared), self.count(Status.NOT_COMPARED)
        not_compared = f"; {skipped} not compared" if skipped else ""
        if not compared:
            hint = ""
            if self.reference_only_blobs:
                hint = f"; the reference's blobs are {name_list(self.reference_only_blobs)}"
            return f"NOT VERIFIED: no blob could be compared with the reference{hint}"
        if self.ok:
            return f"OK: all {compared} compared blobs within tolerance ({self.tolerance}){not_compared}"
        return (
            f"FAILED: {len(self.failures)} of {compared} compared blobs out of tolerance "
            f"({self.tolerance}){not_compared}"
        )

    def describe_first_divergence(self) -> list[str]:
        """``first divergence: <blob> (layer <name>, <type>)`` and the details, or nothing."""
        row = self.first_divergence
        if row is None:
            return []
        lines = [f"first divergence: {row.blob} (layer {row.layer}, {row.layer_type})"]
        if len(row.writers) > 1:
            chain = ", then in place by ".join(f"{w.layer} ({w.type})" for w in row.writers)
            lines.append(f"  blob {row.blob!r} is written by {chain}; the reference shows only the final value")
        c = row.comparison
        if c is not None:
            lines.append(
                f"  max|y - ref| = {c.max_abs_error:.4g} at {c.worst_index}: Keras {c.value:.6g}, "
                f"reference {c.reference_value:.6g}; allowed {c.allowed:.3g}"
            )
        else:
            lines.append(f"  {row.note}")
        return lines

    def to_dict(self) -> dict:
        first = self.first_divergence
        return {
            "tool": f"caffe2keras {__version__}",
            "prototxt": self.prototxt,
            "weights": self.weights,
            "reference": {"kind": self.reference_kind, "description": self.reference},
            "data_format": self.data_format,
            "tolerance": {"atol": self.atol, "rtol": self.rtol, "rule": TOLERANCE_RULE},
            "inputs": [{"blob": i.blob, "shape": list(i.shape), "source": i.source} for i in self.inputs],
            "blobs": [dict(index=i, **row.to_dict()) for i, row in enumerate(self.rows)],
            "ok": self.ok,
            "verdict": self.verdict,
            "first_divergence": (
                None if first is None else {"blob": first.blob, "layer": first.layer, "type": first.layer_type}
            ),
            "counts": {
                "blobs": len(self.rows),
                "compared": len(self.compared),
                **{status.value: self.count(status) for status in Status},
            },
            "reference_only_blobs": self.reference_only_blobs,
        }

    def print(self, console=None) -> None:
        """Print the inputs, the table, the verdict and the first divergence with ``rich``."""
        from caffe2keras.verification.console import print_report  # rich only when printing

        print_report(self, console)

    def __repr__(self) -> str:
        return f"<VerifyReport {self.verdict}>"


def _json_float(value: float) -> float | str:
    """JSON has no infinities or NaN: those are written as the strings "inf", "-inf", "nan"."""
    return value if math.isfinite(value) else str(value)


def name_list(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
