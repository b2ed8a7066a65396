"""Tests of nn.functional: losses against numpy oracles written from the formulas, gradients against
central differences in float64, masks and reductions, numerical stability, and every error message.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_rnn import Tensor
from tinygrad_rnn.core.errors import ArgumentError, DTypeError, IndexingError, ShapeError
from tinygrad_rnn.nn import functional as F

# ---------------------------------------------------------------- oracles (numpy, from the formulas)


def np_log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def np_reduce(loss: np.ndarray, mask: np.ndarray | None, reduction: str) -> np.ndarray:
    w = np.ones_like(loss) if mask is None else np.broadcast_to(mask, loss.shape).astype(np.float64)
    if reduction == "none":
        return loss * w
    if reduction == "sum":
        return np.asarray((loss * w).sum())
    return np.asarray((loss * w).sum() / w.sum())


def numeric_grad(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences, one element at a time (float64)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        plus, minus = x.copy(), x.copy()
        plus[i] += eps
        minus[i] -= eps
        grad[i] = (f(plus) - f(minus)) / (2 * eps)
    return grad


def analytic_grad(f: Callable[[Tensor], Tensor], x: np.ndarray) -> np.ndarray:
    t = Tensor(x, requires_grad=True)
    f(t).backward()
    assert isinstance(t.grad, np.ndarray)
    return t.grad


# ---------------------------------------------------------------- strategies

small_floats = st.floats(-3, 3, allow_nan=False, allow_infinity=False)
batch_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
reductions = st.sampled_from(["mean", "sum", "none"])


@st.composite
def mse_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = draw(hnp.arrays(np.float64, shape, elements=small_floats))
    y = draw(hnp.arrays(np.float64, shape, elements=small_floats))
    mask = None
    if draw(st.booleans()):
        # a mask over a trailing-aligned sub-shape, as broadcasting allows: e.g. (T, B, 1) over (T, B, D)
        mshape = tuple(1 if draw(st.booleans()) else n for n in shape)
        mask = draw(hnp.arrays(np.float64, mshape, elements=st.sampled_from([0.0, 1.0, 0.5])))
        if not mask.any():
            mask.flat[0] = 1.0
    return x, y, mask, draw(reductions)


@st.composite
def ce_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    batch = draw(batch_shapes)
    classes = draw(st.integers(1, 5))
    z = draw(hnp.arrays(np.float64, (*batch, classes), elements=st.floats(-5, 5)))
    if draw(st.booleans()):
        target = draw(hnp.arrays(np.int64, batch, elements=st.integers(0, classes - 1)))
    else:
        raw = draw(hnp.arrays(np.float64, (*batch, classes), elements=st.floats(0.01, 1)))
        target = raw / raw.sum(axis=-1, keepdims=True)
    mask = None
    if draw(st.booleans()):
        mask = draw(hnp.arrays(np.float64, batch, elements=st.sampled_from([0.0, 1.0])))
        if not mask.any():
            mask.flat[0] = 1.0
    return z, target, mask, draw(reductions)


def np_cross_entropy(z: np.ndarray, target: np.ndarray) -> np.ndarray:
    log_p = np_log_softmax(z)
    if target.shape == z.shape:
        return -(target * log_p).sum(axis=-1)
    picked = np.take_along_axis(log_p, target[..., None], axis=-1)
    return -picked[..., 0]


# ---------------------------------------------------------------- mse_loss


@settings(max_examples=40)
@given(mse_case())
def test_mse_forward_matches_numpy(case: tuple[np.ndarray, np.ndarray, np.ndarray | None, str]) -> None:
    x, y, mask, reduction = case
    out = F.mse_loss(Tensor(x), y, mask=mask, reduction=reduction)
    np.testing.assert_allclose(out.data, np_reduce((x - y) ** 2, mask, reduction), rtol=1e-12, atol=1e-12)


@settings(max_examples=25)
@given(mse_case())
def test_mse_gradient_matches_central_differences(case: tuple[np.ndarray, np.ndarray, np.ndarray | None, str]) -> None:
    x, y, mask, reduction = case
    seed = np.random.default_rng(0).standard_normal(x.shape)  # a non-trivial dL/dloss for 'none'

    def scalar(loss: Tensor) -> Tensor:
        return (loss * Tensor(seed)).sum() if reduction == "none" else loss

    got = analytic_grad(lambda t: scalar(F.mse_loss(t, y, mask=mask, reduction=reduction)), x)
    want = numeric_grad(lambda a: float(scalar(F.mse_loss(Tensor(a), y, mask=mask, reduction=reduction)).item()), x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_mse_gradient_closed_form_and_target_gradient() -> None:
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    y = np.array([[0.0, 1.0], [2.0, 3.5]])
    xt, yt = Tensor(x, requires_grad=True), Tensor(y, requires_grad=True)
    F.mse_loss(xt, yt).backward()
    np.testing.assert_allclose(xt.grad, 2 * (x - y) / x.size)
    np.testing.assert_allclose(yt.grad, -2 * (x - y) / x.size)


def test_masked_mean_averages_over_selected_elements_only() -> None:
    x = np.arange(12.0).reshape(2, 3, 2)
    y = np.zeros_like(x)
    mask = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])[..., None]  # (T, B, 1) over (T, B, D)
    got = F.mse_loss(Tensor(x), y, mask=mask).item()
    selected = (x**2)[np.broadcast_to(mask, x.shape) == 1]
    assert selected.size == 6
    assert got == pytest.approx(selected.mean())
    # all-ones mask is the plain mean
    assert F.mse_loss(Tensor(x), y, mask=np.ones(x.shape)).item() == pytest.approx(np.mean(x**2))


def test_masked_elements_get_zero_gradient() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    F.mse_loss(x, np.zeros(3), mask=np.array([1, 0, 1])).backward()
    np.testing.assert_allclose(x.grad, [2 * 1.0 / 2, 0.0, 2 * 3.0 / 2])


def test_mask_may_be_bool_or_tensor() -> None:
    x, y = Tensor(np.array([1.0, 2.0])), np.array([0.0, 0.0])
    a = F.mse_loss(x, y, mask=np.array([True, False])).item()
    b = F.mse_loss(x, y, mask=Tensor(np.array([1.0, 0.0]))).item()
    assert a == b == 1.0


def test_mse_keeps_float32() -> None:
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    loss = F.mse_loss(x, np.zeros(3), mask=np.array([1.0, 1.0, 0.0]))
    assert loss.dtype == np.float32
    loss.backward()
    assert x.grad.dtype == np.float32


# ---------------------------------------------------------------- cross_entropy


@settings(max_examples=40)
@given(ce_case())
def test_cross_entropy_forward_matches_numpy(case: tuple[np.ndarray, np.ndarray, np.ndarray | None, str]) -> None:
    z, target, mask, reduction = case
    out = F.cross_entropy(Tensor(z), target, mask=mask, reduction=reduction, dim=-1)  # classes last
    np.testing.assert_allclose(
        out.data, np_reduce(np_cross_entropy(z, target), mask, reduction), rtol=1e-10, atol=1e-12
    )


@settings(max_examples=25)
@given(ce_case())
def test_cross_entropy_gradient_matches_central_differences(
    case: tuple[np.ndarray, np.ndarray, np.ndarray | None, str],
) -> None:
    z, target, mask, reduction = case
    seed = np.random.default_rng(1).standard_normal(z.shape[:-1])

    def scalar(loss: Tensor) -> Tensor:
        return (loss * Tensor(seed)).sum() if reduction == "none" else loss

    got = analytic_grad(lambda t: scalar(F.cross_entropy(t, target, mask=mask, reduction=reduction, dim=-1)), z)
    want = numeric_grad(lambda a: float(scalar(F.cross_entropy(Tensor(a), target, mask, reduction, dim=-1)).item()), z)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_cross_entropy_gradient_is_softmax_minus_onehot() -> None:
    rng = np.random.default_rng(2)
    z = rng.standard_normal((4, 3, 5))
    t = rng.integers(0, 5, size=(4, 3))
    grad = analytic_grad(lambda x: F.cross_entropy(x, t), z)
    p = np.exp(np_log_softmax(z))
    np.testing.assert_allclose(grad, (p - np.eye(5)[t]) / 12, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("scale", [1e4, -1e4, 1e300])
def test_cross_entropy_is_stable_for_huge_logits(scale: float) -> None:
    z = Tensor(np.array([[scale, -scale, 0.0], [0.0, scale, -scale]]), requires_grad=True)
    loss = F.cross_entropy(z, np.array([1, 1]), reduction="sum")
    loss.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(z.grad))
    # exact: row 0 picks the smallest of three logits (or the middle one when scale < 0)
    big = abs(scale)
    want_row0 = 2 * big if scale > 0 else big  # -log p_1 for [s, -s, 0]
    want_row1 = 0.0 if scale > 0 else big  # -log p_1 for [0, s, -s]
    assert loss.item() == pytest.approx(want_row0 + want_row1, rel=1e-12)


def test_probability_targets_equal_index_targets_when_one_hot() -> None:
    rng = np.random.default_rng(3)
    z = rng.standard_normal((6, 4))
    t = rng.integers(0, 4, size=6)
    a = F.cross_entropy(Tensor(z), t).item()
    b = F.cross_entropy(Tensor(z), np.eye(4)[t]).item()
    assert a == pytest.approx(b, rel=1e-13)


def test_target_may_be_a_tensor_of_indices() -> None:
    z = np.array([[1.0, 2.0, 0.5]])
    a = F.cross_entropy(Tensor(z), Tensor(np.array([2]), dtype=np.int64)).item()
    assert a == pytest.approx(-np_log_softmax(z)[0, 2])


def test_masked_positions_may_hold_padding_targets() -> None:
    z = np.random.default_rng(4).standard_normal((3, 2, 4))
    target = np.array([[0, 1], [2, -1], [-1, -1]])
    mask = (target >= 0).astype(np.float64)
    got = F.cross_entropy(Tensor(z), target, mask=mask).item()
    losses = -np_log_softmax(z)
    want = np.mean([losses[0, 0, 0], losses[0, 1, 1], losses[1, 0, 2]])
    assert got == pytest.approx(want, rel=1e-12)


# ---------------------------------------------------------------- activations


def test_activations_match_numpy() -> None:
    x = np.random.default_rng(5).standard_normal((3, 4)) * 3
    e = np.exp(x - x.max(axis=0, keepdims=True))
    np.testing.assert_allclose(F.softmax(Tensor(x), 0).data, e / e.sum(axis=0, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(F.softmax(Tensor(x), axis=0).data, F.softmax(Tensor(x), dim=0).data)
    np.testing.assert_allclose(F.log_softmax(x).data, np_log_softmax(x), rtol=1e-12)
    np.testing.assert_allclose(F.tanh(x).data, np.tanh(x), rtol=1e-12)
    np.testing.assert_allclose(F.sigmoid(Tensor(x)).data, 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_array_equal(F.relu(Tensor(x)).data, np.maximum(x, 0))


def test_activation_gradients_flow() -> None:
    x = np.array([-1.5, 0.3, 2.0])
    for fn in (F.tanh, F.sigmoid, F.relu, lambda t: F.softmax(t)[0], lambda t: F.log_softmax(t)[1]):
        got = analytic_grad(lambda t, fn=fn: fn(t).sum(), x)
        want = numeric_grad(lambda a, fn=fn: float(fn(Tensor(a)).sum().item()), x)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- errors


def test_all_zero_mask_with_mean_is_an_error_but_sum_is_zero() -> None:
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ArgumentError, match=r"mse_loss: .*mask is all zeros"):
        F.mse_loss(x, np.zeros((2, 3)), mask=np.zeros((2, 3)))
    with pytest.raises(ArgumentError, match=r"cross_entropy: .*mask is all zeros"):
        F.cross_entropy(x, np.array([0, 1]), mask=np.zeros(2))
    assert F.mse_loss(x, np.zeros((2, 3)), mask=np.zeros((2, 1)), reduction="sum").item() == 0.0


def test_empty_input_mean_is_an_error() -> None:
    with pytest.raises(ArgumentError, match="input is empty"):
        F.mse_loss(Tensor(np.zeros((0, 3))), np.zeros((0, 3)))


def test_shape_mismatch_is_named() -> None:
    with pytest.raises(ShapeError, match=r"mse_loss: input has shape \(4, 1\) but target has shape \(4,\)"):
        F.mse_loss(Tensor(np.zeros((4, 1))), np.zeros(4))
    with pytest.raises(ShapeError, match=r"cross_entropy: logits have shape \(2, 3, 5\).*\(2, 3\).*got \(3, 2\)"):
        F.cross_entropy(Tensor(np.zeros((2, 3, 5))), np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ShapeError, match="0-d"):
        F.cross_entropy(Tensor(np.array(1.0)), np.array(0))


def test_bad_mask_shape_is_named_with_a_hint() -> None:
    with pytest.raises(
        ShapeError, match=r"mask of shape \(2, 3\) does not broadcast .* \(2, 3, 4\).*mask\[\.\.\., None\]"
    ):
        F.mse_loss(Tensor(np.zeros((2, 3, 4))), np.zeros((2, 3, 4)), mask=np.ones((2, 3)))


def test_negative_or_nan_mask_is_rejected() -> None:
    for mask in (np.array([1.0, -1.0]), np.array([1.0, np.nan])):
        with pytest.raises(ArgumentError, match="mask must be finite and non-negative"):
            F.mse_loss(Tensor(np.zeros(2)), np.zeros(2), mask=mask)


def test_class_index_out_of_range_is_named() -> None:
    with pytest.raises(IndexingError, match=r"target 3 at position \(1,\) is out of range for 3 classes"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0, 3]))
    with pytest.raises(IndexingError, match=r"target -1 at position \(0, 1\)"):
        F.cross_entropy(Tensor(np.zeros((1, 2, 3))), np.array([[0, -1]]))


def test_non_integer_targets_are_rejected() -> None:
    with pytest.raises(DTypeError, match=r"must hold integer class indices, got dtype float64.*astype"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0]))
    with pytest.raises(DTypeError, match="class probabilities and must be floating point"):
        F.cross_entropy(Tensor(np.zeros((2, 3))), np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(DTypeError, match="logits must be floating point"):
        F.cross_entropy(Tensor(np.zeros((2, 3), dtype=np.int64)), np.array([0, 1]))


@pytest.mark.parametrize("fn", [F.mse_loss, F.cross_entropy])
def test_bad_reduction_string(fn: Callable[..., Tensor]) -> None:
    with pytest.raises(ArgumentError, match=r"reduction must be one of 'mean', 'sum', 'none', got 'avg'") as info:
        fn(Tensor(np.zeros((2, 3))), np.zeros((2, 3)), reduction="avg")
    assert isinstance(info.value, ValueError)
