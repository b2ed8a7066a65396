"""tensor.py — the Tensor: an ndarray, an optional gradient, and the node that made it. Read first.

A Tensor created by the user is a *leaf* (`_node is None`). A Tensor returned
by an operation on tensors that require grad remembers the `Function` node that
produced it; following `_node.parents` from a loss walks the whole recorded
graph (the tape). Every operator below is a one-line call into `ops.py`, where
each primitive keeps its forward and its VJP side by side.

`.grad` is a Tensor, as in PyTorch: a plain one after `backward()`, and one
that carries its own graph after `backward(create_graph=True)` (so that it can
be differentiated again).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import engine, ops
from .errors import DTypeError, GradientError, ShapeError, fmt_shape
from .function import Function
from .shapes import normalize_axes


class Tensor:
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
            if dtype is None and not isinstance(data, np.ndarray | np.generic):
                # Python numbers and lists default to float64; bools stay bool.
                probe = np.asarray(data)
                dtype = probe.dtype if probe.dtype.kind in "bfc" else np.float64
            array = np.array(data, dtype=dtype, copy=True)
        except (TypeError, ValueError) as exc:  # ragged nested lists, strings, objects
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
    def size(self) -> int:
        return self.data.size

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

    def zero_(self) -> Tensor:
        """Fill with zeros in place and return self (`p.grad.zero_()`); like `-=`, only under no_grad
        for a tensor that requires grad. The array is replaced, so recorded graphs keep their values."""
        if self.requires_grad and engine.is_grad_enabled():
            raise GradientError("zero_: a tensor that requires grad can be zeroed only under `with tg.no_grad():`")
        self.data = np.zeros_like(self.data)
        return self

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
        """A copy with another dtype; gradients flow back converted to the original dtype."""
        return self if np.dtype(dtype) == self.dtype else ops.Cast.apply(self, dtype=np.dtype(dtype))

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

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

    def maximum(self, other: Any) -> Tensor:
        return ops.Maximum.apply(self, self._operand(other))

    def minimum(self, other: Any) -> Tensor:
        return ops.Minimum.apply(self, self._operand(other))

    # builtins.float: inside this class body, `float` names the method Tensor.float.
    def clip(self, min: builtins.float | None = None, max: builtins.float | None = None) -> Tensor:
        """Limit values to [min, max]; the gradient passes only where x was inside."""
        return ops.Clip.apply(self, low=min, high=max)

    clamp = clip

    # ------------------------------------------------------------ reductions

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """sum / n, composed: its gradient comes from Sum and Mul."""
        axis = normalize_axes("mean", axis, self.ndim)  # so a bad axis is reported as mean's
        total = self.sum(axis=axis, keepdims=keepdims)
        count = self.size // max(total.size, 1) if self.size else 0
        return total * (1.0 / count) if count else total * np.nan

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.Min.apply(self, axis=axis, keepdims=keepdims)

    def var(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Population variance (numpy's default, ddof=0), composed from mean."""
        axis = normalize_axes("var", axis, self.ndim)
        centered = self - self.mean(axis=axis, keepdims=True)
        return (centered * centered).mean(axis=axis, keepdims=keepdims)

    def logsumexp(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.LogSumExp.apply(self, axis=axis, keepdims=keepdims)

    def softmax(self, axis: int = -1) -> Tensor:
        return ops.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return ops.LogSoftmax.apply(self, axis=axis)

    # ------------------------------------------------------------ movement

    def reshape(self, *shape: Any) -> Tensor:
        target = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        return ops.Reshape.apply(self, shape=target)

    def flatten(self) -> Tensor:
        return self.reshape(-1)

    def permute(self, *axes: Any) -> Tensor:
        order = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], tuple | list) else axes
        return ops.Permute.apply(self, axes=order)

    def transpose(self, axis0: int = -2, axis1: int = -1) -> Tensor:
        """Swap two axes (PyTorch's meaning); `.T` or `permute` for other orders."""
        order = list(range(self.ndim))
        try:
            order[axis0], order[axis1] = order[axis1], order[axis0]
        except IndexError:
            raise ShapeError(
                f"transpose: axes {axis0} and {axis1} do not exist for shape {fmt_shape(self.shape)}"
            ) from None
        return self.permute(*order)

    def broadcast_to(self, *shape: Any) -> Tensor:
        target = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        return ops.BroadcastTo.apply(self, shape=target)

    expand = broadcast_to

    def unsqueeze(self, axis: int) -> Tensor:
        """A new size-1 axis at `axis` (in the result's numbering, as PyTorch)."""
        axis = normalize_axes(f"unsqueeze of shape {fmt_shape(self.shape)}", axis, self.ndim + 1)[0]
        return self.reshape((*self.shape[:axis], 1, *self.shape[axis:]))

    def squeeze(self, axis: int | None = None) -> Tensor:
        if axis is None:
            return self.reshape(tuple(n for n in self.shape if n != 1))
        axis = normalize_axes("squeeze", axis, self.ndim)[0]
        if self.shape[axis] != 1:
            raise ShapeError(
                f"squeeze: axis {axis} has size {self.shape[axis]}, not 1, in shape {fmt_shape(self.shape)}"
            )
        axis %= self.ndim
        return self.reshape(self.shape[:axis] + self.shape[axis + 1 :])

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, index=index)

    def unbind(self, axis: int = 0) -> tuple[Tensor, ...]:
        """The slices along `axis`, that axis removed (one node, so the VJP is a single stack)."""
        return tuple(ops.Unbind.apply(self, axis=axis))

    def split(self, split_size_or_sections: int | Sequence[int], axis: int = 0) -> tuple[Tensor, ...]:
        """Split along `axis` into chunks of `split_size` (an int) or of the given sizes (a list), as PyTorch."""
        return split(self, split_size_or_sections, axis)


# ------------------------------------------------------------ functions over several tensors


def as_tensor(value: Any) -> Tensor:
    """`value` itself if it is a Tensor, else a new Tensor made from it."""
    return value if isinstance(value, Tensor) else Tensor(value)


def _tensors(op: str, tensors: Sequence[Any]) -> list[Tensor]:
    items = list(tensors)
    if not items:
        raise ShapeError(f"{op}: needs at least one tensor")
    return [t if isinstance(t, Tensor) else Tensor(t) for t in items]


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    return ops.Stack.apply(*_tensors("stack", tensors), axis=axis)


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    return ops.Concatenate.apply(*_tensors("concatenate", tensors), axis=axis)


cat = concatenate


def split(tensor: Tensor, split_size_or_sections: int | Sequence[int], axis: int = 0) -> tuple[Tensor, ...]:
    """Pieces of `tensor` along `axis`: chunks of `split_size` (an int) or of the given sizes (a list), as PyTorch."""
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
    like = x if isinstance(x, Tensor) else Tensor(x)
    return ops.Maximum.apply(like._operand(x), like._operand(y))


def minimum(x: Any, y: Any) -> Tensor:
    """Elementwise min; at ties the gradient is split evenly."""
    like = x if isinstance(x, Tensor) else Tensor(x)
    return ops.Minimum.apply(like._operand(x), like._operand(y))


def zeros(*shape: Any, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
    target = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
    return Tensor(np.zeros(target, dtype=dtype), requires_grad=requires_grad)


def ones(*shape: Any, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
    target = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
    return Tensor(np.ones(target, dtype=dtype), requires_grad=requires_grad)


class RemovableHandle:
    """What `register_hook` returns: `.remove()` takes the hook off (again is harmless), as in PyTorch."""

    __slots__ = ("_hook", "_hooks")

    def __init__(self, hooks: list[Any], hook: Any) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


Function.tensor_class = Tensor  # function.py makes Tensors without importing this module: see its docstring
