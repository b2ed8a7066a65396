"""tensor.py — the Tensor: an ndarray, an optional gradient, and the node that made it. Read first.

A Tensor created by the user is a *leaf* (`_node is None`). A Tensor returned
by an operation on tensors that require grad remembers the `Function` node that
produced it; following `_node.parents` from a loss walks the whole recorded
graph (the tape). Every operator below is a one-line call into `ops.py`, where
each primitive keeps its forward and its VJP side by side.

`.grad` is an ndarray after a plain `backward()`, and a Tensor after
`backward(create_graph=True)` (so that it can be differentiated again).

Spelling: PyTorch's wherever PyTorch has the feature, and numpy's keeps
working (`dim=`/`keepdim=` or `axis=`/`keepdims=`); docs/pytorch.md lists the
few places where the two disagree and which meaning each spelling gets.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, overload

import numpy as np

from .errors import ArgumentError, DTypeError, GradientError, IndexingError, ShapeError, fmt_shape
from .shapes import broadcast_shape, normalize_axes, pick_spelling

if TYPE_CHECKING:
    from .engine import Function

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


class ValuesIndices(NamedTuple):
    """What `x.max(dim)` and `x.min(dim)` return, as PyTorch's `torch.return_types.max`."""

    values: Tensor
    indices: Tensor


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    >>> x = Tensor([1.0, 2.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    array([2., 4.])
    """

    __slots__ = ("__weakref__", "_hooks", "_node", "_retains_grad", "data", "grad", "requires_grad")
    __array_ufunc__ = None  # `ndarray + Tensor` defers to Tensor.__radd__ instead of looping elementwise

    data: np.ndarray
    grad: Any  # np.ndarray | Tensor | None, see the module docstring
    _node: Function | None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        try:
            if not isinstance(data, np.ndarray | np.generic):
                probe = np.asarray(data)
                _refuse_objects("Tensor", probe)
                if dtype is None:  # Python numbers and lists default to float64; bools stay bool.
                    dtype = probe.dtype if probe.dtype.kind in "bfc" else np.float64
            elif data.dtype.kind == "O":
                _refuse_objects("Tensor", np.asarray(data))
            array = np.array(data, dtype=dtype, copy=True)
        except (TypeError, ValueError) as exc:  # ragged nested lists, strings, objects
            if isinstance(exc, DTypeError):
                raise
            raise DTypeError(f"Tensor: cannot make an array from {type(data).__name__}: {exc}") from None
        if array.dtype.kind not in "biufc":
            raise DTypeError(f"Tensor: dtype {array.dtype} is not numeric")
        self.data = array
        self.grad = None
        self._node = None
        self._hooks: list[Callable[[Tensor], Tensor | None]] | None = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_()

    @classmethod
    def _make(cls, data: np.ndarray, node: Any) -> Tensor:
        """Wrap an array the engine produced (no copy, no checks): the fast path of every op."""
        out = cls.__new__(cls)
        out.data = data
        out.grad = None
        out._node = node
        out._hooks = None
        out._retains_grad = False
        out.requires_grad = node is not None
        return out

    # ------------------------------------------------------------ properties

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> Size:
        """The element count (numpy's attribute); called, the shape (PyTorch's method). See `Size`."""
        return Size(self.data.shape)

    def numel(self) -> int:
        """The number of elements (PyTorch's name for numpy's `x.size`)."""
        return self.data.size

    def dim(self) -> int:
        """The number of axes (PyTorch's name for `x.ndim`)."""
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        """True for tensors the user made (and for results of ops that recorded nothing)."""
        return self._node is None

    @property
    def grad_fn(self) -> Any:
        """The node that produced this tensor, or None for a leaf."""
        return self._node

    @property
    def T(self) -> Tensor:
        """The axes reversed, as numpy's `.T`."""
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:
        """The last two axes swapped: a batch of matrices, each transposed (PyTorch's `.mT`)."""
        if self.ndim < 2:
            raise ShapeError(f"mT: needs at least 2 dimensions, got shape {fmt_shape(self.shape)}")
        return self.transpose(-2, -1)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise ShapeError("len: a 0-d tensor has no length")
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", threshold=50)
        extras = [] if self.dtype == np.float64 else [f"dtype={self.dtype}"]
        if self._node is not None:
            extras.append(f"grad_fn={self._node.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "Tensor(" + ", ".join([body, *extras]) + ")"

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """`np.asarray(t)` gives the data (numpy functions see the values, not the graph)."""
        return self.data if dtype is None else self.data.astype(dtype)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ShapeError(f"bool: the truth value of a tensor of shape {fmt_shape(self.shape)} is ambiguous")
        return bool(self.data)

    __hash__ = object.__hash__  # == is elementwise, so identity must be the hash (tensors are dict keys)

    # ------------------------------------------------------------ autograd

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Mark a leaf as a variable to differentiate with respect to (in place; returns self)."""
        if requires_grad and self.dtype.kind not in "fc":
            raise DTypeError(
                f"requires_grad: only floating-point tensors can require gradients, got dtype {self.dtype}; "
                "convert first, e.g. Tensor(data, dtype=np.float64)"
            )
        if not requires_grad and self._node is not None:
            raise GradientError("requires_grad_(False) only applies to leaves; use .detach() on a result")
        self.requires_grad = requires_grad
        return self

    def detach(self) -> Tensor:
        """The same values, cut from the graph: no gradient flows through the result."""
        return Tensor._make(self.data, None)

    def retain_grad(self) -> Tensor:
        """Ask backward() to keep this non-leaf's gradient in `.grad` (e.g. every hidden state h_t)."""
        if not self.requires_grad:
            raise GradientError("retain_grad: the tensor does not require grad")
        self._retains_grad = True
        return self

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> Callable[[], None]:
        """Call `hook(grad)` when this tensor's gradient is computed; a returned Tensor replaces it.

        Returns a function that removes the hook.
        """
        if not self.requires_grad:
            raise GradientError("register_hook: the tensor does not require grad")
        if self._hooks is None:
            self._hooks = []
        hooks = self._hooks
        hooks.append(hook)
        return lambda: hooks.remove(hook)

    def _run_hooks(self, grad: Tensor) -> Tensor:
        for hook in self._hooks or ():
            replaced = hook(grad)
            if replaced is not None:
                replaced = replaced if isinstance(replaced, Tensor) else Tensor(replaced)
                # Checked here: a leaf would store the wrong shape silently, and for a non-leaf the
                # next VJP's shape check would blame that op instead of the hook.
                if replaced.shape != self.shape:
                    raise GradientError(
                        f"register_hook: {getattr(hook, '__qualname__', 'a hook')} returned a gradient of shape "
                        f"{fmt_shape(replaced.shape)} for a tensor of shape {fmt_shape(self.shape)}; "
                        "a hook may change the gradient's values, not its shape"
                    )
                grad = replaced
        return grad

    def _accumulate_grad(self, grad: Tensor, create_graph: bool) -> None:
        if create_graph:
            previous = self.grad
            if isinstance(previous, np.ndarray):
                previous = Tensor(previous)
            self.grad = grad if previous is None else previous + grad
        elif self.grad is None:
            self.grad = np.array(grad.data, copy=True)  # own it: grads may be views or broadcasts
        else:
            previous = self.grad.data if isinstance(self.grad, Tensor) else self.grad
            self.grad = previous + grad.data

    def backward(self, grad: Any = None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """Add d(self)/d(leaf) into `.grad` of every leaf that requires grad, as PyTorch does.

        `grad` is dL/d(self); it may be omitted for a single-element tensor. The
        graph is freed afterwards unless `retain_graph=True`.
        """
        seed = engine.seed_gradient("backward", self, grad)
        leaf_grads = engine.backward(
            [self], [seed], retain_graph=retain_graph or create_graph, create_graph=create_graph
        )
        for leaf, g in leaf_grads.items():
            if leaf._node is None and leaf.requires_grad:
                leaf._accumulate_grad(g, create_graph)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    # ------------------------------------------------------------ conversion

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

    def astype(self, dtype: Any) -> Tensor:
        """A copy with another dtype; gradients flow back converted to the original dtype.

        An integer or bool result records nothing (it cannot carry a gradient), as in PyTorch."""
        target = np.dtype(dtype)
        if target == self.dtype:
            return self
        if target.kind not in "fc":
            return Tensor._make(self.data.astype(target), None)
        return ops.Cast.apply(self, dtype=target)

    def to(self, target: Any = None, dtype: Any = None) -> Tensor:
        """`x.to(dtype)`, `x.to(other)` (other's dtype) or `x.to("cpu")` (the only device: a no-op)."""
        if isinstance(target, Tensor):
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

    def type_as(self, other: Tensor) -> Tensor:
        """A copy with `other`'s dtype."""
        return self.astype(other.dtype)

    def float(self) -> Tensor:
        """As float32 (PyTorch's `float`; this library's default float is float64, see `double`)."""
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def half(self) -> Tensor:
        return self.astype(np.float16)

    def long(self) -> Tensor:
        """As int64; records nothing (integers carry no gradient)."""
        return self.astype(np.int64)

    # ------------------------------------------------------------ arithmetic

    def _operand(self, other: Any) -> Tensor:
        """`other` as a Tensor; a Python number takes this tensor's dtype, as numpy does."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, int | float) and self.dtype.kind == "f":
            return Tensor._make(np.asarray(other, dtype=self.dtype), None)
        if isinstance(other, np.ndarray | np.generic | int | float | bool | list | tuple):
            return Tensor(other) if isinstance(other, list | tuple) else Tensor._make(np.asarray(other), None)
        raise DTypeError(f"cannot combine a Tensor with {type(other).__name__}")

    def __add__(self, other: Any) -> Tensor:
        return ops.Add.apply(self, self._operand(other))

    def __radd__(self, other: Any) -> Tensor:  # other + self
        return ops.Add.apply(self._operand(other), self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.Sub.apply(self, self._operand(other))

    def __rsub__(self, other: Any) -> Tensor:  # other - self
        return ops.Sub.apply(self._operand(other), self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.Mul.apply(self, self._operand(other))

    def __rmul__(self, other: Any) -> Tensor:  # other * self
        return ops.Mul.apply(self._operand(other), self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.Div.apply(self, self._operand(other))

    def __rtruediv__(self, other: Any) -> Tensor:  # other / self
        return ops.Div.apply(self._operand(other), self)

    def __pow__(self, other: Any) -> Tensor:
        return ops.Pow.apply(self, self._operand(other))

    def __rpow__(self, other: Any) -> Tensor:  # other ** self
        return ops.Pow.apply(self._operand(other), self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.MatMul.apply(self, self._operand(other))

    def __rmatmul__(self, other: Any) -> Tensor:  # other @ self
        return ops.MatMul.apply(self._operand(other), self)

    # In-place updates, for the PyTorch idiom `with no_grad(): p -= lr * p.grad`. They rebind
    # `.data` to a new array (so recorded graphs keep the values they saw) and return self.
    def __iadd__(self, other: Any) -> Tensor:
        return self._update("+=", np.add, other)

    def __isub__(self, other: Any) -> Tensor:
        return self._update("-=", np.subtract, other)

    def __imul__(self, other: Any) -> Tensor:
        return self._update("*=", np.multiply, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._update("/=", np.true_divide, other)

    def _update(self, op: str, fn: Any, other: Any) -> Tensor:
        if self.requires_grad and engine.is_grad_enabled():
            raise GradientError(
                f"{op}: an in-place update of a tensor that requires grad is not recorded on the tape; "
                f"do it under `with tg.no_grad():` (as an optimizer step does), or write `x = x {op[0]} y`"
            )
        value = other.data if isinstance(other, Tensor) else np.asarray(other)
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

    def __setitem__(self, index: Any, value: Any) -> None:
        """`x[index] = value` under `no_grad()` (or on a tensor outside any graph).

        Like `+=`, it rebinds `.data` to an updated copy, so a graph recorded
        earlier keeps the values it saw. With grad on, writing into a tensor
        that requires grad (or writing a value that does) would not be on the
        tape, so it is refused."""
        if engine.is_grad_enabled() and (self.requires_grad or (isinstance(value, Tensor) and value.requires_grad)):
            raise GradientError(
                "setitem: an in-place write into a tensor that requires grad (or of a value that requires grad) "
                "is not recorded on the tape; do it under `with tg.no_grad():`, or build the result out of place, "
                "e.g. tg.where(mask, value, x)"
            )
        source = value.data if isinstance(value, Tensor) else np.asarray(value)
        _refuse_objects("setitem", source)
        updated = self.data.copy()
        try:
            updated[ops.plain_index(index)] = source
        except IndexError as exc:
            raise IndexingError(f"setitem: index {index!r} does not fit shape {fmt_shape(self.shape)}: {exc}") from None
        except (ValueError, TypeError):
            raise ShapeError(
                f"setitem: cannot write a value of shape {fmt_shape(np.shape(source))} and dtype {source.dtype} "
                f"at {index!r} of a tensor of shape {fmt_shape(self.shape)} and dtype {self.dtype}"
            ) from None
        self.data = updated

    def zero_(self) -> Tensor:
        """Set every element to 0 (in place, under the same rule as `x[...] = 0`); returns self."""
        return self.fill_(0)

    def fill_(self, value: Any) -> Tensor:
        """Set every element to `value` (in place, under the same rule as `x[...] = value`); returns self."""
        self[...] = value
        return self

    def __floordiv__(self, other: Any) -> Tensor:
        return _piecewise_constant("floor_divide", np.floor_divide, self, self._operand(other))

    def __rfloordiv__(self, other: Any) -> Tensor:  # other // self
        return _piecewise_constant("floor_divide", np.floor_divide, self._operand(other), self)

    def __mod__(self, other: Any) -> Tensor:
        return ops.Remainder.apply(self, self._operand(other))

    def __rmod__(self, other: Any) -> Tensor:  # other % self
        return ops.Remainder.apply(self._operand(other), self)

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return ops.Abs.apply(self)

    # Comparisons are not differentiable: they return boolean tensors that record nothing.
    def __lt__(self, other: Any) -> Tensor:
        return Tensor._make(self.data < self._operand(other).data, None)

    def __le__(self, other: Any) -> Tensor:
        return Tensor._make(self.data <= self._operand(other).data, None)

    def __gt__(self, other: Any) -> Tensor:
        return Tensor._make(self.data > self._operand(other).data, None)

    def __ge__(self, other: Any) -> Tensor:
        return Tensor._make(self.data >= self._operand(other).data, None)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]  # elementwise, as numpy and PyTorch
        return Tensor._make(np.asarray(self.data == self._operand(other).data), None)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]  # elementwise, as numpy and PyTorch
        return Tensor._make(np.asarray(self.data != self._operand(other).data), None)

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

    # ------------------------------------------------------------ elementwise functions

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

    # builtins.float: inside this class body, `float` names the method Tensor.float.
    def clip(self, min: builtins.float | Tensor | None = None, max: builtins.float | Tensor | None = None) -> Tensor:
        """Limit values to [min, max]; the gradient passes only where x was inside.

        Tensor bounds (PyTorch allows them) are composed from `where`: each bound
        gets the gradient where it was the one selected."""
        if not isinstance(min, Tensor | np.ndarray) and not isinstance(max, Tensor | np.ndarray):
            return ops.Clip.apply(self, low=min, high=max)
        out = self
        if min is not None:
            low = self._operand(min)
            out = where(~(out.data < low.data), out, low)  # ~(x < low) keeps a NaN x, as clamp does
        if max is not None:
            high = self._operand(max)
            out = where(~(out.data > high.data), out, high)
        return out

    clamp = clip

    # ------------------------------------------------------------ reductions

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
        if isinstance(dim, Tensor):
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
        return Tensor._make(
            np.asarray(np.all(self.data, axis=normalize_axes("all", axes, self.ndim), keepdims=keep)), None
        )

    def any(
        self, dim: Axes = None, keepdim: bool | None = None, *, axis: Axes = None, keepdims: bool | None = None
    ) -> Tensor:
        """True where some element (over the axes) is nonzero; a bool tensor, no gradient."""
        axes, keep = _reduction_args("any", dim, keepdim, axis, keepdims)
        return Tensor._make(
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
            return Tensor._make(np.asarray(flat, dtype=np.int64).reshape((1,) * self.ndim if keep else ()), None)
        if not isinstance(axis, int | np.integer):
            raise ArgumentError(f"{op}: takes one axis (an int), got {axis!r}")
        axis = int(axis)
        if self.ndim == 0:  # as PyTorch: dim 0 or -1 of a 0-d tensor is the tensor itself
            normalize_axes(op, axis, 1)
            return Tensor._make(np.zeros((), dtype=np.int64), None)
        (a,) = normalize_axes(op, axis, self.ndim)
        if self.shape[a] == 0:
            raise ShapeError(
                f"{op}: axis {axis} of shape {fmt_shape(self.shape)} is empty; there is no index to return"
            )
        return Tensor._make(getattr(np, fn)(self.data, axis=a, keepdims=keep).astype(np.int64, copy=False), None)

    def var(
        self,
        dim: Axes = None,
        unbiased: bool | None = None,
        keepdim: bool | None = None,
        *,
        correction: builtins.float | None = None,
        ddof: builtins.float | None = None,
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
        c = builtins.float(int(unbiased) if unbiased is not None else next(iter(given.values()), default))
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
        correction: builtins.float | None = None,
        ddof: builtins.float | None = None,
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
        if not isinstance(p, int | builtins.float | np.number) or (not p > 0 and p != -np.inf):
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

    # ------------------------------------------------------------ movement

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

    def t(self) -> Tensor:
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

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=index)

    def gather(self, dim: int, index: Any) -> Tensor:
        """out[i][j] = x[i][index[i][j]] for dim = 1 (and likewise for any dim), as PyTorch's `gather`.

        Composed from getitem, so the gradient is scatter-add: repeated indices add up."""
        picks = index.data if isinstance(index, Tensor) else np.asarray(index)
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
        return split(self, split_size_or_sections, dim, axis=axis)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """Split into `chunks` pieces of ceil(n / chunks) along `dim` (fewer if n runs out), as PyTorch."""
        if not isinstance(chunks, int | np.integer) or chunks < 1:
            raise ArgumentError(f"chunk: chunks must be a positive int, got {chunks!r}")
        length = self.shape[normalize_axes("chunk", dim, self.ndim)[0]] if self.ndim else 0
        return split(self, max(-(-length // chunks), 1), dim)


# ------------------------------------------------------------ functions over several tensors


def _tensors(op: str, tensors: Sequence[Any]) -> list[Tensor]:
    items = list(tensors)
    if not items:
        raise ShapeError(f"{op}: needs at least one tensor")
    return [t if isinstance(t, Tensor) else Tensor(t) for t in items]


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
    chosen = pick_spelling("split", "dim", dim, "axis", axis)
    axis = 0 if chosen is None else chosen
    if tensor.ndim == 0:
        raise ShapeError("split: cannot split a 0-d tensor")
    length = tensor.shape[normalize_axes("split", axis, tensor.ndim)[0]]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ShapeError(f"split: split size must be positive, got {split_size_or_sections}")
        step = split_size_or_sections
        sizes = tuple(min(step, length - start) for start in range(0, length, step))
    else:
        sizes = tuple(split_size_or_sections)
    pieces = ops.Split.apply(tensor, sizes=sizes, axis=axis)
    return tuple(pieces)


def where(condition: Any, x: Any, y: Any) -> Tensor:
    """Elements of `x` where `condition` holds, else of `y` (condition is not differentiated)."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise DTypeError(f"where: condition must be boolean, got dtype {cond.dtype}")
    like = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else Tensor(x)
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
    return x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else Tensor(x)


def _reduction_args(op: str, dim: Any, keepdim: bool | None, axis: Any, keepdims: bool | None) -> tuple[Any, bool]:
    """(axes, keepdims) from either spelling: PyTorch's dim/keepdim or numpy's axis/keepdims."""
    return pick_spelling(op, "dim", dim, "axis", axis), bool(
        pick_spelling(op, "keepdim", keepdim, "keepdims", keepdims)
    )


def _along(indices: np.ndarray, axis: int) -> tuple[Any, ...]:
    """The index that picks x[..., indices[i, j, ...], ...] (at `axis`) for every position of `indices`:
    numpy's take_along_axis written as advanced indexing, so that GetItem differentiates it."""
    if indices.ndim == 0:
        return ()
    return tuple(
        indices if i == axis else np.arange(n).reshape([-1 if j == i else 1 for j in range(indices.ndim)])
        for i, n in enumerate(indices.shape)
    )


def _refuse_objects(op: str, array: np.ndarray) -> None:
    """numpy turns None into nan (and keeps other objects) when it converts a list: refuse, naming the culprit."""
    if array.dtype.kind != "O":
        return
    culprit = next((v for v in array.reshape(-1) if not isinstance(v, int | float | complex | np.number | bool)), None)
    raise DTypeError(
        f"{op}: the data holds {culprit!r} ({type(culprit).__name__}), which is not a number; "
        "use float('nan') for a missing value"
    )


def _piecewise_constant(op: str, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], x: Tensor, y: Tensor) -> Tensor:
    """fn(x, y) for a piecewise-constant fn (floor division): its derivative is 0 almost everywhere,
    so, like a comparison, the result records nothing and does not require grad."""
    try:
        return Tensor._make(np.asarray(fn(x.data, y.data)), None)
    except ValueError:
        broadcast_shape(op, x.shape, y.shape)
        raise


# tensor.py and ops.py/engine.py need each other; importing here, after Tensor exists, breaks the cycle.
from . import engine, ops  # noqa: E402
