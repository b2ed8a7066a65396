"""tensor_shape.py — movement and views: reshape, permute, expand, squeeze, gather, split, ... as methods of Tensor.

Read after tensor.py and ops.py: `Tensor` lists `Movement` among its bases. Only
reshape, permute, broadcast_to, indexing and unbind are primitives (ops.py);
the rest (flatten, expand, repeat, gather, chunk, ...) is composed from them.
`Size` is what `x.size` returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from . import ops
from .errors import ArgumentError, IndexingError, ShapeError, fmt_shape
from .function import Function
from .shapes import normalize_axes, pick_spelling
from .tensor_functions import where

if TYPE_CHECKING:  # annotations only: tensor.py imports this module, and hands Function its class at run time
    from typing_extensions import Self

    from .tensor import Tensor

Axes = int | Sequence[int] | None


class Size(int):
    """`x.size`: the element count as numpy's attribute, and, called, the shape as PyTorch's method.

    numpy's `x.size` is an int and PyTorch's `x.size()` is the shape; this int
    is callable so that both habits work: `x.size == 6`, `x.size()` gives
    (2, 3) and `x.size(1)` gives 3. `x.numel()` is the count, spelled as PyTorch.
    """

    shape: tuple[int, ...]

    def __new__(cls, shape: tuple[int, ...]) -> Size:
        size = super().__new__(cls, math.prod(shape))
        size.shape = shape
        return size

    def __reduce__(self) -> tuple[type[int], tuple[int]]:
        return int, (int(self),)  # pickles (and copies) as the plain count

    @overload
    def __call__(self, dim: None = None) -> tuple[int, ...]: ...
    @overload
    def __call__(self, dim: int) -> int: ...
    def __call__(self, dim: int | None = None) -> tuple[int, ...] | int:
        if dim is None:
            return self.shape
        return self.shape[normalize_axes(f"size of shape {fmt_shape(self.shape)}", dim, len(self.shape))[0]]


class Movement:
    """Reshaping, reordering, broadcasting, squeezing and splitting; a base class of Tensor."""

    __slots__ = ()

    if TYPE_CHECKING:  # provided by Tensor

        @property
        def shape(self) -> tuple[int, ...]: ...
        @property
        def ndim(self) -> int: ...
        def __getitem__(self, index: Any) -> Tensor: ...

    def reshape(self, *shape: Any) -> Tensor:
        target = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        return ops.Reshape.apply(self, shape=target)

    def view(self, *shape: Any) -> Tensor:
        """PyTorch's name for reshape (numpy arrays have no strides to respect here, so it always works)."""
        if len(shape) == 1 and isinstance(shape[0], type | np.dtype | str):
            raise ArgumentError("view: reinterpreting the bytes as another dtype is not supported; use .to(dtype)")
        return self.reshape(*shape)

    def view_as(self, other: Tensor) -> Tensor:
        return self.reshape(other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge the axes start_dim..end_dim into one (all of them by default; a 0-d tensor becomes (1,))."""
        if self.ndim == 0:  # as PyTorch: a 0-d tensor counts as one axis here, and becomes (1,)
            normalize_axes("flatten", start_dim, 1)
            normalize_axes("flatten", end_dim, 1)
            return self.reshape(1)
        (start,) = normalize_axes("flatten", start_dim, self.ndim)
        (end,) = normalize_axes("flatten", end_dim, self.ndim)
        if start > end:
            raise ShapeError(
                f"flatten: start_dim {start_dim} comes after end_dim {end_dim} in shape {fmt_shape(self.shape)}"
            )
        merged = math.prod(self.shape[start : end + 1])  # not -1: numpy cannot infer it when a size is 0
        return self.reshape((*self.shape[:start], merged, *self.shape[end + 1 :]))

    def permute(self, *axes: Any) -> Tensor:
        order = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], tuple | list) else axes
        return ops.Permute.apply(self, axes=order)

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two axes (PyTorch's meaning); `.T` or `permute` for other orders."""
        order = list(range(self.ndim))
        try:
            order[dim0], order[dim1] = order[dim1], order[dim0]
        except IndexError:
            raise ShapeError(
                f"transpose: axes {dim0} and {dim1} do not exist for shape {fmt_shape(self.shape)}"
            ) from None
        return self.permute(*order)

    def t(self) -> Tensor | Self:
        """The transpose of a matrix; 0-d and 1-d tensors are returned as they are (PyTorch's `t`)."""
        if self.ndim > 2:
            raise ShapeError(
                f"t: expects at most 2 dimensions, got shape {fmt_shape(self.shape)}; use transpose(dim0, dim1) or .mT"
            )
        return self.transpose(0, 1) if self.ndim == 2 else self

    def broadcast_to(self, *shape: Any) -> Tensor:
        target = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        return ops.BroadcastTo.apply(self, shape=target)

    def expand(self, *sizes: Any) -> Tensor:
        """broadcast_to, where -1 keeps an existing axis's size (PyTorch's `expand`)."""
        target = tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], tuple | list) else sizes
        lead = len(target) - self.ndim
        if lead < 0:
            raise ShapeError(f"expand: {target} has fewer axes than shape {fmt_shape(self.shape)}")
        if any(n == -1 for n in target[:lead]):
            raise ShapeError(f"expand: -1 cannot stand for a new leading axis in {target}")
        return self.broadcast_to(tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(target)))

    def expand_as(self, other: Tensor) -> Tensor:
        return self.broadcast_to(other.shape)

    def repeat(self, *repeats: Any) -> Tensor:
        """Tile the tensor `repeats[i]` times along axis i (PyTorch's `repeat`, numpy's `tile`).

        Composed: each axis of size n gets a new size-1 axis in front of it,
        which is broadcast to the repeat count, and the pairs are merged."""
        counts = tuple(repeats[0]) if len(repeats) == 1 and isinstance(repeats[0], tuple | list) else repeats
        if len(counts) < self.ndim or any(not isinstance(r, int | np.integer) or r < 0 for r in counts):
            raise ShapeError(
                f"repeat: needs one count >= 0 per axis of shape {fmt_shape(self.shape)} (or more), got {counts}"
            )
        shape = (1,) * (len(counts) - self.ndim) + self.shape
        paired = self.reshape(tuple(m for n in shape for m in (1, n)))
        tiled = paired.broadcast_to(tuple(m for r, n in zip(counts, shape, strict=True) for m in (r, n)))
        return tiled.reshape(tuple(r * n for r, n in zip(counts, shape, strict=True)))

    def unsqueeze(self, dim: int | None = None, *, axis: int | None = None) -> Tensor:
        """A new size-1 axis at `dim` (in the result's numbering, as PyTorch)."""
        where_to = pick_spelling("unsqueeze", "dim", dim, "axis", axis)
        if where_to is None:
            raise ArgumentError("unsqueeze: needs the position of the new axis, dim=")
        a = normalize_axes(f"unsqueeze of shape {fmt_shape(self.shape)}", where_to, self.ndim + 1)[0]
        return self.reshape((*self.shape[:a], 1, *self.shape[a:]))

    def squeeze(self, dim: Axes = None, *, axis: Axes = None) -> Tensor:
        """Remove size-1 axes: all of them, or those among `dim` (PyTorch: an axis of another size is kept).

        numpy's `axis=` keeps numpy's meaning: naming an axis whose size is not 1 is an error."""
        chosen = pick_spelling("squeeze", "dim", dim, "axis", axis)
        axes = normalize_axes("squeeze", chosen, self.ndim)
        if axis is not None:
            wrong = [a for a in axes if self.shape[a] != 1]
            if wrong:
                raise ShapeError(
                    f"squeeze: axis {wrong[0]} has size {self.shape[wrong[0]]}, not 1, in shape {fmt_shape(self.shape)}"
                )
        return self.reshape(tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1)))

    def gather(self, dim: int, index: Any) -> Tensor:
        """out[i][j] = x[i][index[i][j]] for dim = 1 (and likewise for any dim), as PyTorch's `gather`.

        Composed from getitem, so the gradient is scatter-add: repeated indices add up."""
        picks = index.data if isinstance(index, Function.tensor_class) else np.asarray(index)
        (axis,) = normalize_axes("gather", dim, max(self.ndim, 1))
        if picks.dtype.kind not in "iu" or picks.ndim != self.ndim:
            raise IndexingError(
                f"gather: index must be an integer tensor with as many axes as the input {fmt_shape(self.shape)}, "
                f"got dtype {picks.dtype} and shape {fmt_shape(picks.shape)}"
            )
        if any(n > m for i, (n, m) in enumerate(zip(picks.shape, self.shape, strict=True)) if i != axis):
            raise IndexingError(
                f"gather: index of shape {fmt_shape(picks.shape)} is larger than the input {fmt_shape(self.shape)} "
                f"outside axis {dim}"
            )
        return self[_along(picks, axis)]

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        """`value` where `mask` is True, else x; the gradient reaches x only where the mask is False."""
        return where(mask, value, self)

    def unbind(self, dim: int | None = None, *, axis: int | None = None) -> tuple[Tensor, ...]:
        """The slices along `dim` (0 by default), that axis removed (one node, so the VJP is a single stack)."""
        chosen = pick_spelling("unbind", "dim", dim, "axis", axis)
        return tuple(ops.Unbind.apply(self, axis=0 if chosen is None else chosen))

    def split(
        self, split_size_or_sections: int | Sequence[int], dim: int | None = None, *, axis: int | None = None
    ) -> tuple[Tensor, ...]:
        """Split along `dim` into chunks of `split_size` (an int) or of the given sizes (a list), as PyTorch."""
        chosen = pick_spelling("split", "dim", dim, "axis", axis)
        axis = 0 if chosen is None else chosen
        if self.ndim == 0:
            raise ShapeError("split: cannot split a 0-d tensor")
        length = self.shape[normalize_axes("split", axis, self.ndim)[0]]
        if isinstance(split_size_or_sections, int):
            if split_size_or_sections <= 0:
                raise ShapeError(f"split: split size must be positive, got {split_size_or_sections}")
            step = split_size_or_sections
            sizes = tuple(min(step, length - start) for start in range(0, length, step))
        else:
            sizes = tuple(split_size_or_sections)
        pieces = ops.Split.apply(self, sizes=sizes, axis=axis)
        return tuple(pieces)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """Split into `chunks` pieces of ceil(n / chunks) along `dim` (fewer if n runs out), as PyTorch."""
        if not isinstance(chunks, int | np.integer) or chunks < 1:
            raise ArgumentError(f"chunk: chunks must be a positive int, got {chunks!r}")
        length = self.shape[normalize_axes("chunk", dim, self.ndim)[0]] if self.ndim else 0
        return self.split(max(-(-length // chunks), 1), dim)


# ------------------------------------------------------------ functions over several tensors


def _along(indices: np.ndarray, axis: int) -> tuple[Any, ...]:
    """The index that picks x[..., indices[i, j, ...], ...] (at `axis`) for every position of `indices`:
    numpy's take_along_axis written as advanced indexing, so that GetItem differentiates it."""
    if indices.ndim == 0:
        return ()
    return tuple(
        indices if i == axis else np.arange(n).reshape([-1 if j == i else 1 for j in range(indices.ndim)])
        for i, n in enumerate(indices.shape)
    )
