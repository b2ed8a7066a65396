"""testing.py — Hypothesis strategies for tensors, and a one-call property check for your own ops.

Read after strategies.py, which holds the strategies (re-exported here). A
single hand-picked input tests one point; these strategies let Hypothesis
choose shapes (0-d, size-1 axes, broadcasting) and values, then shrink any
failure to a small example. Two things make gradient
tests trustworthy rather than flaky:

- values are drawn from the op's *domain* (log needs x > 0) rather than the op
  being shifted to fit arbitrary values;
- values stay `min_gap` away from the points where the op is not
  differentiable (0 for abs and relu; ties for max, with `unique=True`),
  because there the finite difference straddles a kink and no VJP can match it.

`check_op` puts it together for a user-defined op: draw inputs, run
`gradcheck` and `gradgradcheck`, and let Hypothesis report the smallest
failing case.

>>> from tinygrad_rnn.checks.testing import check_op
>>> check_op(lambda x, y: x * y + x.tanh(), arity=2, max_examples=5)

This module needs the `test` extra (`pip install "tinygrad_rnn[test]"`), which
brings Hypothesis; importing it without Hypothesis says so.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, overload

import numpy as np

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ModuleNotFoundError as missing:  # the library itself runs without the test extra; this module cannot
    if (missing.name or "").partition(".")[0] != "hypothesis":
        raise
    raise ModuleNotFoundError(
        "tinygrad_rnn.checks.testing needs Hypothesis, which is not installed; "
        'install the test extra with `pip install "tinygrad_rnn[test]"` (or just `pip install hypothesis`)',
        name="hypothesis",
    ) from None

from ..core.errors import GradcheckError
from ..core.tensor import Tensor
from .gradcheck import gradcheck, gradgradcheck
from .strategies import DEFAULT_DOMAIN, Domain, arrays, broadcastable_shapes, shapes, tensors

__all__ = ["arrays", "broadcastable_shapes", "check_op", "shapes", "tensors"]


# ---------------------------------------------------------------- check_op


def _draw_inputs(
    data: st.DataObject,
    arity: int,
    broadcasts: bool,
    domain: Domain,
    away_from: Sequence[float],
    min_gap: float,
    unique: bool,
    shape_bounds: tuple[int, int, int],
) -> list[Tensor]:
    min_dims, max_dims, max_side = shape_bounds
    if broadcasts and arity > 1:
        in_shapes = data.draw(broadcastable_shapes(arity, min_dims, max_dims, max_side), label="shapes")
    else:
        in_shapes = (data.draw(shapes(min_dims, max_dims, 1, max_side), label="shape"),) * arity
    sizes = [math.prod(s) for s in in_shapes]
    # Draw all values as one pool so `unique` also rules out ties *between* inputs (max(x, y) at x = y).
    pool = data.draw(arrays((sum(sizes),), np.float64, domain, away_from, min_gap, unique), label="values")
    pieces = np.split(pool, np.cumsum(sizes)[:-1])
    return [Tensor(p.reshape(s), requires_grad=True) for p, s in zip(pieces, in_shapes, strict=True)]


@overload
def check_op(
    fn: Callable[..., Any],
    *,
    arity: int = ...,
    domain: Domain = ...,
    away_from: Sequence[float] = ...,
    min_gap: float = ...,
    unique: bool = ...,
    broadcasts: bool = ...,
    min_dims: int = ...,
    max_dims: int = ...,
    max_side: int = ...,
    max_examples: int | None = ...,
    second_order: bool = ...,
    fast_mode: bool = ...,
    atol: float = ...,
    rtol: float = ...,
) -> None: ...


@overload
def check_op(
    fn: None = ...,
    *,
    arity: int = ...,
    domain: Domain = ...,
    away_from: Sequence[float] = ...,
    min_gap: float = ...,
    unique: bool = ...,
    broadcasts: bool = ...,
    min_dims: int = ...,
    max_dims: int = ...,
    max_side: int = ...,
    max_examples: int | None = ...,
    second_order: bool = ...,
    fast_mode: bool = ...,
    atol: float = ...,
    rtol: float = ...,
) -> Callable[[Callable[..., Any]], Callable[[], None]]: ...


def check_op(
    fn: Callable[..., Any] | None = None,
    *,
    arity: int = 1,
    domain: Domain = DEFAULT_DOMAIN,
    away_from: Sequence[float] = (),
    min_gap: float = 1e-3,
    unique: bool = False,
    broadcasts: bool = True,
    min_dims: int = 0,
    max_dims: int = 3,
    max_side: int = 3,
    max_examples: int | None = None,
    second_order: bool = True,
    fast_mode: bool = False,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> Callable[[Callable[..., Any]], Callable[[], None]] | None:
    """Property-check the derivatives of `fn(*tensors)` over shapes and values drawn by Hypothesis.

    Each example draws `arity` float64 tensors (mutually broadcastable shapes
    when `broadcasts`, else one shared shape) with values in `domain`, kept
    `min_gap` from `away_from` (and from each other with `unique=True`), then
    runs `gradcheck` and, with `second_order`, `gradgradcheck`. A failure is
    shrunk to a small example and raised as `GradcheckError`.
    `max_examples=None` uses the active Hypothesis profile.

    Called without `fn` it is a decorator: the op becomes a test function
    that runs the check (pytest collects it when its name starts with `test`).

    >>> @check_op(domain=(0.1, 3.0), max_examples=5)
    ... def test_log1p(x):
    ...     return (x + 1.0).log()
    >>> test_log1p()
    """
    check = functools.partial(
        _check,
        arity=arity,
        domain=domain,
        away_from=away_from,
        min_gap=min_gap,
        unique=unique,
        broadcasts=broadcasts,
        shape_bounds=(min_dims, max_dims, max_side),
        max_examples=max_examples,
        second_order=second_order,
        fast_mode=fast_mode,
        atol=atol,
        rtol=rtol,
    )
    if fn is not None:
        check(fn)
        return None

    def decorate(op: Callable[..., Any]) -> Callable[[], None]:
        # Not functools.wraps: pytest would follow __wrapped__ to the op's signature and look for fixtures x, y.
        def test() -> None:
            check(op)

        test.__name__, test.__qualname__, test.__doc__ = op.__name__, op.__qualname__, op.__doc__
        return test

    return decorate


def _check(
    fn: Callable[..., Any],
    arity: int,
    domain: Domain,
    away_from: Sequence[float],
    min_gap: float,
    unique: bool,
    broadcasts: bool,
    shape_bounds: tuple[int, int, int],
    max_examples: int | None,
    second_order: bool,
    fast_mode: bool,
    atol: float,
    rtol: float,
) -> None:
    # settings() inherits the active profile; deadline=None because a gradient check of a slow op is slow, not wrong.
    overrides: dict[str, Any] = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
    if max_examples is not None:
        overrides["max_examples"] = max_examples
    config = settings(**overrides)

    last: list[list[Tensor]] = []  # the inputs of the latest example: after a failure, the shrunk one

    @config
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        xs = _draw_inputs(data, arity, broadcasts, domain, away_from, min_gap, unique, shape_bounds)
        last[:] = [xs]
        gradcheck(fn, xs, atol=atol, rtol=rtol, fast_mode=fast_mode)
        if second_order:
            gradgradcheck(fn, xs, atol=atol, rtol=rtol, fast_mode=fast_mode)

    # Outside its domain an op warns at every evaluation (log(0): about 80 RuntimeWarnings before
    # Hypothesis has shrunk the failure); the failure message says what went wrong instead.
    with np.errstate(all="ignore"):
        try:
            run()
        except GradcheckError as failure:
            if last and _not_finite(fn, last[0], failure):
                # Extend the message in place: Hypothesis attached the falsifying example as notes.
                failure.args = (f"{failure.args[0]}\n{_domain_hint(arity, domain)}", *failure.args[1:])
            raise


def _not_finite(fn: Callable[..., Any], xs: list[Tensor], failure: GradcheckError) -> bool:
    """Whether fn's output, or either Jacobian of the failed check, holds a NaN or an Inf."""
    out = fn(*xs)
    outs = out if isinstance(out, tuple | list) else (out,)
    if any(isinstance(o, Tensor) and not np.isfinite(o.data).all() for o in outs):
        return True
    comparisons = getattr(failure.report, "comparisons", ())
    return any(
        not (np.isfinite(c.analytic_jacobian).all() and np.isfinite(c.numeric_jacobian).all()) for c in comparisons
    )


def _domain_hint(arity: int, domain: Domain) -> str:
    return (
        f"check_op: the op gives NaN or Inf at the failing input, drawn from domain={domain}: the op is "
        "not defined (or not differentiable) everywhere there. Draw inputs from where it is, for example "
        f"check_op(fn, arity={arity}, domain=(0.1, 3.0)) for a log or a sqrt, or away_from=[0.0] for a "
        "pole or a kink at 0."
    )
