"""nn/layers.py — Linear, the one feed-forward layer. Read after module.py and init.py.

In a recurrent network it is the readout o_t = W_oh h_t + b_o, applied to the
hidden state at every step (sequence to sequence) or only at the last step
(sequence to one); see recurrent.py. Like every layer, it only composes Tensor
operations: its gradient comes from MatMul and Add, with no backward of its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.errors import ArgumentError, ShapeError, fmt_shape
from ..core.tensor import Tensor
from .functional import linear
from .init import RNG, default_uniform_, make_rng
from .module import Module, Parameter, as_input


class Linear(Module):
    """y = x W^T + b, over the last axis of x; any leading axes are kept.

    `weight` has shape (out_features, in_features) and `bias` (out_features,),
    PyTorch's layout, and both start as U(-1/sqrt(in_features), 1/sqrt(in_features)),
    PyTorch's default.

    >>> layer = Linear(3, 2, rng=0)
    >>> layer(np.ones((5, 4, 3))).shape
    (5, 4, 2)
    >>> [name for name, _ in layer.named_parameters()]
    ['weight', 'bias']
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: Any = np.float64,
        rng: RNG = None,
    ) -> None:
        if in_features < 1 or out_features < 1:
            raise ArgumentError(
                f"Linear: in_features and out_features must be positive, got {in_features} and {out_features}"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(np.zeros((out_features, in_features)), dtype=dtype)
        self.bias = Parameter(np.zeros(out_features), dtype=dtype) if bias else None
        self.reset_parameters(rng)

    def reset_parameters(self, rng: RNG = None) -> None:
        """Draw fresh values: U(-1/sqrt(in_features), 1/sqrt(in_features)) for weight and bias."""
        default_uniform_(self.parameters(), self.in_features, rng=make_rng(rng))

    def forward(self, input: Any) -> Tensor:
        x = as_input(self, "input", input, self.weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"{self!r}: input has shape {fmt_shape(x.shape)}; its last dimension must be "
                f"in_features={self.in_features}"
            )
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
