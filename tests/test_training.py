"""Training actually learns: a small RNN learns a task that needs memory, and an LSTM learns a longer lag.

Everything here is the public API as a user would write it: a layer from
`tg.nn`, a `Linear` read-out, a loss from `tg.nn.functional`, `clip_grad_norm_`
and `tg.optim.Adam`, on tasks from `tg.data`. No gradient is written by hand.
Each run is seeded (the layer, the read-out, the training batches and a
separate held-out batch), so a test either always passes or always fails on a
given numpy. For the seed the tests use (0) every result is about 3x or more away
from its threshold; the table below shows how the other seeds fall.

1. Delayed copy (`tg.data.delayed_copy`, lag 3, 4 symbols, 13 steps). The
   target at step t is the symbol seen at t - 3, which is independent of the
   symbol seen at t, so a model without memory cannot beat chance,
   log 4 = 1.386 nats. A tanh `RNN` with 16 units (Linear read-out at every
   step, batch 16, Adam lr 0.02, gradient norm clipped to 1) must take the
   held-out cross-entropy from above 1.0 to below 0.1 nats, with accuracy
   >= 99%, in 200 updates (about 0.4 s). A `Linear` trained the same way on
   x_t alone must stay above 1.3 nats: the task needs memory.

2. Adding problem (`tg.data.adding_problem`: two marked values in a sequence
   of length T, the first in the first half, their sum read out at the last
   step; always answering 1 scores MSE 1/6 = 0.167). Same budget for every
   model: 300 Adam updates, lr 0.02, batch 32, gradient norm clipped to 1,
   read-out Linear(H, 1) on the last output. "Learns" means held-out MSE
   (512 sequences) < 0.02. The LSTM is at PyTorch's default initialisation;
   no forget-gate bias is added.

   - the vanilla RNN (H=16) learns T=4: the model, budget and threshold can succeed;
   - the vanilla RNN fails at T=12, both at the LSTM's hidden size (H=16,
     337 parameters with the read-out) and at about the LSTM's parameter count
     (H=32, 1185 parameters);
   - the LSTM (H=16, 1297 parameters) learns T=12.

Measured (held-out MSE after 300 updates; threshold 0.02):

                     seeds 0-9                   seeds 10-19
    rnn  H=16 T=4    0.002 - 0.007  learns 10/10  0.002 - 0.011  learns 10/10
    rnn  H=16 T=6    0.005 - 0.031  learns  8/10  0.008 - 0.028  learns  8/10
    rnn  H=16 T=10   0.028 - 0.147  learns  0/10  0.034 - 0.166  learns  0/10
    rnn  H=16 T=12   0.070 - 0.180  learns  0/10  0.030 - 0.185  learns  0/10
    rnn  H=32 T=12   0.105 - 0.191  learns  0/10  0.062 - 0.217  learns  0/10
    lstm H=16 T=10   0.001 - 0.006  learns 10/10  0.001 - 0.104  learns  9/10
    lstm H=16 T=12   0.001 - 0.005  learns 10/10  0.001 - 0.198  learns  9/10
    lstm H=16 T=15   0.002 - 0.154  learns  7/10

So within this budget the LSTM learns T=12 for 19 seeds of 20 and the RNN for
none (at either size); the RNN learns T=4 for all 20, T=6 for 16 of 20, T=10
for none. The one LSTM failure (seed 13) fails at T=10 as well, yet learns
T=8 (0.003): a slow start, not a length limit. The RNN's failure at T=12 is not
its learning rate: with lr 0.005 or 0.05 it ends at 0.152 - 0.195 (seeds 0-4;
lr 0.01 did no better than 0.02 at T=10). It is the budget: with 1000 updates
instead of 300 the RNN reaches 0.007 - 0.025 at T=12 (seeds 0-2). Delayed copy
with many symbols does not separate the cells in small budgets (capacity
dominates there); the adding problem does. Delayed copy, lag 3: final
held-out loss 0.002 - 0.011 nats, accuracy 100%, for seeds 0-19.

The tests use seed 0 and take about 4 s in all. Reproduce the table (any
seeds, lengths) with

    python tests/test_training.py --seeds 0-9     # or --seeds 10-19, or e.g. --runs lstm:16:8
    python tests/test_training.py --seeds 0-4 --lr 0.05 --runs rnn:16:12
    python tests/test_training.py --seeds 0-2 --updates 1000 --runs rnn:16:12

"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.nn.functional import cross_entropy, mse_loss
from tinygrad_rnn.nn.utils import clip_grad_norm_

SEED = 0
CLIP = 1.0

# delayed copy
COPY_LAG, COPY_SYMBOLS, COPY_SCORED = 3, 4, 10
COPY_HIDDEN, COPY_BATCH, COPY_UPDATES, COPY_LR = 16, 16, 200, 0.02
COPY_LOSS_AT_START = 1.0  # the untrained RNN must be above this (chance is log 4 = 1.386)
COPY_LOSS_LEARNED = 0.1  # nats; the trained RNN must be below this
COPY_ACCURACY_LEARNED = 0.99
COPY_MEMORYLESS_FLOOR = 1.3  # a model of x_t alone cannot get below about log 4

# adding problem
ADD_BATCH, ADD_UPDATES, ADD_LR, ADD_HELD_OUT = 32, 300, 0.02, 512
ADD_LEARNED = 0.02  # held-out MSE; always answering 1 gives 1/6 = 0.167
CELLS = {"rnn": tg.nn.RNN, "lstm": tg.nn.LSTM}


def train(
    model: tg.nn.Module,
    loss_of: Callable[[tg.nn.Module, np.random.Generator], tg.Tensor],
    updates: int,
    lr: float,
    seed: int,
) -> None:
    """`updates` Adam steps on fresh batches drawn by `loss_of(model, rng)`, gradient norm clipped to CLIP."""
    optimizer = tg.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(updates):
        loss = loss_of(model, rng)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()


# ---------------------------------------------------------------- 1. a small RNN learns delayed copy


class CopyNet(tg.nn.Module):
    """A tanh RNN and a Linear read-out at every step: logits (T, B, symbols)."""

    def __init__(self, symbols: int, hidden: int, seed: int) -> None:
        self.rnn = tg.nn.RNN(symbols, hidden, rng=seed)
        self.head = tg.nn.Linear(hidden, symbols, rng=seed + 1)

    def forward(self, x: np.ndarray) -> tg.Tensor:
        output, _ = self.rnn(x)
        logits: tg.Tensor = self.head(output)
        return logits


class Memoryless(tg.nn.Module):
    """A Linear map of x_t alone: the best any model without memory can do."""

    def __init__(self, symbols: int, seed: int) -> None:
        self.head = tg.nn.Linear(symbols, symbols, rng=seed)

    def forward(self, x: np.ndarray) -> tg.Tensor:
        logits: tg.Tensor = self.head(x)
        return logits


def copy_batch(batch: int, seed: int | np.random.Generator) -> tg.data.SequenceTask:
    return tg.data.delayed_copy(COPY_LAG + COPY_SCORED, batch, COPY_LAG, COPY_SYMBOLS, seed=seed)


def copy_loss(model: tg.nn.Module, rng: np.random.Generator) -> tg.Tensor:
    x, targets, mask = copy_batch(COPY_BATCH, rng)
    return cross_entropy(model(x), targets, mask=mask)


def copy_scores(model: tg.nn.Module, seed: int) -> tuple[float, float]:
    """Held-out cross-entropy (nats) and accuracy over the scored steps t >= lag."""
    x, targets, mask = copy_batch(256, seed + 10_000)
    with tg.no_grad():
        logits = model(x)
        loss = float(cross_entropy(logits, targets, mask=mask).item())
    accuracy = float(((logits.data.argmax(axis=-1) == targets) * mask).sum() / mask.sum())
    return loss, accuracy


def test_small_rnn_learns_delayed_copy_within_a_small_budget_of_updates() -> None:
    # The budget is a number of updates, not seconds: tests never assert a time (shared machines).
    model = CopyNet(COPY_SYMBOLS, COPY_HIDDEN, SEED)
    loss_before, _ = copy_scores(model, SEED)
    assert loss_before > COPY_LOSS_AT_START, f"untrained loss {loss_before:.3f} is already below the bar"

    train(model, copy_loss, COPY_UPDATES, COPY_LR, SEED)

    loss_after, accuracy = copy_scores(model, SEED)
    assert loss_after < COPY_LOSS_LEARNED, f"held-out loss {loss_before:.3f} -> {loss_after:.3f}"
    assert accuracy >= COPY_ACCURACY_LEARNED, f"held-out accuracy {accuracy:.1%}"


def test_delayed_copy_needs_memory() -> None:
    """The same training gives a model of x_t alone nothing to learn: it stays near chance."""
    model = Memoryless(COPY_SYMBOLS, SEED)
    train(model, copy_loss, COPY_UPDATES, COPY_LR, SEED)
    loss, _ = copy_scores(model, SEED)
    assert loss > COPY_MEMORYLESS_FLOOR, f"a memoryless model reached {loss:.3f} nats"


# ---------------------------------------------------------------- 2. the LSTM learns a longer lag


class AddNet(tg.nn.Module):
    """A recurrent layer and a Linear read-out of its last output: (B, 1)."""

    def __init__(self, cell: str, hidden: int, seed: int) -> None:
        self.rnn = CELLS[cell](2, hidden, rng=seed)  # PyTorch's default initialisation, unchanged
        self.head = tg.nn.Linear(hidden, 1, rng=seed + 1)

    def forward(self, x: np.ndarray) -> tg.Tensor:
        output, _ = self.rnn(x)
        prediction: tg.Tensor = self.head(output[-1])
        return prediction


def adding_mse(model: tg.nn.Module, T: int, seed: int) -> float:
    x, targets, _ = tg.data.adding_problem(T, ADD_HELD_OUT, seed=seed + 10_000)
    with tg.no_grad():
        return float(mse_loss(model(x), targets[-1]).item())


def adding_run(
    cell: str, hidden: int, T: int, seed: int, updates: int = ADD_UPDATES, lr: float = ADD_LR
) -> tuple[float, float]:
    """Held-out MSE before and after `updates` Adam updates on the adding problem of length T."""
    model = AddNet(cell, hidden, seed)
    before = adding_mse(model, T, seed)

    def loss_of(model: tg.nn.Module, rng: np.random.Generator) -> tg.Tensor:
        x, targets, _ = tg.data.adding_problem(T, ADD_BATCH, seed=rng)
        return mse_loss(model(x), targets[-1])

    train(model, loss_of, updates, lr, seed)
    return before, adding_mse(model, T, seed)


@pytest.mark.parametrize(
    ("cell", "hidden", "T", "learns"),
    [
        pytest.param("rnn", 16, 4, True, id="rnn-H16-T4-learns"),
        pytest.param("rnn", 16, 12, False, id="rnn-H16-T12-fails"),
        pytest.param("rnn", 32, 12, False, id="rnn-H32-T12-fails"),  # about the LSTM's parameter count
        pytest.param("lstm", 16, 12, True, id="lstm-H16-T12-learns"),
    ],
)
def test_lstm_learns_a_longer_lag_than_the_rnn_in_the_same_budget(cell: str, hidden: int, T: int, learns: bool) -> None:
    """Together: the RNN learns T=4 but not T=12, the LSTM learns T=12, all with 300 updates."""
    before, after = adding_run(cell, hidden, T, SEED)
    assert before > ADD_LEARNED, f"untrained {cell} already scores {before:.3f}"
    if learns:
        assert after < ADD_LEARNED, f"{cell} H={hidden} did not learn T={T}: MSE {before:.3f} -> {after:.3f}"
    else:
        assert after > ADD_LEARNED, f"{cell} H={hidden} learned T={T} after all: MSE {before:.3f} -> {after:.3f}"


def test_parameter_counts_are_as_stated() -> None:
    """The docstring compares an RNN of H=32 with an LSTM of H=16 as being of about the same size."""

    def count(cell: str, hidden: int) -> int:
        return sum(p.data.size for p in AddNet(cell, hidden, 0).parameters())

    assert (count("rnn", 16), count("rnn", 32), count("lstm", 16)) == (337, 1185, 1297)


# ---------------------------------------------------------------- reproducing the numbers in the docstring


DOCSTRING_RUNS = [
    "rnn:16:4",
    "rnn:16:6",
    "rnn:16:10",
    "rnn:16:12",
    "rnn:32:12",
    "lstm:16:10",
    "lstm:16:12",
    "lstm:16:15",
]


def _seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description="Re-measure the numbers in this module's docstring.")
    parser.add_argument("--seeds", type=_seeds, default=_seeds("0-9"), help="e.g. 0-9 or 0,3,7")
    parser.add_argument("--runs", nargs="*", default=DOCSTRING_RUNS, help="cell:hidden:T for the adding problem")
    parser.add_argument("--updates", type=int, default=ADD_UPDATES, help="adding problem only")
    parser.add_argument("--lr", type=float, default=ADD_LR, help="adding problem only")
    args = parser.parse_args()
    for seed in args.seeds:
        model = CopyNet(COPY_SYMBOLS, COPY_HIDDEN, seed)
        before, _ = copy_scores(model, seed)
        train(model, copy_loss, COPY_UPDATES, COPY_LR, seed)
        after, accuracy = copy_scores(model, seed)
        print(
            f"delayed copy lag {COPY_LAG} seed {seed}: loss {before:.3f} -> {after:.3f} nats, accuracy {accuracy:.0%}"
        )
    for run in args.runs:
        cell, hidden, T = run.split(":")
        results = [adding_run(cell, int(hidden), int(T), seed, args.updates, args.lr)[1] for seed in args.seeds]
        learned = sum(r < ADD_LEARNED for r in results)
        print(
            f"adding {cell:<4} H={hidden:<2} T={T:<3} MSE {min(results):.3f} - {max(results):.3f}"
            f"  learns {learned}/{len(results)}  [{' '.join(f'{r:.3f}' for r in results)}]",
            flush=True,
        )


if __name__ == "__main__":
    main()
