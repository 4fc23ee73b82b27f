"""A report's provenance names numpy's SIMD targets, since numpy's float32 ``exp`` gives other values on
another one (README, "Figures that depend on the machine"), and two provenances are compared for what can
move a candidate's figures without a change to its code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.provenance import environment_changes, numpy_simd, numpy_target, provenance

pytestmark = pytest.mark.timeout(120)

PROBE = ("import json, numpy as np; from harness.provenance import numpy_simd;"
         " x = np.full(64, np.float32(-2.042401075363159));"
         " print(json.dumps([numpy_simd(), float(np.exp(x)[0]).hex()]))")


def probe(env: dict[str, str]) -> tuple[dict, str]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60,
                         env={**os.environ, **env}, check=True).stdout
    simd, value = json.loads(out)
    return simd, value


def test_the_provenance_names_the_simd_targets_numpy_runs_here():
    simd = provenance(0)["machine"]["numpy_simd"]
    assert simd == numpy_simd() and simd["baseline"]  # every numpy build has a baseline
    assert numpy_target().endswith(" ".join(simd["baseline"] + simd["found"]))


def test_a_target_turned_off_leaves_the_record_and_on_this_machine_changes_float32_exp():
    here, value_here = probe({})
    if not here["found"]:  # nothing dispatched above the baseline on this CPU: nothing to turn off
        assert numpy_simd()["found"] == []
        return
    widest = here["found"][-1]
    off, value_off = probe({"NPY_DISABLE_CPU_FEATURES": widest})
    assert widest not in off["found"] and off["baseline"] == here["baseline"]
    # the reason the target is provenance, where it is X86_V3 (AVX2, FMA3): another float32 exp
    if widest == "X86_V3":
        assert (value_here, value_off) == ("0x1.09a8fe0000000p-3", "0x1.09a9000000000p-3")


def test_changes_name_library_versions_and_simd_targets_and_nothing_a_report_does_not_say():
    a = {"versions": {"lossfuzz": "0.1.0", "numpy": "2.4.5", "torch": "2.13.0", "jax": None},
         "machine": {"numpy_simd": {"baseline": ["X86_V2"], "found": ["X86_V3", "X86_V4"]}}}
    b = {"versions": {"lossfuzz": "0.2.0", "numpy": "2.4.6", "torch": "2.13.0", "jax": "0.10.2"},
         "machine": {"numpy_simd": {"baseline": ["X86_V2"], "found": ["X86_V3"]}}}
    assert environment_changes(a, b) == ("numpy 2.4.5 → 2.4.6", "numpy SIMD X86_V2 X86_V3 X86_V4 → X86_V2 X86_V3")
    assert environment_changes(a, a) == ()
    assert environment_changes({"machine": {"cpus": 2}}, b) == ()  # an older report: no SIMD record
    assert environment_changes(None, b) == environment_changes(a, "not a provenance") == ()


def test_the_provenance_says_when_tracked_files_differ_from_the_commit(tmp_path):
    from harness.provenance import _git_commit, _git_dirty

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=tmp_path,
                       check=True, capture_output=True, timeout=30)

    assert _git_dirty(str(tmp_path)) is None and _git_commit(str(tmp_path)) is None  # not a checkout
    (tmp_path / "loss.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", "loss.py")
    git("commit", "-q", "-m", "first")
    assert _git_dirty(str(tmp_path)) is False and len(_git_commit(str(tmp_path))) == 40
    (tmp_path / "report.json").write_text("{}")  # untracked output: the code is still the commit's
    assert _git_dirty(str(tmp_path)) is False
    (tmp_path / "loss.py").write_text("x = 2\n")
    assert _git_dirty(str(tmp_path)) is True
    assert provenance(0)["git_dirty"] == _git_dirty()  # a report records this checkout's state
