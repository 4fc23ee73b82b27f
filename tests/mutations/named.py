"""The deliberate bugs of issue 15, applied one at a time: each must make the fast tests that guard it fail.

Run it with ``tox -e mutants`` or ``python -m tests.mutations.named`` (opt in, not collected by pytest: about
five minutes on 2 cores). Each mutation is a text patch of one source file, applied in place and always
restored (the file is also checked to be unchanged against git first); its tests run under a time limit,
so a mutation that makes code hang (the worker that ignores its timeout) shows as caught by pytest-timeout,
never as a hung run. Exit status 1 if any mutation survives.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments: the fast tests that must catch it


MUTATIONS = (
    Mutation("p99 as percentile(v, 0.99)", "harness/metrics.py",
             'np.percentile(v, 99, method="higher")', 'np.percentile(v, 0.99, method="higher")',
             ("tests/unit/test_metrics.py",)),
    Mutation("histogram bins <= changed to <", "harness/metrics.py",
             "int(np.count_nonzero(inexact & (ulp > e)))", "int(np.count_nonzero(inexact & (ulp >= e)))",
             ("tests/unit/test_metrics.py",)),
    Mutation("exp of a huge integer reduced at the working precision", "oracles/_family.py",
             "    with workprec(ctx, ctx.prec + magnitude + 20):\n", "    with workprec(ctx, ctx.prec):\n",
             ("tests/unit/test_oracle_values.py",)),
    Mutation("strategies.logits never above 100", "harness/strategies.py",
             "    return st.one_of(st.sampled_from(specials), moderate, anywhere)\n",
             "    return st.one_of(st.sampled_from(specials), moderate, anywhere).map(lambda v: min(v, 100.0))\n",
             ("tests/unit/test_strategies.py", "-k", "beyond_100")),
    Mutation("HTML report drops the worst-case list", "harness/reports/html.py",
             "                 for i, w in enumerate(s.worst))\n", "                 for i, w in enumerate(()))\n",
             ("tests/unit/test_reports.py",)),
    Mutation("worker ignores its timeout (waits forever)", "harness/isolation.py",
             "        deadline, by_budget = self._deadline(self.timeout)\n",
             "        deadline, by_budget = self._deadline(10 ** 9)\n",
             ("tests/unit/test_isolation.py",)),
    Mutation("float64 intermediate in the sigmoid_ce oracle (1 - z)", "oracles/_sigmoid_ce.py",
             "w = ctx.mpf(1) - ctx.mpf(z) if x >= 0", "w = ctx.mpf(1.0 - z) if x >= 0",
             ("tests/unit/test_oracle_hard_points.py",)),
    Mutation("interval widening of exp/log removed", "oracles/_family.py",
             "    return value * factor\n", "    return value\n",
             ("tests/unit/test_oracle_hard_points.py",)),
    Mutation("rounding decided on the interval ends (no nudge inside)", "oracles/_ziv.py",
             "inner_lo, inner_hi = nudge(lo, fmt, up=True), nudge(hi, fmt, up=False)", "inner_lo, inner_hi = lo, hi",
             ("tests/unit/test_oracle_hard_points.py",)),
    Mutation("rounding decided from the lower end only", "oracles/_ziv.py",
             "    if float_key(r_lo) != float_key(r_hi):\n        return None\n", "",
             ("tests/unit/test_oracle_hard_points.py",)),
    Mutation("numpy_stable with log(1 + e) instead of log1p(e)", "harness/candidates/_numpy.py",
             "    return np.maximum(x, t(0)) - x * z + np.log1p(np.exp(-np.abs(x)))\n",
             "    return np.maximum(x, t(0)) - x * z + np.log(t(1) + np.exp(-np.abs(x)))\n",
             ("tests/unit/test_candidates.py", "-k", "stable")),
    Mutation("the fast estimate kept outside a proven bound (the binade of 1 for 1 - 2**-60)", "oracles/_fast.py",
             "    v = estimate.value\n    if estimate.low is not None or (estimate.above is None and estimate.below is None):\n",
             "    v = estimate.value\n    if True:\n",
             ("tests/unit/test_fast_oracle.py", "-k", "proven_bound or every_bfloat16")),
    Mutation("a sweep's gradient components counted once per case", "harness/_sweep_kernel.py",
             "_run(start * per, stop * per,", "_run(start, stop,",
             ("tests/unit/test_exhaustive_gradients.py",)),
    Mutation("a sweep's quantile bin one too low at each bin's lower edge", "harness/_sweep_kernel.py",
             "j += mantissa >= _MANTISSAS[j + 1]", "j += mantissa > _MANTISSAS[j + 1]",
             ("tests/unit/test_sweep_kernel.py",)),
    Mutation("a sweep chunk's worst values: a later one of equal error displaces the first", "harness/_sweep_kernel.py",
             "        if severity > gate:", "        if severity >= gate:",
             ("tests/unit/test_sweep_kernel.py",)),
    Mutation("the compiled next-up of a negative float64 steps away from zero", "oracles/_kernels.py",
             "    return _float_of(b + 1 if b > 0 else b - 1)", "    return _float_of(b + 1)",
             ("tests/unit/test_kernels.py",)),
    Mutation("examples with a nan decided with the fast path's status", "oracles/_api.py",
             "            status[out.nan] = NAN\n", "            status[out.nan] = out.fast_status\n",
             ("tests/unit/test_fast_oracle.py", "-k", "nan_are_decided")),
    Mutation("the second fast tier rounds a midpoint to the side opposite its tail", "oracles/_fast.py",
             "rounded = np.where(midpoint, w + side * (quantum / 2), rounded)",
             "rounded = np.where(midpoint, w - side * (quantum / 2), rounded)",
             ("tests/unit/test_midpoint_tier.py",)),
    Mutation("the second fast tier keeps hi as the approximation of a value just inside a power of two",
             "oracles/_fast.py", "approx_hi = np.where(inside, np.nextafter(w, 0.0), hi)", "approx_hi = hi",
             ("tests/unit/test_midpoint_tier.py",)),
)

TEST_TIMEOUT_S = 120  # per test (pytest-timeout); the isolation tests set their own 30 s
RUN_TIMEOUT_S = 600  # per mutation, the whole pytest run


def _unchanged(path: Path) -> bool:
    return subprocess.run(["git", "diff", "--quiet", "--", str(path)], cwd=ROOT).returncode == 0


def run(mutation: Mutation) -> tuple[bool, str, float]:
    """Apply, run its tests, restore. Returns (caught, how, seconds)."""
    path = ROOT / mutation.path
    original = path.read_text()
    if original.count(mutation.old) != 1:
        raise SystemExit(f"{mutation.name}: the text to replace is not in {mutation.path} exactly once; update {__file__}")
    started = time.monotonic()
    try:
        path.write_text(original.replace(mutation.old, mutation.new))
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", f"--timeout={TEST_TIMEOUT_S}",
               *mutation.tests]
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return False, f"the test run did not end within {RUN_TIMEOUT_S} s", time.monotonic() - started
    finally:
        path.write_text(original)
    lines = proc.stdout.strip().splitlines()
    failed = [line.split(" - ")[0].removeprefix("FAILED ") for line in lines if line.startswith("FAILED ")]
    how = failed[0] if failed else (lines[-1] if lines else proc.stderr.strip()[-200:])
    if "Timeout" in proc.stdout:
        how += " (pytest-timeout)"
    return proc.returncode not in (0, 5), how, time.monotonic() - started


def main() -> int:
    dirty = [m.path for m in MUTATIONS if not _unchanged(ROOT / m.path)]
    if dirty:
        print(f"uncommitted changes in {', '.join(sorted(set(dirty)))}: commit or stash them first", file=sys.stderr)
        return 2
    survived = 0
    print("| mutation | caught by | seconds |\n|---|---|--:|")
    for mutation in MUTATIONS:
        caught, how, seconds = run(mutation)
        survived += not caught
        print(f"| {mutation.name} | {'`' + how + '`' if caught else 'SURVIVED: ' + how} | {seconds:.0f} |", flush=True)
    print(f"\n{len(MUTATIONS) - survived} of {len(MUTATIONS)} named mutations caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
