"""nn/activation.py — activations, Identity and Dropout as modules, for `Sequential`. Read after module.py.

Each is one Tensor operation (or none), so each has no parameters and no
backward of its own; the functional forms are in functional.py.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import ArgumentError
from ..core.tensor import Tensor
from . import functional as F
from .init import RNG, make_rng
from .module import Module


class Identity(Module):
    """y = x (a placeholder, e.g. for a layer switched off); accepts and ignores any arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def forward(self, input: Any) -> Any:
        return input


class ReLU(Module):
    """y = max(x, 0), elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)


class Tanh(Module):
    """y = tanh(x), elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x)), elementwise."""

    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Softmax(Module):
    """y = exp(x) / sum(exp(x)) along `dim` (PyTorch's name; pass it, as PyTorch asks you to)."""

    def __init__(self, dim: int = -1) -> None:
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """y = x - logsumexp(x) along `dim`."""

    def __init__(self, dim: int = -1) -> None:
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Dropout(Module):
    """In training mode, zero each element with probability p and scale the rest by 1 / (1 - p); in eval
    mode (`module.eval()`), the identity. See `functional.dropout`.

    Masks come from `rng`: a Generator (or an int seed, made into one Generator at construction) gives
    a reproducible sequence of masks; None draws each mask from `make_rng(None)` (nn/init.py).

    >>> drop = Dropout(0.5, rng=0)
    >>> y = drop(np.ones((2, 4)))
    >>> sorted(set(y.numpy().ravel().tolist()))   # kept elements are scaled by 1 / (1 - p)
    [0.0, 2.0]
    >>> drop.eval()(np.ones(3)).numpy().tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, rng: RNG = None) -> None:
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise ArgumentError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        if inplace:
            raise ArgumentError("Dropout: inplace=True is not supported (every op here makes a new tensor)")
        self.p = float(p)
        self._rng = None if rng is None else make_rng(rng)

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, training=self.training, rng=make_rng(self._rng))

    def extra_repr(self) -> str:
        return f"p={self.p}"
