"""TensorFlow candidates: ``tf.nn`` fused ops (eager), the same ops compiled by XLA, and ``tf.compat.v1.losses``.

Imported only when one of these candidates is loaded. Inputs go in as tensors of their own dtype (bfloat16
arrays of ``ml_dtypes`` map to ``tf.bfloat16``); results come back with ``.numpy()`` and are never cast, so a
dtype change made by TensorFlow reaches the scorer as is. A dtype TensorFlow has no kernel for raises
:class:`~harness.candidates.Unsupported`.

Each loss function ``f`` has its gradient ``f_grad`` (same arguments; d loss / d inputs, the inputs' shape):
``tf.GradientTape`` on the same op, eagerly, or inside the same ``tf.function(jit_compile=True)`` for XLA;
the ``tf.compat.v1.losses`` ones return the gradient of their mean. Never cast either (float64 inputs of
``log_loss``, which computes in float32, get a float64 gradient computed in float32: the cast's gradient).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Callable

import numpy as np

from ._backend import dtype_rejections_as_unsupported, tensorflow
from ._registry import dtype_name

tf = tensorflow()


class _NoRetracingNotes(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning: the XLA candidate is called on many
    shapes by design (each is a new compilation, the cost is known), and the note would fill a run's stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


tf.get_logger().addFilter(_NoRetracingNotes())
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


def _v1_sigmoid(x, z):
    return _v1.sigmoid_cross_entropy(multi_class_labels=z, logits=x, reduction=_v1.Reduction.MEAN)


def _v1_log_loss(p, z):
    return _v1.log_loss(labels=z, predictions=p, epsilon=1e-7, reduction=_v1.Reduction.MEAN)


def _v1_softmax(x, z):
    return _v1.softmax_cross_entropy(onehot_labels=z, logits=x, reduction=_v1.Reduction.MEAN)


def _v1_sparse(x, c):
    return _v1.sparse_softmax_cross_entropy(labels=c, logits=x, reduction=_v1.Reduction.MEAN)


def sigmoid_tf_v1_losses(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run("tf.compat.v1.losses.sigmoid_cross_entropy", _v1_sigmoid, inputs, labels)


def binary_tf_v1_losses(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run("tf.compat.v1.losses.log_loss", _v1_log_loss, inputs, labels)


def softmax_tf_v1_losses(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run("tf.compat.v1.losses.softmax_cross_entropy", _v1_softmax, inputs, labels)


def sparse_tf_v1_losses(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run("tf.compat.v1.losses.sparse_softmax_cross_entropy", _v1_sparse, inputs, labels, sparse=True)


# -------------------------------------------------------------------------------------------------- gradients
# d loss / d inputs by TensorFlow's own autodiff: a GradientTape watching the input tensor, eagerly (the
# ``_grad`` of an eager candidate) or inside one XLA-compiled function (``tf_xla``). For a per-example loss
# the tape's default output gradient is ones, so ``tape.gradient`` is the gradient of the sum, which for an
# elementwise or per-row loss is each example's own gradient (the examples do not interact); a reduced
# (``tf.compat.v1.losses``, mean) candidate returns a scalar and its gradient is that of the mean.


def _tape_gradient(fn: Callable, x, z):
    """``d fn(x, z) / d x`` (the gradient of the sum of its values) by a tape; ``None`` if not connected."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = fn(x, z)
    return tape.gradient(loss, x)


def _connected(gradient, what: str) -> np.ndarray:
    if gradient is None:
        raise RuntimeError(f"{what}: the tape found no gradient with respect to the inputs")
    return np.asarray(gradient.numpy())


def _run_grad(what: str, fn: Callable, inputs: np.ndarray, labels: np.ndarray, sparse: bool = False) -> np.ndarray:
    name, x, z = _pair(inputs, labels, sparse)
    with dtype_rejections_as_unsupported(f"the gradient of {what}", name):
        return _connected(_tape_gradient(fn, x, z), what)


@cache
def _compiled_grad(family: str, dtype: str) -> Callable:
    """One XLA-compiled gradient per (family, dtype): the tape runs inside the compiled function."""
    op = _OPS[family]
    return tf.function(lambda x, z: _tape_gradient(op, x, z), jit_compile=True, reduce_retracing=True)


def _xla_grad(family: str, inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    sparse = family == "sparse_softmax_ce"
    name, x, z = _pair(inputs, labels, sparse)
    with dtype_rejections_as_unsupported(f"XLA (the gradient of {family})", name):
        return _connected(_compiled_grad(family, name)(x, z), f"XLA ({family})")


def sigmoid_tf_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run_grad("tf.nn.sigmoid_cross_entropy_with_logits", _sigmoid, inputs, labels)


def softmax_tf_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run_grad("tf.nn.softmax_cross_entropy_with_logits", _softmax, inputs, labels)


def sparse_tf_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run_grad("tf.nn.sparse_softmax_cross_entropy_with_logits", _sparse, inputs, labels, sparse=True)


def sigmoid_tf_xla_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _xla_grad("sigmoid_ce", inputs, labels)


def softmax_tf_xla_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _xla_grad("softmax_ce", inputs, labels)


def sparse_tf_xla_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _xla_grad("sparse_softmax_ce", inputs, labels)


def sigmoid_tf_v1_losses_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run_grad("tf.compat.v1.losses.sigmoid_cross_entropy", _v1_sigmoid, inputs, labels)


def binary_tf_v1_losses_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run_grad("tf.compat.v1.losses.log_loss", _v1_log_loss, inputs, labels)


def softmax_tf_v1_losses_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run_grad("tf.compat.v1.losses.softmax_cross_entropy", _v1_softmax, inputs, labels)


def sparse_tf_v1_losses_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _run_grad("tf.compat.v1.losses.sparse_softmax_cross_entropy", _v1_sparse, inputs, labels, sparse=True)
