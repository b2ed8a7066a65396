"""test_compile_limits.py — issue 10's list of cases where a replay could differ from eager, beyond
tests/test_compile.py: each is refused with a CompileError that names it, or replays to eager's bits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from test_compile_usage import Built, assert_refused, assert_trains_like_eager

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.compile import CompileError
from tinygrad_rnn.inspect import backward_trace, detect_anomaly


@pytest.mark.parametrize("tool", ["backward_trace", "detect_anomaly", "register_hook"])
def test_docs_study_tools_that_watch_the_backward_pass_are_refused(tool: str) -> None:
    """docs/gradients-through-time.md: backward_trace subscribes after the forward ran; hooks on a state."""
    rnn = nn.RNN(2, 3, rng=0)

    def step(x: np.ndarray) -> None:
        output, _ = rnn(x)
        if tool == "register_hook":
            output.register_hook(lambda g: g)
        loss = (output**2).sum()
        if tool in ("backward_trace", "detect_anomaly"):
            with backward_trace() if tool == "backward_trace" else detect_anomaly():
                loss.backward()
        else:
            loss.backward()

    assert_refused(step, (np.ones((4, 1, 2)),), tool if tool == "register_hook" else "observers")


@pytest.mark.parametrize("where", ["module", "argument"])
def test_dropout_with_its_own_generator_is_refused(where: str) -> None:
    """nn.Dropout(p, rng=...) draws from its own Generator: a replay would freeze the first call's mask."""
    drop = nn.Dropout(0.5, rng=0)
    w = tg.Tensor(np.ones(8), requires_grad=True)

    def step(x: np.ndarray, rng: Any = None) -> None:
        dropped = drop(tg.Tensor(x)) if rng is None else nn.functional.dropout(tg.Tensor(x), 0.5, rng=rng)
        (dropped * w).sum().backward()

    args = (np.ones(8),) if where == "module" else (np.ones(8), np.random.default_rng(0))
    assert_refused(step, args, "numpy Generator", "nn.Dropout")
    drop.eval()  # no draws in eval mode: compiles and replays
    w.grad = None
    compiled = tg.compile(step)
    for _ in range(3):
        compiled(np.ones(8))
    np.testing.assert_array_equal(w.grad.numpy(), np.full(8, 3.0))  # type: ignore[attr-defined]


@pytest.mark.parametrize("clip", ["clip_grad_norm_", "clip_grad_value_"])
def test_clipping_inside_the_step_is_refused(clip: str) -> None:
    """Clipping reads .grad and rebinds it after backward; a replay writes only what backward wrote."""
    rnn = nn.RNN(2, 3, rng=0)

    def step(x: np.ndarray) -> None:
        output, _ = rnn(x)
        (output**2).sum().backward()
        getattr(nn.utils, clip)(rnn.parameters(), 0.01)

    assert_refused(step, (np.ones((3, 1, 2)),), "reading .grad", "outside the compiled function")


@pytest.mark.parametrize("when", ["before backward", "after backward", "rebound after backward"])
def test_reading_or_changing_grad_inside_is_refused(when: str) -> None:
    """A .grad read inside fn would be frozen (or stale) on replay; one rebound would be lost."""
    w = tg.Tensor([1.0, 2.0], requires_grad=True)
    w.grad = tg.Tensor([0.5, 0.5])

    def step(x: np.ndarray) -> tg.Tensor | None:
        scale = w.grad if when == "before backward" else 1.0
        (tg.Tensor(x) * w * scale).sum().backward()
        if when == "rebound after backward":
            w.grad = None
            return None
        return w.grad if when == "after backward" else None

    assert_refused(step, (np.ones(2),), "changing .grad" if when.startswith("rebound") else "reading .grad")


@pytest.mark.parametrize("draw", ["np.random", "tg.randn", "dropout between layers"])
def test_every_global_random_draw_is_refused(draw: str) -> None:
    tg.manual_seed(0)
    gru = nn.GRU(2, 3, num_layers=2, dropout=0.5)

    def step(x: np.ndarray) -> None:
        noise = {
            "np.random": lambda: tg.Tensor(np.random.standard_normal(x.shape)),
            "tg.randn": lambda: tg.randn(*x.shape),
        }
        xt = tg.Tensor(x) + noise[draw]() if draw in noise else tg.Tensor(x)
        output, _ = gru(xt)
        (output**2).sum().backward()

    assert_refused(step, (np.ones((3, 1, 2)),), "random numbers")


def test_aliased_arguments_give_eagers_values_on_both_programs() -> None:
    """x passed twice is one slot of the recording: distinct arrays later must not replay it."""

    def build(wrap: Callable[..., Any]) -> Built:
        w = tg.Tensor(np.array([0.3, -0.7, 1.1]), requires_grad=True)

        def step(a: np.ndarray, b: np.ndarray) -> tg.Tensor:
            loss = (tg.Tensor(a) * w + tg.Tensor(b) * w * w).sum()
            loss.backward()
            return loss.detach()

        return [w], wrap(step), tg.optim.SGD([w], lr=0.1)

    x = [np.random.default_rng(s).standard_normal((4, 3)) for s in range(6)]
    assert_trains_like_eager(build, [(x[0], x[0]), (x[1], x[2]), (x[3], x[3]), (x[4], x[5])], programs=2)


def test_backward_twice_with_retain_graph_replays() -> None:
    """docs/autodiff.md: .grad accumulates over two backward passes through one graph."""

    def build(wrap: Callable[..., Any]) -> Built:
        rnn = nn.LSTM(2, 3, rng=0)

        def step(x: np.ndarray) -> tg.Tensor:
            output, (_, c) = rnn(x)
            loss = (output**2).mean() + (c**2).mean()
            loss.backward(retain_graph=True)
            loss.backward()
            return loss.detach()

        return rnn.parameters(), wrap(step), tg.optim.Adam(rnn.parameters())

    assert_trains_like_eager(build, [(np.random.default_rng(s).standard_normal((4, 2, 2)),) for s in range(3)])


def test_state_carried_with_its_graph_into_the_next_call_is_refused() -> None:
    """docs/remedies.md: truncated BPTT without the detach. The second call's backward reaches the first's graph."""
    rnn = nn.RNN(2, 3, rng=0)
    carried: list[Any] = [None]

    def step(x: tg.Tensor) -> None:
        output, carried[0] = rnn(x, carried[0])
        (output**2).sum().backward(retain_graph=True)

    compiled = tg.compile(step)
    compiled(tg.Tensor(np.ones((2, 1, 2))))
    with pytest.raises(CompileError, match=r"recorded before the call.*detach"):
        compiled(tg.Tensor(np.ones((2, 1, 2))))  # h0 now has a graph: a new key (it requires grad), recorded


def test_nested_compiled_functions_and_other_results_are_refused() -> None:
    w = tg.Tensor([1.0, 2.0], requires_grad=True)
    inner = tg.compile(lambda x: (tg.Tensor(x) * w).sum().backward())
    assert_refused(lambda x: inner(x), (np.ones(2),), "cannot call another")
    assert_refused(lambda x: [(tg.Tensor(x) * w).sum().detach()], (np.ones(2),), "returned list", "tuple of Tensors")


def test_an_index_argument_replays_alone_and_is_refused_inside_a_tuple() -> None:
    """An integer array argument keys the cache by value: indexing with it alone replays each call's
    index; inside a tuple (w[idx, 1]) the recorded op would keep the first call's array, so it is refused."""
    w = tg.Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    alone = tg.compile(lambda idx: w[idx][:, 1].sum().backward())
    for idx in ([0, 2], [0, 2], [1, 3], [1, 3]):
        w.grad = None
        alone(np.array(idx))
        expected = np.zeros((4, 3))
        np.add.at(expected, (np.array(idx), 1), 1.0)
        np.testing.assert_array_equal(w.grad.numpy(), expected)
    in_tuple = tg.compile(lambda idx: w[idx, 1].sum().backward())
    with pytest.raises(CompileError, match=r"argument 0 inside a tuple or list.*w\[idx\]\[:, 1\]"):
        in_tuple(np.array([0, 2]))
