"""test_forward_mode.py — every record of op_table.OPS through forward mode (core/forward.py).

Properties, per op: the JVP matches central differences along random
directions; the transpose identity <u, J v> = <J^T u, v> holds against the VJP;
the JVP recorded on Tensors (create_graph=True) gives the same tangents as the
one run on ndarrays; tangents have the output's shape and dtype. Then the
mechanics: a user's Function without `jvp`, a wrong tangent shape, and a
Function with its own rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from op_table import OPS, OpSpec
from test_op_properties import as_tuple, draw_inputs, leaves

import tinygrad_rnn as tg
from tinygrad_rnn.checks.testing import arrays
from tinygrad_rnn.core.forward import push_tangents

by_op = pytest.mark.parametrize("spec", OPS, ids=[spec.name for spec in OPS])
DIRECTIONS = 2


def _run(spec: OpSpec, params: dict[str, Any], values: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(o.data, np.float64) for o in as_tuple(spec.fn(*[tg.Tensor(v) for v in values], **params)))


def _draw_directions(data: st.DataObject, values: list[np.ndarray]) -> list[np.ndarray]:
    return [
        data.draw(arrays((DIRECTIONS, *v.shape), np.float64, (-1.0, 1.0)), label=f"tangent {i}")
        for i, v in enumerate(values)
    ]


@by_op
@given(data=st.data())
def test_jvp_matches_central_differences(spec: OpSpec, data: st.DataObject) -> None:
    values, params = draw_inputs(data, spec)
    directions = _draw_directions(data, values)
    xs = leaves(values)
    outs = as_tuple(spec.fn(*xs, **params))
    tangents = push_tangents(list(outs), xs, directions)
    eps = 1e-3 if spec.low_precision_output else 1e-6
    for k in range(DIRECTIONS):
        ahead = _run(spec, params, [v + eps * d[k] for v, d in zip(values, directions, strict=True)])
        behind = _run(spec, params, [v - eps * d[k] for v, d in zip(values, directions, strict=True)])
        for out, t, a, b in zip(outs, tangents, ahead, behind, strict=True):
            assert t.shape == (DIRECTIONS, *out.shape) and t.dtype == out.dtype
            atol = 1e-3 if spec.low_precision_output else spec.atol
            np.testing.assert_allclose(t.data[k], (a - b) / (2 * eps), atol=atol, rtol=spec.rtol)


@by_op
@given(data=st.data())
def test_jvp_is_the_transpose_of_the_vjp(spec: OpSpec, data: st.DataObject) -> None:
    values, params = draw_inputs(data, spec)
    directions = _draw_directions(data, values)
    xs = leaves(values)
    outs = as_tuple(spec.fn(*xs, **params))
    us = [data.draw(arrays(o.shape, np.float64, (-1.0, 1.0)), label="u") for o in outs]
    tangents = push_tangents(list(outs), xs, directions)
    vjps = tg.grad(list(outs), xs, grad_outputs=us, allow_unused=True)
    for k in range(DIRECTIONS):
        u_jv = sum(float(np.sum(u * t.data[k])) for u, t in zip(us, tangents, strict=True))
        jtu_v = sum(float(np.sum(g.data * d[k])) for g, d in zip(vjps, directions, strict=True) if g is not None)
        tolerance = 1e-5 if spec.low_precision_output else 1e-9  # cast's tangent is float32
        assert u_jv == pytest.approx(jtu_v, rel=tolerance, abs=tolerance)


@by_op
@given(data=st.data())
def test_recorded_jvp_equals_plain_jvp(spec: OpSpec, data: st.DataObject) -> None:
    values, params = draw_inputs(data, spec)
    directions = _draw_directions(data, values)
    xs = leaves(values)
    outs = list(as_tuple(spec.fn(*xs, **params)))
    plain = push_tangents(outs, xs, directions)
    recorded = push_tangents(outs, xs, [tg.Tensor(d, requires_grad=True) for d in directions], create_graph=True)
    for p, r in zip(plain, recorded, strict=True):
        np.testing.assert_allclose(r.data, p.data, rtol=1e-12, atol=1e-12)


def test_an_input_that_reaches_no_output_gives_zero_tangents() -> None:
    x, unused = tg.Tensor([1.0, 2.0], requires_grad=True), tg.Tensor([3.0], requires_grad=True)
    y = x.exp()
    (dy,) = push_tangents([y], [unused], [np.ones((1, 1))])
    np.testing.assert_array_equal(dy.data, np.zeros((1, 2)))


class _NoRule(tg.Function):
    def forward(ctx, x: np.ndarray) -> np.ndarray:
        return x * 2.0

    def backward(ctx, grad_out: tg.Tensor) -> tg.Tensor:
        return grad_out * 2.0


class _Cube(tg.Function):
    """y = x^3;   dL/dx = 3 x^2 dL/dy;   dy = 3 x^2 dx"""

    def forward(ctx, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return x**3

    def backward(ctx, grad_out: tg.Tensor) -> tg.Tensor:
        (x,) = ctx.saved_tensors
        return grad_out * x * x * 3.0

    def jvp(ctx, dx: tg.Tensor) -> tg.Tensor:
        (x,) = ctx.saved_tensors
        return dx * x * x * 3.0


def test_a_function_without_jvp_is_named_in_the_error() -> None:
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(tg.GradientError, match="_NoRule defines no jvp"):
        push_tangents([_NoRule.apply(x).sum()], [x], [np.ones((1, 2))])


def test_a_users_function_with_a_jvp_rule() -> None:
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    (dy,) = push_tangents([_Cube.apply(x)], [x], [np.eye(2)])
    np.testing.assert_allclose(dy.data, np.diag([3.0, 12.0]))


def test_a_tangent_of_the_wrong_shape_is_rejected() -> None:
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(tg.ShapeError, match=r"tangent 0 has shape \(2,\)"):
        push_tangents([x.exp()], [x], [np.ones(2)])


class _WrongShape(tg.Function):
    def forward(ctx, x: np.ndarray) -> np.ndarray:
        return x + 1.0

    def backward(ctx, grad_out: tg.Tensor) -> tg.Tensor:
        return grad_out

    def jvp(ctx, dx: tg.Tensor) -> tg.Tensor:
        return dx.sum()


def test_a_jvp_returning_the_wrong_shape_is_named() -> None:
    x = tg.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(tg.GradientError, match=r"_WrongShape.jvp returned a tangent of shape \(\)"):
        push_tangents([_WrongShape.apply(x)], [x], [np.ones((1, 2))])


@pytest.mark.parametrize(
    "index",
    [
        (np.array([0, 1, 1]), slice(None), np.array([1, 2, 0])),  # arrays apart: numpy puts their axis first
        (0, slice(None), np.array([[3, 1], [0, 0]])),  # an int beside an array counts as an array index
        (slice(None), np.array([2, 0]), np.array([1, 1])),  # arrays together: their axis stays in place
    ],
)
def test_getitem_and_scatteradd_tangents_with_any_advanced_index(index: Any) -> None:
    from tinygrad_rnn.core import ops

    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.normal(size=(2, 3, 4)), requires_grad=True)
    directions = rng.normal(size=(3, 2, 3, 4))
    (dy,) = push_tangents([x[index]], [x], [directions])
    np.testing.assert_array_equal(dy.data, np.stack([d[index] for d in directions]))
    picked = tg.Tensor(rng.normal(size=x.data[index].shape), requires_grad=True)
    scattered = ops.ScatterAdd.apply(picked, shape=(2, 3, 4), index=index)
    moves = rng.normal(size=(3, *picked.shape))
    (ds,) = push_tangents([scattered], [picked], [moves])
    expected = [ops.ScatterAdd.apply(m, shape=(2, 3, 4), index=index) for m in moves]
    np.testing.assert_array_equal(ds.data, np.stack(expected))
