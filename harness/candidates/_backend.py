"""Lazy, quiet imports of the frameworks (TensorFlow, Keras, PyTorch, JAX/optax, scikit-learn), done only when
a candidate that needs them is loaded.

Before the first import: ``TF_CPP_MIN_LOG_LEVEL=2`` (no C++ info/warning lines), ``KERAS_BACKEND=tensorflow``
and ``KERAS_HOME`` under the temporary directory so nothing is written to ``~/.keras``; ``JAX_PLATFORMS=cpu``
(no probing for accelerators). ``setdefault`` is used throughout, so a caller's explicit settings win.
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
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


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


@cache
def torch() -> Any:
    _environment()
    import torch

    return torch


def torch_tensor(a: Any) -> Any:
    """A numpy array as a CPU tensor of the same dtype and values (a copy); an ``ml_dtypes.bfloat16`` array,
    which ``torch.from_numpy`` does not know, is reinterpreted bit for bit as ``torch.bfloat16``."""
    import numpy as np

    t = torch()
    a = np.asarray(a)
    if a.dtype.name == "bfloat16":
        return t.from_numpy(a.view(np.int16).copy()).view(t.bfloat16)
    return t.from_numpy(a.copy())


def torch_array(tensor: Any) -> Any:
    """A tensor back as a numpy array of the same dtype and values (``torch.bfloat16`` bit for bit as
    ``ml_dtypes.bfloat16``); never a cast."""
    import ml_dtypes

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch().bfloat16:
        return tensor.view(torch().int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


@cache
def jax() -> Any:
    _environment()
    import jax

    return jax


@cache
def optax() -> Any:
    jax()
    import optax

    return optax


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
