"""shapes.py — shape arithmetic shared by the engine and the ops.

Four ideas live here, once each:
- `broadcast_shape`: numpy's broadcasting rule, with an error that names the op;
- `unbroadcast_axes`: which axes to sum so a gradient shaped like a broadcast
  result gets back the shape of the input that was broadcast;
- `normalize_axes`: turn `axis=None | int | tuple` into a sorted tuple of
  non-negative axes, with an error that names the op;
- `pick_spelling`: accept PyTorch's `dim=`/`keepdim=` or numpy's
  `axis=`/`keepdims=`, and refuse both at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ArgumentError, ShapeError, fmt_shape

Shape = tuple[int, ...]


def broadcast_shape(op: str, *shapes: Shape) -> Shape:
    """The shape numpy broadcasting gives `shapes`, or a ShapeError naming `op` and every shape."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis and s[axis] != 1}
        if len(sizes) > 1:
            listed = " and ".join(fmt_shape(s) for s in shapes)
            raise ShapeError(
                f"{op}: cannot broadcast shapes {listed}; axis {axis} has sizes {sorted(sizes)}. "
                "Sizes must match or be 1 (numpy broadcasting rules)."
            )
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def unbroadcast_axes(grad_shape: Shape, shape: Shape) -> tuple[int, ...] | None:
    """Axes of `grad_shape` to sum so the result has `shape`, or None if that is impossible.

    The adjoint of broadcasting is summation: an input of shape (3, 1) broadcast
    to (2, 3, 4) was copied along axis 0 (new) and axis 2 (size 1), so its
    gradient is the sum of the copies' gradients over those axes:

    >>> unbroadcast_axes((2, 3, 4), (3, 1))
    (0, 2)
    """
    lead = len(grad_shape) - len(shape)
    if lead < 0:
        return None
    axes = list(range(lead))
    for axis, (g, s) in enumerate(zip(grad_shape[lead:], shape, strict=True), start=lead):
        if s == 1 and g != 1:
            axes.append(axis)
        elif s != g:
            return None
    return tuple(axes)


# A tuple, not `int | np.integer`: that union would be built anew at every test (~0.1 us each), and
# normalize_axes runs in every reduction's forward, in every replay of a compiled step too.
_INTEGERS = (int, np.integer)


def normalize_axes(op: str, axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """`axis` as a sorted tuple of distinct non-negative axes (None means all of them)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, _INTEGERS):
        axes: tuple[Any, ...] = (int(axis),)
    elif isinstance(axis, tuple | list):
        axes = tuple(axis)
    else:
        raise ShapeError(f"{op}: axis must be None, an int or a tuple of ints, got {axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, _INTEGERS) or not -ndim <= a < ndim:
            raise ShapeError(f"{op}: axis {a!r} is out of range for a tensor with {ndim} dimension(s)")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def pick_spelling(op: str, torch_name: str, torch_value: Any, numpy_name: str, numpy_value: Any) -> Any:
    """The one value given under PyTorch's name (`dim`, `keepdim`) or numpy's (`axis`, `keepdims`).

    Both spellings are accepted everywhere (docs/pytorch.md); giving both is a
    mistake we refuse rather than guess at. None means "not given".
    """
    if torch_value is not None and numpy_value is not None:
        raise ArgumentError(
            f"{op}: got both {torch_name}= and {numpy_name}=; they are the same argument "
            f"(PyTorch's and numpy's names), pass only one"
        )
    return numpy_value if torch_value is None else torch_value
