"""gradcheck.py — trust, but verify: every VJP against finite differences. Read after ops.py.

A gradient is a claim about a limit, and this module tests the claim
numerically. For f: R^n -> R^m the Jacobian J (m x n) can be built in two
independent ways:

- by columns, from finite differences. Column i is
  (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), whose error is O(eps^2)
  (central differences);
- by rows, from the engine. Row r is the VJP e_r^T J, that is
  `grad(f(x), x, grad_outputs=e_r)`: one backward pass per output element.

The two never share code, so if they agree within atol + rtol * |numeric| at
every entry, that is strong evidence that every VJP on the path is right.
Everything runs on float64 copies of the inputs: with eps = 1e-6 the
truncation error (~eps^2) and the rounding error (~1e-16 / eps) are both
about 1e-10, far below the default tolerances.

The full Jacobian costs 2n evaluations of f and m VJPs. `fast_mode=True`
replaces it with one number per (output, input) pair, the dot-product test:
<u, J v> from one directional finite difference against <J^T u, v> from one
VJP, for random unit vectors u and v. When that fails, the full Jacobian is
computed anyway, to say where.

The two Jacobians are built in jacobians.py (read it next); what a check
found is described by the report classes of reports.py.

>>> import tinygrad_rnn as tg
>>> x = tg.Tensor([[0.5, -1.0, 2.0]], requires_grad=True)
>>> gradcheck(lambda x: (x * x).sum(), (x,))
True

A wrong VJP is caught and located (the index is into input 0, shape (1, 3)):

>>> class BadSquare(tg.Function):
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x * x
...     def backward(ctx, grad_out):
...         (x,) = ctx.saved_tensors
...         return grad_out * x  # the derivative of x*x is 2x, not x
>>> gradcheck(BadSquare.apply, (x,))
Traceback (most recent call last):
    ...
tinygrad_rnn.core.errors.GradcheckError: gradcheck: d(output 0)/d(input 0) mismatch at index (0, 2): ...
...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core import engine
from ..core.engine import enable_grad
from ..core.errors import GradcheckError, GradientError, fmt_shape
from ..core.tensor import Tensor
from .jacobians import (
    Array,
    GradcheckPrecisionWarning,
    Shape,
    _analytical,
    _central_difference,
    _numerical,
    _outputs,
    _pick_eps,
    _prepare,
    _vjp,
    _warn_low_precision,
    analytical_jacobian,
    numerical_jacobian,
)
from .reports import (
    GradcheckReport,
    InvariantReport,
    JacobianComparison,
    _compare,
    _failure_message,
    _fmt_index,
    _worst,
)

__all__ = [
    "GradcheckPrecisionWarning",
    "GradcheckReport",
    "InvariantReport",
    "JacobianComparison",
    "analytical_jacobian",
    "gradcheck",
    "gradgradcheck",
    "numerical_jacobian",
]


# ---------------------------------------------------------------- the checks: full, fast, two invariants


@dataclass(frozen=True)
class _Names:
    """What to call output k and input j in messages (gradgradcheck renames them)."""

    op: str
    outputs: Callable[[int], str]
    inputs: Callable[[int], str]


def _full_report(
    names: _Names, fn: Callable[..., Any], args: Sequence[Any], wrt: Sequence[int], eps: float, atol: float, rtol: float
) -> GradcheckReport:
    outs = _outputs(names.op, fn, args)
    numeric = _numerical(names.op, fn, args, wrt, eps)
    analytic = _analytical(names.op, fn, args, wrt)
    comparisons = [
        _compare(
            analytic[k][jj],
            numeric[k][jj],
            atol,
            rtol,
            k,
            j,
            (names.outputs(k), names.inputs(j)),
            (outs[k].shape, args[j].shape),
        )
        for k in range(len(outs))
        for jj, j in enumerate(wrt)
    ]
    return GradcheckReport(tuple(comparisons), eps, atol, rtol)


def _fast_check(
    names: _Names,
    fn: Callable[..., Any],
    args: Sequence[Any],
    wrt: Sequence[int],
    eps: float,
    atol: float,
    rtol: float,
    rng: np.random.Generator,
) -> None:
    """Compare <u, J v> with <J^T u, v> for each (output, input) pair; explain a failure with the full Jacobian."""
    outs = _outputs(names.op, fn, args)
    xs = [args[j] for j in wrt]
    us = [_unit(rng, out.shape) for out in outs]
    vs = [_unit(rng, x.shape) for x in xs]
    # One directional difference per input gives J_kj v_j for every output k at once.
    jv = [_central_difference(names.op, fn, args, j, vs[jj] * eps, eps, outs) for jj, j in enumerate(wrt)]
    for k, out in enumerate(outs):
        jtu = _vjp(outs, k, xs, us[k].astype(out.dtype))
        for jj, j in enumerate(wrt):
            numeric = float(us[k].reshape(-1) @ jv[jj][k])
            analytic = float(jtu[jj] @ vs[jj].reshape(-1))
            diff = abs(analytic - numeric)
            if diff <= atol + rtol * abs(numeric):
                continue
            report = _full_report(names, fn, args, wrt, eps, atol, rtol)
            head = (
                f"fast mode: for d({names.outputs(k)})/d({names.inputs(j)}), <u, J v> = {numeric:.6g} by finite "
                f"differences but <J^T u, v> = {analytic:.6g} by backward (|diff| = {diff:.6g}) for random unit u, v.\n"
            )
            if report.failures:
                raise GradcheckError(head + "The full Jacobian locates it:\n" + _failure_message(report), report)
            raise GradcheckError(
                head + "The full Jacobian agrees entry by entry, so many small errors added up along u and v; "
                "loosen atol or use fast_mode=False.\n" + str(report),
                report,
            )


def _unit(rng: np.random.Generator, shape: Shape) -> Array:
    v = np.asarray(rng.standard_normal(shape))
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _check_zero_grad_out(names: _Names, fn: Callable[..., Any], args: Sequence[Any], wrt: Sequence[int]) -> None:
    """A VJP is linear in grad_out, so grad_out = 0 must give exactly zero."""
    outs = _outputs(names.op, fn, args)
    xs = [args[j] for j in wrt]
    for k, out in enumerate(outs):
        for jj, (j, g) in enumerate(zip(wrt, _vjp(outs, k, xs, np.zeros(out.shape, dtype=out.dtype)), strict=True)):
            if np.any(g != 0):  # NaN != 0 too
                grad = g.reshape(xs[jj].shape)
                worst, index = _worst(np.abs(grad))
                report = InvariantReport(
                    "zero_grad_out", k, j, names.outputs(k), names.inputs(j), grad.shape, (grad,), worst, index, 0.0
                )
                raise GradcheckError(
                    f"backward of {names.outputs(k)} with grad_out = 0 gave a nonzero gradient for "
                    f"{names.inputs(j)} (max |grad| = {worst:.6g} at index {_fmt_index(index)}); "
                    "a VJP must be linear in grad_out",
                    report,
                )


def _check_backward_twice(
    names: _Names,
    fn: Callable[..., Any],
    args: Sequence[Any],
    wrt: Sequence[int],
    nondet_tol: float,
    rng: np.random.Generator,
) -> None:
    """backward run twice over one graph (retain_graph=True) must give the same gradients."""
    outs = _outputs(names.op, fn, args)
    xs = [args[j] for j in wrt]
    for k, out in enumerate(outs):
        seed = np.asarray(rng.standard_normal(out.shape), dtype=out.dtype)
        first, second = _vjp(outs, k, xs, seed), _vjp(outs, k, xs, seed)
        for jj, (j, a, b) in enumerate(zip(wrt, first, second, strict=True)):
            same_nan = np.isnan(a) & np.isnan(b)
            gap = np.where(same_nan, 0.0, np.abs(a - b))
            if np.any(np.isnan(gap)) or np.any(gap > nondet_tol):
                shape = xs[jj].shape
                worst, index = _worst(gap.reshape(shape))
                pair = (a.reshape(shape), b.reshape(shape))
                report = InvariantReport(
                    "backward_twice", k, j, names.outputs(k), names.inputs(j), shape, pair, worst, index, nondet_tol
                )
                raise GradcheckError(
                    f"backward of {names.outputs(k)} is not reproducible: run twice over the same graph "
                    f"(retain_graph=True), the gradients for {names.inputs(j)} differ by up to "
                    f"{np.nanmax(gap):.6g} at index {_fmt_index(index)} (nondet_tol={nondet_tol:g}); "
                    "does a VJP change what it saved?",
                    report,
                )


@dataclass(frozen=True)
class _Options:
    eps: float | None
    atol: float
    rtol: float
    fast_mode: bool
    check_zero_grad_out: bool
    check_backward_twice: bool
    nondet_tol: float
    seed: int


def _run(
    names: _Names, fn: Callable[..., Any], args: Sequence[Any], wrt: Sequence[int], o: _Options, raise_exception: bool
) -> bool:
    rng = np.random.default_rng(o.seed)
    with enable_grad():
        outs = _outputs(names.op, fn, args)
        _warn_low_precision(names.op, outs)
        eps = _pick_eps(outs) if o.eps is None else o.eps
        try:
            if o.fast_mode:
                _fast_check(names, fn, args, wrt, eps, o.atol, o.rtol, rng)
            else:
                report = _full_report(names, fn, args, wrt, eps, o.atol, o.rtol)
                if report.failures:
                    raise GradcheckError(_failure_message(report), report)
            if o.check_zero_grad_out:
                _check_zero_grad_out(names, fn, args, wrt)
            if o.check_backward_twice:
                _check_backward_twice(names, fn, args, wrt, o.nondet_tol, rng)
        except GradcheckError as exc:
            if raise_exception:
                exc.args = (f"{names.op}: {exc.args[0]}",)
                raise
            return False
    return True


# ---------------------------------------------------------------- the public checks


def gradcheck(
    fn: Callable[..., Any],
    inputs: Tensor | Sequence[Any],
    eps: float | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
    raise_exception: bool = True,
    check_backward_twice: bool = True,
    check_zero_grad_out: bool = True,
    nondet_tol: float = 0.0,
    seed: int = 0,
) -> bool:
    """Check the first derivatives of `fn(*inputs)` against finite differences; True, or GradcheckError.

    Every Tensor input with requires_grad=True is checked, on a float64 copy
    (a float32 input gives a GradcheckPrecisionWarning); other inputs pass
    through. `fn` returns a Tensor or a tuple of Tensors. `eps` defaults to
    1e-6 for float64 outputs (1e-3 if `fn` itself computes in float32). Each
    Jacobian entry must satisfy |analytic - numeric| <= atol + rtol * |numeric|.
    Two invariants are checked too: grad_out = 0 gives zero gradients, and a
    second backward over the same graph gives the same gradients (up to
    `nondet_tol`). `fast_mode=True` checks one random projection per
    (output, input) pair instead of the full Jacobian. `seed` fixes the random
    vectors. With `raise_exception=False` a failure returns False.

    >>> x = Tensor([0.3, -1.2], requires_grad=True)
    >>> w = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> gradcheck(lambda x, w: (x @ w).tanh(), (x, w))
    True
    """
    args, wrt = _prepare("gradcheck", inputs, warn=True)
    names = _Names("gradcheck", lambda k: f"output {k}", lambda j: f"input {j}")
    options = _Options(eps, atol, rtol, fast_mode, check_zero_grad_out, check_backward_twice, nondet_tol, seed)
    return _run(names, fn, args, wrt, options, raise_exception)


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Tensor | Sequence[Any],
    grad_outputs: Tensor | np.ndarray | Sequence[Tensor | np.ndarray] | None = None,
    eps: float | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
    raise_exception: bool = True,
    check_backward_twice: bool = True,
    check_zero_grad_out: bool = True,
    nondet_tol: float = 0.0,
    seed: int = 0,
) -> bool:
    """Check the second derivatives of `fn`: gradcheck of (inputs, v) -> grad(fn(inputs), inputs, v).

    The first derivative is taken with `create_graph=True`, so its own
    backward pass is recorded and can be checked like any other function.
    `v` (one per output of `fn`) is `grad_outputs`, or random if None; random
    `v` and `grad_outputs` Tensors with requires_grad=True are checked too.

    >>> x = Tensor([0.5, 1.5], requires_grad=True)
    >>> gradgradcheck(lambda x: (x * x * x).sum(), (x,))
    True
    """
    args, wrt = _prepare("gradgradcheck", inputs, warn=True)
    rng = np.random.default_rng(seed)
    with enable_grad():
        outs = _outputs("gradgradcheck", fn, args)
    diff_outs = [k for k, out in enumerate(outs) if out.requires_grad]
    if not diff_outs:
        raise GradientError("gradgradcheck: no output of fn requires grad, so there is no first derivative to check")
    vs = _grad_outputs(outs, diff_outs, grad_outputs, rng)
    n = len(args)
    checked = [args[j] for j in wrt]

    def first_derivative(*all_args: Any) -> tuple[Tensor, ...]:
        xs, v = all_args[:n], all_args[n:]
        picked = [_outputs("gradgradcheck", fn, xs)[k] for k in diff_outs]
        grads = engine.grad(picked, [xs[j] for j in wrt], grad_outputs=list(v), create_graph=True, allow_unused=True)
        return tuple(g if g is not None else Tensor(np.zeros(x.shape)) for g, x in zip(grads, checked, strict=True))

    def input_name(i: int) -> str:
        return f"input {i}" if i < n else f"grad_output {diff_outs[i - n]}"

    names = _Names("gradgradcheck", lambda k: f"grad of input {wrt[k]}", input_name)
    wrt_all = wrt + [n + i for i, v in enumerate(vs) if v.requires_grad]
    options = _Options(eps, atol, rtol, fast_mode, check_zero_grad_out, check_backward_twice, nondet_tol, seed + 1)
    return _run(names, first_derivative, [*args, *vs], wrt_all, options, raise_exception)


def _grad_outputs(
    outs: Sequence[Tensor],
    diff_outs: Sequence[int],
    given: Tensor | np.ndarray | Sequence[Tensor | np.ndarray] | None,
    rng: np.random.Generator,
) -> list[Tensor]:
    """One float64 `v` per differentiable output: random (and checked) when not given."""
    if given is None:
        return [Tensor(rng.standard_normal(outs[k].shape), requires_grad=True) for k in diff_outs]
    items = [given] if isinstance(given, Tensor | np.ndarray) else list(given)
    if len(items) != len(outs):
        raise GradientError(f"gradgradcheck: got {len(items)} grad_outputs for {len(outs)} outputs of fn")
    vs = []
    for k in diff_outs:
        item = items[k]
        data = np.asarray(item.data if isinstance(item, Tensor) else item, dtype=np.float64)
        if data.shape != outs[k].shape:
            raise GradientError(
                f"gradgradcheck: grad_outputs[{k}] has shape {fmt_shape(data.shape)} "
                f"but output {k} has shape {fmt_shape(outs[k].shape)}"
            )
        vs.append(Tensor(data, requires_grad=isinstance(item, Tensor) and item.requires_grad))
    return vs
