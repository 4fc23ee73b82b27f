"""Keras 3 candidates (TensorFlow backend): ``keras.losses`` on probabilities and with ``from_logits=True``.

Imported only when one of these candidates is loaded. Probabilities are made with ``tf.math.sigmoid`` /
``tf.nn.softmax`` on eager tensors: Keras' ``_get_logits`` then cannot recover the logits (it looks for a
``_keras_logits`` attribute, which ``keras.ops.sigmoid``/``keras.activations.sigmoid`` would attach, or for a
Sigmoid/Softmax graph op), so these candidates really take the clipped probability path, as a user passing
probabilities gets. ``binary_crossentropy`` means over the last axis, so elementwise inputs go in as
``[..., 1]`` and the axis is dropped afterwards. Results are never cast.
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


def _elementwise_bce(probs_or_logits, z, from_logits: bool) -> np.ndarray:
    out = K.losses.binary_crossentropy(tf.expand_dims(z, -1), tf.expand_dims(probs_or_logits, -1), from_logits=from_logits)
    return np.asarray(out.numpy())


# ----------------------------------------------------------------------------------------------- sigmoid_ce


def sigmoid_keras(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    name, x, z = _floats(inputs, labels)
    with dtype_rejections_as_unsupported("keras.losses.binary_crossentropy", name):
        return _elementwise_bce(tf.math.sigmoid(tf.constant(x)), tf.constant(z), from_logits=False)


def sigmoid_keras_from_logits(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    name, x, z = _floats(inputs, labels)
    with dtype_rejections_as_unsupported("keras.losses.binary_crossentropy(from_logits=True)", name):
        return _elementwise_bce(tf.constant(x), tf.constant(z), from_logits=True)


# ------------------------------------------------------------------------------------------------ binary_ce


def binary_keras(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    name, p, z = _floats(inputs, labels)
    with dtype_rejections_as_unsupported("keras.losses.binary_crossentropy", name):
        return _elementwise_bce(tf.constant(p), tf.constant(z), from_logits=False)


# ----------------------------------------------------------------------------------------------- softmax_ce


def softmax_keras(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    name, x, z = _floats(inputs, labels)
    with dtype_rejections_as_unsupported("keras.losses.categorical_crossentropy", name):
        out = K.losses.categorical_crossentropy(tf.constant(z), tf.nn.softmax(tf.constant(x)))
        return np.asarray(out.numpy())


def softmax_keras_from_logits(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    name, x, z = _floats(inputs, labels)
    with dtype_rejections_as_unsupported("keras.losses.categorical_crossentropy(from_logits=True)", name):
        out = K.losses.categorical_crossentropy(tf.constant(z), tf.constant(x), from_logits=True)
        return np.asarray(out.numpy())


# ---------------------------------------------------------------------------------------- sparse_softmax_ce


def sparse_keras(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    name, x, c = _indices(inputs, labels)
    with dtype_rejections_as_unsupported("keras.losses.sparse_categorical_crossentropy", name):
        out = K.losses.sparse_categorical_crossentropy(tf.constant(c), tf.nn.softmax(tf.constant(x)))
        return np.asarray(out.numpy())


def sparse_keras_from_logits(inputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    name, x, c = _indices(inputs, labels)
    with dtype_rejections_as_unsupported("keras.losses.sparse_categorical_crossentropy(from_logits=True)", name):
        out = K.losses.sparse_categorical_crossentropy(tf.constant(c), tf.constant(x), from_logits=True)
        return np.asarray(out.numpy())
