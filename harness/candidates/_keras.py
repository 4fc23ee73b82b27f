"""Keras 3 candidates (TensorFlow backend): ``keras.losses`` on probabilities and with ``from_logits=True``.

Imported only when one of these candidates is loaded. Probabilities are made with ``tf.math.sigmoid`` /
``tf.nn.softmax`` on eager tensors: Keras' ``_get_logits`` then cannot recover the logits (it looks for a
``_keras_logits`` attribute, which ``keras.ops.sigmoid``/``keras.activations.sigmoid`` would attach, or for a
Sigmoid/Softmax graph op), so these candidates really take the clipped probability path, as a user passing
probabilities gets. ``binary_crossentropy`` means over the last axis, so elementwise inputs go in as
``[..., 1]`` and the axis is dropped afterwards. Results are never cast.

Each loss function ``f`` has its gradient ``f_grad`` (same arguments; d loss / d inputs, the inputs' shape)
by the TensorFlow backend's autodiff: a ``tf.GradientTape`` watching the input tensor, through the same
calls (``tf.math.sigmoid``/``tf.nn.softmax``, then Keras' clip and log for the probability candidates, whose
clip has a zero derivative outside ``[1e-7, 1 - 1e-7]``). The tape's default output gradient is ones: the
gradient of the sum of the per-example losses, each example's own gradient.
"""

from __future__ import annotations

import numpy as np

from ._backend import dtype_rejections_as_unsupported, keras, tensorflow
from ._registry import dtype_name

tf = tensorflow()
K = keras()


def _floats(inputs: np.ndarray, labels: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    inputs, labels = np.asarray(inputs), np.asarray(labels)
    name = dtype_name(inputs)
    if labels.dtype != inputs.dtype:
        raise TypeError(f"labels dtype {labels.dtype.name} differs from inputs dtype {inputs.dtype.name}")
    return name, inputs, labels


def _indices(inputs: np.ndarray, labels: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    inputs, labels = np.asarray(inputs), np.asarray(labels)
    name = dtype_name(inputs)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"class indices must be integers, got {labels.dtype.name}")
    return name, inputs, labels.astype(np.int64, copy=False)


def _elementwise_bce(probs_or_logits, z, from_logits: bool):
    return K.losses.binary_crossentropy(tf.expand_dims(z, -1), tf.expand_dims(probs_or_logits, -1), from_logits=from_logits)


def _sigmoid_probabilities(x, z):
    return _elementwise_bce(tf.math.sigmoid(x), z, from_logits=False)


def _sigmoid_logits(x, z):
    return _elementwise_bce(x, z, from_logits=True)


def _binary_probabilities(p, z):
    return _elementwise_bce(p, z, from_logits=False)


def _softmax_probabilities(x, z):
    return K.losses.categorical_crossentropy(z, tf.nn.softmax(x))


def _softmax_logits(x, z):
    return K.losses.categorical_crossentropy(z, x, from_logits=True)


def _sparse_probabilities(x, c):
    return K.losses.sparse_categorical_crossentropy(c, tf.nn.softmax(x))


def _sparse_logits(x, c):
    return K.losses.sparse_categorical_crossentropy(c, x, from_logits=True)


def _loss(what: str, fn, check, inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``fn`` (one of the above) on the inputs as tensors of their own dtype; the loss as numpy."""
    name, x, z = check(inputs, labels)
    with dtype_rejections_as_unsupported(what, name):
        return np.asarray(fn(tf.constant(x), tf.constant(z)).numpy())


def _gradient(what: str, fn, check, inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d ``fn`` / d inputs by a tape (the gradient of the sum of the per-example losses), as numpy."""
    name, x, z = check(inputs, labels)
    with dtype_rejections_as_unsupported(f"the gradient of {what}", name):
        x, z = tf.constant(x), tf.constant(z)
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = fn(x, z)
        gradient = tape.gradient(loss, x)
        if gradient is None:
            raise RuntimeError(f"{what}: the tape found no gradient with respect to the inputs")
        return np.asarray(gradient.numpy())


_BCE = "keras.losses.binary_crossentropy"
_BCE_LOGITS = "keras.losses.binary_crossentropy(from_logits=True)"
_CCE = "keras.losses.categorical_crossentropy"
_CCE_LOGITS = "keras.losses.categorical_crossentropy(from_logits=True)"
_SCCE = "keras.losses.sparse_categorical_crossentropy"
_SCCE_LOGITS = "keras.losses.sparse_categorical_crossentropy(from_logits=True)"

# ----------------------------------------------------------------------------------------------- sigmoid_ce


def sigmoid_keras(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _loss(_BCE, _sigmoid_probabilities, _floats, inputs, labels)


def sigmoid_keras_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _gradient(_BCE, _sigmoid_probabilities, _floats, inputs, labels)


def sigmoid_keras_from_logits(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _loss(_BCE_LOGITS, _sigmoid_logits, _floats, inputs, labels)


def sigmoid_keras_from_logits_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _gradient(_BCE_LOGITS, _sigmoid_logits, _floats, inputs, labels)


# ------------------------------------------------------------------------------------------------ binary_ce


def binary_keras(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _loss(_BCE, _binary_probabilities, _floats, inputs, labels)


def binary_keras_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _gradient(_BCE, _binary_probabilities, _floats, inputs, labels)


# ----------------------------------------------------------------------------------------------- softmax_ce


def softmax_keras(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _loss(_CCE, _softmax_probabilities, _floats, inputs, labels)


def softmax_keras_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _gradient(_CCE, _softmax_probabilities, _floats, inputs, labels)


def softmax_keras_from_logits(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _loss(_CCE_LOGITS, _softmax_logits, _floats, inputs, labels)


def softmax_keras_from_logits_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _gradient(_CCE_LOGITS, _softmax_logits, _floats, inputs, labels)


# ---------------------------------------------------------------------------------------- sparse_softmax_ce


def sparse_keras(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _loss(_SCCE, _sparse_probabilities, _indices, inputs, labels)


def sparse_keras_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _gradient(_SCCE, _sparse_probabilities, _indices, inputs, labels)


def sparse_keras_from_logits(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _loss(_SCCE_LOGITS, _sparse_logits, _indices, inputs, labels)


def sparse_keras_from_logits_grad(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _gradient(_SCCE_LOGITS, _sparse_logits, _indices, inputs, labels)
