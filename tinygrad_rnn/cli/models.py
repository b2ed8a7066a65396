"""cli/models.py — the two small models the command line trains, composed from tinygrad_rnn.nn.

Both are a recurrent layer (RNN, LSTM or GRU, PyTorch's API: sequence-first
(T, B, D) in, `(output, state)` out) followed by a Linear read-out at every time
step. Neither writes a backward pass: backprop through time is the engine's
ordinary backward over the unrolled loop inside the recurrent layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.engine import no_grad
from ..core.tensor import Tensor
from ..nn.init import RNG, make_rng
from ..nn.layers import Linear
from ..nn.module import Module
from ..nn.recurrent import GRU, LSTM, RNN

RECURRENT = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def make_recurrent(cell: str, input_size: int, hidden: int, layers: int, dtype: str, rng: RNG) -> Module:
    layer: Module = RECURRENT[cell](input_size, hidden, num_layers=layers, dtype=dtype, rng=rng)
    return layer


class Forecaster(Module):
    """Reads a series one value per step and predicts the next value at every step.

    x: (T, B, 1) standardised values  ->  (T, B, 1) predictions of x[t + 1], and the final state.
    """

    def __init__(self, cell: str, hidden: int, layers: int, dtype: str = "float64", rng: RNG = None) -> None:
        rng = make_rng(rng)  # one generator for both layers, so a seed fixes them all
        self.rnn = make_recurrent(cell, 1, hidden, layers, dtype, rng)
        self.head = Linear(hidden, 1, dtype=dtype, rng=rng)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        out, state = self.rnn(x, state)
        prediction: Tensor = self.head(out)
        return prediction, state

    def forecast(self, recent: np.ndarray, horizon: int) -> np.ndarray:
        """The next `horizon` values after each column of `recent` (window, B): (horizon, B).

        Each step reads the latest `window` values from a fresh state, as in training, and its
        prediction becomes the newest value the next step reads.
        """
        values = np.asarray(recent, dtype=self.head.weight.data.dtype)
        ahead = []
        with no_grad():
            for _ in range(horizon):
                prediction, _ = self(Tensor(values[:, :, None]))
                ahead.append(prediction.data[-1, :, 0])
                values = np.concatenate([values[1:], prediction.data[-1:, :, 0]])
        return np.array(ahead, dtype=np.float64)


class CharModel(Module):
    """A character-level language model: one-hot characters in, next-character logits out.

    idx: (T, B) integer character ids  ->  (T, B, V) logits, and the final state.
    """

    def __init__(
        self, cell: str, vocab_size: int, hidden: int, layers: int, dtype: str = "float64", rng: RNG = None
    ) -> None:
        rng = make_rng(rng)
        self.vocab_size = vocab_size
        self.dtype = np.dtype(dtype)
        self.rnn = make_recurrent(cell, vocab_size, hidden, layers, dtype, rng)
        self.head = Linear(hidden, vocab_size, dtype=dtype, rng=rng)

    def one_hot(self, idx: np.ndarray) -> Tensor:
        return Tensor(np.eye(self.vocab_size, dtype=self.dtype)[idx])

    def forward(self, idx: np.ndarray | Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """`idx` is (T, B) ids, or their one-hot (T, B, V) Tensor (what a compiled training step passes)."""
        x = idx if isinstance(idx, Tensor) else self.one_hot(idx)
        out, state = self.rnn(x, state)
        logits: Tensor = self.head(out)
        return logits, state
