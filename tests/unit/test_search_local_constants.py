"""A search's examples depend on its seed alone, not on which modules the process imported.

Hypothesis (6.131 on) also draws numbers written in the source of the "local" modules imported at the time
(outside the standard library and site-packages): lossfuzz itself when installed editable, an audited
module, a user's code. Without :func:`harness.search._no_local_constants`, ``lossfuzz run`` (which imports its
commands), ``run_campaign`` from Python and a Dask worker drew different examples for one seed."""

from __future__ import annotations

import importlib
import sys

from harness.candidates import get_candidate
from harness.scoring import TruthCache
from harness.search import search


def explored(seed: int = 11) -> list:
    naive = get_candidate("sigmoid_ce", "naive")
    result = search(naive, "sigmoid_ce", "float32", TruthCache("sigmoid_ce", "float32"), seed=seed, max_examples=40,
                    shrink=False)
    return [tuple(e.key for e in group) for group in result.observations.groups]


def test_importing_a_module_full_of_numbers_does_not_change_the_examples_a_seed_draws(tmp_path, monkeypatch):
    before = explored()
    # a local module (outside site-packages, not named like a test) with a few hundred literals, floats exact
    # in float32 and integers, as an audited module or lossfuzz's own commands bring (Hypothesis ignores a
    # module with more than 1024)
    numbers = ", ".join(f"{k * 0.375}, -{k * 3.25}, {100 + k}" for k in range(1, 300))
    (tmp_path / "lossfuzz_numbers_module.py").write_text(f"NUMBERS = ({numbers})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("lossfuzz_numbers_module")
    try:
        after = explored()
    finally:
        sys.modules.pop("lossfuzz_numbers_module", None)
    assert after == before
    assert explored(seed=12) != before  # (the seed does matter)


def test_hypothesis_gets_its_local_constants_back_after_a_search():
    from hypothesis.internal.conjecture import providers

    own = providers._get_local_constants
    explored()
    assert providers._get_local_constants is own  # the user's own Hypothesis tests in this process are untouched
