"""Where a report came from: versions, machine, git commit. Read-only; never imports TensorFlow."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

__all__ = ["provenance"]

_PACKAGES = ("lossfuzz", "numpy", "mpmath", "gmpy2", "ml_dtypes", "hypothesis", "tensorflow", "tensorflow-cpu", "keras",
             "torch", "jax", "jaxlib", "optax", "scikit-learn")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance(seed: int) -> dict[str, Any]:
    """Seed, package versions, Python, machine and the lossfuzz git commit, for a report's header."""
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
        },
        "git_commit": _git_commit(),
    }
