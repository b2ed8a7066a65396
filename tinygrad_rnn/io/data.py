"""data.py — synthetic sequence tasks whose difficulty is one knob: how far back the answer lies.

Read when you want something to train an RNN on. Each task is a few lines of
numpy, deterministic for a given seed, and returns arrays *sequence-first*,
(T, B, D) like the recurrent layers expect, together with a mask that says which
outputs count (pass it straight to `mse_loss` / `cross_entropy`):

- `delayed_copy(T, B, lag)`: output the symbol seen `lag` steps ago. A network
  can only solve it by carrying information across `lag` steps of BPTT.
- `adding_problem(T, B)`: two marked numbers somewhere in a long sequence; output
  their sum at the end. The first mark lies in the first half, so the answer
  depends on inputs at least T/2 steps back.
- `noisy_sine(T, B)` and `make_windows(series, window)`: a series to forecast,
  and the (input window, next value) pairs to learn from.

`seed` is an int or a `np.random.Generator`; there is no hidden global state.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..core.errors import ArgumentError, DTypeError, ShapeError, fmt_shape


class SequenceTask(NamedTuple):
    """A batch of a synthetic task: unpack as `inputs, targets, mask = task`."""

    inputs: np.ndarray  # (T, B, D) float64
    targets: np.ndarray  # see each task
    mask: np.ndarray  # broadcastable to the per-element loss; 1 where the output counts, 0 elsewhere


def delayed_copy(T: int, B: int, lag: int, num_symbols: int = 8, *, seed: int | np.random.Generator) -> SequenceTask:
    """Random symbols in, the same symbols `lag` steps later out.

    inputs:  (T, B, num_symbols) float64, one-hot; the symbol at (t, b) is inputs[t, b].argmax().
    targets: (T, B) int64 class indices, targets[t] = symbol at t - lag (for t >= lag).
    mask:    (T, B) float64, 0 for t < lag (nothing to recall yet; targets are 0 there), else 1.

    Train with `cross_entropy(logits, targets, mask=mask)` on logits of shape (T, B, num_symbols).
    Chance level is log(num_symbols) nats.
    """
    op = "delayed_copy"
    T, B, lag, num_symbols = (
        _count(op, n, v) for n, v in (("T", T), ("B", B), ("lag", lag), ("num_symbols", num_symbols))
    )
    if T < 1 or B < 1:
        raise ArgumentError(f"{op}: T and B must be >= 1, got T={T}, B={B}")
    if not 0 <= lag < T:
        raise ArgumentError(f"{op}: lag must be in [0, T) = [0, {T}), got lag={lag}; no target would remain")
    if num_symbols < 2:
        raise ArgumentError(f"{op}: num_symbols must be >= 2 (one symbol carries no information), got {num_symbols}")
    rng = _generator(op, seed)
    symbols = rng.integers(0, num_symbols, size=(T, B))
    inputs = np.eye(num_symbols)[symbols]
    targets = np.zeros((T, B), dtype=np.int64)
    targets[lag:] = symbols[: T - lag]
    mask = np.zeros((T, B))
    mask[lag:] = 1.0
    return SequenceTask(inputs, targets, mask)


def adding_problem(T: int, B: int, *, seed: int | np.random.Generator) -> SequenceTask:
    """Hochreiter & Schmidhuber's adding problem: sum the two marked values.

    inputs:  (T, B, 2) float64; channel 0 holds values uniform in [0, 1), channel 1
             is 1 at exactly two steps (one in [0, T//2), one in [T//2, T)) and 0 elsewhere.
    targets: (T, B, 1) float64; every step holds the sum of the two marked values,
             but only the last one counts (targets[-1] is the (B, 1) answer).
    mask:    (T, B, 1) float64, 1 at t = T-1 and 0 elsewhere.

    Train with `mse_loss(outputs, targets, mask=mask)`. Always answering 1 (the
    expected sum) gives an MSE of 1/6 ≈ 0.167, the baseline to beat.
    """
    op = "adding_problem"
    T, B = _count(op, "T", T), _count(op, "B", B)
    if T < 2 or B < 1:
        raise ArgumentError(f"{op}: needs T >= 2 (two marked steps) and B >= 1, got T={T}, B={B}")
    rng = _generator(op, seed)
    values = rng.random((T, B))
    half = T // 2
    first = rng.integers(0, half, size=B)
    second = rng.integers(half, T, size=B)
    marks = np.zeros((T, B))
    marks[first, np.arange(B)] = 1.0
    marks[second, np.arange(B)] = 1.0
    inputs = np.stack([values, marks], axis=-1)
    total = (values * marks).sum(axis=0)  # (B,)
    targets = np.broadcast_to(total[None, :, None], (T, B, 1)).copy()
    mask = np.zeros((T, B, 1))
    mask[-1] = 1.0
    return SequenceTask(inputs, targets, mask)


def noisy_sine(
    T: int, B: int = 1, period: float = 20.0, noise_std: float = 0.1, *, seed: int | np.random.Generator
) -> np.ndarray:
    """sin(2 pi (t + phase_b) / period) + noise_std * N(0, 1), shape (T, B, 1) float64.

    Each batch column gets its own random phase in [0, period). The period is the
    knob: predicting the next value well needs a memory of about a period.
    """
    op = "noisy_sine"
    T, B = _count(op, "T", T), _count(op, "B", B)
    if T < 1 or B < 1:
        raise ArgumentError(f"{op}: T and B must be >= 1, got T={T}, B={B}")
    period, noise_std = _real(op, "period", period), _real(op, "noise_std", noise_std)
    if not period > 0 or not noise_std >= 0:
        raise ArgumentError(f"{op}: needs period > 0 and noise_std >= 0, got period={period}, noise_std={noise_std}")
    rng = _generator(op, seed)
    phase = rng.uniform(0.0, period, size=B)
    t = np.arange(T, dtype=np.float64)[:, None]
    clean = np.sin(2 * np.pi * (t + phase[None, :]) / period)
    return (clean + noise_std * rng.standard_normal((T, B)))[:, :, None]


def make_windows(series: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(input windows, next values) from a (T, B, D) series, for one-step-ahead forecasting.

    Returns inputs of shape (window, N, D) and targets of shape (N, D), with
    N = (T - window) * B. Pair n = s * B + b reads series[s : s + window, b] and
    must predict series[s + window, b].
    """
    op = "make_windows"
    array = np.asarray(series)
    if array.ndim != 3:
        raise ShapeError(f"{op}: series must have shape (T, B, D), got {fmt_shape(array.shape)}")
    if array.dtype.kind not in "iuf":
        raise DTypeError(f"{op}: series must be numeric, got dtype {array.dtype}")
    window = _count(op, "window", window)
    T, B, D = array.shape
    if not 1 <= window < T:
        raise ArgumentError(f"{op}: window must be in [1, T) = [1, {T}) so that a next value exists, got {window}")
    starts = np.arange(T - window)
    steps = starts[:, None] + np.arange(window)[None, :]  # (S, window): time indices of each window
    inputs = array[steps]  # (S, window, B, D)
    inputs = inputs.transpose(1, 0, 2, 3).reshape(window, (T - window) * B, D)
    targets = array[window:].reshape((T - window) * B, D)
    return inputs, targets


# ---------------------------------------------------------------- argument checks


def _generator(op: str, seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise ArgumentError(f"{op}: seed must be a non-negative int or a np.random.Generator, got {seed!r}")


def _count(op: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DTypeError(f"{op}: {name} must be an int, got {type(value).__name__} {value!r}")
    return int(value)


def _real(op: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise DTypeError(f"{op}: {name} must be a number, got {type(value).__name__} {value!r}")
    return float(value)
