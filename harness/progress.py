"""The progress bar every command draws on stderr (rich), fed by the campaign's :class:`Progress` hooks."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from .campaign import Progress as Hooks

__all__ = ["ProgressBar", "progress_bar"]


class ProgressBar:
    """One bar: the campaign announces each step; the bar advances when the next one starts."""

    def __init__(self, bar: Any, task: Any) -> None:
        self._bar, self._task, self._started = bar, task, False

    def step(self, description: str) -> None:
        if self._started:
            self._bar.advance(self._task)
        self._started = True
        self._bar.update(self._task, description=description[:40])

    def total(self, n: int) -> None:
        self._bar.update(self._task, total=n)

    def reset(self, label: str) -> None:
        """Start over (a second campaign in the same command)."""
        self._started = False
        self._bar.reset(self._task, description=label, total=None)

    def finish(self) -> None:
        if self._started:
            self._bar.advance(self._task)

    def hooks(self, **extra: Any) -> Hooks:
        """Campaign hooks drawing on this bar (``extra``: more hooks, e.g. the journal's)."""
        return Hooks(total=self.total, step=self.step, **extra)


@contextmanager
def progress_bar(console: Any, *, enabled: bool = True, transient: bool = False) -> Iterator[ProgressBar]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, disable=not enabled, transient=transient)
    with bar:
        yield ProgressBar(bar, bar.add_task("starting", total=None))
