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

from tinygrad_rnn.core.errors import ArgumentError, DTypeError, ShapeError
from tinygrad_rnn.core.tensor import Tensor
from tinygrad_rnn.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, pad_sequence

LAYERS: dict[str, Any] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def examples(n: int) -> int:
    """n Hypothesis examples under the `ci` profile (30 by default), scaled for `dev` and `thorough`."""
    return max(1, n * settings().max_examples // 30)


# ---------------------------------------------------------------- PyTorch's equations in numpy


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def numpy_step(kind: str, p: dict[str, np.ndarray], x: np.ndarray, h: np.ndarray, c: np.ndarray, act: str) -> Any:
    """One step of PyTorch's RNN / LSTM / GRU as documented; p holds weight_ih, weight_hh, bias_ih, bias_hh."""
    gi = x @ p["weight_ih"].T + p["bias_ih"]
    gh = h @ p["weight_hh"].T + p["bias_hh"]
    if kind == "rnn":
        return (np.tanh(gi + gh) if act == "tanh" else np.maximum(gi + gh, 0.0)), c
    if kind == "lstm":
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        return sigmoid(o) * np.tanh(c), c
    i_r, i_z, i_n = np.split(gi, 3, axis=-1)
    h_r, h_z, h_n = np.split(gh, 3, axis=-1)
    r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h, c


def numpy_layer(kind: str, layer: Any, x: np.ndarray, h0: np.ndarray, c0: np.ndarray, act: str = "tanh") -> Any:
    """(output, h_n, c_n) of a multi-layer network, x (T, B, D), h0/c0 (L, B, H): a direct loop."""
    h_n, c_n = [], []
    inputs = x
    for k in range(layer.num_layers):
        rows = GATES[kind] * layer.hidden_size
        p = {
            name: getattr(layer, f"{name}_l{k}").numpy() if layer.bias or "weight" in name else np.zeros(rows)
            for name in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        }
        h, c, outs = h0[k], c0[k], []
        for t in range(x.shape[0]):
            h, c = numpy_step(kind, p, inputs[t], h, c, act)
            outs.append(h)
        inputs = np.stack(outs)
        h_n.append(h)
        c_n.append(c)
    return inputs, np.stack(h_n), np.stack(c_n)


def run(kind: str, layer: Any, x: Any, h0: Any = None, c0: Any = None, lengths: Any = None) -> Any:
    """Call a layer with the right state argument; returns (output, h_n, c_n or None)."""
    if kind == "lstm":
        output, (h_n, c_n) = layer(x, None if h0 is None else (h0, c0), lengths=lengths)
        return output, h_n, c_n
    output, h_n = layer(x, h0, lengths=lengths)
    return output, h_n, None


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
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
    layer = LAYERS[kind](d, h, num_layers=num_layers, bias=bias, rng=rng)
    x = rng.standard_normal((steps, batch, d))
    h0, c0 = rng.standard_normal((2, num_layers, batch, h))
    output, h_n, c_n = run(kind, layer, x, h0, c0)
    expected = numpy_layer(kind, layer, x, h0, c0)
    np.testing.assert_allclose(output.numpy(), expected[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n.numpy(), expected[1], rtol=1e-12, atol=1e-14)
    if kind == "lstm":
        np.testing.assert_allclose(c_n.numpy(), expected[2], rtol=1e-12, atol=1e-14)


def test_relu_rnn_and_zero_initial_state_match_the_equations() -> None:
    rng = np.random.default_rng(0)
    layer = RNN(3, 4, num_layers=2, nonlinearity="relu", rng=rng)
    x = rng.standard_normal((5, 2, 3))
    output, h_n = layer(x)
    zeros = np.zeros((2, 2, 4))
    expected = numpy_layer("rnn", layer, x, zeros, zeros, act="relu")
    np.testing.assert_allclose(output.numpy(), expected[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n.numpy(), expected[1], rtol=1e-12, atol=1e-14)
    assert (output.numpy() == 0).any() and (output.numpy() > 0).any()  # relu really clipped something


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cells_match_the_equations_batched_and_unbatched(kind: str) -> None:
    rng = np.random.default_rng(1)
    cell = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}[kind](3, 2, rng=rng)
    p = {name: value for name, value in cell.state_dict().items()}
    x, h, c = rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    got = cell(x, (h, c)) if kind == "lstm" else cell(x, h)
    h_new, c_new = numpy_step(kind, p, x, h, c, "tanh")
    np.testing.assert_allclose((got[0] if kind == "lstm" else got).numpy(), h_new, rtol=1e-13)
    if kind == "lstm":
        np.testing.assert_allclose(got[1].numpy(), c_new, rtol=1e-13)
    single = cell(x[0], (h[0], c[0])) if kind == "lstm" else cell(x[0], h[0])
    single_h = single[0] if kind == "lstm" else single
    assert single_h.shape == (2,)
    np.testing.assert_allclose(single_h.numpy(), h_new[0], rtol=1e-13)
    default = cell(x)  # hx omitted: zeros
    zero_h, _ = numpy_step(kind, p, x, np.zeros((4, 2)), np.zeros((4, 2)), "tanh")
    np.testing.assert_allclose((default[0] if kind == "lstm" else default).numpy(), zero_h, rtol=1e-13)


def test_rnn_cell_without_bias_and_with_relu() -> None:
    cell = RNNCell(2, 3, bias=False, nonlinearity="relu", rng=0)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh"]
    x = np.array([[1.0, -2.0]])
    np.testing.assert_allclose(cell(x).numpy(), np.maximum(x @ cell.weight_ih.numpy().T, 0.0))
    assert repr(cell) == "RNNCell(2, 3, bias=False, nonlinearity='relu')"


# ---------------------------------------------------------------- names, shapes, init


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_parameter_names_and_shapes_are_pytorchs(kind: str) -> None:
    layer = LAYERS[kind](3, 5, num_layers=2, rng=0)
    g = GATES[kind] * 5
    assert [(n, p.shape) for n, p in layer.named_parameters()] == [
        ("weight_ih_l0", (g, 3)), ("weight_hh_l0", (g, 5)), ("bias_ih_l0", (g,)), ("bias_hh_l0", (g,)),
        ("weight_ih_l1", (g, 5)), ("weight_hh_l1", (g, 5)), ("bias_ih_l1", (g,)), ("bias_hh_l1", (g,)),
    ]  # fmt: skip
    cell = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}[kind](3, 5, rng=0)
    assert [(n, p.shape) for n, p in cell.named_parameters()] == [
        ("weight_ih", (g, 3)), ("weight_hh", (g, 5)), ("bias_ih", (g,)), ("bias_hh", (g,)),
    ]  # fmt: skip
    assert all(p.dtype == np.float64 and p.requires_grad for p in layer.parameters())


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_default_init_is_uniform_within_one_over_sqrt_hidden_and_seedable(kind: str) -> None:
    layer = LAYERS[kind](4, 16, num_layers=2, rng=7)
    values = np.concatenate([p.numpy().ravel() for p in layer.parameters()])
    assert np.abs(values).max() <= 0.25  # 1 / sqrt(16)
    assert np.abs(values).max() > 0.24 and abs(values.mean()) < 0.02  # spread over the whole interval
    same = LAYERS[kind](4, 16, num_layers=2, rng=7)
    other = LAYERS[kind](4, 16, num_layers=2, rng=8)
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


# ---------------------------------------------------------------- layouts: unbatched, batch_first, T = 1


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_unbatched_input_is_a_batch_of_one(kind: str) -> None:
    rng = np.random.default_rng(2)
    layer = LAYERS[kind](3, 4, num_layers=2, rng=rng)
    x, h0, c0 = rng.standard_normal((5, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    output, h_n, c_n = run(kind, layer, x, h0, c0)
    assert output.shape == (5, 4) and h_n.shape == (2, 4)
    batched = run(kind, layer, x[:, None], h0[:, None], c0[:, None])
    np.testing.assert_allclose(output.numpy(), batched[0].numpy()[:, 0], rtol=1e-14)
    np.testing.assert_allclose(h_n.numpy(), batched[1].numpy()[:, 0], rtol=1e-14)
    if kind == "lstm":
        assert c_n.shape == (2, 4)
        np.testing.assert_allclose(c_n.numpy(), batched[2].numpy()[:, 0], rtol=1e-14)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_batch_first_is_the_transposed_layout(kind: str) -> None:
    rng = np.random.default_rng(3)
    first = LAYERS[kind](3, 4, num_layers=2, batch_first=True, rng=4)
    second = LAYERS[kind](3, 4, num_layers=2, rng=4)
    x = rng.standard_normal((2, 5, 3))  # (B, T, D)
    out_first, h_first, _ = run(kind, first, x, lengths=[5, 2])
    out_second, h_second, _ = run(kind, second, x.transpose(1, 0, 2), lengths=[5, 2])
    assert out_first.shape == (2, 5, 4) and h_first.shape == (2, 2, 4)  # h_n stays (num_layers, B, H)
    np.testing.assert_allclose(out_first.numpy(), out_second.numpy().transpose(1, 0, 2), rtol=1e-14)
    np.testing.assert_allclose(h_first.numpy(), h_second.numpy(), rtol=1e-14)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_one_step_equals_one_cell_call(kind: str) -> None:
    rng = np.random.default_rng(5)
    layer = LAYERS[kind](3, 4, rng=6)
    cell = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}[kind](3, 4, rng=6)
    x = rng.standard_normal((1, 2, 3))
    output, h_n, _ = run(kind, layer, x)
    got = cell(x[0])
    h = got[0] if kind == "lstm" else got
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
        "kind": draw(st.sampled_from(["rnn", "lstm", "gru"]), label="kind"),
        "steps": steps,
        "batch": batch,
        "lengths": lengths,
        "num_layers": draw(st.integers(1, 2), label="num_layers"),
        "seed": draw(st.integers(0, 2**32 - 1), label="seed"),
    }


@settings(max_examples=examples(30))
@given(case=padded_batches())
def test_padded_batch_equals_each_sequence_alone(case: dict[str, Any]) -> None:
    """Outputs, h_n (and c_n), and the gradients of every parameter, of x and of h0, to 1e-10."""
    kind, steps, batch, lengths = case["kind"], case["steps"], case["batch"], case["lengths"]
    rng = np.random.default_rng(case["seed"])
    layer = LAYERS[kind](2, 3, num_layers=case["num_layers"], rng=rng)
    layers = case["num_layers"]
    x_data = rng.standard_normal((steps, batch, 2))
    x_data[np.arange(steps)[:, None] >= np.asarray(lengths)[None, :]] = np.nan  # padding must never be read
    h0_data, c0_data = rng.standard_normal((2, layers, batch, 3))
    r_out, s_h, s_c = rng.standard_normal((steps, batch, 3)), *rng.standard_normal((2, layers, batch, 3))

    def loss(output: Tensor, h_n: Tensor, c_n: Tensor | None, b: slice) -> Tensor:
        total = (output * r_out[: output.shape[0], b]).sum() + (h_n * s_h[:, b]).sum()
        return total + (c_n * s_c[:, b]).sum() if c_n is not None else total

    x, h0, c0 = (Tensor(a, requires_grad=True) for a in (x_data, h0_data, c0_data))
    output, h_n, c_n = run(kind, layer, x, h0, c0, lengths=lengths)
    loss(output, h_n, c_n, slice(None)).backward()
    batched_grads = {name: p.grad for name, p in layer.named_parameters()}
    layer.zero_grad()

    for b, length in enumerate(lengths):
        xb, hb, cb = (
            Tensor(a, requires_grad=True)
            for a in (x_data[:length, b : b + 1], h0_data[:, b : b + 1], c0_data[:, b : b + 1])
        )
        out_b, h_b, c_b = run(kind, layer, xb, hb, cb)
        loss(out_b, h_b, c_b, slice(b, b + 1)).backward()  # parameter grads add up over the sequences
        np.testing.assert_allclose(output.numpy()[:length, b], out_b.numpy()[:, 0], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(output.numpy()[length:, b], 0.0)
        np.testing.assert_allclose(h_n.numpy()[:, b], h_b.numpy()[:, 0], rtol=1e-10, atol=1e-12)
        if kind == "lstm":
            np.testing.assert_allclose(c_n.numpy()[:, b], c_b.numpy()[:, 0], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(c0.grad[:, b], cb.grad[:, 0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(x.grad[:length, b], xb.grad[:, 0], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(x.grad[length:, b], 0.0)  # no gradient from (or into) padding
        np.testing.assert_allclose(h0.grad[:, b], hb.grad[:, 0], rtol=1e-10, atol=1e-12)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(batched_grads[name], p.grad, rtol=1e-10, atol=1e-12, err_msg=name)


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


# ---------------------------------------------------------------- errors name the layer and the shapes


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m(np.ones((4, 2, 5))), ShapeError, r"RNN\(3, 4, num_layers=2\): input has shape \(4, 2, 5\)"),
        (lambda m: m(np.ones((4, 2, 1, 3))), ShapeError, r"input has shape \(4, 2, 1, 3\), expected \(T, batch"),
        (lambda m: m(np.ones((0, 2, 3))), ShapeError, "no time steps"),
        (
            lambda m: m(np.ones((4, 2, 3)), np.zeros((1, 2, 4))),
            ShapeError,
            r"RNN\(3, 4, num_layers=2\): h0 has shape \(1, 2, 4\), expected \(2, 2, 4\) \(num_layers, batch",
        ),
        (lambda m: m(np.ones((4, 3)), np.zeros((2, 1, 4))), ShapeError, r"h0 has shape \(2, 1, 4\), expected \(2, 4\)"),
        (
            lambda m: m(np.ones((4, 2, 3)), lengths=[4, 5]),
            ShapeError,
            r"lengths\[1\] = 5, but the input has only T = 4",
        ),
        (
            lambda m: m(np.ones((4, 2, 3)), lengths=[0, 4]),
            ShapeError,
            r"lengths\[0\] = 0; every sequence needs at least",
        ),
        (
            lambda m: m(np.ones((4, 2, 3)), lengths=[4, 4, 4]),
            ShapeError,
            r"lengths has shape \(3,\), expected .* \(2,\)",
        ),
        (lambda m: m(np.ones((4, 2, 3)), lengths=[[4, 4]]), ShapeError, r"lengths has shape \(1, 2\)"),
        (lambda m: m(np.ones((4, 2, 3)), lengths=[4.0, 2.5]), DTypeError, "lengths must be integers"),
        (lambda m: m(np.ones((4, 3)), lengths=[4]), ShapeError, "lengths needs a batched input"),
    ],
)
def test_layer_errors_are_clear(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call(RNN(3, 4, num_layers=2, rng=0))


def test_lstm_state_errors_name_h0_and_c0() -> None:
    lstm = LSTM(3, 4, rng=0)
    x = np.ones((2, 5, 3))
    with pytest.raises(ShapeError, match=r"LSTM\(3, 4\): hx must be a pair \(h0, c0\)"):
        lstm(x, np.zeros((1, 5, 4)))
    with pytest.raises(ShapeError, match=r"LSTM\(3, 4\): c0 has shape \(1, 4, 4\), expected \(1, 5, 4\)"):
        lstm(x, (np.zeros((1, 5, 4)), np.zeros((1, 4, 4))))


def test_cell_errors_are_clear() -> None:
    cell = GRUCell(3, 4, rng=0)
    with pytest.raises(
        ShapeError, match=r"GRUCell\(3, 4\): input has shape \(2, 5\), expected \(batch, input_size=3\)"
    ):
        cell(np.ones((2, 5)))
    with pytest.raises(ShapeError, match=r"GRUCell\(3, 4\): hx has shape \(3, 4\), expected \(2, 4\)"):
        cell(np.ones((2, 3)), np.zeros((3, 4)))
    with pytest.raises(ShapeError, match=r"LSTMCell\(3, 4\): c has shape \(4,\), expected \(2, 4\)"):
        LSTMCell(3, 4, rng=0)(np.ones((2, 3)), (np.zeros((2, 4)), np.zeros(4)))


def test_constructor_errors() -> None:
    with pytest.raises(ArgumentError, match="nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ArgumentError, match="num_layers must be at least 1"):
        GRU(3, 4, num_layers=0)
    with pytest.raises(ArgumentError, match="input_size and hidden_size must be positive"):
        LSTMCell(0, 4)


@pytest.mark.parametrize("layer", ["rnn", "lstm", "gru", "cell", "linear"])
def test_a_float64_input_to_a_float32_layer_is_named_not_silently_promoted(layer: str) -> None:
    import tinygrad_rnn as tg

    build = {
        "rnn": lambda: tg.nn.RNN(3, 4, dtype=np.float32),
        "lstm": lambda: tg.nn.LSTM(3, 4, dtype=np.float32),
        "gru": lambda: tg.nn.GRU(3, 4, dtype=np.float32),
        "cell": lambda: tg.nn.RNNCell(3, 4, dtype=np.float32),
        "linear": lambda: tg.nn.Linear(3, 4, dtype=np.float32),
    }[layer]()
    shape = (2, 3) if layer == "cell" else (5, 2, 3)
    with pytest.raises(DTypeError, match=r"input has dtype float64 but the layer's parameters are float32"):
        build(np.ones(shape))
    for data in (np.ones(shape, dtype=np.float32), np.ones(shape, dtype=np.int64)):  # integers are converted
        out = build(data)
        assert (out[0] if isinstance(out, tuple) else out).dtype == np.float32


def test_parameters_cast_after_construction_set_the_dtype_of_the_default_state() -> None:
    import tinygrad_rnn as tg

    rnn = tg.nn.RNN(3, 4, rng=0)
    for p in rnn.parameters():
        p.data = p.data.astype(np.float32)
    output, h_n = rnn(np.ones((2, 1, 3), dtype=np.float32))
    assert output.dtype == h_n.dtype == np.float32
