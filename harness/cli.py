"""``lossfuzz``: the command line. The only layer (with the report writers it calls) that touches files."""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from typing import Sequence

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """Bad input from the user: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is the one line that says what is wrong (``--help`` shows the usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"lossfuzz: error: {message} (see {self.prog} --help)\n")


def _add_exact(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "exact",
        help="print the exact loss (or gradient) and its correctly rounded value for given inputs",
        description="Exact value (20 significant digits), correctly rounded value in decimal and hex, and its ULP."
        " Inputs are comma-separated decimal or hex numbers (rows separated by ';'), rounded to --dtype first,"
        " as a candidate computing in that dtype receives them. Negative first values need '=': --logits=-3,1.",
    )
    p.add_argument("family", help="sigmoid_ce, binary_ce, softmax_ce or sparse_softmax_ce")
    p.add_argument("--logits", help="logits (sigmoid_ce, softmax_ce, sparse_softmax_ce)")
    p.add_argument("--probs", help="probabilities (binary_ce)")
    p.add_argument("--labels", required=True, help="labels: soft labels in [0, 1], or class indices for sparse_softmax_ce")
    p.add_argument("--dtype", default="float32", help="float16, bfloat16, float32 or float64 (default float32)")
    p.add_argument("--reduction", default="none", help="none, sum or mean (default none)")
    p.add_argument("--gradient", action="store_true", help="the gradient with respect to the inputs instead of the loss")
    p.add_argument("--candidate", help="also run this candidate on the inputs and show its error: a built-in name, or a"
                   " function as package.module:function (as `lossfuzz audit` takes it, with --takes/--inputs/--kwargs)")
    from harness.options import FUNCTION_OPTIONS, add_options

    add_options(p, tuple(o for o in FUNCTION_OPTIONS if o.flag in ("--takes", "--inputs", "--kwargs", "--timeout", "--memory-mb")))
    p.set_defaults(handler=_cmd_exact)


def _cmd_exact(args: argparse.Namespace) -> int:
    import numpy as np

    import oracles
    from harness._values import float_hex, parse_values

    fmt = oracles.resolve_format(args.dtype)
    fam = oracles.get_family(args.family)
    text = getattr(args, fam.input_name)
    if text is None:
        raise UsageError(f"{fam.name} takes --{fam.input_name}; pass --{fam.input_name}=v1,v2,...")
    inputs = parse_values(text, fam.input_name, fmt)
    if fam.label_kind == "index":
        try:
            labels = np.array([int(v) for v in args.labels.replace(";", ",").split(",") if v.strip()], dtype=np.int64)
        except ValueError:
            raise UsageError(f"labels {args.labels!r}: sparse_softmax_ce takes integer class indices, e.g. --labels 2") from None
        labels = labels.reshape(inputs.shape[:-1])
    else:
        labels = parse_values(args.labels, "labels", fmt)
    what = "gradient" if args.gradient else "loss"
    truth = oracles.evaluate(fam.name, **{fam.input_name: inputs}, labels=labels, dtype=fmt, reduction=args.reduction, what=what)
    got = None
    if args.candidate:
        from harness.candidates import get_candidate

        if ":" in args.candidate:  # a user's function, run in a worker process as `lossfuzz audit` runs it
            import os

            from harness.auditing import call_function_once

            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())
            got, message = call_function_once(args.candidate, fam.name, inputs, labels, takes=args.takes,
                                              inputs_kind=args.inputs, reduction=args.reduction, kwargs=args.kwargs,
                                              timeout=args.timeout, memory_mb=args.memory_mb)
            if message:
                print(message)
        else:
            candidate = get_candidate(fam.name, args.candidate)
            got = np.asarray(candidate.load()(inputs, labels))
    print(f"{fam.name} {what} ({fam.definition}), reduction={args.reduction}, dtype={fmt.name}")
    print(f"  {fam.input_name}: {', '.join(float_hex(v) for v in np.ravel(inputs))}")
    print(f"  labels: {', '.join(str(int(v)) if fam.label_kind == 'index' else float_hex(v) for v in np.ravel(labels))}")
    errors = oracles.ulp_error(got, truth, fmt) if got is not None and got.shape == truth.rounded.shape else None
    for i, idx in enumerate(np.ndindex(truth.rounded.shape)):
        where = f"[{', '.join(map(str, idx))}]" if idx else ""
        status = truth.status[idx]
        exact_value = truth.exact_value(idx)  # 20 digits: from the Ziv path, on demand
        rounded = float(truth.rounded[idx])
        print(f"value{where}:")
        print(f"  exact     {oracles.format_exact(exact_value)}   ({status})")
        if status == "unconverged":
            print(f"  rounded   undecided at {truth.precision[idx]} bits: no value is claimed")
            continue
        print(f"  rounded   {str(fmt.numpy_dtype.type(rounded))}   {float_hex(rounded)}   ({fmt.name}, round to nearest even)")
        if np.isfinite(rounded):
            print(f"  ulp       2**{oracles.ulp_exponent(exact_value, fmt)}")
        if got is not None:
            value = float(np.ravel(got)[i]) if got.size == truth.rounded.size else None
            err = "" if errors is None else f"   {float(errors[idx]):.4g} ULP ({oracles.classify(got, truth, fmt)[idx]})"
            shown = "(shape differs)" if value is None else f"{value!r}   {float_hex(value)}"
            print(f"  {args.candidate:<9} {shown}{err}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lossfuzz",
        description="Numerical verification and fuzzing of ML loss functions against exact oracles.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_exact(sub)
    for module in _COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    return parser


# Commands defined in their own modules (each with add_parser(subparsers) and a handler), kept out of
# this file so that `lossfuzz --help` imports nothing heavy.
_COMMANDS: dict[str, str] = {"run": "harness.run_command", "audit": "harness.audit_command", "gate": "harness.gate_command"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except (UsageError, ValueError, ImportError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"lossfuzz: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lossfuzz: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
