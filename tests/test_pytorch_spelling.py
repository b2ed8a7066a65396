"""PyTorch's spelling works wherever PyTorch has the feature, and numpy's keeps working (docs/pytorch.md).

The differentiable compositions (norm, std, repeat, max(dim), ...) are checked
to first and second order through tests/op_table.py; here: `dim=` and `axis=`
give identical results, each place where the two libraries disagree behaves as
documented, and the Tensor methods a PyTorch user types without thinking exist.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import ArgumentError, GradientError, ShapeError, Tensor
from tinygrad_rnn.checks.testing import arrays, shapes

# ---------------------------------------------------------------- dim= and axis= are the same argument

REDUCTIONS: dict[str, Callable[..., Any]] = {
    "sum": Tensor.sum,
    "mean": Tensor.mean,
    "amax": Tensor.amax,
    "amin": Tensor.amin,
    "logsumexp": Tensor.logsumexp,
    # var and std: the default correction follows the spelling (tested below), so fix it here
    "var": lambda x, **spelling: x.var(correction=1, **spelling),
    "std": lambda x, **spelling: x.std(correction=1, **spelling),
    "norm": Tensor.norm,
}


@st.composite
def reduction_inputs(draw: st.DrawFn) -> tuple[np.ndarray, Any, bool]:
    shape = draw(shapes(min_dims=1, min_side=2), label="shape")
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1) | st.just(tuple(range(len(shape)))), label="axis")
    values = draw(arrays(shape, np.float64, (-3.0, 3.0), unique=True), label="values")
    return values, axis, draw(st.booleans(), label="keepdims")


@pytest.mark.parametrize("name", REDUCTIONS)
@given(case=reduction_inputs())
def test_dim_and_axis_give_identical_values_and_gradients(name: str, case: tuple[np.ndarray, Any, bool]) -> None:
    values, axis, keep = case
    reduce = REDUCTIONS[name]
    by_dim = Tensor(values, requires_grad=True)
    by_axis = Tensor(values, requires_grad=True)
    out_dim = reduce(by_dim, dim=axis, keepdim=keep)
    out_axis = reduce(by_axis, axis=axis, keepdims=keep)
    np.testing.assert_array_equal(out_dim.data, out_axis.data)
    assert out_dim.shape == out_axis.shape
    out_dim.sum().backward()
    out_axis.sum().backward()
    np.testing.assert_array_equal(np.asarray(by_dim.grad), np.asarray(by_axis.grad))


@given(data=st.data())
def test_dim_and_axis_agree_for_joins_splits_and_softmax(data: st.DataObject) -> None:
    shape = data.draw(shapes(min_dims=1), label="shape")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
    x = Tensor(data.draw(arrays(shape), label="x"))
    pairs = [
        (tg.cat([x, x], dim=axis), tg.cat([x, x], axis=axis)),
        (tg.concatenate([x, x], axis), tg.concatenate([x, x], axis=axis)),
        (tg.stack([x, x], dim=axis), tg.stack([x, x], axis=axis)),
        (x.softmax(dim=axis), x.softmax(axis=axis)),
        (x.log_softmax(dim=axis), x.log_softmax(axis=axis)),
        (x.unsqueeze(dim=axis), x.unsqueeze(axis=axis)),
        (x.argmax(dim=axis), x.argmax(axis=axis)),
        (x.max(axis=axis), x.max(dim=axis).values),
        *zip(tg.split(x, 1, dim=axis), tg.split(x, 1, axis=axis), strict=True),
        *zip(x.unbind(dim=axis), x.unbind(axis=axis), strict=True),
    ]
    for a, b in pairs:
        assert a.shape == b.shape
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: x.sum(dim=0, axis=0),
        lambda x: x.mean(keepdim=True, keepdims=True),
        lambda x: x.softmax(dim=0, axis=0),
        lambda x: tg.cat([x, x], dim=0, axis=0),
        lambda x: tg.stack([x], 0, axis=0),
        lambda x: x.split(1, 0, axis=0),
        lambda x: x.var(unbiased=True, correction=1),
    ],
)
def test_both_spellings_at_once_is_a_clear_error(call: Callable[[Tensor], Any]) -> None:
    with pytest.raises(ArgumentError, match=r"(dim= and axis=|keepdim= and keepdims=|unbiased= and correction=)"):
        call(Tensor(np.ones((2, 3))))


# ---------------------------------------------------------------- where numpy and PyTorch disagree


def test_max_with_dim_returns_values_and_indices_and_with_axis_values_only() -> None:
    x = Tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]], requires_grad=True)
    values, indices = x.max(dim=1)
    assert isinstance(x.max(1), tg.ValuesIndices)  # positional is PyTorch's dim
    np.testing.assert_array_equal(values.data, [5.0, 6.0])
    assert indices.dtype == np.int64 and not indices.requires_grad
    np.testing.assert_array_equal(indices.data, [1, 2])
    assert x.min(dim=0, keepdim=True).indices.shape == (1, 3)
    by_axis = x.max(axis=1)
    assert isinstance(by_axis, Tensor)
    np.testing.assert_array_equal(by_axis.data, [5.0, 6.0])
    np.testing.assert_array_equal(x.max(Tensor([[9.0, 0.0, 0.0], [0.0, 0.0, 9.0]])).data, [[9, 5, 3], [4, 2, 9]])
    with pytest.raises(ArgumentError, match=r"max: dim= takes one int.*amax"):
        x.max(dim=(0, 1))


def test_max_with_dim_sends_the_gradient_to_the_picked_element_and_amax_splits_ties() -> None:
    # PyTorch's rule: max(dim) routes the gradient to the one index it returns; amax shares it.
    x = Tensor([[2.0, 2.0, 1.0]], requires_grad=True)
    x.max(dim=1).values.sum().backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0, 0.0]])
    y = Tensor([[2.0, 2.0, 1.0]], requires_grad=True)
    y.amax(dim=1).sum().backward()
    np.testing.assert_array_equal(y.grad, [[0.5, 0.5, 0.0]])


def test_size_is_numpy_count_and_pytorch_shape() -> None:
    x = Tensor(np.zeros((2, 3)))
    assert x.size == 6 and x.numel() == 6 and isinstance(x.size, int)  # numpy's attribute
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-2) == 2  # PyTorch's method
    assert x.dim() == 2 == x.ndim
    assert pickle.loads(pickle.dumps(x.size)) == 6 and copy.deepcopy(x.size) == 6
    with pytest.raises(ShapeError, match=r"size of shape \(2, 3\): axis 2 is out of range"):
        x.size(2)


def test_var_and_std_default_correction_follows_the_spelling() -> None:
    data = np.array([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]])
    x = Tensor(data)
    # PyTorch's spellings (and no argument at all): correction = 1
    np.testing.assert_allclose(x.var().data, np.var(data, ddof=1), rtol=1e-15)
    np.testing.assert_allclose(x.std(dim=1).data, np.std(data, axis=1, ddof=1), rtol=1e-15)
    np.testing.assert_allclose(x.var(0, keepdim=True).data, np.var(data, axis=0, ddof=1, keepdims=True), rtol=1e-15)
    # numpy's spellings: ddof = 0
    np.testing.assert_allclose(x.var(axis=1).data, np.var(data, axis=1), rtol=1e-15)
    np.testing.assert_allclose(x.std(keepdims=True).data, np.std(data, keepdims=True), rtol=1e-15)
    # said outright, whatever the spelling
    for population in (x.var(unbiased=False), x.var(correction=0), x.var(ddof=0)):
        np.testing.assert_allclose(population.data, np.var(data), rtol=1e-15)
    np.testing.assert_allclose(x.var(dim=1, ddof=0).data, np.var(data, axis=1), rtol=1e-15)
    np.testing.assert_allclose(x.var(axis=1, correction=1).data, np.var(data, axis=1, ddof=1), rtol=1e-15)
    assert np.isnan(Tensor([3.0]).var().item())  # n - correction = 0, as PyTorch


def test_squeeze_with_dim_keeps_other_sizes_and_with_axis_refuses_them() -> None:
    x = Tensor(np.zeros((2, 1, 3)))
    assert x.squeeze(0).shape == (2, 1, 3)  # PyTorch: a no-op on an axis that is not of size 1
    assert x.squeeze(1).shape == x.squeeze().shape == (2, 3)
    with pytest.raises(ShapeError, match=r"squeeze: axis 0 has size 2, not 1"):
        x.squeeze(axis=0)  # numpy: an error


# ---------------------------------------------------------------- Tensor methods PyTorch users type


def test_movement_methods_match_numpy() -> None:
    data = np.arange(24.0).reshape(2, 3, 4)
    x = Tensor(data)
    np.testing.assert_array_equal(x.view(4, 6).data, data.reshape(4, 6))
    np.testing.assert_array_equal(x.view(-1).data, data.ravel())
    np.testing.assert_array_equal(x.flatten(1).data, data.reshape(2, 12))
    np.testing.assert_array_equal(x.flatten(0, 1).data, data.reshape(6, 4))
    assert Tensor(2.0).flatten().shape == (1,)
    assert Tensor(np.zeros((2, 0, 3))).flatten(1).shape == (2, 0) and tg.zeros(0, 3).flatten().shape == (0,)
    np.testing.assert_array_equal(x.mT.data, np.swapaxes(data, -1, -2))
    np.testing.assert_array_equal(x[0].t().data, data[0].T)
    assert Tensor([1.0, 2.0]).t().shape == (2,)
    np.testing.assert_array_equal(x[:, :1].expand(-1, 3, -1).data, np.broadcast_to(data[:, :1], (2, 3, 4)))
    np.testing.assert_array_equal(x.repeat(1, 2, 1, 1).data, np.tile(data, (1, 2, 1, 1)))
    assert [c.shape for c in x.chunk(2, dim=2)] == [(2, 3, 2), (2, 3, 2)]
    with pytest.raises(ShapeError, match=r"t: expects at most 2 dimensions"):
        x.t()
    with pytest.raises(ShapeError, match=r"repeat: needs one count >= 0 per axis"):
        x.repeat(2, 2)
    with pytest.raises(ArgumentError, match=r"view: reinterpreting"):
        x.view(np.float32)


def test_gather_and_masked_fill_as_pytorch() -> None:
    x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    picked = x.gather(1, tg.tensor([[0, 0], [2, 1]]))
    np.testing.assert_array_equal(picked.data, [[1.0, 1.0], [6.0, 5.0]])
    picked.sum().backward()
    np.testing.assert_array_equal(x.grad, [[2.0, 0.0, 0.0], [0.0, 1.0, 1.0]])  # a repeated index adds up
    np.testing.assert_array_equal(x.masked_fill(x > 3.0, 0.0).data, [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    with pytest.raises(tg.IndexingError, match=r"gather: index must be an integer tensor"):
        x.gather(0, tg.tensor([0, 1]))
    with pytest.raises(tg.IndexingError, match=r"gather: index of shape \(3, 1\) is larger"):
        x.gather(1, tg.tensor([[0], [0], [0]]))


def test_argmax_and_argmin_are_integer_tensors_without_gradient() -> None:
    data = np.array([[0.5, 3.0, -1.0], [2.0, -4.0, 7.0]])
    x = Tensor(data, requires_grad=True)
    for got, want in [
        (x.argmax(), np.argmax(data)),
        (x.argmax(dim=1), np.argmax(data, axis=1)),
        (x.argmin(0, keepdim=True), np.argmin(data, axis=0, keepdims=True)),
    ]:
        assert got.dtype == np.int64 and not got.requires_grad
        np.testing.assert_array_equal(got.data, want)
    with pytest.raises(ShapeError, match=r"argmax: axis 0 of shape \(0, 2\) is empty"):
        Tensor(np.zeros((0, 2))).argmax(dim=0)


def test_norm_of_each_order_and_its_gradient_at_zero() -> None:
    data = np.array([[3.0, -4.0], [1.0, 0.5]])
    x = Tensor(data)
    np.testing.assert_allclose(x.norm().data, np.linalg.norm(data), rtol=1e-15)
    np.testing.assert_allclose(x.norm(1, dim=1).data, np.abs(data).sum(axis=1), rtol=1e-15)
    np.testing.assert_allclose(x.norm(float("inf")).data, 4.0)
    z = Tensor(np.zeros(3), requires_grad=True)
    z.norm().backward()  # sqrt'(0) is infinite; the norm's gradient at 0 is 0, as in PyTorch
    np.testing.assert_array_equal(z.grad, np.zeros(3))
    with pytest.raises(ArgumentError, match=r"norm: p must be"):
        x.norm("nuc")


def test_floor_division_has_no_gradient_and_remainder_has_pytorchs() -> None:
    x = Tensor([7.0, -7.0], requires_grad=True)
    y = Tensor([2.0, 2.0], requires_grad=True)
    quotient = x // y
    np.testing.assert_array_equal(quotient.data, [3.0, -4.0])
    assert not quotient.requires_grad  # piecewise constant; PyTorch refuses to differentiate floor_divide
    np.testing.assert_array_equal((7 // Tensor([2.0])).data, [3.0])
    rest = x % y
    np.testing.assert_array_equal(rest.data, [1.0, 1.0])  # the sign of the divisor, as Python and PyTorch
    rest.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])
    np.testing.assert_array_equal(y.grad, [-3.0, 4.0])  # -floor(x / y)
    np.testing.assert_array_equal((7.5 % Tensor([2.0])).data, [1.5])


def test_clamp_with_tensor_bounds_sends_gradient_to_the_bound_it_picked() -> None:
    x = Tensor([-2.0, 0.5, 3.0], requires_grad=True)
    low = Tensor([-1.0, -1.0, -1.0], requires_grad=True)
    out = x.clamp(min=low, max=Tensor([1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(out.data, [-1.0, 0.5, 1.0])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(low.grad, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(Tensor([-2.0, 3.0]).clip(-1.0, 1.0).data, [-1.0, 1.0])


def test_setitem_under_no_grad_writes_and_keeps_recorded_values() -> None:
    w = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (w * w).sum()
    with tg.no_grad():
        w[0] = 10.0
        w[1:] = Tensor([20.0, 30.0])
    np.testing.assert_array_equal(w.data, [10.0, 20.0, 30.0])
    loss.backward()
    np.testing.assert_array_equal(w.grad, [2.0, 4.0, 6.0])  # the graph kept the values it saw
    plain = Tensor(np.zeros(3))
    plain[[0, 2]] = 1.0  # a tensor outside any graph can be written with grad on, as in PyTorch
    np.testing.assert_array_equal(plain.data, [1.0, 0.0, 1.0])
    plain[plain > 0.5] = tg.tensor(7.0)  # a boolean tensor as the index
    np.testing.assert_array_equal(plain.data, [7.0, 0.0, 7.0])


@pytest.mark.parametrize(
    "write",
    [
        lambda w, c: w.__setitem__(0, 5.0),
        lambda w, c: (w * 2).__setitem__(0, 5.0),
        lambda w, c: c.__setitem__(0, w[1]),
        lambda w, c: w.zero_(),
    ],
    ids=["leaf", "result", "value requires grad", "zero_"],
)
def test_setitem_with_grad_on_is_a_gradient_error(write: Callable[[Tensor, Tensor], Any]) -> None:
    with pytest.raises(GradientError, match=r"setitem: an in-place write .*tg.no_grad"):
        write(Tensor([1.0, 2.0], requires_grad=True), Tensor([0.0, 0.0]))


def test_setitem_mistakes_name_the_operation() -> None:
    t = Tensor(np.zeros((2, 3)))
    with pytest.raises(tg.IndexingError, match=r"setitem: index 5 does not fit shape \(2, 3\)"):
        t[5] = 1.0
    with pytest.raises(ShapeError, match=r"setitem: cannot write a value of shape \(4,\)"):
        t[0] = np.ones(4)


def test_in_place_fills_and_conversions() -> None:
    g = Tensor([1.0, 2.0])
    assert g.zero_() is g and g.tolist() == [0.0, 0.0]
    assert g.fill_(3.0).tolist() == [3.0, 3.0]
    x = Tensor([1.5, -2.5], requires_grad=True)
    assert x.to(np.float32).dtype == np.float32 and x.to(dtype=np.float32).dtype == np.float32
    assert x.to("cpu") is x and x.type_as(Tensor(np.float32(1))).dtype == np.float32
    assert x.float().dtype == np.float32 and x.double().dtype == np.float64 and x.half().dtype == np.float16
    as_int = x.long()
    assert as_int.dtype == np.int64 and not as_int.requires_grad and as_int.tolist() == [1, -2]
    assert Tensor([[4.0]]).item() == 4.0 and x.pow(2).tolist() == [2.25, 6.25]
    with pytest.raises(ArgumentError, match=r"to: there is only one device"):
        x.to("cuda")
    assert [c.tolist() for c in (x.eq(1.5), x.gt(0.0), x.le(-2.5))] == [[True, False], [True, False], [False, True]]
