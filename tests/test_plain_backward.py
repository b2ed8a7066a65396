"""Tests of the plain (first-order) backward pass: gradients travel between nodes as bare ndarrays.

What this file pins down: which VJPs see ndarrays and which see Tensors, in
each mode; that `Function.apply` on plain arrays is just `forward`; that
adding gradient contributions in place never writes an array someone else
holds (the caller's seed, an array Add handed to two inputs, a hook's
Tensor); the shared token that keeps saved leaf arrays read-only; and
MatMul's addend. Oracles are numpy formulas written next to each test, or
float64 central differences (gradcheck).
"""

from __future__ import annotations

import gc
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn as tg
from tinygrad_rnn import Function, ShapeError, Tensor
from tinygrad_rnn.checks.gradcheck import gradcheck, gradgradcheck
from tinygrad_rnn.checks.testing import arrays, broadcastable_shapes, shapes
from tinygrad_rnn.core import engine, ops
from tinygrad_rnn.nn.functional import linear

RNG = np.random.default_rng(0)


def leaf(shape: tuple[int, ...] = (2, 3)) -> Tensor:
    return Tensor(RNG.standard_normal(shape), requires_grad=True)


def sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """numpy's broadcasting undone: g summed over the axes along which an array of `shape` was copied."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


# ---------------------------------------------------------------- what a user's VJP receives


class MulAddOnArrays(Function):
    """z = x * y + x;   dL/dx = dL/dz * (y + 1),   dL/dy = dL/dz * x   (operators only: flagged)"""

    backward_on_arrays = True
    seen: ClassVar[list[tuple[Any, ...]]] = []  # (grad_out, *saved) as the VJP received them

    def forward(ctx, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x, y)
        return x * y + x

    def backward(ctx, grad_out: Any) -> tuple[Any, Any]:
        x, y = ctx.saved_tensors
        MulAddOnArrays.seen.append((grad_out, x, y))
        return grad_out * (y + 1.0), grad_out * x


def test_a_flagged_vjp_gets_the_forward_arrays_in_a_plain_pass_and_tensors_under_create_graph() -> None:
    x, y = leaf(), leaf()
    MulAddOnArrays.seen.clear()
    MulAddOnArrays.apply(x, y).sum().backward()
    ((grad_out, saved_x, saved_y),) = MulAddOnArrays.seen
    assert type(grad_out) is np.ndarray
    assert saved_x is x.data and saved_y is y.data  # the very arrays forward saw, not copies or wrappers
    np.testing.assert_array_equal(x.grad, y.data + 1.0)
    np.testing.assert_array_equal(y.grad, x.data)

    MulAddOnArrays.seen.clear()
    gx, gy = tg.grad(MulAddOnArrays.apply(x, y).sum(), [x, y], create_graph=True)
    ((grad_out, saved_x, saved_y),) = MulAddOnArrays.seen
    assert isinstance(grad_out, Tensor)
    assert saved_x is x and saved_y is y  # the live inputs, so the VJP is recorded through them
    assert gx is not None and gy is not None
    assert gx.grad_fn is not None  # the first derivative has a graph of its own
    np.testing.assert_array_equal(gy.data, x.data)
    (hxy,) = tg.grad(gx.sum(), y)  # d/dy sum(y + 1) = 1
    assert hxy is not None
    np.testing.assert_array_equal(hxy.data, np.ones_like(y.data))


def test_gradcheck_and_gradgradcheck_run_a_flagged_vjp_in_both_modes() -> None:
    MulAddOnArrays.seen.clear()
    assert gradcheck(MulAddOnArrays.apply, (leaf(), leaf()))
    assert gradgradcheck(MulAddOnArrays.apply, (leaf(), leaf()))
    kinds = {type(grad_out) for grad_out, *_ in MulAddOnArrays.seen}
    assert kinds == {np.ndarray, Tensor}


class CubeLeavingTensors(Function):
    """y = x³ with a VJP that calls np.asarray: right on arrays, but a constant under create_graph."""

    backward_on_arrays = True

    def forward(ctx, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return x**3

    def backward(ctx, grad_out: Any) -> np.ndarray:
        (x,) = ctx.saved_tensors
        return np.asarray(grad_out) * 3.0 * np.asarray(x) ** 2


def test_gradgradcheck_catches_a_flagged_vjp_that_only_works_on_arrays() -> None:
    x = leaf((3,))
    assert gradcheck(CubeLeavingTensors.apply, (x,))  # first order is right in the plain pass
    with pytest.raises(tg.GradcheckError, match="gradgradcheck"):
        gradgradcheck(CubeLeavingTensors.apply, (x,))


class SoftplusWithTensorMethods(Function):
    """y = log(1 + exp(x));   dL/dx = dL/dy * exp(x) * sigmoid(-x)   (Tensor methods: not flagged)"""

    seen: ClassVar[list[tuple[Any, Any]]] = []

    def forward(ctx, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.logaddexp(0.0, x)

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        SoftplusWithTensorMethods.seen.append((grad_out, x))
        return grad_out * x.exp() * (-x).sigmoid()


def test_an_unflagged_vjp_gets_tensors_in_a_plain_pass() -> None:
    x = Tensor([-3.0, 0.0, 0.5, 4.0], requires_grad=True)
    SoftplusWithTensorMethods.seen.clear()
    (SoftplusWithTensorMethods.apply(x) * 2.0).sum().backward()
    ((grad_out, saved_x),) = SoftplusWithTensorMethods.seen
    assert isinstance(grad_out, Tensor) and isinstance(saved_x, Tensor)
    np.testing.assert_allclose(x.grad, 2.0 / (1.0 + np.exp(-x.data)), rtol=1e-14)


class SplitInTwo(Function):
    """(a, b) = (2x, x²);   dL/dx = 2 dL/da + 2x dL/db"""

    seen: ClassVar[list[tuple[Any, Any]]] = []

    def forward(ctx, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ctx.save_for_backward(x)
        return 2.0 * x, x * x

    def backward(ctx, *grad_outs: Any) -> Any:
        grad_a, grad_b = grad_outs
        (x,) = ctx.saved_tensors
        type(ctx).seen.append((grad_a, grad_b))
        return grad_a * 2.0 + grad_b * x * 2.0


class SplitInTwoOnArrays(SplitInTwo):
    backward_on_arrays = True
    seen: ClassVar[list[tuple[Any, Any]]] = []


@pytest.mark.parametrize("create_graph", [False, True], ids=["plain", "create_graph"])
@pytest.mark.parametrize("fn", [SplitInTwo, SplitInTwoOnArrays], ids=["unflagged", "flagged"])
def test_an_output_no_gradient_reached_arrives_as_zeros_of_the_mode_s_kind(
    fn: type[SplitInTwo], create_graph: bool
) -> None:
    x = Tensor([1.0, -2.0, 3.0], requires_grad=True)
    fn.seen.clear()
    _, b = fn.apply(x)
    (gx,) = tg.grad(b.sum(), x, create_graph=create_graph)
    ((grad_a, grad_b),) = fn.seen
    on_arrays = fn.backward_on_arrays and not create_graph
    kind = np.ndarray if on_arrays else Tensor
    assert type(grad_a) is kind and type(grad_b) is kind
    np.testing.assert_array_equal(np.asarray(grad_a), np.zeros(3))
    assert gx is not None
    np.testing.assert_array_equal(gx.data, 2.0 * x.data)


# ---------------------------------------------------------------- Function.apply on plain arrays


def test_apply_on_plain_arrays_is_just_forward_and_records_nothing() -> None:
    recorded: list[Function] = []
    a = np.array([0.5, -1.0])
    with engine.observe(forward=lambda node, out: recorded.append(node)):
        y = ops.Exp.apply(a)
        pair = SplitInTwo.apply(a)
        z = ops.MatMul.apply(np.ones((2, 3)), np.ones((3, 2)), a)
    assert type(y) is np.ndarray and type(z) is np.ndarray
    assert type(pair) is tuple and all(type(p) is np.ndarray for p in pair)
    np.testing.assert_array_equal(y, np.exp(a))
    np.testing.assert_array_equal(z, np.full((2, 2), 3.0) + a)
    assert recorded == []


# The VJPs call some ops as `_op(Op, np.fn, ...)`: on arrays the bare numpy call, on Tensors the recorded op.
# A plain pass takes the first road and create_graph=True the second; their first-order gradients must agree
# bit for bit, or a shortcut computes something else than the op it stands for.
_SHORTCUT_USERS = {
    "sum": lambda x, y: (x * y).sum(axis=0) * x.sum(),  # Sum's VJP broadcasts back (BroadcastTo)
    "logsumexp": lambda x, y: x.logsumexp(axis=-1) * y.sum(),  # Exp
    "log_softmax": lambda x, y: x.log_softmax(axis=-1) * y,  # Exp
    "permute": lambda x, y: x.permute(*reversed(range(x.ndim))) * y.permute(*reversed(range(y.ndim))),
    "pow": lambda x, y: x.abs() ** y,  # Log, and the masks at x = 0 (skipped where no element is 0)
}


@settings(max_examples=15)
@given(st.sampled_from(sorted(_SHORTCUT_USERS)), shapes(min_dims=1, max_dims=3), st.booleans(), st.data())
def test_vjp_shortcuts_on_arrays_give_the_bits_of_the_ops_they_stand_for(
    name: str, shape: tuple[int, ...], with_zeros: bool, data: st.DataObject
) -> None:
    values = [data.draw(arrays(shape), label=f"input {i}") for i in range(2)]
    if with_zeros:  # pow's masks: 0 ** 0 and 0 ** y > 0 both occur
        for v in values:
            v.flat[::2] = 0.0
    fn = _SHORTCUT_USERS[name]
    plain = [Tensor(v.copy(), requires_grad=True) for v in values]
    recorded = [Tensor(v.copy(), requires_grad=True) for v in values]
    with np.errstate(all="ignore"):
        first = tg.grad(fn(*plain).sum(), plain)
        again = tg.grad(fn(*recorded).sum(), recorded, create_graph=True)
    for g_plain, g_recorded in zip(first, again, strict=True):
        assert g_plain is not None and g_recorded is not None
        assert g_plain.dtype == g_recorded.dtype
        np.testing.assert_array_equal(g_plain.data, g_recorded.data, strict=True)


def test_where_any_is_the_identity_without_a_true_element_and_where_otherwise() -> None:
    y = np.array([[1.0, 0.0], [2.0, 3.0]])
    assert ops._where_any(np.zeros((2, 2), bool), np.array(9.0), y) is y
    mask = np.array([[False, True], [False, False]])
    np.testing.assert_array_equal(ops._where_any(mask, np.array(9.0), y), [[1.0, 9.0], [2.0, 3.0]])
    t = Tensor(y, requires_grad=True)
    assert ops._where_any(np.zeros((2, 2), bool), np.array(9.0), t) is t
    assert ops._where_any(mask, np.array(9.0), t)._node is not None  # on Tensors, a recorded Where


def test_apply_with_any_tensor_argument_returns_tensors() -> None:
    recorded: list[Function] = []
    a = np.array([0.5, -1.0])
    with engine.observe(forward=lambda node, out: recorded.append(node)):
        constant = ops.Mul.apply(a, Tensor([2.0, 2.0]))  # no input requires grad: a Tensor, no node
        x = Tensor([1.0, 3.0], requires_grad=True)
        product = ops.Mul.apply(a, x)
    assert isinstance(constant, Tensor) and constant.grad_fn is None
    assert isinstance(product, Tensor) and product.grad_fn is not None
    assert recorded == [product.grad_fn]
    product.sum().backward()
    np.testing.assert_array_equal(x.grad, a)


class ReadsNeedsInputGrad(Function):
    """z = x + y; forward looks at ctx.needs_input_grad, which a Function may do."""

    def forward(ctx, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        ctx.needed = ctx.needs_input_grad
        return x + y

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor]:
        return grad_out, grad_out


def test_a_forward_reading_needs_input_grad_works_on_plain_arrays() -> None:
    out = ReadsNeedsInputGrad.apply(np.ones(2), np.ones(2))
    np.testing.assert_array_equal(out, [2.0, 2.0])


# ---------------------------------------------------------------- adding contributions in place


@pytest.mark.parametrize("as_tensor", [False, True], ids=["ndarray seed", "Tensor seed"])
@pytest.mark.parametrize("via", ["backward", "grad"])
def test_the_seed_is_never_written(via: str, as_tensor: bool) -> None:
    x = leaf()
    y = x + x + x  # the seed reaches x three times: the first contribution *is* the seed array
    seed_array = RNG.standard_normal(y.shape)
    before = seed_array.copy()
    seed: Any = Tensor(seed_array) if as_tensor else seed_array
    if via == "backward":
        y.backward(seed)
        gx = x.grad
    else:
        (g,) = tg.grad(y, x, grad_outputs=seed)
        assert g is not None
        gx = g.data
    np.testing.assert_array_equal(seed_array, before)
    np.testing.assert_array_equal(gx, 3.0 * before)


def test_an_array_add_hands_to_two_inputs_is_not_written_by_a_later_contribution() -> None:
    a, b = leaf(), leaf()
    m = a * 2.0  # recorded first, so its VJP runs last: after Add has handed one array to both a and b
    r = (a + b) + m
    seed = RNG.standard_normal(r.shape)
    r.backward(Tensor(seed))
    np.testing.assert_array_equal(b.grad, seed)
    np.testing.assert_array_equal(a.grad, 3.0 * seed)


def test_a_weight_shared_by_30_matmuls_matches_central_differences() -> None:
    xs = [Tensor(RNG.standard_normal((2, 3))) for _ in range(30)]

    def loss(w: Tensor) -> Tensor:
        h = Tensor(np.zeros((2, 3)))
        for x in xs:  # an unrolled recurrence: w gets 30 contributions, h's gradient 2 per step
            h = (h @ w + x).tanh()
        return (h * h).sum()

    assert gradcheck(loss, (Tensor(RNG.standard_normal((3, 3)) * 0.5, requires_grad=True),))


def test_x_plus_x_and_more_uses_of_both_match_the_derivative() -> None:
    x = leaf((4,))
    y = x + x
    z = (y * x + y + x * 3.0 + y.tanh()) * y  # z = (2x² + 5x + tanh 2x) 2x
    z.sum().backward()
    v = x.data
    inner = 2 * v**2 + 5 * v + np.tanh(2 * v)
    expected = (4 * v + 5 + 2 * (1 - np.tanh(2 * v) ** 2)) * 2 * v + inner * 2
    np.testing.assert_allclose(x.grad, expected, rtol=1e-13)


def test_leaf_grads_are_owned_writable_and_share_no_memory() -> None:
    a, b = leaf(), leaf()
    h = a + b  # Add hands one array to a, b and h
    h.retain_grad()
    seed = Tensor(RNG.standard_normal(h.shape))
    h.backward(seed)
    grads = [a.grad, b.grad, h.grad]
    for g in grads:
        assert isinstance(g, Tensor) and g.data.flags.writeable
        assert not np.shares_memory(g.data, seed.data)
    for i, g in enumerate(grads):
        for other in grads[i + 1 :]:
            assert not np.shares_memory(g.data, other.data)
    a.grad += 1.0  # an optimizer may update its own .grad in place
    np.testing.assert_array_equal(b.grad, seed.data)


@settings(max_examples=25)
@given(broadcastable_shapes(2), st.integers(1, 5), st.data())
def test_k_uses_add_up_like_numpy(pair: tuple[tuple[int, ...], ...], k: int, data: st.DataObject) -> None:
    shape_x, shape_y = pair
    x = Tensor(data.draw(arrays(shape_x), label="x"), requires_grad=True)
    y = Tensor(data.draw(arrays(shape_y), label="y"), requires_grad=True)
    scales = data.draw(st.lists(st.floats(-2, 2), min_size=k, max_size=k), label="scales")
    out = x + y
    for c in scales:  # each term hands one array to both of its inputs (Add), then adds more uses
        out = out + (x * c + y)
    seed = data.draw(arrays(out.shape), label="seed")
    out.backward(seed)
    np.testing.assert_allclose(x.grad, sum_to(seed * (1.0 + sum(scales)), shape_x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y.grad, sum_to(seed * (k + 1.0), shape_y), rtol=1e-12, atol=1e-12)


@settings(max_examples=20)
@given(shapes(max_dims=3), st.integers(2, 6))
def test_a_tensor_summed_k_times_with_itself_gets_k(shape: tuple[int, ...], k: int) -> None:
    x = Tensor(np.ones(shape), requires_grad=True)
    total = x
    for _ in range(k - 1):
        total = total + x
    (g,) = tg.grad(total.sum(), x)
    assert g is not None and g.shape == shape
    np.testing.assert_array_equal(g.data, np.full(shape, float(k)))


# ---------------------------------------------------------------- hooks, retain_grad, observers


def test_a_hook_gets_a_tensor_whose_values_stay_put_and_its_returned_tensor_replaces_the_gradient() -> None:
    a, b = leaf((3,)), leaf((3,))
    m = a * 2.0  # as above: a gets a later contribution after Add handed h's gradient to a and b
    h = a + b
    kept: list[Any] = []

    def keep_and_double(g: Any) -> Tensor:
        kept.append((g, np.array(g.data, copy=True)))
        return g * 2.0

    h.register_hook(keep_and_double)
    (h * 3.0 + m).sum().backward()
    ((g, values),) = kept
    assert isinstance(g, Tensor)
    np.testing.assert_array_equal(g.data, values)  # nothing wrote into the array the hook holds
    np.testing.assert_array_equal(values, np.full(3, 3.0))
    np.testing.assert_array_equal(b.grad, np.full(3, 6.0))  # the doubled gradient went on
    np.testing.assert_array_equal(a.grad, np.full(3, 8.0))


def test_retain_grad_on_a_non_leaf_gives_a_tensor_over_an_owned_array() -> None:
    x = leaf((3,))
    h = x * 2.0
    h.retain_grad()
    (h * h + h).sum().backward()
    assert isinstance(h.grad, Tensor) and h.grad.data.flags.writeable and h.grad.data.flags.owndata
    np.testing.assert_allclose(h.grad, 2 * h.data + 1, rtol=1e-15)


def test_backward_observers_get_tensors_in_a_plain_pass() -> None:
    seen: list[tuple[str, tuple[Any, ...], tuple[Any, ...]]] = []
    x, w = leaf((2, 3)), leaf((3, 3))
    loss = (x @ w).tanh().sum()
    with engine.observe(backward=lambda node, outs, ins: seen.append((node.name, outs, ins))):
        loss.backward()
    assert [name for name, _, _ in seen] == ["sum", "tanh", "matmul"]
    for _, outs, ins in seen:
        assert all(isinstance(g, Tensor) for g in outs)
        assert all(g is None or isinstance(g, Tensor) for g in ins)


# ---------------------------------------------------------------- saved leaves stay read-only (one shared token)


def _products(w: Tensor, n: int) -> Tensor:
    """n matmul nodes that each saved w's array."""
    x = Tensor(np.ones((1, 3)))
    return sum((x @ w for _ in range(n)), start=Tensor(np.zeros((1, 3)))).sum()


@pytest.mark.parametrize("first", [0, 1], ids=["earlier graph first", "later graph first"])
def test_a_weight_saved_by_two_graphs_stays_read_only_until_both_are_used(first: int) -> None:
    w = Tensor(np.eye(3), requires_grad=True)
    losses = [_products(w, 15), _products(w, 15)]  # 30 nodes hold w's one token
    assert not w.data.flags.writeable
    losses[first].backward()
    with pytest.raises(ValueError, match="read-only"):
        w.data[0, 0] = 5.0  # the other graph still needs the values it saw
    losses[1 - first].backward()
    assert w.data.flags.writeable
    np.testing.assert_array_equal(w.grad, np.full((3, 3), 30.0))


def test_backward_releases_the_weight_even_while_the_nodes_that_saved_it_live_on() -> None:
    w = Tensor(np.eye(3), requires_grad=True)
    zs = [Tensor(np.ones((1, 3))) @ w for _ in range(5)]  # kept, as a study of each step would keep them
    sum((z.tanh().sum() for z in zs), start=Tensor(0.0)).backward()
    assert all(z.grad_fn is not None for z in zs)  # every matmul node that saved w is still alive...
    w.data[0, 0] = 5.0  # ...but backward released them, and with them the token


def test_a_retained_graph_keeps_the_weight_read_only_until_it_is_dropped() -> None:
    w = Tensor(np.eye(3), requires_grad=True)
    loss = _products(w, 5)
    loss.backward(retain_graph=True)
    assert not w.data.flags.writeable
    del loss
    assert w.data.flags.writeable


def test_dropping_a_graph_without_backward_releases_the_weight_by_reference_counting() -> None:
    w = Tensor(np.eye(3), requires_grad=True)
    gc.collect()
    gc.disable()  # no cycle collector: only reference counting can release the token
    try:
        h = Tensor(np.ones((2, 3)))
        for _ in range(10):
            h = (h @ w).tanh() * w[0]  # matmul, mul and getitem nodes; mul saved a slice, not w's array
        pieces = h.split(1, axis=0)  # a node with several outputs
        loss = (pieces[0] * pieces[1]).sum()
        assert not w.data.flags.writeable
        del h, pieces, loss
        assert w.data.flags.writeable
    finally:
        gc.enable()


def test_an_array_the_user_made_read_only_stays_read_only() -> None:
    w = Tensor(np.eye(3), requires_grad=True)
    w.data.flags.writeable = False
    _products(w, 3).backward()
    assert not w.data.flags.writeable
    _products(w, 3)  # a graph dropped without backward
    assert not w.data.flags.writeable
    np.testing.assert_array_equal(w.grad, np.full((3, 3), 3.0))


def test_intermediates_are_read_only_for_good_and_grads_stay_writable() -> None:
    w = Tensor(np.eye(3), requires_grad=True)
    h = Tensor(np.ones((1, 3))) @ w
    loss = (h * h).sum()  # mul saved h's array: a recorded output, read-only from birth
    assert not h.data.flags.writeable
    loss.backward()
    assert not h.data.flags.writeable  # no token: it is never made writable again
    assert w.data.flags.writeable and w.grad.data.flags.writeable


# ---------------------------------------------------------------- matmul with an addend (gemm's C)


@pytest.mark.parametrize("c_shape", [(4,), (1, 4), (), (2, 1), (2, 4)], ids=str)
def test_matmul_addend_broadcasts_to_the_product(c_shape: tuple[int, ...]) -> None:
    a, b, c = leaf((2, 3)), leaf((3, 4)), leaf(c_shape)
    z = ops.MatMul.apply(a, b, c)
    np.testing.assert_allclose(z.data, a.data @ b.data + c.data, rtol=1e-15)
    g = RNG.standard_normal(z.shape)
    z.backward(g)
    np.testing.assert_allclose(a.grad, g @ b.data.T, rtol=1e-14)
    np.testing.assert_allclose(b.grad, a.data.T @ g, rtol=1e-14)
    np.testing.assert_allclose(c.grad, sum_to(g, c_shape), rtol=1e-14)
    assert c.grad.shape == c_shape


def test_matmul_addend_that_does_not_broadcast_names_matmul_and_both_shapes() -> None:
    with pytest.raises(ShapeError, match=r"^matmul.*cannot broadcast shapes \(2, 4\) and \(3,\)"):
        ops.MatMul.apply(leaf((2, 3)), leaf((3, 4)), leaf((3,)))


@pytest.mark.parametrize(
    "shapes", [((2, 3), (3, 4), (5, 2, 4)), ((3,), (3, 4), (5, 4)), ((1, 2, 3), (3, 4), (5, 2, 4))], ids=str
)
def test_matmul_addend_that_adds_batch_axes_to_the_product(shapes: tuple[tuple[int, ...], ...]) -> None:
    # forward accepts it (numpy broadcasting), so backward must too
    assert gradcheck(lambda a, b, c: ops.MatMul.apply(a, b, c), tuple(leaf(s) for s in shapes))


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_is_one_matmul_node(with_bias: bool) -> None:
    x, weight, bias = leaf((5, 3)), leaf((4, 3)), leaf((4,))
    out = linear(x, weight, bias if with_bias else None)
    assert [t.grad_fn.name for t in engine.topological_order([out])] == ["matmul"]
    expected = x.data @ weight.data.T + (bias.data if with_bias else 0.0)
    np.testing.assert_allclose(out.data, expected, rtol=1e-14)
