"""Candidate loss implementations scored against the oracles: a registry of named, lazily imported callables.

Every family (``oracles.FAMILIES``) has candidates drawn from the same names (:data:`CANDIDATE_NAMES`);
``binary_ce`` (probabilities in) has only those that make sense there. Calling convention, for all::

    candidate(inputs, labels) -> np.ndarray     # or candidate.load()(inputs, labels)

inputs in the target dtype, labels likewise (``int64`` class indices for ``sparse_softmax_ce``); the result
is in the dtype the implementation produced (never cast back), per example, or 0-d for a reduced candidate
(``candidate.reduction`` ``"mean"``). An unsupported dtype raises :class:`Unsupported`. TensorFlow, Keras,
PyTorch, JAX/optax and scikit-learn are imported only when a candidate that needs them is loaded.
``candidate.labels == "hard"``: scored on hard labels only; ``candidate.upcast``: a ``<name>_upcast``
mixed-precision variant (float16/bfloat16 in, float32 inside, one rounding back).
"""

from ._registry import CANDIDATE_NAMES, UPCAST_SUFFIX, Candidate, NoGradient, Unsupported, candidates, get_candidate

__all__ = ["CANDIDATE_NAMES", "UPCAST_SUFFIX", "Candidate", "NoGradient", "Unsupported", "candidates", "get_candidate"]
