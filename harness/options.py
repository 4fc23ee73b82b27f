"""Options shared by every face of lossfuzz (the CLI commands and the pytest plugin), defined once."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

import oracles

__all__ = ["Option", "RUN_OPTIONS", "FUNCTION_OPTIONS", "add_options", "comma_list", "candidate_list", "json_object"]


def comma_list(kind: str, choices: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    """Parser of a comma list whose items must be among ``choices`` ("all" means every choice)."""

    def parse(text: str) -> tuple[str, ...]:
        items = tuple(t.strip() for t in text.split(",") if t.strip())
        if items == ("all",):
            return choices
        for item in items:
            if item not in choices:
                raise argparse.ArgumentTypeError(f"{kind}={item!r} is not one of: {', '.join(choices)}")
        if not items:
            raise argparse.ArgumentTypeError(f"empty {kind} list; pass a comma list of: {', '.join(choices)}")
        return items

    return parse


def candidate_list(text: str) -> tuple[str, ...]:
    from .candidates import CANDIDATE_NAMES

    return comma_list("candidate", CANDIDATE_NAMES)(text)


def json_object(text: str) -> dict:
    """A JSON object from the command line (``--kwargs``); one-line error with an example otherwise."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not valid JSON ({exc.msg}); pass an object, e.g. --kwargs '{{\"from_logits\": true}}'"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object; pass e.g. --kwargs '{{\"from_logits\": true}}'")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} is not positive; pass a number of seconds above 0")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; pass 0 or more")
    return value


@dataclass(frozen=True, slots=True)
class Option:
    flag: str
    dest: str
    type: Callable[[str], Any]
    default: Any
    help: str
    metavar: str | None = None


RUN_OPTIONS: tuple[Option, ...] = (
    Option("--seed", "seed", int, 0, "seed of every random choice; the same seed and code give the same figures"),
    Option("--examples", "examples", _positive, 82, "Hypothesis examples per family x candidate x dtype, on top of the"
           " boundary catalogue and the corpus (default 80)", "N"),
    Option("--families", "families", comma_list("family", tuple(oracles.FAMILIES)), tuple(oracles.FAMILIES),
           "comma list of loss families, or all (default all)", "LIST"),
    Option("--candidates", "candidates", candidate_list, None, "comma list of candidate names, or all (default all)", "LIST"),
    Option("--dtypes", "dtypes", comma_list("dtype", tuple(oracles.FORMATS)), tuple(oracles.FORMATS),
           "comma list of float16, bfloat16, float32, float64, or all (default all)", "LIST"),
    Option("--out", "out", str, "reports", "folder for report.json, report.md, report.html and the corpus (default reports/)", "DIR"),
    Option("--speed-elements", "speed_elements", _positive, 1_000_000,
           "array size for timing each candidate against a memory copy; 0 skips timing (default 10^6)", "N"),
)


# How a user's function is called (audit, gate): everything but the MODULE:FUNCTION spec itself.
FUNCTION_OPTIONS: tuple[Option, ...] = (
    Option("--family", "family", comma_list("family", tuple(oracles.FAMILIES)), None,
           "the loss family the function computes (sigmoid_ce, binary_ce, softmax_ce, sparse_softmax_ce)", "FAMILY"),
    Option("--takes", "takes", str, None, "argument names in call order: labels,logits (TF), y_true,y_pred (Keras),"
           " input,target (PyTorch), one known name and any other (y_true,y_proba), or any two names with their"
           " roles: target_z=labels,score_x=inputs (passed by position in that order); inferred from the"
           " signature when possible", "A,B"),
    Option("--inputs", "inputs", str, None, "what the function's prediction argument is: logits or probs"
           " (default: the family's own: probs for binary_ce, logits otherwise)", "KIND"),
    Option("--reduction", "reduction", str, "none", "what the function returns: none (per example), mean or sum", "R"),
    Option("--kwargs", "kwargs", json_object, None, "extra keyword arguments as a JSON object, e.g. '{\"from_logits\": true}'", "JSON"),
    Option("--name", "name", str, None, "the name of the function in reports (default: MODULE:FUNCTION)", "NAME"),
    Option("--timeout", "timeout", _seconds, 10.0, "seconds one call may take before it counts as a hang (default 10)", "S"),
    Option("--memory-mb", "memory_mb", _positive, 4096, "address-space limit of the worker process in MiB (default 4096)", "MB"),
)


def add_options(parser: argparse.ArgumentParser, options: tuple[Option, ...]) -> None:
    for o in options:
        parser.add_argument(o.flag, dest=o.dest, type=o.type, default=o.default, help=o.help, metavar=o.metavar)
