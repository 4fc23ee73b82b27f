"""An unconverged oracle value is reported as such and excluded from the ULP statistics, with a count."""

import numpy as np

from harness.campaign import Settings, run_campaign
from harness.candidates import Candidate
from harness.reports import render
from harness.scoring import TruthCache, observe
from harness.metrics import summarize
from harness.strategies import Example


def test_unconverged_values_are_counted_and_never_scored_as_the_candidates_error(monkeypatch):
    from oracles import _fast, _ziv

    monkeypatch.setattr(_fast, "has_fast_path", lambda fmt: False)  # the fast path would settle 1 and 2 at once
    examples = [Example(np.float32(x), np.float32(0.5)) for x in (1.0, 2.0, np.inf)]
    monkeypatch.setattr(_ziv, "START_PRECISION", 8)
    monkeypatch.setattr(_ziv, "MAX_PRECISION", 8)
    cache = TruthCache("sigmoid_ce", "float32")
    nonsense = lambda x, z: np.full(x.shape, np.float32(123.0))  # noqa: E731
    stats = summarize(observe(nonsense, examples, cache).merged())
    assert stats["counts"]["unconverged"] == 2  # the two finite points did not settle at 8 bits
    assert stats["examples"] == 1  # only the limit value (x = inf gives +inf) was compared
    assert stats["max_ulp"] is None  # 123 vs +inf is not a ULP number
    assert stats["counts"]["finite_where_infinite"] == 1


def test_html_report_escapes_names_and_messages_from_candidates():
    evil = Candidate(
        name="<script>alert(1)</script>",
        family="sigmoid_ce",
        target="harness.candidates._numpy:sigmoid_numpy_stable",
        dtypes=("float32",),
        source='<img src=x onerror="alert(2)">',
    )
    result, _ = run_campaign(
        Settings(families=("sigmoid_ce",), candidates=(), dtypes=("float32",), examples=5, speed_elements=0),
        extra=[evil],
    )
    page = render(result, "html")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    markdown = render(result, "md")
    outside_code = "".join(markdown.split("```")[0::2])  # fenced code is shown as text
    assert "<script>" not in outside_code
