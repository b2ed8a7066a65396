"""Factories spelled as PyTorch's (tg.tensor, tg.randn, ...) and the one global generator behind tg.manual_seed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import ArgumentError, DTypeError, Tensor


@pytest.mark.parametrize(
    ("data", "dtype"),
    [
        ([1, 2], np.int64),
        ([1.0, 2], np.float64),
        (3, np.int64),
        (2.5, np.float64),
        ([True], np.bool_),
        ([], np.float64),
    ],
)
def test_tensor_infers_dtype_as_pytorch(data: Any, dtype: Any) -> None:
    t = tg.tensor(data)
    assert t.dtype == dtype and t.is_leaf and not t.requires_grad
    np.testing.assert_array_equal(t.data, np.asarray(data))


def test_tensor_copies_detaches_and_honours_dtype_and_requires_grad() -> None:
    source = Tensor([1.0, 2.0], requires_grad=True) * 2.0
    t = tg.tensor(source, dtype=np.float32, requires_grad=True)
    assert t.dtype == np.float32 and t.requires_grad and t.is_leaf
    assert t.data is not source.data
    with pytest.raises(DTypeError, match=r"requires_grad: only floating-point"):
        tg.tensor([1, 2], requires_grad=True)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: tg.zeros(2, 3), np.zeros((2, 3))),
        (lambda: tg.ones((2,)), np.ones(2)),
        (lambda: tg.full((2, 2), 1.5), np.full((2, 2), 1.5)),
        (lambda: tg.eye(2, 3), np.eye(2, 3)),
        (lambda: tg.arange(5), np.arange(5)),
        (lambda: tg.arange(1, 2, 0.25), np.arange(1, 2, 0.25)),
        (lambda: tg.linspace(0, 1, 5), np.linspace(0, 1, 5)),
        (lambda: tg.zeros_like(Tensor(np.ones((2, 1), np.float32))), np.zeros((2, 1), np.float32)),
        (lambda: tg.ones_like(tg.tensor([1, 2])), np.ones(2, np.int64)),
        (lambda: tg.full_like(Tensor([0.0, 0.0]), 7.0), np.full(2, 7.0)),
    ],
)
def test_deterministic_factories_match_numpy(make: Callable[[], Tensor], expected: np.ndarray) -> None:
    t = make()
    assert isinstance(t, Tensor) and t.dtype == expected.dtype
    np.testing.assert_array_equal(t.data, expected)


def test_factories_take_dtype_and_requires_grad() -> None:
    assert tg.zeros(2, dtype=np.float32).dtype == np.float32
    assert tg.ones(2, requires_grad=True).requires_grad
    assert tg.arange(3, dtype=np.float64).dtype == np.float64
    assert tg.randn(2, dtype=np.float32).dtype == np.float32


def test_manual_seed_makes_random_factories_reproducible() -> None:
    def draw() -> list[np.ndarray]:
        like = Tensor(np.zeros((2, 2)))
        made = (tg.randn(3, 2), tg.rand(4), tg.randint(0, 10, (5,)), tg.randn_like(like), tg.rand_like(like))
        return [t.data for t in (*made, tg.randint(3, (2,)))]

    tg.manual_seed(123)
    first = draw()
    tg.manual_seed(123)
    second = draw()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[0].shape == (3, 2) and first[2].dtype == np.int64 and 0 <= first[2].min() and first[2].max() < 10
    assert 0.0 <= first[1].min() and first[1].max() < 1.0
    assert first[5].shape == (2,) and 0 <= first[5].min() and first[5].max() < 3  # randint(high, size)
    tg.manual_seed(124)
    assert not np.array_equal(tg.randn(3, 2).data, first[0])


def test_a_generator_argument_bypasses_the_global_one() -> None:
    tg.manual_seed(0)
    expected = tg.randn(3).data
    tg.manual_seed(0)
    mine = tg.randn(3, generator=np.random.default_rng(99))
    np.testing.assert_array_equal(mine.data, np.random.default_rng(99).standard_normal(3))
    np.testing.assert_array_equal(tg.randn(3).data, expected)  # the global generator did not advance


def test_nn_initialisers_draw_from_the_global_generator_unless_given_rng() -> None:
    tg.manual_seed(7)
    a = tg.nn.GRU(3, 4)
    tg.manual_seed(7)
    b = tg.nn.GRU(3, 4)
    c = tg.nn.GRU(3, 4)  # the generator has moved on
    for name, p in a.state_dict().items():
        np.testing.assert_array_equal(p, b.state_dict()[name])
    assert not np.array_equal(a.weight_hh_l0.data, c.weight_hh_l0.data)
    d = tg.nn.GRU(3, 4, rng=0)
    tg.manual_seed(7)
    np.testing.assert_array_equal(d.weight_hh_l0.data, tg.nn.GRU(3, 4, rng=0).weight_hh_l0.data)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: tg.manual_seed(-1), r"manual_seed: the seed must be an int >= 0"),
        (lambda: tg.zeros(2, -1), r"zeros: a shape is made of ints >= 0"),
        (lambda: tg.randn(2, dtype=np.int64), r"randn: draws floating-point values"),
        (lambda: tg.randint(5, 5, (2,)), r"randint: needs low < high"),
        (lambda: tg.arange(0, 1, 0), r"arange: step must not be 0"),
        (lambda: tg.linspace(0, 1, -2), r"linspace: steps must be an int >= 0"),
    ],
)
def test_factory_mistakes_name_the_factory(make: Callable[[], Any], message: str) -> None:
    with pytest.raises((ArgumentError, DTypeError), match=message):
        make()
