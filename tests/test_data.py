"""Tests of tinygrad_rnn.io.data: each task's targets are what its docstring claims (checked element by
element against the inputs), shapes and dtypes, determinism under a seed, and named errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_rnn.core.errors import ArgumentError, DTypeError, ShapeError
from tinygrad_rnn.io.data import SequenceTask, adding_problem, delayed_copy, make_windows, noisy_sine


@settings(max_examples=30)
@given(T=st.integers(1, 12), B=st.integers(1, 4), data=st.data(), K=st.integers(2, 6), seed=st.integers(0, 2**32))
def test_delayed_copy_target_is_the_input_lag_steps_ago(T: int, B: int, data: st.DataObject, K: int, seed: int) -> None:
    lag = data.draw(st.integers(0, T - 1), label="lag")
    inputs, targets, mask = delayed_copy(T, B, lag, num_symbols=K, seed=seed)
    assert inputs.shape == (T, B, K) and inputs.dtype == np.float64
    assert targets.shape == (T, B) and targets.dtype == np.int64
    assert mask.shape == (T, B)
    np.testing.assert_array_equal(inputs.sum(axis=-1), 1.0)  # one-hot
    assert set(np.unique(inputs)) <= {0.0, 1.0}
    symbols = inputs.argmax(axis=-1)
    for t in range(T):
        for b in range(B):
            if t >= lag:
                assert mask[t, b] == 1.0 and targets[t, b] == symbols[t - lag, b]
            else:
                assert mask[t, b] == 0.0 and targets[t, b] == 0


def test_delayed_copy_uses_all_symbols() -> None:
    inputs, _, _ = delayed_copy(200, 4, 3, num_symbols=5, seed=0)
    assert set(inputs.argmax(axis=-1).ravel()) == set(range(5))


@settings(max_examples=30)
@given(T=st.integers(2, 30), B=st.integers(1, 5), seed=st.integers(0, 2**32))
def test_adding_problem_target_is_the_sum_of_the_two_marked_values(T: int, B: int, seed: int) -> None:
    inputs, targets, mask = adding_problem(T, B, seed=seed)
    assert inputs.shape == (T, B, 2) and targets.shape == (T, B, 1) and mask.shape == (T, B, 1)
    values, marks = inputs[..., 0], inputs[..., 1]
    assert np.all((values >= 0) & (values < 1))
    for b in range(B):
        marked = np.flatnonzero(marks[:, b])
        assert len(marked) == 2 and np.all(marks[marked, b] == 1.0)
        assert marked[0] < T // 2 <= marked[1]
        assert targets[-1, b, 0] == pytest.approx(values[marked[0], b] + values[marked[1], b], rel=1e-15)
    np.testing.assert_array_equal(mask[:-1], 0.0)
    np.testing.assert_array_equal(mask[-1], 1.0)


def test_adding_problem_baseline_is_about_one_sixth() -> None:
    _, targets, _ = adding_problem(20, 4000, seed=1)
    assert np.mean((targets[-1] - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.01)


def test_noisy_sine_is_a_sine_plus_noise_of_the_given_size() -> None:
    series = noisy_sine(400, 3, period=25.0, noise_std=0.0, seed=0)
    assert series.shape == (400, 3, 1)
    x = series[:, :, 0]
    np.testing.assert_allclose(x[25:], x[:-25], atol=1e-12)  # periodic with the period
    np.testing.assert_allclose(np.max(np.abs(x), axis=0), 1.0, atol=0.02)
    assert not np.allclose(x[:, 0], x[:, 1])  # each column has its own phase
    noisy = noisy_sine(4000, 1, period=25.0, noise_std=0.3, seed=0)[:, 0, 0]
    clean = noisy_sine(4000, 1, period=25.0, noise_std=0.0, seed=0)[:, 0, 0]  # same phase: drawn first
    assert np.std(noisy - clean) == pytest.approx(0.3, rel=0.05)


@settings(max_examples=30)
@given(T=st.integers(2, 10), B=st.integers(1, 3), D=st.integers(1, 3), data=st.data())
def test_make_windows_pairs_each_window_with_the_next_value(T: int, B: int, D: int, data: st.DataObject) -> None:
    window = data.draw(st.integers(1, T - 1), label="window")
    series = np.arange(T * B * D, dtype=np.float64).reshape(T, B, D)
    inputs, targets = make_windows(series, window)
    n = (T - window) * B
    assert inputs.shape == (window, n, D) and targets.shape == (n, D)
    for s in range(T - window):
        for b in range(B):
            np.testing.assert_array_equal(inputs[:, s * B + b], series[s : s + window, b])
            np.testing.assert_array_equal(targets[s * B + b], series[s + window, b])


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: delayed_copy(10, 3, 2, seed=seed),
        lambda seed: adding_problem(10, 3, seed=seed),
        lambda seed: noisy_sine(10, 3, seed=seed),
    ],
)
def test_same_seed_same_data_and_generators_are_accepted(make: Any) -> None:
    def arrays(result: Any) -> list[np.ndarray]:
        return list(result) if isinstance(result, SequenceTask) else [result]

    a, b, c = arrays(make(7)), arrays(make(7)), arrays(make(8))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(a, c, strict=True))
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    for x, y in zip(arrays(make(g1)), arrays(make(g2)), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (
            lambda: delayed_copy(5, 2, 5, seed=0),
            ArgumentError,
            r"delayed_copy: lag must be in \[0, T\) = \[0, 5\), got lag=5",
        ),
        (lambda: delayed_copy(5, 2, -1, seed=0), ArgumentError, "lag must be in"),
        (lambda: delayed_copy(0, 2, 0, seed=0), ArgumentError, "T and B must be >= 1"),
        (lambda: delayed_copy(5, 2, 1, num_symbols=1, seed=0), ArgumentError, "num_symbols must be >= 2"),
        (lambda: delayed_copy(5.0, 2, 1, seed=0), DTypeError, "delayed_copy: T must be an int, got float"),
        (
            lambda: delayed_copy(5, 2, 1, seed=None),
            ArgumentError,
            "seed must be a non-negative int or a np.random.Generator",
        ),
        (lambda: delayed_copy(5, 2, 1, seed=-3), ArgumentError, "seed must be"),
        (lambda: adding_problem(1, 2, seed=0), ArgumentError, r"adding_problem: needs T >= 2"),
        (lambda: noisy_sine(10, 1, period=0.0, seed=0), ArgumentError, "noisy_sine: needs period > 0"),
        (lambda: noisy_sine(10, 1, noise_std=-1.0, seed=0), ArgumentError, "noise_std >= 0"),
        (lambda: make_windows(np.zeros((5, 1, 1)), 5), ArgumentError, r"make_windows: window must be in \[1, T\)"),
        (lambda: make_windows(np.zeros((5, 1)), 2), ShapeError, r"series must have shape \(T, B, D\), got \(5, 1\)"),
        (lambda: make_windows(np.zeros((5, 1, 1), dtype=bool), 2), DTypeError, "series must be numeric"),
    ],
)
def test_bad_arguments_are_named(call: Any, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        call()
