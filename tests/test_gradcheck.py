"""test_gradcheck.py — the checker itself: it must catch wrong VJPs, say where, and pass right ones.

A checker that always says True would make every other gradient test
worthless, so most tests here feed it a deliberately wrong backward and assert
on the failure and its message. The named edge cases of ops (x**0 at 0, relu
at 0, logsumexp at ±1e4) sit at the end.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_rnn.checks.gradcheck import (
    GradcheckPrecisionWarning,
    InvariantReport,
    analytical_jacobian,
    gradcheck,
    gradgradcheck,
    numerical_jacobian,
)
from tinygrad_rnn.checks.testing import arrays, check_op, shapes, tensors
from tinygrad_rnn.core.engine import Function, grad
from tinygrad_rnn.core.errors import DTypeError, GradcheckError, GradientError
from tinygrad_rnn.core.tensor import Tensor

# ---------------------------------------------------------------- user Functions, right and wrong


class Square(Function):
    """y = x^2;   dL/dx = dL/dy * 2x"""

    def forward(ctx, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return x * x

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_out * x * 2.0


class SquareMissingTwo(Square):
    """The classic slip: dL/dx = dL/dy * x."""

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_out * x


class SquareDetachedVJP(Square):
    """Right first derivative, but built from a constant: its own derivative is lost (second order is 0)."""

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_out * Tensor(2.0 * x.data)


class SquareDetachedGradOut(Square):
    """Right first derivative, but grad_out enters as a constant: d(VJP)/d(grad_out) is lost."""

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return Tensor(grad_out.data) * x * 2.0


class MulWrongForY(Function):
    """z = x * y, with the VJP for y off by a factor 2."""

    def forward(ctx, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x, y)
        return x * y

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor]:
        x, y = ctx.saved_tensors
        return grad_out * y, grad_out * x * 2.0


class SquareAffineVJP(Square):
    """A VJP that is not linear in grad_out: right for every nonzero grad_out, nonzero for grad_out = 0."""

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        offset = 1.0 if not np.any(grad_out.data) else 0.0
        return grad_out * x * 2.0 + offset


class SquareNoisyVJP(Square):
    """A nondeterministic VJP: relative noise of 1e-9, far below gradcheck's tolerances."""

    rng = np.random.default_rng(0)

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_out * x * (2.0 + 1e-9 * SquareNoisyVJP.rng.standard_normal())


class Softplus(Function):
    """y = log(1 + exp(x));   dL/dx = dL/dy * sigmoid(x)   (a user-defined op done right)"""

    def forward(ctx, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.logaddexp(0.0, x)

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_out * x.sigmoid()


def square_missing_two(x: Tensor) -> Tensor:
    return SquareMissingTwo.apply(x)


MATRIX = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])


def leaf(values: Any, dtype: Any = np.float64) -> Tensor:
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ---------------------------------------------------------------- catching and locating


def test_a_correct_user_function_passes_first_and_second_order() -> None:
    x = leaf([[-2.0, 0.0, 0.5], [1.0, 3.0, -0.1]])
    assert gradcheck(Softplus.apply, (x,))
    assert gradgradcheck(Softplus.apply, (x,))
    assert gradcheck(Softplus.apply, (x,), fast_mode=True)


@pytest.mark.parametrize("fast_mode", [False, True])
def test_wrong_vjp_is_caught_and_located(fast_mode: bool) -> None:
    x, y = leaf(np.ones((2, 3))), leaf(MATRIX)
    with pytest.raises(GradcheckError) as info:
        gradcheck(MulWrongForY.apply, (x, y), fast_mode=fast_mode)
    message = str(info.value)
    # dL/dy should be x = 1 everywhere: the analytic Jacobian says 2, so every entry is off by 1 and
    # the first (0, 0) is reported; y's shape is (2, 3).
    assert "gradcheck: " in message
    assert "d(output 0)/d(input 1) mismatch at index (0, 0): analytic=2, numeric=1, max |diff|=1" in message
    if fast_mode:
        assert message.startswith("gradcheck: fast mode: for d(output 0)/d(input 1)")
        assert "The full Jacobian locates it" in message
    report = info.value.report
    (wrong,) = report.failures
    assert (wrong.output, wrong.input, wrong.input_shape) == (0, 1, (2, 3))
    (right,) = report.for_input(0)
    assert right.passed and right.max_abs_error < 1e-8


def test_worst_index_points_at_the_largest_error() -> None:
    x = leaf(MATRIX)  # the missing factor 2 costs |x| at each entry: worst at (1, 2) where |x| = 6
    with pytest.raises(GradcheckError, match=r"d\(output 0\)/d\(input 0\) mismatch at index \(1, 2\)") as info:
        gradcheck(lambda x: square_missing_two(x).sum(), (x,))
    (comparison,) = info.value.report.failures
    assert comparison.worst_index == (1, 2) and comparison.worst_output_index == ()
    assert comparison.analytic == pytest.approx(-6.0) and comparison.numeric == pytest.approx(-12.0)
    assert comparison.max_abs_error == pytest.approx(6.0) and comparison.max_rel_error == pytest.approx(0.5)
    np.testing.assert_allclose(comparison.numeric_jacobian, 2 * MATRIX.reshape(1, -1), rtol=1e-8)
    np.testing.assert_allclose(comparison.analytic_jacobian, MATRIX.reshape(1, -1))


def test_the_failing_output_is_named() -> None:
    x = leaf([1.0, 2.0])
    with pytest.raises(GradcheckError, match=r"d\(output 1\)/d\(input 0\) mismatch at index \(1,\)"):
        gradcheck(lambda x: (x.exp(), square_missing_two(x)), (x,))


def test_raise_exception_false_returns_false() -> None:
    assert gradcheck(square_missing_two, (leaf([1.0]),), raise_exception=False) is False
    assert gradcheck(Square.apply, (leaf([1.0]),), raise_exception=False) is True


@settings(max_examples=15)
@given(x=tensors(domain=(-2.0, 2.0), away_from=(0.0,), min_gap=0.1), fast_mode=st.booleans())
def test_a_missing_factor_is_caught_at_any_shape(x: Tensor, fast_mode: bool) -> None:
    if x.size == 0:
        return
    with pytest.raises(GradcheckError, match=r"d\(output 0\)/d\(input 0\) mismatch at index"):
        gradcheck(square_missing_two, (x,), fast_mode=fast_mode)
    assert gradcheck(Square.apply, (x,), fast_mode=fast_mode)


def test_gradgradcheck_catches_a_vjp_that_is_not_differentiable() -> None:
    x = leaf([0.5, -1.5])
    assert gradcheck(SquareDetachedVJP.apply, (x,))  # first order is right...
    with pytest.raises(GradcheckError) as info:  # ...but d(2x v)/dx = 2v is lost
        gradgradcheck(SquareDetachedVJP.apply, (x,))
    assert str(info.value).startswith("gradgradcheck: d(grad of input 0)/d(input 0) mismatch at index")
    assert gradgradcheck(Square.apply, (x,))


def test_gradgradcheck_uses_given_grad_outputs() -> None:
    x = leaf([0.5, -1.5, 2.0])
    v = Tensor([1.0, -2.0, 0.5], requires_grad=True)
    assert gradgradcheck(lambda x: x.tanh() * x, (x,), grad_outputs=v)
    assert gradcheck(SquareDetachedGradOut.apply, (x,))
    with pytest.raises(GradcheckError, match=r"d\(grad of input 0\)/d\(grad_output 0\) mismatch at index \(2,\)"):
        gradgradcheck(SquareDetachedGradOut.apply, (x,), grad_outputs=v)
    # A plain array is used as v but not differentiated, so that mistake goes unseen.
    assert gradgradcheck(SquareDetachedGradOut.apply, (x,), grad_outputs=v.data)


def test_zero_grad_out_must_give_zero_gradients() -> None:
    x = leaf([0.5, -1.5])
    with pytest.raises(GradcheckError, match=r"grad_out = 0 gave a nonzero gradient for input 0") as caught:
        gradcheck(SquareAffineVJP.apply, (x,))
    report = caught.value.report
    assert isinstance(report, InvariantReport) and report.check == "zero_grad_out"
    assert (report.output, report.input, report.input_shape) == (0, 0, (2,))
    np.testing.assert_array_equal(report.gradients[0], [1.0, 1.0])  # the VJP's offset, at grad_out = 0
    assert report.max_error == 1.0 and report.worst_index == (0,) and report.tolerance == 0.0
    assert gradcheck(SquareAffineVJP.apply, (x,), check_zero_grad_out=False)


def test_backward_twice_must_agree() -> None:
    x = leaf([[0.5, -1.5, 2.0]])
    with pytest.raises(GradcheckError, match=r"not reproducible: .* input 0 differ by up to") as caught:
        gradcheck(SquareNoisyVJP.apply, (x,))
    report = caught.value.report
    assert isinstance(report, InvariantReport) and report.check == "backward_twice"
    first, second = report.gradients
    assert first.shape == second.shape == report.input_shape == (1, 3)
    gap = np.abs(first - second)
    assert report.max_error == gap.max() > 0 and report.worst_index == np.unravel_index(gap.argmax(), gap.shape)
    assert "backward_twice: d(output 0)/d(input 0)" in str(report)
    assert gradcheck(SquareNoisyVJP.apply, (x,), nondet_tol=1e-6)


# ---------------------------------------------------------------- inputs: copies, dtypes, misuse


def test_float32_input_warns_and_is_checked_as_a_float64_copy() -> None:
    x = leaf([0.5, 1.5], np.float32)
    seen: list[Any] = []

    def fn(x: Tensor) -> Tensor:
        seen.append(x.dtype)
        return (x * x).sum()

    with pytest.warns(
        GradcheckPrecisionWarning, match=r"gradcheck: input 0 has dtype float32; checking a float64 copy"
    ):
        assert gradcheck(fn, (x,))
    assert set(seen) == {np.dtype(np.float64)}
    assert x.dtype == np.float32 and x.grad is None


def test_float64_inputs_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", GradcheckPrecisionWarning)
        assert gradcheck(Square.apply, (leaf([0.5, 1.5]),))


def test_eps_follows_the_precision_fn_computes_in() -> None:
    x = leaf([0.5, 1.5])
    with pytest.warns(GradcheckPrecisionWarning, match=r"output 0 has dtype float32.*eps=0.001"):
        assert gradcheck(lambda x: x.astype(np.float32) * 2.0, (x,))
    # With float64's step, float32 rounding (~1e-7) divided by 2e-6 swamps the derivative.
    with pytest.warns(GradcheckPrecisionWarning), pytest.raises(GradcheckError, match=r"eps=1e-06"):
        gradcheck(lambda x: x.astype(np.float32) * 2.0, (x,), eps=1e-6)


def test_caller_tensors_are_never_touched() -> None:
    x, y = leaf(MATRIX), leaf(np.ones((2, 3)))
    before = x.data.copy()
    with pytest.raises(GradcheckError):
        gradcheck(MulWrongForY.apply, (x, y))
    assert gradcheck(lambda x, y: (x * y).sum(), (x, y), fast_mode=True)
    np.testing.assert_array_equal(x.data, before)
    assert x.grad is None and y.grad is None and x.is_leaf


def test_inputs_without_requires_grad_pass_through_unchecked() -> None:
    x, c = leaf([1.0, 2.0]), Tensor([3.0, 4.0])
    assert gradcheck(lambda x, c, k: x * c * k, (x, c, 2.0))
    (jac,) = numerical_jacobian(lambda x, c: x * c, (x, c))
    assert len(jac) == 1  # one entry: only x requires grad


def test_misuse_raises_a_named_error() -> None:
    with pytest.raises(GradientError, match=r"^gradcheck: no input requires grad"):
        gradcheck(lambda x: x * 2, (Tensor([1.0]),))
    with pytest.raises(DTypeError, match=r"^gradcheck: fn must return a Tensor or a tuple of Tensors, got float"):
        gradcheck(lambda x: 1.0, (leaf([1.0]),))
    with pytest.raises(GradientError, match=r"^gradgradcheck: got 2 grad_outputs for 1 outputs"):
        gradgradcheck(Square.apply, (leaf([1.0]),), grad_outputs=[np.ones(1), np.ones(1)])


# ---------------------------------------------------------------- the Jacobians themselves


@settings(max_examples=15)
@given(data=st.data())
def test_both_jacobians_of_a_linear_map_are_its_matrix(data: st.DataObject) -> None:
    m, n = data.draw(shapes(min_dims=2, max_dims=2), label="matrix shape")
    a = data.draw(arrays((m, n)), label="A")
    x = data.draw(tensors((n,)), label="x")
    ((numeric,),) = numerical_jacobian(lambda x: Tensor(a) @ x, (x,))
    ((analytic,),) = analytical_jacobian(lambda x: Tensor(a) @ x, (x,))
    np.testing.assert_allclose(numeric, a, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(analytic, a, rtol=0, atol=1e-15)


def test_jacobians_are_laid_out_output_by_input() -> None:
    x, y = leaf([1.0, 2.0, 3.0]), leaf([[1.0], [2.0]])
    jac = analytical_jacobian(lambda x, y: (x * y, x.sum()), (x, y))
    assert [[j.shape for j in row] for row in jac] == [[(6, 3), (6, 2)], [(1, 3), (1, 2)]]
    num = numerical_jacobian(lambda x, y: (x * y, x.sum()), (x, y))
    for row_a, row_n in zip(jac, num, strict=True):
        for a, n in zip(row_a, row_n, strict=True):
            np.testing.assert_allclose(a, n, atol=1e-8)


# ---------------------------------------------------------------- check_op


def test_check_op_passes_a_correct_user_op() -> None:
    check_op(Softplus.apply, max_examples=10)
    check_op(lambda x, y: Softplus.apply(x) * y, arity=2, max_examples=10)


def test_check_op_shrinks_a_broken_user_op_to_a_failure() -> None:
    with pytest.raises(GradcheckError, match=r"d\(output 0\)/d\(input 0\) mismatch"):
        check_op(square_missing_two, away_from=(0.0,), min_gap=0.1, max_examples=10)


def test_check_op_as_a_decorator_makes_a_test() -> None:
    @check_op(arity=2, domain=(0.5, 2.0), max_examples=5)
    def test_ratio(x: Tensor, y: Tensor) -> Tensor:
        return x / y

    @check_op(away_from=(0.0,), min_gap=0.1, second_order=False, max_examples=5)
    def test_broken(x: Tensor) -> Tensor:
        return square_missing_two(x)

    assert test_ratio.__name__ == "test_ratio"
    test_ratio()
    with pytest.raises(GradcheckError):
        test_broken()


def test_check_op_outside_the_domain_fails_quietly_and_suggests_domain() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(GradcheckError, match=r"NaN or Inf .* domain=\(-3\.0, 3\.0\)") as failure:
            check_op(lambda x: x.log(), arity=1, max_examples=30)
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    assert "check_op(fn, arity=1, domain=(0.1, 3.0))" in str(failure.value)
    assert np.seterr()["divide"] == "warn"  # numpy's error state is restored after the check


def test_check_op_suggests_domain_only_when_values_are_not_finite() -> None:
    with pytest.raises(GradcheckError) as failure:
        check_op(square_missing_two, away_from=(0.0,), min_gap=0.1, max_examples=10)
    assert "domain=" not in str(failure.value)


def test_importing_the_testing_module_without_hypothesis_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['hypothesis'] = None  # as if not installed: importing it raises ModuleNotFoundError\n"
        "import tinygrad_rnn  # the library itself needs no Hypothesis\n"
        "try:\n"
        "    import tinygrad_rnn.checks.testing\n"
        "except ModuleNotFoundError as e:\n"
        "    print(e.name, '|', e)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    name, message = run.stdout.strip().split(" | ")
    assert name == "hypothesis"
    assert 'pip install "tinygrad_rnn[test]"' in message and "pip install hypothesis" in message


def test_check_op_keeps_values_away_from_kinks() -> None:
    # relu has a kink at 0. Kept min_gap away from it, relu passes; drawn within eps = 1e-6 of it, every
    # central difference straddles the kink (at 0 itself it gives 1/2, not 0) and the check must fail.
    check_op(lambda x: x.relu(), away_from=(0.0,), max_examples=10)
    with pytest.raises(GradcheckError, match=r"d\(output 0\)/d\(input 0\) mismatch"):
        check_op(lambda x: x.relu(), domain=(-1e-7, 1e-7), max_examples=5, second_order=False)


# ---------------------------------------------------------------- edge cases of ops


def test_pow_zero_exponent_has_zero_gradient_at_zero() -> None:
    x = leaf([0.0, 0.0, 2.0])
    y = leaf([0.0, 0.0, 0.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        gx, gy = grad((x**y).sum(), [x, y])
    assert gx is not None and gy is not None
    np.testing.assert_array_equal(gx.data, [0.0, 0.0, 0.0])  # d(x**0)/dx = 0, not 0 * inf = nan
    with np.errstate(divide="ignore", invalid="ignore"):
        (g,) = grad((x**0.0).sum(), x)
    assert g is not None
    np.testing.assert_array_equal(g.data, [0.0, 0.0, 0.0])


def test_relu_and_abs_have_zero_gradient_at_zero() -> None:
    x = leaf([-1.0, 0.0, 1.0])
    (g_relu,) = grad(x.relu().sum(), x)
    (g_abs,) = grad(x.abs().sum(), x)
    assert g_relu is not None and g_abs is not None
    np.testing.assert_array_equal(g_relu.data, [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(g_abs.data, [-1.0, 0.0, 1.0])


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_logsumexp_softmax_log_softmax_are_stable_at_large_inputs(scale: float) -> None:
    base = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, -2.0]])
    x = leaf(base * scale)
    shifted = base * scale - (base * scale).max(axis=1, keepdims=True)  # exact reference, computed safely
    expected_lse = np.log(np.exp(shifted).sum(axis=1)) + (base * scale).max(axis=1)
    results = {
        "logsumexp": (x.logsumexp(axis=1), expected_lse),
        "softmax": (x.softmax(axis=1), np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)),
        "log_softmax": (x.log_softmax(axis=1), shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))),
    }
    weights = np.array([[1.0, -2.0, 0.5], [0.3, 0.3, 1.0]])
    for name, (out, expected) in results.items():
        assert np.all(np.isfinite(out.data)), name
        np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12, err_msg=name)
        seed = weights[:, 0] if out.ndim == 1 else weights
        (g,) = grad(out, x, grad_outputs=seed)
        assert g is not None and np.all(np.isfinite(g.data)), name
    assert gradcheck(lambda x: x.log_softmax(axis=1), (x,))
    assert gradcheck(lambda x: x.logsumexp(axis=1), (x,))
