"""scikit-learn candidate: ``sklearn.metrics.log_loss`` as a mean-reduced ``binary_ce`` on hard labels.

Imported only when the candidate is loaded. ``log_loss`` takes class labels (``labels=[0, 1]`` here; a soft
label is an error, hence the candidate's ``labels="hard"``) and the probability of class 1, clips it to
``[eps, 1 - eps]`` with ``eps`` the machine epsilon of its dtype, and returns the mean as a Python float.
It computes in the input's dtype (float16, float32 and float64; it rejects ``ml_dtypes.bfloat16``), so the
float is that dtype's value and converting it back is exact; a value that does not convert exactly is
returned as float64, and the scorer reports the silent cast (``wrong_dtype``).
"""

from __future__ import annotations

import inspect

import numpy as np

from ._numpy import _checked
from ._registry import Unsupported

from sklearn.metrics import log_loss  # noqa: E402  (after the harness imports: scikit-learn is the optional part)

# scikit-learn 1.9 renamed the probabilities argument y_pred to y_proba (the old name warns)
_PROBABILITIES = "y_proba" if "y_proba" in inspect.signature(log_loss).parameters else "y_pred"


@_checked("elementwise")
def binary_sklearn(p, z, t):
    try:
        value = log_loss(np.ravel(z), **{_PROBABILITIES: np.ravel(p)}, labels=[0, 1])
    except TypeError as e:
        if "dtype" not in str(e):
            raise
        raise Unsupported(f"sklearn.metrics.log_loss rejects dtype {p.dtype.name}: {str(e).splitlines()[0][:200]}") from e
    same = np.asarray(value, dtype=np.float64).astype(p.dtype)
    return same if float(same) == float(value) or np.isnan(value) else np.asarray(value, dtype=np.float64)
