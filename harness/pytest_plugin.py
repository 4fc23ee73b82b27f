"""pytest plugin (entry point ``pytest11``: ``lossfuzz``): state an accuracy bound on your loss in your tests.

Fixture::

    def test_my_loss_is_accurate(lossfuzz):
        lossfuzz.check(my_loss, family="sigmoid_ce", dtype="float32", max_ulp=4, allow_nonfinite=False)

Marker (its arguments are the defaults of ``lossfuzz.check`` in that test; with ``fn=`` the plugin runs the
check itself before the test body)::

    @pytest.mark.lossfuzz(family="sigmoid_ce", dtype="float32", max_ulp=4)
    def test_my_loss(lossfuzz):
        lossfuzz.check(my_loss)

    @pytest.mark.lossfuzz(fn=my_loss, family="sigmoid_ce", dtype="float32", max_ulp=4)
    def test_my_loss_bound():
        pass

The function is scored in this process (no worker) through :func:`harness.adapters.function_candidate`
(calling convention from ``takes`` or its signature: ``(labels, logits)``, ``(y_true, y_pred)``, ...) on the
family's boundary catalogue and a seeded Hypothesis search, against the exact oracle. The check fails (an
``AssertionError``) when the max ULP error exceeds ``max_ulp``, when it returns a non-finite value where the
exact loss is finite (or the like) on finite inputs and ``allow_nonfinite`` is False, when it raises, or when
it cannot be scored, for each quantity checked (``quantities``, as ``lossfuzz run --quantities``: the loss
and the gradient with respect to the inputs by default; a function without a gradient is checked on its loss,
with a warning that says why); the message shows the shrunk reproducer: inputs in hex, got vs exact, ULPs, the outcome
and a command that replays it (``--candidate MODULE:NAME``; for a lambda or local function, which cannot be
imported again, it says so and replays the exact value only). Mistakes on ±inf/nan inputs are reported, never failed on.

Options ``--lossfuzz-seed``, ``--lossfuzz-examples`` and ``--lossfuzz-quantities`` (or ``lossfuzz_seed``,
``lossfuzz_examples``, ``lossfuzz_quantities`` in the ini file; the ``lossfuzz run`` options ``--seed``,
``--examples`` and ``--quantities``: the ``plugin`` face of
:data:`harness.options.OPTIONS`) set the defaults of every check; the arguments of ``check`` are its
``check`` face, read by the same :func:`harness.options.resolve` as the commands' options. Importing this
plugin imports neither TensorFlow, Keras nor matplotlib; disable it with ``-p no:lossfuzz``.
"""

from __future__ import annotations

import shlex
from typing import Any, Callable

import pytest

__all__ = ["LossFuzz", "check", "judge", "bound_problems", "failure_message", "MARKER"]

MARKER = "lossfuzz"


def _plugin_options() -> tuple:
    from harness.options import options_for

    return options_for("plugin")


def pytest_addoption(parser: pytest.Parser) -> None:
    from harness.options import argparse_type

    group = parser.getgroup("lossfuzz", "lossfuzz: accuracy bounds of loss functions against exact oracles")
    for o in _plugin_options():
        flag = f"--lossfuzz-{o.flag.lstrip('-')}"
        group.addoption(flag, dest=f"lossfuzz_{o.name}", type=argparse_type(o.parse), default=None,
                        metavar=o.metavar, help=f"default of lossfuzz.check(): {o.help}")
        parser.addini(f"lossfuzz_{o.name}", f"default of lossfuzz.check() ({flag} overrides it): {o.help}", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "lossfuzz(fn=None, family=..., dtype='float32', max_ulp=4, allow_nonfinite=False, examples=None, seed=None,"
        " takes=None, inputs=None, reduction='none', kwargs=None, name=None, quantities=None): an accuracy bound on a"
        " loss function"
        " (lossfuzz); defaults for the lossfuzz fixture's check(), run before the test when fn is given",
    )


def plugin_defaults(config: pytest.Config | None) -> dict[str, Any]:
    """The defaults the plugin's options give every check: ``--lossfuzz-X``, else ``lossfuzz_X`` from the
    ini file (text, read by the option's own parser); those not set are absent."""
    out: dict[str, Any] = {}
    if config is None:
        return out
    for o in _plugin_options():
        value = config.getoption(f"lossfuzz_{o.name}", default=None)
        if value is None:
            value = config.getini(f"lossfuzz_{o.name}") or None
        if value is not None:
            out[o.name] = value
    return out


def bound_problems(score: Any, max_ulp: float | None, allow_nonfinite: bool) -> list[str]:
    """What breaks the bound, one line each (empty: the score is within it)."""
    from harness.gate import nonfinite_on_finite_inputs
    from harness._values import fmt_ulp

    if score.unsupported:
        return [f"rejects {score.dtype} inputs (unsupported){': ' + score.failure if score.failure else ''}"]
    if score.examples == 0:
        return [f"could not be scored: {score.failure or 'no example gave a comparable value'}"]
    problems = []
    if max_ulp is not None:
        if score.max_ulp is None:
            problems.append("no result had a ULP error to compare (every value non-finite?)")
        elif not score.max_ulp <= max_ulp:
            problems.append(f"max ULP error {fmt_ulp(score.max_ulp)} > {max_ulp:g}")
    bad = nonfinite_on_finite_inputs(score)
    if bad and not allow_nonfinite:
        c = score.counts
        detail = ", ".join(f"{k} {int(c.get(k, 0))}" for k in ("nan", "inf", "finite_where_infinite") if c.get(k))
        problems.append(f"{bad} non-finite results on finite inputs ({detail or 'other non-finite outcomes'})")
    raised = int(score.counts.get("raised", 0) or 0)
    if raised:
        first = score.findings[0].message if score.findings else (score.failure or "")
        problems.append(f"raised on {raised} examples: {first}")
    return problems


def _exact_command(replay: str) -> str:
    """The case's replay command without ``--candidate`` (it names a function lossfuzz cannot import)."""
    try:
        words = shlex.split(replay)
    except ValueError:
        return replay
    out, skip = [], False
    for word in words:
        if skip:
            skip = False
            continue
        if word == "--candidate":
            skip = True
            continue
        if word.startswith("--candidate="):
            continue
        out.append(word)
    return shlex.join(out)


def _case_lines(label: str, case: Any, input_name: str, replay_note: str = "") -> list[str]:
    from harness.outcomes import case_error

    if replay_note:
        replay = f"  replay: not available ({replay_note}); the exact value: {_exact_command(case.replay)}"
    else:
        replay = f"  replay: {case.replay}"
    return [
        f"{label}:",
        f"  {input_name:<7} {', '.join(case.inputs)}",
        f"  {'labels':<7} {', '.join(case.labels)}",
        f"  {'got':<7} {case.got}",
        f"  {'exact':<7} {case.exact}   (correctly rounded {case.rounded})",
        f"  {'error':<7} {case_error(case)}   [outcome: {case.outcome}]",
        replay,
    ]


def failure_message(score: Any, problems: list[str], *, what: str, max_ulp: float | None, allow_nonfinite: bool,
                    seed: int, examples: int, replay_note: str = "") -> str:
    """The assertion message: what breaks the bound (``the gradient of WHAT`` for a gradient row), then the
    shrunk reproducer (or worst case) in hex, with a replay command that runs the function again
    (``--candidate MODULE:NAME``), or why there is none (``replay_note``) and the command for the exact value."""
    import oracles
    from harness.gate import relevant_case

    input_name = oracles.get_family(score.family).input_name
    bound = f"max_ulp={'none' if max_ulp is None else format(max_ulp, 'g')}, allow_nonfinite={allow_nonfinite}"
    subject = f"the gradient of {what}" if getattr(score, "quantity", "loss") == "gradient" else what
    lines = [f"lossfuzz: {subject} on {score.family} {score.dtype} breaks its bound ({bound}):"]
    lines += [f"  - {p}" for p in problems]
    lines.append(f"  scored on {score.examples} examples: the boundary catalogue + {examples} Hypothesis examples"
                 f" (seed {seed}) against the exact oracle")
    shown: list[Any] = []
    ulp_broken = any(p.startswith("max ULP") for p in problems)
    nonfinite_broken = any("non-finite results on finite inputs" in p for p in problems)
    if nonfinite_broken:
        shown.append(relevant_case(score, None, True))
    if ulp_broken:
        shown.append(relevant_case(score, max_ulp, False))
    if not shown:
        shown.append(relevant_case(score, None, False))
    seen = set()
    for case in shown:
        if case is None or id(case) in seen:
            continue
        seen.add(id(case))
        label = "shrunk reproducer" if case is score.reproducer else "worst case"
        lines += _case_lines(label, case, input_name, replay_note)
    if score.findings and any(p.startswith("raised") for p in problems):
        f = score.findings[0]
        lines += ["first raise:", f"  {input_name:<7} {', '.join(f.inputs)}", f"  {'labels':<7} {', '.join(f.labels)}",
                  f"  {f.kind}: {f.message}"]
    return "\n".join(lines)


def _describe(fn: Any) -> str:
    if isinstance(fn, str):
        return fn
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__
    return str(name)


class _Default:
    """Marks an argument left out (``max_ulp=None`` means no bound, so None cannot)."""

    def __repr__(self) -> str:
        return "default"


DEFAULT: Any = _Default()


def _given(**arguments: Any) -> dict[str, Any]:
    """The arguments given (None: left out), ``max_ulp=None`` written as the option reads it ("none")."""
    max_ulp = arguments.pop("max_ulp")
    given = {k: v for k, v in arguments.items() if v is not None}
    if max_ulp is not DEFAULT:
        given["max_ulp"] = "none" if max_ulp is None else max_ulp
    return given


def check(
    fn: Callable[..., Any] | str,
    family: str | None = None,
    dtype: str | None = None,
    *,
    max_ulp: float | None = DEFAULT,
    allow_nonfinite: bool | None = None,
    examples: int | None = None,
    seed: int | None = None,
    takes: str | tuple[str, ...] | None = None,
    inputs: str | None = None,
    reduction: str | None = None,
    kwargs: dict | None = None,
    name: str | None = None,
    quantities: str | tuple[str, ...] | None = None,
) -> Any:
    """Score ``fn`` (a callable or ``"module:function"``) on ``family`` in ``dtype`` and return its
    :class:`~harness._records.Score` (the loss's; the gradient's when only the gradient is checked);
    ``AssertionError`` with the reproducer when a checked quantity breaks the bound. Arguments left out take
    the ``check`` defaults of :data:`harness.options.OPTIONS` (float32, ``max_ulp=4``, no non-finite results,
    60 examples, seed 0, ``quantities="loss,gradient"``); ``max_ulp=None``: no ULP bound."""
    __tracebackhide__ = True
    from harness.options import CheckSettings, settings

    given = _given(family=family, dtype=dtype, max_ulp=max_ulp, allow_nonfinite=allow_nonfinite, examples=examples,
                   seed=seed, takes=takes, inputs=inputs, reduction=reduction, kwargs=kwargs, name=name,
                   quantities=quantities)
    return check_settings(fn, settings(CheckSettings, "check", given))


def check_settings(fn: Callable[..., Any] | str, chosen: Any) -> Any:
    """:func:`check` with its arguments as a :class:`harness.options.CheckSettings`: the function is scored by
    the campaign of ``lossfuzz run`` (``chosen.campaign()``: its family and dtype, each quantity asked), and
    each quantity's score is held to the bound (:func:`judge`)."""
    __tracebackhide__ = True
    from harness.adapters import function_candidate
    from harness.campaign import run_campaign
    from harness.options import UsageError

    if chosen.family is None:
        raise UsageError(f"lossfuzz.check needs family=: {', '.join(_families())} (as an argument or in"
                         " @pytest.mark.lossfuzz(family=...))")
    what = chosen.name or _describe(fn)
    candidate = function_candidate(fn, chosen.family, takes=chosen.takes, inputs=chosen.inputs,
                                   reduction=chosen.reduction, kwargs=chosen.kwargs, name=what, isolate=False)
    try:
        result, _ = run_campaign(chosen.campaign(), extra=[candidate])
    finally:
        candidate.close()
    if result.partial:  # the campaign keeps what it finished on Ctrl-C; a test run stops
        raise KeyboardInterrupt
    from harness.auditing import replay_unavailable, replay_words, rewrite_score_replays

    note = replay_unavailable(fn, candidate.target)
    scores = [s for s in result.scores if s.candidate == candidate.name]
    if not note:
        words = replay_words(candidate.target, chosen.takes, chosen.inputs, chosen.kwargs)
        scores = [rewrite_score_replays(s, words) for s in scores]
    return judge(scores, chosen, what, replay_note=note,
                 gradient_note=getattr(candidate, "gradient_note", "") or "no gradient was scored")


def judge(scores: Any, chosen: Any, what: str, *, replay_note: str = "", gradient_note: str = "") -> Any:
    """Hold each quantity of ``chosen.quantities`` to the bound of ``chosen`` (a
    :class:`harness.options.CheckSettings`): ``scores`` are the function's scores (one per quantity). A
    quantity without a score is a :class:`pytest.PytestWarning` saying why (``gradient_note``: e.g. plain numpy
    code has no autodiff), never a failure; every quantity that breaks the bound is in the one
    ``AssertionError``. Returns the loss's score (the gradient's when only the gradient is checked)."""
    __tracebackhide__ = True
    import warnings

    by_quantity = {s.quantity: s for s in scores}
    messages, checked = [], []
    for quantity in chosen.quantities:
        score = by_quantity.get(quantity)
        if score is None or (quantity == "gradient" and score.unsupported):  # no gradient: plain numpy code
            why = (score.failure if score is not None else None) or (gradient_note if quantity == "gradient" else "no score")
            warnings.warn(pytest.PytestWarning(f"lossfuzz: {what}: its {quantity} is not checked: {why}"), stacklevel=3)
            continue
        checked.append(score)
        problems = bound_problems(score, chosen.max_ulp, chosen.allow_nonfinite)
        if problems:
            messages.append(failure_message(score, problems, what=what, max_ulp=chosen.max_ulp,
                                            allow_nonfinite=chosen.allow_nonfinite, seed=chosen.seed,
                                            examples=chosen.examples, replay_note=replay_note))
    if messages:
        raise AssertionError("\n\n".join(messages))
    if not checked:
        raise AssertionError(f"lossfuzz: {what} on {chosen.family} {chosen.dtype}: nothing was scored"
                             f" (quantities {', '.join(chosen.quantities)})")
    return checked[0]


def _families() -> tuple[str, ...]:
    import oracles

    return tuple(oracles.FAMILIES)


class LossFuzz:
    """The ``lossfuzz`` fixture: :meth:`check` with the test's marker arguments, then the plugin's options
    (``--lossfuzz-*``, ini), then the ``check`` defaults."""

    def __init__(self, config: pytest.Config | None = None, marker_kwargs: dict | None = None) -> None:
        from harness.options import options_for

        self.config = config
        self.defaults = dict(marker_kwargs or {})
        self.defaults.pop("fn", None)
        known = [o.name for o in options_for("check")]
        unknown = sorted(set(self.defaults) - set(known))
        if unknown:
            raise TypeError(f"@pytest.mark.lossfuzz got unknown argument {unknown[0]!r}; known: fn, {', '.join(known)}")

    def check(self, fn: Callable[..., Any] | str, family: str | None = None, dtype: str | None = None, *,
              max_ulp: float | None = DEFAULT, allow_nonfinite: bool | None = None, examples: int | None = None,
              seed: int | None = None, takes: str | tuple[str, ...] | None = None, inputs: str | None = None,
              reduction: str | None = None, kwargs: dict | None = None, name: str | None = None,
              quantities: str | tuple[str, ...] | None = None) -> Any:
        """Score ``fn`` and assert the bound (see :func:`check`); unset arguments come from the marker, the
        ``--lossfuzz-*`` options, then the defaults (float32, max_ulp=4, no non-finite results)."""
        __tracebackhide__ = True
        from harness.options import CheckSettings, settings

        marker = _given(**{"max_ulp": DEFAULT, **self.defaults})
        given = _given(family=family, dtype=dtype, max_ulp=max_ulp, allow_nonfinite=allow_nonfinite, examples=examples,
                       seed=seed, takes=takes, inputs=inputs, reduction=reduction, kwargs=kwargs, name=name,
                       quantities=quantities)
        return check_settings(fn, settings(CheckSettings, "check", {**plugin_defaults(self.config), **marker, **given}))


def _marker_kwargs(node: Any) -> tuple[dict, Any]:
    marker = node.get_closest_marker(MARKER)
    if marker is None:
        return {}, None
    kwargs = dict(marker.kwargs)
    fn = kwargs.get("fn")
    if fn is None and marker.args:
        fn = marker.args[0]
    return kwargs, fn


@pytest.fixture
def lossfuzz(request: pytest.FixtureRequest) -> LossFuzz:
    """Check a loss function against an accuracy bound: ``lossfuzz.check(fn, family=..., max_ulp=...)``."""
    kwargs, _fn = _marker_kwargs(request.node)
    return LossFuzz(request.config, kwargs)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """With ``@pytest.mark.lossfuzz(fn=...)``, check the bound before the test body runs."""
    __tracebackhide__ = True
    kwargs, fn = _marker_kwargs(item)
    if fn is None:
        return
    LossFuzz(item.config, kwargs).check(fn)
