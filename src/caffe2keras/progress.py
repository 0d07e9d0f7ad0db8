"""Progress bars (rich, on stderr) for the phases of a conversion: reading, building, saving.

A disabled :class:`Progress` does nothing and never imports rich, so the
phases can report unconditionally.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


class Progress:
    """Bars on stderr while in a ``with`` block, one per :meth:`phase`; nothing when not ``enabled``."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._bars = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bars

            self._bars = Bars(
                TextColumn("{task.description:<10}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self._bars.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    @contextlib.contextmanager
    def phase(self, description: str, total: float | None, detail: str = "") -> Iterator[Callable[..., None]]:
        """A bar for one phase; yields ``advance(amount=1, detail=None)``."""
        if self._bars is None:
            yield _ignore
            return
        from caffe2keras.console import console_text  # details name files: never markup or escapes

        bars = self._bars
        detail = console_text(detail)
        task = bars.add_task(description, total=total, detail=detail)

        def advance(amount: float = 1, detail: str | None = None) -> None:
            bars.update(task, advance=amount, **({} if detail is None else {"detail": console_text(detail)}))

        yield advance
        bars.update(task, total=total or 1, completed=total or 1, detail=detail)


def _ignore(amount: float = 1, detail: str | None = None) -> None:
    pass
