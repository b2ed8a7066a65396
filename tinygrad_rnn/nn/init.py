"""nn/init.py — where a layer's first parameter values come from. Read after module.py.

Every function here draws new values and *rebinds* `param.data` to a fresh
array; it never writes into the old one. A graph recorded before the call keeps
the values it saw (as `Module.load_state_dict` does), and an array the user
passed in is never changed behind their back.

Randomness: every function, and every layer built on them, takes `rng`, which
is one of

- a `np.random.Generator`: values are drawn from it (and it advances), so one
  generator can initialise a whole model reproducibly;
- an `int`: a seed, `np.random.default_rng(rng)`;
- `None`: the global generator (`core/factories.py`), which `tg.manual_seed(seed)`
  reseeds, as PyTorch's `torch.manual_seed`; until then it is seeded from the
  operating system (not reproducible).

>>> import numpy as np
>>> from tinygrad_rnn.nn.module import Parameter
>>> w = Parameter(np.zeros((2, 3)))
>>> _ = uniform_(w, -0.5, 0.5, rng=0)
>>> bool(np.all(np.abs(w.data) <= 0.5))
True
>>> float(uniform_(Parameter(np.zeros(1)), rng=0).data[0]) == float(uniform_(Parameter(np.zeros(1)), rng=0).data[0])
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TypeAlias

import numpy as np

from ..core.errors import ArgumentError, ShapeError, fmt_shape
from ..core.factories import default_generator
from .module import Parameter

RNG: TypeAlias = np.random.Generator | int | None


def make_rng(rng: RNG) -> np.random.Generator:
    """The Generator to draw from: `rng` itself, a seeded one for an int, the global one for None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return default_generator()
    if isinstance(rng, int | np.integer):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _assign(param: Parameter, values: np.ndarray) -> Parameter:
    # Rebind, never `param.data[...] = values`: see the module docstring.
    param.data = np.asarray(values, dtype=param.dtype)
    return param


def uniform_(param: Parameter, a: float = 0.0, b: float = 1.0, rng: RNG = None) -> Parameter:
    """param ~ U(a, b), elementwise (PyTorch's `nn.init.uniform_`). Returns `param`."""
    if not a <= b:
        raise ArgumentError(f"uniform_: the lower bound a={a} is greater than the upper bound b={b}")
    return _assign(param, make_rng(rng).uniform(a, b, size=param.shape))


def default_uniform_(params: Iterable[Parameter], fan: int, rng: RNG = None) -> None:
    """Every parameter ~ U(-1/sqrt(fan), 1/sqrt(fan)): PyTorch's default initialisation.

    RNN, LSTM and GRU layers and cells use fan = hidden_size for all weights and
    biases. Linear uses fan = in_features (PyTorch's `kaiming_uniform_(a=sqrt(5))`
    for the weight works out to exactly this bound, and the bias uses it directly).
    Parameters are drawn in the order given, so a seeded `rng` is reproducible.
    """
    if fan < 1:
        raise ArgumentError(f"default_uniform_: fan must be at least 1, got {fan}")
    generator = make_rng(rng)
    bound = 1.0 / math.sqrt(fan)
    for param in params:
        uniform_(param, -bound, bound, rng=generator)


def _fans(op: str, shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight laid out as (out, in, *receptive field), as PyTorch."""
    if len(shape) < 2:
        raise ShapeError(f"{op}: needs a weight with at least 2 dimensions, got shape {fmt_shape(shape)}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def xavier_uniform_(param: Parameter, gain: float = 1.0, rng: RNG = None) -> Parameter:
    """param ~ U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))   (Glorot & Bengio, 2010).

    The bound keeps the variance of activations and of gradients roughly equal
    from layer to layer: Var = a^2 / 3 = 2 / (fan_in + fan_out).
    """
    fan_in, fan_out = _fans("xavier_uniform_", param.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(param, -bound, bound, rng=rng)


def orthogonal_(param: Parameter, gain: float = 1.0, rng: RNG = None) -> Parameter:
    """param = gain * Q, with Q a random (semi-)orthogonal matrix (Saxe et al., 2013), as PyTorch.

    Q comes from the QR decomposition of a standard normal matrix A = QR; the
    signs of diag(R) are folded into Q so that Q is uniformly distributed (Haar).
    For a recurrent weight W_hh this gives all singular values 1: h_{t-1} -> W_hh h_{t-1}
    neither grows nor shrinks, the usual remedy for vanishing/exploding BPTT
    gradients at the start of training. A (rows, cols) weight with rows < cols
    gets orthonormal rows instead of columns. More than two dimensions are
    flattened to (shape[0], rest).
    """
    if param.ndim < 2:
        raise ShapeError(f"orthogonal_: needs a weight with at least 2 dimensions, got shape {fmt_shape(param.shape)}")
    rows = param.shape[0]
    cols = param.size // rows
    flat = make_rng(rng).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T  # QR of a tall matrix; transpose back below
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))  # without this, Q is biased (its distribution is not Haar)
    if rows < cols:
        q = q.T
    return _assign(param, gain * q.reshape(param.shape))


def zeros_(param: Parameter) -> Parameter:
    """param = 0 (for example a bias)."""
    return _assign(param, np.zeros(param.shape))
