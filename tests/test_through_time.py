"""test_through_time.py — tg.checkpoint, checkpointed BPTT and RTRL reproduce BPTT's gradient.

BPTT here is the layer's (or cell loop's) forward and the engine's backward.
Checkpointed BPTT recomputes the same arithmetic, and the backward pass walks
each recomputed piece as if it had been kept, adding into the same sums in the
same order: its outputs and gradients are BPTT's bits (`np.array_equal`). RTRL
is forward mode through time, a different order of the same chain rule, so it
agrees to rounding (1e-10 in float64).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn.core.engine import topological_order
from tinygrad_rnn.nn.through_time import checkpointed, rtrl

LAYERS = [tg.nn.RNN, tg.nn.LSTM, tg.nn.GRU]
CELLS = [tg.nn.RNNCell, tg.nn.LSTMCell, tg.nn.GRUCell]


def _gradients(layer: tg.nn.Module, x: tg.Tensor, run: Callable[[], Any]) -> tuple[np.ndarray, list[np.ndarray]]:
    output, _ = run()
    loss = (output * output).sum() + output.tanh().sum()
    return output.data, [g.data for g in tg.grad(loss, [*layer.parameters(), x])]


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    """A layer's sizes and options, a sequence length, and how many steps go in one checkpoint."""
    steps = draw(st.integers(1, 12), label="T")
    batch = draw(st.integers(1, 3), label="B")
    variable = batch > 1 and draw(st.booleans(), label="lengths")
    return {
        "steps": steps,
        "every": draw(st.integers(1, steps + 1), label="every"),
        "batch": batch,
        "inputs": draw(st.integers(1, 3), label="D"),
        "hidden": draw(st.integers(1, 4), label="H"),
        "num_layers": draw(st.integers(1, 2), label="num_layers"),
        "bidirectional": draw(st.booleans(), label="bidirectional"),
        "dtype": draw(st.sampled_from([np.float64, np.float32]), label="dtype"),
        "lengths": draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch)) if variable else None,
    }


def _all_gradients(layer: tg.nn.Module, x: tg.Tensor, lengths: Any, hx: Any) -> list[np.ndarray]:
    """The outputs, and the gradients of a loss of the output and the final state for x, the state and θ."""
    output, state = layer(x, hx, lengths)
    finals = state if isinstance(state, tuple) else (state,)
    loss = (output * output).sum() + output.tanh().sum() + sum(((f * 0.5).sigmoid() * f).sum() for f in finals)
    starts = [h for h in (hx if isinstance(hx, tuple) else (hx,))]
    grads = tg.grad(loss, [*layer.parameters(), x, *starts])
    return [output.data, *(f.data for f in finals), *(g.data for g in grads)]


@pytest.mark.parametrize("kind", LAYERS, ids=[k.__name__ for k in LAYERS])
@given(run=runs(), seed=st.integers(0, 2**16))
def test_checkpoint_every_reproduces_bptt_bit_for_bit(kind: type, run: dict[str, Any], seed: int) -> None:
    dtype, steps, batch = run["dtype"], run["steps"], run["batch"]
    layer = kind(
        run["inputs"], run["hidden"], num_layers=run["num_layers"], bidirectional=run["bidirectional"],
        dtype=dtype, rng=seed,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    x = tg.Tensor(rng.normal(size=(steps, batch, run["inputs"])).astype(dtype), requires_grad=True)
    rows = run["num_layers"] * (2 if run["bidirectional"] else 1)
    starts = [
        tg.Tensor(rng.normal(size=(rows, batch, run["hidden"])).astype(dtype), requires_grad=True)
        for _ in range(2 if kind is tg.nn.LSTM else 1)
    ]
    hx = tuple(starts) if kind is tg.nn.LSTM else starts[0]
    lengths = None if run["lengths"] is None else np.array(run["lengths"])
    full = _all_gradients(layer, x, lengths, hx)
    layer.checkpoint_every = run["every"]
    kept = _all_gradients(layer, x, lengths, hx)
    assert len(kept) == len(full)
    for a, b in zip(kept, full, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", LAYERS, ids=[k.__name__ for k in LAYERS])
def test_checkpoint_every_keeps_only_the_checkpoints(kind: type) -> None:
    layer = kind(2, 3, num_layers=2, rng=0, checkpoint_every=3)
    assert repr(layer).endswith("num_layers=2, checkpoint_every=3)")
    x = tg.Tensor(np.ones((7, 1, 2)), requires_grad=True)
    output, _ = layer(x)
    names = [t.grad_fn.name for t in topological_order([output])]
    assert names.count("checkpoint") == 2 * 3  # ceil(7 / 3) pieces in each layer
    assert "matmul" in names and not {"tanh", "sigmoid"} & set(names)  # only the hoisted projections are kept
    output.sum().backward()
    assert all(p.grad is not None for p in layer.parameters())


@pytest.mark.parametrize("kind", LAYERS, ids=[k.__name__ for k in LAYERS])
@pytest.mark.parametrize("every", [0, -2, 1.5, True, "3"])
def test_checkpoint_every_must_be_a_positive_number_of_steps(kind: type, every: Any) -> None:
    with pytest.raises(tg.ArgumentError, match=rf"^{kind.__name__}: checkpoint_every must be a positive number"):
        kind(2, 3, checkpoint_every=every)


@pytest.mark.parametrize("kind", LAYERS, ids=[k.__name__ for k in LAYERS])
@given(steps=st.integers(1, 10), every=st.integers(1, 11), seed=st.integers(0, 2**16))
def test_checkpointed_uses_the_layers_own_loop(kind: type, steps: int, every: int, seed: int) -> None:
    layer = kind(2, 3, num_layers=2, rng=seed)
    x = tg.Tensor(np.random.default_rng(seed).normal(size=(steps, 2, 2)), requires_grad=True)
    full_out, full = _gradients(layer, x, lambda: layer(x))
    ck_out, ck = _gradients(layer, x, lambda: checkpointed(layer, x, every=every))
    assert layer.checkpoint_every is None  # set for the call only
    np.testing.assert_array_equal(ck_out, full_out)
    for a, b in zip(ck, full, strict=True):
        np.testing.assert_array_equal(a, b)


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
    params = list(layer.parameters())
    kept = tg.grad(loss, params)
    for a, b in zip(kept, tg.grad(expected, params), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-13)  # each piece projects its own input
    # BPTT over the same pieces, with the same losses, is the same arithmetic: the same bits
    outputs, state = [], None
    for start in range(0, 7, 3):
        output, state = layer(x[start : start + 3], state)
        outputs.append(loss_fn(start, output))
    same = outputs[0] + outputs[1] + outputs[2]
    np.testing.assert_array_equal(loss.data, same.data)
    for a, b in zip(kept, tg.grad(same, params), strict=True):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("kind", LAYERS, ids=[k.__name__ for k in LAYERS])
def test_backward_fills_grad_through_checkpoints(kind: type) -> None:
    layer = kind(2, 3, num_layers=2, rng=0)
    x = np.random.default_rng(0).normal(size=(5, 2, 2))
    output, _ = layer(x)
    expected = tg.grad((output**2).sum(), list(layer.parameters()))
    output, _ = checkpointed(layer, x, every=2)
    (output**2).sum().backward()
    for p, e in zip(layer.parameters(), expected, strict=True):
        assert p.grad is not None
        np.testing.assert_array_equal(p.grad.data, e.data)


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


def test_checkpoint_that_computes_something_else_when_recomputed_is_an_error() -> None:
    w = tg.Tensor([2.0, 3.0], requires_grad=True)
    calls = []

    def changes(t: tg.Tensor) -> tg.Tensor:
        calls.append(None)
        return t * w if len(calls) == 1 else (t * w).sum()

    y = tg.checkpoint(changes, tg.Tensor([1.0, 1.0]))
    with pytest.raises(tg.GradientError, match=r"checkpoint: recomputed in backward.*\(\)"):
        y.sum().backward()


def test_checkpoint_reaches_a_tensor_made_before_it_through_the_node_that_made_it() -> None:
    w = tg.Tensor([2.0, 3.0], requires_grad=True)
    v = tg.Tensor([0.5, -1.0], requires_grad=True)
    scaled = v * 3.0  # not a leaf: fn reads it without receiving it, and its gradient must reach v

    def fn(t: tg.Tensor) -> tg.Tensor:
        return (t * w * scaled).tanh()

    x = tg.Tensor([1.0, -2.0], requires_grad=True)
    plain = tg.grad(fn(x).sum(), [x, w, v], retain_graph=True)  # keeps `scaled`'s node for the second
    kept = tg.grad(tg.checkpoint(fn, x).sum(), [x, w, v])
    for a, b in zip(kept, plain, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
