"""nn/layers.py — Linear and Embedding, the feed-forward layers. Read after module.py and init.py.

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
from .functional import embedding, linear
from .init import RNG, default_uniform_, make_rng
from .module import ON_CPU, Module, Parameter, as_input, reject_unsupported


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
        **unsupported: Any,
    ) -> None:
        reject_unsupported("Linear", unsupported, ON_CPU)
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


_EMBEDDING_KEYWORDS = {
    **ON_CPU, "max_norm": (None,), "norm_type": (2.0,), "scale_grad_by_freq": (False,), "sparse": (False,),
    "_weight": (None,), "_freeze": (False,),
}  # fmt: skip


class Embedding(Module):
    """A lookup table: y[..., :] = weight[index[...], :], for integer indices of any shape.

    `weight` is (num_embeddings, embedding_dim) ~ N(0, 1), as PyTorch. The lookup
    is one getitem with an integer array; its VJP adds each position's dL/dy into
    the row it read (a scatter-add, repeated indices summing), so dL/dweight is
    the sum over the positions that used each row, and rows no one used get 0.
    With `padding_idx`, that row starts at zeros and never receives a gradient.

    >>> emb = Embedding(10, 3, rng=0)
    >>> emb(np.array([[1, 2], [1, 9]])).shape
    (2, 2, 3)
    """

    def __init__(
        self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, dtype: Any = np.float64,
        rng: RNG = None, **unsupported: Any,
    ) -> None:  # fmt: skip
        reject_unsupported("Embedding", unsupported, _EMBEDDING_KEYWORDS)
        if num_embeddings < 1 or embedding_dim < 1:
            raise ArgumentError(
                f"Embedding: num_embeddings and embedding_dim must be positive, got {num_embeddings}, {embedding_dim}"
            )
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ArgumentError(f"Embedding: padding_idx {padding_idx} is out of range for {num_embeddings} rows")
            padding_idx %= num_embeddings
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        self.weight = Parameter(np.zeros((num_embeddings, embedding_dim)), dtype=dtype)
        self.reset_parameters(rng)

    def reset_parameters(self, rng: RNG = None) -> None:
        """weight ~ N(0, 1), the padding row (if any) zeros."""
        values = make_rng(rng).standard_normal(self.weight.shape)
        if self.padding_idx is not None:
            values[self.padding_idx] = 0.0
        self.weight.data = values.astype(self.weight.dtype)

    def forward(self, input: Any) -> Tensor:
        return embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        padding = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{padding}"
