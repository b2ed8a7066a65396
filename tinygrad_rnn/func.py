"""func.py — the function transforms, spelled as in `torch.func`: a function in, a function (or values) out.

Read after core/forward.py. The tape style (`loss.backward()`, `tg.grad`) asks
for derivatives of tensors already computed; this style asks for derivatives
of a *function*, and runs it itself:

    jvp(f, primals, tangents) -> (f(x), J v)        forward mode, one pass
    vjp(f, *primals)          -> (f(x), u -> u^T J)  reverse mode, one pass per u
    grad(f)(x)                = the VJP of a scalar f with u = 1
    jacrev(f)(x)              = J, one VJP per output element (rows)
    jacfwd(f)(x)              = J, all input directions in one forward pass (columns)
    hessian(f)(x)             = jacfwd(jacrev(f))(x): forward over reverse
    hvp(f, primals, v)        -> (f(x), H v), forward over reverse, one pass

Each transform is a thin layer over the tape: it runs f on its own variables
(fresh leaves), records, and reads the tape backwards (`tg.grad`) or forwards
(`core.forward.push_tangents`). Transforms nest: when a primal already requires
grad (an enclosing transform, or the user, is watching it), the inner one
passes it through a recorded identity and records its own derivative pass,
as `create_graph=True` does, so the outer transform differentiates through it.
That is how `hessian` pushes tangents through a VJP graph.

    >>> import tinygrad_rnn as tg
    >>> f = lambda x: (x**3).sum()
    >>> x = tg.Tensor([1.0, 2.0])
    >>> tg.func.grad(f)(x).numpy()
    array([ 3., 12.])
    >>> tg.func.hessian(f)(x).numpy()
    array([[ 6.,  0.],
           [ 0., 12.]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .core import ops
from .core.engine import enable_grad, is_grad_enabled
from .core.engine import grad as tape_grad
from .core.errors import ArgumentError, GradientError, ShapeError, fmt_shape
from .core.forward import push_tangents
from .core.tensor import Tensor, stack

__all__ = ["grad", "hessian", "hvp", "jacfwd", "jacrev", "jvp", "vjp"]

Argnums = int | tuple[int, ...]


# ---------------------------------------------------------------- the transforms' own variables


def _watched(values: Sequence[Any]) -> bool:
    """True when an enclosing transform (or the user) differentiates through these values."""
    return is_grad_enabled() and any(isinstance(v, Tensor) and v.requires_grad for v in values)


def _variable(value: Any) -> Tensor:
    """The transform's own variable for one primal: a fresh leaf, or, for a watched tensor, a recorded
    identity of it (a leaf of its own would cut the outer transform's path through it)."""
    tensor = value if isinstance(value, Tensor) else Tensor(value)
    if tensor.requires_grad and is_grad_enabled():
        return ops.Reshape.apply(tensor, shape=tensor.shape)
    return Tensor._make(tensor.data, None).requires_grad_()


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def _outputs(op: str, out: Any) -> tuple[Tensor, ...]:
    outs = _as_tuple(out)
    for o in outs:
        if not isinstance(o, Tensor):
            raise ArgumentError(
                f"{op}: the function must return a Tensor or a tuple of Tensors, got {type(o).__name__}"
            )
    return outs


def _positions(op: str, argnums: Argnums, count: int) -> tuple[int, ...]:
    positions = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in positions:
        if not -count <= a < count:
            raise ArgumentError(f"{op}: argnums {argnums} is out of range for {count} positional argument(s)")
    return tuple(a % count for a in positions)


def _released(out: Tensor, keep: bool) -> Tensor:
    """The result, still on the tape when an enclosing transform needs it, else cut from it."""
    return out if keep else Tensor._make(out.data, None)


def _grads_or_zeros(grads: Sequence[Tensor | None], like: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """A gradient for every input: zeros where the output does not depend on it (torch.func's convention)."""
    return tuple(
        g if g is not None else Tensor._make(np.zeros(x.shape, x.dtype), None) for g, x in zip(grads, like, strict=True)
    )


# ---------------------------------------------------------------- forward mode


def jvp(f: Callable[..., Any], primals: Any, tangents: Any, *, batched: bool = False) -> tuple[Any, Any]:
    """(f(*primals), J v): the output and its tangent when the primals move along `tangents`.

    One forward pass, with a tangent per primal. With `batched=True` every
    tangent has a leading axis of K directions and so does the result (what
    `vmap(jvp)` gives in torch.func): K Jacobian-vector products in one pass.

    >>> out, tangent = jvp(lambda x: x.exp(), (Tensor([0.0, 1.0]),), (Tensor([1.0, 1.0]),))
    >>> tangent.numpy().round(4)
    array([1.    , 2.7183])
    """
    primals, tangents = _as_tuple(primals), _as_tuple(tangents)
    if len(primals) != len(tangents):
        raise ArgumentError(f"jvp: got {len(tangents)} tangents for {len(primals)} primals")
    nested = _watched(primals) or _watched(tangents)
    with enable_grad():
        xs = [_variable(p) for p in primals]
        raw = f(*xs)
    outs = _outputs("jvp", raw)
    directions = []
    for i, (x, t) in enumerate(zip(xs, tangents, strict=True)):
        t = t if isinstance(t, Tensor) else Tensor(np.asarray(t, dtype=x.dtype))
        if t.shape != ((t.shape[0], *x.shape) if batched and t.ndim else x.shape):
            raise ShapeError(
                f"jvp: tangent {i} has shape {fmt_shape(t.shape)} but primal {i} has shape {fmt_shape(x.shape)}"
                + ("; with batched=True a tangent is (K, *primal.shape)" if batched else "")
            )
        directions.append(t if batched else t.reshape((1, *x.shape)))
    pushed = push_tangents(outs, xs, directions, create_graph=nested)
    if not batched:
        pushed = tuple(t.reshape(o.shape) for t, o in zip(pushed, outs, strict=True))
    results = tuple(_released(o, nested) for o in outs)
    if isinstance(raw, Tensor):
        return results[0], pushed[0]
    return results, pushed


def _run_watched(
    op: str, f: Callable[..., Tensor], argnums: Argnums, args: Sequence[Any]
) -> tuple[list[Tensor], Tensor, bool]:
    """Run f with the arguments at `argnums` made watched variables: (those variables, f's one output,
    whether the call is itself inside another transform's recording)."""
    positions = _positions(op, argnums, len(args))
    nested = _watched([args[a] for a in positions])
    with enable_grad():
        xs = [_variable(args[a]) for a in positions]
        full = list(args)
        for a, x in zip(positions, xs, strict=True):
            full[a] = x
        (out,) = _outputs(op, f(*full))
    return xs, out, nested


def jacfwd(f: Callable[..., Tensor], argnums: Argnums = 0) -> Callable[..., Any]:
    """x -> the Jacobian of f at x, shaped (*out.shape, *x.shape), by forward mode: one pass
    pushing x.size directions (the columns of J). Cheap when the input is small."""

    def jacobian(*args: Any) -> Any:
        xs, out, nested = _run_watched("jacfwd", f, argnums, args)
        sizes = [x.size for x in xs]
        eye = np.eye(sum(sizes), dtype=out.dtype)
        starts = np.cumsum([0, *sizes])
        directions = [eye[:, s : s + n].reshape(-1, *x.shape) for s, n, x in zip(starts, sizes, xs, strict=False)]
        (pushed,) = push_tangents([out], xs, directions, create_graph=nested)
        columns = [pushed[s : s + n] for s, n in zip(starts, sizes, strict=False)]
        jacobians = tuple(
            c.reshape(n, out.size).T.reshape((*out.shape, *x.shape)) for c, n, x in zip(columns, sizes, xs, strict=True)
        )
        return jacobians[0] if isinstance(argnums, int) else jacobians

    return jacobian


# ---------------------------------------------------------------- reverse mode


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[..., tuple[Tensor, ...]]]:
    """(f(*primals), vjp_fn), where vjp_fn(u) = u^T J: one gradient per primal, one backward pass per call.

    The graph is kept for as long as vjp_fn lives, so it can be called again.

    >>> out, vjp_fn = vjp(lambda x: x * x, Tensor([1.0, 2.0]))
    >>> vjp_fn(Tensor([1.0, 10.0]))[0].numpy()
    array([ 2., 40.])
    """
    nested = _watched(primals)
    with enable_grad():
        xs = [_variable(p) for p in primals]
        raw = f(*xs)
    outs = _outputs("vjp", raw)

    def vjp_fn(*cotangents: Any) -> tuple[Tensor, ...]:
        given = cotangents[0] if len(cotangents) == 1 and isinstance(raw, tuple | list) else cotangents
        us = _as_tuple(given)
        if len(us) != len(outs):
            raise ArgumentError(f"vjp_fn: got {len(us)} cotangents for {len(outs)} outputs")
        grads = tape_grad(
            list(outs),
            xs,
            grad_outputs=list(us),
            retain_graph=True,
            create_graph=nested or _watched(us),
            allow_unused=True,
        )
        return _grads_or_zeros(grads, xs)

    results = tuple(_released(o, nested) for o in outs)
    return (results[0] if isinstance(raw, Tensor) else results), vjp_fn


def _value_and_grad(
    op: str, f: Callable[..., Tensor], argnums: Argnums, args: Sequence[Any]
) -> tuple[Tensor, tuple[Tensor, ...]]:
    xs, out, nested = _run_watched(op, f, argnums, args)
    if out.size != 1:
        raise GradientError(
            f"{op}: the function returned a tensor of shape {fmt_shape(out.shape)}; grad needs a single-element "
            "output (use jacrev or jacfwd for a vector output, or vjp for one u^T J)"
        )
    grads = tape_grad(out, xs, create_graph=nested, allow_unused=True)
    return _released(out, nested), _grads_or_zeros(grads, xs)


def grad(f: Callable[..., Tensor], argnums: Argnums = 0) -> Callable[..., Any]:
    """x -> df/dx for a function f with one-element output (a tuple of gradients when argnums is a tuple)."""

    def gradient(*args: Any) -> Any:
        _, grads = _value_and_grad("grad", f, argnums, args)
        return grads[0] if isinstance(argnums, int) else grads

    return gradient


def jacrev(f: Callable[..., Tensor], argnums: Argnums = 0) -> Callable[..., Any]:
    """x -> the Jacobian of f at x, shaped (*out.shape, *x.shape), by reverse mode: one VJP per
    output element (the rows of J). Cheap when the output is small."""

    def jacobian(*args: Any) -> Any:
        xs, out, nested = _run_watched("jacrev", f, argnums, args)
        rows: list[list[Tensor]] = [[] for _ in xs]
        for i in range(out.size):
            seed = np.zeros(out.size, out.dtype)
            seed[i] = 1.0
            grads = tape_grad(
                out, xs, grad_outputs=seed.reshape(out.shape), retain_graph=True, create_graph=nested, allow_unused=True
            )
            for j, g in enumerate(_grads_or_zeros(grads, xs)):
                rows[j].append(g)
        jacobians = tuple(
            (stack(r) if r else Tensor._make(np.zeros((0, *x.shape), x.dtype), None)).reshape((*out.shape, *x.shape))
            for r, x in zip(rows, xs, strict=True)
        )
        return jacobians[0] if isinstance(argnums, int) else jacobians

    return jacobian


# ---------------------------------------------------------------- second order


def hessian(f: Callable[..., Tensor], argnums: Argnums = 0) -> Callable[..., Any]:
    """x -> d^2 f / dx^2, shaped (*x.shape, *x.shape): jacfwd(jacrev(f)), forward over reverse.

    The inner jacrev records its VJPs (the primal is watched), and the outer
    jacfwd pushes tangents through that recorded VJP graph."""
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(f: Callable[..., Tensor], primals: Any, tangents: Any) -> tuple[Tensor, Any]:
    """(f(primals), H v): the Hessian of a scalar f times v, as `torch.autograd.functional.hvp`.

    Forward over reverse: a JVP of the gradient, so it costs about one forward and
    one backward pass whatever the size of H, which is never formed."""
    single = isinstance(primals, Tensor) or not isinstance(primals, tuple | list)
    primals, tangents = _as_tuple(primals), _as_tuple(tangents)
    values: list[Tensor] = []

    def gradient(*xs: Tensor) -> tuple[Tensor, ...]:
        value, grads = _value_and_grad("hvp", f, tuple(range(len(xs))), xs)
        values.append(value)
        return grads

    _, products = jvp(gradient, primals, tangents)
    value = Tensor._make(values[0].data, None)
    return value, (products[0] if single else products)
