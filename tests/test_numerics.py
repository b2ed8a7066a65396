"""Numerical corner cases where we must agree with numpy and PyTorch (issue 14).

Each fix has tests here that failed before it: NaN through relu, None inside
data, higher derivatives of x**k at 0, Python scalars promoting float32,
float16 layers turning into float32, and reductions over empty axes. A few
cases beside them (logsumexp over an empty axis, the low derivatives of x**k)
already held and guard against breaking them on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import DTypeError, ShapeError, Tensor

# ---------------------------------------------------------------- NaN propagates through relu


def test_relu_of_nan_is_nan_with_gradient_one_as_pytorch() -> None:
    x = Tensor([np.nan, -1.0, 0.0, 2.0], requires_grad=True)
    y = x.relu()
    np.testing.assert_array_equal(y.data, [np.nan, 0.0, 0.0, 2.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 0.0, 1.0])  # PyTorch's threshold_backward passes NaN


def test_a_relu_rnn_fed_nan_outputs_nan_not_zeros() -> None:
    rnn = tg.nn.RNN(2, 3, nonlinearity="relu", rng=0)
    x = np.ones((2, 1, 2))
    x[0, 0, 0] = np.nan
    out, h_n = rnn(Tensor(x))
    assert np.isnan(out.data).all() and np.isnan(h_n.data).all()


# ---------------------------------------------------------------- None is not a number


@pytest.mark.parametrize(
    "make",
    [
        lambda: Tensor([1.0, None]),
        lambda: Tensor([[1.0], [None]], dtype=np.float32),
        lambda: Tensor(np.array([1.0, None], dtype=object)),
        lambda: tg.tensor([None]),
        lambda: Tensor([2.0, 3.0]) + [None, 1.0],  # noqa: RUF005  # a Tensor plus a list, not list building
        lambda: [None, 1.0] * Tensor([2.0, 3.0]),
    ],
    ids=["list", "list with dtype", "object array", "tg.tensor", "t + list", "list * t"],
)
def test_none_in_data_is_a_dtype_error_not_nan(make: Callable[[], Any]) -> None:
    with pytest.raises(DTypeError, match=r"the data holds None \(NoneType\), which is not a number"):
        make()


# ---------------------------------------------------------------- higher derivatives of x**k at 0


def nth_derivative(f: Callable[[Tensor], Tensor], x0: float, n: int) -> float:
    x = Tensor(x0, requires_grad=True)
    y = f(x)
    for _ in range(n):
        (y,) = tg.grad(y, [x], create_graph=True)
    return float(y.item())


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [(0, 2, 0.0), (1, 3, 0.0), (2, 4, 0.0), (0, 1, 0.0), (1, 1, 1.0), (2, 2, 2.0), (3, 3, 6.0), (3, 4, 0.0)],
)
def test_higher_derivatives_of_a_power_at_zero_are_exact(k: int, n: int, expected: float) -> None:
    with np.errstate(all="ignore"):
        got = nth_derivative(lambda x: x**k, 0.0, n)
    assert got == expected  # d^n/dx^n x**k at 0: no 0 * inf from the untaken branch of Pow's where


def test_higher_derivatives_of_a_tensor_exponent_power_at_zero() -> None:
    k = Tensor(2.0)  # an exponent held in a tensor takes the same path as a Python number
    assert nth_derivative(lambda x: x**k, 0.0, 4) == 0.0
    assert nth_derivative(lambda x: x**k, 0.0, 2) == 2.0


# ---------------------------------------------------------------- Python scalars are weak-typed on either side


@pytest.mark.parametrize("fn", [tg.maximum, tg.minimum], ids=["maximum", "minimum"])
def test_maximum_and_minimum_keep_float32_with_a_python_scalar_on_either_side(fn: Callable[..., Tensor]) -> None:
    x32 = Tensor(np.float32([1.0, 3.0]), requires_grad=True)
    for out in (fn(2.0, x32), fn(x32, 2.0)):
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out.data, fn(np.float32(2.0), np.float32([1.0, 3.0])).data)
    fn(2.0, x32).sum().backward()
    assert x32.grad.dtype == np.float32


# ---------------------------------------------------------------- float16 layers stay float16


def test_sigmoid_keeps_float16_and_computes_in_float32() -> None:
    x = np.linspace(-8, 8, 33).astype(np.float16)
    y = Tensor(x).sigmoid()
    assert y.dtype == np.float16
    exact = 1 / (1 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(y.data, exact, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kind", ["GRU", "LSTM"])
def test_a_float16_layer_returns_float16_state_that_can_be_fed_back(kind: str) -> None:
    layer = getattr(tg.nn, kind)(3, 4, dtype=np.float16, rng=0)
    x = Tensor(np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float16))
    out, state = layer(x)
    states = state if isinstance(state, tuple) else (state,)
    assert out.dtype == np.float16 and all(s.dtype == np.float16 for s in states)
    out2, _ = layer(x, state)  # raised DTypeError when the state came back float32
    assert out2.dtype == np.float16


# ---------------------------------------------------------------- empty axes


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", [((2, 0), -1), ((0,), 0), ((0, 3), 0), ((0, 3), 1)])
def test_softmax_over_an_empty_tensor_is_empty_as_numpy(name: str, shape: tuple[int, ...], axis: int) -> None:
    x = Tensor(np.zeros(shape), requires_grad=True)
    y = getattr(x, name)(axis=axis)
    assert y.shape == shape
    y.sum().backward()
    assert x.grad.shape == shape


def test_logsumexp_over_an_empty_axis_is_minus_infinity_as_numpy() -> None:
    np.testing.assert_array_equal(Tensor(np.zeros((2, 0))).logsumexp(axis=1).data, [-np.inf, -np.inf])


def test_cross_entropy_with_zero_classes_gives_a_value_not_numpys_error() -> None:
    # The raw ValueError came from log_softmax over the empty class axis.
    logits = Tensor(np.zeros((2, 0)), requires_grad=True)
    loss = tg.nn.functional.cross_entropy(logits, np.zeros((2, 0)), reduction="none")
    np.testing.assert_array_equal(loss.data, [0.0, 0.0])  # -sum over no classes


@pytest.mark.parametrize("name", ["max", "min", "amax", "amin"])
def test_max_over_a_non_empty_axis_of_an_empty_tensor_is_empty(name: str) -> None:
    x = Tensor(np.zeros((0, 3)), requires_grad=True)
    y = getattr(x, name)(axis=1)
    assert y.shape == (0,) and y.shape == getattr(np, name)(np.zeros((0, 3)), axis=1).shape
    y.sum().backward()
    assert x.grad.shape == (0, 3)


@pytest.mark.parametrize(
    "reduce",
    [lambda x: x.max(axis=0), lambda x: x.amin(dim=(0, 1)), lambda x: x.max(), lambda x: x.max(dim=0)],
    ids=["max axis", "amin dims", "max all", "max dim"],
)
def test_max_over_an_empty_axis_has_no_value_and_says_so(reduce: Callable[[Tensor], Any]) -> None:
    with pytest.raises(ShapeError, match=r"(axis 0 of size 0 in shape \(0, 3\)|axis 0 of shape \(0, 3\) is empty)"):
        reduce(Tensor(np.zeros((0, 3))))
