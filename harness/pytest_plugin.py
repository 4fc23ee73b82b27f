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
it cannot be scored; the message shows the shrunk reproducer: inputs in hex, got vs exact, ULPs, the outcome
and a command that replays it (``--candidate MODULE:NAME``; for a lambda or local function, which cannot be
imported again, it says so and replays the exact value only). Mistakes on ±inf/nan inputs are reported, never failed on.

Options ``--lossfuzz-seed`` and ``--lossfuzz-examples`` (the ``lossfuzz run`` options ``--seed`` and
``--examples``, defined once in :mod:`harness.options`) set the defaults of every check. Importing this
plugin imports neither TensorFlow, Keras nor matplotlib; disable it with ``-p no:lossfuzz``.
"""

from __future__ import annotations

import shlex
from typing import Any, Callable

import pytest

__all__ = ["LossFuzz", "check", "bound_problems", "failure_message", "MARKER"]

MARKER = "lossfuzz"
# The run options the plugin exposes, as --lossfuzz-<flag>.
_SHARED = ("seed", "examples")
# Check defaults not taken from harness.options.
_DEFAULTS: dict[str, Any] = {"family": None, "dtype": "float32", "max_ulp": 4.0, "allow_nonfinite": False,
                             "takes": None, "inputs": None, "reduction": "none", "kwargs": None, "name": None}


def _shared_options() -> tuple:
    from harness.options import RUN_OPTIONS

    return tuple(o for o in RUN_OPTIONS if o.dest in _SHARED)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lossfuzz", "lossfuzz: accuracy bounds of loss functions against exact oracles")
    for o in _shared_options():
        group.addoption(f"--lossfuzz-{o.flag.lstrip('-')}", dest=f"lossfuzz_{o.dest}", type=o.type, default=None,
                        metavar=o.metavar, help=f"default of lossfuzz.check(): {o.help}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "lossfuzz(fn=None, family=..., dtype='float32', max_ulp=4, allow_nonfinite=False, examples=None, seed=None,"
        " takes=None, inputs=None, reduction='none', kwargs=None, name=None): an accuracy bound on a loss function"
        " (lossfuzz); defaults for the lossfuzz fixture's check(), run before the test when fn is given",
    )


def _option_default(config: pytest.Config | None, dest: str) -> Any:
    value = config.getoption(f"lossfuzz_{dest}", default=None) if config is not None else None
    if value is not None:
        return value
    return next(o.default for o in _shared_options() if o.dest == dest)


def bound_problems(score: Any, max_ulp: float | None, allow_nonfinite: bool) -> list[str]:
    """What breaks the bound, one line each (empty: the score is within it)."""
    from harness.gate import nonfinite_on_finite_inputs
    from harness.reports._common import fmt_ulp

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
    from harness.reports._common import case_error

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
    """The assertion message: what breaks the bound, then the shrunk reproducer (or worst case) in hex, with
    a replay command that runs the function again (``--candidate MODULE:NAME``), or why there is none
    (``replay_note``) and the command for the exact value."""
    import oracles
    from harness.gate import relevant_case

    input_name = oracles.get_family(score.family).input_name
    bound = f"max_ulp={'none' if max_ulp is None else format(max_ulp, 'g')}, allow_nonfinite={allow_nonfinite}"
    lines = [f"lossfuzz: {what} on {score.family} {score.dtype} breaks its bound ({bound}):"]
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


def check(
    fn: Callable[..., Any] | str,
    family: str,
    dtype: str = "float32",
    *,
    max_ulp: float | None = 4.0,
    allow_nonfinite: bool = False,
    examples: int = 60,
    seed: int = 0,
    takes: str | tuple[str, ...] | None = None,
    inputs: str | None = None,
    reduction: str = "none",
    kwargs: dict | None = None,
    name: str | None = None,
) -> Any:
    """Score ``fn`` (a callable or ``"module:function"``) on ``family`` in ``dtype`` and return its
    :class:`~harness._records.Score`; ``AssertionError`` with the reproducer when it breaks the bound."""
    __tracebackhide__ = True
    from harness.adapters import function_candidate
    from harness.campaign import Settings, score_candidate
    from harness.scoring import TruthCache
    from harness.strategies import catalogue

    if family is None:
        raise ValueError(f"lossfuzz.check needs family=: one of {__import__('oracles').family_names()}"
                         " (as an argument or in @pytest.mark.lossfuzz(family=...))")
    what = name or _describe(fn)
    candidate = function_candidate(fn, family, takes=takes, inputs=inputs, reduction=reduction, kwargs=kwargs,
                                   name=what, isolate=False)
    settings = Settings(seed=seed, examples=examples, families=(candidate.family,), candidates=(), dtypes=(dtype,),
                        speed_elements=0, shrink=True)
    try:
        score, _ = score_candidate(candidate, dtype, catalogue(candidate.family, dtype), TruthCache(candidate.family, dtype),
                                   settings)
    finally:
        candidate.close()
    from harness.auditing import replay_unavailable, replay_words, rewrite_score_replays

    note = replay_unavailable(fn, candidate.target)
    if not note:
        score = rewrite_score_replays(score, replay_words(candidate.target, takes, inputs, kwargs))
    problems = bound_problems(score, max_ulp, allow_nonfinite)
    if problems:
        raise AssertionError(failure_message(score, problems, what=what, max_ulp=max_ulp, allow_nonfinite=allow_nonfinite,
                                             seed=seed, examples=examples, replay_note=note))
    return score


class LossFuzz:
    """The ``lossfuzz`` fixture: :meth:`check` with the test's marker arguments and the command-line options
    as defaults."""

    def __init__(self, config: pytest.Config | None = None, marker_kwargs: dict | None = None) -> None:
        self.config = config
        self.defaults = dict(marker_kwargs or {})
        self.defaults.pop("fn", None)
        unknown = sorted(set(self.defaults) - set(_DEFAULTS) - set(_SHARED))
        if unknown:
            raise TypeError(f"@pytest.mark.lossfuzz got unknown argument {unknown[0]!r}; known: fn, "
                            f"{', '.join(list(_DEFAULTS) + list(_SHARED))}")

    def _get(self, key: str, given: Any) -> Any:
        if given is not None:
            return given
        if self.defaults.get(key) is not None:
            return self.defaults[key]
        if key in _SHARED:
            return _option_default(self.config, key)
        return _DEFAULTS[key]

    def check(self, fn: Callable[..., Any] | str, family: str | None = None, dtype: str | None = None, *,
              max_ulp: float | None = None, allow_nonfinite: bool | None = None, examples: int | None = None,
              seed: int | None = None, takes: str | tuple[str, ...] | None = None, inputs: str | None = None,
              reduction: str | None = None, kwargs: dict | None = None, name: str | None = None) -> Any:
        """Score ``fn`` and assert the bound (see :func:`check`); unset arguments come from the marker, the
        ``--lossfuzz-*`` options, then the defaults (float32, max_ulp=4, no non-finite results)."""
        __tracebackhide__ = True
        given = dict(family=family, dtype=dtype, max_ulp=max_ulp, allow_nonfinite=allow_nonfinite, examples=examples,
                     seed=seed, takes=takes, inputs=inputs, reduction=reduction, kwargs=kwargs, name=name)
        resolved = {k: self._get(k, v) for k, v in given.items()}
        return check(fn, **resolved)


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
