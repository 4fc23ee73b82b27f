"""Report writers: each turns a :class:`harness.RunResult` into the text of one file and touches no file.

``WRITERS`` maps a report kind to its file name and the dotted ``"module:function"`` path of its renderer,
imported on first use (a deliberate lazy load: the HTML writer needs matplotlib, which only the run and
audit commands use), so importing this package imports neither matplotlib nor any renderer (the CLI
writes the texts, atomically). Schema of ``report.json``: ``reports/SCHEMA.md``. Also the judgements the
writers share and others read (a score's verdict, the mixed-precision comparison, the speed in words).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from harness._records import RunResult

from ._common import UpcastComparison, Verdict, fmt_speed, fmt_ulp, upcast_comparisons, verdict

__all__ = ["WRITERS", "KINDS", "file_name", "renderer", "render", "Verdict", "verdict", "UpcastComparison",
           "upcast_comparisons", "fmt_speed", "fmt_ulp"]

# kind -> (file name, "module:function" of the renderer)
WRITERS: dict[str, tuple[str, str]] = {
    "json": ("report.json", "harness.reports.json_report:render_json"),
    "md": ("report.md", "harness.reports.markdown:render_markdown"),
    "html": ("report.html", "harness.reports.html:render_html"),
}
KINDS: tuple[str, ...] = tuple(WRITERS)


def _check(kind: str) -> tuple[str, str]:
    try:
        return WRITERS[kind]
    except KeyError:
        raise ValueError(f"unknown report kind {kind!r}; choose from {', '.join(WRITERS)}") from None


def file_name(kind: str) -> str:
    """The file a report of this kind is written to (``report.json``, ``report.md``, ``report.html``)."""
    return _check(kind)[0]


def renderer(kind: str) -> Callable[["RunResult"], str]:
    """The render function of this kind, imported now."""
    module, _, function = _check(kind)[1].partition(":")
    return getattr(importlib.import_module(module), function)


def render(result: "RunResult", kind: str) -> str:
    """The text of the ``kind`` report of ``result``."""
    return renderer(kind)(result)
