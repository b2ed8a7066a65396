"""The tape against the hand-derived BPTT of tinygrad_rnn.checks.reference, to 1e-12 relative.

Three independent routes to the same gradients of a tanh RNN with a linear
readout and a (masked) mean squared error: nn.RNN + nn.Linear + backward()
(generic reverse mode over the unrolled tape), reference.rnn_forward_backward
(the chain rule worked out on paper, one step at a time) and its hoisted
variant (all non-recurrent work as single matmuls). The reference itself is
checked against central differences, so the oracle is not taken on trust.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_rnn.checks.reference as reference
from tinygrad_rnn.checks.reference import rnn_forward_backward, rnn_forward_backward_hoisted
from tinygrad_rnn.core.tensor import Tensor, stack
from tinygrad_rnn.nn.layers import Linear
from tinygrad_rnn.nn.recurrent import RNN, RNNCell

NAMES = ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_out", "bias_out"]


def examples(n: int) -> int:
    """n Hypothesis examples under the `ci` profile (30 by default), scaled for `dev` and `thorough`."""
    return max(1, n * settings().max_examples // 30)


def assert_relative(actual: Any, expected: Any, rtol: float = 1e-12, name: str = "") -> None:
    """Every entry within rtol of the expected array's largest magnitude (and of itself)."""
    expected = np.asarray(expected)
    scale = float(np.abs(expected).max(initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=name)


@st.composite
def problems(draw: st.DrawFn) -> dict[str, Any]:
    """Random sizes, a padded batch with optional lengths and h0, weights and targets (float64)."""
    steps = draw(st.integers(1, 8), label="T")
    batch = draw(st.integers(1, 4), label="B")
    sizes = draw(st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(1, 3)), label="D, H, O")
    lengths = draw(
        st.none() | st.lists(st.integers(1, steps), min_size=batch, max_size=batch),
        label="lengths",
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    d, h, o = sizes
    return {
        "x": rng.standard_normal((steps, batch, d)),
        "targets": rng.standard_normal((steps, batch, o)),
        "weight_ih": rng.uniform(-1, 1, (h, d)),
        "weight_hh": rng.uniform(-1, 1, (h, h)),
        "bias_ih": rng.uniform(-1, 1, h),
        "bias_hh": rng.uniform(-1, 1, h),
        "weight_out": rng.uniform(-1, 1, (o, h)),
        "bias_out": rng.uniform(-1, 1, o),
        "h0": rng.standard_normal((batch, h)) if draw(st.booleans(), label="with_h0") else None,
        "lengths": lengths,
    }


def tape(p: dict[str, Any]) -> tuple[float, dict[str, np.ndarray]]:
    """The same loss with the library's layers; gradients by backward()."""
    steps, batch, d = p["x"].shape
    h, o = p["weight_hh"].shape[0], p["weight_out"].shape[0]
    rnn, readout = RNN(d, h, rng=0), Linear(h, o, rng=0)
    rnn.load_state_dict({f"{n}_l0": p[n] for n in NAMES[:4]})
    readout.load_state_dict({"weight": p["weight_out"], "bias": p["bias_out"]})
    x = Tensor(p["x"], requires_grad=True)
    h0 = Tensor(p["h0"][None] if p["h0"] is not None else np.zeros((1, batch, h)), requires_grad=True)
    lengths = p["lengths"] if p["lengths"] is not None else [steps] * batch
    mask = (np.arange(steps)[:, None] < np.asarray(lengths)[None, :])[..., None].astype(np.float64)
    output, _ = rnn(x, h0, lengths=p["lengths"])
    loss = (((readout(output) - p["targets"]) ** 2) * mask).sum() / (mask.sum() * o)
    loss.backward()
    assert readout.bias is not None
    grads = {n: getattr(rnn, f"{n}_l0").grad for n in NAMES[:4]}
    grads.update(weight_out=readout.weight.grad, bias_out=readout.bias.grad, x=x.grad, h0=h0.grad[0])
    return loss.item(), grads


@settings(max_examples=examples(25))
@given(p=problems())
def test_tape_gradients_equal_hand_derived_bptt(p: dict[str, Any]) -> None:
    loss, grads = tape(p)
    ref_loss, ref_grads, _ = rnn_forward_backward(**p)
    assert_relative(loss, ref_loss, name="loss")
    for name in [*NAMES, "x", "h0"]:
        assert_relative(grads[name], ref_grads[name], name=name)


@settings(max_examples=examples(25))
@given(p=problems())
def test_hoisted_reference_equals_step_by_step_reference(p: dict[str, Any]) -> None:
    loss, grads, hs = rnn_forward_backward(**p)
    hoisted_loss, hoisted_grads, hoisted_hs = rnn_forward_backward_hoisted(**p)
    assert_relative(hoisted_loss, loss, name="loss")
    assert_relative(hoisted_hs, hs, name="hidden states")
    for name in [*NAMES, "x", "h0"]:
        assert_relative(hoisted_grads[name], grads[name], name=name)


@settings(max_examples=examples(15))
@given(p=problems())
def test_reference_matches_central_differences(p: dict[str, Any]) -> None:
    """The oracle is itself checked: every gradient entry against (L(θ+ε) - L(θ-ε)) / 2ε."""
    if p["h0"] is None:
        p["h0"] = np.zeros((p["x"].shape[1], p["weight_hh"].shape[0]))
    _, grads, _ = rnn_forward_backward(**p)
    eps = 1e-6
    for name in [*NAMES, "x", "h0"]:
        base = p[name]
        numeric = np.zeros_like(base)
        for index in np.ndindex(*base.shape):
            values = []
            for step in (eps, -eps):
                moved = base.copy()
                moved[index] += step
                values.append(rnn_forward_backward(**{**p, name: moved})[0])
            numeric[index] = (values[0] - values[1]) / (2 * eps)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-9, err_msg=name)


@settings(max_examples=examples(15))
@given(p=problems())
def test_hidden_states_are_the_layers_and_h_n_is_each_sequences_last(p: dict[str, Any]) -> None:
    _, _, hs = rnn_forward_backward(**p)
    steps, batch, d = p["x"].shape
    rnn = RNN(d, p["weight_hh"].shape[0], rng=0)
    rnn.load_state_dict({f"{n}_l0": p[n] for n in NAMES[:4]})
    h0 = None if p["h0"] is None else p["h0"][None]
    output, h_n = rnn(p["x"], h0, lengths=p["lengths"])
    lengths = np.asarray(p["lengths"] if p["lengths"] is not None else [steps] * batch)
    inside = (np.arange(steps)[:, None] < lengths[None, :])[..., None]
    assert_relative(output.numpy(), np.where(inside, hs[1:], 0.0), name="output")
    assert_relative(h_n.numpy()[0], hs[lengths, np.arange(batch)], name="h_n")


@settings(max_examples=examples(10))
@given(p=problems())
def test_per_step_weight_hh_gradients_equal_the_tapes_per_step_copies(p: dict[str, Any]) -> None:
    """Unroll with one RNNCell per step (own copy of W_hh): copy t's gradient is the reference's term t."""
    p["lengths"] = None  # cells have no lengths; the masked case is covered by the full comparison above
    steps, _, d = p["x"].shape
    h, o = p["weight_hh"].shape[0], p["weight_out"].shape[0]
    readout = Linear(h, o, rng=0)
    readout.load_state_dict({"weight": p["weight_out"], "bias": p["bias_out"]})
    cells = []
    state = None if p["h0"] is None else Tensor(p["h0"])
    outputs = []
    for t in range(steps):
        cell = RNNCell(d, h, rng=0)
        cell.load_state_dict({n: p[n] for n in NAMES[:4]})
        state = cell(p["x"][t], state)
        cells.append(cell)
        outputs.append(state)
    loss = ((readout(stack(outputs)) - p["targets"]) ** 2).mean()
    loss.backward()
    _, ref_grads, _ = rnn_forward_backward(**p)
    per_step = np.stack([cell.weight_hh.grad for cell in cells])
    assert_relative(per_step, ref_grads["weight_hh_per_step"], name="weight_hh_per_step")
    assert_relative(ref_grads["weight_hh_per_step"].sum(axis=0), ref_grads["weight_hh"], name="sum")


def test_reference_imports_nothing_from_the_engine() -> None:
    """An independent oracle: the file's only imports are numpy and the standard library."""
    tree = ast.parse(Path(reference.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or "").split(".")[0])
    assert imported <= {"__future__", "typing", "numpy"}, imported
