"""Tests of nn.utils.clip_grad_norm_ / clip_grad_value_: the returned norm against numpy on the concatenated
gradients, PyTorch's scaling rule, rebinding instead of in-place writes, skipped None grads, and errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_rnn import Tensor
from tinygrad_rnn.core.errors import ArgumentError, DTypeError, GradientError
from tinygrad_rnn.nn.utils import clip_grad_norm_, clip_grad_value_


def params_with_grads(grads: list[np.ndarray | None]) -> list[Tensor]:
    out = []
    for g in grads:
        p = Tensor(np.zeros(np.shape(g) if g is not None else (2,)), requires_grad=True)
        p.grad = None if g is None else g.copy()
        out.append(p)
    return out


grad_lists = st.lists(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4),
        elements=st.floats(-10, 10, allow_nan=False),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=40)
@given(grads=grad_lists, max_norm=st.floats(0.01, 20), norm_type=st.sampled_from([1.0, 2.0, 3.0, math.inf]))
def test_norm_and_scaling_follow_pytorchs_rule(grads: list[np.ndarray], max_norm: float, norm_type: float) -> None:
    params = params_with_grads(list(grads))
    flat = np.concatenate([g.ravel() for g in grads])
    want_total = np.max(np.abs(flat)) if math.isinf(norm_type) else np.sum(np.abs(flat) ** norm_type) ** (1 / norm_type)
    total = clip_grad_norm_(params, max_norm, norm_type=norm_type)
    assert total == pytest.approx(want_total, rel=1e-12, abs=1e-300)
    assert isinstance(total, float) and total.item() == float(total)
    coef = min(1.0, max_norm / (want_total + 1e-6))
    for p, g in zip(params, grads, strict=True):
        np.testing.assert_allclose(p.grad, g * coef, rtol=1e-12, atol=0)
    clipped = np.concatenate([p.grad.ravel() for p in params])
    new_norm = np.max(np.abs(clipped)) if math.isinf(norm_type) else np.linalg.norm(clipped, ord=norm_type)
    assert new_norm <= max_norm * (1 + 1e-9)


def test_small_gradients_are_left_unchanged() -> None:
    (p,) = params_with_grads([np.array([0.3, -0.4])])
    assert clip_grad_norm_([p], 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(p.grad, [0.3, -0.4])


def test_clipping_rebinds_and_does_not_write_into_the_old_array() -> None:
    (p,) = params_with_grads([np.array([3.0, 4.0])])
    old = p.grad
    clip_grad_norm_(p, 1.0)  # a single tensor is accepted, as in PyTorch
    np.testing.assert_array_equal(old, [3.0, 4.0])
    assert p.grad is not old
    np.testing.assert_allclose(p.grad, np.array([3.0, 4.0]) / (5 + 1e-6))


def test_parameters_without_grad_are_skipped() -> None:
    a, b = params_with_grads([np.array([6.0, 8.0]), None])
    assert clip_grad_norm_((x for x in [a, b]), 5.0) == pytest.approx(10.0)
    assert b.grad is None
    np.testing.assert_allclose(a.grad, np.array([6.0, 8.0]) * 5 / (10 + 1e-6))
    assert clip_grad_norm_([b], 1.0) == 0.0


def test_works_after_a_real_backward_and_with_tensor_grads() -> None:
    w = Tensor(np.array([1.0, 2.0, 2.0]), requires_grad=True)
    (w * w).sum().backward()  # grad = 2w = [2, 4, 4], norm 6
    assert clip_grad_norm_([w], 3.0) == pytest.approx(6.0)
    np.testing.assert_allclose(w.grad, np.array([2.0, 4.0, 4.0]) * 3 / (6 + 1e-6))
    v = Tensor(np.array([1.0, 2.0, 2.0]), requires_grad=True)
    (v * v).sum().backward(create_graph=True)
    assert isinstance(v.grad, Tensor)
    clip_grad_norm_([v], 3.0)
    assert isinstance(v.grad, Tensor)
    np.testing.assert_allclose(v.grad.data, np.array([2.0, 4.0, 4.0]) * 3 / (6 + 1e-6))


def test_nonfinite_norm() -> None:
    a, b = params_with_grads([np.array([np.inf, 1.0]), np.array([2.0])])
    with pytest.raises(GradientError, match=r"clip_grad_norm_: the total 2.0-norm .* 2 parameter\(s\) is inf"):
        clip_grad_norm_([a, b], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(b.grad, [2.0])  # untouched after the error
    # Without the flag, PyTorch's arithmetic: coef = 1 / inf = 0, so finite grads become 0 and inf * 0 = nan.
    assert clip_grad_norm_([a, b], 1.0) == math.inf
    np.testing.assert_array_equal(b.grad, [0.0])
    assert np.isnan(a.grad[0])
    (c,) = params_with_grads([np.array([np.nan, 1.0])])
    assert math.isnan(clip_grad_norm_([c], 1.0))
    assert np.all(np.isnan(c.grad))


def test_clip_grad_value() -> None:
    a, b = params_with_grads([np.array([-3.0, 0.5, 2.0]), None])
    old = a.grad
    clip_grad_value_([a, b], 1.0)
    np.testing.assert_array_equal(a.grad, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(old, [-3.0, 0.5, 2.0])
    assert b.grad is None
    v = Tensor(np.array([5.0, -5.0]), requires_grad=True)
    (v * v).sum().backward(create_graph=True)
    clip_grad_value_(v, 2.5)
    assert isinstance(v.grad, Tensor)
    np.testing.assert_array_equal(v.grad.data, [2.5, -2.5])


def test_bad_arguments() -> None:
    (p,) = params_with_grads([np.array([1.0])])
    with pytest.raises(ArgumentError, match=r"clip_grad_norm_: max_norm must be >= 0, got -1\.0"):
        clip_grad_norm_([p], -1.0)
    with pytest.raises(ArgumentError, match="norm_type must be > 0"):
        clip_grad_norm_([p], 1.0, norm_type=0)
    with pytest.raises(DTypeError, match="max_norm must be a number, got str"):
        clip_grad_norm_([p], "1")  # type: ignore[arg-type]
    with pytest.raises(DTypeError, match="clip_grad_norm_: parameter 1 is a ndarray, not a Tensor"):
        clip_grad_norm_([p, np.zeros(2)], 1.0)  # type: ignore[list-item]
    with pytest.raises(ArgumentError, match="clip_grad_value_: clip_value must be >= 0"):
        clip_grad_value_([p], -0.5)
