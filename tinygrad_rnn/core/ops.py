"""ops.py — the primitives: each one's forward and its VJP, side by side. Read after engine.py.

`forward` works on ndarrays; `backward` receives dL/d(output) and returns
dL/d(input) for each positional input. Every VJP here is written only with
operators, `.reshape`/`.sum`/`.astype` and `Op.apply` (spelled `_op(Op, np.fn, ...)`
where it matters: on ndarrays that is the bare numpy call), which mean the same on
ndarrays and on Tensors: a plain backward pass runs it on ndarrays (nothing is
recorded, so no Tensor is made per intermediate), and `create_graph=True` runs
the very same code on Tensors, recording it so that it can be differentiated
again (higher-order gradients). One VJP looks at which it got: on ndarrays,
MatMul hands a weight's gradient A^T G back as its two factors, so that the
terms of a weight used at every time step are added as one product
(`products.py`). Gradients may keep the broadcast output's shape: the engine
sums them back to each input's shape in one place (`shapes.unbroadcast_axes`).

Groups: unary elementwise | binary elementwise (broadcasting) | reductions |
movement | matmul | type. Everything else in the library (mean, var, split,
mse, cross-entropy, the RNN cells) is composed from these and needs no VJP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ArgumentError, IndexingError, ShapeError, fmt_shape
from .function import Function
from .products import ProductSum
from .shapes import broadcast_shape, normalize_axes

if TYPE_CHECKING:  # annotations only: tensor.py imports this module, so ops never need Tensor at run time
    from .tensor import Tensor

Array = np.ndarray


def _broadcasting(op: str, fn: Callable[[Array, Array], Array], x: Array, y: Array) -> Array:
    """fn(x, y), with numpy's broadcasting error replaced by one that names the op and both shapes."""
    try:
        return fn(x, y)
    except ValueError:
        pass
    broadcast_shape(op, np.shape(x), np.shape(y))  # raises ShapeError when the shapes are the problem
    return fn(x, y)  # the error was something else: let numpy report it


class _Primitive(Function):
    """A built-in op: its VJP runs on ndarrays in a plain backward pass (see the module docstring)."""

    backward_on_arrays = True
    # out[i] depends on the inputs' elements at i alone (after broadcasting): the op may run on a stack of
    # inputs at once, one more leading axis, with the same values (compile's batched_elementwise pass)
    elementwise = False


def _op(op: type[Function], on_arrays: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`op.apply(*args, **kwargs)` inside a VJP or JVP rule. When an argument is a Tensor (create_graph=True)
    it is recorded, to be differentiated again; on plain arrays it is `on_arrays(*args, **kwargs)`, the very
    numpy call op's forward makes, without apply's bookkeeping: a ctx and its attributes, which nothing reads
    on arrays (Sum's VJP: BroadcastTo.apply 2.7-2.9 us, this 2.3, np.broadcast_to alone 1.9-2.1)."""
    for a in args:
        if isinstance(a, Function.tensor_class):
            return op.apply(*args, **kwargs)
    return on_arrays(*args, **kwargs)


def _where_any(condition: Array | None, x: Any, y: Any) -> Any:
    """`Where.apply(x, y, condition=condition)`, or y itself when no element of `condition` is True
    (None: known to have none).

    That Where would be the identity on y, in value and in derivative; a VJP whose mask guards a rare
    point (pow's base 0) saves the node (and ~2 us on arrays) everywhere else. y keeps its own shape
    then, not the broadcast one: the callers broadcast it further anyway."""
    if condition is not None and np.count_nonzero(condition):
        return Where.apply(x, y, condition=condition)
    return y


# Forward mode. `jvp(ctx, *tangents)` gets one tangent per positional input (None where the input has
# none) and returns the output's tangent (None if there is none). A tangent carries a leading axis of
# K directions, (K, *x.shape), so that one pass pushes K tangents at once (RTRL pushes one per
# parameter); reductions therefore name their axes from the end. Like the VJPs, the rules use only
# operators, `.reshape`/`.sum`/`.astype` and `Op.apply`, so they run on ndarrays or, recorded, on
# Tensors. core/forward.py walks the tape and calls them.


def _lift(tangent: Any, ndim: int) -> Any:
    """A tangent (K, *s) with size-1 axes put after K until s has `ndim` axes, so that numpy
    broadcasts it against the primal arrays the way it broadcast the primals."""
    if tangent is None or tangent.ndim == ndim + 1:
        return tangent
    return tangent.reshape((tangent.shape[0], *(1,) * (ndim + 1 - tangent.ndim), *tangent.shape[1:]))


def _out_ndim(ctx: Function) -> int:
    """The output rank of an op that broadcasts its inputs."""
    assert ctx.parents is not None
    return max(np.ndim(p) for p in ctx.parents)


def _total(*terms: Any) -> Any:
    """The sum of the terms that exist (None when none does: that output has no tangent)."""
    present = [t for t in terms if t is not None]
    if not present:
        return None
    total = present[0]
    for term in present[1:]:
        total = total + term
    return total


def _from_end(axes: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """Axes counted from the end, which stay right when a tangent's direction axis comes first."""
    return tuple(a - ndim for a in axes)


def _zeros_for_missing(ctx: Function, tangents: tuple[Any, ...]) -> list[Any]:
    """The tangents of a many-input op, zeros for an input that has none."""
    assert ctx.parents is not None
    count = next(t.shape[0] for t in tangents if t is not None)
    return [
        np.zeros((count, *np.shape(p)), np.result_type(p)) if t is None else t
        for t, p in zip(tangents, ctx.parents, strict=True)
    ]


def _index_past_directions(index: Any) -> tuple[Any, ...]:
    """The same index for a tangent: it leaves the direction axis (axis 0) whole."""
    index = plain_index(index)
    return (slice(None), *(index if isinstance(index, tuple) else (index,)))


def _advanced_axes_go_first(index: Any) -> int:
    """How many axes numpy puts first when an index's array parts are not next to each other, else 0.

    numpy's rule: arrays (and ints beside them) that are separated by a slice send their broadcast
    axes to the front, so there a tangent's direction axis lands after them."""
    index = plain_index(index)
    parts = index if isinstance(index, tuple) else (index,)
    arrays = [p for p in parts if isinstance(p, np.ndarray)]
    if not arrays:
        return 0
    advanced = [i for i, p in enumerate(parts) if isinstance(p, np.ndarray | int | np.integer)]
    if advanced[-1] - advanced[0] + 1 == len(advanced):
        return 0
    return np.broadcast(*[np.nonzero(a)[0] if a.dtype == bool else a for a in arrays]).ndim


def _direction_axis_first(tangent: Any, index: Any) -> Any:
    """Undo numpy's moving of the advanced axes in front of the direction axis (see above)."""
    moved = _advanced_axes_go_first(index)
    if not moved:
        return tangent
    order = (moved, *range(moved), *range(moved + 1, tangent.ndim))
    return Permute.apply(tangent, axes=order)


def _direction_axis_where_numpy_puts_it(tangent: Any, index: Any) -> Any:
    """The inverse of `_direction_axis_first`: the layout numpy expects to write at `index`."""
    moved = _advanced_axes_go_first(index)
    if not moved:
        return tangent
    return Permute.apply(tangent, axes=(*range(1, moved + 1), 0, *range(moved + 1, tangent.ndim)))


# ================================================================ unary elementwise


class Neg(_Primitive):
    """y = -x;   dL/dx = -dL/dy"""

    elementwise = True

    def forward(ctx, x: Array) -> Array:
        return np.negative(x)

    def backward(ctx, grad_out: Tensor) -> Tensor:
        return -grad_out

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = -dx"""
        return -dx


class Exp(_Primitive):
    """y = exp(x);   dL/dx = dL/dy * y"""

    elementwise = True

    def forward(ctx, x: Array) -> Array:
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad_out * y

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = y * dx"""
        (y,) = ctx.saved_tensors
        return dx * y


class Log(_Primitive):
    """y = log(x);   dL/dx = dL/dy / x"""

    elementwise = True

    def forward(ctx, x: Array) -> Array:
        ctx.save_for_backward(x)
        return np.log(x)

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad_out / x

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = dx / x"""
        (x,) = ctx.saved_tensors
        return dx / x


class Sqrt(_Primitive):
    """y = sqrt(x);   dL/dx = dL/dy / (2 y)"""

    elementwise = True

    def forward(ctx, x: Array) -> Array:
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad_out / (y * 2.0)

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = dx / (2 y)"""
        (y,) = ctx.saved_tensors
        return dx / (y * 2.0)


class Abs(_Primitive):
    """y = |x|;   dL/dx = dL/dy * sign(x)   (0 at x = 0, as PyTorch)"""

    elementwise = True

    def forward(ctx, x: Array) -> Array:
        ctx.sign = np.sign(x)
        return np.abs(x)

    def backward(ctx, grad_out: Tensor) -> Tensor:
        return grad_out * ctx.sign

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = sign(x) * dx"""
        return dx * ctx.sign


class Tanh(_Primitive):
    """y = tanh(x);   dL/dx = dL/dy * (1 - y^2)

    A primitive, not 2*sigmoid(2x) - 1: that composition loses all precision near 0."""

    elementwise = True

    def forward(ctx, x: Array) -> Array:
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad_out * (1.0 - y * y)

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = (1 - y^2) * dx"""
        (y,) = ctx.saved_tensors
        return dx * (1.0 - y * y)


class Sigmoid(_Primitive):
    """y = 1 / (1 + exp(-x));   dL/dx = dL/dy * y (1 - y)

    A primitive because exp(-x) overflows for x < -709: we only ever exponentiate -|x|."""

    elementwise = True

    def forward(ctx, x: Array) -> Array:
        # float16 is computed in float32 (as PyTorch does) and handed back as float16: a float16
        # layer keeps its dtype. Integers give float (at least float32).
        work = x.astype(np.result_type(x, np.float32), copy=False)
        e = np.exp(-np.abs(work))
        y = np.where(work >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(
            x.dtype if x.dtype.kind == "f" else work.dtype, copy=False
        )
        ctx.save_for_backward(y)
        return y

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad_out * (y * (1.0 - y))

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = y (1 - y) * dx"""
        (y,) = ctx.saved_tensors
        return dx * (y * (1.0 - y))


class Relu(_Primitive):
    """y = max(x, 0);   dL/dx = dL/dy * [not x <= 0]   (a NaN passes, with gradient 1, as in PyTorch)"""

    elementwise = True

    def forward(ctx, x: Array) -> Array:
        ctx.mask = ~(x <= 0)  # not `x > 0`: that is False for NaN, and relu would turn NaN into 0
        return np.where(ctx.mask, x, 0).astype(x.dtype, copy=False)

    def backward(ctx, grad_out: Tensor) -> Tensor:
        return grad_out * ctx.mask

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = [x > 0] * dx"""
        return dx * ctx.mask


class Clip(_Primitive):
    """y = min(max(x, low), high);   dL/dx = dL/dy * [low <= x <= high]"""

    elementwise = True

    def forward(ctx, x: Array, *, low: float | None, high: float | None) -> Array:
        if low is not None and high is not None and low > high:
            raise ArgumentError(f"clip: min {low} is greater than max {high}")
        inside = np.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        ctx.inside = inside
        return np.clip(x, low, high)

    def backward(ctx, grad_out: Tensor) -> Tensor:
        return grad_out * ctx.inside

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = [low <= x <= high] * dx"""
        return dx * ctx.inside


# ================================================================ binary elementwise (broadcasting)


class Add(_Primitive):
    """z = x + y;   dL/dx = dL/dz,   dL/dy = dL/dz"""

    elementwise = True

    def forward(ctx, x: Array, y: Array) -> Array:
        return _broadcasting("add", np.add, x, y)

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor]:
        return grad_out, grad_out

    def jvp(ctx, dx: Tensor | None, dy: Tensor | None) -> Tensor | None:
        """dz = dx + dy"""
        n = _out_ndim(ctx)
        return _total(_lift(dx, n), _lift(dy, n))


class Sub(_Primitive):
    """z = x - y;   dL/dx = dL/dz,   dL/dy = -dL/dz"""

    elementwise = True

    def forward(ctx, x: Array, y: Array) -> Array:
        return _broadcasting("sub", np.subtract, x, y)

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor | None]:
        return grad_out, (-grad_out if ctx.needs_input_grad[1] else None)

    def jvp(ctx, dx: Tensor | None, dy: Tensor | None) -> Tensor | None:
        """dz = dx - dy"""
        n = _out_ndim(ctx)
        dx, dy = _lift(dx, n), _lift(dy, n)
        return _total(dx, None if dy is None else -dy)


class Mul(_Primitive):
    """z = x * y;   dL/dx = dL/dz * y,   dL/dy = dL/dz * x"""

    elementwise = True

    def forward(ctx, x: Array, y: Array) -> Array:
        ctx.save_for_backward(x, y)
        return _broadcasting("mul", np.multiply, x, y)

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, y = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad
        return (grad_out * y if need_x else None), (grad_out * x if need_y else None)

    def jvp(ctx, dx: Tensor | None, dy: Tensor | None) -> Tensor | None:
        """dz = dx * y + x * dy"""
        x, y = ctx.saved_tensors
        n = _out_ndim(ctx)
        dx, dy = _lift(dx, n), _lift(dy, n)
        return _total(None if dx is None else dx * y, None if dy is None else x * dy)


class Div(_Primitive):
    """z = x / y;   dL/dx = dL/dz / y,   dL/dy = -dL/dz * z / y"""

    elementwise = True

    def forward(ctx, x: Array, y: Array) -> Array:
        z = _broadcasting("div", np.true_divide, x, y)
        ctx.save_for_backward(y, z)
        return z

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None]:
        y, z = ctx.saved_tensors
        grad_x = grad_out / y
        return (grad_x if ctx.needs_input_grad[0] else None), (-grad_x * z if ctx.needs_input_grad[1] else None)

    def jvp(ctx, dx: Tensor | None, dy: Tensor | None) -> Tensor | None:
        """dz = dx / y - z * dy / y"""
        y, z = ctx.saved_tensors
        n = _out_ndim(ctx)
        dx, dy = _lift(dx, n), _lift(dy, n)
        return _total(None if dx is None else dx / y, None if dy is None else -dy * z / y)


class Remainder(_Primitive):
    """z = x mod y = x - floor(x / y) y   (the sign of y, as Python's % and PyTorch's remainder);
    dL/dx = dL/dz,   dL/dy = -dL/dz * floor(x / y)   (floor is piecewise constant: no gradient of its own)

    A primitive rather than x - floor(x/y) * y: np.remainder is exact, that composition is not."""

    elementwise = True

    def forward(ctx, x: Array, y: Array) -> Array:
        z = _broadcasting("remainder", np.remainder, x, y)
        ctx.quotient = np.floor_divide(x, y) if ctx.needs_input_grad[1] else None
        return z

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor | None]:
        return grad_out, (-grad_out * ctx.quotient if ctx.needs_input_grad[1] else None)

    def jvp(ctx, dx: Tensor | None, dy: Tensor | None) -> Tensor | None:
        """dz = dx - floor(x / y) dy"""
        n = _out_ndim(ctx)
        dx, dy = _lift(dx, n), _lift(dy, n)
        return _total(dx, None if dy is None else -dy * ctx.quotient)


def _zero_base(x: Any, y: Any) -> tuple[Array | None, Array | None]:
    """Pow's two special points, the masks [x = 0 and y = 0] and [x = 0 and y > 0]; (None, None) where
    no base is 0, which is nearly always: then every Where they guard is skipped (`_where_any`), and
    one comparison and one count of x are all they cost."""
    x_is_0 = np.asarray(x) == 0
    if not np.count_nonzero(x_is_0):
        return None, None
    return x_is_0 & (np.asarray(y) == 0), x_is_0 & (np.asarray(y) > 0)


class Pow(_Primitive):
    """z = x ** y;   dL/dx = dL/dz * y x^(y-1)   (0 at x = y = 0),   dL/dy = dL/dz * z log(x)   (0 at x = 0 < y)"""

    elementwise = True

    def forward(ctx, x: Array, y: Array) -> Array:
        z = _broadcasting("pow", np.power, x, y)
        ctx.save_for_backward(x, y, z)
        return z

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, y, z = ctx.saved_tensors
        both_0, zero_to_positive = _zero_base(x, y)
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            # y * x**(y-1) is 0 * inf = nan at x = 0, y = 0, where the true derivative of x**0 is 0.
            # Mask only there: masking all of y = 0 would also cut d(slope)/dy = x**(y-1) (second order).
            # Two wheres, not one: the masked branch must hold no inf either, or differentiating it
            # again sends 0 * inf = nan back (d2/dx2 x**0, d3/dx3 x**1, ... at 0): x is 1 there.
            safe_x = _where_any(both_0, np.array(1, x.dtype), x)
            slope = _where_any(both_0, np.zeros((), y.dtype), y * safe_x ** (y - 1.0))
            grad_x = grad_out * slope
        if ctx.needs_input_grad[1]:
            # z log(x) is 0 * -inf = nan at x = 0, where 0**y is constant (0) for y > 0: take log(1) there.
            safe_x = _where_any(zero_to_positive, np.array(1, x.dtype), x)
            grad_y = grad_out * z * _op(Log, np.log, safe_x)
        return grad_x, grad_y

    def jvp(ctx, dx: Tensor | None, dy: Tensor | None) -> Tensor | None:
        """dz = y x^(y-1) dx + z log(x) dy   (the VJP's masks at x = 0)"""
        x, y, z = ctx.saved_tensors
        n = _out_ndim(ctx)
        dx, dy = _lift(dx, n), _lift(dy, n)
        both_0, zero_to_positive = _zero_base(x, y)
        along_x = along_y = None
        if dx is not None:
            slope = _where_any(both_0, np.zeros((), y.dtype), y * x ** (y - 1.0))
            along_x = dx * slope
        if dy is not None:
            along_y = dy * (z * _op(Log, np.log, _where_any(zero_to_positive, np.array(1, x.dtype), x)))
        return _total(along_x, along_y)


class _Select(_Primitive):
    """Maximum and minimum: z takes x where m = 1 and y where m = 0, a tie splits the gradient (m = 1/2).
    The two differ only in the comparison their forward makes."""

    elementwise = True

    share_x: Array  # m, set by forward

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor]:
        return grad_out * ctx.share_x, grad_out * (1.0 - ctx.share_x)

    def jvp(ctx, dx: Tensor | None, dy: Tensor | None) -> Tensor | None:
        """dz = m dx + (1 - m) dy"""
        n = _out_ndim(ctx)
        dx, dy = _lift(dx, n), _lift(dy, n)
        return _total(None if dx is None else dx * ctx.share_x, None if dy is None else dy * (1.0 - ctx.share_x))


class Maximum(_Select):
    """z = max(x, y);   dL/dx = dL/dz * m,   dL/dy = dL/dz * (1 - m),   m = [x > y] + [x = y] / 2"""

    def forward(ctx, x: Array, y: Array) -> Array:
        z = _broadcasting("maximum", np.maximum, x, y)
        ctx.share_x = ((x > y) + 0.5 * (x == y)).astype(z.dtype)
        return z


class Minimum(_Select):
    """z = min(x, y);   dL/dx = dL/dz * m,   dL/dy = dL/dz * (1 - m),   m = [x < y] + [x = y] / 2"""

    def forward(ctx, x: Array, y: Array) -> Array:
        z = _broadcasting("minimum", np.minimum, x, y)
        ctx.share_x = ((x < y) + 0.5 * (x == y)).astype(z.dtype)
        return z


class Where(_Primitive):
    """z = x where c else y;   dL/dx = dL/dz where c else 0,   dL/dy = 0 where c else dL/dz"""

    def forward(ctx, x: Array, y: Array, *, condition: Array) -> Array:
        ctx.condition = condition
        try:
            return np.where(condition, x, y)
        except ValueError:
            broadcast_shape("where", condition.shape, np.shape(x), np.shape(y))
            raise

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, Tensor | None]:
        zero = np.zeros((), grad_out.dtype)
        grad_x = Where.apply(grad_out, zero, condition=ctx.condition) if ctx.needs_input_grad[0] else None
        grad_y = Where.apply(zero, grad_out, condition=ctx.condition) if ctx.needs_input_grad[1] else None
        return grad_x, grad_y

    def jvp(ctx, dx: Tensor | None, dy: Tensor | None) -> Tensor | None:
        """dz = dx where c else dy"""
        if dx is None and dy is None:
            return None
        n = max(_out_ndim(ctx), np.ndim(ctx.condition))
        dx, dy = _lift(dx, n), _lift(dy, n)
        zero = np.zeros((), (dx if dx is not None else dy).dtype)
        return Where.apply(zero if dx is None else dx, zero if dy is None else dy, condition=ctx.condition)


# ================================================================ reductions


def _keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    kept = list(shape)  # not a generator over every axis: ~0.1 us here against ~0.4, once per Sum VJP
    for axis in axes:
        kept[axis] = 1
    return tuple(kept)


# What ndarray.sum calls, without its Python layer (~0.3 us a call; same bits, every dtype). Typed loosely:
# numpy's stubs accept `keepdims` only as a literal True or False.
_add_over: Callable[..., Any] = np.add.reduce


class Sum(_Primitive):
    """y = sum of x over axes;   dL/dx = dL/dy copied back along the summed axes"""

    def forward(ctx, x: Array, *, axis: Any = None, keepdims: bool = False) -> Array:
        ctx.axes = normalize_axes("sum", axis, x.ndim)
        ctx.in_shape = x.shape
        ctx.keepdims = keepdims
        return _add_over(x, axis=ctx.axes, keepdims=keepdims)

    def backward(ctx, grad_out: Tensor) -> Tensor:
        return _op(
            BroadcastTo, np.broadcast_to, grad_out.reshape(_keepdims_shape(ctx.in_shape, ctx.axes)), shape=ctx.in_shape
        )

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = sum of dx over the same axes"""
        return dx.sum(axis=_from_end(ctx.axes, len(ctx.in_shape)), keepdims=ctx.keepdims)


class _Extremum(_Primitive):
    """y = max (or min) of x over axes;   dL/dx = dL/dy * [x = y] / (number of ties)"""

    reduce: Callable[..., Array]

    def forward(ctx, x: Array, *, axis: Any = None, keepdims: bool = False) -> Array:
        axes = normalize_axes(ctx.name, axis, x.ndim)
        empty = [a for a in axes if x.shape[a] == 0]
        if empty:
            # As numpy and PyTorch: the max of no values is undefined (the sum of none is 0).
            raise ShapeError(
                f"{ctx.name}: cannot reduce over axis {empty[0]} of size 0 in shape {fmt_shape(x.shape)}; "
                "the result would have no value (an empty tensor reduced over non-empty axes is fine)"
            )
        kept = type(ctx).reduce(x, axis=axes, keepdims=True)
        is_extreme = x == kept
        with np.errstate(invalid="ignore"):  # an empty x: 0 / 0 over no elements
            ctx.share = (is_extreme / is_extreme.sum(axis=axes, keepdims=True)).astype(x.dtype)
        ctx.kept_shape = kept.shape
        ctx.axes, ctx.keepdims = axes, keepdims
        return kept if keepdims else kept.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))

    def backward(ctx, grad_out: Tensor) -> Tensor:
        return grad_out.reshape(ctx.kept_shape) * ctx.share

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = sum of dx * [x = y] / (number of ties) over the axes"""
        return (dx * ctx.share).sum(axis=_from_end(ctx.axes, ctx.share.ndim), keepdims=ctx.keepdims)


class Max(_Extremum):
    __doc__ = _Extremum.__doc__
    reduce = np.max


class Min(_Extremum):
    __doc__ = _Extremum.__doc__
    reduce = np.min


def _single_axis(op: str, axis: int, ndim: int) -> int:
    if not isinstance(axis, int | np.integer):
        raise ShapeError(f"{op}: axis must be one int, got {axis!r}")
    return normalize_axes(op, int(axis), ndim)[0]


class LogSumExp(_Primitive):
    """y = log sum exp(x) over axes;   dL/dx = dL/dy * exp(x - y)   (the softmax)

    A primitive because exp overflows for x > 709; we subtract the max first."""

    def forward(ctx, x: Array, *, axis: Any = None, keepdims: bool = False) -> Array:
        axes = normalize_axes("logsumexp", axis, x.ndim)
        peak = np.max(x, axis=axes, keepdims=True) if x.size else np.zeros(_keepdims_shape(x.shape, axes), x.dtype)
        peak = np.where(np.isfinite(peak), peak, 0)  # a row of -inf stays -inf, not nan
        with np.errstate(divide="ignore"):  # log of an empty sum (or of all -inf) is -inf, as numpy's
            kept = np.log(np.sum(np.exp(x - peak), axis=axes, keepdims=True)) + peak
        ctx.kept_shape = kept.shape
        y = kept if keepdims else kept.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))
        ctx.save_for_backward(x, y)
        return y

    def backward(ctx, grad_out: Tensor) -> Tensor:
        x, y = ctx.saved_tensors
        return grad_out.reshape(ctx.kept_shape) * _op(Exp, np.exp, x - y.reshape(ctx.kept_shape))

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = sum of exp(x - y) * dx over the axes   (the softmax's weighted sum)"""
        x, y = ctx.saved_tensors
        axes = tuple(i for i, n in enumerate(ctx.kept_shape) if n == 1)  # a size-1 axis more changes no sum
        weighted = dx * _op(Exp, np.exp, x - y.reshape(ctx.kept_shape))
        return weighted.sum(axis=_from_end(axes, len(ctx.kept_shape)), keepdims=True).reshape((dx.shape[0], *y.shape))


def _peak(x: Array, axis: int) -> Array:
    """The max along `axis`, kept as a size-1 axis; 0 for an empty axis (so softmax over none is empty, as numpy's)."""
    if x.shape[axis] == 0:
        return np.zeros(_keepdims_shape(x.shape, (axis,)), x.dtype)
    return np.max(x, axis=axis, keepdims=True)


class Softmax(_Primitive):
    """y = exp(x) / sum exp(x) along axis;   dL/dx = y * (dL/dy - sum(dL/dy * y))"""

    def forward(ctx, x: Array, *, axis: int = -1) -> Array:
        ctx.axis = _single_axis("softmax", axis, x.ndim)
        e = np.exp(x - _peak(x, ctx.axis))
        y = e / np.sum(e, axis=ctx.axis, keepdims=True)
        ctx.save_for_backward(y)
        return y

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return y * (grad_out - (grad_out * y).sum(axis=ctx.axis, keepdims=True))

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = y * (dx - sum(y * dx))"""
        (y,) = ctx.saved_tensors
        return y * (dx - (dx * y).sum(axis=ctx.axis - y.ndim, keepdims=True))


class LogSoftmax(_Primitive):
    """y = x - logsumexp(x) along axis;   dL/dx = dL/dy - exp(y) * sum(dL/dy)"""

    def forward(ctx, x: Array, *, axis: int = -1) -> Array:
        ctx.axis = _single_axis("log_softmax", axis, x.ndim)
        shifted = x - _peak(x, ctx.axis)
        with np.errstate(divide="ignore"):  # an empty axis: log(0), subtracted from no element
            y = shifted - np.log(np.sum(np.exp(shifted), axis=ctx.axis, keepdims=True))
        ctx.save_for_backward(y)
        return y

    def backward(ctx, grad_out: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        return grad_out - _op(Exp, np.exp, y) * grad_out.sum(axis=ctx.axis, keepdims=True)

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = dx - sum(exp(y) * dx)"""
        (y,) = ctx.saved_tensors
        return dx - (_op(Exp, np.exp, y) * dx).sum(axis=ctx.axis - y.ndim, keepdims=True)


# ================================================================ movement


class Reshape(_Primitive):
    """y = x viewed with another shape;   dL/dx = dL/dy reshaped back"""

    def forward(ctx, x: Array, *, shape: tuple[int, ...]) -> Array:
        ctx.in_shape = x.shape
        ctx.shape = shape
        try:
            return x.reshape(shape)
        except (ValueError, TypeError):
            pass
        raise ShapeError(f"reshape: cannot reshape {fmt_shape(x.shape)} ({x.size} elements) into {shape}")

    def backward(ctx, grad_out: Tensor) -> Tensor:
        return grad_out.reshape(ctx.in_shape)

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = dx reshaped the same way"""
        return dx.reshape((dx.shape[0], *ctx.shape))


class Permute(_Primitive):
    """y = x with axes reordered;   dL/dx = dL/dy with the inverse order"""

    def forward(ctx, x: Array, *, axes: tuple[int, ...]) -> Array:
        ctx.axes = axes
        try:
            return x.transpose(axes)  # numpy checks that axes is an ordering of x's axes
        except (ValueError, TypeError):
            pass
        raise ShapeError(f"permute: {axes} is not an ordering of the {x.ndim} axes of shape {fmt_shape(x.shape)}")

    def backward(ctx, grad_out: Tensor) -> Tensor:
        ndim = grad_out.ndim
        inverse = sorted(range(ndim), key=lambda i: ctx.axes[i] % ndim)  # axis a of y came from axis axes[a] of x
        return _op(Permute, np.transpose, grad_out, axes=tuple(inverse))

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = dx with axes reordered the same way"""
        ndim = len(ctx.axes)
        return Permute.apply(dx, axes=(0, *(a % ndim + 1 for a in ctx.axes)))


class BroadcastTo(_Primitive):
    """y = x copied along new or size-1 axes;   dL/dx = dL/dy summed over them (done by the engine)"""

    def forward(ctx, x: Array, *, shape: tuple[int, ...]) -> Array:
        ctx.shape = tuple(shape)
        try:
            return np.broadcast_to(x, shape)
        except (ValueError, TypeError):
            pass
        raise ShapeError(f"broadcast_to: cannot broadcast {fmt_shape(x.shape)} to {tuple(shape)}")

    def backward(ctx, grad_out: Tensor) -> Tensor:
        return grad_out  # the adjoint of broadcasting is summation, which the engine does for every op

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = dx copied along the same axes"""
        return BroadcastTo.apply(_lift(dx, len(ctx.shape)), shape=(dx.shape[0], *ctx.shape))


def plain_index(index: Any) -> Any:
    """Tensors inside an index become arrays; lists become arrays (numpy's advanced indexing)."""
    if isinstance(index, tuple):
        return tuple(plain_index(i) for i in index)
    if isinstance(index, Function.tensor_class):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _is_basic(index: Any) -> bool:
    """Basic indexing (ints, slices, None, ...) never selects an element twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, int | np.integer | slice) or i is None or i is Ellipsis for i in parts)


class GetItem(_Primitive):
    """y = x[index];   dL/dx = zeros like x, with dL/dy added at index (repeated indices add up)"""

    def forward(ctx, x: Array, *, index: Any) -> Array:
        ctx.index = plain_index(index)
        ctx.in_shape = x.shape
        try:
            return np.asarray(x[ctx.index])
        except IndexError as exc:
            message = str(exc)
        raise IndexingError(f"getitem: index {index!r} does not fit shape {fmt_shape(x.shape)}: {message}")

    def backward(ctx, grad_out: Tensor) -> Tensor:
        return ScatterAdd.apply(grad_out, shape=ctx.in_shape, index=ctx.index)

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = dx[index]"""
        return _direction_axis_first(GetItem.apply(dx, index=_index_past_directions(ctx.index)), ctx.index)


class ScatterAdd(_Primitive):
    """y = zeros(shape) with x added at index;   dL/dx = dL/dy[index]   (the VJP of getitem)"""

    def forward(ctx, x: Array, *, shape: tuple[int, ...], index: Any) -> Array:
        ctx.index, ctx.shape = index, shape
        out = np.zeros(shape, dtype=x.dtype)
        if _is_basic(index):
            out[index] = x
        else:
            np.add.at(out, index, x)  # plain `out[index] += x` would drop repeated indices
        return out

    def backward(ctx, grad_out: Tensor) -> Tensor:
        return GetItem.apply(grad_out, index=ctx.index)

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = zeros(shape) with dx added at index"""
        written = _direction_axis_where_numpy_puts_it(dx, ctx.index)
        return ScatterAdd.apply(written, shape=(dx.shape[0], *ctx.shape), index=_index_past_directions(ctx.index))


class Stack(_Primitive):
    """y = stack(x_1..x_n) along a new axis;   dL/dx_i = dL/dy[..., i, ...]"""

    def forward(ctx, *xs: Array, axis: int = 0) -> Array:
        shapes = {np.shape(x) for x in xs}
        if len(shapes) > 1:
            raise ShapeError(
                f"stack: all tensors must have the same shape, got {', '.join(fmt_shape(s) for s in shapes)}"
            )
        (shape,) = shapes
        ctx.axis = normalize_axes("stack", axis, len(shape) + 1)[0]
        if ctx.axis == 0 and shape:
            # The same array as np.stack, ~3x faster for many small pieces (a layer's T hidden
            # states): np.stack makes a view with a new axis of every piece before concatenating.
            return np.concatenate(xs).reshape(len(xs), *shape)
        return np.stack(xs, axis=ctx.axis)

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, ...]:
        return tuple(Unbind.apply(grad_out, axis=ctx.axis))  # one node with n outputs, not n slices

    def jvp(ctx, *dxs: Tensor | None) -> Tensor:
        """dy = stack(dx_1..dx_n) along the same axis"""
        return Stack.apply(*_zeros_for_missing(ctx, dxs), axis=ctx.axis + 1)


class Concatenate(_Primitive):
    """y = concatenate(x_1..x_n) along axis;   dL/dx_i = the slice of dL/dy that x_i filled"""

    def forward(ctx, *xs: Array, axis: int = 0) -> Array:
        ctx.axis = normalize_axes("concatenate", axis, max(np.ndim(xs[0]), 1))[0]
        try:
            out = np.concatenate(xs, axis=ctx.axis)
        except ValueError:
            raise ShapeError(
                f"concatenate: shapes {', '.join(fmt_shape(np.shape(x)) for x in xs)} differ outside axis {axis}"
            ) from None
        ctx.bounds = np.cumsum([0] + [np.shape(x)[ctx.axis] for x in xs]).tolist()
        return out

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, ...]:
        sizes = tuple(end - start for start, end in zip(ctx.bounds, ctx.bounds[1:], strict=False))
        return tuple(Split.apply(grad_out, sizes=sizes, axis=ctx.axis))

    def jvp(ctx, *dxs: Tensor | None) -> Tensor:
        """dy = concatenate(dx_1..dx_n) along the same axis"""
        return Concatenate.apply(*_zeros_for_missing(ctx, dxs), axis=ctx.axis + 1)


class Split(_Primitive):
    """y_1..y_n = consecutive pieces of x along axis (one node, n outputs);   dL/dx = concatenate(dL/dy_i)

    One node rather than n getitems: each getitem's VJP would scatter into a
    zero array the size of x, which costs O(n * size) for n pieces."""

    def forward(ctx, x: Array, *, sizes: tuple[int, ...], axis: int) -> tuple[Array, ...]:
        ctx.axis = normalize_axes("split", axis, x.ndim)[0]
        if sum(sizes) != x.shape[ctx.axis] or min(sizes, default=0) < 0:
            raise ShapeError(
                f"split: sizes {list(sizes)} do not add up to {x.shape[ctx.axis]}, "
                f"the length of axis {axis} in shape {fmt_shape(x.shape)}"
            )
        ctx.sizes = sizes
        return tuple(np.split(x, np.cumsum(sizes)[:-1].tolist(), axis=ctx.axis))

    def backward(ctx, *grad_outs: Tensor) -> Tensor:
        return Concatenate.apply(*grad_outs, axis=ctx.axis)

    def jvp(ctx, dx: Tensor) -> tuple[Tensor, ...]:
        """dy_i = the same pieces of dx"""
        return tuple(Split.apply(dx, sizes=ctx.sizes, axis=ctx.axis + 1))


class Unbind(_Primitive):
    """y_i = x[..., i, ...] for every i along axis (one node, n outputs);   dL/dx = stack(dL/dy_i)

    How a recurrent layer takes its hoisted input projection apart, step by step."""

    def forward(ctx, x: Array, *, axis: int) -> tuple[Array, ...]:
        ctx.axis = normalize_axes("unbind", axis, x.ndim)[0]
        return tuple(np.moveaxis(x, ctx.axis, 0))

    def backward(ctx, *grad_outs: Tensor) -> Tensor:
        return Stack.apply(*grad_outs, axis=ctx.axis)

    def jvp(ctx, dx: Tensor) -> tuple[Tensor, ...]:
        """dy_i = dx[..., i, ...]"""
        return tuple(Unbind.apply(dx, axis=ctx.axis + 1))


# ================================================================ matmul


class MatMul(_Primitive):
    """Z = A @ B (+ C), A = X or X^T, B = Y or Y^T (transpose_x, transpose_y);
    dL/dA = dL/dZ @ B^T,   dL/dB = A^T @ dL/dZ,   dL/dC = dL/dZ

    numpy's rules for 1-D operands and batch broadcasting. This is BLAS gemm's
    shape: the transpose flags (transA/transB, on the last two axes) let a layer
    compute x W^T without a transpose node and let this VJP write dL/dZ @ Y^T as
    one matmul; the optional addend C (broadcast to Z: a bias, or an RNN step's
    input share) makes `x W^T + b` one node instead of two."""

    def forward(
        ctx, x: Array, y: Array, c: Array | None = None, *, transpose_x: bool = False, transpose_y: bool = False
    ) -> Array:
        if (transpose_x and np.ndim(x) < 2) or (transpose_y and np.ndim(y) < 2):
            raise ShapeError(
                f"matmul: transpose_x/transpose_y need operands of at least 2 dimensions, "
                f"got {fmt_shape(np.shape(x))} and {fmt_shape(np.shape(y))}"
            )
        ctx.flags = (transpose_x, transpose_y)
        ctx.save_for_backward(x, y)
        z = _matmul(x, y, transpose_x, transpose_y)
        return z if c is None else _broadcasting("matmul (adding C)", np.add, z, c)

    def backward(ctx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, y = ctx.saved_tensors
        tx, ty = ctx.flags
        # Treat a 1-D x as a row (1, k) and a 1-D y as a column (k, 1) (the flags need 2-D operands);
        # put the axes numpy removed back into grad_out.
        x2 = x.reshape(1, x.shape[0]) if x.ndim == 1 else x
        y2 = y.reshape(y.shape[0], 1) if y.ndim == 1 else y
        g = grad_out
        if y.ndim == 1:
            g = g.reshape((*g.shape, 1))
        if x.ndim == 1:
            g = g.reshape((*g.shape[:-1], 1, g.shape[-1]))
        need_x, need_y = ctx.needs_input_grad[:2]
        grad_x = grad_y = None
        if need_x:
            # dA = G B^T; when A = X^T, dX = dA^T = B G^T.
            grad_x = _matmul(y2, g, ty, True) if tx else _matmul(g, y2, False, not ty)
            grad_x = grad_x.reshape(grad_x.shape[:-2] + grad_x.shape[-1:]) if x.ndim == 1 else grad_x
        if need_y:
            if y.ndim == 2 and g.ndim > 2 and not tx and x2.shape[:-2] == g.shape[:-2]:
                # A 2-D y is shared by every matrix of the batch, so dY sums over the batch: fold the
                # batch into the rows and it is one gemm, with no (batch, k, p) temporary to sum.
                g, x2 = g.reshape((-1, g.shape[-1])), x2.reshape((-1, x2.shape[-1]))
            # dB = A^T G; when B = Y^T, dY = dB^T = G^T A.
            if isinstance(g, np.ndarray) and y.ndim == g.ndim == x2.ndim == 2:
                # A plain pass: leave dY as its two factors, a value that adds itself, so that the terms
                # of a weight used by many matmuls (one per time step) are added as one product (products.py).
                a = x2.T if tx else x2
                grad_y = ProductSum(g, a) if ty else ProductSum(a, g)
            else:
                grad_y = _matmul(g, x2, True, tx) if ty else _matmul(x2, g, not tx, False)
            grad_y = grad_y.reshape(grad_y.shape[:-1]) if y.ndim == 1 else grad_y
        if len(ctx.needs_input_grad) == 3:  # dL/dC is dL/dZ; the engine sums it back to C's shape
            return grad_x, grad_y, grad_out
        return grad_x, grad_y

    def jvp(ctx, dx: Tensor | None, dy: Tensor | None, dc: Tensor | None = None) -> Tensor | None:
        """dZ = dA B + A dB + dC"""
        x, y = ctx.saved_tensors
        tx, ty = ctx.flags
        # As in the VJP, a 1-D x is a row (1, k) and a 1-D y a column (k, 1); the axes numpy drops go after.
        x2 = x.reshape(1, x.shape[0]) if x.ndim == 1 else x
        y2 = y.reshape(y.shape[0], 1) if y.ndim == 1 else y
        rank = max(x2.ndim, y2.ndim)
        if dx is not None:
            dx = _lift(dx.reshape((dx.shape[0], 1, dx.shape[1])) if x.ndim == 1 else dx, rank)
        if dy is not None:
            dy = _lift(dy.reshape((*dy.shape, 1)) if y.ndim == 1 else dy, rank)
        dz = _total(None if dx is None else _matmul(dx, y2, tx, ty), None if dy is None else _matmul(x2, dy, tx, ty))
        if dz is not None and x.ndim == 1:
            dz = dz.reshape((*dz.shape[:-2], dz.shape[-1]))
        if dz is not None and y.ndim == 1:
            dz = dz.reshape(dz.shape[:-1])
        if dc is None:
            return dz
        assert ctx.parents is not None
        out_ndim = max(rank - (x.ndim == 1) - (y.ndim == 1), np.ndim(ctx.parents[2]))
        return _total(_lift(dz, out_ndim), _lift(dc, out_ndim))


def _matmul(a: Any, b: Any, transpose_a: bool, transpose_b: bool) -> Any:
    """a @ b with either transposed on its last two axes: `_op(MatMul, ...)` written out, because it runs
    twice in the hottest VJP and `_op`'s packing of arguments would add ~0.4 us to each call. On arrays
    the transposes are views: numpy hands BLAS the transposed layout."""
    if isinstance(a, Function.tensor_class) or isinstance(b, Function.tensor_class):
        return MatMul.apply(a, b, transpose_x=transpose_a, transpose_y=transpose_b)
    return _product(a.swapaxes(-1, -2) if transpose_a else a, b.swapaxes(-1, -2) if transpose_b else b)


def _product(a: Array, b: Array) -> Array:
    """a @ b, or a ShapeError that says which dimensions disagree."""
    try:
        if 0 < b.ndim <= 2 and a.ndim:
            # np.dot is the same product here, with less fixed cost per call on small matrices (~0.4 us;
            # ~1.7 us for an outer product). A stack of a's matrices times one b is one gemm on the
            # stacked rows (np.dot and matmul would both loop over the stack, np.dot very slowly).
            if a.ndim <= 2:
                return np.dot(a, b)
            return np.dot(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], *b.shape[1:])
        return np.matmul(a, b)  # stacks of b's need matmul's batch broadcasting
    except ValueError:
        pass
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        raise ShapeError(
            f"matmul: cannot multiply {fmt_shape(np.shape(a))} by {fmt_shape(np.shape(b))}; "
            "0-d operands are not matrices"
        )
    inner_a, inner_b = np.shape(a)[-1], np.shape(b)[-2 if np.ndim(b) > 1 else -1]
    if inner_a != inner_b:
        raise ShapeError(
            f"matmul: cannot multiply {fmt_shape(np.shape(a))} by {fmt_shape(np.shape(b))}; "
            f"inner dimensions {inner_a} and {inner_b} differ"
        )
    broadcast_shape("matmul (batch dimensions)", np.shape(a)[:-2], np.shape(b)[:-2])
    return np.matmul(a, b)


# ================================================================ type


class Cast(_Primitive):
    """y = x converted to dtype;   dL/dx = dL/dy converted back to x's dtype"""

    def forward(ctx, x: Array, *, dtype: np.dtype[Any]) -> Array:
        ctx.in_dtype, ctx.dtype = x.dtype, dtype
        return x.astype(dtype)

    def backward(ctx, grad_out: Tensor) -> Tensor:
        return grad_out.astype(ctx.in_dtype)

    def jvp(ctx, dx: Tensor) -> Tensor:
        """dy = dx converted to dtype"""
        return dx.astype(ctx.dtype)
