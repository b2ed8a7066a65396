"""Tests of the tape and the backward walk: seeds, accumulation, freeing, grad mode, higher order.

Gradients are compared with values derived by hand (written next to each test)
or with an independent oracle: forward-mode dual numbers for random graphs, and
exact integer arithmetic for broadcasting. Everything is float64 unless the test
is about dtypes.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rnn as tg
from tinygrad_rnn import DTypeError, GradientError, Tensor
from tinygrad_rnn.core import ops


def leaf(*values: float) -> Tensor:
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True)


# ---------------------------------------------------------------- the seed


def test_scalar_root_is_seeded_with_one() -> None:
    x = leaf(3.0)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0])


def test_single_element_root_of_any_rank_is_seeded_with_one() -> None:
    x = Tensor(np.array([[2.0]]), requires_grad=True)
    (x * x * x).backward()
    np.testing.assert_array_equal(x.grad, [[12.0]])


def test_non_scalar_root_without_grad_is_a_clear_error() -> None:
    x = leaf(1.0, 2.0)
    with pytest.raises(GradientError, match=r"backward: the tensor has shape \(2,\).*Pass grad="):
        (x * 2.0).backward()


def test_non_scalar_root_with_grad_computes_a_vjp() -> None:
    x = leaf(1.0, 2.0)
    (x * x).backward(grad=np.array([10.0, 100.0]))
    np.testing.assert_array_equal(x.grad, [20.0, 400.0])


def test_grad_of_the_wrong_shape_names_both_shapes() -> None:
    x = leaf(1.0, 2.0)
    with pytest.raises(GradientError, match=r"grad has shape \(3,\) but the tensor has shape \(2,\)"):
        (x * x).backward(grad=np.ones(3))


def test_integer_grad_is_a_dtype_error() -> None:
    x = leaf(1.0, 2.0)
    with pytest.raises(DTypeError, match="grad must be floating point"):
        (x * x).backward(grad=Tensor(np.array([1, 2])))


def test_backward_on_a_tensor_without_graph_is_a_clear_error() -> None:
    with pytest.raises(GradientError, match=r"shape \(\) does not require grad"):
        Tensor(2.0).backward()


def test_backward_on_a_leaf_sets_its_own_grad() -> None:
    x = leaf(5.0)
    x.backward()
    np.testing.assert_array_equal(x.grad, [1.0])


# ---------------------------------------------------------------- fan-out accumulation


def test_reuse_accumulates_a_plus_a() -> None:
    a = Tensor(2.0, requires_grad=True)
    b = a + a
    c = b + b  # c = 4a
    c.backward()
    assert a.grad == 4.0


def test_diamond() -> None:
    #     x
    #   /   \
    #  u=x²  v=3x
    #   \   /
    #   w = u * v = 3x³      dw/dx = 9x²
    x = Tensor(2.0, requires_grad=True)
    u = x * x
    v = x * 3.0
    (u * v).backward()
    assert x.grad == 36.0


def test_leaf_used_in_two_roots_of_one_expression() -> None:
    x = leaf(1.0, -2.0)
    y = (x * x).sum() + (x * 5.0).sum() + x.tanh().sum()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 5.0 + (1 - np.tanh(x.data) ** 2), rtol=1e-15)


@dataclass(frozen=True)
class Step:
    """One node of a random graph: op applied to two earlier values (by index)."""

    op: str
    left: int
    right: int


@st.composite
def random_graphs(draw: st.DrawFn) -> tuple[list[float], list[Step]]:
    n_leaves = draw(st.integers(1, 3), label="leaves")
    values = draw(st.lists(st.floats(-1.5, 1.5), min_size=n_leaves, max_size=n_leaves), label="leaf values")
    steps = []
    for i in range(draw(st.integers(1, 12), label="steps")):
        available = n_leaves + i
        # Small index ranges make reuse (fan-out) and diamonds common.
        steps.append(
            Step(
                draw(st.sampled_from(["add", "sub", "mul", "tanh"])),
                draw(st.integers(0, available - 1)),
                draw(st.integers(0, available - 1)),
            )
        )
    return values, steps


class Dual:
    """Forward-mode value a + b·ε: an oracle that shares no code with the reverse-mode engine."""

    def __init__(self, value: float, tangent: float) -> None:
        self.value, self.tangent = value, tangent

    def apply(self, op: str, other: Dual) -> Dual:
        if op == "add":
            return Dual(self.value + other.value, self.tangent + other.tangent)
        if op == "sub":
            return Dual(self.value - other.value, self.tangent - other.tangent)
        if op == "mul":
            return Dual(self.value * other.value, self.tangent * other.value + self.value * other.tangent)
        t = float(np.tanh(self.value))
        return Dual(t, (1 - t * t) * self.tangent)


def _run(values: list[Any], steps: list[Step]) -> Any:
    # Every node passes through tanh afterwards so values stay bounded however deep the graph.
    nodes = list(values)
    for s in steps:
        a, b = nodes[s.left], nodes[s.right]
        if isinstance(a, Dual):
            out = a.apply(s.op, b)
            nodes.append(out.apply("tanh", out) if s.op == "mul" else out)
        else:
            out = {"add": a + b, "sub": a - b, "mul": a * b, "tanh": a.tanh()}[s.op]
            nodes.append(out.tanh() if s.op == "mul" else out)
    return nodes[-1]


@given(random_graphs())
def test_random_graphs_match_forward_mode(graph: tuple[list[float], list[Step]]) -> None:
    values, steps = graph
    leaves = [Tensor(v, requires_grad=True) for v in values]
    root = _run(leaves, steps)
    if not root.requires_grad:  # only possible when the graph is a bare leaf; never for >= 1 step
        pytest.fail("the root of a recorded graph must require grad")
    root.backward()
    for i, x in enumerate(leaves):
        duals = [Dual(v, 1.0 if j == i else 0.0) for j, v in enumerate(values)]
        expected = _run(duals, steps).tangent
        got = 0.0 if x.grad is None else float(x.grad)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12), f"leaf {i}"


# ---------------------------------------------------------------- accumulation into .grad across calls


def test_grad_accumulates_across_backward_calls_and_zero_grad_resets() -> None:
    x = leaf(1.0, 2.0)
    for _ in range(3):
        (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, 3 * 2 * x.data)
    x.zero_grad()
    assert x.grad is None
    (x * 4.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])


@given(st.integers(1, 5), st.lists(st.floats(-3, 3), min_size=1, max_size=4))
def test_k_backward_calls_add_k_gradients(k: int, values: list[float]) -> None:
    x = Tensor(np.array(values), requires_grad=True)
    for _ in range(k):
        (x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad, k * 3 * x.data**2, rtol=1e-14)


def test_grad_is_an_owned_array_not_a_view_of_a_broadcast() -> None:
    x = Tensor(np.ones((1, 3)), requires_grad=True)
    (x + np.zeros((4, 3))).sum().backward()
    assert x.grad.data.flags.writeable and x.grad.data.flags.owndata
    np.testing.assert_array_equal(x.grad, [[4.0, 4.0, 4.0]])


def test_non_leaf_grad_is_not_kept_unless_asked() -> None:
    x = leaf(1.0)
    h = x * 2.0
    (h * h).sum().backward()
    assert h.grad is None


# ---------------------------------------------------------------- broadcasting (summed back by the engine)


@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), st.data())
def test_broadcast_gradient_sums_over_the_copies(shapes: Any, data: st.DataObject) -> None:
    (shape_x, shape_y), _ = shapes
    # Integer values make every sum exact, so the oracle below is exact too.
    ints = hnp.arrays(np.float64, st.just(shape_x), elements=st.integers(-4, 4).map(float))
    x_data = data.draw(ints, label="x")
    y_data = data.draw(hnp.arrays(np.float64, st.just(shape_y), elements=st.integers(-4, 4).map(float)), label="y")
    x = Tensor(x_data, requires_grad=True)
    (x * Tensor(y_data)).sum().backward()
    assert x.grad.shape == shape_x
    # f is linear in x, so f(x + e_i) - f(x) is dL/dx_i exactly.
    base = np.sum(x_data * y_data)
    for i in np.ndindex(shape_x):
        bumped = x_data.copy()
        bumped[i] += 1.0
        assert x.grad[i] == np.sum(bumped * y_data) - base


# ---------------------------------------------------------------- retain_graph and freeing


def test_second_backward_through_a_freed_graph_is_a_clear_error() -> None:
    x = leaf(1.0, 2.0)
    y = (x * x).tanh().sum()
    y.backward()
    with pytest.raises(GradientError, match=r"backward through a graph a second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward_that_accumulates() -> None:
    x = leaf(1.0, 2.0)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, 2 * 2 * x.data)
    with pytest.raises(GradientError, match="second time"):
        y.backward()


def test_shared_subgraph_freed_by_one_root_cannot_serve_another() -> None:
    x = leaf(1.0)
    h = x * 3.0
    (h * 2.0).sum().backward()
    with pytest.raises(GradientError, match=r"^mul: trying to backward"):
        (h * 5.0).sum().backward()


DEEP_CHAIN = """
import sys
import numpy as np
import tinygrad_rnn as tg
sys.setrecursionlimit(200)  # any recursive walk of a 100,000-node graph would fail at once
x = tg.Tensor(np.array([0.5]), requires_grad=True)
y = x
for _ in range(100_000):
    y = y * 1.00001
y.sum().backward()
print(float(x.grad[0]))
del y  # freeing a long chain must not recurse either
"""


def test_100k_op_chain_backpropagates_with_a_tiny_recursion_limit() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DEEP_CHAIN)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # dy/dx = 1.00001 ** 100000 (about e); 100,000 roundings in float64 leave ~1e-11 relative error.
    assert float(done.stdout.strip()) == pytest.approx(1.00001**100_000, rel=1e-9)


@contextmanager
def gc_disabled() -> Iterator[None]:
    """With the cycle collector off, an object is freed only if nothing refers to it in a cycle."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _small_rnn(x: Tensor, w: Tensor, steps: int = 4) -> list[Tensor]:
    h = Tensor(np.zeros(3))
    hs = []
    for _ in range(steps):
        h = (h @ w + x).tanh().exp().sigmoid() / 2.0
        hs.append(h)
    return hs


def test_backward_then_del_frees_every_intermediate_without_the_gc() -> None:
    x = Tensor(np.linspace(-1, 1, 3), requires_grad=True)
    w = Tensor(np.eye(3) * 0.5, requires_grad=True)
    with gc_disabled():
        hs = _small_rnn(x, w)
        loss = (hs[-1] * hs[-1]).sum()
        tensors = [weakref.ref(h) for h in hs]
        arrays = [weakref.ref(h.data) for h in hs]
        nodes = [weakref.ref(h.grad_fn) for h in hs]
        del hs
        loss.backward()
        del loss
        assert [r() for r in tensors] == [None] * 4
        assert [r() for r in arrays] == [None] * 4
        assert [r() for r in nodes] == [None] * 4
    assert x.grad is not None and w.grad is not None


def test_forward_only_graph_is_freed_without_the_gc() -> None:
    x = Tensor(np.linspace(-1, 1, 3), requires_grad=True)
    w = Tensor(np.eye(3) * 0.5, requires_grad=True)
    with gc_disabled():
        hs = _small_rnn(x, w)
        loss = (hs[-1] * hs[-1]).sum()
        refs = [weakref.ref(t) for t in [*hs, loss]] + [weakref.ref(h.grad_fn) for h in hs]
        del hs, loss
        assert [r() for r in refs] == [None] * len(refs)


def test_retained_graph_is_freed_without_the_gc() -> None:
    x = Tensor(np.linspace(-1, 1, 3), requires_grad=True)
    w = Tensor(np.eye(3) * 0.5, requires_grad=True)
    with gc_disabled():
        hs = _small_rnn(x, w)
        loss = hs[-1].sum()
        refs = [weakref.ref(h) for h in hs]
        del hs
        loss.backward(retain_graph=True)
        loss.backward()
        del loss
        assert [r() for r in refs] == [None] * 4


def test_grad_with_create_graph_leaves_no_cycles() -> None:
    x = leaf(0.3, -0.2)
    with gc_disabled():
        y = (x * x * x).tanh().sum()
        (g,) = tg.grad(y, x, create_graph=True)
        (hv,) = tg.grad((g * g).sum(), x)
        refs = [weakref.ref(t) for t in (y, g)]
        del y, g
        assert [r() for r in refs] == [None, None]
    assert hv.shape == (2,)


def test_intermediates_are_released_during_the_backward_pass() -> None:
    # What makes long BPTT fit in memory: once a step's VJP has run, that step's tensors can go.
    x = leaf(0.1, 0.2, 0.3)
    first = x * 1.0
    chain = [first]
    for _ in range(6):
        chain.append(chain[-1].tanh())
    later = [weakref.ref(t) for t in chain[1:]]
    alive_when_first_is_reached: list[int] = []
    first.register_hook(lambda g: alive_when_first_is_reached.append(sum(r() is not None for r in later)))
    loss = chain[-1].sum()
    del chain
    with gc_disabled():
        loss.backward()
    assert alive_when_first_is_reached == [0]  # every later step was freed as soon as its VJP ran


# ---------------------------------------------------------------- grad mode


def test_no_grad_records_nothing() -> None:
    x = leaf(1.0)
    with tg.no_grad():
        assert not tg.is_grad_enabled()
        y = x * 2.0
    assert tg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    np.testing.assert_array_equal(y.data, [2.0])


def test_no_grad_as_decorator() -> None:
    @tg.no_grad()
    def double(t: Tensor) -> Tensor:
        assert not tg.is_grad_enabled()
        return t * 2.0

    out = double(leaf(1.0))
    assert not out.requires_grad
    assert tg.is_grad_enabled()


def test_no_grad_nests_and_restores_after_exceptions() -> None:
    mode = tg.no_grad()

    @mode
    def recurse(n: int) -> bool:
        if n == 0:
            raise KeyError("deep")
        return recurse(n - 1)

    with pytest.raises(KeyError):
        recurse(3)  # one decorator instance re-entered four times, left by an exception
    assert tg.is_grad_enabled()
    with tg.no_grad():
        with tg.no_grad():
            pass
        assert not tg.is_grad_enabled()
        with tg.enable_grad():
            assert (leaf(1.0) * 2.0).requires_grad
        with pytest.raises(ValueError):
            with tg.enable_grad():
                raise ValueError
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()


def test_detach_stops_the_gradient() -> None:
    x = leaf(2.0)
    y = x * x
    z = y.detach() * x + y  # d/dx = y + 2x = 4 + 4
    z.sum().backward()
    np.testing.assert_array_equal(x.grad, [8.0])


# ---------------------------------------------------------------- tg.grad


def test_grad_returns_one_gradient_per_input_and_leaves_grad_untouched() -> None:
    x, w = leaf(1.0, 2.0), leaf(3.0, -1.0)
    x.grad = np.array([100.0, 100.0])
    h = x * w
    h.retain_grad()
    y = (h * x).sum()  # w x²
    gx, gw = tg.grad(y, [x, w])
    assert isinstance(gx, Tensor) and isinstance(gw, Tensor)
    np.testing.assert_array_equal(gx.data, 2 * w.data * x.data)
    np.testing.assert_array_equal(gw.data, x.data**2)
    np.testing.assert_array_equal(x.grad, [100.0, 100.0])
    assert w.grad is None
    assert h.grad is None  # retain_grad() is for backward(); grad() touches no .grad


def test_grad_of_a_non_leaf_input() -> None:
    x = leaf(1.0, 2.0)
    h = x * 3.0
    (gh,) = tg.grad((h * h).sum(), h)
    np.testing.assert_array_equal(gh.data, 2 * h.data)


def test_grad_with_grad_outputs() -> None:
    x = leaf(1.0, 2.0)
    (g,) = tg.grad(x * x, x, grad_outputs=np.array([1.0, 10.0]))
    np.testing.assert_array_equal(g.data, [2.0, 40.0])
    a, b = leaf(1.0), leaf(2.0)
    ga, gb = tg.grad([a * 3.0, b * b], [a, b], grad_outputs=[Tensor([2.0]), None])
    assert ga is not None and gb is not None
    np.testing.assert_array_equal(ga.data, [6.0])
    np.testing.assert_array_equal(gb.data, [4.0])


def test_grad_allow_unused() -> None:
    x, unused = leaf(1.0), leaf(2.0)
    with pytest.raises(GradientError, match=r"grad: input 1 of shape \(1,\) was not used.*allow_unused=True"):
        tg.grad((x * x).sum(), [x, unused])
    gx, gu = tg.grad((x * x).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx is not None


def test_grad_errors() -> None:
    x = leaf(1.0, 2.0)
    with pytest.raises(GradientError, match=r"grad: an input of shape \(3,\) does not require grad"):
        tg.grad((x * x).sum(), Tensor(np.ones(3)))
    with pytest.raises(GradientError, match=r"grad: the tensor has shape \(2,\)"):
        tg.grad(x * x, x)
    with pytest.raises(GradientError, match="got 2 grad_outputs for 1 outputs"):
        tg.grad(x * x, x, grad_outputs=[np.ones(2), np.ones(2)])


def test_grad_frees_the_graph_unless_retained() -> None:
    x = leaf(1.0)
    y = (x * x).sum()
    tg.grad(y, x, retain_graph=True)
    tg.grad(y, x)
    with pytest.raises(GradientError, match="second time"):
        tg.grad(y, x)


# ---------------------------------------------------------------- higher order


def test_create_graph_makes_grad_a_differentiable_tensor() -> None:
    x = leaf(1.0, 2.0)
    (x * x * x).sum().backward(create_graph=True)
    assert isinstance(x.grad, Tensor) and x.grad.requires_grad
    np.testing.assert_array_equal(x.grad.data, 3 * x.data**2)
    (g2,) = tg.grad(x.grad.sum(), x)
    np.testing.assert_array_equal(g2.data, 6 * x.data)


def test_hessian_vector_product_of_a_cubic() -> None:
    # f(x) = ½ xᵀAx + Σ xᵢ³,  H = A + diag(6x),  Hv computed as d/dx <∇f, v>.
    rng = np.random.default_rng(1)
    m = rng.normal(size=(4, 4))
    a = m + m.T
    x0, v = rng.normal(size=4), rng.normal(size=4)
    x = Tensor(x0, requires_grad=True)
    f = 0.5 * (x @ Tensor(a) @ x) + (x**3).sum()
    (g,) = tg.grad(f, x, create_graph=True)
    np.testing.assert_allclose(g.data, a @ x0 + 3 * x0**2, rtol=1e-13)
    (hv,) = tg.grad((g * Tensor(v)).sum(), x)
    np.testing.assert_allclose(hv.data, (a + np.diag(6 * x0)) @ v, rtol=1e-12)


def test_gradient_penalty() -> None:
    # L = w·x + ||∇ₓ(w·x)||² = w·x + ||w||²  ⇒  dL/dw = x + 2w.
    x, w = leaf(1.0, 2.0), leaf(0.5, -3.0)
    out = (w * x).sum()
    (gx,) = tg.grad(out, x, create_graph=True)
    loss = out + (gx * gx).sum()
    loss.backward()
    np.testing.assert_allclose(w.grad, x.data + 2 * w.data, rtol=1e-15)


def test_third_derivative_of_tanh() -> None:
    x = leaf(0.4)
    (d1,) = tg.grad(x.tanh().sum(), x, create_graph=True)
    (d2,) = tg.grad(d1.sum(), x, create_graph=True)
    (d3,) = tg.grad(d2.sum(), x)
    t = np.tanh(0.4)
    np.testing.assert_allclose(d1.data, [1 - t**2], rtol=1e-14)
    np.testing.assert_allclose(d2.data, [-2 * t * (1 - t**2)], rtol=1e-14)
    np.testing.assert_allclose(d3.data, [(1 - t**2) * (6 * t**2 - 2)], rtol=1e-13)


# ---------------------------------------------------------------- retain_grad and hooks


def test_retain_grad_on_every_hidden_state_of_a_tanh_recurrence() -> None:
    # h_t = tanh(w h_{t-1} + x_t), L = h_T.  By hand: dL/dh_T = 1, dL/dh_{t-1} = dL/dh_t (1 - h_t²) w.
    w = Tensor(0.8, requires_grad=True)
    xs = [0.5, -0.3, 0.9, 0.1]
    h = Tensor(0.2)
    hs = []
    for x_t in xs:
        h = (w * h + x_t).tanh()
        h.retain_grad()
        hs.append(h)
    h.backward()
    values = [float(t.data) for t in hs]
    expected = [1.0]
    for t in range(len(xs) - 1, 0, -1):
        expected.insert(0, expected[0] * (1 - values[t] ** 2) * 0.8)
    np.testing.assert_allclose([float(t.grad) for t in hs], expected, rtol=1e-14)


def test_retain_grad_requires_grad() -> None:
    with pytest.raises(GradientError, match="retain_grad: the tensor does not require grad"):
        Tensor(1.0).retain_grad()


def test_hook_observes_the_gradient_once_accumulated() -> None:
    x = leaf(1.0, 2.0)
    h = x * 3.0
    seen: list[np.ndarray] = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))
    (h * h + h).sum().backward()  # h is used three times; the hook sees the total
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], 2 * h.data + 1)
    np.testing.assert_array_equal(x.grad, 3 * (2 * h.data + 1))


def test_hook_can_replace_the_gradient_and_can_be_removed() -> None:
    x = leaf(1.0, 2.0)
    h = x * 3.0
    handle = h.register_hook(lambda g: g * 0.0)
    h.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    handle.remove()
    x.zero_grad()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_hook_on_a_leaf_sees_the_total_and_its_replacement_is_stored() -> None:
    x = leaf(1.0, 2.0)
    seen: list[np.ndarray] = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    x.register_hook(lambda g: g * 10.0)
    (x * x + x).sum().backward()
    np.testing.assert_array_equal(seen[0], 2 * x.data + 1)
    np.testing.assert_array_equal(x.grad, 10 * (2 * x.data + 1))


@pytest.mark.parametrize("where", ["leaf", "non-leaf"])
def test_hook_that_changes_the_shape_is_blamed_by_name(where: str) -> None:
    def total(g: Tensor) -> Tensor:
        return g.sum()

    x = leaf(1.0, 2.0)
    target = x if where == "leaf" else x * 2.0
    target.register_hook(total)
    with pytest.raises(GradientError, match=r"register_hook: .*total returned a gradient of shape \(\) .* \(2,\)"):
        (target * target).sum().backward()
    assert x.grad is None


def test_hook_may_return_an_ndarray() -> None:
    x = leaf(1.0, 2.0)
    x.register_hook(lambda g: np.array([7.0, 8.0]))
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [7.0, 8.0])


def test_retained_grad_is_the_hooked_one() -> None:
    x = leaf(1.0)
    h = x * 2.0
    h.retain_grad()
    h.register_hook(lambda g: g * 5.0)
    h.sum().backward()
    np.testing.assert_array_equal(h.grad, [5.0])
    np.testing.assert_array_equal(x.grad, [10.0])


# ---------------------------------------------------------------- user-defined Functions


class Cube(tg.Function):
    """y = x³;   dL/dx = dL/dy · 3x²   (saves its input)"""

    def forward(ctx, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        ctx.power = 3  # any attribute on ctx survives until backward
        return x**3

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_out * ctx.power * x * x


class MyExp(tg.Function):
    """y = eˣ;   dL/dx = dL/dy · y   (saves its output)"""

    def forward(ctx, x: np.ndarray) -> np.ndarray:
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad_out * y


class ScaledSum(tg.Function):
    """z = a·x + y with a constant keyword a;  records which inputs need a gradient."""

    calls: ClassVar[list[tuple[bool, ...]]] = []

    def forward(ctx, x: np.ndarray, y: np.ndarray, *, a: float) -> np.ndarray:
        ctx.a = a
        ScaledSum.calls.append(ctx.needs_input_grad)
        return a * x + y

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None]:
        need_x, need_y = ctx.needs_input_grad
        return (grad_out * ctx.a if need_x else None), (grad_out if need_y else None)


def test_custom_function_first_order() -> None:
    x = leaf(1.0, -2.0)
    y = Cube.apply(x)
    assert isinstance(y, Tensor) and y.grad_fn is not None and y.grad_fn.name == "cube"
    np.testing.assert_array_equal(y.data, x.data**3)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, 3 * x.data**2)


@pytest.mark.parametrize("fn, second", [(Cube, lambda x: 6 * x), (MyExp, np.exp)], ids=["saved input", "saved output"])
def test_custom_function_is_twice_differentiable(fn: type[tg.Function], second: Callable[[Any], Any]) -> None:
    x = leaf(0.5, -1.0)
    (g,) = tg.grad(fn.apply(x).sum(), x, create_graph=True)
    (h,) = tg.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, second(x.data), rtol=1e-14)


def test_custom_function_needs_input_grad_and_keywords() -> None:
    ScaledSum.calls.clear()
    x, c = leaf(1.0, 2.0), Tensor([5.0, 5.0])
    z = ScaledSum.apply(x, c, a=4.0)
    assert ScaledSum.calls == [(True, False)]
    z.sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])
    np.testing.assert_array_equal(z.data, [9.0, 13.0])


def test_custom_function_without_grad_records_nothing() -> None:
    out = Cube.apply(Tensor([2.0]))
    assert out.grad_fn is None and not out.requires_grad
    with tg.no_grad():
        assert Cube.apply(leaf(2.0)).grad_fn is None


def test_backward_of_the_wrong_shape_names_the_failing_op_not_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    def bad_backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor]:
        return grad_out, Tensor(np.ones((3, 1)))

    monkeypatch.setattr(ops.Mul, "backward", bad_backward)
    x, w = Tensor(np.ones((3, 4)), requires_grad=True), Tensor(np.ones((3, 4)), requires_grad=True)
    with pytest.raises(
        GradientError, match=r"^Mul.backward returned a gradient of shape \(3, 1\) for input 1 of shape \(3, 4\)$"
    ):
        (x * w).tanh().sum().backward()


def test_backward_with_the_wrong_number_of_gradients() -> None:
    class Pair(tg.Function):
        def forward(ctx, x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return x + y

        def backward(ctx, grad_out: Tensor) -> Tensor:
            return grad_out

    with pytest.raises(GradientError, match=r"Pair.backward returned 1 gradient\(s\) for 2 input\(s\)"):
        Pair.apply(leaf(1.0), leaf(2.0)).sum().backward()


def test_backward_may_return_an_ndarray_of_broadcast_shape() -> None:
    class Double(tg.Function):
        def forward(ctx, x: np.ndarray) -> np.ndarray:
            return np.broadcast_to(2 * x, (4, *x.shape)).copy()

        def backward(ctx, grad_out: Tensor) -> np.ndarray:
            return 2 * grad_out.data  # shape (4, 2); the engine sums it to (2,)

    x = leaf(1.0, 2.0)
    Double.apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [8.0, 8.0])


# ---------------------------------------------------------------- rebinding parameters (an optimizer step)


def test_rebound_parameter_still_gets_the_forward_time_gradient() -> None:
    p = leaf(1.0, 2.0)
    loss = (p * p * p).sum()
    forward_time = p.data.copy()
    p.data = np.array([10.0, 20.0])  # what `p.data = p.data - lr * grad` does
    loss.backward()
    np.testing.assert_array_equal(p.grad, 3 * forward_time**2)


def test_rebound_parameter_with_create_graph_is_a_clear_error() -> None:
    p = leaf(1.0, 2.0)
    loss = (p * p).sum()
    p.data = np.array([10.0, 20.0])
    with pytest.raises(GradientError, match=r"mul: an input of shape \(2,\) was given new values.*forward pass again"):
        loss.backward(create_graph=True)


def test_set_grad_enabled_called_alone_switches_at_once_and_scopes_as_block_or_decorator() -> None:
    tg.set_grad_enabled(False)
    try:
        assert not tg.is_grad_enabled()
        x = tg.Tensor([1.0], requires_grad=True)
        assert (x * 2).grad_fn is None
    finally:
        tg.set_grad_enabled(True)
    assert tg.is_grad_enabled()
    with tg.set_grad_enabled(False):
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()

    @tg.set_grad_enabled(False)
    def inside() -> bool:
        return tg.is_grad_enabled()

    assert tg.is_grad_enabled(), "decorating must not switch the mode"
    assert inside() is False
    assert tg.is_grad_enabled()


class _TwoOutputs(tg.Function):
    """(y1, y2) = (2x, x^2);   dL/dx = 2 dL/dy1 + 2x dL/dy2"""

    def forward(ctx, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ctx.save_for_backward(x)
        return 2.0 * x, x * x

    def backward(ctx, grad_y1: tg.Tensor, grad_y2: tg.Tensor) -> tg.Tensor:
        (x,) = ctx.saved_tensors
        return grad_y1 * 2.0 + grad_y2 * x * 2.0


def test_a_user_function_with_several_outputs_gets_one_gradient_per_output() -> None:
    x = tg.Tensor([1.0, -2.0, 3.0], requires_grad=True)
    y1, y2 = _TwoOutputs.apply(x)
    assert y1.grad_fn is y2.grad_fn
    (y1 * 5.0 + y2).sum().backward()
    np.testing.assert_allclose(x.grad, 10.0 + 2.0 * x.data)


def test_an_output_no_gradient_reached_contributes_zeros() -> None:
    x = tg.Tensor([1.0, -2.0, 3.0], requires_grad=True)
    _, y2 = _TwoOutputs.apply(x)
    y2.sum().backward()  # no gradient reaches y1: its backward argument is zeros
    np.testing.assert_allclose(x.grad, 2.0 * x.data)
    assert tg.gradcheck(lambda t: _TwoOutputs.apply(t)[1], [tg.Tensor([0.5, 1.5], requires_grad=True)])
    assert tg.gradgradcheck(lambda t: _TwoOutputs.apply(t)[1], [tg.Tensor([0.5, 1.5], requires_grad=True)])


def test_grad_accepts_a_scalar_grad_output() -> None:
    x = tg.Tensor(2.0, requires_grad=True)
    (from_numpy_scalar,) = tg.grad(x * x, x, np.float64(3.0))
    (from_float,) = tg.grad(x * x, x, 3.0)
    assert from_numpy_scalar is not None and from_float is not None
    assert from_numpy_scalar.item() == from_float.item() == 12.0


def test_a_saved_leaf_is_read_only_only_while_a_graph_that_saved_it_is_alive() -> None:
    w = tg.Tensor([1.0, 2.0], requires_grad=True)
    first, second = (w * w).sum(), (w * w * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        w.data[0] = 5.0  # would silently change both gradients
    first.backward()
    with pytest.raises(ValueError, match="read-only"):
        w.data[0] = 5.0  # `second` still needs the values
    second.backward()
    w.data[0] = 5.0  # every graph that saved it is gone: the micrograd idiom works again
    assert w.data.tolist() == [5.0, 2.0]
    third = (w * w).sum()
    del third  # dropped without backward: collecting the graph also releases the array
    w.data -= 1.0
    assert w.data.tolist() == [4.0, 1.0]


def test_in_place_operators_update_under_no_grad_and_refuse_to_go_unrecorded() -> None:
    w = tg.Tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward()
    with tg.no_grad():
        w -= 0.25 * w.grad  # the PyTorch manual-SGD idiom
        w *= 2.0
    np.testing.assert_allclose(w.data, [1.0, 2.0])
    assert w.requires_grad and w.is_leaf
    with pytest.raises(tg.GradientError, match=r"-=: an in-place update .*no_grad"):
        w -= 1.0
    with tg.no_grad(), pytest.raises(tg.ShapeError, match=r"\+=: cannot update a tensor of shape \(2,\)"):
        w += np.ones(3)


# ---------------------------------------------------------------- what users see: .grad, hooks, errors (issues 12, 14)


def test_grad_is_a_tensor_after_a_plain_backward_and_zero_works() -> None:
    x = leaf(1.0, 2.0)
    (x * x).sum().backward()
    assert isinstance(x.grad, Tensor) and x.grad.grad_fn is None and not x.grad.requires_grad
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    assert x.grad.zero_() is x.grad
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
    (x * x).sum().backward()  # accumulates onto the zeroed gradient, as in PyTorch
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_zero_on_a_tensor_that_requires_grad_needs_no_grad() -> None:
    x = leaf(1.0, 2.0)
    with pytest.raises(GradientError, match=r"zero_: .*no_grad"):
        x.zero_()
    with tg.no_grad():
        x.zero_()
    np.testing.assert_array_equal(x.data, [0.0, 0.0])


def test_leaves_sharing_one_gradient_array_get_their_own_grad() -> None:
    a, b = leaf(1.0, 2.0), leaf(3.0, 4.0)
    (a + b).sum().backward()  # Add hands the same array to both inputs
    with tg.no_grad():
        a.grad.zero_()
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])


def test_register_hook_returns_a_handle_whose_remove_takes_the_hook_off() -> None:
    x = leaf(1.0, 2.0)
    calls: list[int] = []
    handle = x.register_hook(lambda g: calls.append(1))
    (x * 2.0).sum().backward()
    handle.remove()
    handle.remove()  # a second remove is harmless, as in PyTorch
    (x * 2.0).sum().backward()
    assert calls == [1]


def test_saved_tensors_without_save_for_backward_names_the_function() -> None:
    class NoSave(tg.Function):
        def forward(ctx, x: np.ndarray) -> np.ndarray:
            return x * 2.0

        def backward(ctx, grad_out: Tensor) -> Tensor:
            (_x,) = ctx.saved_tensors
            return grad_out * 2.0

    y = NoSave.apply(leaf(1.0))
    with pytest.raises(GradientError, match=r"NoSave\.backward reads ctx\.saved_tensors.*save_for_backward"):
        y.sum().backward()


@pytest.mark.parametrize(
    "bad", [1j, np.array([1j]), "one", np.array([None])], ids=["complex", "complex-array", "str", "none"]
)
def test_grad_outputs_that_are_not_real_numbers_are_refused(bad: Any) -> None:
    x = leaf(1.0)
    with pytest.raises(DTypeError, match="grad: grad_outputs must hold real numbers"):
        tg.grad(x * 2.0, x, grad_outputs=bad)


def test_complex_tensors_cannot_require_grad() -> None:
    with pytest.raises(DTypeError, match=r"requires_grad: complex tensors .*complex128"):
        Tensor(np.array([1 + 2j]), requires_grad=True)
    x = leaf(1.0, 2.0)
    with pytest.raises(DTypeError, match=r"cast: .*complex128.*cannot be differentiated"):
        x.astype(np.complex128)
    with tg.no_grad():  # nothing recorded: a complex result is fine
        assert x.astype(np.complex128).dtype == np.complex128


def test_a_write_into_a_saved_constant_leaf_is_refused_until_backward() -> None:
    # Issue 14's example: x does not require grad, but Mul saved its array for w's gradient.
    x = Tensor([3.0, 4.0])
    w = leaf(1.0, 2.0)
    y = (w * x).sum()
    with pytest.raises(ValueError, match="read-only"):
        x.numpy()[0] = 100.0
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 4.0])
    x.numpy()[0] = 100.0  # the graph is released: writable again


def test_the_engine_modules_import_tensor_only_for_annotations() -> None:
    # The import circle engine <-> tensor <-> ops is gone: only tensor.py imports the others at run time.
    import ast
    from pathlib import Path

    core = Path(tg.__file__).parent / "core"
    for name in ("mode.py", "function.py", "backward.py", "engine.py", "ops.py", "products.py"):
        tree = ast.parse((core / name).read_text())
        for stmt in tree.body:  # top level only: `if TYPE_CHECKING:` blocks are not run
            if isinstance(stmt, ast.ImportFrom):
                assert stmt.module not in ("tensor",), f"{name} imports tensor.py at run time"


def test_observe_is_a_public_hook_that_unsubscribes_on_the_way_out() -> None:
    from tinygrad_rnn.core import engine

    x = leaf(1.0, 2.0)
    seen: list[tuple[str, tuple[type, ...]]] = []
    with (
        pytest.raises(RuntimeError),
        engine.observe(
            backward=lambda node, outs, ins: seen.append((node.name, tuple(type(g) for g in (*outs, *ins))))
        ),
    ):
        (x * 3.0).sum().backward()
        raise RuntimeError
    assert seen == [("sum", (Tensor, Tensor)), ("mul", (Tensor, Tensor, type(None)))]
    assert engine.backward_observers == []


def test_a_numpy_operand_saved_for_backward_is_read_only_until_the_graph_is_released() -> None:
    w = leaf(1.0, 2.0)
    scale = np.array([3.0, 4.0])
    y = (w * scale).sum()  # Mul keeps `scale` itself, without a copy
    with pytest.raises(ValueError, match="read-only"):
        scale[0] = 100.0
    del y  # dropped without backward: the node is collected and the array is writable again
    gc.collect()
    scale[0] = 100.0
    (w * scale).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [100.0, 4.0])
