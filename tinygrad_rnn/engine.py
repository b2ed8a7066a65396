"""engine.py — records the tape and walks it backwards. Read after tensor.py.

Forward: every primitive is a `Function` subclass. `Function.apply` runs its
`forward` on plain ndarrays and, when some input requires grad, keeps the
`Function` instance as a node of the tape: it remembers its inputs (`parents`),
whatever `forward` saved, and a sequence number.

Backward: `backward()` starts from the root's gradient and visits the nodes
latest-first. Each node's `backward` is its vector-Jacobian product (VJP): given
dL/d(output) it returns dL/d(input) for each input. Gradients of a tensor used
several times are added up. The VJPs are written with Tensor operations, so
with `create_graph=True` the backward pass is itself recorded and can be
differentiated again.

Why latest-first is a valid order: a node is created after all of its inputs
exist, so its sequence number is larger than theirs. The recording order of
the tape is therefore already topological; we only need the nodes reachable
from the root, found by an explicit-stack search (no recursion, so a
100,000-step chain is fine), sorted by sequence number.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import ContextDecorator, contextmanager
from typing import Any

import numpy as np

from .errors import DTypeError, GradientError, fmt_shape
from .shapes import unbroadcast_axes

# ---------------------------------------------------------------- grad mode


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are being recorded."""
    return _GradMode.enabled


class set_grad_enabled(ContextDecorator):
    """Turn recording on or off inside a `with` block or a decorated function."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._previous: list[bool] = []  # a stack, so one decorator instance can re-enter

    def __enter__(self) -> None:
        self._previous.append(_GradMode.enabled)
        _GradMode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self._previous.pop()


class no_grad(set_grad_enabled):
    """Record nothing: `with tg.no_grad(): ...` or `@tg.no_grad()`."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Record again inside a `no_grad` region."""

    def __init__(self) -> None:
        super().__init__(True)


# ---------------------------------------------------------------- scopes
# nn layers label what they record (`module="rnn.l0", step=3`), so study tools
# can fold an unrolled graph by time step. A node keeps the labels in force
# when it was recorded; costs one attribute store per node.

_no_tags: dict[str, Any] = {}


class _Scope:
    tags: dict[str, Any] = _no_tags


@contextmanager
def scope(**tags: Any) -> Iterator[None]:
    """Label every node recorded inside the block, e.g. `with scope(module="rnn", step=t):`."""
    previous = _Scope.tags
    _Scope.tags = {**previous, **tags}
    try:
        yield
    finally:
        _Scope.tags = previous


# ---------------------------------------------------------------- observers
# Study tools (tinygrad_rnn.inspect) subscribe here to see each node as it is
# recorded and each VJP as it runs. The engine itself never depends on them.

forward_observers: list[Callable[[Function, Tensor], None]] = []
backward_observers: list[Callable[[Function, Tensor, tuple[Tensor | None, ...]], None]] = []


# ---------------------------------------------------------------- Function


_sequence = itertools.count()
_OUTPUT = object()  # marks "the output of this node" among saved values


class Function:
    """A primitive operation and, once applied, one node of the tape.

    Subclasses define two methods, with `ctx` (the node itself) first::

        class Exp(Function):
            '''y = exp(x);   dL/dx = dL/dy * y'''
            def forward(ctx, x):             # ndarrays in, ndarray out
                y = np.exp(x)
                ctx.save_for_backward(y)
                return y
            def backward(ctx, grad_out):     # Tensors in, Tensors out
                (y,) = ctx.saved_tensors
                return grad_out * y

    and are called as `Exp.apply(x)`. Positional Tensor arguments become
    ndarrays for `forward`; keyword arguments are passed through unchanged
    and are never differentiated. `backward` returns one gradient per
    positional argument (None where there is none). A gradient shaped like a
    broadcast result is summed back to the input's shape by the engine, so
    ops never undo broadcasting themselves.

    Save inputs or the output by passing the very array `forward` received or
    returned: `saved_tensors` hands them back as the live Tensors, so the VJP
    stays differentiable (higher-order gradients). Any other saved array
    comes back as a constant.

    The graph after `z = x * y`::

        x ──┐
            ├──► Mul node ──► z        z._node.parents == (x, y)
        y ──┘
    """

    __slots__ = ("__dict__", "_output", "_saved", "needs_input_grad", "parents", "seq", "tags")

    parents: tuple[Tensor | None, ...] | None
    needs_input_grad: tuple[bool, ...]
    seq: int
    tags: dict[str, Any]
    _output: weakref.ref[Tensor]

    def forward(ctx, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(ctx).__name__} defines no forward()")

    def backward(ctx, grad_out: Tensor) -> Any:
        raise NotImplementedError(f"{type(ctx).__name__} defines no backward()")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Tensor:
        ctx = cls.__new__(cls)
        ctx._saved = ()
        needs = ctx.needs_input_grad = tuple([isinstance(a, Tensor) and a.requires_grad for a in args])
        # `raw`: a ufunc on 0-d arrays returns a numpy scalar, which asarray copies; saved, it is still the output.
        out_data = raw = cls.forward(ctx, *[a.data if isinstance(a, Tensor) else a for a in args], **kwargs)
        if type(out_data) is not np.ndarray:
            out_data = np.asarray(out_data)
        record = _GradMode.enabled and True in needs and out_data.dtype.kind in "fc"
        out = Tensor._make(out_data, ctx if record else None)
        if record:
            ctx.parents = tuple(a if isinstance(a, Tensor) else None for a in args)
            ctx.seq = next(_sequence)
            ctx.tags = _Scope.tags
            if ctx._saved:
                ctx._saved = tuple(_OUTPUT if v is raw else _resolve_saved(v, out_data, args) for v in ctx._saved)
                for value in ctx._saved:  # not `_OUTPUT in`: that compares with ==, elementwise on a saved array
                    if value is _OUTPUT:
                        # A weak reference: the output holds its node, so a strong one would be a cycle.
                        ctx._output = weakref.ref(out)
                        break
            for observe in forward_observers:
                observe(ctx, out)
        return out

    def save_for_backward(ctx, *values: Any) -> None:
        """Keep arrays (inputs, the output, or constants) for `backward`."""
        ctx._saved = values

    @property
    def saved_tensors(ctx) -> tuple[Tensor, ...]:
        """The saved values as Tensors (inputs and output are the live, differentiable ones)."""
        if ctx.parents is None:
            raise _freed_error(ctx)
        out: list[Any] = []  # Tensors; Any because a weak reference to the output is typed Tensor | None
        for value in ctx._saved:
            if value is _OUTPUT:
                out.append(ctx._output())
            elif isinstance(value, tuple):  # (input Tensor, the array forward saw)
                tensor, array = value
                if tensor.data is array:
                    out.append(tensor)
                elif _GradMode.enabled:
                    raise GradientError(
                        f"{ctx.name}: an input of shape {fmt_shape(array.shape)} was given new values "
                        "(for example by an optimizer step) after the forward pass, so its graph no longer "
                        "describes it; create_graph=True cannot differentiate through it. Run the forward pass again."
                    )
                else:
                    out.append(Tensor(array))  # the values forward used: first-order grads stay exact
            else:
                out.append(Tensor(value))
        return tuple(out)

    @property
    def name(ctx) -> str:
        """The op's name as users know it: `Mul` -> `mul`, `MatMul` -> `matmul`."""
        return type(ctx).__name__.lower()

    def release(ctx) -> None:
        """Drop the saved values and inputs: called once backward has used this node."""
        ctx.parents = None
        ctx._saved = ()


def _resolve_saved(value: Any, out_data: np.ndarray, args: tuple[Any, ...]) -> Any:
    if value is out_data:
        return _OUTPUT
    for a in args:
        if getattr(a, "data", None) is value:
            return (a, value)
    return value


def _freed_error(node: Function) -> GradientError:
    return GradientError(
        f"{node.name}: trying to backward through a graph a second time; its saved values were freed "
        "by the first backward(). Pass retain_graph=True to the first backward() if you need a second one."
    )


# ---------------------------------------------------------------- the backward pass


def topological_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Every non-leaf tensor reachable from `roots`, earliest-recorded first."""
    seen: set[int] = set()
    stack = [t for t in roots if t._node is not None]
    order: list[Tensor] = []
    while stack:
        tensor = stack.pop()
        node = tensor._node
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.parents is None:
            raise _freed_error(node)
        order.append(tensor)
        stack.extend(p for p in node.parents if p is not None and p._node is not None)
    order.sort(key=_seq)
    return order


def _seq(tensor: Tensor) -> int:
    return tensor._node.seq  # type: ignore[union-attr]  # only non-leaves are sorted


def backward(
    roots: Sequence[Tensor],
    seeds: Sequence[Tensor],
    *,
    retain_graph: bool = False,
    create_graph: bool = False,
    capture: Sequence[Tensor] = (),
    fill_retained: bool = True,
) -> dict[Tensor, Tensor]:
    """Propagate `seeds` (dL/d root) back through the tape; return dL/d leaf for every leaf reached.

    Tensors in `capture` also get their gradient in the result, leaf or not.
    Non-leaf tensors marked with `retain_grad()` get `.grad` set on the way,
    unless `fill_retained=False` (`grad()` promises to leave every `.grad` alone).
    """
    grads: dict[Tensor, Tensor] = {}
    for root, seed in zip(roots, seeds, strict=True):
        _accumulate(grads, root, seed)
    captured: dict[Tensor, Tensor] = {}
    wanted = {id(t) for t in capture}
    order = topological_order(roots)
    with set_grad_enabled(create_graph):
        while order:
            tensor = order.pop()  # latest first; popping also lets each tensor be freed once used
            node = tensor._node
            assert node is not None and node.parents is not None
            grad_out = grads.pop(tensor, None)
            if grad_out is not None:
                grad_out = tensor._run_hooks(grad_out)
                if id(tensor) in wanted:
                    captured[tensor] = grad_out
                if fill_retained and tensor._retains_grad:
                    tensor._accumulate_grad(grad_out, create_graph)
                grads_in = _call_backward(node, grad_out)
                for observe in backward_observers:
                    observe(node, grad_out, grads_in)
                for parent, grad in zip(node.parents, grads_in, strict=True):
                    if grad is not None and parent is not None:
                        _accumulate(grads, parent, grad)
            if not retain_graph:
                node.release()
    for leaf in list(grads):
        grads[leaf] = leaf._run_hooks(grads[leaf])
    grads.update(captured)
    return grads


def _call_backward(node: Function, grad_out: Tensor) -> tuple[Tensor | None, ...]:
    """Run one VJP, and bring each gradient to its input's shape and dtype (or fail naming the op)."""
    assert node.parents is not None
    raw = type(node).backward(node, grad_out)
    grads = raw if isinstance(raw, tuple | list) else (raw,)
    if len(grads) != len(node.parents):
        raise GradientError(
            f"{type(node).__name__}.backward returned {len(grads)} gradient(s) for {len(node.parents)} input(s)"
        )
    out: list[Tensor | None] = []
    for i, (parent, needed, grad) in enumerate(zip(node.parents, node.needs_input_grad, grads, strict=True)):
        if parent is None or not needed or grad is None:
            out.append(None)
            continue
        if not isinstance(grad, Tensor):
            grad = Tensor(np.asarray(grad))
        if grad.shape != parent.shape:
            axes = unbroadcast_axes(grad.shape, parent.shape)
            if axes is None:
                raise GradientError(
                    f"{type(node).__name__}.backward returned a gradient of shape {fmt_shape(grad.shape)} "
                    f"for input {i} of shape {fmt_shape(parent.shape)}"
                )
            grad = grad.sum(axis=axes, keepdims=True).reshape(parent.shape)
        if grad.dtype != parent.dtype:
            grad = grad.astype(parent.dtype)
        out.append(grad)
    return tuple(out)


def _accumulate(grads: dict[Tensor, Tensor], tensor: Tensor, grad: Tensor) -> None:
    previous = grads.get(tensor)
    grads[tensor] = grad if previous is None else previous + grad


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | np.ndarray | Sequence[Tensor | np.ndarray | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs) as a tuple with one Tensor per input; no `.grad` is touched.

    >>> import tinygrad_rnn as tg
    >>> x = tg.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (dx,) = tg.grad((x * x).sum(), x)
    >>> dx.numpy()
    array([2., 4., 6.])
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor | np.ndarray):
        given: list[Any] = [grad_outputs] * len(outs) if grad_outputs is not None else [None] * len(outs)
    else:
        given = list(grad_outputs)
    if len(given) != len(outs):
        raise GradientError(f"grad: got {len(given)} grad_outputs for {len(outs)} outputs")
    for t in ins:
        if not t.requires_grad:
            raise GradientError(f"grad: an input of shape {fmt_shape(t.shape)} does not require grad")
    seeds = [seed_gradient("grad", out, g) for out, g in zip(outs, given, strict=True)]
    grads = backward(
        outs,
        seeds,
        retain_graph=create_graph if retain_graph is None else retain_graph,
        create_graph=create_graph,
        capture=ins,
        fill_retained=False,
    )
    result = []
    for i, t in enumerate(ins):
        g = grads.get(t)
        if g is None and not allow_unused:
            raise GradientError(
                f"grad: input {i} of shape {fmt_shape(t.shape)} was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        result.append(g)
    return tuple(result)


def seed_gradient(op: str, root: Tensor, grad: Any) -> Tensor:
    """dL/d(root) to start from: 1 for a scalar root, else the caller's `grad` (checked)."""
    if not root.requires_grad:
        raise GradientError(
            f"{op}: the tensor of shape {fmt_shape(root.shape)} does not require grad and has no graph; "
            "did you create it under no_grad() or from tensors without requires_grad=True?"
        )
    if grad is None:
        if root.size != 1:
            raise GradientError(
                f"{op}: the tensor has shape {fmt_shape(root.shape)}; a gradient is implied only for a "
                "single-element output. Pass grad= with the same shape (or reduce it first, e.g. .sum())."
            )
        return Tensor(np.ones(root.shape, dtype=root.dtype))
    seed = grad if isinstance(grad, Tensor) else Tensor(np.asarray(grad, dtype=root.dtype))
    if seed.shape != root.shape:
        raise GradientError(
            f"{op}: grad has shape {fmt_shape(seed.shape)} but the tensor has shape {fmt_shape(root.shape)}"
        )
    if seed.dtype.kind not in "fc":
        raise DTypeError(f"{op}: grad must be floating point, got {seed.dtype}")
    return seed


@contextmanager
def _observing(
    forward: Callable[[Function, Tensor], None] | None = None,
    backward: Callable[[Function, Tensor, tuple[Tensor | None, ...]], None] | None = None,
) -> Iterator[None]:
    """Subscribe observers for the duration of a block (used by tinygrad_rnn.inspect)."""
    if forward is not None:
        forward_observers.append(forward)
    if backward is not None:
        backward_observers.append(backward)
    try:
        yield
    finally:
        if forward is not None:
            forward_observers.remove(forward)
        if backward is not None:
            backward_observers.remove(backward)


# tensor.py imports this module and this module needs Tensor at run time; importing
# it last, once everything above exists, lets either module be imported first.
from .tensor import Tensor  # noqa: E402
