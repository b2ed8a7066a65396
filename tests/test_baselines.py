"""The classical baselines of the command line, checked against values computed another way."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_rnn.cli.baselines import LinearAR, WittenBellNgram, lagged_windows
from tinygrad_rnn.core.errors import ArgumentError, ShapeError

# ---------------------------------------------------------------- linear autoregression


def simulate_ar(weights_by_lag: list[float], intercept: float, n: int, noise: float, seed: int) -> np.ndarray:
    """x[t] = intercept + Σ_k weights_by_lag[k-1] x[t-k] + noise, after a burn-in that forgets the start."""
    rng = np.random.default_rng(seed)
    burn = 200
    x = np.zeros(n + burn)
    for t in range(len(weights_by_lag), n + burn):
        x[t] = intercept + sum(a * x[t - k] for k, a in enumerate(weights_by_lag, start=1)) + noise * rng.normal()
    return x[burn:]


def test_linear_ar_recovers_the_coefficients_of_a_simulated_ar2() -> None:
    by_lag = [0.6, -0.3]  # stationary: the roots of 1 - 0.6 z + 0.3 z² lie outside the unit circle
    x = simulate_ar(by_lag, intercept=2.0, n=20_000, noise=0.5, seed=1)
    fitted = LinearAR.fit(x, order=2)
    # weights are stored oldest first: weights[-1] belongs to lag 1
    np.testing.assert_allclose(fitted.weights[::-1], by_lag, atol=0.02)
    assert fitted.intercept == pytest.approx(2.0, abs=0.05)


def test_linear_ar_is_exact_on_a_noiseless_series() -> None:
    x = np.zeros(30)
    x[:3] = [1.0, -2.0, 0.5]
    for t in range(3, 30):
        x[t] = 1.0 + 0.5 * x[t - 1] + 0.2 * x[t - 2] - 0.1 * x[t - 3]
    fitted = LinearAR.fit(x, order=3)
    np.testing.assert_allclose(fitted.weights, [-0.1, 0.2, 0.5], atol=1e-9)
    assert fitted.intercept == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(fitted.one_step(x), x[3:], atol=1e-9)


def test_linear_ar_matches_the_normal_equations() -> None:
    x = np.random.default_rng(3).normal(size=60).cumsum()
    fitted = LinearAR.fit(x, order=4)
    design = np.array([[*x[t - 4 : t], 1.0] for t in range(4, 60)])
    solution = np.linalg.solve(design.T @ design, design.T @ x[4:])
    np.testing.assert_allclose([*fitted.weights, fitted.intercept], solution, rtol=1e-8, atol=1e-10)


def test_linear_ar_forecast_feeds_its_predictions_back() -> None:
    model = LinearAR(weights=np.array([0.25, 0.5]), intercept=1.0)
    # by hand: 1 + 0.25*2 + 0.5*4 = 3.5, then 1 + 0.25*4 + 0.5*3.5 = 3.75, then 1 + 0.25*3.5 + 0.5*3.75 = 3.75
    np.testing.assert_allclose(model.forecast(np.array([9.0, 2.0, 4.0]), 3), [3.5, 3.75, 3.75])
    np.testing.assert_allclose(model.one_step(np.array([2.0, 4.0, 3.5])), [3.5])
    # a batch of histories (N, T) gives (horizon, N), each column the forecast of its own row
    batch = np.array([[9.0, 2.0, 4.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(model.forecast(batch, 2), [[3.5, 1.0], [3.75, 1.5]])


def test_lagged_windows_lists_the_window_before_each_value() -> None:
    np.testing.assert_array_equal(lagged_windows(np.arange(5.0), 2), [[0, 1], [1, 2], [2, 3]])


@pytest.mark.parametrize(
    ("values", "order", "message"),
    [(np.zeros((4, 2)), 1, "1-D"), (np.arange(10.0), 0, "at least 1"), (np.arange(6.0), 3, "needs at least 7")],
)
def test_linear_ar_refuses_what_it_cannot_fit(values: np.ndarray, order: int, message: str) -> None:
    with pytest.raises(ShapeError if values.ndim != 1 else ArgumentError, match=message):
        LinearAR.fit(values, order)


# ---------------------------------------------------------------- Witten-Bell n-grams


@given(
    text=st.lists(st.integers(0, 5), min_size=1, max_size=60),
    context=st.lists(st.integers(0, 5), max_size=6),
    order=st.integers(1, 5),
)
def test_witten_bell_probabilities_sum_to_one_over_the_vocabulary(
    text: list[int], context: list[int], order: int
) -> None:
    p = WittenBellNgram(text, vocab_size=6, order=order).distribution(context)
    assert p.shape == (6,)
    assert np.all(p > 0)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_witten_bell_bigram_on_a_tiny_text_by_hand() -> None:
    # the text "ababa" over the vocabulary {a, b, c} = {0, 1, 2}
    model = WittenBellNgram([0, 1, 0, 1, 0], vocab_size=3, order=2)
    # unigram level: counts a 3, b 2, c 0; 2 distinct symbols over 5 tokens, interpolated with the uniform 1/3
    unigram = {0: (3 + 2 / 3) / 7, 1: (2 + 2 / 3) / 7, 2: (2 / 3) / 7}
    # after "a": b twice, 1 distinct follower; after "b": a twice
    after_a = {c: ((2 if c == 1 else 0) + unigram[c]) / 3 for c in range(3)}
    np.testing.assert_allclose(model.distribution([0]), [after_a[c] for c in range(3)])
    np.testing.assert_allclose(model.distribution([]), [unigram[c] for c in range(3)])
    np.testing.assert_allclose(model.distribution([2]), [unigram[c] for c in range(3)])  # "c" was never seen
    # scoring "a b c": -ln P(b | a) and -ln P(c | b), averaged
    after_b_c = (0 + unigram[2]) / 3
    expected = -(math.log(after_a[1]) + math.log(after_b_c)) / 2
    assert model.cross_entropy([0, 1, 2]) == pytest.approx(expected, rel=1e-12)


def test_witten_bell_uses_only_the_last_order_minus_one_symbols() -> None:
    model = WittenBellNgram([0, 1, 2, 0, 1, 2, 1, 0], vocab_size=3, order=3)
    np.testing.assert_array_equal(model.distribution([2, 2, 0, 1]), model.distribution([0, 1]))


def test_witten_bell_refuses_ids_outside_the_vocabulary() -> None:
    with pytest.raises(ArgumentError, match=r"symbol id 3 is outside the vocabulary 0 \.\. 2"):
        WittenBellNgram([0, 1, 3], vocab_size=3)


def test_witten_bell_reproduces_the_issue_figure_on_the_default_text() -> None:
    """Issue 14: the interpolated Witten-Bell model with 4 characters of context scores 1.518 nats/char
    on the 4,096 held-out characters `chars` scores, each given the text before it."""
    from tinygrad_rnn.cli.chars import EVAL_CHARS, NGRAM_ORDER, encode, read_text

    text, _ = read_text(None)
    ids = encode(text, "".join(sorted(set(text))), "the default text")
    n_train = len(ids) - len(ids) // 10  # chars holds out the last tenth
    model = WittenBellNgram(ids[:n_train], vocab_size=int(ids.max()) + 1, order=NGRAM_ORDER)
    context = ids[n_train - NGRAM_ORDER + 1 : n_train + EVAL_CHARS]
    assert model.cross_entropy(context, start=NGRAM_ORDER - 1) == pytest.approx(1.518, abs=0.0005)
