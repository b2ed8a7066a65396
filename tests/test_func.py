"""test_func.py — the function transforms (tg.func) agree with each other and with finite differences.

The functions under test are compositions of many primitives (matmul, tanh,
sigmoid, log_softmax, getitem, ...), with inputs of Hypothesis-drawn sizes.
Second-order transforms are checked in all four compositions: forward over
reverse (hessian), reverse over reverse, forward over forward and reverse over
forward.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn.checks.testing import arrays

func = tg.func


def numerical_jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences, one column per input element, shaped (*out.shape, *x.shape)."""
    out_shape = np.shape(f(x))
    columns = []
    for i in range(x.size):
        step = np.zeros(x.size)
        step[i] = eps
        step = step.reshape(x.shape)
        columns.append((np.asarray(f(x + step)) - np.asarray(f(x - step))).reshape(-1) / (2 * eps))
    return np.stack(columns, axis=-1).reshape((*out_shape, *x.shape))


def vector_function(weight: np.ndarray) -> Callable[[tg.Tensor], tg.Tensor]:
    """R^n -> R^m through several primitives."""

    def f(x: tg.Tensor) -> tg.Tensor:
        h = (tg.Tensor(weight) @ x).tanh()
        return (h * x[: h.shape[0]].sigmoid()).log_softmax(axis=0) + h.maximum(0.1) ** 2

    return f


def scalar_function(weight: np.ndarray) -> Callable[[tg.Tensor], tg.Tensor]:
    vector = vector_function(weight)
    return lambda x: (vector(x) * vector(x).exp()).sum() + x.logsumexp(axis=0)


@st.composite
def problems(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 4), label="n")
    m = draw(st.integers(1, n), label="m")
    weight = draw(arrays((m, n), np.float64, (-1.0, 1.0)), label="weight")
    x = draw(arrays((n,), np.float64, (-1.0, 1.0)), label="x")
    return weight, x


def values(f: Callable[[tg.Tensor], tg.Tensor]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda a: f(tg.Tensor(a)).data


@given(problem=problems(), data=st.data())
def test_jvp_matches_central_differences(problem: tuple[np.ndarray, np.ndarray], data: st.DataObject) -> None:
    weight, x = problem
    v = data.draw(arrays(x.shape, np.float64, (-1.0, 1.0)), label="v")
    f = vector_function(weight)
    out, tangent = func.jvp(f, (tg.Tensor(x),), (tg.Tensor(v),))
    np.testing.assert_array_equal(out.data, f(tg.Tensor(x)).data)
    expected = (f(tg.Tensor(x + 1e-6 * v)).data - f(tg.Tensor(x - 1e-6 * v)).data) / 2e-6
    np.testing.assert_allclose(tangent.data, expected, rtol=1e-6, atol=1e-8)
    assert not out.requires_grad and not tangent.requires_grad  # nothing watched them: no graph kept


@given(problem=problems())
def test_jacobians_agree_with_each_other_and_with_finite_differences(problem: tuple[np.ndarray, np.ndarray]) -> None:
    weight, x = problem
    f = vector_function(weight)
    forward, reverse = func.jacfwd(f)(tg.Tensor(x)), func.jacrev(f)(tg.Tensor(x))
    assert forward.shape == reverse.shape == (weight.shape[0], x.size)
    np.testing.assert_allclose(forward.data, reverse.data, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(forward.data, numerical_jacobian(values(f), x), rtol=1e-6, atol=1e-8)


@given(problem=problems(), data=st.data())
def test_vjp_and_grad_agree_with_the_jacobian(problem: tuple[np.ndarray, np.ndarray], data: st.DataObject) -> None:
    weight, x = problem
    f = vector_function(weight)
    u = data.draw(arrays((weight.shape[0],), np.float64, (-1.0, 1.0)), label="u")
    jacobian = func.jacrev(f)(tg.Tensor(x)).data
    _, vjp_fn = func.vjp(f, tg.Tensor(x))
    (first,) = vjp_fn(tg.Tensor(u))
    (again,) = vjp_fn(tg.Tensor(u))  # the graph is kept for as long as vjp_fn lives
    np.testing.assert_allclose(first.data, u @ jacobian, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(first.data, again.data)
    g = scalar_function(weight)
    np.testing.assert_allclose(func.grad(g)(tg.Tensor(x)).data, numerical_jacobian(values(g), x), rtol=1e-6, atol=1e-8)


@given(problem=problems(), data=st.data())
def test_hessian_is_symmetric_and_all_four_compositions_agree(
    problem: tuple[np.ndarray, np.ndarray], data: st.DataObject
) -> None:
    weight, x = problem
    g = scalar_function(weight)
    hessian = func.hessian(g)(tg.Tensor(x)).data
    assert hessian.shape == (x.size, x.size)
    np.testing.assert_allclose(hessian, hessian.T, rtol=1e-10, atol=1e-12)
    for other in (
        func.jacrev(func.jacrev(g)),
        func.jacfwd(func.jacfwd(g)),
        func.jacrev(func.jacfwd(g)),
    ):
        np.testing.assert_allclose(other(tg.Tensor(x)).data, hessian, rtol=1e-10, atol=1e-12)
    gradient = func.grad(g)
    np.testing.assert_allclose(hessian, numerical_jacobian(values(gradient), x), rtol=1e-5, atol=1e-7)
    v = data.draw(arrays(x.shape, np.float64, (-1.0, 1.0)), label="v")
    value, product = func.hvp(g, tg.Tensor(x), tg.Tensor(v))
    np.testing.assert_array_equal(value.data, g(tg.Tensor(x)).data)
    np.testing.assert_allclose(product.data, hessian @ v, rtol=1e-10, atol=1e-12)


def test_several_primals_argnums_and_batched_tangents() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 2)), rng.normal(size=(2,))

    def f(x: tg.Tensor, y: tg.Tensor) -> tg.Tensor:
        return (x @ y).tanh() * y.sum()

    ja, jb = func.jacfwd(f, argnums=(0, 1))(tg.Tensor(a), tg.Tensor(b))
    ra, rb = func.jacrev(f, argnums=(0, 1))(tg.Tensor(a), tg.Tensor(b))
    assert ja.shape == (3, 3, 2) and jb.shape == (3, 2)
    np.testing.assert_allclose(ja.data, ra.data, atol=1e-12)
    np.testing.assert_allclose(jb.data, rb.data, atol=1e-12)
    np.testing.assert_allclose(jb.data, numerical_jacobian(lambda y: f(tg.Tensor(a), tg.Tensor(y)).data, b), atol=1e-8)
    # batched=True: K tangents in one pass give the Jacobian applied to each
    directions = rng.normal(size=(4, 2))
    _, tangents = func.jvp(lambda y: f(tg.Tensor(a), y), (tg.Tensor(b),), (tg.Tensor(directions),), batched=True)
    np.testing.assert_allclose(tangents.data, directions @ jb.data.T, atol=1e-12)


def test_errors_name_the_transform() -> None:
    x = tg.Tensor([1.0, 2.0])
    with pytest.raises(tg.GradientError, match=r"grad: the function returned a tensor of shape \(2,\)"):
        func.grad(lambda t: t * 2.0)(x)
    with pytest.raises(tg.ShapeError, match=r"jvp: tangent 0 has shape \(3,\) but primal 0 has shape \(2,\)"):
        func.jvp(lambda t: t * 2.0, (x,), (tg.Tensor([1.0, 2.0, 3.0]),))
    with pytest.raises(tg.ArgumentError, match="argnums 2 is out of range"):
        func.jacrev(lambda t: t * 2.0, argnums=2)(x)
    with pytest.raises(tg.ArgumentError, match="must return a Tensor"):
        func.jvp(lambda t: 3.0, (x,), (x,))
