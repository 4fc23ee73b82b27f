"""The progress bar every command draws on stderr (rich), fed by the campaign's :class:`Progress` hooks."""

from __future__ import annotations

import _thread
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from .campaign import Progress as Hooks

__all__ = ["ProgressBar", "progress_bar", "counting_bar", "stop_on_signals"]


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

    # Only on a terminal: in CI logs and pipes a bar is noise. A disabled bar is never started, since rich
    # 14 and older still print a newline when a disabled live display stops (seen in the oldest env).
    shown = enabled and console.is_terminal
    bar = Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, disable=not shown, transient=transient)
    if not shown:
        yield ProgressBar(bar, bar.add_task("starting", total=None))
        return
    with bar:
        yield ProgressBar(bar, bar.add_task("starting", total=None))


@contextmanager
def counting_bar(console: Any, total: int, unit: str, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A bar of ``total`` items (``unit``: their name, e.g. cases) with the rate and the time left; yields
    the function that advances it by a number of items. Shown only on a terminal, as :func:`progress_bar`."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    shown = enabled and console.is_terminal
    rate = TextColumn("{task.fields[rate]}")
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"), rate,
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=not shown)
    task = bar.add_task(f"{total:,} {unit}", total=total, rate="")
    began = time.perf_counter()
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        speed = done[0] / max(time.perf_counter() - began, 1e-9)
        bar.update(task, advance=n, rate=f"{speed:,.0f} {unit}/s")

    if not shown:
        yield advance
        return
    with bar:
        yield advance


@contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """SIGINT and SIGTERM ask the campaign to stop after the piece of work in hand (it then reports what is
    finished, marked partial); a second signal interrupts at once. Yields the question the campaign asks."""
    requested = threading.Event()

    def handler(signum: int, frame: Any) -> None:  # noqa: ARG001
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.unraisablehook

    def unraisable(info: Any) -> None:
        # The second signal's KeyboardInterrupt can land in a weakref callback or a __del__, where Python
        # prints it as "Exception ignored in ..." and goes on: raise it again in the main code instead, from
        # a thread once this hook has returned (should it land in a callback again, this repeats).
        if isinstance(info.exc_value, KeyboardInterrupt):
            threading.Thread(target=_interrupt_soon, daemon=True).start()
            return
        hook(info)

    sys.unraisablehook = unraisable
    try:
        yield requested.is_set
    finally:
        sys.unraisablehook = hook
        for sig, old in previous.items():
            signal.signal(sig, old)


def _interrupt_soon() -> None:
    time.sleep(0.01)  # the main thread is back in its own code by then
    _thread.interrupt_main()
