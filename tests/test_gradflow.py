"""Tests for tinygrad_rnn.inspect.gradflow and .health: per-step norms and terms, Jacobian products against theory,
the health check, and the `tinygrad-rnn gradflow` command.

Every reference here is computed independently of the report: with `tg.grad` on a
fresh forward pass, by hand from the hidden states (the BPTT formula for one
term), or in closed form for a linear RNN (powers of W_hh). Sizes are tiny and
everything is float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.cli import main
from tinygrad_rnn.cli.experiments import LinearRNN, default_configs, format_table, lag_sweep, run_experiment
from tinygrad_rnn.core import engine
from tinygrad_rnn.core.errors import ArgumentError, GradientError, ShapeError
from tinygrad_rnn.inspect import backward_trace
from tinygrad_rnn.inspect.gradflow import (
    GradFlowReport,
    decay_rate,
    gradient_flow,
    hidden_states,
    jacobian_norms,
    spectral_radius,
)
from tinygrad_rnn.inspect.health import check_gradients
from tinygrad_rnn.nn.kinds import CELL_KINDS
from tinygrad_rnn.nn.layers import Linear
from tinygrad_rnn.nn.module import Module, Parameter
from tinygrad_rnn.nn.recurrent import GRU, LSTM, RNN, RNNBase

T, B, D, H = 6, 2, 3, 4


@pytest.fixture(autouse=True)
def _no_observer_left_behind() -> Iterator[None]:
    yield
    assert engine.backward_observers == [] and engine.forward_observers == []


def _inputs(seed: int = 0, steps: int = T) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((steps, B, D))


def _readout_loss(head: Linear) -> Callable[[tg.Tensor], tg.Tensor]:
    """A loss that reads every step (so dL/dh_t has direct and recurrent parts), with uneven weights."""
    weights = tg.Tensor(np.linspace(0.5, 2.0, T)[:, None, None])
    return lambda out: ((head(out) * weights) ** 2).sum()


class WithLengths(Module):
    """A layer run on a padded batch: B = 2 sequences of lengths T and T - 2."""

    def __init__(self, layer: Module) -> None:
        self.layer = layer

    def forward(self, x: tg.Tensor, h0: tg.Tensor | None = None) -> tuple[tg.Tensor, tg.Tensor]:
        out, state = self.layer(x, h0, np.array([T, T - 2]))
        return out, state


def _layer_of(kind: str) -> Callable[[], Module]:
    return lambda: RNNBase(kind, D, H, rng=0)


LAYERS: dict[str, Callable[[], Module]] = {
    **{kind: _layer_of(kind) for kind in CELL_KINDS},  # every registered cell kind
    "rnn-2-layers": lambda: RNN(D, H, num_layers=2, rng=0),
    "lstm-2-layers": lambda: LSTM(D, H, num_layers=2, rng=0),
    "gru-2-layers": lambda: GRU(D, H, num_layers=2, rng=0),
    "rnn-lengths": lambda: WithLengths(RNN(D, H, rng=0)),
    "lstm-2-layers-lengths": lambda: WithLengths(LSTM(D, H, num_layers=2, rng=0)),
    "gru-lengths": lambda: WithLengths(GRU(D, H, rng=0)),
    "linear": lambda: LinearRNN(D, H, rng=0),
}


# ---------------------------------------------------------------- per-step terms and norms


@pytest.mark.parametrize("name", list(LAYERS))
def test_per_step_terms_add_up_to_grad(name: str) -> None:
    layer = LAYERS[name]()
    report = gradient_flow(layer, _inputs(), _readout_loss(Linear(H, 2, rng=1)), jacobians=False)
    for pname, p in layer.named_parameters():
        terms = report.step_terms[pname]
        assert terms.shape == (T, *p.shape)
        np.testing.assert_allclose(terms.sum(axis=0) + report.other_terms[pname], p.grad, rtol=0, atol=1e-12)
        # Every use is inside a step: nothing is left over, and the split is not trivial.
        assert not report.other_terms[pname].any()
        norms = report.term_norms(pname)
        assert (norms > 0).sum() >= T - 1 and len(set(np.round(norms, 12))) > 1
        assert report.term_sum_error(pname) <= 1e-12


def test_rnn_step_term_matches_the_bptt_formula() -> None:
    """term_t of dL/dW_hh = delta_t^T h_{t-1}, delta_t = dL/dh_t * (1 - h_t^2), from a fresh forward and tg.grad."""
    layer, head = RNN(D, H, rng=0), Linear(H, 2, rng=1)
    x, loss_fn = _inputs(), _readout_loss(head)
    report = gradient_flow(layer, x, loss_fn, jacobians=False)
    out, _ = layer(x)
    states = hidden_states(out)
    grads = tg.grad(loss_fn(out), states)
    previous = np.zeros((B, H))
    for t, (h, g) in enumerate(zip(states, grads, strict=True)):
        assert g is not None
        delta = g.data * (1 - h.data**2)
        np.testing.assert_allclose(report.step_terms["weight_hh_l0"][t], delta.T @ previous, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(report.step_terms["bias_hh_l0"][t], delta.sum(axis=0), rtol=1e-10, atol=1e-14)
        # W_ih is used once, in the input projection the layer hoists out of the loop; its step-t term
        # is still delta_t^T x_t, carried back through that projection.
        np.testing.assert_allclose(report.step_terms["weight_ih_l0"][t], delta.T @ x[t], rtol=1e-10, atol=1e-14)
        previous = h.data


def test_a_use_outside_the_steps_is_its_own_term() -> None:
    """L = probe + 0.1 * sum(W_hh^2): the extra term, 0.2 W_hh, belongs to no step."""
    layer = RNN(D, H, rng=0)
    report = gradient_flow(layer, _inputs(), lambda out: out[-1].sum() + 0.1 * (layer.weight_hh_l0**2).sum())
    np.testing.assert_allclose(report.other_terms["weight_hh_l0"], 0.2 * layer.weight_hh_l0.data, rtol=1e-12)
    assert not report.other_terms["weight_ih_l0"].any()
    assert report.term_sum_error("weight_hh_l0") <= 1e-12


@pytest.mark.parametrize("name", list(CELL_KINDS))
def test_grad_norms_equal_tg_grad_on_the_hidden_states(name: str) -> None:
    layer, head = LAYERS[name](), Linear(H, 2, rng=1)
    x, loss_fn = _inputs(), _readout_loss(head)
    report = gradient_flow(layer, x, loss_fn, jacobians=False)
    out, _ = layer(x)
    states = hidden_states(out)
    grads = tg.grad(loss_fn(out), states)
    expected = np.array([np.linalg.norm(g.data) for g in grads if g is not None])
    np.testing.assert_allclose(report.grad_norms, expected, rtol=1e-12, atol=0)
    assert report.loss == pytest.approx(loss_fn(out).item(), rel=1e-12)


def test_hidden_states_are_the_steps_of_the_output() -> None:
    out, h_n = RNN(D, H, rng=0)(_inputs())
    states = hidden_states(out)
    assert len(states) == T
    np.testing.assert_array_equal(np.stack([h.data for h in states]), out.data)
    np.testing.assert_array_equal(states[-1].data, h_n.data[0])
    # batch_first permutes the stacked output; the walk looks through it
    bf = RNN(D, H, batch_first=True, rng=0)
    out_bf, _ = bf(_inputs().transpose(1, 0, 2))
    np.testing.assert_array_equal(np.stack([h.data for h in hidden_states(out_bf)]), out.data)


@pytest.mark.parametrize("kind", [RNN, LSTM, GRU])
def test_with_lengths_the_states_are_the_ones_the_next_step_reads(kind: type[Module]) -> None:
    """A loss on sequence 0's last output only. In a padded batch (lengths T and T - 2) sequence 0's
    dL/dh_t is what it is when the sequence runs alone, at every step: also after sequence 1 has
    finished, where the layer's output is where(alive, h_t, 0) and the recurrence runs through h_t."""
    u = np.random.default_rng(3).standard_normal(H)

    def loss_fn(out: tg.Tensor) -> tg.Tensor:
        return (out[T - 1, 0] * u).sum()

    x = _inputs()
    padded = gradient_flow(WithLengths(kind(D, H, rng=0)), x, loss_fn, jacobians=False)
    alone = gradient_flow(kind(D, H, rng=0), x[:, :1], loss_fn, jacobians=False)
    np.testing.assert_allclose(padded.grad_norms, alone.grad_norms, rtol=1e-12, atol=0)
    assert (padded.grad_norms > 0).all()


def test_default_probe_loss_has_unit_norm_rows() -> None:
    report = gradient_flow(RNN(D, H, rng=0), _inputs(), jacobians=False)
    assert report.grad_norms[-1] == pytest.approx(math.sqrt(B), rel=1e-12)


# ---------------------------------------------------------------- theory: a linear RNN


def _symmetric(eigenvalues: np.ndarray, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigenvalues),) * 2))
    return (q * eigenvalues) @ q.T


@pytest.mark.parametrize("rho", [0.8, 1.15])
def test_linear_rnn_decay_rate_is_the_spectral_radius(rho: float) -> None:
    """For symmetric W_hh, dh_T/dh_t = W_hh^(T-t) and ||W^k||_2 = rho^k exactly: rate == rho to 1e-9.

    ||dL/dh_t|| for a probe u is ||u W^(T-t)||, which tends to c * rho^(T-t) as the
    other eigen-directions die out (here |lambda_2| / rho = 0.5 / rho); fitted over
    t <= T - 10 its rate matches rho within 1e-3.
    """
    steps = 40
    eigenvalues = np.array([rho, -0.5, 0.3, 0.1])
    layer = LinearRNN(D, H, rng=0)
    layer.weight_hh_l0.data = _symmetric(eigenvalues)
    report = gradient_flow(layer, _inputs(steps=steps), seed=3)
    assert report.spectral_radius == pytest.approx(rho, rel=1e-12)
    assert report.sigma_max == pytest.approx(rho, rel=1e-12)
    k = steps - np.arange(1, steps + 1)  # T - t
    assert report.jacobian_norms is not None and report.jacobian_fro is not None
    np.testing.assert_allclose(report.jacobian_norms, rho**k, rtol=1e-9)
    np.testing.assert_allclose(report.jacobian_fro, np.sqrt((eigenvalues[:, None] ** (2 * k)).sum(axis=0)), rtol=1e-9)
    assert report.rate("jacobian") == pytest.approx(rho, abs=1e-9)
    assert report.rate("grad", last=steps - 10) == pytest.approx(rho, abs=1e-3)


def test_linear_rnn_non_normal_rate_tends_to_the_spectral_radius() -> None:
    """A non-normal W_hh: ||W^k||_2 exceeds rho^k (transient growth), but ||W^k||^(1/k) -> rho (Gelfand).

    Fitted over k = T - t >= 40 with T = 120 the rate is within 2% of rho.
    """
    rng = np.random.default_rng(5)
    w = rng.standard_normal((H, H))
    w *= 0.9 / spectral_radius(w)
    layer = LinearRNN(D, H, rng=0)
    layer.weight_hh_l0.data = w
    spectral, _ = jacobian_norms(layer, _inputs(steps=120))
    k = 120 - np.arange(1, 121)
    assert (spectral[:-1] > 0.9 ** k[:-1]).all()  # sigma_max(W) > rho: the bound rho^k is not a bound here
    assert decay_rate(spectral, 1, 80) == pytest.approx(0.9, rel=0.02)


def test_jacobian_rows_are_exact_against_tg_grad() -> None:
    """The one-pass Jacobian (H seeded copies) equals H separate VJPs on the original graph."""
    layer = GRU(D, H, rng=0)
    x = _inputs()
    spectral, frobenius = jacobian_norms(layer, x, sample=1)
    out, _ = layer(x)
    states = hidden_states(out)
    rows = []
    for i in range(H):
        seed = np.zeros((B, H))
        seed[1, i] = 1.0
        rows.append(tg.grad(states[-1], states, grad_outputs=seed, retain_graph=True))
    for t in range(T):
        jac = np.stack([_data(r[t])[1] for r in rows])
        assert spectral[t] == pytest.approx(np.linalg.norm(jac, 2), rel=1e-10)
        assert frobenius[t] == pytest.approx(np.linalg.norm(jac), rel=1e-10)


def _data(g: tg.Tensor | None) -> np.ndarray:
    assert g is not None
    data: np.ndarray = g.data
    return data


# ---------------------------------------------------------------- clipping


def test_clipping_rescales_the_profile_and_keeps_the_rate() -> None:
    x = _inputs(steps=20)
    plain = gradient_flow(_scaled_rnn(2.5), x, jacobians=False)
    layer = _scaled_rnn(2.5)
    clipped = gradient_flow(layer, x, jacobians=False, clip=0.1)
    assert plain.total_norm > 0.1
    assert clipped.clip_coef == pytest.approx(0.1 / plain.total_norm, rel=1e-5)  # clip_grad_norm_'s +1e-6
    np.testing.assert_allclose(clipped.clipped_grad_norms(), clipped.clip_coef * plain.grad_norms, rtol=1e-12)
    np.testing.assert_array_equal(clipped.grad_norms, plain.grad_norms)  # backward itself is untouched
    assert clipped.rate() == pytest.approx(plain.rate(), abs=1e-12)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(clipped.step_terms[name].sum(axis=0), p.grad, rtol=0, atol=1e-12)


def _scaled_rnn(rho: float, hidden: int = H) -> RNN:
    layer = RNN(D, hidden, rng=0)
    layer.weight_hh_l0.data = layer.weight_hh_l0.data * (rho / spectral_radius(layer.weight_hh_l0.data))
    return layer


# ---------------------------------------------------------------- health check


def _linear_report(rho: float, steps: int = 40) -> tuple[LinearRNN, GradFlowReport]:
    layer = LinearRNN(D, H, rng=0)
    layer.weight_hh_l0.data = _symmetric(np.array([rho, 0.2, 0.1, 0.05]))
    return layer, gradient_flow(layer, _inputs(steps=steps), jacobians=False)


def test_health_flags_vanishing_steps_and_names_the_op() -> None:
    layer, report = _linear_report(0.3)
    health = check_gradients(layer, report)
    vanishing = [p for p in health.problems if p.kind == "vanishing"]
    # ||dL/dh_t|| ~ 0.3^(T-t): below 1e-8 from about 15 steps back
    assert vanishing and all(p.where.startswith("dL/dh_") for p in vanishing)
    last_bad = max(int(p.where.split("_")[1]) for p in vanishing)
    assert report.grad_norms[last_bad - 1] < 1e-8 <= report.grad_norms[last_bad]
    assert vanishing[0].origin is not None and "matmul" in vanishing[0].origin and "step" in vanishing[0].origin
    assert not health.ok and "vanishing" in str(health)


def test_health_flags_exploding_and_names_the_op() -> None:
    layer, report = _linear_report(1.6)
    health = check_gradients(layer, report)
    assert {"exploding"} == health.kinds()
    assert any(p.where == "param weight_hh_l0" for p in health.problems)
    origin = health.problems[0].origin
    assert origin is not None and "matmul" in origin


def test_health_flags_nan_and_inf_and_names_the_op() -> None:
    p = Parameter(np.array([0.0, 1.0]))
    with backward_trace() as bt, np.errstate(divide="ignore", invalid="ignore"):
        (p * 0.0).sqrt().sum().backward()  # d sqrt(u)/du = inf at u = 0; then inf * 0 = nan
    health = check_gradients({"p": p}, trace=bt)
    assert health.kinds() == {"nan"}
    assert health.problems[0].origin is not None and "sqrt" in health.problems[0].origin

    q = Parameter(np.array([0.0, 4.0]))
    with backward_trace() as bt, np.errstate(divide="ignore"):
        q.sqrt().sum().backward()
    health = check_gradients([q], trace=bt)
    assert health.kinds() == {"inf"} and "sqrt" in (health.problems[0].origin or "")


def test_health_flags_a_silent_zero_and_a_missing_gradient() -> None:
    used, unused = Parameter(np.array([0.1, 0.2])), Parameter(np.array([1.0]))
    with backward_trace() as bt:
        (used - 10.0).relu().sum().backward()
    health = check_gradients({"used": used, "unused": unused}, trace=bt)
    kinds = {p.where: p.kind for p in health.problems}
    assert kinds == {"param used": "zero", "param unused": "missing"}
    assert "relu" in (health.problems[0].origin or "")


def test_health_passes_a_healthy_network() -> None:
    layer = RNN(D, H, rng=0)
    report = gradient_flow(layer, _inputs(), jacobians=False)
    health = check_gradients(layer, report)
    assert health.ok and health.checked == len(layer.parameters()) + T
    assert "healthy" in str(health)


@pytest.mark.parametrize("probe", [True, False], ids=["probe-on-h_T", "readout-at-every-step"])
@pytest.mark.parametrize("name", [n for n in LAYERS if n != "linear"])
def test_health_passes_every_healthy_layer_graph(name: str, probe: bool) -> None:
    layer = LAYERS[name]()
    loss_fn = None if probe else _readout_loss(Linear(H, 2, rng=1))
    report = gradient_flow(layer, _inputs(), loss_fn, jacobians=False)
    health = check_gradients(layer, report)
    assert health.ok and health.checked == len(layer.parameters()) + T, str(health)


@pytest.mark.parametrize(("name", "module"), [("lstm-2-layers", "lstm.l1"), ("gru-lengths", "gru.l0")])
def test_health_names_the_op_where_a_nan_input_reaches_the_gradient(name: str, module: str) -> None:
    """A NaN in step 1's input makes every later state NaN; under the default probe (linear in h_T)
    backward first meets it in the last step of the top layer, where a finite incoming gradient
    is multiplied by a NaN activation."""
    layer = LAYERS[name]()
    x = _inputs()
    x[1, 0, 0] = np.nan  # sequence 0, which every length covers
    with np.errstate(invalid="ignore"):
        report = gradient_flow(layer, x, jacobians=False)
    health = check_gradients(layer, report)
    nan = [p for p in health.problems if p.kind == "nan"]
    assert {p.where for p in nan} >= {f"param {n}" for n, _ in layer.named_parameters()}
    assert all(p.origin is not None and f"[module {module}, step {T - 1}]" in p.origin for p in nan)


def test_health_rejects_bad_tolerances() -> None:
    with pytest.raises(ArgumentError, match="vanish_tol"):
        check_gradients([], vanish_tol=1.0, explode_tol=0.5)
    with pytest.raises(ArgumentError, match="not a Tensor"):
        check_gradients({"w": 3.0})  # type: ignore[arg-type]  # the wrong type is the point


# ---------------------------------------------------------------- errors


def test_errors_name_the_problem() -> None:
    with pytest.raises(GradientError, match="hidden_states"):
        hidden_states(tg.Tensor(np.ones(3), requires_grad=True) * 2)
    with pytest.raises(ShapeError, match="single-element"):
        gradient_flow(RNN(D, H, rng=0), _inputs(), lambda out: out)
    with pytest.raises(ArgumentError, match="sample=5"):
        jacobian_norms(RNN(D, H, rng=0), _inputs(), sample=5)
    with pytest.raises(ShapeError, match=r"LinearRNN: input has shape \(6, 3\)"):
        LinearRNN(D, H)(np.ones((6, 3)))
    with pytest.raises(ArgumentError, match="first"):
        decay_rate(np.ones(4), 3, 2)
    assert math.isnan(decay_rate(np.zeros(4)))


# ---------------------------------------------------------------- experiments and the command


def test_experiment_rows_vanish_and_explode_as_configured() -> None:
    """With 32 units rho = 2 explodes (with 8 units tanh saturation wins and even rho = 3 vanishes)."""
    configs = default_configs(rho_small=0.5, rho_large=2.0, clip=0.5, gate_bias=3.0)
    rows = run_experiment(configs, T=30, batch=2, hidden=32)
    rates = {row.config.label: row.report.rate() for row in rows}
    assert rates["rnn rho=0.5"] < 1 < rates["rnn rho=2"]
    assert rates["rnn rho=0.5 + clip 0.5"] == pytest.approx(rates["rnn rho=0.5"], abs=1e-12)
    assert rates["rnn rho=2 + clip 0.5"] == pytest.approx(rates["rnn rho=2"], abs=1e-12)
    # opening the state-keeping gate slows the decay
    assert rates["lstm forget bias +3"] > rates["lstm"] and rates["gru update bias +3"] > rates["gru"]
    table = format_table(rows)
    assert all(row.config.label in table for row in rows) and len(table.splitlines()) == len(rows) + 2


def test_lag_sweep_stops_a_cell_at_its_first_failure() -> None:
    easy = lag_sweep(cells=("rnn",), lags=(1, 2), threshold=1e-6, budget=2, eval_every=1, hidden=4, batch=2)
    assert [(r.lag, r.learned, r.steps) for r in easy.results] == [(1, True, 1), (2, True, 1)]
    assert easy.longest("rnn") == 2
    hard = lag_sweep(cells=("gru",), lags=(3, 1), threshold=1.0, budget=2, hidden=4, batch=2)
    assert [(r.lag, r.learned) for r in hard.results] == [(1, False)]  # sorted, then stopped
    assert hard.longest("gru") == 0 and "longest lag learned" in str(hard)
    with pytest.raises(ArgumentError, match="unknown cell"):
        lag_sweep(cells=("tcn",))


def test_cli_gradflow_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["gradflow", "--T", "12", "--batch", "2", "--hidden", "4", "--health"])
    out = capsys.readouterr().out
    assert status == 0
    for label in ("rnn rho=0.9", "rnn rho=2 + clip 1", "lstm forget bias +3", "gru"):
        assert label in out
    assert "rate/step" in out and "gradflow took" in out


def test_cli_gradflow_sweep_runs(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["gradflow", "--T", "4", "--batch", "1", "--hidden", "2", "--sweep", "--lags", "1", "--budget", "1"])
    assert status == 0 and "longest lag learned" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--T", "1"], "at least 2 steps"),
        (["--lags", "2,0"], "--lags"),
        (["--rho-small", "1.5"], "below 1"),
        (["--clip", "-1"], "--clip"),
        (["--plot", "/no/such/folder/x.png"], "--plot"),
    ],
)
def test_cli_gradflow_bad_arguments_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["gradflow", *argv])
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and "error" in err
    # Without matplotlib, --plot fails earlier, with the install hint instead of the folder
    assert message in err or ("--plot" in argv and "matplotlib" in err)


def test_cli_gradflow_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "flow.png"
    assert main(["gradflow", "--T", "6", "--batch", "1", "--hidden", "2", "--plot", str(target)]) == 0
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"plot saved to {target}" in capsys.readouterr().out
