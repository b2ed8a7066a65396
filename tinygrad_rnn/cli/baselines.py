"""cli/baselines.py — the classical models the command line reports beside its networks.

A network is only worth its training time if it beats the simple model a
statistician would fit first. `forecast` reports a linear autoregressive model
fitted by least squares on the same windows the network reads; `chars` reports
an interpolated Witten-Bell character n-gram model counted on the same training
text. Both are plain numpy, and neither uses the autodiff engine.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.errors import ArgumentError, ShapeError

# ---------------------------------------------------------------- linear autoregression


@dataclass(frozen=True)
class LinearAR:
    """x[t] ≈ intercept + weights · x[t - order : t]: the next value as a straight line through the window.

    `weights[j]` multiplies x[t - order + j], oldest value first, the order in which the window is read.
    """

    weights: np.ndarray
    intercept: float

    @property
    def order(self) -> int:
        return len(self.weights)

    @classmethod
    def fit(cls, values: np.ndarray, order: int) -> LinearAR:
        """Least squares over every window of `values`: minimise Σ_t (x[t] - intercept - weights · x[t-order:t])²."""
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 1:
            raise ShapeError(f"LinearAR.fit: values must be one series (1-D), got shape {values.shape}")
        if order < 1:
            raise ArgumentError(f"LinearAR.fit: order must be at least 1, got {order}")
        n_windows = len(values) - order
        if n_windows < order + 1:  # fewer equations than unknowns: the fit is not determined
            raise ArgumentError(
                f"LinearAR.fit: an AR({order}) has {order + 1} coefficients and needs at least {2 * order + 1} "
                f"values to fit, got {len(values)}"
            )
        design = np.column_stack([lagged_windows(values, order), np.ones(n_windows)])
        solution, *_ = np.linalg.lstsq(design, values[order:], rcond=None)
        return cls(weights=solution[:-1], intercept=float(solution[-1]))

    def predict_next(self, windows: np.ndarray) -> np.ndarray:
        """The next value after each row of `windows` (N, order)."""
        return np.asarray(windows, dtype=np.float64) @ self.weights + self.intercept

    def one_step(self, values: np.ndarray) -> np.ndarray:
        """The forecast of values[t] from the `order` values before it, for every t >= order."""
        return self.predict_next(lagged_windows(np.asarray(values, dtype=np.float64), self.order))

    def forecast(self, history: np.ndarray, horizon: int) -> np.ndarray:
        """`horizon` values ahead of `history`, each forecast fed back as the newest value of the next window.

        history (T,) -> (horizon,); or a batch (N, T) of histories -> (horizon, N). Only the last `order`
        values of each history are read.
        """
        history = np.asarray(history, dtype=np.float64)
        if history.ndim not in (1, 2):
            raise ShapeError(f"LinearAR.forecast: history must be (T,) or (N, T), got shape {history.shape}")
        if history.shape[-1] < self.order:
            raise ArgumentError(
                f"LinearAR.forecast: an AR({self.order}) needs {self.order} past values, got {history.shape[-1]}"
            )
        window = history[..., history.shape[-1] - self.order :]
        ahead = []
        for _ in range(horizon):
            value = self.predict_next(window)
            ahead.append(value)
            window = np.concatenate([window[..., 1:], value[..., None]], axis=-1)
        return np.stack(ahead) if ahead else np.empty((0, *history.shape[:-1]))


def lagged_windows(values: np.ndarray, order: int) -> np.ndarray:
    """(len(values) - order, order) array whose row i is values[i : i + order], the window before values[i + order]."""
    return np.lib.stride_tricks.sliding_window_view(values, order)[: len(values) - order]


# ---------------------------------------------------------------- character n-grams


class WittenBellNgram:
    """An interpolated Witten-Bell n-gram model over a fixed vocabulary of symbol ids 0 .. V - 1.

    With h a context of up to n - 1 symbols and h' the same context without its oldest symbol,

        P(c | h) = (C(h c) + T(h) P(c | h')) / (C(h) + T(h)),

    where C counts occurrences in the training sequence and T(h) is the number of distinct
    symbols seen after h. A context seen often with few followers trusts its own counts;
    one with many distinct followers leans on the shorter context. An unseen context
    (C(h) = 0) is P(c | h'), and the recursion ends at the uniform 1 / V, so every symbol
    has a probability above zero and the probabilities over the vocabulary sum to 1.
    """

    def __init__(self, ids: Sequence[int] | np.ndarray, vocab_size: int, order: int = 4) -> None:
        if order < 1:
            raise ArgumentError(f"WittenBellNgram: order must be at least 1, got {order}")
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < vocab_size]
        if bad:
            raise ArgumentError(f"WittenBellNgram: symbol id {bad[0]} is outside the vocabulary 0 .. {vocab_size - 1}")
        self.order = order
        self.vocab_size = vocab_size
        # followers[h] counts the symbols seen right after context h (a tuple of 0 .. order - 1 symbols)
        self.followers: dict[tuple[int, ...], Counter[int]] = defaultdict(Counter)
        for t, symbol in enumerate(ids):
            for k in range(min(order - 1, t) + 1):
                self.followers[tuple(ids[t - k : t])][symbol] += 1

    def distribution(self, context: Sequence[int]) -> np.ndarray:
        """P(· | context) over the whole vocabulary: only the last order - 1 symbols of `context` count."""
        history = tuple(int(i) for i in context)[max(0, len(context) - (self.order - 1)) :]
        p = np.full(self.vocab_size, 1.0 / self.vocab_size)
        for k in range(len(history) + 1):  # shortest context first, each level interpolating with the one below
            counts = self.followers.get(history[len(history) - k :])
            if not counts:
                continue
            seen = np.zeros(self.vocab_size)
            seen[list(counts)] = list(counts.values())
            total, distinct = seen.sum(), len(counts)
            p = (seen + distinct * p) / (total + distinct)
        return p

    def cross_entropy(self, ids: Sequence[int] | np.ndarray, start: int = 1) -> float:
        """Mean -ln P(ids[t] | ids[t - order + 1 : t]) over t >= start, in nats per symbol."""
        ids = [int(i) for i in ids]
        if not 0 <= start < len(ids):
            raise ArgumentError(f"WittenBellNgram.cross_entropy: start {start} is outside a sequence of {len(ids)}")
        nats = [-np.log(self.distribution(ids[max(0, t - self.order + 1) : t])[ids[t]]) for t in range(start, len(ids))]
        return float(np.mean(nats))
