"""lossfuzz's harness: candidates, adversarial inputs, scores, campaigns and reports, built on ``oracles``.

``import harness`` stays light: the public names below are imported on first use, and TensorFlow/Keras
only when a candidate that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["audit", "run_campaign", "RunResult", "Score", "strategies", "candidates"]

_LAZY = {
    "run_campaign": "harness.campaign:run_campaign",
    "RunResult": "harness._records:RunResult",
    "Score": "harness._records:Score",
    "strategies": "harness.strategies",
    "candidates": "harness.candidates",
    "audit": "harness.auditing:audit",
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = importlib.import_module(module)
    return getattr(value, attribute) if attribute else value
