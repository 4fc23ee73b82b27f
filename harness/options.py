"""Every option of every face of lossfuzz, declared once, and the settings built from them.

A face is a way in: the commands ``run``, ``audit``, ``gate`` and ``exact``, the pytest plugin's
command-line and ini options (``plugin``), its ``check()`` keyword arguments (``check``) and
:func:`harness.audit`'s keyword arguments (``audit_api``). :data:`OPTIONS` is the one table: each
:class:`Option` has its name (the settings field and argparse ``dest``), its flag, how text is read
(``parse``: the command line and ini files give text; Python callers give values, checked by the same
function), its default, its help, and the faces that take it, each with the declared default and help
unless the face overrides them. :func:`resolve` turns what a face was given into checked values, and
:func:`settings` builds a settings dataclass from them: :class:`Settings` (a campaign),
:class:`AuditSettings` and :class:`CheckSettings`. The commands' argparse options and the plugin's
options are made from the same table (:func:`add_options`, :func:`options_for`).

Adding a flag: one :class:`Option` in :data:`OPTIONS` (with its faces), a field of the settings class that
carries it (if a settings class carries it), and its use. ``tests/unit/test_options.py`` checks that
every face shows every option it takes with the declared default.

Bad input is a :class:`UsageError`: one line that says what is wrong and how to fix it. The CLI prints
it and exits with 2; any other exception is a bug (see :mod:`harness.cli`).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping, TypeVar

import oracles

from ._records import LABEL_SETS, QUANTITIES
from ._values import parse_value
from .candidates import CANDIDATE_NAMES
from .thresholds import parse_thresholds

__all__ = [
    "UsageError",
    "reading_input",
    "import_from_cwd",
    "Option",
    "OPTIONS",
    "FACES",
    "options_for",
    "add_options",
    "argparse_type",
    "resolve",
    "settings",
    "Settings",
    "AuditSettings",
    "CheckSettings",
    "CALL_OPTIONS",
    "DEFAULT_BUDGET",
    "DEFAULT_COMPARE",
    "COMPARE_FORMATS",
    "DEFAULT_FACTOR",
    "FAIL_ON",
    "MAX_CHUNKS",
    "parse_factor",
    "gate_thresholds",
    "scheduler_address",
]


# ------------------------------------------------------------------------------------------- bad input


class UsageError(ValueError):
    """Bad input from the user, worded as one line that says what is wrong and how to fix it. The CLI
    prints it and exits with 2; library callers can catch it as the ``ValueError`` it is."""


@contextlib.contextmanager
def reading_input() -> Iterator[None]:
    """Around the code that reads what the user gave (a file, a module path, typed values): its one-line
    ``ValueError``/``OSError`` becomes a :class:`UsageError`. Keep the block to the reading: an error
    raised by the computation after it is a bug, not bad input."""
    try:
        yield
    except UsageError:
        raise
    except (ValueError, OSError) as exc:
        text = str(exc).strip()
        raise UsageError(text.splitlines()[0] if text else type(exc).__name__) from exc


def import_from_cwd() -> None:
    """Let ``module:function`` specs name modules of the current folder (as ``python -m`` does): the one
    place the faces add the working directory to ``sys.path``."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())


# --------------------------------------------------------------------------------------------- parsers
# Each reads text (the command line, ini files) and checks a Python value the same way; a one-line
# UsageError otherwise.


def _items(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    return tuple(value)


def comma_list(kind: str, choices: tuple[str, ...] | Callable[[], tuple[str, ...]],
               allow_empty: bool = False) -> Callable[[Any], tuple[str, ...]]:
    """Parser of a comma list (or a sequence) whose items must be among ``choices`` ("all": every choice)."""

    def parse(value: Any) -> tuple[str, ...]:
        allowed = choices() if callable(choices) else choices
        items = _items(value)
        if items == ("all",):
            return allowed
        for item in items:
            if item not in allowed:
                raise UsageError(f"{kind}={item!r} is not one of: {', '.join(allowed)}")
        if not items and not allow_empty:
            raise UsageError(f"empty {kind} list; pass a comma list of: {', '.join(allowed)}")
        return items

    return parse


def quantity_list(value: Any) -> tuple[str, ...]:
    """``--quantities``: a comma list of :data:`~harness._records.QUANTITIES` (``loss``, ``gradient``; ``all``:
    both), kept in that order, each once; a one-line :class:`UsageError` naming the valid ones otherwise."""
    given = comma_list("quantity", QUANTITIES)(value)
    return tuple(q for q in QUANTITIES if q in given)


def one_of(kind: str, choices: tuple[str, ...] | Callable[[], tuple[str, ...]]) -> Callable[[Any], str]:
    """Parser of one name among ``choices``."""

    def parse(value: Any) -> str:
        allowed = choices() if callable(choices) else choices
        if value not in allowed:
            raise UsageError(f"{kind}={value!r} is not one of: {', '.join(allowed)}")
        return value

    return parse


def param_pairs(value: Any) -> dict[str, str]:
    """A family's parameters from repeated ``--param NAME=VALUE`` (a list of such texts) or a mapping; the
    family checks the names and values (:meth:`oracles.Family.check_params`)."""
    if isinstance(value, Mapping):
        return dict(value)
    items = [value] if isinstance(value, str) else list(value)
    out = {}
    for item in items:
        name, eq, text = str(item).partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--param {item!r} is not NAME=VALUE; pass e.g. --param gamma=2")
        out[name.strip()] = text.strip()
    return out


def _families() -> tuple[str, ...]:
    return tuple(oracles.FAMILIES)


def _dtypes() -> tuple[str, ...]:
    return tuple(oracles.FORMATS)


def json_object(value: Any) -> dict:
    """A JSON object from the command line (``--kwargs``), or a mapping; one-line error with an example otherwise."""
    if isinstance(value, Mapping):
        return dict(value)
    if not isinstance(value, str):
        raise UsageError(f"kwargs={value!r} is not a mapping; pass a dict, e.g. kwargs={{'from_logits': True}}")
    from ._files import parse_json

    shown = value if len(value) <= 60 else value[:57] + "..."
    try:  # strict and depth-bounded, as every file lossfuzz reads
        parsed = parse_json(value, f"--kwargs {shown!r}", "pass an object, e.g. --kwargs '{\"from_logits\": true}'")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not isinstance(parsed, dict):
        raise UsageError(f"{value!r} is not a JSON object; pass e.g. --kwargs '{{\"from_logits\": true}}'")
    return parsed


def _number(value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise UsageError(f"{value!r} is not {'an integer' if kind is int else 'a number'}")
    if isinstance(value, str):
        try:
            return kind(value)
        except ValueError:
            raise UsageError(f"{value!r} is not {'an integer' if kind is int else 'a number'}") from None
    if kind is int and not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
        raise UsageError(f"{value!r} is not an integer")
    if not isinstance(value, (int, float)):
        raise UsageError(f"{value!r} is not a number")
    return kind(value)


def integer(value: Any) -> int:
    return _number(value, int)


def count(value: Any) -> int:
    """An integer of 0 or more."""
    number = _number(value, int)
    if number < 0:
        raise UsageError(f"{number} is negative; pass 0 or more")
    return number


def bounded_count(most: int, what: str) -> Callable[[Any], int]:
    """Parser of an integer from 0 to ``most`` (``what`` says what it counts, for the error)."""

    def parse(value: Any) -> int:
        number = count(value)
        if number > most:
            raise UsageError(f"{number} is more than {most:,} {what}; pass at most {most}")
        return number

    parse.__name__ = "count"
    return parse


# Bounds of --examples and --speed-elements: beyond them a run would never end or cannot be allocated
# (timing holds several float64 arrays of --speed-elements values).
MAX_EXAMPLES = 10**6
MAX_SPEED_ELEMENTS = 10**8


def workers(value: Any) -> int:
    """A number of worker processes: 1 or more."""
    number = _number(value, int)
    if number < 1:
        raise UsageError(f"--workers {number} is not a number of processes; pass 1 or more")
    return number


def seconds(value: Any) -> float:
    number = _number(value, float)
    if not math.isfinite(number):
        raise UsageError(f"{number} is not a finite number of seconds; pass e.g. 600")
    if not number > 0:
        raise UsageError(f"{number} is not positive; pass a number of seconds above 0")
    return number


def ulp_bound(value: Any) -> float | None:
    """``max_ulp``: a bound of 0 or more ULP, or None (no bound)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    number = _number(value, float)
    if not number >= 0:
        raise UsageError(f"max_ulp={number} is not a bound; pass 0 or more ULP (or None for no bound)")
    return number


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{value!r} is not true or false")


def optional_text(value: Any) -> Any:
    """Text as given (or None); what it means is checked where it is used (e.g. ``--takes`` by the adapter)."""
    return value


DEFAULT_FACTOR = 1.5


def parse_factor(text: str | float) -> float:
    """The ``--max-ulp-regression`` factor from ``"1.5x"``, ``"1.5"`` or a number; at least 1, finite."""
    raw = str(text).strip()
    body = raw[:-1].strip() if raw[-1:] in ("x", "X") else raw
    try:
        value = parse_value(body, "--max-ulp-regression")
    except ValueError:
        raise UsageError(f"--max-ulp-regression {raw!r} is not a factor; write e.g. 1.5x (the max ULP error may grow"
                         " by 50%)") from None
    if not math.isfinite(value) or value < 1:
        raise UsageError(f"--max-ulp-regression {raw!r}: the factor must be a finite number of at least 1"
                         " (1x: no growth above the 1 ULP floor; 1.5x: 50% growth)")
    return value


def gate_thresholds(value: Any) -> dict:
    """``--threshold [REGIME.]STATISTIC=VALUE`` (repeatable) or a mapping: the gate's thresholds by key
    (:func:`harness.thresholds.parse_thresholds`)."""
    try:
        return parse_thresholds(value)
    except UsageError:
        raise
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def scheduler_address(value: Any) -> str | None:
    """A Dask scheduler's address, ``tcp://HOST:PORT`` as ``dask scheduler`` prints it (None: run locally).
    Only its form is checked here; :func:`harness._executors.executor_for` connects."""
    if value is None:
        return None
    text = str(value).strip()
    host, colon, port = text.removeprefix("tcp://").rpartition(":")
    if not (text.startswith("tcp://") and colon and host and port.isdigit() and 0 < int(port) < 65536):
        raise UsageError(f"--scheduler {text!r} is not a Dask scheduler address; pass tcp://HOST:PORT, as `dask scheduler`"
                         " prints it (e.g. tcp://127.0.0.1:8786)")
    return text


# ------------------------------------------------------------------------------------------- the table

FACES = ("run", "audit", "gate", "exact", "compare", "sweep", "plugin", "check", "audit_api")
# Which verdict levels make `lossfuzz audit --fail-on X` exit 1.
FAIL_ON: Mapping[str, tuple[str, ...]] = MappingProxyType({"problems": ("bad", "failed"), "failed": ("failed",), "never": ()})
# Built-ins scored next to an audited function (those the family has and that are installed).
DEFAULT_COMPARE: tuple[str, ...] = ("numpy_stable", "tf")
# Seconds a whole audit may take (--budget): calls stop there and the verdict says so.
DEFAULT_BUDGET = 600.0
# Formats of `lossfuzz compare --format` (the renderers: harness.reports.comparison.RENDERERS).
COMPARE_FORMATS: tuple[str, ...] = ("md", "html", "latex")
# Catalogue batches a reduced candidate is scored on (a campaign's default; an audit passes more).
MAX_CHUNKS = 64


@dataclass(frozen=True, slots=True)
class Option:
    """One option. ``name``: the settings field and argparse ``dest``; ``parse``: text or a Python value to
    the checked value (one-line :class:`UsageError` otherwise); ``kind``: ``value`` (``--flag VALUE``),
    ``off`` (``--no-x`` sets False), ``on`` (``--x`` sets True); ``faces``: the faces that take it, each
    with overrides of ``default`` and ``help`` (an empty mapping: as declared)."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    metavar: str | None = None
    faces: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    flag: str = ""
    kind: str = "value"
    choices: tuple[str, ...] | None = None  # shown by argparse as {a,b,c}
    required: bool = False  # on the command line

    def __post_init__(self) -> None:
        if not self.flag:
            object.__setattr__(self, "flag", "--" + self.name.replace("_", "-"))

    def on(self, face: str) -> Option:
        """This option as ``face`` shows it (its default and help overridden there)."""
        return replace(self, **self.faces[face])


_AUDIT_OUT = os.path.join("reports", "audit")
# The gate's campaign options default to the baseline's settings.
_BASELINE = {"default": None}
_FAMILY_LIST = ", ".join(oracles.FAMILIES)


def _taking(what: str) -> str:
    """The families whose inputs are ``what`` (logits, probs) or whose labels are class indices (index)."""
    fams = [oracles.get_family(f) for f in oracles.FAMILIES]
    return ", ".join(f.name for f in fams if what in (f.input_name, f.label_kind))


OPTIONS: tuple[Option, ...] = (
    # -------------------------------------------------------------------------------------------- gate
    Option("baseline", str, None, "the baseline: a report.json of lossfuzz run, or one written by --update-baseline",
           "PATH", required=True, faces={"gate": {}}),
    Option("max_ulp_regression", parse_factor, None, "how much the max ULP error may grow: 1.5x (default)"
           " passes up to max(1.5 x baseline, 1 ULP); the same as --threshold max_ulp=FACTORx", "FACTOR",
           faces={"gate": {}, "compare": {"default": DEFAULT_FACTOR,
                                          "help": "tolerance: a max or p99 ULP figure is worse above max(FACTOR x the"
                                                  " first report's, 1 ULP), a share of non-finite mistakes above FACTOR x"
                                                  " (default 1.5x, as the gate)"}}),
    Option("thresholds", gate_thresholds, None, "how much worse a statistic may get (repeatable): max_ulp,"
           " p99_ulp, median_ulp (e.g. 2x,4ulp: max(2 x baseline, 4 ULP)), mean_bits (e.g. 1bits), nan, inf, raised,"
           " flushed_subnormal, nonfinite_on_finite_inputs and the other outcome counts (e.g. 0.5%%: the rate per"
           " example may grow by 0.5 points; 2%%,keep0: and a count of 0 stays 0), or off; REGIME.STATISTIC for"
           " one regime (soft.max_ulp=10x); default: the baseline's, else those of the README",
           "[REGIME.]STATISTIC=VALUE", flag="--threshold",  # %% in help: argparse formats help with %
           kind="append", faces={"gate": {}}),
    Option("fail_on_new_nonfinite", boolean, False,
           "fail when non-finite results (nan, inf, finite where infinite) on finite inputs grow (the default)",
           kind="on", faces={"gate": {}}),
    Option("allow_new_nonfinite", boolean, False,
           "new non-finite results on finite inputs are a warning instead of failing the gate", kind="on",
           faces={"gate": {}}),
    Option("junit", str, None, "also write JUnit XML here (one test case per family x candidate x dtype)", "PATH",
           faces={"gate": {}}),
    Option("update_baseline", boolean, False,
           "write this run as the new baseline to --baseline (atomically) and exit 0", kind="on", faces={"gate": {}}),
    Option("corpus", str, None, "also replay the corpus files in DIR (e.g. reports/corpus)", "DIR", faces={"gate": {}}),
    # ------------------------------------------------------------------------------------ a campaign
    Option("seed", integer, 0, "seed of every random choice; the same seed and code give the same figures",
           faces={"run": {}, "audit": {}, "audit_api": {}, "check": {}, "plugin": {},
                  "gate": {**_BASELINE, "help": "seed of every random choice; the same seed and code give the same"
                           " figures (default: the baseline's)"}}),
    Option("examples", bounded_count(MAX_EXAMPLES, "examples (hours of work per candidate)"), 80, "Hypothesis examples per family x candidate x dtype, on top of the boundary catalogue"
           " and the corpus (default 80)", "N",
           faces={"run": {}, "audit": {}, "audit_api": {"default": 60}, "check": {"default": 60}, "plugin": {"default": 60},
                  "gate": {**_BASELINE, "help": "Hypothesis examples per family x candidate x dtype, on top of the"
                           " boundary catalogue and the corpus (default: the baseline's)"}}),
    Option("families", comma_list("family", _families), oracles.default_families(),
           f"comma list of loss families ({oracles.family_names()}), or all (default:"
           f" {', '.join(oracles.default_families())})", "LIST",
           faces={"run": {}, "gate": {**_BASELINE, "help": "comma list of loss families, or all (default: the baseline's)"}}),
    Option("candidates", comma_list("candidate", CANDIDATE_NAMES), CANDIDATE_NAMES,
           "comma list of candidate names, or all (default all)", "LIST",
           faces={"run": {}, "gate": {**_BASELINE, "help": "comma list of candidate names, or all (default: the baseline's)"}}),
    Option("dtypes", comma_list("dtype", _dtypes), tuple(oracles.FORMATS),
           "comma list of float16, bfloat16, float32, float64, or all (default all)", "LIST",
           faces={"run": {}, "audit": {}, "audit_api": {"default": ("float32",)},
                  "gate": {**_BASELINE, "help": "comma list of float16, bfloat16, float32, float64, or all (default:"
                           " the baseline's)"}}),
    Option("out", str, "reports", "folder for report.json, report.md, report.html and the corpus (default reports/)", "DIR",
           faces={"run": {},
                  "audit": {"default": _AUDIT_OUT, "help": f"folder for report.json, report.md and report.html (default {_AUDIT_OUT}/)"},
                  "gate": {"help": "folder for this run's report.md (Gate section on top) and report.json (default reports/)"},
                  "compare": {"default": None, "metavar": "FILE", "help": "write the table to FILE (atomically) instead of"
                              " standard output"},
                  "sweep": {"default": None, "required": True, "help": "folder for report.json, report.md, report.html,"
                            " the error-vs-bit-pattern plot, summary.json/.md and the journal"}}),
    Option("quantities", quantity_list, QUANTITIES,
           "what to score, a comma list of: loss (the loss value), gradient (the gradient with respect to the"
           " inputs, per component, on the base examples and those the loss search visited); default loss,gradient",
           "LIST", faces={"run": {}, "audit": {}, "audit_api": {}, "plugin": {}, "check": {},
                          "gate": {**_BASELINE, "help": "comma list of loss, gradient (default: the baseline's)"},
                          "sweep": {"help": "what to score on every case, a comma list of: loss, gradient (each"
                                    " candidate's gradient with respect to the swept row's inputs, per component);"
                                    " default loss,gradient (the gradient about doubles the time)"}}),
    Option("speed_elements", bounded_count(MAX_SPEED_ELEMENTS, "elements to time (gigabytes of memory)"), 1_000_000,
           "array size for timing each candidate against a memory copy; 0 skips timing (default 10^6)", "N",
           faces={"run": {}, "audit_api": {"default": 0},
                  "audit": {"default": 0, "help": "array size for timing the function against a memory copy; 0 (the"
                            " default) skips timing"}}),
    Option("shrink", boolean, True, "skip shrinking the worst cases", kind="off", flag="--no-shrink",
           faces={"run": {}, "audit": {"help": "skip shrinking the worst case"}, "audit_api": {}}),
    Option("use_corpus", boolean, True, "neither replay nor update the corpus", kind="off", flag="--no-corpus",
           faces={"run": {}}),
    Option("progress", boolean, True, "no progress bar", kind="off", flag="--no-progress",
           faces={"run": {}, "audit": {}, "gate": {}, "sweep": {}}),
    Option("scheduler", scheduler_address, None, "run the work as tasks on the Dask cluster of this scheduler,"
           " tcp://HOST:PORT (needs lossfuzz[dask] here and on the workers; the figures equal a local run's)", "ADDRESS",
           faces={"run": {"help": "score each family x candidate x dtype as a task on the Dask cluster of this"
                          " scheduler, tcp://HOST:PORT (needs lossfuzz[dask] here and on the workers; the figures equal"
                          " a local run's; default: in this process)"},
                  "sweep": {"help": "run each chunk as a task on the Dask cluster of this scheduler, tcp://HOST:PORT"
                            " (needs lossfuzz[dask] here and on the workers; the figures equal a local sweep's;"
                            " default: local processes, --workers)"}}),
    Option("resume", boolean, False, "continue an interrupted run with the same options from its journal in --out"
           " (finished work is kept, the figures equal an uninterrupted run's)", kind="on",
           faces={"run": {}, "sweep": {"help": "continue an interrupted sweep with the same options from its journal in"
                                               " --out (finished chunks are kept, the figures equal an uninterrupted sweep's)"}}),
    # ------------------------------------------------------------------------------------------- sweep
    Option("sweep_candidates", comma_list("candidate", CANDIDATE_NAMES), None,
           "comma list of the candidates to sweep (each called on batches of 2**20 cases)", "NAME[,NAME...]",
           flag="--candidate", required=True, faces={"sweep": {}}),
    Option("bits", optional_text, None, "sweep only the bit patterns START <= b < STOP of the swept input (hex or"
           " decimal, e.g. 0x7f800000:0x80000000); default: every pattern of the format", "START:STOP",
           faces={"sweep": {}}),
    Option("workers", workers, None, "worker processes (default: every core)", "N",
           faces={"sweep": {}, "run": {"help": "score the family x candidate x dtype cells in N local processes"
                                       " (default: every core; 1: one after the other in this process); the figures"
                                       " equal those of a run in this process"}}),
    # ------------------------------------------------------------------------------- exact
    Option("logits", optional_text, None, f"logits ({_taking('logits')})", faces={"exact": {}}),
    Option("probs", optional_text, None, f"probabilities ({_taking('probs')})", faces={"exact": {}}),
    Option("label_values", optional_text, None, "labels: soft labels in [0, 1], or class indices for"
           f" {_taking('index')}", "LABELS", flag="--labels", required=True, faces={"exact": {}}),
    Option("dtype", one_of("dtype", _dtypes), "float32", "float16, bfloat16, float32 or float64 (default float32)",
           faces={"exact": {}, "check": {}, "sweep": {"help": "float16, bfloat16 or float32 (default float32)"}}),
    Option("gradient", boolean, False, "the gradient with respect to the inputs instead of the loss", kind="on",
           faces={"exact": {}}),
    Option("params", param_pairs, None, "a parameter of the family (repeatable), e.g. --param gamma=2 for focal;"
           " default: the family's", "NAME=VALUE", flag="--param", kind="append", faces={"exact": {}}),
    Option("candidate", str, None, "also run this candidate on the inputs and show its error: a built-in name, or a"
           " function as package.module:function (as `lossfuzz audit` takes it, with --takes/--inputs/--kwargs)",
           faces={"exact": {}}),
    # ----------------------------------------------------------------------- how a user's function is called
    Option("function", str, None,
           "also gate your own loss function (with --family and the options below; --name keeps its key)",
           "MODULE:FUNCTION", faces={"gate": {}}),
    Option("family", one_of("family", _families), None,
           f"the loss family the function computes ({_FAMILY_LIST})", "FAMILY",
           faces={"audit": {}, "gate": {}, "audit_api": {}, "check": {}}),
    Option("takes", optional_text, None, "argument names in call order: labels,logits (TF), y_true,y_pred (Keras),"
           " input,target (PyTorch), one known name and any other (y_true,y_proba), or any two names with their"
           " roles: target_z=labels,score_x=inputs (passed by position in that order); inferred from the"
           " signature when possible", "A,B",
           faces={"audit": {}, "gate": {}, "exact": {}, "audit_api": {}, "check": {}}),
    Option("inputs", optional_text, None, "what the function's prediction argument is: logits or probs"
           " (default: the family's own: probs for binary_ce, logits otherwise)", "KIND",
           faces={"audit": {}, "gate": {}, "exact": {}, "audit_api": {}, "check": {}}),
    Option("reduction", one_of("reduction", tuple(oracles.REDUCTIONS)), "none",
           "what the function returns: none (per example), mean or sum", "R",
           faces={"audit": {}, "gate": {}, "audit_api": {}, "check": {},
                  "exact": {"help": "none, sum or mean (default none)", "metavar": None}}),
    Option("kwargs", json_object, None, "extra keyword arguments as a JSON object, e.g. '{\"from_logits\": true}'", "JSON",
           faces={"audit": {}, "gate": {}, "exact": {}, "audit_api": {}, "check": {}}),
    Option("gradient_fn", optional_text, None, "the gradient of plain numpy code, to score it: a function called as the"
           " loss function is, returning d loss / d prediction (TensorFlow, PyTorch and JAX code is differentiated by"
           " its own framework; numpy code without it is scored on its loss only, with a note)", "MODULE:FUNCTION",
           faces={"audit": {}, "audit_api": {}, "exact": {}}),
    Option("name", optional_text, None, "the name of the function in reports (default: MODULE:FUNCTION)", "NAME",
           faces={"audit": {}, "gate": {}, "audit_api": {}, "check": {}}),
    Option("timeout", seconds, 10.0, "seconds one call may take before it counts as a hang (default 10)", "S",
           faces={"audit": {}, "gate": {}, "exact": {}, "audit_api": {}}),
    Option("memory_mb", count, 4096, "address-space limit of the worker process in MiB (default 4096)", "MB",
           faces={"audit": {}, "gate": {}, "exact": {}, "audit_api": {}}),
    Option("budget", seconds, DEFAULT_BUDGET, "seconds for the whole audit: once spent, the function is not called again and"
           " the verdict says it stopped (default 600)", "S", faces={"audit": {}, "audit_api": {}}),
    Option("isolate", boolean, True, "run the function in a worker process (timeout, memory limit)", kind="on",
           faces={"audit_api": {}}),
    # ------------------------------------------------------------------------------------------- audit
    Option("labels", one_of("labels", LABEL_SETS), "all",
           "labels to score on: all (default), hard (0/1 only: for code that rejects soft labels, such as"
           " scikit-learn's log_loss) or soft", choices=LABEL_SETS,
           faces={"audit": {}, "audit_api": {},
                  "sweep": {"default": "hard", "choices": ("hard", "all"), "help": "hard: labels 0 and 1 (default);"
                            " all: every label of the format in [0, 1] (sigmoid_ce and binary_ce, float16 and bfloat16)"}}),
    Option("fail_on", one_of("fail_on", tuple(FAIL_ON)), "never",
           "exit 1 when a verdict is PROBLEMS or FAILED (problems), FAILED only (failed), or never (default: exit 0"
           " whatever the verdict)", choices=tuple(FAIL_ON), faces={"audit": {}}),
    Option("per_element", boolean, True,
           "with --reduction mean|sum, skip the per-element view (one call per element on batches of one)",
           kind="off", flag="--no-per-element", faces={"audit": {}, "audit_api": {}}),
    Option("compare_with", comma_list("candidate", CANDIDATE_NAMES, allow_empty=True), DEFAULT_COMPARE,
           "built-in candidates to score next to it (default numpy_stable,tf; those the family lacks or whose library"
           " is missing are left out)", "LIST", flag="--compare", faces={"audit": {}, "audit_api": {}}),
    # ------------------------------------------------------------------------------------ compare
    Option("format", one_of("format", COMPARE_FORMATS), "md", "md (default: pull requests, READMEs), html (a page)"
           " or latex (a booktabs table for papers)", choices=COMPARE_FORMATS, faces={"compare": {}}),
    # ------------------------------------------------------------------------------------ check
    Option("max_ulp", ulp_bound, 4.0, "the bound: the largest max ULP error that passes (None: no bound)",
           faces={"check": {}}),
    Option("allow_nonfinite", boolean, False,
           "pass non-finite results where the exact loss is finite, on finite inputs", faces={"check": {}}),
)

_BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
# Keyword arguments of harness.adapters.function_candidate that say how a user's function is called.
CALL_OPTIONS: tuple[str, ...] = ("takes", "inputs", "reduction", "kwargs", "name", "timeout", "memory_mb", "isolate",
                                 "gradient_fn")


def options_for(face: str) -> tuple[Option, ...]:
    """The options ``face`` takes, in table order, each as that face shows it."""
    if face not in FACES:
        raise ValueError(f"face={face!r} is not one of: {', '.join(FACES)}")
    return tuple(o.on(face) for o in OPTIONS if face in o.faces)


def argparse_type(parse: Callable[[Any], Any]) -> Callable[[str], Any]:
    """``parse`` as an argparse ``type``: its :class:`UsageError` shown as argparse's one-line error."""

    def read(text: str) -> Any:
        try:
            return parse(text)
        except UsageError as exc:  # argparse shows an ArgumentTypeError's own message
            raise argparse.ArgumentTypeError(str(exc)) from None

    read.__name__ = getattr(parse, "__name__", "value")
    return read


def add_options(parser: argparse.ArgumentParser | Any, face: str) -> None:
    """Add ``face``'s options to an argparse parser (or an argument group)."""
    for o in options_for(face):
        if o.kind == "off":
            parser.add_argument(o.flag, dest=o.name, action="store_false", help=o.help)
        elif o.kind == "on":
            parser.add_argument(o.flag, dest=o.name, action="store_true", help=o.help)
        elif o.kind == "append":  # repeatable; resolve() parses the list as a whole
            parser.add_argument(o.flag, dest=o.name, action="append", default=None, metavar=o.metavar, help=o.help)
        elif o.choices is not None:
            parser.add_argument(o.flag, dest=o.name, choices=o.choices, default=o.default, help=o.help)
        else:
            parser.add_argument(o.flag, dest=o.name, type=argparse_type(o.parse), default=o.default, help=o.help,
                                metavar=o.metavar, required=o.required)


def resolve(face: str, given: Mapping[str, Any] | argparse.Namespace = MappingProxyType({})) -> dict[str, Any]:
    """Every option of ``face``: the value given (text as typed or a Python value; None: not given),
    checked, else the face's default. Names the face does not take are a ``TypeError``, as for a function
    called with an unknown keyword; bad values a one-line :class:`UsageError`."""
    values = vars(given) if isinstance(given, argparse.Namespace) else dict(given)
    own = {o.name: o for o in options_for(face)}
    if not isinstance(given, argparse.Namespace):
        unknown = sorted(set(values) - set(own))
        if unknown:
            raise TypeError(f"unknown option {unknown[0]!r}; known: {', '.join(own)}")
    out = {}
    for name, o in own.items():
        v = values.get(name)
        out[name] = o.default if v is None else o.parse(v)
    return out


T = TypeVar("T")


def settings(cls: type[T], face: str, given: Mapping[str, Any] | argparse.Namespace = MappingProxyType({})) -> T:
    """``cls`` (a settings dataclass) from what ``face`` was given, through :func:`resolve`: every field of
    ``cls`` that the face has an option for; the others keep the field's default."""
    values = resolve(face, given)
    return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- settings

_WHEN_SET = MappingProxyType({"json": "when_set"})  # written to JSON only when not the default


def _to_json(obj: Any) -> dict[str, Any]:
    """The fields of a settings dataclass as JSON (tuples as lists); a field marked ``when_set`` only
    when it differs from its default, so that the reports of plain runs keep their form."""
    data: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get("json") == "when_set" and value == f.default:
            continue
        data[f.name] = list(value) if isinstance(value, tuple) else dict(value) if isinstance(value, Mapping) else value
    return data


def _default(name: str, face: str = "run") -> Any:
    return _BY_NAME[name].on(face).default


@dataclass(frozen=True, slots=True)
class Settings:
    """What a campaign runs (the ``settings`` of report.json, reports/SCHEMA.md). ``examples``: Hypothesis
    examples per family x candidate x dtype (on top of the boundary catalogue and the corpus);
    ``speed_elements``: array size for timing (0 turns timing off); ``labels``: the label set scored;
    ``stop_after``: probe calls that stop a candidate x dtype when all fail alike (0: never; audits);
    ``max_chunks``: catalogue batches a reduced candidate is scored on; ``quantities``: the rows scored per
    candidate (:data:`~harness._records.QUANTITIES`: loss, gradient)."""

    seed: int = _default("seed")
    examples: int = _default("examples")
    families: tuple[str, ...] = _default("families")
    candidates: tuple[str, ...] = _default("candidates")
    dtypes: tuple[str, ...] = _default("dtypes")
    speed_elements: int = _default("speed_elements")
    shrink: bool = _default("shrink")
    labels: str = field(default=_default("labels", "audit"), metadata=_WHEN_SET)
    stop_after: int = field(default=0, metadata=_WHEN_SET)
    max_chunks: int = field(default=MAX_CHUNKS, metadata=_WHEN_SET)
    quantities: tuple[str, ...] = field(default=_default("quantities"), metadata=_WHEN_SET)

    def to_json(self) -> dict[str, Any]:
        return _to_json(self)


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """What :func:`harness.audit` and ``lossfuzz audit`` run: the family and the campaign options, the
    built-ins to compare with, and how the function is called (:data:`CALL_OPTIONS`)."""

    family: str
    dtypes: tuple[str, ...] = _default("dtypes", "audit_api")
    seed: int = _default("seed", "audit_api")
    examples: int = _default("examples", "audit_api")
    compare_with: tuple[str, ...] = _default("compare_with", "audit_api")
    labels: str = _default("labels", "audit_api")
    per_element: bool = _default("per_element", "audit_api")
    speed_elements: int = _default("speed_elements", "audit_api")
    shrink: bool = _default("shrink", "audit_api")
    quantities: tuple[str, ...] = _default("quantities", "audit_api")
    takes: Any = None
    inputs: str | None = None
    reduction: str = _default("reduction", "audit_api")
    kwargs: Mapping[str, Any] | None = None
    name: str | None = None
    timeout: float = _default("timeout", "audit_api")
    memory_mb: int = _default("memory_mb", "audit_api")
    isolate: bool = _default("isolate", "audit_api")
    budget: float = _default("budget", "audit_api")
    gradient_fn: Any = None

    def call_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`harness.adapters.function_candidate` (how the function is called)."""
        return {k: getattr(self, k) for k in CALL_OPTIONS}


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """What the pytest plugin's ``check()`` scores and the bound it asserts."""

    family: str
    dtype: str = _default("dtype", "check")
    max_ulp: float | None = _default("max_ulp", "check")
    allow_nonfinite: bool = _default("allow_nonfinite", "check")
    examples: int = _default("examples", "check")
    seed: int = _default("seed", "check")
    takes: Any = None
    inputs: str | None = None
    reduction: str = _default("reduction", "check")
    kwargs: Mapping[str, Any] | None = None
    name: str | None = None
    quantities: tuple[str, ...] = _default("quantities", "check")

    def campaign(self) -> Settings:
        """The campaign settings of the check: its family, dtype and quantities, no built-ins, no timing."""
        return Settings(seed=self.seed, examples=self.examples, families=(self.family,), candidates=(),
                        dtypes=(self.dtype,), quantities=self.quantities, speed_elements=0, shrink=True)
