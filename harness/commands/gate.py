"""``lossfuzz gate``: the CI regression gate. Re-run a baseline's fixed-seed campaign, compare, exit 0/1/2.

The comparison rules are in :mod:`harness.gate`; this module reads the baseline and the corpus, runs the
campaign, writes ``report.md`` (a Gate section on top of the run's report), ``report.json``, the JUnit XML and,
with ``--update-baseline``, the new baseline (all atomically), and prints what got worse.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Mapping

from ..options import (Option, Settings, UsageError, add_options, import_from_cwd, options_for, reading_input,
                       resolve)
from .run import locked_out, read_corpus, writable_dir

__all__ = ["add_parser", "Baseline", "load_baseline", "gate_settings", "render_baseline", "thresholds_in_effect",
           "EXIT_PASS", "EXIT_REGRESSION", "EXIT_USAGE"]

EXIT_PASS, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2

# The campaign options whose default is the baseline's own setting (given: they override it).
_FROM_BASELINE = ("seed", "examples", "families", "candidates", "dtypes", "quantities")

_DESCRIPTION = """\
Replay a baseline's fixed-seed campaign (its seed, examples, families, candidates, dtypes and quantities; no
timing) with the baseline's worst-case inputs first, compare every family x candidate x dtype x quantity (the
loss, and the gradient with respect to the inputs, against the same thresholds) with the baseline and print
what got worse. Compared, for the whole score and for each regime: max, p99 and median ULP (default: may grow
to max(1.5 x baseline, 1 ULP)), mean bits (+1 bit), and every outcome count as a rate per example: non-finite
results on finite inputs, raised, flushed subnormals and unsettled oracle values may not grow (0 stays 0), the
other non-finite classes by 1% of the examples. Set thresholds with --threshold (or in the baseline's "gate"
entry). Also a regression: a candidate that no longer runs or rejects the dtype, or a missing baseline key.
New non-finite results on finite inputs are a warning with --allow-new-nonfinite. Speed is never compared.
Writes --out/report.md (for a CI job summary), --out/report.json and, with --junit, JUnit XML (one test case
per family x candidate x dtype). The same code and seed give the same figures: the gate does not flake."""

_EPILOG = """\
exit codes: 0 every check passes (or --update-baseline wrote the baseline), 1 at least one regression,
2 usage or configuration error (missing or malformed baseline, bad option), 3 internal error (a bug in
lossfuzz: its traceback is shown), 130 interrupted.

examples:
  lossfuzz gate --update-baseline --baseline reports/baseline.json        # write the first baseline
  lossfuzz gate --baseline reports/baseline.json --junit reports/junit.xml
  lossfuzz gate --baseline b.json --threshold median_ulp=2x,4ulp --threshold soft.max_ulp=off --threshold nan=0.5%
  lossfuzz gate --baseline b.json --function mypkg.losses:bce --family sigmoid_ce --name mine"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gate",
        help="CI regression gate: compare with a baseline report; exit 0 pass, 1 regression, 2 usage error",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(p, "gate")
    p.set_defaults(handler=_gate)


# ------------------------------------------------------------------------------------------------ baseline


@dataclass(frozen=True, slots=True)
class Baseline:
    """A loaded baseline: the report, and the replay corpus it was computed on (None: not recorded)."""

    result: Any  # RunResult
    stored: dict | None
    name: str
    thresholds: dict = field(default_factory=dict)  # set in its "gate" entry, by key (harness.thresholds)


def load_baseline(path: str | Path) -> Baseline:
    """Read and check a baseline; a one-line :class:`UsageError` when it is missing, unreadable or malformed."""
    with reading_input():
        return _load_baseline(Path(path))


def _load_baseline(p: Path) -> Baseline:
    import oracles

    from ..gate import read_gate_entry, read_gate_thresholds
    from ..reports.json_report import load_json

    from .._files import parse_json, read_text

    name = str(p)
    if not p.exists():
        raise ValueError(f"baseline {name} does not exist; write one with: lossfuzz gate --update-baseline --baseline {name}")
    if p.is_dir():
        raise ValueError(f"baseline {name} is a folder; pass the report file, e.g. --baseline {p / 'baseline.json'}")
    text = read_text(p, f"baseline {name}")  # a regular file of bounded size (never /dev/zero or a FIFO)
    result = load_json(text, f"baseline {name}")
    if result.partial:
        raise ValueError(f"baseline {name} is a partial report (its run was interrupted); regenerate it with"
                         f" lossfuzz gate --update-baseline --baseline {name}")
    for s in result.scores:
        if not isinstance(s.family, str) or s.family not in oracles.FAMILIES:
            raise ValueError(f"baseline {name}: result family {s.family!r} is not one of: {', '.join(oracles.FAMILIES)}")
        if not isinstance(s.dtype, str) or s.dtype not in oracles.FORMATS:
            raise ValueError(f"baseline {name}: result dtype {s.dtype!r} is not one of: {', '.join(oracles.FORMATS)}")
        if not isinstance(s.candidate, str) or not s.candidate:
            raise ValueError(f"baseline {name}: a result without a candidate name; regenerate it")
        if s.max_ulp is not None and not isinstance(s.max_ulp, (int, float)):
            raise ValueError(f"baseline {name}: max_ulp {s.max_ulp!r} of {s.family}/{s.candidate}/{s.dtype} is not a number")
        if not isinstance(s.counts, dict) or not all(isinstance(v, int) for v in s.counts.values()):
            raise ValueError(f"baseline {name}: counts of {s.family}/{s.candidate}/{s.dtype} are not integers")
    entry = parse_json(text, f"baseline {name}").get("gate")
    stored = None if entry is None else read_gate_entry(entry, f"baseline {name}")
    return Baseline(result, stored, name, read_gate_thresholds(entry, f"baseline {name}"))


def _setting(baseline: Baseline, option: Option) -> Any:
    """A setting of the baseline, read as its option reads it (one-line error naming the baseline)."""
    key = option.name
    value = baseline.result.settings.get(key) if isinstance(baseline.result.settings, dict) else None
    if value is None:
        return None
    if isinstance(value, list) and not value:
        return ()  # e.g. no built-in candidates: a baseline of a user's function only
    try:
        if isinstance(option.default, tuple) and not isinstance(value, list):
            raise UsageError(f"expected a list of {key}")
        return option.parse(value)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"baseline {baseline.name}: settings.{key} = {value!r} is not valid ({exc}); regenerate it") from None


def _baseline_settings(baseline: Baseline) -> dict[str, Any]:
    """The campaign settings a baseline records; those it lacks: what its results cover."""
    from .._records import QUANTITIES
    from ..candidates import CANDIDATE_NAMES

    table = {o.name: o for o in options_for("run")}
    base = {key: _setting(baseline, table[key]) for key in (*_FROM_BASELINE, "shrink")}
    scores = baseline.result.scores
    if base["families"] is None:
        base["families"] = tuple(dict.fromkeys(s.family for s in scores))
    if base["dtypes"] is None:
        base["dtypes"] = tuple(dict.fromkeys(s.dtype for s in scores))
    if base["candidates"] is None:
        base["candidates"] = tuple(dict.fromkeys(s.candidate for s in scores if s.candidate in CANDIDATE_NAMES))
    if base["quantities"] is None:  # a report of a default run (both), or of a version without gradients (loss)
        base["quantities"] = tuple(q for q in QUANTITIES if any(s.quantity == q for s in scores)) or None
    return base


def gate_settings(baseline: Baseline | None, options: Mapping[str, Any], function_family: str | None = None):
    """The campaign settings of the gate: each option given on the command line (``options``, from
    :func:`harness.options.resolve` of the gate face: None where not given), else the baseline's, else the
    ``lossfuzz run`` default (no built-in candidates when only a function is gated); timing off. Also
    returns notes for settings that differ from the baseline's (figures then are not exactly comparable)."""
    run = {o.name: o.default for o in options_for("run")}
    base = _baseline_settings(baseline) if baseline is not None else {}
    fallback = {**run, "families": (function_family,) if function_family else run["families"],
                "candidates": () if function_family else run["candidates"]}
    chosen: dict[str, Any] = {}
    notes: list[str] = []
    for key in _FROM_BASELINE:
        given = options.get(key)
        value = given if given is not None else base.get(key) if base.get(key) is not None else fallback[key]
        chosen[key] = tuple(value) if isinstance(value, (list, tuple)) else value
        if given is not None and key in ("seed", "examples") and base.get(key) is not None and given != base[key]:
            notes.append(f"--{key} {given} differs from the baseline's {base[key]}: the search explores other examples,"
                         " so figures are not exactly comparable")
    if function_family:
        chosen["families"] = tuple(dict.fromkeys(chosen["families"] + (function_family,)))
    shrink = True if base.get("shrink") is None else base["shrink"]
    return Settings(**chosen, speed_elements=0, shrink=shrink), notes


def _in_scope(score, settings) -> bool:
    from ..candidates import CANDIDATE_NAMES

    if score.family not in settings.families or score.dtype not in settings.dtypes or score.quantity not in settings.quantities:
        return False
    return score.candidate in settings.candidates or score.candidate not in CANDIDATE_NAMES


def render_baseline(result, corpus: dict, thresholds: Mapping[str, Any] | None = None) -> str:
    """The text of a baseline written by the gate: the report's JSON plus its replay corpus and the
    thresholds set for it (``"gate"``)."""
    from ..gate import gate_entry

    return json.dumps({**result.to_json(), "gate": gate_entry(corpus, thresholds)}, indent=1, allow_nan=False) + "\n"


def thresholds_in_effect(baseline: Baseline | None, options: Mapping[str, Any]) -> dict[str, Any]:
    """The thresholds set for this gate, by key: the baseline's, replaced key by key by ``--threshold``
    (``--max-ulp-regression F`` is ``--threshold max_ulp=Fx``); the others keep their defaults."""
    from ..thresholds import DEFAULT_THRESHOLDS, Threshold

    given = dict(options["thresholds"] or {})
    factor = options["max_ulp_regression"]
    if factor is not None:
        if "max_ulp" in given:
            raise UsageError("--max-ulp-regression and --threshold max_ulp=... both set the max ULP threshold; pass one")
        given["max_ulp"] = Threshold("ulp", factor=factor, floor=DEFAULT_THRESHOLDS["max_ulp"].floor)
    if options["fail_on_new_nonfinite"] and options["allow_new_nonfinite"]:
        raise UsageError("--fail-on-new-nonfinite and --allow-new-nonfinite contradict each other; pass one (failing is"
                         " the default)")
    return {**(baseline.thresholds if baseline is not None else {}), **given}


# ----------------------------------------------------------------------------------------------- running


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    from rich.console import Console

    from ..progress import progress_bar

    with progress_bar(Console(stderr=True), enabled=enabled, transient=True) as bar:
        yield bar.hooks(), bar.reset


# How a user's function is called: only with --function.
_FUNCTION_OPTIONS = ("family", "takes", "inputs", "reduction", "kwargs", "name", "timeout", "memory_mb")


def _function_candidate(options: Mapping[str, Any]) -> Any:
    """The user's function to gate with the built-ins (``--function``), or None."""
    if options["function"] is None:
        table = {o.name: o for o in options_for("gate")}
        given = [table[k].flag for k in _FUNCTION_OPTIONS if options[k] != table[k].default]
        if given:
            raise UsageError(f"{given[0]} describes a function to gate: pass --function MODULE:FUNCTION with it")
        return None
    if not options["family"]:
        raise UsageError("--function needs --family FAMILY: the loss family the function computes (e.g. sigmoid_ce)")
    from ..adapters import function_candidate

    import_from_cwd()  # as `lossfuzz audit`: modules of the current folder import
    call = {k: options[k] for k in _FUNCTION_OPTIONS if k != "family"}
    with reading_input():
        return function_candidate(options["function"], options["family"], **call)


def _read_baseline(path: Path, update: bool) -> Baseline | None:
    """The baseline at ``path``; with --update-baseline, None when there is none (or an unusable one, said on
    stderr and replaced)."""
    if not path.exists() and update:
        return None
    try:
        return load_baseline(path)
    except UsageError as exc:
        if not update or path.is_dir():
            raise
        print(f"lossfuzz gate: replacing an unusable baseline: {str(exc).splitlines()[0]}", file=sys.stderr)
        return None


def _scoped(baseline: Baseline | None, settings: Settings, notes: list[str]):
    """The baseline's results within the chosen families, candidates and dtypes (None without a baseline)."""
    if baseline is None:
        return None
    kept = tuple(s for s in baseline.result.scores if _in_scope(s, settings))
    if len(kept) < len(baseline.result.scores):
        notes.append(f"{len(baseline.result.scores) - len(kept)} baseline results outside the chosen families,"
                     " candidates, dtypes and quantities are not compared")
    return replace(baseline.result, scores=kept)


@dataclass
class _Run:
    """The gate's campaign: its settings, the corpus replayed, what the corpus added, and the result."""

    settings: Settings
    notes: list[str]
    scoped: Any  # the baseline's RunResult in scope, or None
    corpus: dict
    fresh: dict
    current: Any = None


def _campaign(options: Mapping[str, Any], baseline: Baseline | None, extra_corpus: dict, functions: list) -> _Run:
    """Run the gate's campaign (again with the new worst cases when a baseline is written: the stored
    corpus must hold every worst case of the stored figures)."""
    from ..campaign import run_campaign
    from ..gate import replay_corpus

    settings, notes = gate_settings(baseline, options, functions[0].family if functions else None)
    pairs = [(f, d) for f in settings.families for d in settings.dtypes]
    scoped = _scoped(baseline, settings, notes)
    corpus, fresh = replay_corpus(pairs, stored=baseline.stored if baseline else None, baseline=scoped,
                                  extra=extra_corpus)
    run = _Run(settings, notes, scoped, corpus, fresh)
    from ..progress import stop_on_signals

    with _progress(options["progress"]) as (hooks, reset), stop_on_signals() as stop:
        hooks.stop = stop  # SIGINT and SIGTERM: stop after the piece in hand, write nothing, exit 130
        run.current, _ = run_campaign(settings, corpus, hooks, extra=functions)
        if options["update_baseline"] and not run.current.partial:
            more, added = replay_corpus(pairs, stored=corpus, baseline=run.current)
            if any(added.values()):
                reset("again with the new worst cases")
                run.current, _ = run_campaign(settings, more, hooks, extra=functions)
                run.fresh = {k: fresh.get(k, 0) + added.get(k, 0) for k in set(fresh) | set(added)}
                run.corpus = more
    return run


def _check_outputs(options: Mapping[str, Any], baseline_path: Path) -> None:
    """Every file the gate will write, checked before the campaign: --junit and (with --update-baseline)
    --baseline must be files in writable folders; a one-line :class:`UsageError` otherwise."""
    wanted = [("--junit", options["junit"])] + ([("--baseline", str(baseline_path))] if options["update_baseline"] else [])
    for flag, given in wanted:
        if given is None:
            continue
        target = Path(given)
        if target.is_dir():
            raise UsageError(f"{flag} {given} is a folder; pass a file path, e.g. {flag} {target / 'junit.xml' if flag == '--junit' else target / 'baseline.json'}")
        if target.exists() and not target.is_file():
            raise UsageError(f"{flag} {given} is not a regular file; pass a file path")
        writable_dir(target.parent if str(target.parent) else Path("."))


def _gate(args: argparse.Namespace) -> int:
    from ..gate import check_run

    options = resolve("gate", args)
    baseline_path = Path(options["baseline"])
    _check_outputs(options, baseline_path)
    baseline = _read_baseline(baseline_path, options["update_baseline"])
    extra_corpus = {}
    if options["corpus"] is not None:
        if not Path(options["corpus"]).is_dir():
            raise UsageError(f"--corpus {options['corpus']} is not a folder of corpus files (e.g. reports/corpus)")
        extra_corpus = read_corpus(Path(options["corpus"]))
    thresholds = thresholds_in_effect(baseline, options)  # bad combinations are usage errors before the campaign
    out = locked_out(options["out"])
    function = _function_candidate(options)
    functions = [function] if function is not None else []
    try:
        run = _campaign(options, baseline, extra_corpus, functions)
    finally:
        for c in functions:
            c.close()
    if run.current.partial:
        print("lossfuzz gate: interrupted (Ctrl-C or SIGTERM); nothing written")
        return 130
    current = run.current
    if function is not None:  # as `lossfuzz audit` words them: replay commands that call the function by its spec
        from ..auditing import replay_words, rewrite_replays

        current = rewrite_replays(current, function.name, replay_words(function.target, options["takes"],
                                                                         options["inputs"], options["kwargs"]))
    result = check_run(run.scoped if run.scoped is not None else replace(current, scores=()), current,
                       thresholds=thresholds, fail_on_new_nonfinite=not options["allow_new_nonfinite"],
                       slack=run.fresh if baseline is not None else 0)
    exact = baseline is None or (baseline.stored is not None and not any(run.fresh.values()))
    result = replace(result, notes=tuple(run.notes) + result.notes, exact=exact)
    _write(options, baseline_path, out, result, current, run.corpus, thresholds)
    return EXIT_PASS if options["update_baseline"] else result.exit_code


def _write(options: Mapping[str, Any], baseline_path: Path, out: Path, result, current, corpus: dict,
           thresholds: Mapping[str, Any]) -> None:
    """Write the baseline (with --update-baseline, keeping the thresholds set), report.md, report.json and the
    JUnit XML; print the summary."""
    from .._files import abandon_on_signals, write_atomic, write_set
    from ..reports import render
    from ..reports.gate_markdown import render_gate_markdown

    written: list[Path] = []
    updated = str(baseline_path) if options["update_baseline"] else None
    with abandon_on_signals():  # SIGINT/SIGTERM while writing: one line, exit 130/143, no half-written file
        if options["update_baseline"]:
            writable_dir(baseline_path.parent if str(baseline_path.parent) else Path("."))
            written.append(write_atomic(baseline_path, render_baseline(current, corpus, thresholds)))
        markdown = render_gate_markdown(result, str(baseline_path), updated=updated) + "\n" + render(current, "md")
        texts = {"report.md": markdown}
        if (out / "report.json").resolve() != baseline_path.resolve():
            texts["report.json"] = render(current, "json")
        written.extend(write_set(out, texts))  # the report set goes in whole
        if options["junit"]:
            from ..junit import render_junit

            junit = Path(options["junit"])
            writable_dir(junit.parent if str(junit.parent) else Path("."))
            written.append(write_atomic(junit, render_junit(result)))
    _print_summary(result, str(baseline_path), updated)
    print(f"wrote {', '.join(str(p) for p in written)}")


def _say(text: str) -> None:
    """Print a summary line; candidate names and cases come from the baseline file, so control characters
    are escaped."""
    from .._text import printable

    print(printable(text))


def _case_line(label: str, case) -> str:
    from .._values import fmt_ulp

    return (f"{label}: got {case.got}, exact {case.exact} ({fmt_ulp(case.ulp)} ULP, {case.outcome});"
            f" replay: {case.replay}")


def _print_summary(result, baseline: str, updated: str | None) -> None:
    tally = result.tally()
    threshold = result.threshold_summary()
    if updated is not None:
        _say(f"lossfuzz gate: wrote the baseline {updated} ({len(result.checks)} results)")
    elif result.failures:
        _say(f"lossfuzz gate: FAILED: {len(result.failures)} of {len(result.checks)} checks got worse against {baseline}"
              f" ({threshold})")
    else:
        _say(f"lossfuzz gate: passed: {len(result.checks)} checks, none got worse against {baseline} ({threshold})")
    for check in result.failures + result.warnings:
        label = check.status.replace("_", " ") if check.failed else "warning: " + check.status.replace("_", " ")
        # one line per statistic that got worse (its regime, baseline → now, limit and threshold), then the case
        # behind the first, and the case behind each other one that shows something else
        _say(f"  {label}: {check.subject}: {check.reasons[0]}")
        for reason in check.reasons[1:]:
            _say(f"    {reason}")
        if check.case is not None:
            _say("    " + _case_line(check.case_label, check.case))
        shown = [check.case]
        for c in check.worse:
            if c.case is not None and all(c.case is not s for s in shown):
                shown.append(c.case)
                _say(f"    {c.words}: " + _case_line("worst case", c.case))
    if result.warnings and not result.fail_on_new_nonfinite:
        _say("  (new non-finite results on finite inputs are warnings with --allow-new-nonfinite)")
    if tally["new"]:
        _say(f"  {tally['new']} results are new (not in the baseline)")
    for note in result.notes:
        _say(f"  note: {note}")
