"""TensorFlow candidates: ``tf.nn`` fused ops (eager), the same ops compiled by XLA, and ``tf.compat.v1.losses``.

Imported only when one of these candidates is loaded. Inputs go in as tensors of their own dtype (bfloat16
arrays of ``ml_dtypes`` map to ``tf.bfloat16``); results come back with ``.numpy()`` and are never cast, so a
dtype change made by TensorFlow reaches the scorer as is. A dtype TensorFlow has no kernel for raises
:class:`~harness.candidates.Unsupported`.
"""

from __future__ import annotations

from functools import cache
from typing import Callable

import numpy as np

from ._backend import dtype_rejections_as_unsupported, tensorflow
from ._registry import dtype_name

tf = tensorflow()
_v1 = tf.compat.v1.losses


def _pair(inputs: np.ndarray, labels: np.ndarray, sparse: bool = False) -> tuple[str, object, object]:
    inputs, labels = np.asarray(inputs), np.asarray(labels)
    name = dtype_name(inputs)
    if sparse:
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"class indices must be integers, got {labels.dtype.name}")
        labels = labels.astype(np.int64, copy=False)
    elif labels.dtype != inputs.dtype:
        raise TypeError(f"labels dtype {labels.dtype.name} differs from inputs dtype {inputs.dtype.name}")
    return name, tf.constant(inputs), tf.constant(labels)


def _run(what: str, fn: Callable, inputs: np.ndarray, labels: np.ndarray, sparse: bool = False) -> np.ndarray:
    name, x, z = _pair(inputs, labels, sparse)
    with dtype_rejections_as_unsupported(what, name):
        return np.asarray(fn(x, z).numpy())


def _sigmoid(x, z):
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x)


def _softmax(x, z):
    return tf.nn.softmax_cross_entropy_with_logits(labels=z, logits=x)


def _sparse(x, c):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=c, logits=x)


_OPS = {"sigmoid_ce": _sigmoid, "softmax_ce": _softmax, "sparse_softmax_ce": _sparse}


@cache
def _compiled(family: str, dtype: str) -> Callable:
    """One XLA-compiled function per (family, dtype); tf.function retraces per shape inside it."""
    return tf.function(_OPS[family], jit_compile=True, reduce_retracing=True)


def _xla(family: str, inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    sparse = family == "sparse_softmax_ce"
    name, x, z = _pair(inputs, labels, sparse)
    with dtype_rejections_as_unsupported(f"XLA ({family})", name):
        return np.asarray(_compiled(family, name)(x, z).numpy())


# ----------------------------------------------------------------------------------------------------- eager


def sigmoid_tf(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run("tf.nn.sigmoid_cross_entropy_with_logits", _sigmoid, inputs, labels)


def softmax_tf(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run("tf.nn.softmax_cross_entropy_with_logits", _softmax, inputs, labels)


def sparse_tf(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run("tf.nn.sparse_softmax_cross_entropy_with_logits", _sparse, inputs, labels, sparse=True)


# ------------------------------------------------------------------------------------------------------- XLA


def sigmoid_tf_xla(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _xla("sigmoid_ce", inputs, labels)


def softmax_tf_xla(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _xla("softmax_ce", inputs, labels)


def sparse_tf_xla(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _xla("sparse_softmax_ce", inputs, labels)


# ------------------------------------------------------------------------------------ tf.compat.v1.losses
# Reduction.MEAN is "weighted_mean": sum(weights * losses) / sum(weights). The default,
# SUM_BY_NONZERO_WEIGHTS, divides by the number of nonzero weights instead; with the default weights=1.0
# both are the mean over all elements (sigmoid/log_loss) or rows (softmax/sparse). MEAN is passed explicitly.


def sigmoid_tf_v1_losses(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run(
        "tf.compat.v1.losses.sigmoid_cross_entropy",
        lambda x, z: _v1.sigmoid_cross_entropy(multi_class_labels=z, logits=x, reduction=_v1.Reduction.MEAN),
        inputs, labels,
    )


def binary_tf_v1_losses(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run(
        "tf.compat.v1.losses.log_loss",
        lambda p, z: _v1.log_loss(labels=z, predictions=p, epsilon=1e-7, reduction=_v1.Reduction.MEAN),
        inputs, labels,
    )


def softmax_tf_v1_losses(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run(
        "tf.compat.v1.losses.softmax_cross_entropy",
        lambda x, z: _v1.softmax_cross_entropy(onehot_labels=z, logits=x, reduction=_v1.Reduction.MEAN),
        inputs, labels,
    )


def sparse_tf_v1_losses(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run(
        "tf.compat.v1.losses.sparse_softmax_cross_entropy",
        lambda x, c: _v1.sparse_softmax_cross_entropy(labels=c, logits=x, reduction=_v1.Reduction.MEAN),
        inputs, labels, sparse=True,
    )
