"""lossfuzz's harness: candidates, adversarial inputs, scores, campaigns and reports, built on ``oracles``.

``import harness`` stays light: it imports neither TensorFlow, Keras, PyTorch, JAX nor matplotlib (a
candidate loads its framework when first called; the HTML report loads matplotlib when rendered).
"""

from __future__ import annotations

from . import candidates, strategies
from .auditing import audit
from .campaign import run_campaign
from .records import RunResult, Score

__all__ = ["audit", "run_campaign", "RunResult", "Score", "strategies", "candidates"]
