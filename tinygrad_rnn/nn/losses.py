"""nn/losses.py — the loss functions (re-exported by functional.py). Composed only: no VJP lives here.

Read after functional.py. The losses can be trusted exactly as far as the
primitives they are made of.

Losses follow PyTorch's `torch.nn.functional`, plus an optional `mask`:

- the per-element loss has a shape (`input.shape` for mse, the logits' shape
  without the class axis for cross-entropy);
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
>>> logits.grad.round(3)  # (softmax - one_hot) / 2
array([[-0.078,  0.057,  0.021],
       [ 0.023, -0.045,  0.023]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.errors import ArgumentError, DTypeError, IndexingError, ShapeError, fmt_shape
from ..core.tensor import Tensor, stack

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------- losses


def mse_loss(input: Tensor, target: Any, mask: Any = None, reduction: str = "mean") -> Tensor:
    """Squared error (input - target)^2 per element, reduced as the module docstring says.

    `target` (Tensor or array) must have exactly `input.shape`: unlike numpy we
    do not broadcast it, because a (B,) target against a (B, 1) prediction would
    silently become a (B, B) loss.
    """
    op = "mse_loss"
    _check_reduction(op, reduction)
    x, y = _same_shape_pair(op, input, target)
    diff = x - y
    return _reduce(op, diff * diff, _mask_array(op, mask, x.shape), reduction)


def l1_loss(input: Tensor, target: Any, mask: Any = None, reduction: str = "mean") -> Tensor:
    """Absolute error |input - target| per element; `target` must have `input.shape`, as for mse_loss."""
    op = "l1_loss"
    _check_reduction(op, reduction)
    x, y = _same_shape_pair(op, input, target)
    return _reduce(op, (x - y).abs(), _mask_array(op, mask, x.shape), reduction)


def binary_cross_entropy_with_logits(
    input: Tensor, target: Any, weight: Any = None, reduction: str = "mean", pos_weight: Any = None, *, mask: Any = None
) -> Tensor:
    """-[p y log σ(x) + (1 - y) log(1 - σ(x))] per element, from logits x (p = pos_weight, default 1).

    Computed as (1 - y) x + (1 + (p - 1) y) softplus(-x), with softplus(z) = logsumexp(0, z):
    finite for any finite x, and its derivative σ(z) is right at z = 0 too. `weight` multiplies
    each element's loss (broadcast, PyTorch's rescaling: the mean still divides by the count),
    `pos_weight` (broadcast over the last axis, one per class) weights the positive term.
    """
    op = "binary_cross_entropy_with_logits"
    _check_reduction(op, reduction)
    x, y = _same_shape_pair(op, input, target)
    zeros = Tensor(np.zeros(x.shape, dtype=x.dtype))
    softplus_neg = stack([zeros, -x], axis=-1).logsumexp(axis=-1)  # log(1 + exp(-x)), stable
    if pos_weight is None:
        loss = (1.0 - y) * x + softplus_neg
    else:
        p = Tensor(_broadcast(op, "pos_weight", pos_weight, x.shape), dtype=x.dtype)
        loss = (1.0 - y) * x + (1.0 + (p - 1.0) * y) * softplus_neg
    if weight is not None:
        loss = loss * Tensor(_broadcast(op, "weight", weight, x.shape), dtype=x.dtype)
    return _reduce(op, loss, _mask_array(op, mask, x.shape), reduction)


def cross_entropy(
    logits: Tensor,
    target: Any,
    mask: Any = None,
    reduction: str = "mean",
    *,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    dim: int | None = None,
) -> Tensor:
    """-log softmax(logits)[target] per position, computed from logits (stable for any finite logits).

    The class axis. For (C,) and (N, C) logits it is the last one, in PyTorch's
    layout and ours alike. For 3 or more dimensions PyTorch puts classes on axis 1,
    (N, C, d1, ...), while sequence output is (T, B, C), classes last; the target's
    shape tells which is meant: class indices of shape (N, d1, ...) mean axis 1,
    of shape (T, B) the last axis. A shape that fits both (as when B == C), and
    probability targets (which have the logits' shape), need `dim=1` or `dim=-1`:
    this never guesses.

    `target` is either
    - integer class indices: loss = -log_softmax(z)[t]; positions whose target is
      `ignore_index` (PyTorch's -100 by default), or where `mask` is 0, are not
      checked and count for nothing; or
    - class probabilities of the logits' shape: loss = -sum_c p_c log_softmax(z)_c.
    `weight` (C,) weighs class c's term by w_c; with index targets the mean is then
    sum(w_t l) / sum(w_t), PyTorch's rule. `label_smoothing` e mixes the target with
    the uniform distribution: (1 - e) * target + e / C. The per-position loss has the
    logits' shape without the class axis.
    """
    op = "cross_entropy"
    _check_reduction(op, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ArgumentError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    z, t, probabilities = _classes_last(op, "logits", logits, target, dim)
    log_p = z.log_softmax(axis=-1)  # one primitive: log(sum exp) with the max subtracted first
    return _class_loss(op, log_p, t, probabilities, mask, reduction, weight, ignore_index, label_smoothing)


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Any = None,
    *,
    mask: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    dim: int | None = None,
) -> Tensor:
    """-input[target] per position, for log-probabilities `input` (e.g. from log_softmax).

    cross_entropy(z, t) is nll_loss(log_softmax(z), t); the class axis, `weight`,
    `ignore_index` and `mask` work as there. Targets are class indices.
    """
    op = "nll_loss"
    _check_reduction(op, reduction)
    log_p, t, probabilities = _classes_last(op, "input", input, target, dim)
    if probabilities:
        raise DTypeError(f"{op}: target must hold class indices; for class probabilities use cross_entropy")
    return _class_loss(op, log_p, t, False, mask, reduction, weight, ignore_index, 0.0)


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


def _reduce(op: str, loss: Tensor, weights: np.ndarray | None, reduction: str, total: float | None = None) -> Tensor:
    """Apply the mask `weights` and the reduction; a 'mean' divides by `total` (default sum(weights))."""
    if weights is not None:
        loss = loss * Tensor(weights.astype(loss.dtype))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    count = total if total is not None else loss.size if weights is None else float(weights.sum())
    if count == 0:
        what = "the input is empty" if weights is None else "the mask is all zeros (or every target is ignore_index)"
        raise ArgumentError(
            f"{op}: reduction='mean' of per-element loss of shape {fmt_shape(loss.shape)} has nothing to average: "
            f"{what}. Use reduction='sum' (which gives 0) or skip this batch."
        )
    return loss.sum() * (1.0 / count)


def _same_shape_pair(op: str, input: Any, target: Any) -> tuple[Tensor, Tensor]:
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
    return x, y


def _broadcast(op: str, name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    array = _numeric_array(op, name, value.data if isinstance(value, Tensor) else value)
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        message = f"{op}: {name} of shape {fmt_shape(array.shape)} does not broadcast to {fmt_shape(shape)}"
        raise ShapeError(message) from None


def _classes_last(op: str, name: str, x: Any, target: Any, dim: int | None) -> tuple[Tensor, Any, bool]:
    """(x with its class axis moved last, the target likewise, whether the target is probabilities)."""
    z = _floating(op, name, x)
    if z.ndim == 0:
        raise ShapeError(f"{op}: {name} must have a class axis (shape (C,), (N, C) or more), got a 0-d tensor")
    t = target if isinstance(target, Tensor) else Tensor(_numeric_array(op, "target", target))
    probabilities = t.shape == z.shape
    shape = fmt_shape(z.shape)
    if dim is not None:
        if not -z.ndim <= dim < z.ndim:
            raise ArgumentError(f"{op}: dim={dim} is out of range for {name} of shape {shape}")
        axis = dim % z.ndim
    elif z.ndim <= 2:
        axis = z.ndim - 1
    elif probabilities:
        raise ArgumentError(
            f"{op}: {name} of shape {shape} with class probabilities of the same shape: say which axis holds the "
            "classes, dim=1 (PyTorch's (N, C, d1, ...)) or dim=-1 (sequence output (T, B, C))"
        )
    else:
        last, pytorchs = z.shape[:-1], z.shape[:1] + z.shape[2:]
        fits = [a for a, expected in ((z.ndim - 1, last), (1, pytorchs)) if t.shape == expected]
        if not fits:
            raise ShapeError(
                f"{op}: {name} have shape {shape}, so target must be class indices of shape {fmt_shape(last)} "
                f"(classes last) or {fmt_shape(pytorchs)} (classes on axis 1, PyTorch's layout), or probabilities "
                f"of shape {shape}; got {fmt_shape(t.shape)}"
            )
        if len(fits) == 2:
            raise ArgumentError(
                f"{op}: target of shape {fmt_shape(t.shape)} fits {name} of shape {shape} with classes on the last "
                "axis and on axis 1; pass dim=-1 (sequence output (T, B, C)) or dim=1 (PyTorch's (N, C, d1, ...))"
            )
        axis = fits[0]
    if axis != z.ndim - 1:
        order = [i for i in range(z.ndim) if i != axis] + [axis]
        z = z.permute(*order)
        if probabilities:
            t = t.permute(*order)
    elif not probabilities and t.shape != z.shape[:-1]:
        raise ShapeError(
            f"{op}: {name} have shape {shape}, so target must be class indices of shape {fmt_shape(z.shape[:-1])} "
            f"or probabilities of shape {shape}; got {fmt_shape(t.shape)}"
        )
    return z, t, probabilities


def _class_loss(
    op: str, log_p: Tensor, target: Tensor, probabilities: bool, mask: Any, reduction: str, weight: Any,
    ignore_index: int, smoothing: float,
) -> Tensor:  # fmt: skip
    """The loss from log-probabilities with classes last, for either kind of target."""
    classes, loss_shape = log_p.shape[-1], log_p.shape[:-1]
    masked = _mask_array(op, mask, loss_shape)
    w = None if weight is None else _broadcast(op, "weight", weight, (classes,)).astype(log_p.dtype)
    if probabilities:
        if target.dtype.kind != "f":
            raise DTypeError(
                f"{op}: a target of the logits' shape {fmt_shape(target.shape)} is read as class probabilities and "
                f"must be floating point, got dtype {target.dtype}"
            )
        p = target.astype(log_p.dtype)
        if smoothing:
            p = p * (1.0 - smoothing) + smoothing / classes
        if w is not None:
            p = p * Tensor(w)
        return _reduce(op, -(log_p * p).sum(axis=-1), masked, reduction)
    t = target.data
    if t.dtype.kind not in "iu":
        raise DTypeError(
            f"{op}: target of shape {fmt_shape(t.shape)} must hold integer class indices, got dtype {t.dtype}; "
            f"convert with target.astype(np.int64) (or pass probabilities of shape {fmt_shape(log_p.shape)})"
        )
    ignored = t == ignore_index
    if ignored.any():
        masked = (~ignored).astype(np.float64) * (1.0 if masked is None else masked)
    index = _class_indices(op, t, classes, masked)
    # Advanced indexing picks log_p[..., t] at every position; its VJP scatters dL/dloss back.
    loss = -log_p[(*np.indices(loss_shape, sparse=True), index)]
    total = None
    if w is not None:
        loss = loss * Tensor(w[index])
        total = float(((1.0 if masked is None else masked) * w[index]).sum())
    if smoothing:
        uniform = -(log_p * Tensor(w)).sum(axis=-1) if w is not None else -log_p.sum(axis=-1)
        loss = loss * (1.0 - smoothing) + uniform * (smoothing / classes)
    return _reduce(op, loss, masked, reduction, total)
