"""The rich console that reports print to."""

from __future__ import annotations

import os


def report_console():
    """A console on stdout; in a log or a pipe, wide enough to keep one table row per line."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=240)
    return console
