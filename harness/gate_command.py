"""``lossfuzz gate``: the CI regression gate. Re-run a baseline's fixed-seed campaign, compare, exit 0/1/2.

The comparison rules are in :mod:`harness.gate`; this module reads the baseline and the corpus, runs the
campaign, writes ``report.md`` (a Gate section on top of the run's report), ``report.json``, the JUnit XML and,
with ``--update-baseline``, the new baseline (all atomically), and prints what got worse.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from .options import FUNCTION_OPTIONS, RUN_OPTIONS, Option, add_options

__all__ = ["add_parser", "Baseline", "load_baseline", "gate_settings", "render_baseline", "EXIT_PASS", "EXIT_REGRESSION",
           "EXIT_USAGE"]

EXIT_PASS, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2

# The campaign options whose default is the baseline's own setting (given: they override it).
_FROM_BASELINE = ("seed", "examples", "families", "candidates", "dtypes")

_DESCRIPTION = """\
Replay a baseline's fixed-seed campaign (its seed, examples, families, candidates and dtypes; no timing) with
the baseline's worst-case inputs first, compare every family x candidate x dtype with the baseline and print
what got worse. A regression: the max ULP error grew above max(FACTOR x baseline, 1 ULP), a candidate no
longer runs, rejects the dtype or newly raises, or a baseline key is missing. More non-finite results on finite
inputs fail the gate with --fail-on-new-nonfinite (a warning otherwise). Speed is never compared.
Writes --out/report.md (for a CI job summary), --out/report.json and, with --junit, JUnit XML (one test case
per family x candidate x dtype). The same code and seed give the same figures: the gate does not flake."""

_EPILOG = """\
exit codes: 0 every check passes (or --update-baseline wrote the baseline), 1 at least one regression,
2 usage or configuration error (missing or malformed baseline, bad option), 130 interrupted.

examples:
  lossfuzz gate --update-baseline --baseline reports/baseline.json        # write the first baseline
  lossfuzz gate --baseline reports/baseline.json --junit reports/junit.xml
  lossfuzz gate --baseline b.json --function mypkg.losses:bce --family sigmoid_ce --name mine"""


def _factor(text: str) -> float:
    from .gate import parse_factor

    try:
        return parse_factor(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--max-ulp-regression ")) from None


def _from_baseline(option: Option) -> Option:
    help_text = option.help.split(" (default")[0]
    return replace(option, default=None, help=f"{help_text} (default: the baseline's)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gate",
        help="CI regression gate: compare with a baseline report; exit 0 pass, 1 regression, 2 usage error",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--baseline", required=True, metavar="PATH",
                   help="the baseline: a report.json of lossfuzz run, or one written by --update-baseline")
    p.add_argument("--max-ulp-regression", type=_factor, default=1.5, metavar="FACTOR",
                   help="how much the max ULP error may grow: 1.5x (default) passes up to max(1.5 x baseline, 1 ULP)")
    p.add_argument("--fail-on-new-nonfinite", action="store_true",
                   help="fail when non-finite results (nan, inf, finite where infinite) on finite inputs grow")
    p.add_argument("--junit", metavar="PATH", help="also write JUnit XML here (one test case per family x candidate x dtype)")
    p.add_argument("--update-baseline", action="store_true",
                   help="write this run as the new baseline to --baseline (atomically) and exit 0")
    p.add_argument("--corpus", metavar="DIR", help="also replay the corpus files in DIR (e.g. reports/corpus)")
    options = {o.dest: o for o in RUN_OPTIONS}
    out = replace(options["out"], help="folder for this run's report.md (Gate section on top) and report.json"
                  " (default reports/)")
    add_options(p, tuple(_from_baseline(options[d]) for d in _FROM_BASELINE) + (out,))
    p.add_argument("--function", metavar="MODULE:FUNCTION",
                   help="also gate your own loss function (with --family and the options below; --name keeps its key)")
    add_options(p, FUNCTION_OPTIONS)
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(handler=_gate)


# ------------------------------------------------------------------------------------------------ baseline


@dataclass(frozen=True, slots=True)
class Baseline:
    """A loaded baseline: the report, and the replay corpus it was computed on (None: not recorded)."""

    result: Any  # RunResult
    stored: dict | None
    name: str


def load_baseline(path: str | Path) -> Baseline:
    """Read and check a baseline; a one-line ``ValueError`` when it is missing, unreadable or malformed."""
    import oracles

    from .gate import read_gate_entry
    from .reports.json_report import load_json

    p = Path(path)
    name = str(p)
    if not p.exists():
        raise ValueError(f"baseline {name} does not exist; write one with: lossfuzz gate --update-baseline --baseline {name}")
    if p.is_dir():
        raise ValueError(f"baseline {name} is a folder; pass the report file, e.g. --baseline {p / 'baseline.json'}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"baseline {name} cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
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
    entry = json.loads(text).get("gate")
    stored = None if entry is None else read_gate_entry(entry, f"baseline {name}")
    return Baseline(result, stored, name)


def _setting(baseline: Baseline, key: str, parse) -> Any:
    """A setting of the baseline, checked (one-line error naming the baseline)."""
    value = baseline.result.settings.get(key) if isinstance(baseline.result.settings, dict) else None
    if value is None:
        return None
    try:
        return parse(value)
    except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
        raise ValueError(f"baseline {baseline.name}: settings.{key} = {value!r} is not valid ({exc}); regenerate it") from None


def _names(choices: tuple[str, ...], kind: str):
    def parse(value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of {kind} names")
        bad = [v for v in value if v not in choices]
        if bad:
            raise ValueError(f"{kind}={bad[0]!r} is not one of: {', '.join(choices)}")
        return tuple(value)

    return parse


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected an integer of at least 0")
    return value


def gate_settings(baseline: Baseline | None, args: argparse.Namespace, function_families: tuple[str, ...] = ()):
    """The campaign settings of the gate: each option given on the command line, else the baseline's, else
    the ``lossfuzz run`` default (no built-in candidates when only a function is gated); timing off. Also
    returns notes for settings that differ from the baseline's (figures then are not exactly comparable)."""
    import oracles

    from .campaign import Settings
    from .candidates import CANDIDATE_NAMES

    defaults = {o.dest: o.default for o in RUN_OPTIONS}
    base: dict[str, Any] = {}
    if baseline is not None:
        scores = baseline.result.scores
        base = {
            "seed": _setting(baseline, "seed", _integer),
            "examples": _setting(baseline, "examples", _integer),
            "families": _setting(baseline, "families", _names(tuple(oracles.FAMILIES), "family")),
            "candidates": _setting(baseline, "candidates", _names(CANDIDATE_NAMES, "candidate")),
            "dtypes": _setting(baseline, "dtypes", _names(tuple(oracles.FORMATS), "dtype")),
            "shrink": _setting(baseline, "shrink", lambda v: v if isinstance(v, bool) else bool(int(v))),
        }
        # A baseline without settings: what its results cover.
        if base["families"] is None:
            base["families"] = tuple(dict.fromkeys(s.family for s in scores))
        if base["dtypes"] is None:
            base["dtypes"] = tuple(dict.fromkeys(s.dtype for s in scores))
        if base["candidates"] is None:
            base["candidates"] = tuple(dict.fromkeys(s.candidate for s in scores if s.candidate in CANDIDATE_NAMES))
    fallback = {
        "seed": defaults["seed"],
        "examples": defaults["examples"],
        "families": function_families or defaults["families"],
        "candidates": () if function_families else CANDIDATE_NAMES,
        "dtypes": defaults["dtypes"],
    }
    chosen: dict[str, Any] = {}
    notes: list[str] = []
    for key in _FROM_BASELINE:
        given = getattr(args, key, None)
        value = given if given is not None else base.get(key) if base.get(key) is not None else fallback[key]
        chosen[key] = tuple(value) if isinstance(value, (list, tuple)) else value
        if given is not None and baseline is not None and key in ("seed", "examples") and base.get(key) is not None \
                and given != base[key]:
            notes.append(f"--{key} {given} differs from the baseline's {base[key]}: the search explores other examples,"
                         " so figures are not exactly comparable")
    families = tuple(dict.fromkeys(chosen["families"] + tuple(function_families)))
    settings = Settings(seed=chosen["seed"], examples=chosen["examples"], families=families,
                        candidates=chosen["candidates"], dtypes=chosen["dtypes"], speed_elements=0,
                        shrink=True if base.get("shrink") is None else base["shrink"])
    return settings, notes


def _in_scope(score, settings) -> bool:
    from .candidates import CANDIDATE_NAMES

    if score.family not in settings.families or score.dtype not in settings.dtypes:
        return False
    return score.candidate in settings.candidates or score.candidate not in CANDIDATE_NAMES


def render_baseline(result, corpus: dict) -> str:
    """The text of a baseline written by the gate: the report's JSON plus its replay corpus (``"gate"``)."""
    from .gate import gate_entry

    return json.dumps({**result.to_json(), "gate": gate_entry(corpus)}, indent=1, allow_nan=False) + "\n"


# ----------------------------------------------------------------------------------------------- running


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    from rich.console import Console

    from .progress import progress_bar

    with progress_bar(Console(stderr=True), enabled=enabled, transient=True) as bar:
        yield bar.hooks(), bar.reset


def _function_candidates(args: argparse.Namespace) -> list:
    from .cli import UsageError

    given = [o.flag for o in FUNCTION_OPTIONS if getattr(args, o.dest) != o.default]
    if args.function is None:
        if given:
            raise UsageError(f"{given[0]} describes a function to gate: pass --function MODULE:FUNCTION with it")
        return []
    if not args.family:
        raise UsageError("--function needs --family FAMILY: the loss family the function computes (e.g. sigmoid_ce)")
    import os
    import sys

    from .adapters import function_candidate

    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `lossfuzz audit`: modules of the current folder import
    made = []
    try:
        for family in args.family:
            made.append(function_candidate(args.function, family, takes=args.takes, inputs=args.inputs,
                                           reduction=args.reduction, kwargs=args.kwargs, name=args.name,
                                           timeout=args.timeout, memory_mb=args.memory_mb))
    except BaseException:
        for c in made:
            c.close()
        raise
    return made


def _gate(args: argparse.Namespace) -> int:
    from ._files import ensure_writable_dir, write_atomic
    from .campaign import run_campaign
    from .cli import UsageError
    from .gate import compare, replay_corpus
    from .reports import render
    from .reports.gate_markdown import render_gate_markdown
    from .run_command import read_corpus

    baseline_path = Path(args.baseline)
    baseline = None
    if baseline_path.exists() or not args.update_baseline:
        try:
            baseline = load_baseline(baseline_path)
        except ValueError as exc:
            if not args.update_baseline or baseline_path.is_dir():
                raise
            import sys

            print(f"lossfuzz gate: replacing an unusable baseline: {str(exc).splitlines()[0]}", file=sys.stderr)
    extra_corpus = {}
    if args.corpus is not None:
        if not Path(args.corpus).is_dir():
            raise UsageError(f"--corpus {args.corpus} is not a folder of corpus files (e.g. reports/corpus)")
        extra_corpus = read_corpus(Path(args.corpus))
    out = ensure_writable_dir(args.out)
    functions = _function_candidates(args)
    try:
        settings, notes = gate_settings(baseline, args, tuple(c.family for c in functions))
        pairs = [(f, d) for f in settings.families for d in settings.dtypes]
        scoped = None
        if baseline is not None:
            kept = tuple(s for s in baseline.result.scores if _in_scope(s, settings))
            if len(kept) < len(baseline.result.scores):
                notes.append(f"{len(baseline.result.scores) - len(kept)} baseline results outside the chosen families,"
                             " candidates and dtypes are not compared")
            scoped = replace(baseline.result, scores=kept)
        corpus, fresh = replay_corpus(pairs, stored=baseline.stored if baseline else None, baseline=scoped,
                                      extra=extra_corpus)
        from .progress import stop_on_signals

        with _progress(args.progress) as (hooks, reset), stop_on_signals() as stop:
            hooks.stop = stop  # SIGINT and SIGTERM: stop after the piece in hand, write nothing, exit 130
            current, _ = run_campaign(settings, corpus, hooks, extra=functions)
            if args.update_baseline and not current.partial:
                # Fixed point: the stored corpus must hold every worst case of the stored figures.
                more, added = replay_corpus(pairs, stored=corpus, baseline=current)
                if any(added.values()):
                    reset("again with the new worst cases")
                    current, _ = run_campaign(settings, more, hooks, extra=functions)
                    fresh = {k: fresh.get(k, 0) + added.get(k, 0) for k in set(fresh) | set(added)}
                    corpus = more
    finally:
        for c in functions:
            c.close()
    if current.partial:
        print("lossfuzz gate: interrupted (Ctrl-C or SIGTERM); nothing written")
        return 130
    if functions:
        # As `lossfuzz audit` words them: replay commands that call the function by its spec.
        from .auditing import replay_words, rewrite_replays

        for c in functions:
            current = rewrite_replays(current, c.name, replay_words(c.target, args.takes, args.inputs, args.kwargs))
    result = compare(scoped if scoped is not None else replace(current, scores=()), current,
                     max_ulp_regression=args.max_ulp_regression, fail_on_new_nonfinite=args.fail_on_new_nonfinite,
                     slack=fresh if baseline is not None else 0)
    exact = baseline is None or (baseline.stored is not None and not any(fresh.values()))
    result = replace(result, notes=tuple(notes), exact=exact)
    written: list[Path] = []
    updated = str(baseline_path) if args.update_baseline else None
    if args.update_baseline:
        ensure_writable_dir(baseline_path.parent if str(baseline_path.parent) else Path("."))
        written.append(write_atomic(baseline_path, render_baseline(current, corpus)))
    markdown = render_gate_markdown(result, str(baseline_path), updated=updated) + "\n" + render(current, "md")
    written.append(write_atomic(out / "report.md", markdown))
    report_json = out / "report.json"
    if report_json.resolve() != baseline_path.resolve():
        written.append(write_atomic(report_json, render(current, "json")))
    if args.junit:
        from .junit import render_junit

        junit = Path(args.junit)
        ensure_writable_dir(junit.parent if str(junit.parent) else Path("."))
        written.append(write_atomic(junit, render_junit(result)))
    _print_summary(result, str(baseline_path), updated)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return EXIT_PASS if args.update_baseline else result.exit_code


def _print_summary(result, baseline: str, updated: str | None) -> None:
    from ._text import printable
    from .reports._common import fmt_ulp

    def print(text: str) -> None:  # candidate names and cases come from the baseline file: escaped
        import builtins

        builtins.print(printable(text))

    tally = result.tally()
    threshold = f"max ULP may grow {result.max_ulp_regression:g}x, at least to 1 ULP"
    if updated is not None:
        print(f"lossfuzz gate: wrote the baseline {updated} ({len(result.checks)} results)")
    elif result.failures:
        print(f"lossfuzz gate: FAILED: {len(result.failures)} of {len(result.checks)} checks got worse against {baseline}"
              f" ({threshold})")
    else:
        print(f"lossfuzz gate: passed: {len(result.checks)} checks, none got worse against {baseline} ({threshold})")
    for check in result.failures + result.warnings:
        label = check.status.replace("_", " ") if check.failed else "warning: " + check.status.replace("_", " ")
        print(f"  {label}: {check.family} {check.candidate} {check.dtype}: {check.summary}")
        if check.case is not None:
            print(f"    {check.case_label}: got {check.case.got}, exact {check.case.exact} ({fmt_ulp(check.case.ulp)} ULP,"
                  f" {check.case.outcome}); replay: {check.case.replay}")
    if result.warnings and not result.fail_on_new_nonfinite:
        print("  (non-finite results are warnings; pass --fail-on-new-nonfinite to fail on them)")
    if tally["new"]:
        print(f"  {tally['new']} results are new (not in the baseline)")
    for note in result.notes:
        print(f"  note: {note}")
