"""``lossfuzz exact FAMILY --logits ... --labels ...``: the exact loss (or gradient) and its correctly rounded
value for given inputs, and optionally a candidate's value and its error in ULPs."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..options import UsageError, add_options, import_from_cwd, reading_input, resolve

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    import oracles

    p = sub.add_parser(
        "exact",
        help="print the exact loss (or gradient) and its correctly rounded value for given inputs",
        description="Exact value (20 significant digits), correctly rounded value in decimal and hex, and its ULP."
        " Inputs are comma-separated decimal or hex numbers (rows separated by ';'), rounded to --dtype first,"
        " as a candidate computing in that dtype receives them. Negative first values need '=': --logits=-3,1.",
    )
    p.add_argument("family", help=f"one of: {oracles.family_names()}")
    add_options(p, "exact")
    p.set_defaults(handler=_exact)


def _read_inputs(family: str, options: dict[str, Any]) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """(family, format, inputs, labels) as typed, rounded to the dtype and checked as the oracle checks them;
    a one-line :class:`UsageError` for bad input."""
    import oracles

    from .._values import parse_values

    with reading_input():
        fmt = oracles.resolve_format(options["dtype"])
        fam = oracles.get_family(family)
    text = options[fam.input_name]
    if text is None:
        raise UsageError(f"{fam.name} takes --{fam.input_name}; pass --{fam.input_name}=v1,v2,...")
    given = options["label_values"]
    with reading_input():
        inputs = parse_values(text, fam.input_name, fmt)
        if fam.label_kind == "index":
            try:
                labels = np.array([int(v) for v in given.replace(";", ",").split(",") if v.strip()], dtype=np.int64)
            except ValueError:
                raise UsageError(f"labels {given!r}: {fam.name} takes integer class indices, e.g. --labels 2") from None
            rows = int(np.prod(inputs.shape[:-1]))
            if labels.size != rows:
                raise UsageError(f"--labels {given!r} has {labels.size} class indices; {fam.name} needs one per row of"
                                 f" --logits ({rows}; rows separated by ';')")
            labels = labels.reshape(inputs.shape[:-1])
        else:
            labels = parse_values(given, "labels", fmt)
        fam.prepare(inputs, labels)  # the oracle's own checks: label ranges, shapes
    return fam, fmt, inputs, labels


def _candidate_values(spec: str, fam: Any, inputs: np.ndarray, labels: np.ndarray, options: dict[str, Any],
                      params: dict[str, float]) -> Any:
    """What ``spec`` (a built-in name, or ``module:function`` called as ``lossfuzz audit`` calls it, in a
    worker process) returns on the inputs, its gradient with ``--gradient``; None (and a line saying why)
    when the candidate itself fails or has no gradient."""
    from ..candidates import NoGradient, get_candidate
    from ..records import CandidateFailure

    gradient = options["gradient"]
    if ":" in spec:  # a user's function: imported, called and converted in a worker, as `lossfuzz audit` runs it
        from ..auditing import call_function_once

        import_from_cwd()
        with reading_input():
            got, message = call_function_once(spec, fam.name, inputs, labels, takes=options["takes"],
                                              inputs_kind=options["inputs"], reduction=options["reduction"],
                                              kwargs=options["kwargs"], timeout=options["timeout"],
                                              memory_mb=options["memory_mb"], gradient=gradient,
                                              gradient_fn=options["gradient_fn"])
        if message:
            print(message)
        return got
    with reading_input():
        candidate = get_candidate(fam.name, spec)
    if not candidate.available():
        raise UsageError(f"candidate {spec} needs {', '.join(candidate.needs)}: {candidate.install_hint}")
    run = candidate.gradient if gradient else candidate
    try:
        with np.errstate(all="ignore"):
            return np.asarray(run(inputs, labels, **params) if getattr(candidate, "takes_params", False)
                              else run(inputs, labels))
    except NoGradient:
        print(f"{spec}: no gradient: {candidate.gradient_note}")
    except CandidateFailure as exc:
        print(f"{spec}: {exc} ({exc.kind})")
    except Exception as exc:  # noqa: BLE001 - the candidate's own failure is output, not a usage error
        print(f"{spec}: raised {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
    return None


def _exact(args: argparse.Namespace) -> int:
    import oracles

    from .._values import float_hex

    options = resolve("exact", args)
    fam, fmt, inputs, labels = _read_inputs(args.family, options)
    what = "gradient" if options["gradient"] else "loss"
    with reading_input():
        params = fam.check_params(options["params"] or {})  # one-line errors: unknown name, bad value
    truth = oracles.evaluate(fam.name, **{fam.input_name: inputs}, labels=labels, dtype=fmt,
                             reduction=options["reduction"], what=what, params=params)
    spec = options["candidate"]
    got = _candidate_values(spec, fam, inputs, labels, options, params) if spec else None
    print(f"{fam.name} {what} ({fam.definition}), reduction={options['reduction']}, dtype={fmt.name}"
          + "".join(f", {k}={v:g}" for k, v in params.items()))
    print(f"  {fam.input_name}: {', '.join(float_hex(v) for v in np.ravel(inputs))}")
    print(f"  labels: {', '.join(str(int(v)) if fam.label_kind == 'index' else float_hex(v) for v in np.ravel(labels))}")
    _print_values(truth, fmt, spec, got)
    return 0


def _print_values(truth: Any, fmt: Any, spec: str | None, got: np.ndarray | None) -> None:
    """Each value: exact (20 digits), correctly rounded, its ULP, and the candidate's value and error."""
    import oracles

    from .._values import float_hex

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
            print(f"  {spec:<9} {shown}{err}")
