"""JUnit XML of a gate result: one test case per family x candidate x dtype x quantity, so CI systems list each one.

``<testsuites>`` holds one ``<testsuite name="lossfuzz gate">``; each :class:`~harness.gate.Check` is a
``<testcase classname="FAMILY" name="CANDIDATE[DTYPE]">`` (``CANDIDATE[DTYPE, gradient]`` for a gradient row), with a ``<failure>`` when it fails the gate
(``message``: what got worse; text: old and new figures, one line per statistic that got worse with its
regime, limit, threshold and replay command, and the worst case) and a
``<system-out>`` line otherwise. No timings: the same result gives the same bytes. Text from candidates and
users is escaped by ElementTree, and characters XML 1.0 cannot hold are replaced.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ._values import fmt_ulp
from .gate import Check, GateResult
from .outcomes import case_error

__all__ = ["render_junit", "SUITE_NAME"]

SUITE_NAME = "lossfuzz gate"

# Characters XML 1.0 does not allow (control characters other than tab, newline, carriage return;
# surrogates; U+FFFE/U+FFFF).
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: object) -> str:
    return _INVALID.sub("\ufffd", str(text))


def _details(check: Check, result: GateResult) -> str:
    lines = [
        f"{check.family} / {check.candidate} / {check.dtype}{'' if check.quantity == 'loss' else ' / ' + check.quantity}:"
        f" {check.status}",
        *(f"- {r}" for r in check.reasons),
        f"max ULP: baseline {fmt_ulp(check.old_max_ulp)}, now {fmt_ulp(check.new_max_ulp)}"
        + (f", limit {fmt_ulp(check.limit)} ({result.threshold('max_ulp')})" if check.limit is not None else ""),
    ]
    if check.old_nonfinite is not None or check.new_nonfinite is not None:
        show = lambda v: "—" if v is None else str(v)  # noqa: E731
        lines.append(f"non-finite results on finite inputs: baseline {show(check.old_nonfinite)}, now {show(check.new_nonfinite)}")
    for w in check.worse:  # each statistic that got worse: regime, baseline → now, limit, threshold
        lines.append(f"{w.statistic} [{w.regime}]: {w.change}, limit {w.shown_limit} ({w.threshold})"
                     + (f"; replay: {w.case.replay}" if w.case is not None else ""))
    if check.case is not None:
        c = check.case
        lines += [
            f"{check.case_label}: inputs {', '.join(c.inputs)}; labels {', '.join(c.labels)}",
            f"  got {c.got}, exact {c.exact} (correctly rounded {c.rounded}): {case_error(c)}",
            f"  replay: {c.replay}",
        ]
    return "\n".join(lines)


def render_junit(result: GateResult) -> str:
    """The JUnit XML text of ``result`` (UTF-8, with an XML declaration)."""
    failures = len(result.failures)
    root = ET.Element("testsuites", {"name": "lossfuzz", "tests": str(len(result.checks)), "failures": str(failures),
                                     "errors": "0"})
    suite = ET.SubElement(root, "testsuite", {"name": SUITE_NAME, "tests": str(len(result.checks)),
                                              "failures": str(failures), "errors": "0", "skipped": "0"})
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "max_ulp_regression", "value": f"{result.max_ulp_regression:g}x"})
    ET.SubElement(props, "property", {"name": "fail_on_new_nonfinite", "value": str(result.fail_on_new_nonfinite).lower()})
    ET.SubElement(props, "property", {"name": "exact", "value": str(result.exact).lower()})
    for key, threshold in result.thresholds.items():  # those set by flag or baseline (the rest: the defaults)
        ET.SubElement(props, "property", {"name": f"threshold.{_clean(key)}", "value": threshold.spec})
    for check in result.checks:
        case = ET.SubElement(suite, "testcase", {"classname": _clean(check.family), "name": _clean(check.name)})
        if check.failed:
            failure = ET.SubElement(case, "failure", {"message": _clean(f"{check.status}: {check.summary}"),
                                                      "type": check.status})
            failure.text = _clean(_details(check, result))
        else:
            out = ET.SubElement(case, "system-out")
            out.text = _clean(_details(check, result))
    ET.indent(root, space=" ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
