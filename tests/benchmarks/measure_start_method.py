"""Audit time with workers started by spawn (the default) or fork (forced), the same audit otherwise:
`python -m tests.benchmarks.measure_start_method spawn|fork SPEC` (README, "Isolation")."""
import sys, time
import harness, harness.isolation as iso

method, spec = sys.argv[1], sys.argv[2]
original = iso.Worker.__init__


def init(self, *args, **kwargs):
    kwargs["method"] = method
    original(self, *args, **kwargs)


iso.Worker.__init__ = init
started = time.perf_counter()
result = harness.audit(spec, family="sigmoid_ce", examples=20, compare_with=("numpy_stable",), timeout=2)
print(f"{method} {spec}: {time.perf_counter() - started:.1f} s;", harness.auditing.verdicts(result.audit)[0].summary[:90])
