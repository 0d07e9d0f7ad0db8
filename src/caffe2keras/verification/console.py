"""The report as a rich table, in a terminal or a notebook."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from caffe2keras.verification.status import Status

if TYPE_CHECKING:  # the report imports this module to print itself
    from caffe2keras.verification.report import VerifyReport

PathLike = str | os.PathLike
InputSpec = np.ndarray | PathLike
Inputs = InputSpec | Mapping[str, InputSpec] | None


STATUS_STYLE = {
    Status.OK: ("ok", "green"),
    Status.DIVERGED: ("DIVERGED", "bold red"),
    Status.SHAPE_MISMATCH: ("SHAPE MISMATCH", "bold red"),
    Status.NOT_COMPARED: ("not compared", "yellow"),
    Status.INPUT: ("input", "dim"),
}


def _error_text(value: float | None) -> str:
    return "" if value is None else f"{value:.2e}"


def print_report(report: VerifyReport, console=None) -> None:
    from rich.table import Table

    from caffe2keras.console import console_text, report_console

    if console is None:
        console = report_console()
    console.print(
        f"[bold]{console_text(report.prototxt)}[/]"
        + ("" if report.weights is None else f" + {console_text(report.weights)}")
        + f" against {console_text(report.reference)}, {report.data_format}"
    )
    for info in report.inputs:
        console.print(f"input {console_text(info.blob)} {info.shape}: {console_text(info.source)}")
    table = Table(show_edge=False, pad_edge=False)
    for title, justify in (
        ("#", "right"),
        ("blob", "left"),
        ("layer", "left"),
        ("type", "left"),
        ("shape", "left"),
        ("max abs err", "right"),
        ("max rel err", "right"),
        ("status", "left"),
    ):
        table.add_column(title, justify=justify)
    with_notes = any(row.note for row in report.rows)
    if with_notes:
        table.add_column("note", style="dim")
    for index, row in enumerate(report.rows):
        label, style = STATUS_STYLE[row.status]
        c = row.comparison
        cells = [
            str(index),
            console_text(row.blob),
            console_text(" → ".join(w.layer for w in row.writers)),
            console_text(" → ".join(w.type for w in row.writers)),
            "×".join(map(str, row.shape)),
            _error_text(c.max_abs_error if c else None),
            _error_text(c.max_rel_error if c else None),
            f"[{style}]{label}[/]",
        ]
        table.add_row(*cells, *([console_text(row.note)] if with_notes else []))
    console.print(table)
    style = "bold green" if report.ok else "bold red"
    console.print(f"[{style}]{console_text(report.verdict)}[/]")
    for line in report.describe_first_divergence():
        console.print(console_text(line))
