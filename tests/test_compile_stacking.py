"""test_compile_stacking.py — the stacked_products pass: a weight's gradient terms as one product, eager's bits."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn.compile import passes
from tinygrad_rnn.compile.passes import dead_code, stacked_products

FEW = settings(max_examples=max(3, settings().max_examples // 4))  # each example records and replays


@contextmanager
def passes_without(*names: str) -> Iterator[None]:
    """Record with every pass but the named ones (batched_matmuls changes rounding)."""
    package = sys.modules["tinygrad_rnn.compile"]  # the package; tg.compile, the function, shadows its name
    package.PASSES = tuple(p for p in passes.PASSES if p.__name__ not in names)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        package.PASSES = passes.PASSES  # type: ignore[attr-defined]


def composed_cell(sizes: tuple[int, int, int, int], dtype: Any, seed: int) -> tuple[Any, list[tg.Tensor]]:
    """`h = (x_t @ W_hx + h @ W_hh + b).tanh()` with a readout `h @ W_oh` and a squared error per step,
    written with raw Tensor ops: W_hx, W_hh and W_oh are each used by one matmul per step."""
    _, _, inputs, hidden = sizes
    rng = np.random.default_rng(seed)
    shapes = [(inputs, hidden), (hidden, hidden), (hidden,), (hidden, 1)]
    params = [tg.Tensor(0.5 * rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]
    w_hx, w_hh, b, w_oh = params

    def step(x: np.ndarray, y: np.ndarray) -> tg.Tensor:
        h = tg.zeros(x.shape[1], hidden, dtype=x.dtype)
        loss: Any = 0.0
        for x_t, y_t in zip(tg.Tensor(x).unbind(0), tg.Tensor(y).unbind(0), strict=True):
            h = (x_t @ w_hx + h @ w_hh + b).tanh()
            loss = loss + ((h @ w_oh - y_t) ** 2).sum()
        loss.backward()
        return loss.detach()

    return step, params


def _twins(
    sizes: tuple[int, int, int, int], dtype: Any, seed: int
) -> tuple[Any, list[tg.Tensor], Any, list[tg.Tensor]]:
    step, params = composed_cell(sizes, dtype, seed)
    twin, twin_params = composed_cell(sizes, dtype, seed)
    return tg.compile(step), params, twin, twin_params


def _same_bits(params: list[tg.Tensor], twin_params: list[tg.Tensor]) -> None:
    for p, q in zip(params, twin_params, strict=True):
        assert p.grad is not None and q.grad is not None
        assert p.grad.dtype == q.grad.dtype
        assert p.grad.numpy().tobytes() == q.grad.numpy().tobytes(), p.shape


@FEW
@given(
    batch=st.integers(1, 3),
    steps=st.integers(2, 5),
    hidden=st.integers(1, 4),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_stacked_products_pass_is_one_instruction_per_weight_with_eager_bits(
    batch: int, steps: int, hidden: int, dtype: Any, seed: int
) -> None:
    sizes = (batch, steps, 2, hidden)
    compiled, params, eager, twin_params = _twins(sizes, dtype, seed)
    rng = np.random.default_rng(seed)
    for _ in range(3):  # records, then replays twice; .grad accumulates over the three calls
        x = rng.standard_normal((steps, batch, 2)).astype(dtype)
        y = rng.standard_normal((steps, batch, 1)).astype(dtype)
        with passes_without("batched_matmuls"):
            assert compiled(x, y).numpy().tobytes() == eager(x, y).numpy().tobytes()
    _same_bits(params, twin_params)
    assert compiled.recorded is not None
    before, after = dead_code(compiled.recorded), stacked_products(dead_code(compiled.recorded))
    stacked = [ins for ins in after.instructions if ins.label == "stacked_products"]
    # W_hx, W_hh and W_oh: one instruction each, reading the T terms (W_hh's first step multiplies the
    # constant zero state, still a term) in the order the walk added them, last step first
    assert [len(ins.ins) for ins in stacked] == [steps, steps, steps]
    assert sum(ins.label == "asarray" for ins in before.instructions) - 3 == sum(
        ins.label == "asarray" for ins in after.instructions
    )
    removed = len(before.instructions) - len(after.instructions)
    assert removed == 3 * (steps - 1)  # the T - 1 adds of each weight; its asarray becomes stacked_products
    assert "stacked_products(" in compiled.program


def test_stacked_products_pass_multiplies_out_past_the_row_limit_as_eager_does() -> None:
    """Eight steps of 700 rows: ProductSum multiplies out its pending terms whenever more than
    ROWS_PER_FLUSH (2048) rows are stacked (after 3 terms here), and adds the partial products in turn;
    the pass must group them the same way, or float32 rounding tells."""
    compiled, params, eager, twin_params = _twins((700, 8, 3, 5), np.float32, seed=7)
    rng = np.random.default_rng(7)
    for _ in range(2):
        x = rng.standard_normal((8, 700, 3)).astype(np.float32)
        y = rng.standard_normal((8, 700, 1)).astype(np.float32)
        with passes_without("batched_matmuls"):
            compiled(x, y)
        eager(x, y)
    _same_bits(params, twin_params)
    assert compiled.program.count("= stacked_products(") == 3


@FEW
@given(seed=st.integers(0, 2**16), elementwise_first=st.booleans())
def test_stacked_products_pass_leaves_a_sum_with_a_dense_term_as_recorded(seed: int, elementwise_first: bool) -> None:
    """A weight used by two matmuls and once elementwise: its sum has a dense term (mul's gradient), which
    ProductSum adds into its dense part at its place in the order. The pass folds only chains of products."""
    rng = np.random.default_rng(seed)
    start = rng.standard_normal((3, 2))
    w, twin = tg.Tensor(start, requires_grad=True), tg.Tensor(start.copy(), requires_grad=True)

    def make(w: tg.Tensor) -> Any:
        def step(x: np.ndarray) -> None:
            a, b = tg.Tensor(x).unbind(0)
            scaled = (w * w.sum()).sum()  # w's dense term: added first or last
            terms = [scaled, (a @ w).tanh().sum(), (b @ w).tanh().sum()]
            loss = terms[0] + terms[1] + terms[2] if elementwise_first else terms[2] + terms[1] + terms[0]
            loss.backward()

        return step

    compiled, eager = tg.compile(make(w)), make(twin)
    for _ in range(3):
        x = rng.standard_normal((2, 4, 3))
        with passes_without("batched_matmuls"):  # which would batch a @ w and b @ w, to float rounding
            compiled(x)
        eager(x)
    assert w.grad is not None and twin.grad is not None
    assert w.grad.numpy().tobytes() == twin.grad.numpy().tobytes()
    assert compiled.recorded is not None
    listing = compiled.recorded.listing()
    assert listing.count("= matmul.vjp(") == 2 and "= asarray(" in listing
    assert "stacked_products(" not in compiled.program
