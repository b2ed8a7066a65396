"""RNN, LSTM and GRU layers and cells: PyTorch's equations, shapes and names; padded batches; clear errors.

Forward values are compared with a direct numpy transcription of PyTorch's
documented equations (written here, independently of the library). A padded
batch with `lengths` must give exactly what running each sequence alone
gives: outputs, final states and every gradient, to 1e-10. Gradients against
finite differences are in test_rnn_bptt.py; against hand-derived BPTT in
test_reference.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_rnn.core.errors import ShapeError
from tinygrad_rnn.core.tensor import Tensor
from tinygrad_rnn.nn.cells import RNNCellBase
from tinygrad_rnn.nn.kinds import CELL_KINDS
from tinygrad_rnn.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, pad_sequence

KINDS = list(CELL_KINDS)  # every registered cell kind is tested; a new kind needs only a NUMPY_STEPS entry


def examples(n: int) -> int:
    """n Hypothesis examples under the `ci` profile (30 by default), scaled for `dev` and `thorough`."""
    return max(1, n * settings().max_examples // 30)


# ---------------------------------------------------------------- PyTorch's equations in numpy


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def _rnn(act: Any) -> Any:
    def step(gi: np.ndarray, gh: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
        return (act(gi + gh),)

    return step


def _lstm(gi: np.ndarray, gh: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    i, f, g, o = np.split(gi + gh, 4, axis=-1)
    c = sigmoid(f) * state[1] + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def _gru(gi: np.ndarray, gh: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    i_r, i_z, i_n = np.split(gi, 3, axis=-1)
    h_r, h_z, h_n = np.split(gh, 3, axis=-1)
    r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    return ((1 - z) * n + z * state[0],)


# PyTorch's documented equations, written here independently of the library: gi = x W_ih^T + b_ih, gh = h W_hh^T + b_hh.
NUMPY_STEPS: dict[str, Any] = {
    "rnn_tanh": _rnn(np.tanh),
    "rnn_relu": _rnn(lambda a: np.maximum(a, 0.0)),
    "lstm": _lstm,
    "gru": _gru,
}


def numpy_step(kind: str, p: dict[str, np.ndarray], x: np.ndarray, state: tuple[np.ndarray, ...]) -> Any:
    """One step of PyTorch's RNN / LSTM / GRU as documented; p holds weight_ih, weight_hh, bias_ih, bias_hh."""
    gi = x @ p["weight_ih"].T + p["bias_ih"]
    gh = state[0] @ p["weight_hh"].T + p["bias_hh"]
    return NUMPY_STEPS[kind](gi, gh, state)


def layer_params(layer: Any, suffix: str) -> dict[str, np.ndarray]:
    rows = layer.kind.gates * layer.hidden_size
    return {
        name: getattr(layer, f"{name}{suffix}").numpy() if layer.bias or "weight" in name else np.zeros(rows)
        for name in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    }


def numpy_layer(kind: str, layer: Any, x: np.ndarray, states: tuple[np.ndarray, ...]) -> Any:
    """(output, final states) of a multi-layer network, x (T, B, D), each state (L, B, H): a direct loop."""
    finals = []
    inputs = x
    for k in range(layer.num_layers):
        p = layer_params(layer, f"_l{k}")
        state, outs = tuple(s[k] for s in states), []
        for t in range(x.shape[0]):
            state = numpy_step(kind, p, inputs[t], state)
            outs.append(state[0])
        inputs = np.stack(outs)
        finals.append(state)
    return inputs, tuple(np.stack([f[i] for f in finals]) for i in range(len(states)))


def make_layer(kind: str, *args: Any, **kwargs: Any) -> RNNBase:
    return RNNBase(kind, *args, **kwargs)


def make_cell(kind: str, *args: Any, **kwargs: Any) -> RNNCellBase:
    return RNNCellBase(kind, *args, **kwargs)


def n_states(kind: str) -> int:
    return len(CELL_KINDS[kind].state_names)


def as_hx(kind: str, states: Any) -> Any:
    """The state argument a layer or cell of this kind takes: one tensor, or a tuple (h, c, ...)."""
    if states is None:
        return None
    return tuple(states) if n_states(kind) > 1 else states[0]


def run(kind: str, layer: Any, x: Any, states: Any = None, lengths: Any = None) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Call a layer with the right state argument; returns (output, final states as a tuple)."""
    output, final = layer(x, as_hx(kind, states), lengths=lengths)
    return output, tuple(final) if n_states(kind) > 1 else (final,)


def test_every_registered_kind_has_a_numpy_transcription_and_a_public_home() -> None:
    assert set(KINDS) == set(NUMPY_STEPS)
    assert RNN(2, 3).kind is CELL_KINDS["rnn_tanh"] and RNN(2, 3, nonlinearity="relu").kind is CELL_KINDS["rnn_relu"]
    assert LSTM(2, 3).kind is CELL_KINDS["lstm"] and GRU(2, 3).kind is CELL_KINDS["gru"]
    assert RNNCell(2, 3, nonlinearity="relu").kind is CELL_KINDS["rnn_relu"]
    assert LSTMCell(2, 3).kind is CELL_KINDS["lstm"] and GRUCell(2, 3).kind is CELL_KINDS["gru"]
    for kind in KINDS:  # the generic classes name the public ones
        assert repr(make_layer(kind, 2, 3)).startswith(CELL_KINDS[kind].layer_name + "(2, 3")
        assert repr(make_cell(kind, 2, 3)).startswith(CELL_KINDS[kind].cell_name + "(2, 3")


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=examples(15))
@given(
    steps=st.integers(1, 6),
    batch=st.integers(1, 3),
    sizes=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    num_layers=st.integers(1, 3),
    bias=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_forward_matches_pytorch_equations(
    kind: str, steps: int, batch: int, sizes: tuple[int, int], num_layers: int, bias: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    d, h = sizes
    layer = make_layer(kind, d, h, num_layers=num_layers, bias=bias, rng=rng)
    x = rng.standard_normal((steps, batch, d))
    states = tuple(rng.standard_normal((num_layers, batch, h)) for _ in range(n_states(kind)))
    output, finals = run(kind, layer, x, states)
    expected_output, expected_finals = numpy_layer(kind, layer, x, states)
    np.testing.assert_allclose(output.numpy(), expected_output, rtol=1e-12, atol=1e-14)
    for got, want in zip(finals, expected_finals, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-14)


def test_relu_rnn_and_zero_initial_state_match_the_equations() -> None:
    rng = np.random.default_rng(0)
    layer = RNN(3, 4, num_layers=2, nonlinearity="relu", rng=rng)
    x = rng.standard_normal((5, 2, 3))
    output, h_n = layer(x)
    expected = numpy_layer("rnn_relu", layer, x, (np.zeros((2, 2, 4)),))
    np.testing.assert_allclose(output.numpy(), expected[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n.numpy(), expected[1][0], rtol=1e-12, atol=1e-14)
    assert (output.numpy() == 0).any() and (output.numpy() > 0).any()  # relu really clipped something


@pytest.mark.parametrize("kind", KINDS)
def test_cells_match_the_equations_batched_and_unbatched(kind: str) -> None:
    rng = np.random.default_rng(1)
    cell = make_cell(kind, 3, 2, rng=rng)
    p = {name: value for name, value in cell.state_dict().items()}
    x = rng.standard_normal((4, 3))
    states = tuple(rng.standard_normal((4, 2)) for _ in range(n_states(kind)))

    def as_tuple(result: Any) -> tuple[Tensor, ...]:
        return tuple(result) if n_states(kind) > 1 else (result,)

    got = as_tuple(cell(x, as_hx(kind, states)))
    for g, want in zip(got, numpy_step(kind, p, x, states), strict=True):
        np.testing.assert_allclose(g.numpy(), want, rtol=1e-13)
    single = as_tuple(cell(x[0], as_hx(kind, [s[0] for s in states])))
    assert single[0].shape == (2,)
    np.testing.assert_allclose(single[0].numpy(), got[0].numpy()[0], rtol=1e-13)
    default = as_tuple(cell(x))  # hx omitted: zeros
    zeros = tuple(np.zeros((4, 2)) for _ in states)
    np.testing.assert_allclose(default[0].numpy(), numpy_step(kind, p, x, zeros)[0], rtol=1e-13)


def test_rnn_cell_without_bias_and_with_relu() -> None:
    cell = RNNCell(2, 3, bias=False, nonlinearity="relu", rng=0)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh"]
    x = np.array([[1.0, -2.0]])
    np.testing.assert_allclose(cell(x).numpy(), np.maximum(x @ cell.weight_ih.numpy().T, 0.0))
    assert repr(cell) == "RNNCell(2, 3, bias=False, nonlinearity='relu')"


# ---------------------------------------------------------------- names, shapes, init


@pytest.mark.parametrize("kind", KINDS)
def test_parameter_names_and_shapes_are_pytorchs(kind: str) -> None:
    layer = make_layer(kind, 3, 5, num_layers=2, rng=0)
    g = CELL_KINDS[kind].gates * 5
    assert [(n, p.shape) for n, p in layer.named_parameters()] == [
        ("weight_ih_l0", (g, 3)), ("weight_hh_l0", (g, 5)), ("bias_ih_l0", (g,)), ("bias_hh_l0", (g,)),
        ("weight_ih_l1", (g, 5)), ("weight_hh_l1", (g, 5)), ("bias_ih_l1", (g,)), ("bias_hh_l1", (g,)),
    ]  # fmt: skip
    cell = make_cell(kind, 3, 5, rng=0)
    assert [(n, p.shape) for n, p in cell.named_parameters()] == [
        ("weight_ih", (g, 3)), ("weight_hh", (g, 5)), ("bias_ih", (g,)), ("bias_hh", (g,)),
    ]  # fmt: skip
    assert all(p.dtype == np.float64 and p.requires_grad for p in layer.parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_default_init_is_uniform_within_one_over_sqrt_hidden_and_seedable(kind: str) -> None:
    layer = make_layer(kind, 4, 16, num_layers=2, rng=7)
    values = np.concatenate([p.numpy().ravel() for p in layer.parameters()])
    assert np.abs(values).max() <= 0.25  # 1 / sqrt(16)
    assert np.abs(values).max() > 0.24 and abs(values.mean()) < 0.02  # spread over the whole interval
    same = make_layer(kind, 4, 16, num_layers=2, rng=7)
    other = make_layer(kind, 4, 16, num_layers=2, rng=8)
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, same.state_dict()[name])
        assert not np.array_equal(value, other.state_dict()[name])


def test_one_generator_initialises_several_layers_differently_but_reproducibly() -> None:
    first = [RNN(2, 3, rng=g).weight_hh_l0.numpy() for g in [np.random.default_rng(0)] * 2]
    again = [RNN(2, 3, rng=g).weight_hh_l0.numpy() for g in [np.random.default_rng(0)] * 2]
    assert not np.array_equal(first[0], first[1])  # the shared generator advanced
    np.testing.assert_array_equal(first[1], again[1])


def test_float32_layers_compute_in_float32() -> None:
    layer = GRU(2, 3, dtype=np.float32, rng=0)
    output, h_n = layer(np.ones((2, 1, 2), dtype=np.float32))
    assert output.dtype == np.float32 and h_n.dtype == np.float32


def test_repr_is_pytorchs() -> None:
    assert repr(RNN(3, 4)) == "RNN(3, 4)"
    assert repr(LSTM(3, 4, num_layers=2, batch_first=True)) == "LSTM(3, 4, num_layers=2, batch_first=True)"
    assert repr(RNN(3, 4, nonlinearity="relu", bias=False)) == "RNN(3, 4, bias=False, nonlinearity='relu')"
    assert repr(GRU(3, 4, num_layers=2, dropout=0.25, bidirectional=True)) == (
        "GRU(3, 4, num_layers=2, dropout=0.25, bidirectional=True)"
    )


# ---------------------------------------------------------------- layouts: unbatched, batch_first, T = 1


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_input_is_a_batch_of_one(kind: str) -> None:
    rng = np.random.default_rng(2)
    layer = make_layer(kind, 3, 4, num_layers=2, rng=rng)
    x = rng.standard_normal((5, 3))
    states = tuple(rng.standard_normal((2, 4)) for _ in range(n_states(kind)))
    output, finals = run(kind, layer, x, states)
    assert output.shape == (5, 4) and all(f.shape == (2, 4) for f in finals)
    batched_output, batched_finals = run(kind, layer, x[:, None], tuple(s[:, None] for s in states))
    np.testing.assert_allclose(output.numpy(), batched_output.numpy()[:, 0], rtol=1e-14)
    for f, b in zip(finals, batched_finals, strict=True):
        np.testing.assert_allclose(f.numpy(), b.numpy()[:, 0], rtol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_first_is_the_transposed_layout(kind: str) -> None:
    rng = np.random.default_rng(3)
    first = make_layer(kind, 3, 4, num_layers=2, batch_first=True, rng=4)
    second = make_layer(kind, 3, 4, num_layers=2, rng=4)
    x = rng.standard_normal((2, 5, 3))  # (B, T, D)
    out_first, (h_first, *_) = run(kind, first, x, lengths=[5, 2])
    out_second, (h_second, *_) = run(kind, second, x.transpose(1, 0, 2), lengths=[5, 2])
    assert out_first.shape == (2, 5, 4) and h_first.shape == (2, 2, 4)  # h_n stays (num_layers, B, H)
    np.testing.assert_allclose(out_first.numpy(), out_second.numpy().transpose(1, 0, 2), rtol=1e-14)
    np.testing.assert_allclose(h_first.numpy(), h_second.numpy(), rtol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_one_step_equals_one_cell_call(kind: str) -> None:
    rng = np.random.default_rng(5)
    layer = make_layer(kind, 3, 4, rng=6)
    cell = make_cell(kind, 3, 4, rng=6)
    x = rng.standard_normal((1, 2, 3))
    output, (h_n, *_) = run(kind, layer, x)
    got = cell(x[0])
    h = got[0] if n_states(kind) > 1 else got
    assert output.shape == (1, 2, 4)
    np.testing.assert_allclose(output.numpy()[0], h.numpy(), rtol=1e-14)
    np.testing.assert_allclose(h_n.numpy()[0], h.numpy(), rtol=1e-14)


# ---------------------------------------------------------------- variable lengths


@st.composite
def padded_batches(draw: st.DrawFn) -> dict[str, Any]:
    steps = draw(st.integers(1, 6), label="T")
    batch = draw(st.integers(1, 4), label="B")
    pattern = draw(st.sampled_from(["random", "all equal", "has a 1"]), label="pattern")
    lengths = draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch), label="lengths")
    if pattern == "all equal":
        lengths = [lengths[0]] * batch  # possibly shorter than T: every sequence ends in padding
    elif pattern == "has a 1":
        lengths[draw(st.integers(0, batch - 1), label="which")] = 1
    return {
        "kind": draw(st.sampled_from(KINDS), label="kind"),
        "steps": steps,
        "batch": batch,
        "lengths": lengths,
        "num_layers": draw(st.integers(1, 2), label="num_layers"),
        "bidirectional": draw(st.booleans(), label="bidirectional"),
        "seed": draw(st.integers(0, 2**32 - 1), label="seed"),
    }


def grad_of(t: Tensor) -> np.ndarray:
    """`.grad` as an array, whether the engine stores an ndarray or a Tensor."""
    g: Any = t.grad
    return np.asarray(g.data if isinstance(g, Tensor) else g)


@settings(max_examples=examples(30))
@given(case=padded_batches())
def test_padded_batch_equals_each_sequence_alone(case: dict[str, Any]) -> None:
    """Outputs, final states, and the gradients of every parameter, of x and of the initial state, to 1e-10.

    Bidirectional layers too: a sequence's backward direction must start at its own last step."""
    kind, steps, batch, lengths = case["kind"], case["steps"], case["batch"], case["lengths"]
    rng = np.random.default_rng(case["seed"])
    dirs = 2 if case["bidirectional"] else 1
    layer = make_layer(kind, 2, 3, num_layers=case["num_layers"], bidirectional=case["bidirectional"], rng=rng)
    rows = case["num_layers"] * dirs
    x_data = rng.standard_normal((steps, batch, 2))
    x_data[np.arange(steps)[:, None] >= np.asarray(lengths)[None, :]] = np.nan  # padding must never be read
    state_data = [rng.standard_normal((rows, batch, 3)) for _ in range(n_states(kind))]
    r_out = rng.standard_normal((steps, batch, 3 * dirs))
    r_states = [rng.standard_normal((rows, batch, 3)) for _ in range(n_states(kind))]

    def loss(output: Tensor, finals: tuple[Tensor, ...], b: slice) -> Tensor:
        total = (output * r_out[: output.shape[0], b]).sum()
        for final, r in zip(finals, r_states, strict=True):
            total = total + (final * r[:, b]).sum()
        return total

    x = Tensor(x_data, requires_grad=True)
    states = [Tensor(a, requires_grad=True) for a in state_data]
    output, finals = run(kind, layer, x, states, lengths=lengths)
    loss(output, finals, slice(None)).backward()
    batched_grads = {name: grad_of(p) for name, p in layer.named_parameters()}
    layer.zero_grad()

    for b, length in enumerate(lengths):
        xb = Tensor(x_data[:length, b : b + 1], requires_grad=True)
        states_b = [Tensor(a[:, b : b + 1], requires_grad=True) for a in state_data]
        out_b, finals_b = run(kind, layer, xb, states_b)
        loss(out_b, finals_b, slice(b, b + 1)).backward()  # parameter grads add up over the sequences
        np.testing.assert_allclose(output.numpy()[:length, b], out_b.numpy()[:, 0], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(output.numpy()[length:, b], 0.0)
        for final, final_b, state, state_b in zip(finals, finals_b, states, states_b, strict=True):
            np.testing.assert_allclose(final.numpy()[:, b], final_b.numpy()[:, 0], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(grad_of(state)[:, b], grad_of(state_b)[:, 0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(grad_of(x)[:length, b], grad_of(xb)[:, 0], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(grad_of(x)[length:, b], 0.0)  # no gradient from (or into) padding
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(batched_grads[name], grad_of(p), rtol=1e-10, atol=1e-12, err_msg=name)


def test_full_lengths_equal_no_lengths() -> None:
    rng = np.random.default_rng(0)
    layer = LSTM(2, 3, rng=rng)
    x = rng.standard_normal((4, 3, 2))
    with_lengths, (h1, c1) = layer(x, lengths=np.array([4, 4, 4]))
    without, (h2, c2) = layer(x)
    np.testing.assert_array_equal(h1.numpy(), h2.numpy())
    np.testing.assert_array_equal(with_lengths.numpy(), without.numpy())
    np.testing.assert_array_equal(c1.numpy(), c2.numpy())


def test_pad_sequence_pads_stacks_and_passes_gradients_back() -> None:
    a = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    b = Tensor(np.ones((1, 2)), requires_grad=True)
    padded, lengths = pad_sequence([a, b], padding_value=-1.0)
    assert padded.shape == (3, 2, 2) and lengths.tolist() == [3, 1] and lengths.dtype.kind == "i"
    np.testing.assert_array_equal(padded.numpy()[:, 0], a.numpy())
    np.testing.assert_array_equal(padded.numpy()[1:, 1], -1.0)
    first, _ = pad_sequence([a.numpy(), b.numpy()], batch_first=True)  # padding_value defaults to 0
    assert first.shape == (2, 3, 2)
    np.testing.assert_array_equal(first.numpy()[0], a.numpy())
    np.testing.assert_array_equal(first.numpy()[1], [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    weights = np.random.default_rng(0).standard_normal((3, 2, 2))
    (padded * weights).sum().backward()
    np.testing.assert_array_equal(a.grad, weights[:, 0])
    np.testing.assert_array_equal(b.grad, weights[:1, 1])


def test_pad_sequence_feeds_an_rnn_like_the_sequences_alone() -> None:
    rng = np.random.default_rng(1)
    seqs = [rng.standard_normal((n, 2)) for n in (2, 5, 1)]
    layer = GRU(2, 3, rng=0)
    padded, lengths = pad_sequence(seqs)
    _, h_n = layer(padded, lengths=lengths)
    for b, s in enumerate(seqs):
        np.testing.assert_allclose(h_n.numpy()[0, b], layer(s)[1].numpy()[0], rtol=1e-12)


def test_pad_sequence_errors() -> None:
    with pytest.raises(ShapeError, match="needs at least one sequence"):
        pad_sequence([])
    with pytest.raises(ShapeError, match=r"sequence 1 has shape \(2, 3\) but sequence 0 has \(1, 2\)"):
        pad_sequence([np.ones((1, 2)), np.ones((2, 3))])
