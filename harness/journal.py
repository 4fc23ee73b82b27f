"""The run journal: finished work of a campaign, appended as it finishes, so ``--resume`` loses none of it.

``OUT/journal.jsonl``, one JSON object per line (never pickle), each line flushed and fsync'ed:
a header ``{"lossfuzz_journal": 1, "settings": ..., "corpus": <fingerprint>}``, then
``{"score": <score JSON>, "worst": [<example>...]}`` per family x candidate x dtype and
``{"family", "dtype", "curves": [...]}`` per sweep and ``{"error_map": <error map JSON>}`` per error map.
A last line cut short by a kill is ignored; any other damage is a one-line error. The journal is removed
once the reports are written.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ._files import parse_json, read_text
from ._records import Curve, ErrorMap, Score
from .campaign import Resume
from .corpus import example_from_json, example_to_json
from .strategies import Example

__all__ = ["JOURNAL_NAME", "JsonLines", "Journal", "read_journal", "corpus_fingerprint"]

JOURNAL_NAME = "journal.jsonl"
_VERSION = 1


def corpus_fingerprint(corpus: dict[tuple[str, str], list[Example]]) -> str:
    """A digest of the corpus a run started from (a resumed run must start from the same one)."""
    digest = hashlib.sha256()
    for key in sorted(corpus):
        digest.update(repr(key).encode())
        for e in corpus[key]:
            digest.update(repr(e.key).encode())
    return digest.hexdigest()[:16]


class JsonLines:
    """An append-only journal of JSON lines, each flushed and fsync'ed as it is written (the run's and the
    sweep's): ``fresh=True`` starts a new file with ``header`` as its first line, else it appends to one,
    after dropping a last line cut short by a kill (so appending starts on a clean line)."""

    def __init__(self, path: Path, header: dict[str, Any], fresh: bool = True) -> None:
        self.path = path
        if not fresh:
            data = path.read_bytes()
            with open(path, "r+b") as raw:
                raw.truncate(data.rfind(b"\n") + 1)
        self._handle = open(path, "w" if fresh else "a", encoding="utf-8")
        if fresh:
            self._write(header)

    def _write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, allow_nan=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self, remove: bool = False) -> None:
        self._handle.close()
        if remove:
            self.path.unlink(missing_ok=True)


class Journal(JsonLines):
    """The run's journal; ``fresh=True`` starts a new one (header first), else appends to one."""

    def __init__(self, path: Path, settings: dict[str, Any], fingerprint: str, fresh: bool = True) -> None:
        super().__init__(path, {"lossfuzz_journal": _VERSION, "settings": settings, "corpus": fingerprint}, fresh)

    def scored(self, score: Score, worst: list[Example]) -> None:
        self._write({"score": score.to_json(), "worst": [example_to_json(e) for e in worst]})

    def swept(self, family: str, dtype: str, curves: list[Curve]) -> None:
        self._write({"family": family, "dtype": dtype, "curves": [c.to_json() for c in curves]})

    def mapped(self, error_map: ErrorMap) -> None:
        self._write({"error_map": error_map.to_json()})


def read_journal(path: Path, settings: dict[str, Any], fingerprint: str) -> Resume:
    """Finished work recorded in ``path`` by a run with the same settings and corpus; one-line errors."""
    if not path.exists():
        raise ValueError(f"nothing to resume: {path} does not exist; run without --resume")
    lines = read_text(path, f"journal {path}").split("\n")
    complete = lines[:-1]  # the text after the last newline is a record cut short (or empty)
    records = []
    for number, line in enumerate(complete, start=1):
        record = parse_json(line, f"journal {path} line {number}", "delete it and run without --resume")
        if not isinstance(record, dict):
            raise ValueError(f"journal {path} line {number} is not a record (a JSON object); delete it and run without --resume")
        records.append(record)
    if not records or records[0].get("lossfuzz_journal") != _VERSION:
        raise ValueError(f"journal {path} has no lossfuzz header; delete it and run without --resume")
    header = records[0]
    if header.get("settings") != settings:
        raise ValueError(f"journal {path} was written with other settings; resume with the same options or run without --resume")
    if header.get("corpus") != fingerprint:
        raise ValueError(f"the corpus changed since journal {path} was written; run without --resume")
    resume = Resume()
    try:
        for record in records[1:]:
            if "score" in record:
                score = Score.from_json(record["score"])
                worst = [example_from_json(item, score.family, score.dtype) for item in record["worst"]]
                resume.scores[score.key] = (score, worst)
            elif "error_map" in record:
                mapped = ErrorMap.from_json(record["error_map"])
                resume.maps[(mapped.family, mapped.dtype)] = mapped
            else:
                resume.curves[(record["family"], record["dtype"])] = [Curve.from_json(c) for c in record["curves"]]
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ValueError(f"journal {path} has a malformed record ({type(exc).__name__}: {exc}); delete it and run without --resume") from None
    return resume
