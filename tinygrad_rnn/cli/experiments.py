"""cli/experiments.py — the experiments behind `tinygrad-rnn gradflow`. Read after inspect/gradflow.py.

`run_experiment` measures, at initialisation, how ||dL/dh_t|| falls or grows
from t = T back to t = 1 on the adding problem (`tinygrad_rnn.io.data`), for

- a vanilla tanh RNN whose W_hh is rescaled to a spectral radius below 1
  (vanishing) and above 1 (exploding), each without and with gradient clipping;
- an LSTM and a GRU at PyTorch's default initialisation, and with the gate that
  carries the state (LSTM forget gate, GRU update gate) biased open.

Clipping (`nn.utils.clip_grad_norm_`) acts after backward: it multiplies every
parameter's gradient by one number c = min(1, max_norm / ||g||). So it scales
the whole per-step profile by c and leaves its shape — the rate per step —
exactly as it was. The "+ clip" rows show c * ||dL/dh_t||, what the clipped
update is made of; what clipping buys is a bounded step, not longer memory.

`lag_sweep` trains each cell on the delayed-copy task for growing lags within
a fixed budget of updates and reports the longest lag each one learns.

Both only compose the library: layers from nn, losses from nn.functional,
Adam from optim, and `gradient_flow` for the measurements.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.engine import no_grad, scope
from ..core.errors import ArgumentError, ShapeError, fmt_shape
from ..core.tensor import Tensor, stack
from ..inspect.gradflow import GradFlowReport, gradient_flow, spectral_radius
from ..io.data import adding_problem, delayed_copy
from ..nn.functional import cross_entropy, mse_loss
from ..nn.init import RNG, make_rng
from ..nn.layers import Linear
from ..nn.module import Module, Parameter
from ..nn.recurrent import GRU, LSTM, RNN
from ..nn.utils import clip_grad_norm_
from ..optim import Adam
from .common import compiled

CELLS: dict[str, type[RNN] | type[LSTM] | type[GRU]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


# ---------------------------------------------------------------- the gradient-flow table


# ---------------------------------------------------------------- the theory's model


class LinearRNN(Module):
    """h_t = x_t W_ih^T + h_{t-1} W_hh^T: an RNN with the identity as nonlinearity.

    Not a layer to train: the model in which the theory is exact. Its step
    Jacobian is W_hh itself, so dh_T/dh_t = W_hh^(T-t), and for a symmetric
    (or any normal) W_hh, ||dh_T/dh_t||_2 = rho(W_hh)^(T-t) exactly. Same call
    convention, parameter names and `engine.scope` tags as nn.RNN:
    `layer(x, h0=None) -> (output (T, B, H), h_n (1, B, H))`.

    >>> layer = LinearRNN(2, 3, rng=0)
    >>> out, h_n = layer(np.ones((5, 4, 2)))
    >>> out.shape, h_n.shape
    ((5, 4, 3), (1, 4, 3))
    """

    def __init__(self, input_size: int, hidden_size: int, rng: RNG = None) -> None:
        if input_size < 1 or hidden_size < 1:
            raise ArgumentError(f"LinearRNN: sizes must be positive, got {input_size}, {hidden_size}")
        gen = make_rng(rng)
        bound = 1.0 / math.sqrt(hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih_l0 = Parameter(gen.uniform(-bound, bound, (hidden_size, input_size)))
        self.weight_hh_l0 = Parameter(gen.uniform(-bound, bound, (hidden_size, hidden_size)))

    def forward(self, input: Any, h0: Any = None) -> tuple[Tensor, Tensor]:
        x = input if isinstance(input, Tensor) else Tensor(input)
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ShapeError(
                f"LinearRNN: input has shape {fmt_shape(x.shape)}, expected (T, batch, input_size={self.input_size})"
            )
        batch = x.shape[1]
        h = (
            Tensor(np.zeros((batch, self.hidden_size)))
            if h0 is None
            else (h0 if isinstance(h0, Tensor) else Tensor(h0)).reshape(batch, -1)
        )
        with scope(module="linearrnn.l0"):
            w_ih, w_hh = self.weight_ih_l0.T, self.weight_hh_l0.T
        outputs = []
        for t in range(x.shape[0]):
            with scope(module="linearrnn.l0", step=t):
                h = x[t] @ w_ih + h @ w_hh
            outputs.append(h)
        return stack(outputs, axis=0), h.reshape(1, batch, self.hidden_size)


@dataclass
class Config:
    """One row of the experiment: a cell, and how its recurrent weights or gates start."""

    label: str
    cell: str  # "rnn" | "lstm" | "gru"
    rho: float | None = None  # rescale W_hh to this spectral radius (rnn only)
    gate_bias: float = 0.0  # added to the bias of the gate that keeps the state (lstm f, gru z)
    clip: float | None = None  # clip_grad_norm_ max_norm


@dataclass
class Row:
    config: Config
    report: GradFlowReport

    @property
    def profile(self) -> np.ndarray:
        """||dL/dh_t|| as the update sees it: times the clipping factor for a clipped row."""
        return self.report.clipped_grad_norms()

    def early_share(self) -> float:
        """The share of sum_t ||term_t of dL/dW_hh|| that comes from the first half of the sequence."""
        norms = self.report.term_norms("weight_hh_l0")
        total = float(norms.sum())
        return float(norms[: len(norms) // 2].sum()) / total if total > 0 else float("nan")


def default_configs(
    rho_small: float = 0.9, rho_large: float = 2.0, clip: float = 1.0, gate_bias: float = 3.0
) -> list[Config]:
    """The eight rows of `tinygrad-rnn gradflow`."""
    return [
        Config(f"rnn rho={rho_small:g}", "rnn", rho=rho_small),
        Config(f"rnn rho={rho_small:g} + clip {clip:g}", "rnn", rho=rho_small, clip=clip),
        Config(f"rnn rho={rho_large:g}", "rnn", rho=rho_large),
        Config(f"rnn rho={rho_large:g} + clip {clip:g}", "rnn", rho=rho_large, clip=clip),
        Config("lstm", "lstm"),
        Config(f"lstm forget bias +{gate_bias:g}", "lstm", gate_bias=gate_bias),
        Config("gru", "gru"),
        Config(f"gru update bias +{gate_bias:g}", "gru", gate_bias=gate_bias),
    ]


def build_layer(config: Config, input_size: int, hidden: int, seed: int) -> Module:
    """The layer of one row, initialised as PyTorch does, then rescaled or biased as the row says."""
    if config.cell not in CELLS:
        raise ArgumentError(f"build_layer: unknown cell {config.cell!r}; choose from {', '.join(CELLS)}")
    layer = CELLS[config.cell](input_size, hidden, rng=seed)
    params = dict(layer.named_parameters())
    w = params["weight_hh_l0"]
    if config.rho is not None:
        if config.cell != "rnn":
            raise ArgumentError(f"build_layer: rho rescales a vanilla RNN's W_hh, not an {config.cell}'s")
        if not config.rho > 0:
            raise ArgumentError(f"build_layer: rho must be > 0, got {config.rho}")
        w.data = w.data * (config.rho / spectral_radius(w.data))
    if config.gate_bias:
        if config.cell == "rnn":
            raise ArgumentError("build_layer: gate_bias needs a gated cell (lstm or gru)")
        # Rows H..2H are the forget gate of an LSTM (i, f, g, o) and the update gate z of a GRU (r, z, n).
        bias = params["bias_ih_l0"]
        shifted = bias.data.copy()  # rebind, not update in place: nobody else's view of the array changes
        shifted[hidden : 2 * hidden] += config.gate_bias
        bias.data = shifted
    return layer


def run_experiment(
    configs: Sequence[Config] | None = None,
    *,
    T: int = 200,
    batch: int = 16,
    hidden: int = 32,
    seed: int = 0,
    jacobians: bool = False,
) -> list[Row]:
    """Measure every configuration on the same adding-problem batch, each layer seeded alike.

    The loss is the adding problem's: a Linear read-out of h_T, mean squared
    error against the sum of the two marked values; only h_T feeds it, so
    ||dL/dh_t|| for t < T is carried back by the recurrence alone.
    """
    x, targets, _ = adding_problem(T, batch, seed=seed)
    rows = []
    for config in configs if configs is not None else default_configs():
        layer = build_layer(config, 2, hidden, seed)
        head = Linear(hidden, 1, rng=seed + 1)

        def loss_fn(output: Tensor, head: Linear = head) -> Tensor:
            return mse_loss(head(output[-1]), targets[-1])

        report = gradient_flow(layer, x, loss_fn, clip=config.clip, jacobians=jacobians)
        rows.append(Row(config, report))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """The table `tinygrad-rnn gradflow` prints: norms at t = T, T/2, 1 and the fitted rate per step."""
    if not rows:
        return "(no rows)"
    T = rows[0].report.T
    half = max(T // 2, 1)
    head = (
        f"{'configuration':<26} {'|dL/dh_T|':>10} {'|dL/dh_' + str(half) + '|':>11} {'|dL/dh_1|':>10} "
        f"{'rate/step':>9} {'|grad|':>9} {'clip x':>8} {'early':>6}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        p = row.profile
        r = row.report
        lines.append(
            f"{row.config.label:<26} {p[-1]:>10.2e} {p[half - 1]:>11.2e} {p[0]:>10.2e} "
            f"{r.rate():>9.4f} {r.total_norm:>9.2e} {r.clip_coef:>8.2g} {row.early_share():>6.1%}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- the lag sweep


@dataclass
class LagResult:
    cell: str
    lag: int
    accuracy: float  # on a held-out batch, over the scored steps t >= lag
    steps: int  # updates used (fewer than the budget when the threshold was reached early)
    learned: bool


@dataclass
class SweepResult:
    threshold: float
    budget: int
    results: list[LagResult] = field(default_factory=list)
    seconds: float = 0.0

    def longest(self, cell: str) -> int:
        """The longest lag `cell` learned (0 if none): the sweep stops a cell at its first failure."""
        return max((r.lag for r in self.results if r.cell == cell and r.learned), default=0)

    def __str__(self) -> str:
        cells = list(dict.fromkeys(r.cell for r in self.results))
        lags = sorted({r.lag for r in self.results})
        lines = [f"{'lag':>5} " + " ".join(f"{c:>11}" for c in cells)]
        for lag in lags:
            cellsout = []
            for c in cells:
                hit = [r for r in self.results if r.cell == c and r.lag == lag]
                cellsout.append(f"{hit[0].accuracy:>6.0%} ({'yes' if hit[0].learned else 'no '})" if hit else " " * 11)
            lines.append(f"{lag:>5} " + " ".join(f"{s:>11}" for s in cellsout))
        longest = ", ".join(f"{c} {self.longest(c)}" for c in cells)
        lines.append(
            f"longest lag learned (held-out accuracy >= {self.threshold:.0%} within {self.budget} updates): {longest}"
        )
        return "\n".join(lines)


class _CopyModel(Module):
    def __init__(self, cell: str, symbols: int, hidden: int, seed: int, gate_bias: float = 0.0) -> None:
        self.rnn = build_layer(Config(cell, cell, gate_bias=gate_bias), symbols, hidden, seed)
        self.head = Linear(hidden, symbols, rng=seed + 1)

    def forward(self, x: np.ndarray) -> Tensor:
        output, _ = self.rnn(x)
        logits: Tensor = self.head(output)
        return logits


def _accuracy(model: _CopyModel, x: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> float:
    with no_grad():
        predictions = model(x).data.argmax(axis=-1)
    return float(((predictions == targets) * mask).sum() / mask.sum())


def copy_forward_backward(model: _CopyModel) -> Callable[[np.ndarray, np.ndarray, np.ndarray], Tensor]:
    """The part of a `train_copy` step that tg.compile replays. The targets come in one-hot, as floats: tg.compile
    keys its cache on the values of integer arguments, so class indices would record a new program at every
    step. The one-hot target gives the same cross-entropy and gradient as the indices, to the bit."""

    def forward_backward(x: np.ndarray, target: np.ndarray, mask: np.ndarray) -> Tensor:
        loss = cross_entropy(model(x), Tensor(target), mask=mask, dim=-1)
        loss.backward()
        return loss.detach()

    return forward_backward


def train_copy(
    cell: str,
    lag: int,
    *,
    budget: int = 300,
    scored: int = 10,
    symbols: int = 4,
    hidden: int = 32,
    batch: int = 16,
    lr: float = 0.02,
    clip: float = 1.0,
    threshold: float = 0.9,
    eval_every: int = 25,
    gate_bias: float = 0.0,
    seed: int = 0,
    compile: bool = False,
) -> LagResult:
    """Train `cell` on delayed copy with the given lag (sequences of lag + scored steps) for at most `budget` updates.

    Adam, cross-entropy over the steps t >= lag, gradients clipped to `clip`.
    Every `eval_every` updates the accuracy is measured on a fixed held-out
    batch; the run stops as soon as it reaches `threshold` (then: learned).
    With `compile`, the forward and backward are replayed by tg.compile: the same results to the bit.
    """
    if lag < 1 or budget < 1 or scored < 1:
        raise ArgumentError(f"train_copy: lag, budget and scored must be >= 1, got {lag}, {budget}, {scored}")
    T = lag + scored
    model = _CopyModel(cell, symbols, hidden, seed, gate_bias if cell != "rnn" else 0.0)
    optimizer = Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    held_out = delayed_copy(T, 4 * batch, lag, symbols, seed=np.random.default_rng(seed + 10_000))
    accuracy = _accuracy(model, *held_out)
    forward_backward = compiled(copy_forward_backward(model), compile)
    one_hot = np.eye(symbols)
    for step in range(1, budget + 1):
        x, targets, mask = delayed_copy(T, batch, lag, symbols, seed=rng)
        optimizer.zero_grad()
        forward_backward(x, one_hot[targets], mask)
        clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if step % eval_every == 0 or step == budget:
            accuracy = _accuracy(model, *held_out)
            if accuracy >= threshold:
                return LagResult(cell, lag, accuracy, step, True)
    return LagResult(cell, lag, accuracy, budget, False)


def lag_sweep(
    cells: Sequence[str] = ("rnn", "lstm", "gru"),
    lags: Sequence[int] = (2, 4, 8, 16, 32),
    *,
    threshold: float = 0.9,
    budget: int = 300,
    progress: Callable[[LagResult], None] | None = None,
    **train_options: float,
) -> SweepResult:
    """For each cell, train on delayed copy at each lag in turn; stop the cell at its first failure.

    "Learns" means: held-out accuracy on the scored steps >= `threshold`
    (chance is 1 / symbols) within `budget` Adam updates. Options are passed to `train_copy`.
    """
    for c in cells:
        if c not in CELLS:
            raise ArgumentError(f"lag_sweep: unknown cell {c!r}; choose from {', '.join(CELLS)}")
    if not 0 < threshold <= 1:
        raise ArgumentError(f"lag_sweep: threshold must be in (0, 1], got {threshold}")
    start = time.perf_counter()
    sweep = SweepResult(threshold, budget)
    for c in cells:
        for lag in sorted(lags):
            result = train_copy(c, lag, budget=budget, threshold=threshold, **train_options)  # type: ignore[arg-type]
            sweep.results.append(result)
            if progress is not None:
                progress(result)
            if not result.learned:
                break
    sweep.seconds = time.perf_counter() - start
    return sweep
