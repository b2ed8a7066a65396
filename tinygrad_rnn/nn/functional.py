"""nn/functional.py — losses and activations as plain functions. Composed only: no VJP lives here.

Read after ops.py. Every function below is a few Tensor operations, so its
gradient is whatever the engine derives from those operations; the losses can
be trusted exactly as far as the primitives they are made of.

Losses follow PyTorch's `torch.nn.functional`, plus an optional `mask`:

- the per-element loss has a shape (`input.shape` for mse, `logits.shape[:-1]`
  for cross-entropy);
- `mask` is broadcast to that shape and multiplies it (0 drops an element, a
  float weights it); it is a constant, never differentiated;
- `reduction='none'` returns `loss * mask`, `'sum'` its sum, and `'mean'`
  `sum(loss * mask) / sum(mask)`, with the mask broadcast first, so the mean is
  over the elements the mask selects. Without a mask it is the ordinary mean.
- a `'mean'` over nothing (an empty input, or a mask that is all zeros) raises
  ArgumentError instead of returning 0/0 = nan, which would silently poison
  every parameter at the next optimizer step.

>>> logits = tg.Tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]], requires_grad=True)
>>> loss = cross_entropy(logits, np.array([0, 1]))  # mean over rows of -log softmax(z_i)[t_i]
>>> round(loss.item(), 4)
0.1324
>>> z = logits.data
>>> round(float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[[0, 1], [0, 1]])), 4)
0.1324
>>> loss.backward()
>>> logits.grad.numpy().round(3)  # (softmax - one_hot) / 2
array([[-0.078,  0.057,  0.021],
       [ 0.023, -0.045,  0.023]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core import ops
from ..core.errors import ArgumentError, DTypeError, IndexingError, ShapeError, fmt_shape
from ..core.tensor import Tensor

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------- activations (re-exported for convenience)


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


# ---------------------------------------------------------------- losses


def mse_loss(input: Tensor, target: Any, mask: Any = None, reduction: str = "mean") -> Tensor:
    """Squared error (input - target)^2 per element, reduced as the module docstring says.

    `target` (Tensor or array) must have exactly `input.shape`: unlike numpy we
    do not broadcast it, because a (B,) target against a (B, 1) prediction would
    silently become a (B, B) loss.
    """
    op = "mse_loss"
    _check_reduction(op, reduction)
    x = _floating(op, "input", input)
    if isinstance(target, Tensor):
        y = target if target.dtype == x.dtype else target.astype(x.dtype)
    else:
        y = Tensor(_numeric_array(op, "target", target), dtype=x.dtype)
    if y.shape != x.shape:
        raise ShapeError(
            f"{op}: input has shape {fmt_shape(x.shape)} but target has shape {fmt_shape(y.shape)}; "
            "they must match exactly (reshape one of them, e.g. target.reshape(input.shape))"
        )
    diff = x - y
    return _reduce(op, diff * diff, _mask_array(op, mask, x.shape), reduction)


def cross_entropy(logits: Tensor, target: Any, mask: Any = None, reduction: str = "mean") -> Tensor:
    """-log softmax(logits)[target] per position, computed from logits (stable for any finite logits).

    `logits` has shape (..., C): classes on the last axis, which suits sequence output (T, B, C).
    (PyTorch puts them on axis 1 for (N, C, d...) inputs; move that axis last before calling.)
    `target` is either
    - integer class indices of shape `logits.shape[:-1]`, each in [0, C): loss = -log_softmax(z)[t]; or
    - class probabilities of shape `logits.shape`: loss = -sum_c p_c log_softmax(z)_c.
    The per-position loss has shape `logits.shape[:-1]`. Where `mask` is 0, an index
    target is not checked, so padding may hold any integer (e.g. -1).
    """
    op = "cross_entropy"
    _check_reduction(op, reduction)
    z = _floating(op, "logits", logits)
    if z.ndim == 0:
        raise ShapeError(f"{op}: logits must have a class axis (shape (..., C)), got a 0-d tensor")
    log_p = z.log_softmax(axis=-1)  # one primitive: log(sum exp) with the max subtracted first
    loss_shape = z.shape[:-1]
    weights = _mask_array(op, mask, loss_shape)
    t = target.data if isinstance(target, Tensor) else _numeric_array(op, "target", target)
    if t.shape == z.shape:
        if t.dtype.kind != "f":
            raise DTypeError(
                f"{op}: a target of the logits' shape {fmt_shape(t.shape)} is read as class probabilities and "
                f"must be floating point, got dtype {t.dtype}"
            )
        probs = target if isinstance(target, Tensor) else Tensor(t)
        loss = -(log_p * probs.astype(z.dtype)).sum(axis=-1)
    elif t.shape == loss_shape:
        if t.dtype.kind not in "iu":
            raise DTypeError(
                f"{op}: target of shape {fmt_shape(t.shape)} must hold integer class indices, got dtype {t.dtype}; "
                "convert with target.astype(np.int64) (or pass probabilities of shape "
                f"{fmt_shape(z.shape)})"
            )
        index = _class_indices(op, t, z.shape[-1], weights)
        # Advanced indexing picks log_p[..., t] at every position; its VJP scatters dL/dloss back.
        loss = -log_p[(*np.indices(loss_shape, sparse=True), index)]
    else:
        raise ShapeError(
            f"{op}: logits have shape {fmt_shape(z.shape)}, so target must be class indices of shape "
            f"{fmt_shape(loss_shape)} or probabilities of shape {fmt_shape(z.shape)}; got {fmt_shape(t.shape)}"
        )
    return _reduce(op, loss, weights, reduction)


# ---------------------------------------------------------------- helpers


def _tensor(op: str, x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(_numeric_array(op, "input", x))


def _floating(op: str, name: str, x: Any) -> Tensor:
    t = _tensor(op, x)
    if t.dtype.kind != "f":
        raise DTypeError(f"{op}: {name} must be floating point, got dtype {t.dtype}; convert with .astype(np.float64)")
    return t


def _numeric_array(op: str, name: str, value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise DTypeError(f"{op}: {name} must be numeric, got dtype {array.dtype}")
    return array


def _check_reduction(op: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ArgumentError(f"{op}: reduction must be one of 'mean', 'sum', 'none', got {reduction!r}")


def _mask_array(op: str, mask: Any, loss_shape: tuple[int, ...]) -> np.ndarray | None:
    """The mask as a float64 array of exactly `loss_shape`, or None; checked here, where the user passed it."""
    if mask is None:
        return None
    array = _numeric_array(op, "mask", mask.data if isinstance(mask, Tensor) else mask)
    try:
        full = np.broadcast_to(array, loss_shape)
    except ValueError:
        hint = " (for a (T, B) mask on a (T, B, D) loss, pass mask[..., None])" if len(loss_shape) > array.ndim else ""
        raise ShapeError(
            f"{op}: mask of shape {fmt_shape(array.shape)} does not broadcast to the per-element loss "
            f"of shape {fmt_shape(loss_shape)}{hint}"
        ) from None
    if not np.all(np.isfinite(full)) or np.any(full < 0):
        raise ArgumentError(f"{op}: mask must be finite and non-negative (0 drops an element, 1 keeps it)")
    return full.astype(np.float64)


def _class_indices(op: str, target: np.ndarray, classes: int, weights: np.ndarray | None) -> np.ndarray:
    """`target` as int64, after checking each (unmasked) index lies in [0, classes)."""
    index = target.astype(np.int64)
    checked = np.ones(index.shape, dtype=bool) if weights is None else weights != 0
    bad = checked & ((index < 0) | (index >= classes))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise IndexingError(
            f"{op}: target {int(index[where])} at position {where} is out of range for {classes} classes "
            f"(valid indices are 0..{classes - 1})"
        )
    # Masked-out positions may hold padding such as -1; any valid class works there, as its loss is zeroed.
    return np.where(checked, index, 0)


def _reduce(op: str, loss: Tensor, weights: np.ndarray | None, reduction: str) -> Tensor:
    if weights is not None:
        loss = loss * Tensor(weights.astype(loss.dtype))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    count = loss.size if weights is None else float(weights.sum())
    if count == 0:
        what = "the input is empty" if weights is None else "the mask is all zeros"
        raise ArgumentError(
            f"{op}: reduction='mean' of per-element loss of shape {fmt_shape(loss.shape)} has nothing to average: "
            f"{what}. Use reduction='sum' (which gives 0) or skip this batch."
        )
    return loss.sum() * (1.0 / count)
