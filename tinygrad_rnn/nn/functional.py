"""nn/functional.py — activations, linear, dropout, embedding and the losses as plain functions.

Read after ops.py. Every function here is a few Tensor operations, so its
gradient is whatever the engine derives from those operations; no VJP lives
here. The losses are written in losses.py and re-exported here, so
`functional.cross_entropy` is spelled as PyTorch's `F.cross_entropy`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import ops
from ..core.errors import ArgumentError, DTypeError, IndexingError
from ..core.tensor import Tensor, where
from .init import RNG, make_rng
from .losses import (
    _floating,
    _tensor,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
)

__all__ = [
    "binary_cross_entropy_with_logits", "cross_entropy", "dropout", "embedding", "l1_loss", "linear",
    "log_softmax", "mse_loss", "nll_loss", "relu", "sigmoid", "softmax", "tanh",
]  # fmt: skip


# ---------------------------------------------------------------- activations


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x W^T + b, PyTorch's layout: weight (out_features, in_features); b broadcasts to the result.

    One MatMul node (gemm's transpose flag and addend): no transpose or add node in the graph."""
    if bias is None:
        return ops.MatMul.apply(input, weight, transpose_y=True)
    return ops.MatMul.apply(input, weight, bias, transpose_y=True)


def softmax(input: Tensor, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim` (PyTorch's name; `axis=` as the Tensor method spells it)."""
    return _tensor("softmax", input).softmax(axis=dim if axis is None else axis)


def log_softmax(input: Tensor, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """x - logsumexp(x) along `dim`; stable for any finite x (a primitive, see ops.LogSoftmax)."""
    return _tensor("log_softmax", input).log_softmax(axis=dim if axis is None else axis)


def tanh(input: Tensor) -> Tensor:
    """tanh(x), elementwise."""
    return _tensor("tanh", input).tanh()


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x)), elementwise."""
    return _tensor("sigmoid", input).sigmoid()


def relu(input: Tensor) -> Tensor:
    """max(x, 0), elementwise."""
    return _tensor("relu", input).relu()


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False, *, rng: RNG = None) -> Tensor:
    """In training, zero each element with probability p and scale the others by 1 / (1 - p); else x itself.

    y = x * m / (1 - p) with m ~ Bernoulli(1 - p) drawn from `rng` (see nn/init.py `make_rng`), so
    E[y] = x and dL/dx = dL/dy * m / (1 - p): a Mul by a constant, no backward of its own. p = 1
    zeroes everything, as PyTorch.
    """
    op = "dropout"
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ArgumentError(f"{op}: p must be a probability in [0, 1], got {p!r}")
    if inplace:
        raise ArgumentError(f"{op}: inplace=True is not supported (every op here makes a new tensor)")
    x = _floating(op, "input", input)
    if not training or p == 0.0:
        return x
    keep = make_rng(rng).random(x.shape) >= p
    scale = np.where(keep, 1.0 / (1.0 - p), 0.0) if p < 1.0 else np.zeros(x.shape)
    return x * Tensor(scale.astype(x.dtype))


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """weight[input]: one row of `weight` per integer index; dL/dweight adds each position's dL/dy
    into the row it read (getitem's VJP is a scatter-add). The `padding_idx` row gets no gradient."""
    op = "embedding"
    index = np.asarray(input.data if isinstance(input, Tensor) else input)
    if index.dtype.kind not in "iu":
        raise DTypeError(f"{op}: input must hold integer indices, got dtype {index.dtype}")
    rows = weight.shape[0]
    bad = (index < 0) | (index >= rows)
    if bad.any():
        where_bad = tuple(int(i) for i in np.argwhere(bad)[0])
        raise IndexingError(
            f"{op}: index {int(index[where_bad])} at position {where_bad} is out of range for a weight of "
            f"{rows} rows (valid indices are 0..{rows - 1})"
        )
    if padding_idx is None or not (index == padding_idx).any():
        return weight[index]
    # The padding row is read from a detached copy, so no gradient reaches it (PyTorch's rule).
    return where((index == padding_idx)[..., None], weight.detach()[index], weight[index])
