"""testing.py — Hypothesis strategies for tensors, and a one-call property check for your own ops.

Read after gradcheck.py. A single hand-picked input tests one point; these
strategies let Hypothesis choose shapes (0-d, size-1 axes, broadcasting) and
values, then shrink any failure to a small example. Two things make gradient
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
import numpy.typing as npt

try:
    import hypothesis.extra.numpy as hnp
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

from ..core.errors import ArgumentError, GradcheckError
from ..core.tensor import Tensor
from .gradcheck import gradcheck, gradgradcheck

Shape = tuple[int, ...]
Domain = tuple[float, float]
SearchStrategy = st.SearchStrategy

__all__ = ["arrays", "broadcastable_shapes", "check_op", "shapes", "tensors"]

DEFAULT_DOMAIN: Domain = (-3.0, 3.0)


# ---------------------------------------------------------------- shapes


def shapes(
    min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 3, max_size: int | None = 12
) -> SearchStrategy[Shape]:
    """Array shapes with `min_dims..max_dims` axes of `min_side..max_side` each, and at most `max_size` elements.

    The size cap keeps gradient checks cheap (the full Jacobian of an n-element
    input costs 2n evaluations); it shrinks later axes rather than rejecting draws.

    >>> from hypothesis import given
    >>> @given(shapes(min_dims=1, max_dims=2, max_side=4))
    ... def test(shape):
    ...     assert 1 <= len(shape) <= 2 and all(1 <= n <= 4 for n in shape) and math.prod(shape) <= 12
    >>> test()
    """
    if not 0 <= min_dims <= max_dims or not 0 <= min_side <= max_side:
        raise ArgumentError(
            "shapes: need 0 <= min_dims <= max_dims and 0 <= min_side <= max_side, "
            f"got dims {min_dims}..{max_dims} and sides {min_side}..{max_side}"
        )
    if max_size is not None and max(min_side, 1) ** min_dims > max_size:
        raise ArgumentError(f"shapes: {min_dims} axes of at least {min_side} exceed max_size={max_size}")

    @st.composite
    def draw_shape(draw: st.DrawFn) -> Shape:
        ndim = draw(st.integers(min_dims, max_dims), label="ndim")
        if max_size is not None:
            # Never draw more dimensions than the budget can give their minimum side.
            while ndim > min_dims and max(min_side, 1) ** ndim > max_size:
                ndim -= 1
        budget = max_size
        sides = []
        for axis in range(ndim):
            high = max_side
            if budget is not None:
                room = max(min_side, 1) ** (ndim - axis - 1)  # what the remaining axes need at least
                high = max(min_side, min(max_side, budget // room))
            side = draw(st.integers(min_side, high))
            sides.append(side)
            if budget is not None:
                budget //= max(side, 1)
        return tuple(sides)

    return draw_shape()


def broadcastable_shapes(
    n: int, min_dims: int = 0, max_dims: int = 3, max_side: int = 3, max_size: int | None = 12
) -> SearchStrategy[tuple[Shape, ...]]:
    """Tuples of `n` mutually broadcastable shapes whose broadcast has at most `max_size` elements.

    Drawn with `hypothesis.extra.numpy.mutually_broadcastable_shapes` against a
    base shape without size-1 axes, so each shape takes, axis by axis, the base
    size or 1, and may drop leading axes: (2, 3) with (3,), (2, 1) or ().

    >>> import numpy as np
    >>> from hypothesis import given
    >>> @given(broadcastable_shapes(3))
    ... def test(shapes):
    ...     assert len(shapes) == 3 and math.prod(np.broadcast_shapes(*shapes)) <= 12
    >>> test()
    """
    base_side = min(2, max_side)

    def around(base: Shape) -> SearchStrategy[tuple[Shape, ...]]:
        return hnp.mutually_broadcastable_shapes(
            num_shapes=n, base_shape=base, min_dims=min_dims, max_dims=len(base), max_side=max(base, default=1)
        ).map(lambda drawn: drawn.input_shapes)

    return shapes(min_dims, max_dims, base_side, max_side, max_size).flatmap(around)


# ---------------------------------------------------------------- values


def arrays(
    shape: Shape | SearchStrategy[Shape],
    dtype: npt.DTypeLike = np.float64,
    domain: Domain = DEFAULT_DOMAIN,
    away_from: Sequence[float] = (),
    min_gap: float = 1e-3,
    unique: bool = False,
    read_only: bool = False,
) -> SearchStrategy[np.ndarray]:
    """Arrays with values in `domain`, at least `min_gap` from each point in `away_from` (up to float32 rounding).

    `unique=True` also keeps every two elements `min_gap` apart (no ties, for max
    and min). `read_only=True` makes the array non-writeable, so any code that
    modifies it in place fails loudly.

    >>> from hypothesis import given
    >>> @given(arrays((2, 3), domain=(-1, 1), away_from=(0,), min_gap=0.1))
    ... def test(a):
    ...     assert a.shape == (2, 3) and np.all(np.abs(a) >= 0.1) and np.all(np.abs(a) <= 1)
    >>> test()
    """
    elements = _elements(float(domain[0]), float(domain[1]), tuple(sorted(float(p) for p in away_from)), min_gap)
    # float64 first, then cast: bounds like 0.1 are not exact float32 values, which Hypothesis rejects.
    drawn = hnp.arrays(np.float64, shape, elements=elements, unique=unique)
    if unique:
        drawn = drawn.filter(lambda a: a.size < 2 or float(np.min(np.diff(np.sort(a, axis=None)))) >= min_gap)
    target = np.dtype(dtype)

    def finish(a: np.ndarray) -> np.ndarray:
        out = a.astype(target)
        out.flags.writeable = not read_only
        return out

    return drawn.map(finish)


@functools.lru_cache(maxsize=256)
def _elements(low: float, high: float, points: tuple[float, ...], min_gap: float) -> SearchStrategy[float]:
    """Floats in [low, high] minus (p - min_gap, p + min_gap) for each p, as a union of intervals.

    A union of `floats` strategies rather than `floats().filter(...)`: no draw is
    ever rejected, and Hypothesis need not analyse a predicate on every call (cached).
    """
    if not low < high:
        raise ArgumentError(f"arrays: domain ({low}, {high}) is empty; give (low, high) with low < high")
    intervals, start = [], low
    for p in points:
        end = float(np.nextafter(p - min_gap, -np.inf))
        if start <= min(end, high):
            intervals.append((start, min(end, high)))
        start = max(start, float(np.nextafter(p + min_gap, np.inf)))
    if start <= high:
        intervals.append((start, high))
    if not intervals:
        raise ArgumentError(f"arrays: no value in ({low}, {high}) is {min_gap} away from all of {points}")
    return st.one_of(
        *(st.floats(a, b, allow_nan=False, allow_infinity=False, allow_subnormal=False) for a, b in intervals)
    )


def tensors(
    shape: Shape | SearchStrategy[Shape] | None = None,
    dtype: npt.DTypeLike = np.float64,
    domain: Domain = DEFAULT_DOMAIN,
    away_from: Sequence[float] = (),
    min_gap: float = 1e-3,
    unique: bool = False,
    requires_grad: bool = True,
) -> SearchStrategy[Tensor]:
    """Tensors (requires_grad=True by default) holding `arrays(...)`; `shape=None` draws one with `shapes()`.

    >>> from hypothesis import given
    >>> @given(tensors(domain=(0.1, 2)))
    ... def test(x):
    ...     assert x.requires_grad and x.size <= 12 and np.all(x.data > 0)
    >>> test()
    """
    values = arrays(shapes() if shape is None else shape, dtype, domain, away_from, min_gap, unique)
    return values.map(lambda a: Tensor(a, requires_grad=requires_grad))


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
