"""tensor.py — the Tensor: an ndarray, an optional gradient, and the node that made it. Read first.

A Tensor created by the user is a *leaf* (`_node is None`). A Tensor returned
by an operation on tensors that require grad remembers the `Function` node that
produced it; following `_node.parents` from a loss walks the whole recorded
graph (the tape). Every operator below is a one-line call into `ops.py`, where
each primitive keeps its forward and its VJP side by side.

`.grad` is a Tensor, as in PyTorch: a plain one after `backward()`, and one
that carries its own graph after `backward(create_graph=True)` (so that it can
be differentiated again).

This file holds the data, the autograd methods and the operators. The named
methods come from four base classes, one file each (read them after ops.py):
tensor_math.py (elementwise functions), tensor_reduce.py (reductions),
tensor_shape.py (movement and views), tensor_convert.py (dtypes, Python values,
in-place writes); tensor_functions.py holds stack, cat, split and where.

Spelling: PyTorch's wherever PyTorch has the feature, and numpy's keeps
working (`dim=`/`keepdim=` or `axis=`/`keepdims=`); docs/pytorch.md lists the
few places where the two disagree and which meaning each spelling gets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import engine, ops
from .errors import DTypeError, GradientError, ShapeError, fmt_shape
from .function import Function
from .shapes import broadcast_shape
from .tensor_convert import Conversions, _refuse_objects
from .tensor_functions import as_tensor, cat, concatenate, maximum, minimum, split, stack, where
from .tensor_math import Elementwise
from .tensor_reduce import Reductions, ValuesIndices
from .tensor_shape import Movement, Size

__all__ = ["RemovableHandle", "Size", "Tensor", "ValuesIndices", "as_tensor", "cat", "concatenate"]
__all__ += ["maximum", "minimum", "split", "stack", "where"]  # re-exported: their home is tensor_functions.py


class Tensor(Elementwise, Reductions, Movement, Conversions):
    """An n-dimensional array that can record the operations applied to it.

    >>> x = Tensor([1.0, 2.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    Tensor([2., 4.])
    """

    __slots__ = ("__weakref__", "_hooks", "_node", "_retains_grad", "data", "grad", "requires_grad")
    __array_ufunc__ = None  # `ndarray + Tensor` defers to Tensor.__radd__ instead of looping elementwise

    data: np.ndarray
    grad: Tensor | None  # see the module docstring
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
        if requires_grad and self.dtype.kind == "c":
            raise DTypeError(
                f"requires_grad: complex tensors (dtype {self.dtype}) cannot require gradients here; "
                "differentiate the real and imaginary parts as two real tensors"
            )
        if requires_grad and self.dtype.kind != "f":
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

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call `hook(grad)` when this tensor's gradient is computed; a returned Tensor replaces it.

        Returns a handle whose `.remove()` takes the hook off again, as PyTorch's does.
        """
        if not self.requires_grad:
            raise GradientError("register_hook: the tensor does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return RemovableHandle(self._hooks, hook)

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

    def _accumulate_grad(self, grad: Tensor) -> None:
        """`.grad` += grad, as PyTorch accumulates across backward() calls.

        A gradient with a graph (create_graph=True) is kept as it is, and sums of
        such are recorded; a plain one is copied first, since the backward pass
        may hand one array to several tensors."""
        if self.grad is not None:
            self.grad = self.grad + grad
        elif grad.requires_grad:
            self.grad = grad
        else:
            self.grad = Tensor._make(np.array(grad.data, copy=True), None)

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
                leaf._accumulate_grad(g)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

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

    def __setitem__(self, index: Any, value: Any) -> None:
        """`x[index] = value` under `no_grad()` (or on a tensor outside any graph).

        Like `+=`, it rebinds `.data` to an updated copy, so a graph recorded
        earlier keeps the values it saw. With grad on, writing into a tensor
        that requires grad (or writing a value that does) would not be on the
        tape, so it is refused."""
        self._write("setitem", index, value)

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

    # ------------------------------------------------------------ indexing

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=index)


def _piecewise_constant(op: str, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], x: Tensor, y: Tensor) -> Tensor:
    """fn(x, y) for a piecewise-constant fn (floor division): its derivative is 0 almost everywhere,
    so, like a comparison, the result records nothing and does not require grad."""
    try:
        return Tensor._make(np.asarray(fn(x.data, y.data)), None)
    except ValueError:
        broadcast_shape(op, x.shape, y.shape)
        raise


class RemovableHandle:
    """What `register_hook` returns: `.remove()` takes the hook off (again is harmless), as in PyTorch."""

    __slots__ = ("_hook", "_hooks")

    def __init__(self, hooks: list[Any], hook: Any) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


Function.tensor_class = Tensor  # function.py makes Tensors without importing this module: see its docstring
