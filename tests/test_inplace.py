"""In-place writes into arrays a graph holds (issue 14): the output array of every recorded op is
read-only from birth, so a write through an intermediate's `.data` raises instead of silently
changing the gradient. Tensor-level updates (`+=`, `x[i] = v`, `zero_()`, optimizer steps) rebind
`.data` to a new array, so they keep working. Leaves are covered by the token in
test_plain_backward.py; a view made before the forward pass is not covered (docs/autodiff.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor
from tinygrad_rnn.checks.testing import arrays, shapes

RNG = np.random.default_rng(14)

# (name, forward of one intermediate from w): every kind of output a recorded op makes
INTERMEDIATES: list[tuple[str, Callable[[Tensor], Tensor]]] = [
    ("mul", lambda w: w * Tensor([3.0, 4.0, 5.0])),
    ("tanh", lambda w: w.tanh()),
    ("matmul", lambda w: Tensor(np.ones((2, 3))) @ w.reshape(3, 1)),
    ("getitem (a view of the leaf)", lambda w: w[1:]),
    ("reshape (a view of the leaf)", lambda w: w.reshape(3, 1)),
    ("sum (a 0-d result)", lambda w: w.sum()),
    ("split (several outputs)", lambda w: tg.split(w, 1)[1]),
]


def _weight() -> Tensor:
    return Tensor([1.0, 2.0, 3.0], requires_grad=True)


@pytest.mark.parametrize("make", [m for _, m in INTERMEDIATES], ids=[n for n, _ in INTERMEDIATES])
def test_a_write_through_an_intermediates_data_raises_and_the_gradient_stays_right(
    make: Callable[[Tensor], Tensor],
) -> None:
    w = _weight()
    y = make(w)
    v = Tensor(RNG.standard_normal(y.shape), requires_grad=True)
    loss = (y * v).sum()  # mul saved y's array for v's gradient
    expected = y.data.copy()
    with pytest.raises(ValueError, match="assignment destination is read-only"):
        y.data[...] = 100.0
    with pytest.raises(ValueError, match="read-only"):
        y.numpy().reshape(-1)[0] = 100.0  # a view made after the op inherits the flag
    loss.backward()
    np.testing.assert_array_equal(v.grad, expected)
    assert w.data.flags.writeable  # the leaf is released by backward, even when y was a view of it


def test_the_issues_example_through_an_intermediate() -> None:
    x = Tensor([3.0, 4.0])
    w = Tensor([1.0, 2.0], requires_grad=True)
    y = w * x
    z = (y * Tensor([1.0, 1.0], requires_grad=True)).sum()
    with pytest.raises(ValueError, match="read-only"):
        y.data[0] = 5.0
    z.backward()
    np.testing.assert_array_equal(w.grad, [3.0, 4.0])


def test_an_intermediate_stays_read_only_after_backward_and_rebinding_is_the_way_to_change_it() -> None:
    w = _weight()
    y = w * 2.0
    y.sum().backward()
    with pytest.raises(ValueError, match="read-only"):
        y.data[0] = 5.0  # decided: no token, so never writable again (docs/autodiff.md)
    y.data = y.data.copy()  # a copy is the caller's own array
    y.data[0] = 5.0
    np.testing.assert_array_equal(y.data, [5.0, 4.0, 6.0])


@pytest.mark.parametrize("how", ["no_grad", "no input requires grad", "detach().numpy().copy()"])
def test_results_that_are_not_recorded_stay_writable(how: str) -> None:
    w = _weight()
    if how == "no_grad":
        with tg.no_grad():
            data = (w * 2.0).data
    elif how == "no input requires grad":
        data = (Tensor([1.0, 2.0, 3.0]) * 2.0).data
    else:
        data = (w * 2.0).detach().numpy().copy()
    data[0] = 5.0
    np.testing.assert_array_equal(data, [5.0, 4.0, 6.0])


def test_tensor_level_updates_of_an_intermediate_work_and_leave_the_graph_alone() -> None:
    w = _weight()
    y = w * 2.0
    loss = (y * y).sum()  # d/dw = 8w at the values the forward pass saw
    with tg.no_grad():
        y += 100.0
        y[0] = -1.0
        y *= 2.0
        np.testing.assert_array_equal(y.data, [-2.0, 208.0, 212.0])
        y.zero_()
    np.testing.assert_array_equal(y.data, [0.0, 0.0, 0.0])
    loss.backward()
    np.testing.assert_array_equal(w.grad, [8.0, 16.0, 24.0])


def test_a_function_that_returns_its_input_unchanged_does_not_freeze_the_input() -> None:
    class Identity(tg.Function):
        def forward(ctx, x: np.ndarray) -> np.ndarray:
            return x

        def backward(ctx, grad_out: Any) -> Any:
            return grad_out

    w = _weight()
    y = Identity.apply(w)
    assert not y.data.flags.writeable
    y.sum().backward()
    w.data[0] = 5.0  # still the user's array to write
    np.testing.assert_array_equal(y.data, [5.0, 2.0, 3.0])  # y is a view of it, as forward returned it


@given(x=arrays(shapes(min_dims=0, max_dims=3)), scale=st.floats(-3, 3))
def test_every_recorded_output_is_read_only_and_its_leaf_writable_after_backward(x: np.ndarray, scale: float) -> None:
    w = Tensor(x, requires_grad=True)
    outs = [w * scale, (w * scale).exp(), w.reshape(-1), w.sum()]
    assert all(not out.data.flags.writeable for out in outs)
    sum((out.sum() for out in outs), start=Tensor(0.0)).backward()
    terms = [np.full_like(x, scale), scale * np.exp(scale * x), np.full_like(x, 2.0)]
    # The terms may cancel (x = 0, scale near -1): bound the rounding by their sizes, not the sum's.
    np.testing.assert_allclose(w.grad, sum(terms), rtol=1e-12, atol=1e-12 * float(np.max(sum(map(np.abs, terms)))))
    assert w.data.flags.writeable and w.grad is not None and w.grad.data.flags.writeable


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_a_recurrent_layer_trains_for_a_few_steps(optimizer: str) -> None:
    tg.manual_seed(0)
    gru = tg.nn.GRU(2, 4)
    head = tg.nn.Linear(4, 1)
    params = [*gru.parameters(), *head.parameters()]
    opt = getattr(tg.optim, optimizer)(params, lr=0.05)
    x = Tensor(RNG.standard_normal((5, 3, 2)))
    target = Tensor(RNG.standard_normal((3, 1)))
    losses = []
    for _ in range(3):
        out, h = gru(x)
        loss = ((head(out[-1]) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        assert not out.data.flags.writeable and not h.data.flags.writeable
    assert losses[-1] < losses[0]


def test_checkpoint_and_forward_mode_give_read_only_outputs_and_the_right_values() -> None:
    w = _weight()
    y = tg.checkpoint(lambda t: (t * t).tanh(), w)
    assert not y.data.flags.writeable
    y.sum().backward()
    np.testing.assert_allclose(w.grad, 2 * w.data * (1 - np.tanh(w.data**2) ** 2), rtol=1e-12)
    value, tangent = tg.func.jvp(lambda t: t * t, (Tensor([1.0, 2.0]),), (Tensor([1.0, 1.0]),))
    np.testing.assert_array_equal(value.data, [1.0, 4.0])
    np.testing.assert_array_equal(tangent.data, [2.0, 4.0])
