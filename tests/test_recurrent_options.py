"""Recurrent-layer options PyTorch users reach for (bidirectional, dropout between layers), and clear errors.

A bidirectional layer is checked against its definition, built by hand: a
forward layer, plus a second layer run over each sequence reversed within its
own length (reversed back afterwards), the two outputs side by side, layer by
layer: values and every gradient. Dropout between layers is checked against
the same composition with a mask drawn from a copy of the layer's generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.core.errors import ArgumentError, DTypeError, ShapeError
from tinygrad_rnn.core.tensor import Tensor
from tinygrad_rnn.nn import functional as F
from tinygrad_rnn.nn.kinds import CELL_KINDS
from tinygrad_rnn.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, tbptt_chunks

KINDS = list(CELL_KINDS)


def grad_of(t: Tensor) -> np.ndarray:
    g: Any = t.grad
    return np.asarray(g.data if isinstance(g, Tensor) else g)


def call(kind: str, layer: Any, x: Any, states: list[Tensor], lengths: Any = None) -> tuple[Tensor, list[Tensor]]:
    hx = tuple(states) if len(states) > 1 else states[0]
    output, final = layer(x, hx, lengths=lengths)
    return output, list(final) if len(states) > 1 else [final]


def reversal_index(lengths: list[int], steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Index (time, batch) that reverses each sequence within its own length; padding stays where it is."""
    t = np.arange(steps)[:, None]
    length = np.asarray(lengths)[None, :]
    return np.where(t < length, length - 1 - t, t), np.arange(len(lengths))[None, :]


def one_direction(bi: RNNBase, k: int, suffix: str, fan_in: int) -> RNNBase:
    layer = RNNBase(bi.kind, fan_in, bi.hidden_size, rng=0)
    layer.load_state_dict({f"{name}_l0": getattr(bi, f"{name}_l{k}{suffix}").numpy() for name in
                           ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})  # fmt: skip
    return layer


@pytest.mark.parametrize("kind", KINDS)
def test_bidirectional_is_a_forward_layer_and_a_layer_over_each_reversed_sequence(kind: str) -> None:
    rng = np.random.default_rng(0)
    steps, batch, size, hidden, layers = 5, 3, 3, 4, 2
    lengths = [5, 2, 4]
    bi = RNNBase(kind, size, hidden, num_layers=layers, bidirectional=True, rng=rng)
    count = len(CELL_KINDS[kind].state_names)
    x = Tensor(rng.standard_normal((steps, batch, size)), requires_grad=True)
    states = [Tensor(rng.standard_normal((2 * layers, batch, hidden)), requires_grad=True) for _ in range(count)]
    r_out = rng.standard_normal((steps, batch, 2 * hidden))
    r_final = rng.standard_normal((2 * layers, batch, hidden))

    output, finals = call(kind, bi, x, states, lengths)
    assert output.shape == (steps, batch, 2 * hidden) and finals[0].shape == (2 * layers, batch, hidden)
    ((output * r_out).sum() + (finals[0] * r_final).sum()).backward()
    expected_grads = {"x": grad_of(x), **{f"state{i}": grad_of(s) for i, s in enumerate(states)}}
    bi_grads = {name: grad_of(p) for name, p in bi.named_parameters()}
    x.grad = None
    for s in states:
        s.grad = None

    # The same network by hand, one direction at a time.
    index = reversal_index(lengths, steps)
    layer_input, hand_finals, hand_layers = x, [], []
    for k in range(layers):
        fan_in = size if k == 0 else 2 * hidden
        forward, backward = one_direction(bi, k, "", fan_in), one_direction(bi, k, "_reverse", fan_in)
        hand_layers.append((forward, backward))
        f_out, f_final = call(kind, forward, layer_input, [s[2 * k : 2 * k + 1] for s in states], lengths)
        b_out, b_final = call(kind, backward, layer_input[index], [s[2 * k + 1 : 2 * k + 2] for s in states], lengths)
        layer_input = tg.concatenate([f_out, b_out[index]], axis=-1)  # the same index reverses it back
        hand_finals += [f_final[0], b_final[0]]
    hand_h_n = tg.concatenate(hand_finals, axis=0)
    np.testing.assert_allclose(output.numpy(), layer_input.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(finals[0].numpy(), hand_h_n.numpy(), rtol=1e-12, atol=1e-14)
    padded = np.arange(steps)[:, None] >= np.asarray(lengths)[None, :]
    assert not output.numpy()[padded].any()  # padding outputs 0 in both halves

    ((layer_input * r_out).sum() + (hand_h_n * r_final).sum()).backward()
    np.testing.assert_allclose(grad_of(x), expected_grads["x"], rtol=1e-10, atol=1e-12)
    for i, s in enumerate(states):
        np.testing.assert_allclose(grad_of(s), expected_grads[f"state{i}"], rtol=1e-10, atol=1e-12)
    for k, pair in enumerate(hand_layers):
        for layer, suffix in zip(pair, ("", "_reverse"), strict=True):
            for name, p in layer.named_parameters():
                got = bi_grads[name.replace("_l0", f"_l{k}") + suffix]
                np.testing.assert_allclose(got, grad_of(p), rtol=1e-10, atol=1e-12, err_msg=name + suffix)


def test_bidirectional_names_shapes_and_layouts_are_pytorchs() -> None:
    lstm = LSTM(3, 5, num_layers=2, bidirectional=True, rng=0)
    names = [(n, p.shape) for n, p in lstm.named_parameters()]
    expected = []
    for k, fan_in in ((0, 3), (1, 10)):  # layer 1 reads both directions of layer 0: 2H
        for suffix in ("", "_reverse"):
            expected += [(f"weight_ih_l{k}{suffix}", (20, fan_in)), (f"weight_hh_l{k}{suffix}", (20, 5)),
                         (f"bias_ih_l{k}{suffix}", (20,)), (f"bias_hh_l{k}{suffix}", (20,))]  # fmt: skip
    assert names == expected
    output, (h_n, c_n) = lstm(np.ones((7, 2, 3)))
    assert output.shape == (7, 2, 10) and h_n.shape == c_n.shape == (4, 2, 5)
    # PyTorch's layout: output[..., :H] is the forward direction, whose last step is h_n[2k]; the backward
    # direction's state after reading the whole sequence is output[0, :, H:], which is h_n[2k + 1].
    np.testing.assert_array_equal(output.numpy()[-1, :, :5], h_n.numpy()[2])
    np.testing.assert_array_equal(output.numpy()[0, :, 5:], h_n.numpy()[3])
    first = GRU(3, 5, bidirectional=True, batch_first=True, rng=0)
    out, h = first(np.ones((2, 7, 3)))
    assert out.shape == (2, 7, 10) and h.shape == (2, 2, 5)
    unbatched, h_unbatched = first(np.ones((7, 3)))
    assert unbatched.shape == (7, 10) and h_unbatched.shape == (2, 5)
    with pytest.raises(ShapeError, match=r"h0 has shape \(1, 2, 5\), expected \(2, 2, 5\) \(num_layers \* 2, batch"):
        first(np.ones((2, 7, 3)), np.zeros((1, 2, 5)))


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_between_layers_is_a_fixed_seed_mask_in_training_and_off_in_eval(kind: str) -> None:
    generator = np.random.default_rng(0)
    layer = RNNBase(kind, 3, 4, num_layers=2, dropout=0.5, rng=generator)
    saved = generator.bit_generator.state  # the masks are drawn from here on
    count = len(CELL_KINDS[kind].state_names)
    x = Tensor(np.random.default_rng(1).standard_normal((5, 2, 3)), requires_grad=True)
    r = np.random.default_rng(2).standard_normal((5, 2, 4))
    zeros = [Tensor(np.zeros((2, 2, 4))) for _ in range(count)]
    output, finals = call(kind, layer, x, zeros)
    (output * r).sum().backward()
    x_grad = grad_of(x)
    x.grad = None

    copy = np.random.default_rng()
    copy.bit_generator.state = saved
    first, second = one_direction(layer, 0, "", 3), one_direction(layer, 1, "", 4)
    mid, mid_final = call(kind, first, x, [z[:1] for z in zeros])
    dropped = F.dropout(mid, 0.5, rng=copy)
    kept = dropped.numpy() != 0
    assert kept.any() and not kept.all()  # the mask really zeroed some, and only some, outputs
    hand, hand_final = call(kind, second, dropped, [z[:1] for z in zeros])
    np.testing.assert_allclose(output.numpy(), hand.numpy(), rtol=1e-12, atol=1e-14)
    # h_n is each layer's state before dropout, as in PyTorch
    np.testing.assert_allclose(finals[0].numpy(), np.concatenate([mid_final[0].numpy(), hand_final[0].numpy()]))
    (hand * r).sum().backward()
    np.testing.assert_allclose(x_grad, grad_of(x), rtol=1e-12, atol=1e-14)

    again, _ = call(kind, layer, x, zeros)
    assert not np.allclose(again.numpy(), output.numpy())  # a fresh mask at every call in training
    layer.eval()
    evaluated, _ = call(kind, layer, x, zeros)
    plain, _ = call(kind, second, call(kind, first, x, [z[:1] for z in zeros])[0], [z[:1] for z in zeros])
    np.testing.assert_allclose(evaluated.numpy(), plain.numpy(), rtol=1e-12, atol=1e-14)


def test_the_backward_direction_is_recorded_under_its_own_scope() -> None:
    from tinygrad_rnn.core import engine

    tags: list[dict[str, Any]] = []
    with engine._observing(forward=lambda node, out: tags.append(dict(node.tags))):
        GRU(2, 3, bidirectional=True, rng=0)(np.ones((3, 1, 2)))
    stepped = {(t["module"], t["step"]) for t in tags if "step" in t}
    assert stepped == {(module, t) for module in ("gru.l0", "gru.l0_reverse") for t in range(3)}


def test_the_initial_state_may_be_passed_as_pytorchs_hx() -> None:
    gru, x, h0 = GRU(2, 3, rng=0), np.ones((4, 1, 2)), np.full((1, 1, 3), 0.5)
    np.testing.assert_array_equal(gru(x, hx=h0)[1].numpy(), gru(x, h0)[1].numpy())
    np.testing.assert_array_equal(gru(x, h0=h0)[1].numpy(), gru(x, h0)[1].numpy())
    assert not np.array_equal(gru(x, hx=h0)[1].numpy(), gru(x)[1].numpy())
    with pytest.raises(ArgumentError, match=r"GRU\(2, 3\): pass the initial state once"):
        gru(x, h0=h0, hx=h0)


def test_truncated_bptt_refuses_a_bidirectional_layer() -> None:
    with pytest.raises(ArgumentError, match=r"tbptt_chunks: GRU\(2, 3, bidirectional=True\) is bidirectional"):
        next(tbptt_chunks(GRU(2, 3, bidirectional=True, rng=0), np.ones((6, 1, 2)), 3))


def test_dropout_on_one_layer_changes_nothing() -> None:
    """PyTorch applies it only between layers, never to the last layer's output."""
    rnn = RNN(3, 4, dropout=0.9, rng=0)
    x = np.ones((4, 2, 3))
    np.testing.assert_array_equal(rnn(x)[0].numpy(), rnn(x)[0].numpy())


# ---------------------------------------------------------------- refusals name the public class


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: GRU(3, 4, proj_size=2), "GRU: proj_size is not supported"),
        (lambda: RNN(3, 4, proj_size=2), "RNN: proj_size is not supported"),
        (lambda: LSTM(3, 4, proj_size=2), "LSTM: proj_size is not supported"),
        (lambda: LSTM(3, 4, device="cuda"), "LSTM: device is not supported"),
        (lambda: GRUCell(3, 4, device="cuda:0"), "GRUCell: device is not supported"),
        (lambda: RNN(3, 4, nonlinearty="relu"), "RNN: unexpected keyword argument 'nonlinearty'"),
        (lambda: LSTMCell(3, 4, proj_size=1), "LSTMCell: unexpected keyword argument 'proj_size'"),
        (lambda: RNNCell(3, 4, nonlinearity="gelu"), "RNNCell: nonlinearity must be 'tanh' or 'relu'"),
        (lambda: GRU(3, 4, dropout=1.5), r"GRU: dropout must be a probability in \[0, 1\], got 1.5"),
        (lambda: LSTM(3, 4, num_layers=0), "LSTM: num_layers must be at least 1"),
    ],
)
def test_unsupported_keywords_name_the_public_class(build: Any, message: str) -> None:
    with pytest.raises(ArgumentError, match=message) as info:
        build()
    assert "Base" not in str(info.value) and "_" not in str(info.value).split(":")[0]


def test_pytorchs_defaults_for_those_keywords_are_accepted() -> None:
    lstm = LSTM(3, 4, proj_size=0, device="cpu", rng=0)
    assert lstm(np.ones((2, 1, 3)))[0].shape == (2, 1, 4)
    assert GRUCell(3, 4, device=None, rng=0)(np.ones((1, 3))).shape == (1, 4)


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


def test_a_tuple_given_to_a_one_state_layer_says_it_takes_one_tensor() -> None:
    """Issue 14: GRU((h0, c0)) used to report a (2, 1, 2, 5) h0, as if the pair were one stacked array."""
    gru, h0 = GRU(5, 5, rng=0), np.zeros((1, 2, 5))
    with pytest.raises(ShapeError, match=r"GRU\(5, 5\): GRU takes one state tensor h0, not a tuple of 2"):
        gru(np.ones((3, 2, 5)), (h0, h0))
    with pytest.raises(ShapeError, match=r"RNN takes one state tensor h0, not a list of 2"):
        RNN(5, 5, rng=0)(np.ones((3, 2, 5)), [Tensor(h0), Tensor(h0)])
    with pytest.raises(ShapeError, match=r"GRUCell\(5, 5\): GRUCell takes one state tensor hx, not a tuple of 2"):
        GRUCell(5, 5, rng=0)(np.ones((2, 5)), (h0[0], h0[0]))
    nested = gru(np.ones((3, 2, 5)), h0.tolist())[1]  # a nested list of numbers is still one array
    assert nested.shape == (1, 2, 5)


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
