"""test_products.py — a weight's gradient kept as a sum of products (products.py) is the same gradient.

MatMul's VJP leaves dL/dW as factors in a plain backward pass, and the engine
adds the terms of a shared weight as one product. These tests compare that
against the same gradient computed without deferral (create_graph=True runs
the VJPs on Tensors, where nothing is deferred), against central differences,
and check the bookkeeping: flushing, mixing with ordinary gradients, dtype,
non-leaf weights, hooks and the arrays it must not write.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn.checks.gradcheck import gradcheck
from tinygrad_rnn.core import engine, products
from tinygrad_rnn.core.products import ProductSum
from tinygrad_rnn.nn.functional import linear

RNG = np.random.default_rng(0)


def _undeferred_grad(loss_fn: Callable[[], tg.Tensor], w: tg.Tensor) -> np.ndarray:
    """dL/dw with create_graph=True: the VJPs run on Tensors, so no ProductSum is made."""
    (g,) = tg.grad(loss_fn(), w, create_graph=True)
    assert g is not None
    return g.data


def _unrolled(w: tg.Tensor, steps: int, batch: int, transpose: bool) -> Callable[[], tg.Tensor]:
    """A tanh recurrence that uses w once per step, as nn.RNN uses weight_hh."""
    h0 = tg.Tensor(RNG.standard_normal((batch, w.shape[0])))

    def loss() -> tg.Tensor:
        h = h0
        for _ in range(steps):
            h = (linear(h, w) if transpose else h @ w).tanh()
        return (h * h).sum()

    return loss


@pytest.mark.parametrize("transpose", [True, False], ids=["x W^T", "x W"])
@pytest.mark.parametrize("flush_rows", [1, 7, products.ROWS_PER_FLUSH], ids=lambda n: f"flush>{n}")
def test_a_shared_weight_gets_the_undeferred_gradient(
    transpose: bool, flush_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(products, "ROWS_PER_FLUSH", flush_rows)
    w = tg.Tensor(0.4 * RNG.standard_normal((5, 5)), requires_grad=True)
    loss = _unrolled(w, steps=12, batch=3, transpose=transpose)
    loss().backward()
    np.testing.assert_allclose(w.grad, _undeferred_grad(loss, w), rtol=1e-12, atol=1e-14)


def test_a_shared_weight_passes_gradcheck() -> None:
    w = tg.Tensor(0.4 * RNG.standard_normal((4, 4)), requires_grad=True)
    h0 = tg.Tensor(RNG.standard_normal((2, 4)))

    def fn(weight: tg.Tensor) -> tg.Tensor:
        h = h0
        for _ in range(8):
            h = linear(h, weight).tanh()
        return h

    assert gradcheck(fn, [w])


@pytest.mark.parametrize("product_first", [True, False])
def test_products_and_ordinary_gradients_add_up_in_either_order(product_first: bool) -> None:
    # w gets matmul terms (deferred) and an elementwise term (an array), in both arrival orders.
    w = tg.Tensor(RNG.standard_normal((3, 3)), requires_grad=True)
    x = tg.Tensor(RNG.standard_normal((4, 3)))

    def loss() -> tg.Tensor:
        mm = (x @ w).sum() + (x @ w * 2.0).sum()
        ew = (w * w).sum()
        return mm + ew if product_first else ew + mm

    loss().backward()
    expected = 3.0 * x.data.sum(axis=0)[:, None] * np.ones((1, 3)) + 2.0 * w.data
    np.testing.assert_allclose(w.grad, expected, rtol=1e-12)


def test_an_array_added_to_a_product_sum_is_copied_not_written() -> None:
    left, right = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 4))
    other = RNG.standard_normal((3, 4))
    before = other.copy()
    total = ProductSum(left, right)
    total += other
    total += ProductSum(left, right)
    value = np.asarray(total)
    np.testing.assert_array_equal(other, before)
    assert not np.shares_memory(value, other)
    np.testing.assert_allclose(value, 2 * left.T @ right + other, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    rows=st.lists(st.integers(0, 4), min_size=1, max_size=6),
    k=st.integers(1, 3),
    p=st.integers(1, 3),
    flush=st.integers(1, 8),
)
def test_product_sum_equals_the_sum_of_its_terms(rows: list[int], k: int, p: int, flush: int) -> None:
    saved = products.ROWS_PER_FLUSH
    products.ROWS_PER_FLUSH = flush
    try:
        rng = np.random.default_rng(len(rows) * 100 + k * 10 + p)
        terms = [(rng.standard_normal((n, k)), rng.standard_normal((n, p))) for n in rows]
        total = ProductSum(*terms[0])
        for left, right in terms[1:]:
            total += ProductSum(left, right)
        assert total.shape == (k, p)
        np.testing.assert_allclose(np.asarray(total), sum(a.T @ b for a, b in terms), rtol=1e-12, atol=1e-12)
    finally:
        products.ROWS_PER_FLUSH = saved


def test_a_weight_of_another_dtype_gets_its_own_dtype() -> None:
    # float32 weight, float64 activations: the product is float64, the gradient float32 like the weight.
    w = tg.Tensor(RNG.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    x = tg.Tensor(RNG.standard_normal((5, 3)))
    (x @ w.astype(np.float64)).sum().backward()  # through a Cast node
    (x.astype(np.float32) @ w).sum().backward()  # straight into the weight
    assert w.grad.dtype == np.float32
    np.testing.assert_allclose(w.grad, 2 * x.data.sum(axis=0)[:, None] * np.ones((1, 2)), rtol=1e-5)


def test_a_non_leaf_weight_is_computed_when_its_node_needs_it() -> None:
    # W2 = 3 W is used by every step; its node's VJP needs dL/dW2 as an array.
    w = tg.Tensor(0.2 * RNG.standard_normal((4, 4)), requires_grad=True)
    h0 = tg.Tensor(RNG.standard_normal((2, 4)))

    def loss() -> tg.Tensor:
        w2 = w * 3.0
        h = h0
        for _ in range(6):
            h = linear(h, w2).tanh()
        return h.sum()

    loss().backward()
    np.testing.assert_allclose(w.grad, _undeferred_grad(loss, w), rtol=1e-12, atol=1e-14)


def test_hooks_observers_and_grad_see_the_summed_array() -> None:
    w = tg.Tensor(0.4 * RNG.standard_normal((3, 3)), requires_grad=True)
    loss = _unrolled(w, steps=5, batch=2, transpose=True)
    expected = _undeferred_grad(loss, w)
    seen: list[np.ndarray] = []
    handle = w.register_hook(lambda g: seen.append(g.data.copy()))
    kinds: set[type] = set()

    def observe(
        node: engine.Function, grad_outs: tuple[tg.Tensor, ...], grads_in: tuple[tg.Tensor | None, ...]
    ) -> None:
        kinds.update(type(g) for g in (*grad_outs, *grads_in) if g is not None)

    with engine.observe(backward=observe):
        loss().backward()
    handle.remove()
    np.testing.assert_allclose(seen[0], expected, rtol=1e-12, atol=1e-14)
    assert kinds == {tg.Tensor}
    (g,) = tg.grad(loss(), w)
    assert g is not None
    np.testing.assert_allclose(g.data, expected, rtol=1e-12, atol=1e-14)


def test_the_saved_activations_are_not_written() -> None:
    # The factors are the forward's arrays (h_t) and fresh gradients: the sum must not add into them.
    w = tg.Tensor(0.4 * RNG.standard_normal((3, 3)), requires_grad=True)
    hs = [tg.Tensor(RNG.standard_normal((2, 3))) for _ in range(4)]
    before = [h.data.copy() for h in hs]
    total = sum(((h @ w) ** 2).sum() for h in hs)
    assert isinstance(total, tg.Tensor)
    total.backward()
    for h, b in zip(hs, before, strict=True):
        np.testing.assert_array_equal(h.data, b)


def test_a_product_sum_is_a_value_plus_makes_new_and_plus_equals_adds_in_place() -> None:
    left, right = RNG.standard_normal((4, 3)), RNG.standard_normal((4, 2))
    dense = RNG.standard_normal((3, 2))
    a = ProductSum(left, right)
    first = np.asarray(a).copy()
    total = a + dense  # a new sum; a keeps its value, and the array is not written
    np.testing.assert_allclose(np.asarray(a), first, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(total), first + dense, rtol=1e-14)
    from_left = dense + ProductSum(left, right)  # ndarray + ProductSum stays deferred
    assert type(from_left) is ProductSum
    held = np.asarray(total)  # handed out: a later += must not write into it
    snapshot = held.copy()
    total += ProductSum(left, right)
    np.testing.assert_array_equal(held, snapshot)
    np.testing.assert_allclose(np.asarray(total), 2 * first + dense, rtol=1e-14)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["plus", "radd", "iadd", "look"]), st.booleans(), st.integers(0, 3)),
        min_size=1,
        max_size=8,
    ),
    flush=st.integers(1, 6),
)
def test_product_sums_behave_as_values_under_any_mix_of_operations(
    steps: list[tuple[str, bool, int]], flush: int
) -> None:
    # Against a dense mirror: `+` and `ndarray +` leave their operands alone, `+=` adds in place,
    # and an array handed out by np.asarray never changes afterwards.
    saved = products.ROWS_PER_FLUSH
    products.ROWS_PER_FLUSH = flush
    try:
        _mix_of_operations(steps)
    finally:
        products.ROWS_PER_FLUSH = saved


def _mix_of_operations(steps: list[tuple[str, bool, int]]) -> None:
    flush = products.ROWS_PER_FLUSH
    rng = np.random.default_rng(len(steps) * 10 + flush)
    left, right = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    total, mirror = ProductSum(left, right), left.T @ right
    handed_out: list[tuple[np.ndarray, np.ndarray]] = []
    for op, as_product, rows in steps:
        a, b = rng.standard_normal((rows, 3)), rng.standard_normal((rows, 4))
        term: object = ProductSum(a, b) if as_product else rng.standard_normal((3, 4))
        term_value = a.T @ b if as_product else np.array(term, copy=True)
        before = np.array(total, copy=True)
        if op == "plus":
            new = total + term
            np.testing.assert_allclose(np.asarray(total), before, rtol=1e-12, atol=1e-12)
            total = new
        elif op == "radd" and not as_product:
            assert isinstance(term, np.ndarray)
            total = term + total
            np.testing.assert_array_equal(term, term_value)  # the array operand is not written
        else:
            total += term
        mirror = mirror + term_value
        if op == "look":
            value = np.asarray(total)
            handed_out.append((value, value.copy()))
        assert type(total) is ProductSum
    np.testing.assert_allclose(np.asarray(total), mirror, rtol=1e-12, atol=1e-12)
    for value, copy in handed_out:
        np.testing.assert_array_equal(value, copy)
