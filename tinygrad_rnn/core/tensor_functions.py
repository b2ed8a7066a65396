"""tensor_functions.py — functions over several tensors: stack, cat, split, where, maximum, minimum.

Read after tensor.py and ops.py; tensor.py re-exports them (`from tinygrad_rnn.core.tensor import stack` keeps working).
They make Tensors through `Function.tensor_class`, so this module never imports tensor.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import ops
from .errors import DTypeError, ShapeError
from .function import Function
from .shapes import pick_spelling

if TYPE_CHECKING:  # annotations only: tensor.py imports this module, and hands Function its class at run time
    from .tensor import Tensor


def as_tensor(value: Any) -> Tensor:
    """`value` itself if it is a Tensor, else a new Tensor made from it."""
    return value if isinstance(value, Function.tensor_class) else Function.tensor_class(value)


def _tensors(op: str, tensors: Sequence[Any]) -> list[Tensor]:
    items = list(tensors)
    if not items:
        raise ShapeError(f"{op}: needs at least one tensor")
    return [t if isinstance(t, Function.tensor_class) else Function.tensor_class(t) for t in items]


def stack(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join same-shaped tensors along a new axis (`dim`, 0 by default)."""
    chosen = pick_spelling("stack", "dim", dim, "axis", axis)
    return ops.Stack.apply(*_tensors("stack", tensors), axis=0 if chosen is None else chosen)


def concatenate(tensors: Sequence[Tensor], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing axis (`dim`, 0 by default)."""
    chosen = pick_spelling("concatenate", "dim", dim, "axis", axis)
    return ops.Concatenate.apply(*_tensors("concatenate", tensors), axis=0 if chosen is None else chosen)


cat = concatenate


def split(
    tensor: Tensor, split_size_or_sections: int | Sequence[int], dim: int | None = None, *, axis: int | None = None
) -> tuple[Tensor, ...]:
    """Pieces of `tensor` along `dim`: chunks of `split_size` (an int) or of the given sizes (a list), as PyTorch."""
    return tensor.split(split_size_or_sections, dim, axis=axis)


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """Elements of `x` where `condition` holds, else of `y` (condition is not differentiated)."""
    cond = condition.data if isinstance(condition, Function.tensor_class) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise DTypeError(f"where: condition must be boolean, got dtype {cond.dtype}")
    like = (
        x
        if isinstance(x, Function.tensor_class)
        else y
        if isinstance(y, Function.tensor_class)
        else Function.tensor_class(x)
    )
    return ops.Where.apply(like._operand(x), like._operand(y), condition=cond)


def maximum(x: Any, y: Any) -> Tensor:
    """Elementwise max; at ties the gradient is split evenly."""
    like = _tensor_among(x, y)  # a Python scalar takes the tensor's dtype, on either side
    return ops.Maximum.apply(like._operand(x), like._operand(y))


def minimum(x: Any, y: Any) -> Tensor:
    """Elementwise min; at ties the gradient is split evenly."""
    like = _tensor_among(x, y)
    return ops.Minimum.apply(like._operand(x), like._operand(y))


def _tensor_among(x: Any, y: Any) -> Tensor:
    return (
        x
        if isinstance(x, Function.tensor_class)
        else y
        if isinstance(y, Function.tensor_class)
        else Function.tensor_class(x)
    )
