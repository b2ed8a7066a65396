"""strategies.py — Hypothesis strategies for shapes, arrays and tensors. Read after gradcheck.py.

A single hand-picked input tests one point; these strategies let Hypothesis
choose shapes (0-d, size-1 axes, broadcasting) and values, then shrink any
failure to a small example. Values come from the op's *domain* (log needs
x > 0) and stay `min_gap` away from the points where the op is not
differentiable. testing.py builds `check_op` on them and re-exports them
(`from tinygrad_rnn.checks.testing import arrays` keeps working). Needs
Hypothesis (the `test` extra).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import hypothesis.extra.numpy as hnp
import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st

from ..core.errors import ArgumentError
from ..core.tensor import Tensor

Shape = tuple[int, ...]
Domain = tuple[float, float]
SearchStrategy = st.SearchStrategy

__all__ = ["DEFAULT_DOMAIN", "Domain", "SearchStrategy", "Shape", "arrays", "broadcastable_shapes", "shapes", "tensors"]

DEFAULT_DOMAIN: Domain = (-3.0, 3.0)


# ---------------------------------------------------------------- shapes


def shapes(
    min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 3, max_size: int | None = 12
) -> SearchStrategy[Shape]:
    """Array shapes with `min_dims..max_dims` axes of `min_side..max_side` each, and at most `max_size` elements.

    The size cap keeps gradient checks cheap (the full Jacobian of an n-element
    input costs 2n evaluations); it shrinks later axes rather than rejecting draws.

    >>> import math
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
    >>> import math
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
