"""PyTorch candidates: ``torch.nn.functional`` losses with ``reduction="none"``, on the CPU.

Imported only when one of these candidates is loaded. Arrays go in as tensors of their own dtype (a
bfloat16 array of ``ml_dtypes`` is passed bit for bit as ``torch.bfloat16``: ``torch.from_numpy`` does not
know that dtype) and come back the same way; nothing is cast, so a dtype change made by PyTorch reaches the
scorer as is. "not implemented for 'Half'"-style errors raise :class:`~harness.candidates.Unsupported`.
The softmax families are computed on ``[N, K]`` (the batch axes flattened, as ``F.cross_entropy`` wants)
and reshaped back.

Each loss function ``f`` has its gradient ``f_grad`` (same arguments; d loss / d inputs, the inputs' shape)
by ``torch.autograd``: the input tensor ``requires_grad``, and ``torch.autograd.grad`` with an output
gradient of ones (the gradient of the sum of the per-example losses, which is each example's own, without
computing the sum, which could overflow in a half format).
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import numpy as np

from ._backend import torch as _load_torch
from ._backend import torch_array as array
from ._backend import torch_tensor as tensor
from ._numpy import _checked
from ._registry import Unsupported

torch = _load_torch()
F = torch.nn.functional

_elementwise, _rows, _sparse = _checked("elementwise"), _checked("rows"), _checked("sparse")


@contextlib.contextmanager
def _dtype_rejections_as_unsupported(what: str, dtype: object) -> Iterator[None]:
    try:
        yield
    except (RuntimeError, TypeError) as e:
        text = str(e)
        if "not implemented for" not in text and "Unsupported" not in text:
            raise
        raise Unsupported(f"{what} rejects dtype {np.dtype(dtype).name}: {text.strip().splitlines()[0][:200]}") from e


def _autograd(fn: Callable, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """d ``fn(x, target, reduction="none")`` / d x by ``torch.autograd`` (output gradient ones), as numpy."""
    leaf = tensor(x).requires_grad_(True)
    out = fn(leaf, tensor(target), reduction="none")
    (gradient,) = torch.autograd.grad(out, leaf, grad_outputs=torch.ones_like(out))
    return array(gradient)


def _rows_call(fn: Callable, x: np.ndarray, target: np.ndarray, what: str, gradient: bool = False) -> np.ndarray:
    """``fn`` on ``[N, K]`` logits (batch axes flattened) and the matching targets, reshaped back (the
    loss to the batch shape, or with ``gradient``, d loss / d logits to the logits' shape)."""
    batch, k = x.shape[:-1], x.shape[-1]
    flat_target = target.reshape(-1) if target.dtype.kind in "iu" else target.reshape(-1, k)
    flat = x.reshape(-1, k)
    if gradient:
        with _dtype_rejections_as_unsupported(f"the gradient of {what}", x.dtype):
            return _autograd(fn, flat, flat_target).reshape(x.shape)
    with _dtype_rejections_as_unsupported(what, x.dtype):
        out = fn(tensor(flat), tensor(flat_target), reduction="none")
    return array(out).reshape(batch)


@_elementwise
def sigmoid_torch(x, z, t):
    with _dtype_rejections_as_unsupported("F.binary_cross_entropy_with_logits", x.dtype):
        return array(F.binary_cross_entropy_with_logits(tensor(x), tensor(z), reduction="none"))


@_elementwise
def binary_torch(p, z, t):
    with _dtype_rejections_as_unsupported("F.binary_cross_entropy", p.dtype):
        return array(F.binary_cross_entropy(tensor(p), tensor(z), reduction="none"))


@_rows
def softmax_torch(x, z, t):
    return _rows_call(F.cross_entropy, x, z, "F.cross_entropy (probability targets)")


@_sparse
def sparse_torch(x, c, t):
    return _rows_call(F.cross_entropy, x, c, "F.cross_entropy (class indices)")


# -------------------------------------------------------------------------------------------------- gradients


@_elementwise
def sigmoid_torch_grad(x, z, t):
    with _dtype_rejections_as_unsupported("the gradient of F.binary_cross_entropy_with_logits", x.dtype):
        return _autograd(F.binary_cross_entropy_with_logits, x, z)


@_elementwise
def binary_torch_grad(p, z, t):
    with _dtype_rejections_as_unsupported("the gradient of F.binary_cross_entropy", p.dtype):
        return _autograd(F.binary_cross_entropy, p, z)


@_rows
def softmax_torch_grad(x, z, t):
    return _rows_call(F.cross_entropy, x, z, "F.cross_entropy (probability targets)", gradient=True)


@_sparse
def sparse_torch_grad(x, c, t):
    return _rows_call(F.cross_entropy, x, c, "F.cross_entropy (class indices)", gradient=True)
