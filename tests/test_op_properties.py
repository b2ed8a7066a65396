"""test_op_properties.py — one parametrized test per property, run over every record of op_table.OPS.

Properties: the forward pass matches numpy; first and second derivatives
match finite differences; gradients have their input's shape and dtype;
backward modifies no input; float32 in gives float32 out. Hypothesis draws the
shapes (broadcasting, 0-d, size-1 axes), the parameters and the values.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_table import OPS, OpSpec

from tinygrad_rnn.checks.gradcheck import GradcheckPrecisionWarning, gradcheck, gradgradcheck
from tinygrad_rnn.checks.testing import arrays
from tinygrad_rnn.core.engine import grad
from tinygrad_rnn.core.tensor import Tensor

# Second derivatives cost the most; a third of the profile's examples per op keeps the suite fast.
SECOND_ORDER = settings(max_examples=max(5, settings().max_examples // 3))  # settings(): the active profile
by_op = pytest.mark.parametrize("spec", OPS, ids=[spec.name for spec in OPS])


def draw_inputs(
    data: st.DataObject, spec: OpSpec, dtype: Any = np.float64, read_only: bool = False
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The input arrays and keyword parameters of one example."""
    in_shapes, params = data.draw(spec.draw_cases(), label="shapes and params")
    values = draw_values(data, spec, in_shapes, dtype)
    if read_only:
        for a in values:
            a.flags.writeable = False
        for p in params.values():
            if isinstance(p, np.ndarray):
                p.flags.writeable = False
    return values, params


def draw_values(data: st.DataObject, spec: OpSpec, in_shapes: Any, dtype: Any = np.float64) -> list[np.ndarray]:
    """Input arrays of the given shapes, drawn as the op's record asks."""
    if spec.unique:
        # One pool for all inputs, so there are no ties between inputs either.
        v = spec.values_of(0)
        sizes = [math.prod(s) for s in in_shapes]
        pool = data.draw(arrays((sum(sizes),), dtype, (v.low, v.high), v.away_from, v.min_gap, unique=True))
        values = [p.reshape(s) for p, s in zip(np.split(pool, np.cumsum(sizes)[:-1]), in_shapes, strict=True)]
    else:
        values = []
        for i, s in enumerate(in_shapes):
            v = spec.values_of(i)
            values.append(data.draw(arrays(s, dtype, (v.low, v.high), v.away_from, v.min_gap), label=f"input {i}"))
    return values


def as_tuple(out: Any) -> tuple[Any, ...]:
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def leaves(values: list[np.ndarray]) -> list[Tensor]:
    return [Tensor(a, requires_grad=True) for a in values]


def checked(spec: OpSpec, check: Any, fn: Any, xs: list[Tensor], warns: bool) -> None:
    """Run a gradient check, which must warn about float32 exactly when `warns`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GradcheckPrecisionWarning)
        assert check(fn, xs, atol=spec.atol, rtol=spec.rtol)
    precision = [w for w in caught if issubclass(w.category, GradcheckPrecisionWarning)]
    assert bool(precision) == warns, [str(w.message) for w in precision]


@by_op
@given(data=st.data())
def test_forward_matches_numpy(spec: OpSpec, data: st.DataObject) -> None:
    values, params = draw_inputs(data, spec)
    outs = as_tuple(spec.fn(*[Tensor(a) for a in values], **params))
    refs = as_tuple(spec.numpy_ref(*values, **params))
    assert len(outs) == len(refs)
    for out, ref in zip(outs, refs, strict=True):
        ref = np.asarray(ref)
        assert isinstance(out, Tensor)
        assert out.shape == ref.shape and out.dtype == ref.dtype
        np.testing.assert_allclose(out.data, ref, rtol=1e-12, atol=1e-12)


@by_op
@given(data=st.data())
def test_first_derivatives_match_finite_differences(spec: OpSpec, data: st.DataObject) -> None:
    values, params = draw_inputs(data, spec)
    checked(spec, gradcheck, lambda *xs: spec.fn(*xs, **params), leaves(values), spec.low_precision_output)


@by_op
@SECOND_ORDER
@given(data=st.data())
def test_second_derivatives_match_finite_differences(spec: OpSpec, data: st.DataObject) -> None:
    values, params = draw_inputs(data, spec)
    # The first derivative of every op (cast included) is computed in float64: no warning expected.
    checked(spec, gradgradcheck, lambda *xs: spec.fn(*xs, **params), leaves(values), False)


@by_op
@given(data=st.data())
def test_gradients_have_input_shapes_and_dtypes(spec: OpSpec, data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from([np.float64, np.float32]), label="dtype")
    values, params = draw_inputs(data, spec, dtype)
    xs = leaves(values)
    outs = as_tuple(spec.fn(*xs, **params))
    seeds = [data.draw(arrays(o.shape, o.dtype), label="grad_out") for o in outs]
    grads = grad(list(outs), xs, grad_outputs=seeds, retain_graph=True, allow_unused=True)
    for x, g in zip(xs, grads, strict=True):
        assert g is not None  # every input of every op in the table reaches the output
        assert g.shape == x.shape and g.dtype == x.dtype
    if len(outs) == 1:
        outs[0].backward(seeds[0])
        for x in xs:
            assert isinstance(x.grad, Tensor) and x.grad.shape == x.shape and x.grad.dtype == x.dtype


@by_op
@given(data=st.data())
def test_backward_does_not_mutate_inputs(spec: OpSpec, data: st.DataObject) -> None:
    values, params = draw_inputs(data, spec, read_only=True)
    before = [a.copy() for a in values]
    xs = leaves(values)
    for x in xs:
        x.data.flags.writeable = False  # Tensor() copied the array; lock the copy the ops will see
    outs = as_tuple(spec.fn(*xs, **params))
    seeds = [data.draw(arrays(o.shape, o.dtype, read_only=True), label="grad_out") for o in outs]
    seeds_before = [s.copy() for s in seeds]
    grad(list(outs), xs, grad_outputs=seeds, create_graph=True, allow_unused=True)
    for x, a, b in zip(xs, values, before, strict=True):
        np.testing.assert_array_equal(x.data, b)
        np.testing.assert_array_equal(a, b)
    for s, b in zip(seeds, seeds_before, strict=True):
        np.testing.assert_array_equal(s, b)


@by_op
@given(data=st.data())
def test_float32_forward_keeps_float32(spec: OpSpec, data: st.DataObject) -> None:
    values, params = draw_inputs(data, spec, np.float32)
    outs = as_tuple(spec.fn(*[Tensor(a) for a in values], **params))
    refs = as_tuple(spec.numpy_ref(*[a.astype(np.float64) for a in values], **params))
    for out, ref in zip(outs, refs, strict=True):
        assert out.dtype == np.float32
        np.testing.assert_allclose(out.data, ref, rtol=1e-4, atol=1e-5)
