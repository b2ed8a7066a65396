"""test_shapes.py — properties of the shape arithmetic in shapes.py, against numpy as the oracle.

The central one: broadcasting copies an input, so its gradient is the sum of
the copies' gradients. Summing over `unbroadcast_axes` must restore the
input's shape and keep the total, and each entry must collect exactly the
entries that were copies of it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_rnn.checks.testing import arrays, broadcastable_shapes, shapes
from tinygrad_rnn.core.errors import ShapeError
from tinygrad_rnn.core.shapes import broadcast_shape, normalize_axes, unbroadcast_axes


@st.composite
def broadcast_pair(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(shape, target): target is shape with new leading axes and some size-1 axes grown."""
    shape = draw(shapes(max_size=8), label="shape")
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2), label="lead"))
    grown = tuple(draw(st.integers(1, 3)) if n == 1 else n for n in shape)
    return shape, lead + grown


@given(broadcastable_shapes(3))
def test_broadcast_shape_agrees_with_numpy(in_shapes: tuple[tuple[int, ...], ...]) -> None:
    assert broadcast_shape("op", *in_shapes) == np.broadcast_shapes(*in_shapes)


@given(shapes(min_dims=1), st.data())
def test_broadcast_shape_names_the_op_and_shapes_when_sizes_clash(shape: tuple[int, ...], data: st.DataObject) -> None:
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    other = list(shape)
    other[axis] = shape[axis] + 1 if shape[axis] != 1 else 2
    if shape[axis] == 1:  # 1 broadcasts against anything; make the clash real
        shape = (*shape[:axis], 3, *shape[axis + 1 :])
    other_shape = tuple(other)
    with pytest.raises(ValueError):  # numpy agrees that they clash
        np.broadcast_shapes(shape, other_shape)
    with pytest.raises(ShapeError) as info:
        broadcast_shape("mul", shape, other_shape)
    message = str(info.value)
    assert message.startswith("mul:") and str(shape) in message and str(other_shape) in message


@given(broadcast_pair(), st.data())
def test_summing_over_unbroadcast_axes_restores_shape_and_total(
    pair: tuple[tuple[int, ...], tuple[int, ...]], data: st.DataObject
) -> None:
    shape, target = pair
    axes = unbroadcast_axes(target, shape)
    assert axes is not None
    grad = data.draw(arrays(target, domain=(-2, 2)), label="grad")
    reduced = grad.sum(axis=axes, keepdims=True).reshape(shape)
    assert reduced.shape == shape
    np.testing.assert_allclose(reduced.sum(), grad.sum(), rtol=1e-12, atol=1e-12)


@given(broadcast_pair(), st.data())
def test_unbroadcast_is_the_adjoint_of_broadcasting(
    pair: tuple[tuple[int, ...], tuple[int, ...]], data: st.DataObject
) -> None:
    # <broadcast(x), g> == <x, unbroadcast(g)> for all x, g: summation is the transpose of copying.
    shape, target = pair
    axes = unbroadcast_axes(target, shape)
    assert axes is not None
    x = data.draw(arrays(shape, domain=(-2, 2)), label="x")
    g = data.draw(arrays(target, domain=(-2, 2)), label="g")
    lhs = float(np.sum(np.broadcast_to(x, target) * g))
    rhs = float(np.sum(x * g.sum(axis=axes, keepdims=True).reshape(shape)))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


@given(broadcast_pair())
def test_each_entry_collects_as_many_copies_as_broadcasting_made(pair: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    shape, target = pair
    axes = unbroadcast_axes(target, shape)
    assert axes is not None
    counts = np.ones(target).sum(axis=axes, keepdims=True).reshape(shape)
    np.testing.assert_array_equal(counts, math.prod(target) // max(math.prod(shape), 1))


@given(shapes())
def test_unbroadcast_axes_of_equal_shapes_is_empty(shape: tuple[int, ...]) -> None:
    assert unbroadcast_axes(shape, shape) == ()


@given(shapes(min_dims=1), st.data())
def test_unbroadcast_axes_is_none_when_shape_cannot_come_from_broadcasting(
    shape: tuple[int, ...], data: st.DataObject
) -> None:
    axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
    bigger = (*shape[:axis], shape[axis] + 1, *shape[axis + 1 :])  # never a copy of size shape[axis] (> 1 or not)
    assert unbroadcast_axes(shape, bigger) is None
    assert unbroadcast_axes(shape[1:], (*shape, 2)) is None  # the input has more axes than the gradient


@given(shapes(), st.data())
def test_normalize_axes_agrees_with_numpy_reductions(shape: tuple[int, ...], data: st.DataObject) -> None:
    ndim = len(shape)
    choices: list[st.SearchStrategy[Any]] = [st.none(), st.just(())]
    if ndim:
        one = st.integers(-ndim, ndim - 1)
        choices += [one, st.lists(one, unique_by=lambda a: a % ndim).map(tuple)]
    axis = data.draw(st.one_of(choices), label="axis")
    axes = normalize_axes("sum", axis, ndim)
    assert list(axes) == sorted(set(axes)) and all(0 <= a < ndim for a in axes)
    x = np.arange(math.prod(shape), dtype=np.float64).reshape(shape)
    np.testing.assert_array_equal(np.sum(x, axis=axes), np.sum(x, axis=axis))


@given(shapes(), st.data())
def test_normalize_axes_rejects_out_of_range_and_repeated_axes(shape: tuple[int, ...], data: st.DataObject) -> None:
    ndim = len(shape)
    bad = data.draw(st.integers(ndim, ndim + 3) | st.integers(-ndim - 3, -ndim - 1), label="bad axis")
    with pytest.raises(ShapeError, match=rf"^max: axis {bad} is out of range for a tensor with {ndim} dimension"):
        normalize_axes("max", bad, ndim)
    if ndim:
        a = data.draw(st.integers(0, ndim - 1), label="axis")
        with pytest.raises(ShapeError, match=r"^max: repeated axis"):
            normalize_axes("max", (a, a - ndim), ndim)
