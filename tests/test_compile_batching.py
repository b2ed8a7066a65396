"""test_compile_batching.py — the batched_matmuls pass: independent matmuls by one weight as one gemm.

A gemm over T*B rows may round differently from T gemms over B rows, so these compare with eager in
float64 to the tolerance docs/compile.md states (relative 1e-10), and check the listings exactly."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_compile_stacking import composed_cell, passes_without

import tinygrad_rnn as tg
from tinygrad_rnn.compile.passes import add_in_place, batched_matmuls, dead_code, stacked_products, unwrap_vjps
from tinygrad_rnn.nn import functional as F

FEW = settings(max_examples=max(3, settings().max_examples // 4))  # each example records and replays
TOLERANCE = {"rtol": 1e-10, "atol": 1e-12}  # float64; docs/compile.md, "Batching"


def _close(params: list[tg.Tensor], twin_params: list[tg.Tensor]) -> None:
    for p, q in zip(params, twin_params, strict=True):
        assert p.grad is not None and q.grad is not None and p.grad.dtype == q.grad.dtype
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), **TOLERANCE)


@pytest.mark.parametrize("left_out", [(), ("stacked_products",)], ids=["all passes", "no stacked_products"])
@FEW
@given(batch=st.integers(1, 3), steps=st.integers(2, 5), hidden=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_batched_matmuls_pass_gathers_input_projection_and_readout(
    left_out: tuple[str, ...], batch: int, steps: int, hidden: int, seed: int
) -> None:
    """With stacked_products, dL/dW replaces the weight's stacked_products; without it, its chain of adds."""
    step, params = composed_cell((batch, steps, 2, hidden), np.float64, seed)
    eager, twin_params = composed_cell((batch, steps, 2, hidden), np.float64, seed)
    compiled = tg.compile(step)
    rng = np.random.default_rng(seed)
    for _ in range(3):  # records, then replays twice; .grad accumulates over the three calls
        x, y = rng.standard_normal((steps, batch, 2)), rng.standard_normal((steps, batch, 1))
        with passes_without(*left_out):
            got = compiled(x, y)
        np.testing.assert_allclose(got.numpy(), eager(x, y).numpy(), **TOLERANCE)
    _close(params, twin_params)
    program = compiled.program
    # x_t @ W_hx (the pieces of unbind(x): its source is read directly) and h_t @ W_oh are one gemm each,
    # forward and backward; the T matmuls h @ W_hh feed each other and stay, with their T VJPs.
    assert program.count("= batched_matmul(") == 2 and program.count("= batched_matmul.vjp(") == 2
    assert program.count("= matmul(") == steps and program.count("= matmul.vjp(") == steps
    assert program.count("= unbind(") == 0  # nothing reads x's pieces any more, nor the targets' (batched_sub)
    assert compiled.recorded is not None
    source = next(line for line in compiled.recorded.listing().splitlines() if "= tensor(%0)" in line)
    assert f"= batched_matmul({source.split(' = ')[0]}, " in program
    # W_hh's terms: one stacked_products, or (without that pass) its steps - 1 adds and an asarray; the
    # weights batched have neither (their asarray reads the batched dL/dW, an array: it stays, a no-op)
    stacked = program.count("= stacked_products(")
    assert (stacked, program.count("= add(") >= steps - 1) == ((1, True) if not left_out else (0, True))


def assert_same_bits(compiled: Any, eager: Any, inputs: tuple[np.ndarray, ...], grads: Any) -> None:
    """Each input gives the same bits compiled and eager; so do the .grads of `grads`, a (compiled's
    weight, eager's twin) pair, when given: a pass that must not batch left the program as eager runs it."""
    for x in inputs:
        assert compiled(x).numpy().tobytes() == eager(x).numpy().tobytes()
    if grads is not None:
        w, twin = grads
        assert w.grad is not None and twin.grad is not None
        assert w.grad.numpy().tobytes() == twin.grad.numpy().tobytes()


@pytest.mark.parametrize("train", [True, False])
def test_batched_matmuls_pass_leaves_a_recurrence_alone(train: bool) -> None:
    """h_{t+1} = tanh(h_t @ W): each left operand is computed from the previous output, so nothing batches,
    and the program keeps eager's bits (with a backward pass, and forward only)."""
    start = np.array([[0.5, -0.3], [0.2, 0.9]])
    w, twin = tg.Tensor(start, requires_grad=train), tg.Tensor(start.copy(), requires_grad=train)

    def make(w: tg.Tensor) -> Any:
        def step(h0: np.ndarray) -> tg.Tensor:
            h = tg.Tensor(h0)
            for _ in range(4):
                h = (h @ w).tanh()
            if train:
                h.sum().backward()
            return h.detach()

        return step

    compiled = tg.compile(make(w))
    inputs = (np.ones((3, 2)), np.full((3, 2), 0.5), np.eye(3, 2))
    assert_same_bits(compiled, make(twin), inputs, (w, twin) if train else None)
    assert "batched_matmul" not in compiled.program and compiled.program.count("= matmul(") == 4


@FEW
@given(steps=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_batched_matmuls_pass_gives_input_gradients_in_pieces(steps: int, seed: int) -> None:
    """Inputs that need a gradient: [dx_1; ...; dx_T] = [g_1; ...; g_T] W^T as one gemm, then unbind's VJP."""
    rng = np.random.default_rng(seed)
    start = rng.standard_normal((3, 2))
    w, twin = tg.Tensor(start, requires_grad=True), tg.Tensor(start.copy(), requires_grad=True)

    def make(w: tg.Tensor) -> Any:
        def step(x: tg.Tensor) -> None:
            sum((x_t @ w).tanh().sum() * (t + 1) for t, x_t in enumerate(x.unbind(0))).backward()

        return step

    compiled, eager = tg.compile(make(w)), make(twin)
    for _ in range(3):
        values = rng.standard_normal((steps, 2, 3))
        x, x_twin = tg.Tensor(values, requires_grad=True), tg.Tensor(values.copy(), requires_grad=True)
        compiled(x)
        eager(x_twin)
        assert x.grad is not None and x_twin.grad is not None
        np.testing.assert_allclose(x.grad.numpy(), x_twin.grad.numpy(), **TOLERANCE)
    assert w.grad is not None and twin.grad is not None
    np.testing.assert_allclose(w.grad.numpy(), twin.grad.numpy(), **TOLERANCE)
    assert compiled.recorded is not None
    before = unwrap_vjps(add_in_place(stacked_products(dead_code(compiled.recorded))))  # the passes before it
    after = batched_matmuls(before)
    assert before.listing().count("= matmul(") == steps and after.listing().count("= matmul(") == 0
    vjp = next(ins for ins in after.instructions if ins.label == "batched_matmul.vjp")
    assert len(vjp.outs) == steps + 1  # dx_1 ... dx_T and dL/dW


@pytest.mark.parametrize("per_step", [False, True], ids=["one bias", "a bias per step"])
@FEW
@given(steps=st.integers(2, 4), batch=st.integers(1, 3), seed=st.integers(0, 2**16), bias_rows=st.sampled_from([0, 1]))
def test_batched_matmuls_pass_gathers_linear_layers_with_a_bias(
    per_step: bool, steps: int, batch: int, seed: int, bias_rows: int
) -> None:
    """F.linear per step, x W^T + b (one matmul with transpose_y=True and b as addend): batched with b
    added to every row (or b_t, here b * (t + 1), to the rows of step t), and dL/db_t handed on as g_t,
    summed to b's shape as before. A bias of one row per sample (batch rows) would not broadcast over the
    stacked rows: that group is left alone."""
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal((2, 3)), rng.standard_normal((2,) if bias_rows == 0 else (batch, 2))]
    w, b = (tg.Tensor(v, requires_grad=True) for v in values)
    w2, b2 = (tg.Tensor(v.copy(), requires_grad=True) for v in values)

    def make(w: tg.Tensor, b: tg.Tensor) -> Any:
        def step(x: tg.Tensor) -> None:
            pieces = enumerate(x.unbind(0))
            sum(
                (F.linear(x_t, w, b * (t + 1) if per_step else b).tanh() * (t + 1)).sum() for t, x_t in pieces
            ).backward()

        return step

    compiled, eager = tg.compile(make(w, b)), make(w2, b2)
    for _ in range(3):
        data = rng.standard_normal((steps, batch, 3))
        x, x_twin = tg.Tensor(data, requires_grad=True), tg.Tensor(data.copy(), requires_grad=True)
        compiled(x)
        eager(x_twin)
        assert x.grad is not None and x_twin.grad is not None
        np.testing.assert_allclose(x.grad.numpy(), x_twin.grad.numpy(), **TOLERANCE)
    _close([w, b], [w2, b2])
    program = compiled.program
    batched = bias_rows == 0 or batch == 1  # a (1, 2) bias is one row too
    assert program.count("= batched_matmul(") == (1 if batched else 0)
    assert program.count("= matmul(") == (0 if batched else steps)
    if batched:
        assert "transpose_y=True" in next(line for line in program.splitlines() if "= batched_matmul(" in line)


@pytest.mark.parametrize("train", [True, False])
def test_batched_matmuls_pass_leaves_a_recurrence_through_the_bias_alone(train: bool) -> None:
    """y_t = x_t W^T + c_t with c_t = sum(tanh(y_{t-1})): the inputs x_t are independent, the addends are not."""
    start = np.array([[0.5, -0.3, 0.1], [0.2, 0.9, -0.4]])
    w, twin = tg.Tensor(start, requires_grad=train), tg.Tensor(start.copy(), requires_grad=train)

    def make(w: tg.Tensor) -> Any:
        def step(x: np.ndarray) -> tg.Tensor:
            c = tg.Tensor(np.zeros(2))
            for x_t in tg.Tensor(x).unbind(0):
                c = F.linear(x_t, w, c).tanh().sum(0)
            if train:
                c.sum().backward()
            return c.detach()

        return step

    compiled = tg.compile(make(w))
    inputs = tuple(np.full((4, 3, 3), value) for value in (1.0, 0.5, -0.25))
    assert_same_bits(compiled, make(twin), inputs, (w, twin) if train else None)
    assert "batched_matmul" not in compiled.program and compiled.program.count("= matmul(") == 4


# ---------------------------------------------------------------- batched_elementwise


def test_batched_elementwise_pass_runs_the_readout_error_once_per_call() -> None:
    """The composed cell's `+ b_o`, `- y_t` and `** 2` over T pieces become one instruction each, forward and
    VJP; the targets' unbind goes (its source is the stack); the recurrence's adds and tanh stay per step."""
    steps = 4
    step, params = composed_cell((2, steps, 2, 3), np.float64, 1)
    twin_step, twin_params = composed_cell((2, steps, 2, 3), np.float64, 1)
    compiled, without = tg.compile(step), tg.compile(twin_step)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((steps, 2, 2)), rng.standard_normal((steps, 2, 1))
    with passes_without("batched_elementwise"):
        expected = without(x, y)
    np.testing.assert_allclose(compiled(x, y).numpy(), expected.numpy(), **TOLERANCE)
    _close(params, twin_params)
    before, after = without.program, compiled.program
    for op in ("sub", "pow"):
        assert (before.count(f"= {op}("), before.count(f"= {op}.vjp(")) == (steps, steps)
        assert (after.count(f"= {op}("), after.count(f"= {op}.vjp(")) == (0, 0)
        assert (after.count(f"= batched_{op}("), after.count(f"= batched_{op}.vjp(")) == (1, 1)
    assert after.count("= tanh(") == steps and "batched_tanh" not in after
    assert before.count("= unbind(") == 1 and "unbind" not in after
    # b's gradient from its T (batch, hidden) terms: one sum_to each and their adds, all made in the
    # recurrence's add.vjp (its other input is not a piece): untouched
    assert before.count("= sum_to(") == after.count("= sum_to(") == steps
    # the VJPs run in reverse: sub's reads the stack pow's hands on, not its pieces
    pow_vjp = next(line for line in after.splitlines() if "= batched_pow.vjp(" in line)
    sub_vjp = next(line for line in after.splitlines() if "= batched_sub.vjp(" in line)
    assert sub_vjp.split("(")[1].split(")")[0].split(", ")[1] == pow_vjp.split(" = ")[0].split(", ")[-1]


ELEMENTWISE = {
    "neg": lambda x, w: -(x * w),  # a unary op after a batched mul: on the mul's stack
    "exp": lambda x, w: (x * w).exp(),
    "tanh": lambda x, w: (x * w).tanh(),
    "sigmoid": lambda x, w: (x * w).sigmoid(),
    "relu": lambda x, w: (x * w).relu(),
    "abs": lambda x, w: (x * w).abs(),
    "clip": lambda x, w: (x * w).clip(-0.5, 0.5),
    "add": lambda x, w: x + w,
    "sub": lambda x, w: w - x,
    "mul": lambda x, w: x * w,
    "div": lambda x, w: x / w,
    "pow": lambda x, w: (x * x + 0.5) ** w,
    "maximum": lambda x, w: x.maximum(w),
    "minimum": lambda x, w: x.minimum(w),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@FEW
@given(
    steps=st.integers(2, 4),
    piece=st.sampled_from([(), (1,), (3,), (2, 3), (1, 3)]),
    shared_rank=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_batched_elementwise_pass_keeps_values_and_gradients(
    name: str, steps: int, piece: tuple[int, ...], shared_rank: int, seed: int
) -> None:
    """Each elementwise op of the table over the pieces of an unbind, with a shared weight that broadcasts from
    the right (0-d pieces, size-1 axes): one batched instruction, forward and VJP, and eager's values and
    gradients (the weight's summed over the steps) to the batching tolerance."""
    rng = np.random.default_rng(seed)
    start = rng.standard_normal(piece[len(piece) - min(shared_rank, len(piece)) :])
    w, twin = tg.Tensor(start, requires_grad=True), tg.Tensor(start.copy(), requires_grad=True)
    op = ELEMENTWISE[name]

    def make(w: tg.Tensor) -> Any:
        def step(x: np.ndarray) -> tg.Tensor:
            loss = tg.stack([op(x_t, w).sum() for x_t in tg.Tensor(x).unbind(0)]).sum()  # no other elementwise op
            loss.backward()
            return loss.detach()

        return step

    compiled, eager = tg.compile(make(w)), make(twin)
    for _ in range(2):  # records, then replays
        x = rng.standard_normal((steps, *piece))
        np.testing.assert_allclose(compiled(x).numpy(), eager(x).numpy(), **TOLERANCE)
    assert w.grad is not None and twin.grad is not None
    np.testing.assert_allclose(w.grad.numpy(), twin.grad.numpy(), **TOLERANCE)
    program = compiled.program
    assert (program.count(f"= batched_{name}("), program.count(f"= batched_{name}.vjp(")) == (1, 1)
    assert f"= {name}(" not in program.split("-- backward --")[0] and f"= {name}.vjp(" not in program
    # w's T gradient terms: summed over the new axis by the batched VJP, not brought to w's shape and added
    backward = program.split("-- backward --")[1]
    assert not any(f"= {work}(" in backward for work in ("add", "add_", "sum_to", "reshape", "stacked_products"))


@pytest.mark.parametrize("train", [True, False])
def test_batched_elementwise_pass_leaves_a_new_axis_broadcast_alone(train: bool) -> None:
    """Pieces (3,) times a shared (2, 3): each product is (2, 3), but the stack (T, 3) would not broadcast
    against (2, 3) (T is not 2) or would wrongly (T = 2): nothing batches, and eager's bits stay."""
    start = np.arange(6.0).reshape(2, 3) / 7
    w, twin = tg.Tensor(start, requires_grad=train), tg.Tensor(start.copy(), requires_grad=train)

    def make(w: tg.Tensor) -> Any:
        def step(x: np.ndarray) -> tg.Tensor:
            loss: Any = 0.0
            for x_t in tg.Tensor(x).unbind(0):
                loss = loss + (x_t * w).sum()
            if train:
                loss.backward()
            return loss.detach()

        return step

    compiled = tg.compile(make(w))
    inputs = (np.ones((2, 3)), np.arange(6.0).reshape(2, 3))
    assert_same_bits(compiled, make(twin), inputs, (w, twin) if train else None)
    assert "batched_mul" not in compiled.program and compiled.program.count("= mul(") == 2


def test_batched_elementwise_pass_leaves_a_recurrence_alone() -> None:
    """h_t = tanh(x_t * h_{t-1}): each member reads what the one before computes, so none batches."""
    w, twin = tg.Tensor(np.full(3, 0.5), requires_grad=True), tg.Tensor(np.full(3, 0.5), requires_grad=True)

    def make(w: tg.Tensor) -> Any:
        def step(x: np.ndarray) -> tg.Tensor:
            h = w
            for x_t in tg.Tensor(x).unbind(0):
                h = (x_t * h).tanh()
            h.sum().backward()
            return h.detach()

        return step

    compiled = tg.compile(make(w))
    assert_same_bits(compiled, make(twin), (np.linspace(-1.0, 1.0, 12).reshape(4, 3),), (w, twin))
    assert "batched_" not in compiled.program and compiled.program.count("= tanh(") == 4
