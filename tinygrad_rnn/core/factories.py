"""factories.py — functions that make new tensors, spelled as PyTorch's, and the one global generator.

`tg.tensor`, `tg.zeros`, `tg.randn`, `tg.arange`, ... each return a leaf
Tensor. The default float dtype is float64, as numpy's (PyTorch's is
float32): gradient checks by finite differences need it, and this library
is for reading and checking gradients more than for speed. Pass
`dtype=np.float32` where you want PyTorch's.

Randomness comes from one `np.random.Generator`, the global generator.
`tg.manual_seed(seed)` replaces it with a seeded one, so that

    tg.manual_seed(0); a = tg.randn(3)
    tg.manual_seed(0); b = tg.randn(3)

give equal tensors. The nn initialisers (`nn/init.py`) and every layer draw
from it too, unless given their own `rng=`. Until `manual_seed` is called it
is seeded from the operating system's entropy (not reproducible).

>>> import tinygrad_rnn as tg
>>> _ = tg.manual_seed(0)
>>> first = tg.randn(2, 3)
>>> _ = tg.manual_seed(0)
>>> bool((tg.randn(2, 3) == first).all())
True
>>> tg.tensor([1, 2]).dtype, tg.tensor([1.0, 2.0]).dtype
(dtype('int64'), dtype('float64'))
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ArgumentError, DTypeError
from .tensor import Tensor

DEFAULT_FLOAT = np.dtype(np.float64)

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator (a fresh `np.random.default_rng(seed)`) and return it."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ArgumentError(f"manual_seed: the seed must be an int >= 0, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator() -> np.random.Generator:
    """The global generator that `randn`, `rand`, `randint` and the nn initialisers draw from."""
    return _generator


def _shape(op: str, size: tuple[Any, ...]) -> tuple[int, ...]:
    """`f(2, 3)` and `f((2, 3))` both mean shape (2, 3), as in PyTorch."""
    shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], tuple | list) else size
    if not all(isinstance(n, int | np.integer) and n >= 0 for n in shape):
        raise ArgumentError(f"{op}: a shape is made of ints >= 0, got {shape!r}")
    return tuple(int(n) for n in shape)


def _float_dtype(op: str, dtype: Any) -> np.dtype[Any]:
    chosen = DEFAULT_FLOAT if dtype is None else np.dtype(dtype)
    if chosen.kind not in "fc":
        raise DTypeError(f"{op}: draws floating-point values, got dtype {chosen}")
    return chosen


def _or(dtype: Any, default: Any) -> Any:
    return default if dtype is None else dtype  # not `dtype or default`: a dtype has len 0, so it is falsy


def _generator_or(generator: np.random.Generator | None) -> np.random.Generator:
    return _generator if generator is None else generator


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new leaf holding a copy of `data`, with the dtype inferred as PyTorch does.

    Unlike `Tensor(data)`, which makes every Python number float64, integers
    stay int64 here (as `torch.tensor([1, 2])` gives int64); floats become the
    default float dtype (float64), bools stay bool. A Tensor's values are
    copied and cut from its graph."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is None and not isinstance(data, np.ndarray | np.generic):
        probe = np.asarray(data) if not isinstance(data, list | tuple) or data else np.zeros(0)
        if probe.dtype.kind in "iu":
            dtype = np.int64
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape("zeros", size), dtype=_or(dtype, DEFAULT_FLOAT)), requires_grad=requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape("ones", size), dtype=_or(dtype, DEFAULT_FLOAT)), requires_grad=requires_grad)


def full(size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Every element `fill_value`; the dtype is inferred from it (a Python float gives float64)."""
    shape = _shape("full", (size,) if isinstance(size, int | np.integer) else tuple(size))
    return Tensor(np.full(shape, fill_value, dtype=dtype), requires_grad=requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """The n x m identity (n x n when m is None)."""
    return Tensor(np.eye(n, m, dtype=_or(dtype, DEFAULT_FLOAT)), requires_grad=requires_grad)


def arange(
    start: float, end: float | None = None, step: float = 1, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """start, start + step, ... up to but excluding end (`arange(n)` is 0..n-1), as PyTorch.

    All-integer arguments give int64 and any float gives float64, as PyTorch infers."""
    if step == 0:
        raise ArgumentError("arange: step must not be 0")
    values = np.arange(0, start, step) if end is None else np.arange(start, end, step)
    if dtype is None and values.dtype.kind in "iu":
        dtype = np.int64
    return Tensor(values, dtype=dtype, requires_grad=requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """`steps` evenly spaced values from start to end, both included."""
    if not isinstance(steps, int | np.integer) or steps < 0:
        raise ArgumentError(f"linspace: steps must be an int >= 0, got {steps!r}")
    return Tensor(np.linspace(start, end, steps, dtype=_or(dtype, DEFAULT_FLOAT)), requires_grad=requires_grad)


def randn(
    *size: Any, dtype: Any = None, requires_grad: bool = False, generator: np.random.Generator | None = None
) -> Tensor:
    """Standard normal samples, from the global generator unless `generator` is given."""
    chosen = _float_dtype("randn", dtype)
    values = _generator_or(generator).standard_normal(_shape("randn", size))
    return Tensor(values.astype(chosen, copy=False), requires_grad=requires_grad)


def rand(
    *size: Any, dtype: Any = None, requires_grad: bool = False, generator: np.random.Generator | None = None
) -> Tensor:
    """Uniform samples from [0, 1), from the global generator unless `generator` is given."""
    chosen = _float_dtype("rand", dtype)
    values = _generator_or(generator).random(_shape("rand", size))
    return Tensor(values.astype(chosen, copy=False), requires_grad=requires_grad)


def randint(
    low: int,
    high: int | tuple[int, ...] | list[int] | None = None,
    size: Any = (),
    dtype: Any = np.int64,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Integers from [low, high) (from [0, low) when high is None), as int64 by default.

    PyTorch's order: `randint(high, size)` is written `randint(high, size=...)` or
    `randint(0, high, size)`."""
    if isinstance(high, tuple | list):  # randint(high, (n,)), PyTorch's short form
        high, size = None, high
    lo, hi = (0, low) if high is None else (low, high)
    if not hi > lo:
        raise ArgumentError(f"randint: needs low < high, got low={lo}, high={hi}")
    shape = _shape("randint", (size,) if isinstance(size, int | np.integer) else tuple(size))
    return Tensor(_generator_or(generator).integers(lo, hi, size=shape), dtype=dtype)


def zeros_like(other: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(other.shape, dtype=_or(dtype, other.dtype)), requires_grad=requires_grad)


def ones_like(other: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(other.shape, dtype=_or(dtype, other.dtype)), requires_grad=requires_grad)


def full_like(other: Tensor, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.full(other.shape, fill_value, dtype=_or(dtype, other.dtype)), requires_grad=requires_grad)


def randn_like(
    other: Tensor, dtype: Any = None, requires_grad: bool = False, generator: np.random.Generator | None = None
) -> Tensor:
    return randn(other.shape, dtype=_or(dtype, _like_float(other)), requires_grad=requires_grad, generator=generator)


def rand_like(
    other: Tensor, dtype: Any = None, requires_grad: bool = False, generator: np.random.Generator | None = None
) -> Tensor:
    return rand(other.shape, dtype=_or(dtype, _like_float(other)), requires_grad=requires_grad, generator=generator)


def _like_float(other: Tensor) -> np.dtype[Any]:
    return other.dtype if other.dtype.kind in "fc" else DEFAULT_FLOAT
