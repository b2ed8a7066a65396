"""nn/utils.py — gradient clipping, the usual guard against exploding gradients in BPTT.

Read after the engine has filled `.grad`. Both functions work on whatever
`backward()` left in `.grad` (a Tensor, with a graph after
`create_graph=True`), skip parameters whose `.grad` is None, and *rebind*
`p.grad` to a new Tensor instead of scaling it in place, so a gradient someone
else still holds (a logged gradient, a hook's argument) keeps its values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..core.errors import ArgumentError, DTypeError, GradientError
from ..core.tensor import Tensor


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> np.float64:
    """Scale all gradients together so their joint norm is at most `max_norm`; return the norm before.

    total = ||(||g_1||_p, ..., ||g_n||_p)||_p   (the p-norm of all gradients as one vector;
                                                 p = inf gives max |g|)
    g_i  <- g_i * min(1, max_norm / (total + 1e-6))

    exactly as PyTorch: the 1e-6 keeps the division finite when total is 0, and
    the `min(1, ...)` means gradients already inside the ball are left alone.
    The result is an `np.float64`, which is a Python float that also has `.item()`.
    A NaN or Inf total raises GradientError if `error_if_nonfinite`, and otherwise
    propagates into the gradients, as it does in PyTorch.
    """
    op = "clip_grad_norm_"
    max_norm = _number(op, "max_norm", max_norm)
    norm_type = _number(op, "norm_type", norm_type)
    if not max_norm >= 0:
        raise ArgumentError(f"{op}: max_norm must be >= 0, got {max_norm}")
    if not norm_type > 0:
        raise ArgumentError(f"{op}: norm_type must be > 0 (or math.inf), got {norm_type}")
    params = [p for p in _parameters(op, parameters) if p.grad is not None]
    if not params:
        return np.float64(0.0)
    grads = [np.asarray(p.grad) for p in params]
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isinf(norm_type):
            total = max((float(np.max(np.abs(g))) if g.size else 0.0) for g in grads)
        else:
            # The norm of the per-parameter norms equals the norm of everything concatenated.
            norms = [np.linalg.norm(g.ravel().astype(np.float64), ord=norm_type) for g in grads]
            total = float(np.linalg.norm(np.array(norms), ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise GradientError(
            f"{op}: the total {norm_type}-norm of the gradients of {len(params)} parameter(s) is {total}; "
            "a NaN or Inf gradient cannot be clipped. Pass error_if_nonfinite=False to clip anyway."
        )
    coef = min(1.0, max_norm / (total + 1e-6)) if not math.isnan(total) else math.nan
    with np.errstate(invalid="ignore"):  # inf * 0 = nan is PyTorch's documented outcome, not a surprise
        for p in params:
            if p.grad is not None:
                p.grad = p.grad * coef  # a new Tensor: never scale the old one in place
    return np.float64(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient element to [-clip_value, clip_value]:  g <- min(max(g, -c), c)."""
    op = "clip_grad_value_"
    clip_value = _number(op, "clip_value", clip_value)
    if not clip_value >= 0:
        raise ArgumentError(f"{op}: clip_value must be >= 0, got {clip_value}")
    for p in _parameters(op, parameters):
        g = p.grad
        if g is None:
            continue
        if isinstance(g, Tensor):
            p.grad = g.clip(-clip_value, clip_value)
        else:
            p.grad = np.clip(g, -clip_value, clip_value)  # np.clip returns a new array


def _parameters(op: str, parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    items = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(items):
        if not isinstance(p, Tensor):
            raise DTypeError(f"{op}: parameter {i} is a {type(p).__name__}, not a Tensor")
    return items


def _number(op: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise DTypeError(f"{op}: {name} must be a number, got {type(value).__name__}")
    return float(value)
