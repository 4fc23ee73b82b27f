"""optax candidates (JAX on the CPU, eager): ``sigmoid_binary_cross_entropy``, ``softmax_cross_entropy`` and
``softmax_cross_entropy_with_integer_labels``.

Imported only when one of these candidates is loaded. JAX computes in 32 bits unless its x64 mode is on,
and turning the global flag on would change every other JAX computation in the process; so float64 inputs
are evaluated inside :func:`x64` (JAX's thread-local context, restored on exit) and nothing else is. The
arrays go in as JAX arrays of their own dtype (bfloat16 and float16 are JAX dtypes) and come back with
``np.asarray``, never cast.

Each loss function ``f`` has its gradient ``f_grad`` (same arguments; d loss / d inputs, the inputs' shape)
by JAX's autodiff: ``jax.vjp`` of the loss with a cotangent of ones, which is ``jax.grad`` of the sum of the
per-example losses (each example's own gradient: they do not interact) without computing that sum, which
could overflow in a half format. float64 runs in :func:`x64` as the loss does.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager

import numpy as np

from ._backend import jax as _load_jax
from ._backend import optax as _load_optax
from ._numpy import _checked

jax = _load_jax()
optax = _load_optax()
jnp = jax.numpy

_elementwise, _rows, _sparse = _checked("elementwise"), _checked("rows"), _checked("sparse")


def x64() -> ContextManager[Any]:
    """JAX's 64-bit mode for the enclosed code only (``jax.enable_x64(True)``; older JAX:
    ``jax.experimental.enable_x64()``); the global ``jax_enable_x64`` setting is left as it was."""
    state = getattr(jax, "enable_x64", None)
    if callable(state):
        return state(True)
    from jax.experimental import enable_x64  # JAX releases before the config-state API

    return enable_x64()


def _call(fn: Callable, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    scope = x64() if x.dtype == np.float64 else contextlib.nullcontext()
    with scope:
        return np.asarray(fn(jnp.asarray(x), jnp.asarray(z)))


def _grad_call(fn: Callable, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """d ``fn(x, z)`` / d x: ``jax.vjp`` with a cotangent of ones (the gradient of the sum), as numpy."""
    scope = x64() if x.dtype == np.float64 else contextlib.nullcontext()
    with scope:
        labels = jnp.asarray(z)
        out, pullback = jax.vjp(lambda logits: fn(logits, labels), jnp.asarray(x))
        (gradient,) = pullback(jnp.ones_like(out))
        return np.asarray(gradient)


@_elementwise
def sigmoid_optax(x, z, t):
    return _call(optax.sigmoid_binary_cross_entropy, x, z)


@_rows
def softmax_optax(x, z, t):
    return _call(optax.softmax_cross_entropy, x, z)


@_sparse
def sparse_optax(x, c, t):
    return _call(optax.softmax_cross_entropy_with_integer_labels, x, c)


@_elementwise
def sigmoid_optax_grad(x, z, t):
    return _grad_call(optax.sigmoid_binary_cross_entropy, x, z)


@_rows
def softmax_optax_grad(x, z, t):
    return _grad_call(optax.softmax_cross_entropy, x, z)


@_sparse
def sparse_optax_grad(x, c, t):
    return _grad_call(optax.softmax_cross_entropy_with_integer_labels, x, c)
