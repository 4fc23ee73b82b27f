"""``report.json``: the machine-readable report (schema: ``reports/SCHEMA.md``), and reading it back."""

from __future__ import annotations

import json

from harness._files import parse_json
from harness._records import SCHEMA_VERSION, RunResult

__all__ = ["render_json", "load_json"]


def render_json(result: RunResult) -> str:
    """The JSON text of ``result`` (strict JSON: infinite ULP errors are the string ``"inf"``, never a nan)."""
    return json.dumps(result.to_json(), indent=1, allow_nan=False, sort_keys=False) + "\n"


def load_json(text: str, name: str = "report.json") -> RunResult:
    """A :class:`RunResult` from the text of a report; ``ValueError`` with a one-line message if the text is
    truncated, corrupt, or not a report of this schema version."""
    data = parse_json(text, name)  # strict, depth-bounded: one line naming the file
    try:
        return RunResult.from_json(data)
    except ValueError as exc:
        raise ValueError(f"{name}: {str(exc).splitlines()[0] if str(exc) else 'not a lossfuzz report'}") from None
    except (TypeError, AttributeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{name} does not match schema_version {SCHEMA_VERSION} ({first}); regenerate it") from None
