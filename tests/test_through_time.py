"""test_through_time.py — tg.checkpoint, checkpointed BPTT and RTRL reproduce BPTT's gradient.

BPTT here is the layer's (or cell loop's) forward and the engine's backward.
Checkpointed BPTT recomputes the same arithmetic, so its outputs are the same
bits; its gradients are too when the sequence is one piece, and otherwise
differ only in the order in which the pieces' shares of a weight's sum over
steps are added (a few ulp). RTRL is forward mode through time, a different
order of the same chain rule, so it agrees to rounding (1e-10 in float64).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn.nn.through_time import checkpointed, rtrl

LAYERS = [tg.nn.RNN, tg.nn.LSTM, tg.nn.GRU]
CELLS = [tg.nn.RNNCell, tg.nn.LSTMCell, tg.nn.GRUCell]


def _gradients(layer: tg.nn.Module, x: tg.Tensor, run: Callable[[], Any]) -> tuple[np.ndarray, list[np.ndarray]]:
    output, _ = run()
    loss = (output * output).sum() + output.tanh().sum()
    return output.data, [g.data for g in tg.grad(loss, [*layer.parameters(), x])]


@st.composite
def sequences(draw: st.DrawFn) -> tuple[int, int, int, int, int, int]:
    steps = draw(st.integers(1, 12), label="T")
    every = draw(st.integers(1, steps + 1), label="every")
    return (
        steps,
        every,
        draw(st.integers(1, 3), label="B"),
        draw(st.integers(1, 3), label="D"),
        draw(st.integers(1, 4), label="H"),
        draw(st.integers(1, 2), label="num_layers"),
    )


def _pieces(layer: tg.nn.Module, x: tg.Tensor, every: int) -> tuple[tg.Tensor, Any]:
    """The layer run `every` steps at a time with nothing checkpointed: BPTT over the same pieces."""
    outputs, state = [], None
    for start in range(0, x.shape[0], every):
        output, state = layer(x[start : start + every], state)
        outputs.append(output)
    return tg.concatenate(outputs), state


@pytest.mark.parametrize("kind", LAYERS, ids=[k.__name__ for k in LAYERS])
@given(sizes=sequences(), seed=st.integers(0, 2**16))
def test_checkpointed_bptt_reproduces_bptt(kind: type, sizes: tuple[int, ...], seed: int) -> None:
    steps, every, batch, inputs, hidden, layers = sizes
    layer = kind(inputs, hidden, num_layers=layers, rng=seed)
    x = tg.Tensor(np.random.default_rng(seed).normal(size=(steps, batch, inputs)), requires_grad=True)
    full_out, full = _gradients(layer, x, lambda: layer(x))
    same_out, _ = _gradients(layer, x, lambda: _pieces(layer, x, every))
    ck_out, ck = _gradients(layer, x, lambda: checkpointed(layer, x, every=every))
    np.testing.assert_array_equal(ck_out, same_out)  # the recomputation is the same arithmetic
    np.testing.assert_allclose(ck_out, full_out, rtol=1e-14, atol=1e-15)  # a piece's projection is its own matmul
    for a, b in zip(ck, full, strict=True):
        if every >= steps:  # one piece: the same gradient computation as BPTT, bit for bit
            np.testing.assert_array_equal(a, b)
        else:  # several pieces: a weight's per-piece sums over steps are added in another order
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind", LAYERS, ids=[k.__name__ for k in LAYERS])
def test_checkpointed_bptt_keeps_the_final_state_and_batch_first(kind: type) -> None:
    layer = kind(2, 3, batch_first=True, rng=0)
    x = np.random.default_rng(1).normal(size=(2, 5, 2))
    expected_out, expected_state = layer(x)
    output, state = checkpointed(layer, x, every=2)
    np.testing.assert_array_equal(output.data, expected_out.data)
    for a, b in zip(tg.nn.through_time._flat(state), tg.nn.through_time._flat(expected_state), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_checkpoint_matches_the_plain_function_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    w = tg.Tensor(rng.normal(size=(3, 3)), requires_grad=True)  # closed over, not passed
    x = tg.Tensor(rng.normal(size=(2, 3)), requires_grad=True)

    def fn(t: tg.Tensor) -> tuple[tg.Tensor, tg.Tensor]:
        h = (t @ w).tanh()
        return h, (h @ w).sigmoid()

    plain = tg.grad(sum(o.sum() for o in fn(x)), [x, w])
    out = tg.checkpoint(fn, x)
    assert [o.grad_fn.name for o in out] == ["checkpoint", "checkpoint"]
    kept = tg.grad(sum(o.sum() for o in out), [x, w])
    for a, b in zip(kept, plain, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_checkpoint_supports_second_order_and_forward_mode() -> None:
    w = tg.Tensor([0.5, -1.0], requires_grad=True)

    def f(t: tg.Tensor) -> tg.Tensor:
        return tg.checkpoint(lambda s: (s * w).tanh().sum(), t)

    x = tg.Tensor([0.3, 0.7])
    expected = tg.func.hessian(lambda t: (t * w).tanh().sum())(x)
    np.testing.assert_allclose(tg.func.hessian(f)(x).data, expected.data, rtol=1e-12)  # forward over reverse
    np.testing.assert_allclose(tg.func.jacrev(tg.func.grad(f))(x).data, expected.data, rtol=1e-12)


def test_checkpoint_under_no_grad_records_nothing() -> None:
    w = tg.Tensor([2.0], requires_grad=True)
    with tg.no_grad():
        y = tg.checkpoint(lambda t: t * w, tg.Tensor([1.0]))
    assert y.grad_fn is None and not y.requires_grad


@pytest.mark.parametrize("kind", CELLS, ids=[k.__name__ for k in CELLS])
@given(
    steps=st.integers(1, 6),
    batch=st.integers(1, 2),
    inputs=st.integers(1, 3),
    hidden=st.integers(1, 3),
    with_state=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_rtrl_gradient_equals_bptt(
    kind: type, steps: int, batch: int, inputs: int, hidden: int, with_state: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    cell = kind(inputs, hidden, rng=seed)
    x = rng.normal(size=(steps, batch, inputs))
    target = rng.normal(size=(steps, batch, hidden))
    h0 = rng.normal(size=(batch, hidden))
    hx = None if not with_state else (h0, h0 * 0.5) if kind is tg.nn.LSTMCell else h0

    def loss_fn(t: int, h: tg.Tensor) -> tg.Tensor:
        return ((h - target[t]) ** 2).sum() * (1.0 + t)

    loss, grads = rtrl(cell, x, loss_fn, hx)
    state, total = hx, None
    for t in range(steps):  # BPTT: the same loss through the unrolled cell, and the engine's backward
        state = cell(x[t], state)
        step_loss = loss_fn(t, state[0] if isinstance(state, tuple) else state)
        total = step_loss if total is None else total + step_loss
    assert total is not None
    expected = tg.grad(total, list(cell.parameters()))
    np.testing.assert_allclose(loss.data, total.data, rtol=1e-12)
    for a, b in zip(grads, expected, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a.data, b.data, rtol=1e-10, atol=1e-10)


def test_rtrl_and_checkpointed_reject_bad_arguments() -> None:
    cell = tg.nn.RNNCell(2, 2, rng=0)
    with pytest.raises(tg.ShapeError, match=r"rtrl: input has shape \(2,\)"):
        rtrl(cell, np.ones(2), lambda t, h: h.sum())
    with pytest.raises(tg.ArgumentError, match="every must be at least 1"):
        checkpointed(tg.nn.RNN(2, 2, rng=0), np.ones((3, 2)), every=0)


@pytest.mark.parametrize("kind", LAYERS, ids=[k.__name__ for k in LAYERS])
def test_checkpointed_bptt_with_a_loss_per_piece(kind: type) -> None:
    layer = kind(2, 3, rng=0)
    rng = np.random.default_rng(0)
    x, target = rng.normal(size=(7, 2, 2)), rng.normal(size=(7, 2, 3))

    def loss_fn(start: int, output: tg.Tensor) -> tg.Tensor:
        return ((output - target[start : start + output.shape[0]]) ** 2).sum()

    loss, _ = checkpointed(layer, x, every=3, loss_fn=loss_fn)
    output, _ = layer(x)
    expected = loss_fn(0, output)
    np.testing.assert_allclose(loss.data, expected.data, rtol=1e-13)
    for a, b in zip(tg.grad(loss, list(layer.parameters())), tg.grad(expected, list(layer.parameters())), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind", LAYERS, ids=[k.__name__ for k in LAYERS])
def test_backward_fills_grad_through_checkpoints(kind: type) -> None:
    layer = kind(2, 3, num_layers=2, rng=0)
    x = np.random.default_rng(0).normal(size=(5, 2, 2))
    output, _ = layer(x)
    expected = tg.grad((output**2).sum(), list(layer.parameters()))
    output, _ = checkpointed(layer, x, every=2)
    (output**2).sum().backward()
    for p, e in zip(layer.parameters(), expected, strict=True):
        g = p.grad.data if isinstance(p.grad, tg.Tensor) else p.grad
        np.testing.assert_allclose(g, e.data, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind", LAYERS, ids=[k.__name__ for k in LAYERS])
def test_forward_and_reverse_jacobians_of_a_layer_agree(kind: type) -> None:
    layer = kind(2, 3, num_layers=2, rng=0)

    def final_state(x: tg.Tensor) -> tg.Tensor:
        _, state = layer(x)
        return state[0] if isinstance(state, tuple) else state

    x = tg.Tensor(np.random.default_rng(0).normal(size=(4, 1, 2)))
    forward, reverse = tg.func.jacfwd(final_state)(x), tg.func.jacrev(final_state)(x)
    assert forward.shape == (2, 1, 3, 4, 1, 2)
    np.testing.assert_allclose(forward.data, reverse.data, rtol=1e-12, atol=1e-14)
