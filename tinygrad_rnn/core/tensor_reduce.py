"""tensor_reduce.py — reductions (sum, mean, max, var, norm, ...) and softmax, as methods of Tensor.

Read after tensor.py and ops.py: `Tensor` lists `Reductions` among its bases. Every
reduction takes PyTorch's `dim=`/`keepdim=` or numpy's `axis=`/`keepdims=`
(not both); `max`, `min`, `var` and `std` give each spelling its own
meaning where the two libraries disagree (docs/pytorch.md).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import ops
from .errors import ArgumentError, ShapeError, fmt_shape
from .function import Function
from .shapes import normalize_axes, pick_spelling
from .tensor_functions import where
from .tensor_shape import Axes, _along

if TYPE_CHECKING:  # annotations only: tensor.py imports this module, and hands Function its class at run time
    from .tensor import Tensor


class ValuesIndices(NamedTuple):
    """What `x.max(dim)` and `x.min(dim)` return, as PyTorch's `torch.return_types.max`."""

    values: Tensor
    indices: Tensor


class Reductions:
    """Reductions over axes, and softmax/log_softmax along one; a base class of Tensor."""

    __slots__ = ()

    if TYPE_CHECKING:  # provided by Tensor
        data: np.ndarray

        @property
        def shape(self) -> tuple[int, ...]: ...
        @property
        def ndim(self) -> int: ...
        @property
        def size(self) -> int: ...
        def abs(self) -> Tensor: ...
        def __sub__(self, other: Any) -> Tensor: ...
        def __mul__(self, other: Any) -> Tensor: ...
        def __getitem__(self, index: Any) -> Tensor: ...

    # Every reduction takes PyTorch's `dim=`/`keepdim=` or numpy's `axis=`/`keepdims=` (not both).

    def sum(
        self, dim: Axes = None, keepdim: bool | None = None, *, axis: Axes = None, keepdims: bool | None = None
    ) -> Tensor:
        axes, keep = _reduction_args("sum", dim, keepdim, axis, keepdims)
        return ops.Sum.apply(self, axis=axes, keepdims=keep)

    def mean(
        self, dim: Axes = None, keepdim: bool | None = None, *, axis: Axes = None, keepdims: bool | None = None
    ) -> Tensor:
        """sum / n, composed: its gradient comes from Sum and Mul."""
        axes, keep = _reduction_args("mean", dim, keepdim, axis, keepdims)
        axes = normalize_axes("mean", axes, self.ndim)  # so a bad axis is reported as mean's
        total = self.sum(axis=axes, keepdims=keep)
        count = math.prod(self.shape[a] for a in axes)
        return total * (1.0 / count) if count else total * np.nan

    def max(
        self, dim: Any = None, keepdim: bool | None = None, *, axis: Axes = None, keepdims: bool | None = None
    ) -> Any:
        """numpy's max over `axis=` (the values), PyTorch's over `dim` (values and indices, see docs/pytorch.md).

        `x.max(other_tensor)` is the elementwise maximum, as in PyTorch."""
        return self._extremum("max", ops.Max, dim, keepdim, axis, keepdims)

    def min(
        self, dim: Any = None, keepdim: bool | None = None, *, axis: Axes = None, keepdims: bool | None = None
    ) -> Any:
        """numpy's min over `axis=` (the values), PyTorch's over `dim` (values and indices, see docs/pytorch.md).

        `x.min(other_tensor)` is the elementwise minimum, as in PyTorch."""
        return self._extremum("min", ops.Min, dim, keepdim, axis, keepdims)

    def _extremum(
        self, op: str, primitive: Any, dim: Any, keepdim: bool | None, axis: Axes, keepdims: bool | None
    ) -> Any:
        if isinstance(dim, Function.tensor_class):
            return (ops.Maximum if op == "max" else ops.Minimum).apply(self, dim)
        axes, keep = _reduction_args(op, dim, keepdim, axis, keepdims)
        if dim is None:  # numpy's meaning: the values, ties sharing the gradient
            return primitive.apply(self, axis=axes, keepdims=keep)
        if not isinstance(dim, int | np.integer):
            raise ArgumentError(
                f"{op}: dim= takes one int, as in PyTorch, got {dim!r}; for several axes use "
                f"a{op}(dim=...) or {op}(axis=...)"
            )
        # PyTorch's meaning: values and indices, the gradient going to the one element picked.
        axis = int(dim)
        indices = self._arg(op, "arg" + op, axis, True)
        values = self[_along(indices.data, axis % max(self.ndim, 1))]
        if not keep and self.ndim:
            values, indices = values.squeeze(axis), indices.squeeze(axis)
        return ValuesIndices(values, indices)

    def amax(
        self, dim: Axes = None, keepdim: bool | None = None, *, axis: Axes = None, keepdims: bool | None = None
    ) -> Tensor:
        """The largest values over one or several axes; tied elements share the gradient evenly."""
        axes, keep = _reduction_args("amax", dim, keepdim, axis, keepdims)
        return ops.Max.apply(self, axis=axes, keepdims=keep)

    def amin(
        self, dim: Axes = None, keepdim: bool | None = None, *, axis: Axes = None, keepdims: bool | None = None
    ) -> Tensor:
        """The smallest values over one or several axes; tied elements share the gradient evenly."""
        axes, keep = _reduction_args("amin", dim, keepdim, axis, keepdims)
        return ops.Min.apply(self, axis=axes, keepdims=keep)

    def all(
        self, dim: Axes = None, keepdim: bool | None = None, *, axis: Axes = None, keepdims: bool | None = None
    ) -> Tensor:
        """True where every element (over the axes) is nonzero; a bool tensor, no gradient."""
        axes, keep = _reduction_args("all", dim, keepdim, axis, keepdims)
        return Function.tensor_class._make(
            np.asarray(np.all(self.data, axis=normalize_axes("all", axes, self.ndim), keepdims=keep)), None
        )

    def any(
        self, dim: Axes = None, keepdim: bool | None = None, *, axis: Axes = None, keepdims: bool | None = None
    ) -> Tensor:
        """True where some element (over the axes) is nonzero; a bool tensor, no gradient."""
        axes, keep = _reduction_args("any", dim, keepdim, axis, keepdims)
        return Function.tensor_class._make(
            np.asarray(np.any(self.data, axis=normalize_axes("any", axes, self.ndim), keepdims=keep)), None
        )

    def argmax(
        self,
        dim: int | None = None,
        keepdim: bool | None = None,
        *,
        axis: int | None = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """Index of the largest value along one axis (of the flattened tensor when none), as int64; no gradient."""
        axis, keep = _reduction_args("argmax", dim, keepdim, axis, keepdims)
        return self._arg("argmax", "argmax", axis, keep)

    def argmin(
        self,
        dim: int | None = None,
        keepdim: bool | None = None,
        *,
        axis: int | None = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """Index of the smallest value along one axis (of the flattened tensor when none), as int64; no gradient."""
        axis, keep = _reduction_args("argmin", dim, keepdim, axis, keepdims)
        return self._arg("argmin", "argmin", axis, keep)

    def _arg(self, op: str, fn: str, axis: Any, keep: bool) -> Tensor:
        if axis is None:
            if self.size == 0:
                raise ShapeError(f"{op}: the tensor of shape {fmt_shape(self.shape)} is empty")
            flat = getattr(np, fn)(self.data)
            return Function.tensor_class._make(
                np.asarray(flat, dtype=np.int64).reshape((1,) * self.ndim if keep else ()), None
            )
        if not isinstance(axis, int | np.integer):
            raise ArgumentError(f"{op}: takes one axis (an int), got {axis!r}")
        axis = int(axis)
        if self.ndim == 0:  # as PyTorch: dim 0 or -1 of a 0-d tensor is the tensor itself
            normalize_axes(op, axis, 1)
            return Function.tensor_class._make(np.zeros((), dtype=np.int64), None)
        (a,) = normalize_axes(op, axis, self.ndim)
        if self.shape[a] == 0:
            raise ShapeError(
                f"{op}: axis {axis} of shape {fmt_shape(self.shape)} is empty; there is no index to return"
            )
        return Function.tensor_class._make(
            getattr(np, fn)(self.data, axis=a, keepdims=keep).astype(np.int64, copy=False), None
        )

    def var(
        self,
        dim: Axes = None,
        unbiased: bool | None = None,
        keepdim: bool | None = None,
        *,
        correction: float | None = None,
        ddof: float | None = None,
        axis: Axes = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """sum((x - mean)^2) / (n - correction), composed from mean.

        The default correction follows the spelling, as `max` does: numpy's
        `axis=`/`keepdims=` give numpy's ddof = 0 (the population variance);
        otherwise (`dim`, positional, or no argument) PyTorch's correction = 1
        (the unbiased estimate). `correction=`, `ddof=` or `unbiased=` say it
        outright. n - correction <= 0 gives nan, as in PyTorch."""
        numpy_spelling = axis is not None or keepdims is not None
        axes, keep = _reduction_args("var", dim, keepdim, axis, keepdims)
        axes = normalize_axes("var", axes, self.ndim)
        given = {k: v for k, v in (("unbiased", unbiased), ("correction", correction), ("ddof", ddof)) if v is not None}
        if len(given) > 1:
            raise ArgumentError(f"var: got {' and '.join(f'{k}=' for k in given)}; they say the same thing, pass one")
        default = 0 if numpy_spelling else 1
        c = float(int(unbiased) if unbiased is not None else next(iter(given.values()), default))
        centered = self - self.mean(axis=axes, keepdims=True)
        squares = (centered * centered).sum(axis=axes, keepdims=keep)
        dof = math.prod(self.shape[a] for a in axes) - c
        return squares / dof if dof > 0 else squares * np.nan  # divide, as numpy does: the same last bit

    def std(
        self,
        dim: Axes = None,
        unbiased: bool | None = None,
        keepdim: bool | None = None,
        *,
        correction: float | None = None,
        ddof: float | None = None,
        axis: Axes = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """sqrt(var): the same arguments and the same defaults (ddof = 0 with `axis=`, else correction = 1)."""
        return self.var(dim, unbiased, keepdim, correction=correction, ddof=ddof, axis=axis, keepdims=keepdims).sqrt()

    def norm(
        self,
        p: Any = "fro",
        dim: Axes = None,
        keepdim: bool | None = None,
        *,
        axis: Axes = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        """(sum |x|^p)^(1/p) over the axes (all by default); p = 2 ("fro"), 1, inf, -inf or any p > 0.

        Composed. At x = 0 the root's derivative is infinite; the norm's
        gradient there is 0 (as PyTorch's): a double `where` keeps the inf
        from ever being formed, even in the branch that is not taken."""
        axes, keep = _reduction_args("norm", dim, keepdim, axis, keepdims)
        if p == "fro":
            p = 2
        if not isinstance(p, int | float | np.number) or (not p > 0 and p != -np.inf):
            raise ArgumentError(f"norm: p must be 'fro', inf, -inf or a number > 0, got {p!r}")
        if p == np.inf:
            return self.abs().amax(axis=axes, keepdims=keep)
        if p == -np.inf:
            return self.abs().amin(axis=axes, keepdims=keep)
        if p == 1:
            return self.abs().sum(axis=axes, keepdims=keep)
        powered = (self * self) if p == 2 else self.abs() ** p
        total = powered.sum(axis=axes, keepdims=keep)
        is_zero = total.data == 0
        safe = where(is_zero, np.ones((), total.dtype), total)
        return where(is_zero, np.zeros((), total.dtype), safe ** (1.0 / p))

    def logsumexp(
        self, dim: Axes = None, keepdim: bool | None = None, *, axis: Axes = None, keepdims: bool | None = None
    ) -> Tensor:
        axes, keep = _reduction_args("logsumexp", dim, keepdim, axis, keepdims)
        return ops.LogSumExp.apply(self, axis=axes, keepdims=keep)

    def softmax(self, dim: int | None = None, *, axis: int | None = None) -> Tensor:
        """exp(x) / sum exp(x) along one axis (the last when none is given)."""
        chosen = pick_spelling("softmax", "dim", dim, "axis", axis)
        return ops.Softmax.apply(self, axis=-1 if chosen is None else chosen)

    def log_softmax(self, dim: int | None = None, *, axis: int | None = None) -> Tensor:
        """x - logsumexp(x) along one axis (the last when none is given)."""
        chosen = pick_spelling("log_softmax", "dim", dim, "axis", axis)
        return ops.LogSoftmax.apply(self, axis=-1 if chosen is None else chosen)


def _reduction_args(op: str, dim: Any, keepdim: bool | None, axis: Any, keepdims: bool | None) -> tuple[Any, bool]:
    """(axes, keepdims) from either spelling: PyTorch's dim/keepdim or numpy's axis/keepdims."""
    return pick_spelling(op, "dim", dim, "axis", axis), bool(
        pick_spelling(op, "keepdim", keepdim, "keepdims", keepdims)
    )
