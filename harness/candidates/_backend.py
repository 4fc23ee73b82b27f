"""Lazy, quiet imports of TensorFlow and Keras, done only when a candidate that needs them is loaded.

Before the first import: ``TF_CPP_MIN_LOG_LEVEL=2`` (no C++ info/warning lines), ``KERAS_BACKEND=tensorflow``
and ``KERAS_HOME`` under the temporary directory so nothing is written to ``~/.keras``. ``setdefault`` is used
throughout, so a caller's explicit settings win.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from functools import cache
from typing import Any, Iterator

from ._registry import Unsupported


def _environment() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("KERAS_HOME", os.path.join(tempfile.gettempdir(), "lossfuzz-keras-home"))


@cache
def tensorflow() -> Any:
    _environment()
    import tensorflow as tf

    return tf


@cache
def keras() -> Any:
    _environment()
    tensorflow()
    import keras

    return keras


def _is_dtype_rejection(error: Exception) -> bool:
    """Whether a TensorFlow error says the op (or XLA) has no kernel for the dtype, not that inputs are bad."""
    text = str(error)
    return any(
        marker in text
        for marker in ("No registered", "Could not find device for node", "not in list of allowed values",
                       "Unsupported type", "unsupported type", "UNIMPLEMENTED", "is not supported")
    )


@contextlib.contextmanager
def dtype_rejections_as_unsupported(what: str, dtype: str) -> Iterator[None]:
    """Turn TensorFlow's "no kernel for this dtype" errors into :class:`Unsupported`; others pass through."""
    tf = tensorflow()
    try:
        yield
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, TypeError) as e:
        if isinstance(e, Unsupported) or not (isinstance(e, tf.errors.UnimplementedError) or _is_dtype_rejection(e)):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise Unsupported(f"{what} rejects dtype {dtype}: {first[:200]}") from e
