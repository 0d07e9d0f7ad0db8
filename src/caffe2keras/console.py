"""The rich console that reports print to, and text from files made safe to print on a terminal."""

from __future__ import annotations

import os
import re

# Control characters (ANSI escape sequences start with ESC), C1 controls, bidirectional overrides
# and Unicode line separators: printed raw, text from a file could rewrite the user's terminal or
# disguise itself. Tabs and newlines are left for messages that span lines.
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def printable(text) -> str:
    """``text`` with every character a terminal would act on written as an escape (``\\x1b``)."""
    return _HIDDEN.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), str(text))


def console_text(text) -> str:
    """``text`` for rich: printable, and its square brackets never read as markup (``[/x]``)."""
    from rich.markup import escape

    return escape(printable(text))


def report_console():
    """A console on stdout; in a log or a pipe, wide enough to keep one table row per line."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=240)
    return console
