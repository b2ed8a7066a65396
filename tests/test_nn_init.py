"""nn.init and nn.Linear: where first values come from, and the readout layer.

Initialisers must rebind `.data` (never write into the old array), respect
their bounds, be reproducible from a seed, and give the documented structure
(orthogonal_: QᵀQ = I). Linear must match x Wᵀ + b over any leading axes,
with PyTorch's layout and default init, and its gradient must match the
closed form dL/dW = Σ gᵀ x.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_rnn.core.errors import ArgumentError, ShapeError
from tinygrad_rnn.core.tensor import Tensor
from tinygrad_rnn.nn.init import default_uniform_, make_rng, orthogonal_, uniform_, xavier_uniform_, zeros_
from tinygrad_rnn.nn.layers import Linear
from tinygrad_rnn.nn.module import Parameter


def examples(n: int) -> int:
    """n Hypothesis examples under the `ci` profile (30 by default), scaled for `dev` and `thorough`."""
    return max(1, n * settings().max_examples // 30)


def test_initialisers_rebind_data_and_never_write_into_the_old_array() -> None:
    for init in (
        lambda p: uniform_(p, -1, 1, rng=0),
        lambda p: xavier_uniform_(p, rng=0),
        lambda p: orthogonal_(p, rng=0),
        zeros_,
    ):
        original = np.full((3, 4), 7.0)
        p = Parameter(original)
        old = p.data
        assert init(p) is p
        assert p.data is not old and np.all(old == 7.0)
        assert p.shape == (3, 4) and p.dtype == np.float64


def test_initialisers_keep_the_parameter_dtype() -> None:
    p = Parameter(np.zeros((2, 2), dtype=np.float32))
    assert uniform_(p, rng=0).dtype == np.float32 and orthogonal_(p, rng=0).dtype == np.float32


def test_rng_convention_generator_seed_or_none() -> None:
    g = np.random.default_rng(5)
    assert make_rng(g) is g
    np.testing.assert_array_equal(make_rng(3).random(4), np.random.default_rng(3).random(4))
    assert not np.array_equal(make_rng(None).random(4), make_rng(None).random(4))
    with pytest.raises(TypeError, match="rng must be a numpy Generator, an int seed or None, got str"):
        make_rng("seed")  # type: ignore[arg-type]  # the wrong type is the point of the test


@settings(max_examples=examples(20))
@given(shape=st.tuples(st.integers(1, 30), st.integers(1, 30)), a=st.floats(-3, 0), width=st.floats(0.1, 3))
def test_uniform_stays_inside_its_bounds(shape: tuple[int, int], a: float, width: float) -> None:
    p = uniform_(Parameter(np.zeros(shape)), a, a + width, rng=0)
    assert p.data.min() >= a and p.data.max() <= a + width


def test_default_uniform_fills_every_parameter_from_one_stream() -> None:
    params = [Parameter(np.zeros((50, 40))), Parameter(np.zeros(50))]
    default_uniform_(params, fan=25, rng=1)
    values = np.concatenate([p.numpy().ravel() for p in params])
    assert np.abs(values).max() <= 0.2 and np.abs(values).max() > 0.19  # bound 1/sqrt(25), reached
    assert abs(values.std() - 0.2 / math.sqrt(3)) < 0.01  # U(-a, a) has std a / sqrt(3)
    assert not np.array_equal(params[0].numpy()[0], params[1].numpy())  # the stream advanced
    with pytest.raises(ArgumentError, match="fan must be at least 1"):
        default_uniform_(params, fan=0)


def test_xavier_uniform_bound_and_variance() -> None:
    p = xavier_uniform_(Parameter(np.zeros((200, 100))), gain=2.0, rng=0)
    bound = 2.0 * math.sqrt(6.0 / 300)
    assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.99 * bound
    assert abs(p.data.var() - 4.0 * 2.0 / 300) < 0.002  # gain^2 * 2 / (fan_in + fan_out)
    with pytest.raises(
        ShapeError, match=r"xavier_uniform_: needs a weight with at least 2 dimensions, got shape \(5,\)"
    ):
        xavier_uniform_(Parameter(np.zeros(5)))


@settings(max_examples=examples(20))
@given(rows=st.integers(1, 12), cols=st.integers(1, 12), gain=st.floats(0.5, 2.0), seed=st.integers(0, 1000))
def test_orthogonal_has_orthonormal_columns_or_rows(rows: int, cols: int, gain: float, seed: int) -> None:
    q = orthogonal_(Parameter(np.zeros((rows, cols))), gain=gain, rng=seed).numpy() / gain
    small = min(rows, cols)
    gram = q.T @ q if rows >= cols else q @ q.T
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)
    if rows == cols:  # all singular values 1: W h neither grows nor shrinks h
        np.testing.assert_allclose(np.linalg.svd(q, compute_uv=False), np.ones(rows), atol=1e-12)


def test_orthogonal_rejects_vectors() -> None:
    with pytest.raises(ShapeError, match=r"orthogonal_: needs a weight with at least 2 dimensions, got shape \(3,\)"):
        orthogonal_(Parameter(np.zeros(3)))


# ---------------------------------------------------------------- Linear


@settings(max_examples=examples(20))
@given(
    lead=st.lists(st.integers(1, 3), max_size=3),
    sizes=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    bias=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_linear_is_x_w_transpose_plus_b_over_leading_axes(
    lead: list[int], sizes: tuple[int, int], bias: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    n_in, n_out = sizes
    layer = Linear(n_in, n_out, bias=bias, rng=rng)
    assert layer.weight.shape == (n_out, n_in) and (layer.bias is None) == (not bias)
    x = Tensor(rng.standard_normal((*lead, n_in)), requires_grad=True)
    out = layer(x)
    b = layer.bias.numpy() if layer.bias is not None else 0.0
    # Another BLAS kernel may add the n_in terms in another order: allow rounding on the terms' scale,
    # which matters where they cancel.
    scale = (np.abs(x.numpy()) @ np.abs(layer.weight.numpy()).T).max()
    np.testing.assert_allclose(out.numpy(), x.numpy() @ layer.weight.numpy().T + b, rtol=1e-13, atol=1e-14 * scale)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    flat_g, flat_x = g.reshape(-1, n_out), x.numpy().reshape(-1, n_in)
    np.testing.assert_allclose(layer.weight.grad, flat_g.T @ flat_x, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(x.grad, g @ layer.weight.numpy(), rtol=1e-12, atol=1e-14)
    if layer.bias is not None:
        np.testing.assert_allclose(layer.bias.grad, flat_g.sum(axis=0), rtol=1e-12, atol=1e-14)


def test_linear_default_init_is_pytorchs() -> None:
    layer = Linear(16, 300, rng=0)
    for p in (layer.weight, layer.bias):
        assert p is not None
        assert np.abs(p.numpy()).max() <= 0.25 and np.abs(p.numpy()).max() > 0.24  # 1 / sqrt(in_features)
    np.testing.assert_array_equal(Linear(16, 300, rng=0).weight.numpy(), layer.weight.numpy())
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert repr(Linear(3, 2, bias=False)) == "Linear(in_features=3, out_features=2, bias=False)"


def test_linear_errors_name_the_layer_and_the_shape() -> None:
    with pytest.raises(
        ShapeError, match=r"Linear\(in_features=3, out_features=2, bias=True\): input has shape \(4, 5\)"
    ):
        Linear(3, 2, rng=0)(np.ones((4, 5)))
    with pytest.raises(ShapeError, match=r"input has shape \(\)"):
        Linear(3, 2, rng=0)(np.float64(1.0))
    with pytest.raises(ArgumentError, match="must be positive"):
        Linear(0, 2)


def test_a_tied_weight_is_saved_under_each_name_and_loads_into_an_untied_model() -> None:
    import tinygrad_rnn as tg

    class Tied(tg.nn.Module):
        def __init__(self, tie: bool) -> None:
            self.head = Linear(2, 2, rng=0)
            self.out = Parameter(np.zeros((2, 2)))
            if tie:
                self.out = self.head.weight

    tied, untied = Tied(tie=True), Tied(tie=False)
    assert len(tied.parameters()) == 2  # the optimizer sees the shared weight once
    state = tied.state_dict()
    assert list(state) == ["out", "head.weight", "head.bias"]  # own parameters, then children's (PyTorch's order)
    untied.load_state_dict(state)
    np.testing.assert_array_equal(untied.out.data, tied.head.weight.data)
