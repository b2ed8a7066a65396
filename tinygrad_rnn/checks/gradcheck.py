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

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..core import engine
from ..core.engine import enable_grad
from ..core.errors import DTypeError, GradcheckError, GradientError, fmt_shape
from ..core.tensor import Tensor

Array = npt.NDArray[np.float64]
Shape = tuple[int, ...]

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


class GradcheckPrecisionWarning(UserWarning):
    """An input or output below float64 precision: the check runs on float64 copies, or is less precise."""


# Central differences with step eps have truncation error ~eps^2 and rounding error ~ulp/eps;
# eps ~ ulp^(1/3) balances them. 1e-6 for float64 is PyTorch's (slightly conservative) default.
_DEFAULT_EPS = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-3, np.dtype(np.float16): 1e-2}


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class JacobianComparison:
    """d(output k)/d(input j) computed both ways, and how far apart they are.

    `analytic_jacobian` and `numeric_jacobian` have shape (output size, input size).
    `worst_index` indexes the input (shape `input_shape`) and `worst_output_index`
    the output at the entry that exceeds the tolerance by the most (or comes closest).
    """

    output: int
    input: int
    output_name: str
    input_name: str
    output_shape: Shape
    input_shape: Shape
    analytic_jacobian: Array
    numeric_jacobian: Array
    max_abs_error: float
    max_rel_error: float
    worst_index: Shape | None
    worst_output_index: Shape | None
    analytic: float
    numeric: float
    passed: bool

    def describe(self) -> str:
        """One line: where the worst entry is and its two values."""
        return (
            f"d({self.output_name})/d({self.input_name}) mismatch at index {_fmt_index(self.worst_index)}: "
            f"analytic={self.analytic:.6g}, numeric={self.numeric:.6g}, max |diff|={self.max_abs_error:.6g}"
        )


@dataclass(frozen=True)
class GradcheckReport:
    """Every (output, input) comparison of one check, with the tolerances used."""

    comparisons: tuple[JacobianComparison, ...]
    eps: float
    atol: float
    rtol: float

    @property
    def failures(self) -> tuple[JacobianComparison, ...]:
        return tuple(c for c in self.comparisons if not c.passed)

    def for_input(self, j: int) -> tuple[JacobianComparison, ...]:
        """The comparisons for input j (its position in `inputs`), one per output."""
        return tuple(c for c in self.comparisons if c.input == j)

    def __str__(self) -> str:
        lines = [f"{'':6}{'d(output)/d(input)':38}{'max |diff|':>12}{'max rel':>12}  worst index"]
        for c in self.comparisons:
            mark = "ok" if c.passed else "FAIL"
            pair = f"d({c.output_name})/d({c.input_name})"
            lines.append(
                f"{mark:6}{pair:38}{c.max_abs_error:12.3g}{c.max_rel_error:12.3g}  {_fmt_index(c.worst_index)}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class InvariantReport:
    """A VJP that broke one of the two invariants gradcheck also checks.

    `check` is "zero_grad_out" (grad_out = 0 gave a nonzero gradient: `gradients`
    holds that gradient) or "backward_twice" (two backward passes over one graph
    disagreed: `gradients` holds both). `max_error` is max |gradient| or
    max |first - second|, at `worst_index` into the input; `tolerance` is 0 or
    `nondet_tol`.
    """

    check: str
    output: int
    input: int
    output_name: str
    input_name: str
    input_shape: Shape
    gradients: tuple[Array, ...]
    max_error: float
    worst_index: Shape | None
    tolerance: float

    def __str__(self) -> str:
        return (
            f"{self.check}: d({self.output_name})/d({self.input_name}) max error {self.max_error:.6g} "
            f"at index {_fmt_index(self.worst_index)} (tolerance {self.tolerance:g})"
        )


def _worst(error: Array) -> tuple[float, Shape]:
    """The largest entry of an error array (NaN counts as the largest) and its index."""
    flat = np.where(np.isnan(error), np.inf, error).reshape(-1)
    i = int(np.argmax(flat))
    return float(error.reshape(-1)[i]), tuple(int(n) for n in np.unravel_index(i, error.shape))


def _fmt_index(index: Shape | None) -> str:
    return "-" if index is None else fmt_shape(index)


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


# ---------------------------------------------------------------- comparing


def _compare(
    analytic: Array,
    numeric: Array,
    atol: float,
    rtol: float,
    k: int,
    j: int,
    names: tuple[str, str],
    shapes: tuple[Shape, Shape],
) -> JacobianComparison:
    diff = np.abs(analytic - numeric)
    allowed = atol + rtol * np.abs(numeric)
    # A NaN on either side is the worst possible mismatch.
    excess = np.where(np.isnan(diff), np.inf, diff - allowed)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(diff == 0, 0.0, diff / np.abs(numeric))
    out_shape, in_shape = shapes
    if diff.size == 0:
        worst_out = worst_in = None
        a_val = n_val = float("nan")
        passed = True
    else:
        row, col = np.unravel_index(int(np.argmax(excess)), diff.shape)
        worst_out = tuple(int(i) for i in np.unravel_index(int(row), out_shape))
        worst_in = tuple(int(i) for i in np.unravel_index(int(col), in_shape))
        a_val, n_val = float(analytic[row, col]), float(numeric[row, col])
        passed = bool(np.all(excess <= 0))
    return JacobianComparison(
        output=k,
        input=j,
        output_name=names[0],
        input_name=names[1],
        output_shape=out_shape,
        input_shape=in_shape,
        analytic_jacobian=analytic,
        numeric_jacobian=numeric,
        max_abs_error=float(np.nanmax(np.where(np.isnan(diff), np.inf, diff), initial=0.0)),
        max_rel_error=float(np.nanmax(np.where(np.isnan(rel), np.inf, rel), initial=0.0)),
        worst_index=worst_in,
        worst_output_index=worst_out,
        analytic=a_val,
        numeric=n_val,
        passed=passed,
    )


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


def _failure_message(report: GradcheckReport) -> str:
    worst = max(report.failures, key=lambda c: c.max_abs_error if np.isfinite(c.max_abs_error) else np.inf)
    return (
        f"{worst.describe()}\n"
        f"  index {_fmt_index(worst.worst_index)} is into {worst.input_name} of shape {fmt_shape(worst.input_shape)}; "
        f"the element of {worst.output_name} (shape {fmt_shape(worst.output_shape)}) is "
        f"{_fmt_index(worst.worst_output_index)}\n"
        f"  allowed: |analytic - numeric| <= atol + rtol * |numeric| with atol={report.atol:g}, "
        f"rtol={report.rtol:g}, eps={report.eps:g}\n"
        f"{report}"
    )


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
