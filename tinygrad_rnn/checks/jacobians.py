"""jacobians.py — the two Jacobians that gradcheck compares. Read after gradcheck.py.

For f: R^n -> R^m, J (m x n) is built by columns from central differences,
column i = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), and by rows from the
engine, row r = e_r^T J = `grad(f(x), x, grad_outputs=e_r)`. The two share no
code. Both run on float64 leaf copies of the inputs (`_prepare`); fast mode
(gradcheck.py) reuses `_central_difference` and `_vjp` for one random
direction instead of every column and row.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ..core import engine
from ..core.engine import enable_grad
from ..core.errors import DTypeError, GradientError, fmt_shape
from ..core.tensor import Tensor

Array = npt.NDArray[np.float64]
Shape = tuple[int, ...]


class GradcheckPrecisionWarning(UserWarning):
    """An input or output below float64 precision: the check runs on float64 copies, or is less precise."""


# Central differences with step eps have truncation error ~eps^2 and rounding error ~ulp/eps;
# eps ~ ulp^(1/3) balances them. 1e-6 for float64 is PyTorch's (slightly conservative) default.
_DEFAULT_EPS = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-3, np.dtype(np.float16): 1e-2}


# ---------------------------------------------------------------- inputs and outputs


def _prepare(op: str, inputs: Any, warn: bool) -> tuple[list[Any], list[int]]:
    """Fresh float64 leaf copies of the Tensor inputs (so the caller's are never touched), and
    the positions of those that require grad."""
    items = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    args: list[Any] = []
    wrt: list[int] = []
    for j, item in enumerate(items):
        if not isinstance(item, Tensor):
            args.append(item)  # passed through unchanged, never differentiated
            continue
        data = item.data
        if data.dtype.kind == "f" and data.dtype != np.float64:
            if warn and item.requires_grad:
                warnings.warn(
                    f"{op}: input {j} has dtype {data.dtype}; checking a float64 copy instead, because "
                    f"finite differences in {data.dtype} are too coarse for the default tolerances",
                    GradcheckPrecisionWarning,
                    stacklevel=3,
                )
            data = data.astype(np.float64)
        args.append(Tensor(data, requires_grad=item.requires_grad))
        if item.requires_grad:
            wrt.append(j)
    if not wrt:
        raise GradientError(f"{op}: no input requires grad; mark the tensors to check with requires_grad=True")
    return args, wrt


def _outputs(op: str, fn: Callable[..., Any], args: Sequence[Any]) -> tuple[Tensor, ...]:
    result = fn(*args)
    outs = (result,) if isinstance(result, Tensor) else result
    if not isinstance(outs, tuple | list) or not all(isinstance(o, Tensor) for o in outs):
        raise DTypeError(f"{op}: fn must return a Tensor or a tuple of Tensors, got {type(result).__name__}")
    for k, out in enumerate(outs):
        if out.dtype.kind != "f":
            raise DTypeError(f"{op}: output {k} has dtype {out.dtype}; only floating-point outputs have gradients")
    return tuple(outs)


def _replaced(args: Sequence[Any], j: int, data: np.ndarray) -> list[Any]:
    new = list(args)
    new[j] = Tensor(data, requires_grad=args[j].requires_grad)
    return new


def _pick_eps(outs: Sequence[Tensor]) -> float:
    """The step for the least precise output's dtype (the inputs are float64 by now)."""
    return max((_DEFAULT_EPS.get(o.dtype, 1e-6) for o in outs), default=1e-6)


def _warn_low_precision(op: str, outs: Sequence[Tensor]) -> None:
    for k, out in enumerate(outs):
        if out.dtype != np.float64:
            warnings.warn(
                f"{op}: output {k} has dtype {out.dtype} although the inputs are float64; the check "
                f"is only as precise as {out.dtype} (eps={_pick_eps(outs):g}), so loosen atol and rtol",
                GradcheckPrecisionWarning,
                stacklevel=3,
            )


# ---------------------------------------------------------------- the two Jacobians


def _numerical(
    op: str, fn: Callable[..., Any], args: Sequence[Any], wrt: Sequence[int], eps: float
) -> list[list[Array]]:
    """J[k][jj] (output k, the jj-th checked input) by central differences, one column per element."""
    base = _outputs(op, fn, args)
    jac = [[np.zeros((out.size, args[j].size)) for j in wrt] for out in base]
    for jj, j in enumerate(wrt):
        x = args[j].data
        for i in range(x.size):
            step = np.zeros(x.shape)
            step.flat[i] = eps
            columns = _central_difference(op, fn, args, j, step, eps, base)
            for k, column in enumerate(columns):
                jac[k][jj][:, i] = column
    return jac


def _central_difference(
    op: str,
    fn: Callable[..., Any],
    args: Sequence[Any],
    j: int,
    step: np.ndarray,
    eps: float,
    base: Sequence[Tensor],
) -> list[Array]:
    """(f(x_j + step) - f(x_j - step)) / (2 eps) for every output, flattened."""
    x = args[j].data
    plus = _outputs(op, fn, _replaced(args, j, x + step))
    minus = _outputs(op, fn, _replaced(args, j, x - step))
    columns = []
    for k, (p, m, b) in enumerate(zip(plus, minus, base, strict=True)):
        if p.shape != b.shape or m.shape != b.shape:
            raise GradientError(
                f"{op}: output {k} has shape {fmt_shape(b.shape)} at the input but {fmt_shape(p.shape)} "
                f"after a step of {eps:g} in input {j}; fn must keep its output shape"
            )
        columns.append((p.data.astype(np.float64) - m.data.astype(np.float64)).reshape(-1) / (2 * eps))
    return columns


def _vjp(outs: Sequence[Tensor], k: int, xs: Sequence[Tensor], seed: np.ndarray) -> list[Array]:
    """J_k^T seed for each input in xs, as flat arrays (zeros where the output does not depend on it)."""
    if not outs[k].requires_grad:
        return [np.zeros(x.size) for x in xs]
    seed = np.asarray(seed)  # arithmetic on 0-d arrays gives numpy scalars, which grad() does not take
    grads = engine.grad(outs[k], xs, grad_outputs=seed, retain_graph=True, allow_unused=True)
    flat = []
    for x, g in zip(xs, grads, strict=True):
        if g is None:
            flat.append(np.zeros(x.size))
            continue
        if g.shape != x.shape or g.dtype != x.dtype:  # the engine promises this; a VJP may still break it
            raise GradientError(
                f"backward gave a gradient of shape {fmt_shape(g.shape)} and dtype {g.dtype} for an input "
                f"of shape {fmt_shape(x.shape)} and dtype {x.dtype}"
            )
        flat.append(g.data.astype(np.float64).reshape(-1))
    return flat


def _analytical(op: str, fn: Callable[..., Any], args: Sequence[Any], wrt: Sequence[int]) -> list[list[Array]]:
    """J[k][jj] from the engine, one row per one-hot VJP."""
    outs = _outputs(op, fn, args)
    xs = [args[j] for j in wrt]
    jac = [[np.zeros((out.size, x.size)) for x in xs] for out in outs]
    for k, out in enumerate(outs):
        for r in range(out.size):
            seed = np.zeros(out.shape, dtype=out.dtype)
            seed.flat[r] = 1.0
            for jj, row in enumerate(_vjp(outs, k, xs, seed)):
                jac[k][jj][r, :] = row
    return jac


def numerical_jacobian(
    fn: Callable[..., Any], inputs: Tensor | Sequence[Any], eps: float = 1e-6
) -> tuple[tuple[Array, ...], ...]:
    """d(output k)/d(input j) by central differences, in float64: `J[k][jj]` has shape (output size, input size).

    `jj` counts only the inputs with requires_grad=True, in order. Column i is
    (f(x + eps e_i) - f(x - eps e_i)) / (2 eps).

    >>> x = Tensor([1.0, 2.0], requires_grad=True)
    >>> numerical_jacobian(lambda x: x * x, (x,))[0][0].round(6)
    array([[2., 0.],
           [0., 4.]])
    """
    args, wrt = _prepare("numerical_jacobian", inputs, warn=False)
    with enable_grad():  # fn may itself take gradients (gradgradcheck does)
        return tuple(tuple(row) for row in _numerical("numerical_jacobian", fn, args, wrt, eps))


def analytical_jacobian(fn: Callable[..., Any], inputs: Tensor | Sequence[Any]) -> tuple[tuple[Array, ...], ...]:
    """d(output k)/d(input j) from the engine, one row per one-hot VJP; laid out as `numerical_jacobian`.

    >>> x = Tensor([1.0, 2.0], requires_grad=True)
    >>> analytical_jacobian(lambda x: x * x, (x,))[0][0]
    array([[2., 0.],
           [0., 4.]])
    """
    args, wrt = _prepare("analytical_jacobian", inputs, warn=False)
    with enable_grad():
        return tuple(tuple(row) for row in _analytical("analytical_jacobian", fn, args, wrt))
