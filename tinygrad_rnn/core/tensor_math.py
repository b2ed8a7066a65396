"""tensor_math.py — elementwise functions (exp, log, tanh, sigmoid, relu, clip, ...) as methods of Tensor.

Read after tensor.py and ops.py: `Tensor` lists `Elementwise` among its bases. Each is one
call into ops.py (or, for a tensor bound of `clip`, a composition of `where`),
followed by the named spellings of the comparison operators (`eq`, `lt`, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import ops
from .function import Function
from .tensor_functions import where

if TYPE_CHECKING:  # annotations only: tensor.py imports this module, and hands Function its class at run time
    from typing_extensions import Self

    from .tensor import Tensor


class Elementwise:
    """Elementwise functions and the named comparisons; a base class of Tensor."""

    __slots__ = ()

    if TYPE_CHECKING:  # provided by Tensor
        data: np.ndarray

        def _operand(self, other: Any) -> Tensor: ...
        def __lt__(self, other: Any) -> Tensor: ...
        def __le__(self, other: Any) -> Tensor: ...
        def __gt__(self, other: Any) -> Tensor: ...
        def __ge__(self, other: Any) -> Tensor: ...
        # Elementwise, as numpy and PyTorch: not object's bool-valued ==, hence the ignore (as in Tensor).
        def __eq__(self, other: Any) -> Tensor: ...  # type: ignore[override]
        def __ne__(self, other: Any) -> Tensor: ...  # type: ignore[override]

    def exp(self) -> Tensor:
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        return ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return ops.Sqrt.apply(self)

    def abs(self) -> Tensor:
        return ops.Abs.apply(self)

    def tanh(self) -> Tensor:
        return ops.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return ops.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        return ops.Relu.apply(self)

    def pow(self, exponent: Any) -> Tensor:
        return self**exponent

    def maximum(self, other: Any) -> Tensor:
        return ops.Maximum.apply(self, self._operand(other))

    def minimum(self, other: Any) -> Tensor:
        return ops.Minimum.apply(self, self._operand(other))

    # float: inside this class body, `float` names the method Tensor.float.
    def clip(self, min: float | Tensor | None = None, max: float | Tensor | None = None) -> Tensor | Self:
        """Limit values to [min, max]; the gradient passes only where x was inside.

        Tensor bounds (PyTorch allows them) are composed from `where`: each bound
        gets the gradient where it was the one selected."""
        if not isinstance(min, Function.tensor_class | np.ndarray) and not isinstance(
            max, Function.tensor_class | np.ndarray
        ):
            return ops.Clip.apply(self, low=min, high=max)
        out: Tensor | Self = self
        if min is not None:
            low = self._operand(min)
            out = where(~(out.data < low.data), out, low)  # ~(x < low) keeps a NaN x, as clamp does
        if max is not None:
            high = self._operand(max)
            out = where(~(out.data > high.data), out, high)
        return out

    clamp = clip

    def eq(self, other: Any) -> Tensor:
        return self == other

    def ne(self, other: Any) -> Tensor:
        return self != other

    def lt(self, other: Any) -> Tensor:
        return self < other

    def le(self, other: Any) -> Tensor:
        return self <= other

    def gt(self, other: Any) -> Tensor:
        return self > other

    def ge(self, other: Any) -> Tensor:
        return self >= other
