"""Tests of the Tensor surface: construction, dtypes, properties, operators, and shape errors.

The engine's backward pass is exercised in test_engine.py; here gradients appear
only where an operator's argument order or dtype handling could silently go wrong
(a reversed `__rsub__`, a float32 tensor promoted by a Python scalar).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import DTypeError, IndexingError, ShapeError, Tensor, TinygradRNNError

NUMPY_DIR = os.path.dirname(np.__file__)


def assert_our_error(exc: BaseException) -> None:
    """The error is ours and its traceback shows no numpy frame and no chained numpy exception."""
    assert isinstance(exc, TinygradRNNError)
    # `raise ... from None` keeps __context__ but hides it; what matters is what the user sees.
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__
    frames = traceback.extract_tb(exc.__traceback__)
    assert not any(f.filename.startswith(NUMPY_DIR) for f in frames), [f.filename for f in frames]


# ---------------------------------------------------------------- construction and dtypes


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.bool_, np.float16])
def test_ndarray_keeps_its_dtype(dtype: Any) -> None:
    array = np.array([1, 0, 1], dtype=dtype)
    assert Tensor(array).dtype == np.dtype(dtype)


@pytest.mark.parametrize("data", [3, 2.5, [1, 2, 3], [[1.0, 2.0]], ((1, 2), (3, 4))])
def test_python_numbers_and_lists_default_to_float64(data: Any) -> None:
    t = Tensor(data)
    assert t.dtype == np.float64
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float64))


def test_python_bools_stay_bool() -> None:
    assert Tensor([True, False]).dtype == np.bool_


def test_explicit_dtype_wins() -> None:
    assert Tensor([1, 2], dtype=np.float32).dtype == np.float32


def test_construction_copies_the_array() -> None:
    source = np.ones(3)
    t = Tensor(source)
    source[0] = 5.0
    assert t.data[0] == 1.0


@pytest.mark.parametrize("data", [np.arange(3), np.array([True, False]), [1, 2], 3])
def test_requires_grad_on_integer_or_bool_is_a_dtype_error(data: Any) -> None:
    array = np.asarray(data) if not isinstance(data, int) else np.int64(data)
    with pytest.raises(DTypeError, match=r"requires_grad.*dtype (int64|bool)") as info:
        Tensor(array, requires_grad=True)
    assert_our_error(info.value)


def test_non_numeric_data_is_a_dtype_error() -> None:
    with pytest.raises(DTypeError, match="Tensor: cannot make an array from str") as info:
        Tensor("abc")
    assert_our_error(info.value)


def test_combining_with_an_unsupported_type_is_a_dtype_error() -> None:
    with pytest.raises(DTypeError, match="cannot combine a Tensor with str"):
        Tensor([1.0]) + "a"


# ---------------------------------------------------------------- properties and conversion


def test_properties() -> None:
    data = np.arange(6.0).reshape(2, 3)
    t = Tensor(data, requires_grad=True)
    assert t.shape == (2, 3)
    assert t.ndim == 2
    assert t.size == 6
    assert t.dtype == np.float64
    assert t.grad is None
    assert t.is_leaf and t.grad_fn is None
    np.testing.assert_array_equal(t.data, data)
    assert t.numpy() is t.data  # shared, as documented


def test_item_returns_a_python_number_and_rejects_many_elements() -> None:
    assert Tensor([[2.5]]).item() == 2.5
    assert type(Tensor([[2.5]]).item()) is float
    with pytest.raises(ShapeError, match=r"item: .* got shape \(1, 2\)") as info:
        Tensor([[1.0, 2.0]]).item()
    assert_our_error(info.value)


def test_detach_shares_values_and_cuts_the_graph() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    d = y.detach()
    assert d.data is y.data
    assert not d.requires_grad and d.is_leaf
    loss = (d * x).sum()  # d is a constant here: dloss/dx = d, not 2 * 3 * x
    loss.backward()
    np.testing.assert_array_equal(x.grad, [3.0, 6.0])


def test_repr_shows_values_dtype_and_graph_state() -> None:
    assert repr(Tensor([1.0, 2.0])) == "Tensor([1., 2.])"
    assert repr(Tensor(np.float32([1.5]))) == "Tensor([1.5], dtype=float32)"
    assert repr(Tensor([1.0], requires_grad=True)) == "Tensor([1.], requires_grad=True)"
    assert repr(Tensor([1.0], requires_grad=True) * 2.0) == "Tensor([2.], grad_fn=mul)"
    assert repr(Tensor(np.arange(2))) == "Tensor([0, 1], dtype=int64)"


def test_bool_of_a_many_element_tensor_is_ambiguous() -> None:
    with pytest.raises(ShapeError, match=r"bool: .* shape \(2,\) is ambiguous"):
        bool(Tensor([1.0, 2.0]))


# ---------------------------------------------------------------- operators

X = np.array([[1.0, -2.0], [0.5, 3.0]])
A = np.array([[2.0, 0.25], [-1.0, 4.0]])
P = np.array([[2.0, 0.5], [-1.0, 1.5]])  # exponents: small, so powers stay near 1 and differences stay accurate

# (name, Tensor expression of x and a, the same in numpy). `a` is an ndarray or a Python scalar.
BINARY: list[tuple[str, Callable[[Any, Any], Any], Any]] = [
    ("x + a", lambda x, a: x + a, A),
    ("a + x", lambda x, a: a + x, A),
    ("x - a", lambda x, a: x - a, A),
    ("a - x", lambda x, a: a - x, A),
    ("x * a", lambda x, a: x * a, A),
    ("a * x", lambda x, a: a * x, A),
    ("x / a", lambda x, a: x / a, A),
    ("a / x", lambda x, a: a / x, A),
    ("x @ a", lambda x, a: x @ a, A),
    ("a @ x", lambda x, a: a @ x, A),
    ("(x * x + 1) ** a", lambda x, a: (x * x + 1) ** a, P),
    ("abs(a) ** x", lambda x, a: abs(a) ** x, P),
    ("x + s", lambda x, a: x + a, 1.5),
    ("s + x", lambda x, a: a + x, 1.5),
    ("x - s", lambda x, a: x - a, 1.5),
    ("s - x", lambda x, a: a - x, 1.5),
    ("x * s", lambda x, a: x * a, -3),
    ("s * x", lambda x, a: a * x, -3),
    ("x / s", lambda x, a: x / a, 4.0),
    ("s / x", lambda x, a: a / x, 4.0),
    ("x ** s", lambda x, a: x**a, 2),
    ("s ** x", lambda x, a: a**x, 2.0),
    ("-x", lambda x, a: -x, A),
]


@pytest.mark.parametrize("name, expr, other", BINARY, ids=[b[0] for b in BINARY])
def test_operators_match_numpy_on_either_side(name: str, expr: Callable[[Any, Any], Any], other: Any) -> None:
    result = expr(Tensor(X), other)
    assert isinstance(result, Tensor), f"{name} returned {type(result).__name__}, not a Tensor"
    np.testing.assert_allclose(result.data, expr(X, other), rtol=1e-15)


@pytest.mark.parametrize("name, expr, other", BINARY, ids=[b[0] for b in BINARY])
def test_operators_differentiate_the_tensor_operand(name: str, expr: Callable[[Any, Any], Any], other: Any) -> None:
    # Central differences on the Tensor side; catches a right-hand operator with swapped operands.
    x = Tensor(X, requires_grad=True)
    expr(x, other).sum().backward()
    eps = 1e-6
    numeric = np.zeros_like(X)
    for i in np.ndindex(X.shape):
        step = np.zeros_like(X)
        step[i] = eps
        numeric[i] = (np.sum(expr(X + step, other)) - np.sum(expr(X - step, other))) / (2 * eps)
    np.testing.assert_allclose(x.grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("scalar", [1.5, 2, -0.25])
@pytest.mark.parametrize(
    "expr",
    [
        lambda x, s: x + s,
        lambda x, s: s + x,
        lambda x, s: x - s,
        lambda x, s: s - x,
        lambda x, s: x * s,
        lambda x, s: s * x,
        lambda x, s: x / s,
        lambda x, s: s / x,
        lambda x, s: x**s,
    ],
    ids=["x+s", "s+x", "x-s", "s-x", "x*s", "s*x", "x/s", "s/x", "x**s"],
)
def test_float32_with_a_python_scalar_stays_float32(expr: Callable[[Any, Any], Any], scalar: float) -> None:
    x = Tensor(np.float32([1.0, 2.0]), requires_grad=True)
    out = expr(x, scalar)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32


def test_float32_end_to_end_matches_float64_to_float32_precision() -> None:
    rng = np.random.default_rng(0)
    w64, x64 = rng.normal(size=(3, 4)), rng.normal(size=(5, 3))

    def loss_and_grads(dtype: Any) -> tuple[Tensor, Any, Any]:
        w = Tensor(w64.astype(dtype), requires_grad=True)
        x = Tensor(x64.astype(dtype), requires_grad=True)
        loss = ((x @ w).tanh() * 0.5 + (x @ w).sigmoid() / 3).mean()
        loss.backward()
        return loss, w.grad, x.grad

    loss32, w32, x32 = loss_and_grads(np.float32)
    loss64, w64g, x64g = loss_and_grads(np.float64)
    assert loss32.dtype == w32.dtype == x32.dtype == np.float32
    np.testing.assert_allclose(w32, w64g, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x32, x64g, rtol=1e-5, atol=1e-6)
    assert abs(loss32.item() - loss64.item()) < 1e-6


def test_float32_leaf_gets_a_float32_grad_from_float64_operands() -> None:
    x = Tensor(np.float32([1.0, 2.0]), requires_grad=True)
    (x * np.array([3.0, 4.0])).sum().backward()  # the product is float64
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


@pytest.mark.parametrize(
    "compare, expected",
    [
        (lambda x: x < 2.0, [True, False, False]),
        (lambda x: x <= 2.0, [True, True, False]),
        (lambda x: x > 2.0, [False, False, True]),
        (lambda x: x >= 2.0, [False, True, True]),
        (lambda x: x == 2.0, [False, True, False]),
        (lambda x: x != 2.0, [True, False, True]),
        (lambda x: x < Tensor([2.0, 2.0, 2.0]), [True, False, False]),
        (lambda x: 2.0 > x, [True, False, False]),
    ],
)
def test_comparisons_return_bool_tensors_without_a_graph(
    compare: Callable[[Tensor], Tensor], expected: list[bool]
) -> None:
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    out = compare(x)
    assert isinstance(out, Tensor)
    assert out.dtype == np.bool_
    assert not out.requires_grad and out.grad_fn is None
    np.testing.assert_array_equal(out.data, expected)


def test_tensors_hash_by_identity() -> None:
    # == is elementwise, so dict keys (the engine's gradient table) must use identity.
    a, b = Tensor([1.0]), Tensor([1.0])
    assert len({a: 1, b: 2}) == 2


# ---------------------------------------------------------------- shape errors name the op and the shapes

SHAPE_ERRORS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "add",
        lambda: Tensor(np.ones((2, 3))) + Tensor(np.ones(4)),
        ShapeError,
        r"add: cannot broadcast shapes \(2, 3\) and \(4,\)",
    ),
    (
        "mul",
        lambda: Tensor(np.ones((2, 3)), requires_grad=True) * np.ones((3, 2)),
        ShapeError,
        r"mul: cannot broadcast shapes \(2, 3\) and \(3, 2\)",
    ),
    (
        "matmul",
        lambda: Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 2))),
        ShapeError,
        r"matmul: cannot multiply \(2, 3\) by \(4, 2\); inner dimensions 3 and 4 differ",
    ),
    (
        "reshape",
        lambda: Tensor(np.ones((2, 3))).reshape(4, 2),
        ShapeError,
        r"reshape: cannot reshape \(2, 3\) \(6 elements\) into \(4, 2\)",
    ),
    (
        "broadcast_to",
        lambda: Tensor(np.ones((2, 3))).broadcast_to(4, 3, 2),
        ShapeError,
        r"broadcast_to: cannot broadcast \(2, 3\) to \(4, 3, 2\)",
    ),
    (
        "getitem",
        lambda: Tensor(np.ones((2, 3)))[5],
        IndexingError,
        r"getitem: index 5 does not fit shape \(2, 3\)",
    ),
    (
        "stack",
        lambda: tg.stack([Tensor(np.ones(2)), Tensor(np.ones(3))]),
        ShapeError,
        r"stack: all tensors must have the same shape, got (\(2,\), \(3,\)|\(3,\), \(2,\))",
    ),
    (
        "concatenate",
        lambda: tg.concatenate([Tensor(np.ones((2, 2))), Tensor(np.ones((3, 3)))]),
        ShapeError,
        r"concatenate: shapes \(2, 2\), \(3, 3\) differ outside axis 0",
    ),
]


@pytest.mark.parametrize("op, make, kind, pattern", SHAPE_ERRORS, ids=[s[0] for s in SHAPE_ERRORS])
def test_shape_errors_name_the_op_and_the_shapes(
    op: str, make: Callable[[], Any], kind: type[Exception], pattern: str
) -> None:
    with pytest.raises(kind, match=pattern) as info:
        make()
    assert_our_error(info.value)
    assert isinstance(info.value, ValueError)  # `except ValueError` still works for numpy users


def test_index_error_is_also_an_index_error() -> None:
    with pytest.raises(IndexError):
        Tensor(np.ones(3))[3]


@pytest.mark.parametrize(
    ("mistake", "error", "message"),
    [
        (lambda a: a.unsqueeze(5), tg.ShapeError, r"unsqueeze of shape \(2, 3\): axis 5 is out of range"),
        (lambda a: a.unsqueeze(-4), tg.ShapeError, r"unsqueeze of shape \(2, 3\): axis -4 is out of range"),
        (lambda a: a.squeeze(5), tg.ShapeError, r"squeeze: axis 5 is out of range"),
        (lambda a: a.mean(axis=5), tg.ShapeError, r"^mean: axis 5 is out of range"),
        (lambda a: a.var(axis=-3), tg.ShapeError, r"^var: axis -3 is out of range"),
        (lambda a: a.sum(axis=1.0), tg.ShapeError, r"sum: axis must be None, an int or a tuple of ints"),
        (lambda a: a.clip(1.0, -1.0), tg.ArgumentError, r"clip: min 1.0 is greater than max -1.0"),
        (lambda a: tg.Tensor([[1.0, 2.0], [3.0]]), tg.DTypeError, r"Tensor: cannot make an array from list"),
    ],
)
def test_more_mistakes_name_the_operation(mistake: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        mistake(tg.Tensor(np.ones((2, 3))))


def test_unsqueeze_counts_axes_in_the_result_as_pytorch() -> None:
    a = tg.Tensor(np.ones((2, 3)))
    assert [a.unsqueeze(i).shape for i in (0, 1, 2, -1, -3)] == [(1, 2, 3), (2, 1, 3), (2, 3, 1), (2, 3, 1), (1, 2, 3)]


def test_numpy_and_python_conversions_see_the_values() -> None:
    t = tg.Tensor([[1.5, 2.0]], requires_grad=True)
    np.testing.assert_array_equal(np.asarray(t), [[1.5, 2.0]])
    assert float(t[0, 0]) == 1.5 and int(t[0, 1]) == 2
    with pytest.raises(tg.ShapeError, match="item: only a single-element tensor"):
        float(t)


def test_the_exponent_gets_gradient_zero_where_the_base_is_zero() -> None:
    b = tg.Tensor(2.0, requires_grad=True)
    with np.errstate(all="raise"):  # and no 0 * log(0) is computed on the way
        (tg.Tensor([0.0, 1.5]) ** b).sum().backward()
    np.testing.assert_allclose(b.grad, 1.5**2 * np.log(1.5))  # d(0**b)/db = 0 for b > 0, not nan
