"""Backpropagation through time, checked: the tape's gradients of RNN, LSTM and GRU against finite differences.

Every gradient here is compared with a float64 central difference,
(L(θ + εe_i) - L(θ - εe_i)) / 2ε, for every element of every parameter, of
the input and of the initial state. The loss is a random projection of all
outputs, L = Σ R ⊙ output + Σ S ⊙ h_n (+ Σ U ⊙ c_n), so that every output
element reaches the loss with its own weight. Also here: parameter sharing
(dL/dW_hh is the sum of per-step contributions), the engine's time-step
labels, and truncated BPTT (its semantics, and memory that depends on k, not T).
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn.checks.gradcheck import gradcheck
from tinygrad_rnn.core import engine
from tinygrad_rnn.core.tensor import Tensor
from tinygrad_rnn.nn.cells import RNNCellBase
from tinygrad_rnn.nn.kinds import CELL_KINDS
from tinygrad_rnn.nn.module import Module
from tinygrad_rnn.nn.recurrent import GRU, LSTM, RNN, RNNBase, tbptt_chunks

KINDS = list(CELL_KINDS)  # every registered cell kind
ROUNDING = float(np.finfo(np.float64).eps)


def examples(n: int) -> int:
    """n Hypothesis examples under the `ci` profile (30 by default), scaled for `dev` and `thorough`."""
    return max(1, n * settings().max_examples // 30)


def grad_of(t: Tensor) -> np.ndarray | None:
    g: Any = t.grad
    return None if g is None else np.asarray(g.data if isinstance(g, Tensor) else g)


def central_difference_check(
    loss_fn: Callable[[], Tensor],
    tensors: dict[str, Tensor],
    magnitude: Callable[[], float] | None = None,
    eps: float = 1e-6,
    rtol: float = 1e-6,
) -> None:
    """Compare d loss_fn() / d t from backward() with central differences, for every element of every t.

    `loss_fn` reads the tensors' current `.data`, so a perturbed copy is
    rebound to `.data` for each evaluation (nothing is mutated in place).

    Tolerance. (L(θ+ε) - L(θ-ε)) / 2ε carries the rounding error of the two
    evaluations divided by ε. L is a sum of many terms, so its rounding error
    is a few ulps of the sum of their absolute values, `magnitude()` (|L| if
    not given), not of L itself: atol = 64 u magnitude / ε, u the float64
    unit roundoff (64 covers the error of the terms themselves, each made by a
    few dozen roundings). With losses of order 1 that is about 1e-8, far
    below any real gradient error, while a wrong gradient is off by O(1).
    """
    for t in tensors.values():
        t.grad = None
    loss = loss_fn()
    scale = max(abs(loss.item()), magnitude() if magnitude is not None else 0.0, 1.0)
    atol = 64 * ROUNDING * scale / eps
    loss.backward()
    for name, t in tensors.items():
        g = grad_of(t)
        analytic = np.zeros(t.shape) if g is None else g
        base = t.data
        numeric = np.zeros(t.shape)
        with tg.no_grad():
            for index in np.ndindex(*t.shape):
                values = []
                for step in (eps, -eps):
                    moved = base.copy()
                    moved[index] += step
                    t.data = moved
                    values.append(loss_fn().item())
                numeric[index] = (values[0] - values[1]) / (2 * eps)
        t.data = base
        np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol, err_msg=f"dL/d{name}")


@st.composite
def recurrent_cases(draw: st.DrawFn, max_steps: int = 8) -> dict[str, Any]:
    """A small layer configuration, a padded batch and optionally lengths and an initial state."""
    steps = draw(st.integers(1, max_steps), label="T")
    batch = draw(st.integers(1, 3), label="B")
    use_lengths = draw(st.booleans(), label="use_lengths")
    lengths = (
        draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch), label="lengths") if use_lengths else None
    )
    return {
        "steps": steps,
        "batch": batch,
        "input_size": draw(st.integers(1, 3), label="D"),
        "hidden_size": draw(st.integers(1, 3), label="H"),
        "num_layers": draw(st.integers(1, 2), label="num_layers"),
        "bias": draw(st.booleans(), label="bias"),
        "with_h0": draw(st.booleans(), label="with_h0"),
        "lengths": lengths,
        "seed": draw(st.integers(0, 2**32 - 1), label="seed"),
    }


def build(
    kind: str, case: dict[str, Any]
) -> tuple[Module, dict[str, Tensor], Callable[[], Tensor], Callable[[], float]]:
    """The layer, every tensor to differentiate (parameters, x, initial states), the projected loss,
    and the sum of the absolute values of its terms (for the finite differences' rounding error)."""
    rng = np.random.default_rng(case["seed"])
    steps, batch, size = case["steps"], case["batch"], case["hidden_size"]
    layers = case["num_layers"]
    count = len(CELL_KINDS[kind].state_names)
    layer = RNNBase(kind, case["input_size"], size, num_layers=layers, bias=case["bias"], rng=rng)
    x = Tensor(rng.standard_normal((steps, batch, case["input_size"])), requires_grad=True)
    tensors: dict[str, Tensor] = dict(layer.named_parameters())
    tensors["x"] = x
    states = [Tensor(0.5 * rng.standard_normal((layers, batch, size)), requires_grad=True) for _ in range(count)]
    hx: Any = None
    if case["with_h0"]:
        tensors.update({f"{name}0": s for name, s in zip(CELL_KINDS[kind].state_names, states, strict=True)})
        hx = tuple(states) if count > 1 else states[0]
    r_out = rng.standard_normal((steps, batch, size))
    r_finals = [rng.standard_normal((layers, batch, size)) for _ in range(count)]

    def terms() -> list[Tensor]:
        output, final = layer(x, hx, lengths=case["lengths"])
        finals = list(final) if count > 1 else [final]
        return [output * r_out] + [f * r for f, r in zip(finals, r_finals, strict=True)]

    def loss() -> Tensor:
        total: Any = 0.0
        for term in terms():
            total = term.sum() + total
        return total

    def magnitude() -> float:
        with tg.no_grad():
            return float(sum(np.abs(term.numpy()).sum() for term in terms()))

    return layer, tensors, loss, magnitude


# ---------------------------------------------------------------- gradients against finite differences


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=examples(12))
@given(case=recurrent_cases())
def test_bptt_gradients_match_central_differences(kind: str, case: dict[str, Any]) -> None:
    """Every parameter of every layer, the input and the initial state, with and without lengths."""
    _, tensors, loss, magnitude = build(kind, case)
    central_difference_check(loss, tensors, magnitude)


def test_library_gradcheck_agrees_on_the_full_jacobian_of_output_and_state() -> None:
    """tg.gradcheck (full Jacobian, vector outputs) on an LSTM with lengths, as a second, independent checker."""
    rng = np.random.default_rng(3)
    layer = LSTM(2, 3, num_layers=2, rng=rng)
    x = Tensor(rng.standard_normal((4, 2, 2)), requires_grad=True)
    h0 = Tensor(rng.standard_normal((2, 2, 3)), requires_grad=True)
    c0 = Tensor(rng.standard_normal((2, 2, 3)), requires_grad=True)

    def fn(x: Tensor, h0: Tensor, c0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        output, (h_n, c_n) = layer(x, (h0, c0), lengths=[4, 2])
        return output, h_n, c_n

    assert gradcheck(fn, (x, h0, c0), atol=1e-8, rtol=1e-6)


def test_the_check_fails_for_a_wrong_gradient() -> None:
    """The helper can fail: with a gradient hook that doubles dL/dW_hh, it must complain."""
    rng = np.random.default_rng(0)
    layer = RNN(2, 2, rng=rng)
    layer.weight_hh_l0.register_hook(lambda g: g * 2.0)
    x = Tensor(rng.standard_normal((3, 1, 2)))
    with pytest.raises(AssertionError, match="dL/dweight_hh_l0"):
        central_difference_check(lambda: layer(x)[0].sum(), dict(layer.named_parameters()))


def test_the_tolerance_scales_with_the_loss_but_still_sees_a_small_error() -> None:
    """A loss of order 1e4 (tolerance ~1e-4 from rounding alone) still flags a gradient off by 1%."""
    rng = np.random.default_rng(1)
    layer = GRU(2, 3, rng=rng)
    x = Tensor(rng.standard_normal((4, 2, 2)))
    layer.bias_hh_l0.register_hook(lambda g: g * 1.01)
    with pytest.raises(AssertionError, match="dL/dbias_hh_l0"):
        central_difference_check(lambda: 1e4 * layer(x)[0].sum(), {"bias_hh_l0": layer.bias_hh_l0})


# ---------------------------------------------------------------- parameter sharing


def _copy_cell(kind: str, layer: Any) -> Any:
    cell = RNNCellBase(kind, layer.input_size, layer.hidden_size, rng=0)
    cell.load_state_dict(
        {name: value for name, value in zip(cell.state_dict(), layer.state_dict().values(), strict=True)}
    )
    return cell


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=examples(10))
@given(steps=st.integers(1, 6), batch=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
def test_dW_hh_is_the_sum_of_per_step_contributions(kind: str, steps: int, batch: int, seed: int) -> None:
    """Unroll the same recurrence with one cell *per step*, each holding its own copy of the weights.

    Each copy's gradient is that step's contribution alone; the layer, which
    uses one W_hh at every step, must get exactly their sum (and the same outputs).
    """
    rng = np.random.default_rng(seed)
    layer = RNNBase(kind, 2, 3, rng=rng)
    x = rng.standard_normal((steps, batch, 2))
    r = rng.standard_normal((steps, batch, 3))
    output, _ = layer(x)
    (output * r).sum().backward()

    cells = [_copy_cell(kind, layer) for _ in range(steps)]
    state: Any = None
    outputs = []
    for t, cell in enumerate(cells):
        state = cell(x[t], state)
        outputs.append(state[0] if isinstance(state, tuple) else state)
    (tg.stack(outputs) * r).sum().backward()

    np.testing.assert_allclose(tg.stack(outputs).numpy(), output.numpy(), rtol=1e-13, atol=1e-14)
    per_step = np.stack([grad_of(cell.weight_hh) for cell in cells])
    np.testing.assert_allclose(per_step.sum(axis=0), grad_of(layer.weight_hh_l0), rtol=1e-12, atol=1e-14)
    # The contributions really are different terms, not one term counted T times (a relu layer can be
    # dead at every step, with every term 0: then there is nothing to tell apart).
    if steps > 1 and per_step.any():
        assert not all(np.allclose(term, per_step[0]) for term in per_step[1:])


def test_per_step_contribution_is_pre_activation_grad_times_previous_state() -> None:
    """dL/dW_hh = Σ_t (dL/da_t)^T h_{t-1}, read off an unrolled tape with retain_grad on each a_t."""
    rng = np.random.default_rng(1)
    w_ih = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    w_hh = Tensor(rng.standard_normal((3, 3)), requires_grad=True)
    x = rng.standard_normal((4, 2, 2))
    h = Tensor(np.zeros((2, 3)))
    pre, prev = [], []
    for t in range(4):
        a = x[t] @ w_ih.T + h @ w_hh.T
        a.retain_grad()
        pre.append(a)
        prev.append(h)
        h = a.tanh()
    (h * h).sum().backward()
    contributions = sum(a.grad.T @ p.numpy() for a, p in zip(pre, prev, strict=True))
    np.testing.assert_allclose(w_hh.grad, contributions, rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------- time-step labels on the tape


def test_every_step_is_recorded_in_a_scope_naming_layer_and_step() -> None:
    nodes: dict[int, dict[str, Any]] = {}
    layer = GRU(2, 3, num_layers=2, rng=0)
    x = Tensor(np.ones((4, 1, 2)))
    with engine._observing(forward=lambda node, out: nodes.setdefault(id(node), dict(node.tags))):
        layer(x)
    tags = list(nodes.values())
    stepped = {(t["module"], t["step"]) for t in tags if "step" in t}
    assert stepped == {(f"gru.l{k}", t) for k in range(2) for t in range(4)}
    # Outside the steps, per layer: two transposes, the hoisted projection (matmul, bias add),
    # its unbind and the stack of the layer's outputs; then the stack of the final states.
    assert sum("step" not in t for t in tags) <= 6 * 2 + 1


# ---------------------------------------------------------------- truncated BPTT


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=examples(10))
@given(steps=st.integers(1, 12), k=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_tbptt_carries_values_and_cuts_gradients(kind: str, steps: int, k: int, seed: int) -> None:
    """Chunk outputs equal the full pass; the gradient of each chunk is that chunk's own, from a constant start."""
    rng = np.random.default_rng(seed)
    layer = RNNBase(kind, 2, 3, rng=rng)
    x = rng.standard_normal((steps, 2, 2))
    r = rng.standard_normal((steps, 2, 3))
    full, _ = layer(x)
    chunks = list(tbptt_chunks(layer, x, k))
    assert [(c.start, c.stop) for c in chunks] == [(s, min(s + k, steps)) for s in range(0, steps, k)]
    np.testing.assert_allclose(np.concatenate([c.output.numpy() for c in chunks]), full.numpy(), rtol=1e-14)
    for c in chunks:
        (c.output * r[c.start : c.stop]).sum().backward()
    truncated = layer.weight_hh_l0.grad
    # The same gradient by definition: each chunk separately, started from the true state, held constant.
    layer.zero_grad()
    for c in chunks:
        start: Any = None
        if c.start > 0:
            prefix = layer(x[: c.start])[1]
            start = tuple(s.detach() for s in prefix) if isinstance(prefix, tuple) else prefix.detach()
        (layer(x[c.start : c.stop], start)[0] * r[c.start : c.stop]).sum().backward()
    np.testing.assert_allclose(truncated, layer.weight_hh_l0.grad, rtol=1e-12, atol=1e-14)


def test_tbptt_with_one_chunk_is_full_bptt_and_with_short_chunks_is_not() -> None:
    rng = np.random.default_rng(0)
    layer = RNN(2, 3, rng=rng)
    x, r = rng.standard_normal((6, 1, 2)), rng.standard_normal((6, 1, 3))

    def grad_with(k: int) -> np.ndarray:
        layer.zero_grad()
        for c in tbptt_chunks(layer, x, k):
            (c.output * r[c.start : c.stop]).sum().backward()
        return np.array(layer.weight_hh_l0.grad)

    layer.zero_grad()
    (layer(x)[0] * r).sum().backward()
    full = np.array(layer.weight_hh_l0.grad)
    np.testing.assert_allclose(grad_with(6), full, rtol=1e-14)
    assert not np.allclose(grad_with(2), full)


def test_tbptt_batch_first_and_bad_k() -> None:
    layer = GRU(2, 3, batch_first=True, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 7, 2))
    chunks = list(tbptt_chunks(layer, x, 3))
    assert [c.output.shape for c in chunks] == [(2, 3, 3), (2, 3, 3), (2, 1, 3)]
    np.testing.assert_allclose(np.concatenate([c.output.numpy() for c in chunks], axis=1), layer(x)[0].numpy())
    with pytest.raises(tg.ArgumentError, match="k must be at least 1"):
        next(tbptt_chunks(layer, x, 0))


def _peak_bytes(layer: RNN, x: np.ndarray, k: int | None) -> int:
    """Peak traced memory of one training pass: chunks of k steps (or full BPTT for None), backward each.

    The cycle collector is off while measuring, so the peak cannot depend on when
    it happens to run (and a graph that only a collection could free would show up).
    """
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        if k is None:
            layer(x)[0].sum().backward()
        else:
            for chunk in tbptt_chunks(layer, x, k):
                chunk.output.sum().backward()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        gc.enable()


def _slope(lengths: list[int], peaks: list[int]) -> float:
    """Bytes per step: the least-squares slope of peak memory against T."""
    return float(np.polyfit(np.array(lengths, dtype=float), np.array(peaks, dtype=float), 1)[0])


def test_tbptt_peak_memory_depends_on_k_not_on_T() -> None:
    """Peak memory against T, fitted over several T: full BPTT pays for every step it keeps alive;
    chunks of k = 50 pay for one chunk, so their peak barely moves as T grows 4-fold.

    Comparing slopes (and not two single peaks) keeps allocator noise of a few KB from deciding
    the outcome: a graph kept alive across chunks would make the chunked slope equal the full one.
    """
    layer = RNN(4, 8, rng=0)
    x = np.random.default_rng(0).standard_normal((2000, 1, 4))  # allocated before tracing
    _peak_bytes(layer, x[:100], 50)  # warm-up: first-call allocations (caches, imports) are not the point
    full_lengths, chunked_lengths = [100, 200, 300], [500, 1000, 2000]
    full = [_peak_bytes(layer, x[:steps], None) for steps in full_lengths]
    chunked = [_peak_bytes(layer, x[:steps], 50) for steps in chunked_lengths]
    per_step_full, per_step_chunked = _slope(full_lengths, full), _slope(chunked_lengths, chunked)
    one_chunk = _peak_bytes(layer, x[:50], None)  # the graph of 50 steps, what each chunk holds at most
    assert per_step_full > 1000, full  # each step kept alive costs kilobytes (h_t, its pre-activation, nodes)
    assert per_step_chunked < 0.05 * per_step_full, (per_step_chunked, per_step_full, chunked)
    assert max(chunked) < 2 * one_chunk, (chunked, one_chunk)  # 2000 chunked steps cost about one chunk
    assert full[-1] > 4 * one_chunk, (full, one_chunk)  # and 300 full steps cost much more
