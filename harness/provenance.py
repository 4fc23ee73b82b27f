"""Where a report came from: versions, machine (numpy's SIMD targets among it), git commit. Read-only; never
imports TensorFlow."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from importlib import metadata
from typing import Any

__all__ = ["environment_changes", "numpy_simd", "numpy_target", "provenance", "simd_text"]

_PACKAGES = ("lossfuzz", "numpy", "mpmath", "gmpy2", "ml_dtypes", "hypothesis", "tensorflow", "tensorflow-cpu", "keras",
             "torch", "jax", "jaxlib", "optax", "scikit-learn")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(args: list[str], cwd: str) -> str | None:
    """``git ARGS`` run in ``cwd``: its output, or None where git is missing, fails or takes over 5 s."""
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=5, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _git_commit(cwd: str = _CHECKOUT) -> str | None:
    out = _git(["rev-parse", "HEAD"], cwd)
    return out.strip() or None if out is not None else None


def _git_dirty(cwd: str = _CHECKOUT) -> bool | None:
    """Whether tracked files differ from the commit (then the commit alone does not say what code ran);
    None where git cannot tell. Untracked files are not counted: a run's own output is often one."""
    out = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return None if out is None else bool(out.strip())


def provenance(seed: int) -> dict[str, Any]:
    """Seed, package versions, Python, machine, the lossfuzz git commit and whether tracked files had
    uncommitted changes (``git_dirty``), for a report's header."""
    import mpmath.libmp

    return {
        "seed": seed,
        "versions": {name: _version(name) for name in _PACKAGES},
        "python": platform.python_version(),
        "mpmath_backend": mpmath.libmp.BACKEND,
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor() or None,
            "cpus": os.cpu_count(),
            "numpy_simd": numpy_simd(),
        },
        "git_commit": _git_commit(),
        "git_dirty": _git_dirty(),
    }


def numpy_simd() -> dict[str, list[str]]:
    """numpy's SIMD extensions in this process, as ``numpy.show_runtime()`` lists them: ``baseline`` (compiled
    in) and ``found`` (the dispatched targets this CPU has and ``NPY_DISABLE_CPU_FEATURES`` leaves on).

    Why it is provenance: numpy's float32 ``exp`` and ``log1p`` take their code from the widest target, and
    one target's values differ from another's in the last bits (``exp(-2.0424)``: ``0x1.09a8fep-3`` with
    X86_V3, ``0x1.09a9p-3`` with it disabled), so the same numpy and the same candidate score differently on
    another machine (README, "Figures that depend on the machine")."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as umath
    features = getattr(umath, "__cpu_features__", {})
    return {"baseline": list(getattr(umath, "__cpu_baseline__", ())),
            "found": [t for t in getattr(umath, "__cpu_dispatch__", ()) if features.get(t)]}


@functools.lru_cache(maxsize=1)
def numpy_target() -> str:
    """numpy's version and SIMD targets in this process, one line: ``numpy 2.4.6, SIMD X86_V2 X86_V3``."""
    import numpy

    simd = numpy_simd()
    return f"numpy {numpy.__version__}, SIMD {' '.join(simd['baseline'] + simd['found']) or 'none'}"


def simd_text(machine: Any) -> str | None:
    """A provenance's ``machine.numpy_simd`` as one line of target names (``X86_V2 X86_V3``); None for a
    report written before lossfuzz recorded it."""
    simd = machine.get("numpy_simd") if isinstance(machine, dict) else None
    if not isinstance(simd, dict):
        return None
    return " ".join([*simd.get("baseline", ()), *simd.get("found", ())]) or "none"


def environment_changes(old: Any, new: Any) -> tuple[str, ...]:
    """What differs between two reports' provenances that can change a candidate's figures without a change
    to its code: each library version both name (``numpy 2.4.5 → 2.4.6``; lossfuzz itself and the git commit
    aside) and numpy's SIMD targets (``numpy SIMD X86_V2 X86_V3 X86_V4 → X86_V2 X86_V3``). Empty when
    either side does not say."""
    old, new = (p if isinstance(p, dict) else {} for p in (old, new))
    changes = []
    before, now = old.get("versions") or {}, new.get("versions") or {}
    for name in _PACKAGES:
        a, b = before.get(name), now.get(name)
        if name != "lossfuzz" and a and b and a != b:
            changes.append(f"{name} {a} → {b}")
    a, b = simd_text(old.get("machine")), simd_text(new.get("machine"))
    if a and b and a != b:
        changes.append(f"numpy SIMD {a} → {b}")
    return tuple(changes)
