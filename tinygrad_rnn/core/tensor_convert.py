"""tensor_convert.py — a Tensor's dtype conversions, its values as Python/numpy, and in-place writes.

Read after tensor.py and ops.py: `Tensor` lists `Conversions` among its bases. The
in-place writes (`+=`, `x[i] = v`, `fill_`) rebind `.data` to an updated copy,
so that a graph recorded earlier keeps the values it saw; with grad on, a
write into a tensor that requires grad would not be on the tape, so it is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import engine, ops
from .errors import ArgumentError, DTypeError, GradientError, IndexingError, ShapeError, fmt_shape
from .function import Function

if TYPE_CHECKING:  # annotations only: tensor.py imports this module, and hands Function its class at run time
    from typing_extensions import Self

    from .tensor import Tensor


class Conversions:
    """`to`/`astype`/`float`/..., `item`/`tolist`/`numpy`, and the in-place writes; a base class of Tensor."""

    __slots__ = ()

    if TYPE_CHECKING:  # provided by Tensor
        requires_grad: bool

        @property
        def data(self) -> np.ndarray: ...
        @data.setter  # a slot of Tensor's, written by the in-place updates below
        def data(self, value: np.ndarray) -> None: ...

        @property
        def shape(self) -> tuple[int, ...]: ...
        @property
        def dtype(self) -> np.dtype[Any]: ...
        @property
        def size(self) -> int: ...

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> Any:
        if self.size != 1:
            raise ShapeError(
                f"item: only a single-element tensor converts to a Python number, got shape {fmt_shape(self.shape)}"
            )
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def astype(self, dtype: Any) -> Tensor | Self:
        """A copy with another dtype; gradients flow back converted to the original dtype.

        An integer or bool result records nothing (it cannot carry a gradient), as in PyTorch."""
        target = np.dtype(dtype)
        if target == self.dtype:
            return self
        if target.kind not in "fc":
            return Function.tensor_class._make(self.data.astype(target), None)
        return ops.Cast.apply(self, dtype=target)

    def to(self, target: Any = None, dtype: Any = None) -> Tensor | Self:
        """`x.to(dtype)`, `x.to(other)` (other's dtype) or `x.to("cpu")` (the only device: a no-op)."""
        if isinstance(target, Function.tensor_class):
            target = target.dtype
        elif isinstance(target, str) and target.split(":")[0] == "cpu":
            target = None
        elif isinstance(target, str) and target.split(":")[0] in ("cuda", "mps", "xla", "meta"):
            raise ArgumentError(f"to: there is only one device here, the CPU (numpy); got {target!r}")
        if target is not None and dtype is not None:
            raise ArgumentError("to: got a dtype twice, positionally and as dtype=")
        chosen = target if dtype is None else dtype
        if chosen is None:
            return self
        try:
            return self.astype(np.dtype(chosen))
        except TypeError:
            raise DTypeError(f"to: {chosen!r} is neither a dtype, a tensor nor the device 'cpu'") from None

    def type_as(self, other: Tensor) -> Tensor | Self:
        """A copy with `other`'s dtype."""
        return self.astype(other.dtype)

    def float(self) -> Tensor | Self:
        """As float32 (PyTorch's `float`; this library's default float is float64, see `double`)."""
        return self.astype(np.float32)

    def double(self) -> Tensor | Self:
        return self.astype(np.float64)

    def half(self) -> Tensor | Self:
        return self.astype(np.float16)

    def long(self) -> Tensor | Self:
        """As int64; records nothing (integers carry no gradient)."""
        return self.astype(np.int64)

    # ------------------------------------------------------------ in-place writes

    def _update(self, op: str, fn: Any, other: Any) -> Self:
        if self.requires_grad and engine.is_grad_enabled():
            raise GradientError(
                f"{op}: an in-place update of a tensor that requires grad is not recorded on the tape; "
                f"do it under `with tg.no_grad():` (as an optimizer step does), or write `x = x {op[0]} y`"
            )
        value = other.data if isinstance(other, Function.tensor_class) else np.asarray(other)
        try:
            result = fn(self.data, value)
        except ValueError:
            result = None
        if result is None or result.shape != self.shape:
            raise ShapeError(
                f"{op}: cannot update a tensor of shape {fmt_shape(self.shape)} with shape {fmt_shape(np.shape(value))}"
            )
        self.data = result.astype(self.dtype, copy=False)
        return self

    def _write(self, op: str, index: Any, value: Any) -> None:
        if engine.is_grad_enabled() and (
            self.requires_grad or (isinstance(value, Function.tensor_class) and value.requires_grad)
        ):
            raise GradientError(
                f"{op}: an in-place write into a tensor that requires grad (or of a value that requires grad) "
                "is not recorded on the tape; do it under `with tg.no_grad():`, or build the result out of place, "
                "e.g. tg.where(mask, value, x)"
            )
        source = value.data if isinstance(value, Function.tensor_class) else np.asarray(value)
        _refuse_objects(op, source)
        updated = self.data.copy()
        try:
            updated[ops.plain_index(index)] = source
        except IndexError as exc:
            raise IndexingError(f"{op}: index {index!r} does not fit shape {fmt_shape(self.shape)}: {exc}") from None
        except (ValueError, TypeError):
            raise ShapeError(
                f"{op}: cannot write a value of shape {fmt_shape(np.shape(source))} and dtype {source.dtype} "
                f"at {index!r} of a tensor of shape {fmt_shape(self.shape)} and dtype {self.dtype}"
            ) from None
        self.data = updated

    def zero_(self) -> Self:
        """Set every element to 0 (in place, under the same rule as `x[...] = 0`); returns self."""
        self._write("zero_", ..., 0)
        return self

    def fill_(self, value: Any) -> Self:
        """Set every element to `value` (in place, under the same rule as `x[...] = value`); returns self."""
        self._write("fill_", ..., value)
        return self


def _refuse_objects(op: str, array: np.ndarray) -> None:
    """numpy turns None into nan (and keeps other objects) when it converts a list: refuse, naming the culprit."""
    if array.dtype.kind != "O":
        return
    culprit = next((v for v in array.reshape(-1) if not isinstance(v, int | float | complex | np.number | bool)), None)
    raise DTypeError(
        f"{op}: the data holds {culprit!r} ({type(culprit).__name__}), which is not a number; "
        "use float('nan') for a missing value"
    )
