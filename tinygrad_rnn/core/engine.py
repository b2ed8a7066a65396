"""engine.py — records the tape and walks it backwards. Read after tensor.py.

Forward: every primitive is a `Function` subclass. `Function.apply` runs its
`forward` on plain ndarrays and, when some input requires grad, keeps the
`Function` instance as a node of the tape: it remembers its inputs (`parents`),
whatever `forward` saved, and a sequence number.

Backward: `backward()` starts from the root's gradient and visits the nodes
latest-first. Each node's `backward` is its vector-Jacobian product (VJP): given
dL/d(output) it returns dL/d(input) for each input. Gradients of a tensor used
several times are added up. A plain backward pass records nothing, so the
gradients travel as bare ndarrays and the built-in VJPs run on them; with
`create_graph=True` the same VJPs run on Tensors, so the backward pass is
itself recorded and can be differentiated again.

Why latest-first is a valid order: a node is created after all of its inputs
exist, so its sequence number is larger than theirs. The recording order of
the tape is therefore already topological; we only need the nodes reachable
from the root, found by an explicit-stack search (no recursion, so a
100,000-step chain is fine), sorted by sequence number.
"""

from __future__ import annotations

import itertools
import operator
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import ContextDecorator, contextmanager
from typing import Any

import numpy as np

from .errors import DTypeError, GradientError, fmt_shape
from .products import ProductSum
from .shapes import unbroadcast_axes

# ---------------------------------------------------------------- grad mode


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are being recorded."""
    return _GradMode.enabled


class _GradModeBlock(ContextDecorator):
    """Set the grad mode inside a `with` block or a decorated function, and restore it after."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._previous: list[bool] = []  # a stack, so one decorator instance can re-enter

    def __enter__(self) -> None:
        self._previous.append(_GradMode.enabled)
        _GradMode.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _GradMode.enabled = self._previous.pop()


class no_grad(_GradModeBlock):
    """Record nothing: `with tg.no_grad(): ...` or `@tg.no_grad()`."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(_GradModeBlock):
    """Record again inside a `no_grad` region."""

    def __init__(self) -> None:
        super().__init__(True)


class set_grad_enabled(_GradModeBlock):
    """Switch recording on or off: at once when called on its own (`tg.set_grad_enabled(False)`),
    or only inside a `with` block or a decorated function, as in PyTorch."""

    def __init__(self, mode: bool) -> None:
        super().__init__(mode)
        self._before_call = _GradMode.enabled
        self._fresh = True  # the first `with` must restore the mode from before this call, not after it
        _GradMode.enabled = self.mode

    def __call__(self, func: Any) -> Any:  # a decorator: the mode applies only inside func
        _GradMode.enabled = self._before_call
        self._fresh = False
        return super().__call__(func)

    def __enter__(self) -> None:
        self._previous.append(self._before_call if self._fresh else _GradMode.enabled)
        self._fresh = False
        _GradMode.enabled = self.mode


# ---------------------------------------------------------------- scopes
# nn layers label what they record (`module="rnn.l0", step=3`), so study tools
# can fold an unrolled graph by time step. A node keeps the labels in force
# when it was recorded; costs one attribute store per node.

_no_tags: dict[str, Any] = {}


class _Scope:
    tags: dict[str, Any] = _no_tags


class scope:
    """Label every node recorded inside the block, e.g. `with scope(module="rnn", step=t):`.

    A class rather than a @contextmanager generator: layers enter one per time step, and
    this costs about half as much (0.9 against 1.6 us here)."""

    __slots__ = ("_previous", "tags")

    def __init__(self, **tags: Any) -> None:
        self.tags = tags

    def __enter__(self) -> None:
        self._previous = _Scope.tags
        _Scope.tags = {**self._previous, **self.tags}

    def __exit__(self, *exc: object) -> None:
        _Scope.tags = self._previous


# ---------------------------------------------------------------- observers
# Study tools (tinygrad_rnn.inspect) subscribe here to see each node as it is
# recorded and each VJP as it runs. The engine itself never depends on them.

forward_observers: list[Callable[[Function, Tensor], None]] = []
backward_observers: list[Callable[[Function, tuple[Tensor, ...], tuple[Tensor | None, ...]], None]] = []


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

    A VJP like this one, made only of operators, `.reshape`/`.sum`/`.astype`
    and `Op.apply` calls, means the same on ndarrays; a class that sets
    `backward_on_arrays = True` promises that, and then gets ndarrays (and its
    saved arrays) in a plain backward pass, which skips making a Tensor per
    intermediate. `Op.apply` on plain arrays only is just `forward`.

    A `forward` that returns a tuple of arrays makes a node with several
    outputs: `apply` returns a tuple of Tensors, and `backward` receives one
    gradient per output (zeros for an output that no gradient reached).

    Save inputs or the output by passing the very array `forward` received or
    returned: `saved_tensors` hands them back as the live Tensors, so the VJP
    stays differentiable (higher-order gradients). Any other saved array
    comes back as a constant. The arrays of saved leaves that require grad
    become read-only, so an in-place write cannot silently change a gradient;
    rebind `.data` instead (as the optimizers do) and recorded graphs keep
    the values they saw.

    The graph after `z = x * y`::

        x ──┐
            ├──► Mul node ──► z        z._node.parents == (x, y)
        y ──┘
    """

    __slots__ = (
        "__dict__",
        "_frozen",
        "_output",
        "_saved",
        "_sources",
        "needs_input_grad",
        "outputs",
        "parents",
        "seq",
        "tags",
    )

    # True when `backward` uses only operators, `.reshape`/`.sum`/`.astype`/`.shape` and `Op.apply`, which
    # mean the same on ndarrays and on Tensors: then a plain backward pass runs it on ndarrays (no Tensor
    # per intermediate; nothing is recorded there anyway), and create_graph=True on Tensors. The built-in
    # ops all do; a user's Function keeps getting Tensors unless it says so.
    backward_on_arrays = False

    parents: tuple[Any, ...] | None  # the positional arguments: Tensors, or anything else passed through
    needs_input_grad: tuple[bool, ...]
    seq: int
    tags: dict[str, Any]
    outputs: tuple[weakref.ref[Tensor], ...] | None  # only for a node with several outputs
    output_meta: list[tuple[tuple[int, ...], np.dtype[Any]]]  # their shapes and dtypes, likewise
    _output: weakref.ref[Tensor]
    _saved: tuple[Any, ...]  # what forward saved, as it saved it
    _sources: tuple[Any, ...]  # for each saved value: _OUTPUT, the input Tensor it was, or None (a constant)
    _frozen: list[_Frozen] | None  # tokens keeping saved leaf arrays read-only; set only where some were saved

    def forward(ctx, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(ctx).__name__} defines no forward()")

    def backward(ctx, grad_out: Tensor) -> Any:  # a node with several outputs gets one argument per output
        raise NotImplementedError(f"{type(ctx).__name__} defines no backward()")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        ctx = cls.__new__(cls)
        ctx._saved = ()
        for a in args:
            if isinstance(a, Tensor):
                break
        else:
            # Plain arrays only (a VJP running inside a plain backward pass): there is nothing to
            # record, so a primitive is just its forward, as in HIPS autograd.
            ctx.needs_input_grad = (False,) * len(args)
            return cls.forward(ctx, *args, **kwargs)
        arrays: list[Any] = []
        needs: list[bool] = []
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a.data)
                needs.append(a.requires_grad)
            else:
                arrays.append(a)
                needs.append(False)
        record = _GradMode.enabled and True in needs
        ctx.needs_input_grad = tuple(needs) if record else (False,) * len(args)
        raw = cls.forward(ctx, *arrays, **kwargs)
        if type(raw) is tuple:
            return _apply_several(ctx, raw, args)
        # A ufunc on 0-d arrays returns a numpy scalar; asarray makes a new array, but `raw` is still the output.
        out_data = raw if type(raw) is np.ndarray else np.asarray(raw)
        if not (record and out_data.dtype.kind in "fc"):
            return Tensor._make(out_data, None)
        out = Tensor._make(out_data, ctx)
        ctx.parents = args
        ctx.outputs = None
        ctx.seq = next(_sequence)
        ctx.tags = _Scope.tags
        if ctx._saved:
            _find_sources(ctx, args, raw, out)
        if forward_observers:
            for observe in forward_observers:
                observe(ctx, out)
        return out

    def save_for_backward(ctx, *values: Any) -> None:
        """Keep arrays (inputs, the output, or constants) for `backward`."""
        ctx._saved = values

    @property
    def saved_tensors(ctx) -> tuple[Any, ...]:
        """The saved values: in a plain backward pass of an op whose VJP runs on arrays, the very
        ndarrays forward saw; otherwise Tensors (inputs and output are the live, differentiable ones)."""
        if ctx.parents is None:
            raise _freed_error(ctx)
        if ctx.backward_on_arrays and not _GradMode.enabled:
            return ctx._saved
        out: list[Any] = []  # Tensors; Any because a weak reference to the output is typed Tensor | None
        for value, source in zip(ctx._saved, ctx._sources, strict=True):
            if source is None:
                out.append(Tensor._make(np.asarray(value), None))
            elif source is _OUTPUT:
                out.append(ctx._output())
            elif source.data is value:
                out.append(source)
            elif _GradMode.enabled:
                raise GradientError(
                    f"{ctx.name}: an input of shape {fmt_shape(value.shape)} was given new values "
                    "(for example by an optimizer step) after the forward pass, so its graph no longer "
                    "describes it; create_graph=True cannot differentiate through it. Run the forward pass again."
                )
            else:
                out.append(Tensor._make(value, None))  # the values forward used: first-order grads stay exact
        return tuple(out)

    @property
    def name(ctx) -> str:
        """The op's name as users know it: `Mul` -> `mul`, `MatMul` -> `matmul`."""
        return type(ctx).__name__.lower()

    def release(ctx) -> None:
        """Drop the saved values and inputs: called once backward has used this node."""
        ctx.parents = None
        ctx._saved = ctx._sources = ()
        ctx._frozen = None


def _apply_several(ctx: Function, raw: tuple[Any, ...], args: tuple[Any, ...]) -> tuple[Tensor, ...]:
    """The rest of `Function.apply` for a forward that returned several arrays."""
    arrays = [np.asarray(a) for a in raw]
    record = True in ctx.needs_input_grad and all(a.dtype.kind in "fc" for a in arrays)
    outs = tuple(Tensor._make(a, ctx if record else None) for a in arrays)
    if record:
        ctx.parents = args
        ctx.outputs = tuple(weakref.ref(t) for t in outs)
        ctx.seq = next(_sequence)
        ctx.tags = _Scope.tags
        _find_sources(ctx, args, None, None)  # saved outputs come back as constants
        ctx.output_meta = [(a.shape, a.dtype) for a in arrays]  # for zeros when an output got no gradient
        for observe in forward_observers:
            for out in outs:
                observe(ctx, out)
    return outs


def _find_sources(node: Function, args: tuple[Any, ...], raw: Any, out: Tensor | None) -> None:
    """Where each saved array came from: the output, an input Tensor, or nowhere (a constant).

    Found now, because `.data` may be rebound before backward. A saved leaf's
    array is frozen for as long as this node lives (see `_Frozen`)."""
    sources: list[Any] = []
    frozen: list[_Frozen] = []
    for value in node._saved:
        if value is raw and out is not None:
            sources.append(_OUTPUT)
            # A weak reference: the output holds its node, so a strong one would be a cycle.
            node._output = weakref.ref(out)
            continue
        for a in args:
            if isinstance(a, Tensor) and a.data is value:
                sources.append(a)
                if a._node is None and a.requires_grad:
                    ref = _frozen_arrays.get(id(value))
                    token = ref() if ref is not None else None
                    if token is None and value.flags.writeable:  # else the user made it read-only: leave it
                        token = _Frozen(value)
                    if token is not None:
                        frozen.append(token)
                break
        else:
            sources.append(None)
    node._sources = tuple(sources)
    if frozen:
        node._frozen = frozen


# A leaf's array (a parameter, an input) is what users write to in place, and a write
# between forward and backward would silently change the gradient. So while some live
# node has saved it, it is read-only. Every such node holds the array's one `_Frozen`
# token; when the last of them is released or collected, reference counting drops the
# token and it makes the array writable again. Ops never write to their inputs;
# intermediates are not frozen.
_frozen_arrays: dict[int, weakref.ref[_Frozen]] = {}  # id(array) -> its token


class _Frozen:
    __slots__ = ("__weakref__", "array")

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        array.flags.writeable = False
        _frozen_arrays[id(array)] = weakref.ref(self)

    def __del__(self) -> None:
        _frozen_arrays.pop(id(self.array), None)
        try:
            self.array.flags.writeable = True
        except ValueError:  # a view whose base the user has since made read-only: it stays read-only
            pass


def _freed_error(node: Function) -> GradientError:
    return GradientError(
        f"{node.name}: trying to backward through a graph a second time; its saved values were freed "
        "by the first backward(). Pass retain_graph=True to the first backward() if you need a second one."
    )


# ---------------------------------------------------------------- the backward pass


def topological_order(roots: Sequence[Tensor], *, stop_at_freed: bool = False) -> list[Tensor]:
    """One output tensor of every node reachable from `roots`, earliest-recorded first.

    A node whose inputs backward() already freed raises GradientError, or with
    `stop_at_freed=True` is listed and ends its branch of the search (the study
    tools look at half-freed graphs).
    """
    seen: set[Function] = set()
    stack: list[Any] = list(roots)  # parents go on as they are; leaves and constants are skipped when popped
    order: list[Tensor] = []
    while stack:
        tensor = stack.pop()
        node = tensor._node if isinstance(tensor, Tensor) else None
        if node is None or node in seen:
            continue
        seen.add(node)
        order.append(tensor)
        if node.parents is None:
            if stop_at_freed:
                continue
            raise _freed_error(node)
        stack.extend(node.parents)
    order.sort(key=_seq)
    return order


_seq = operator.attrgetter("_node.seq")  # the sort key, in C: it is called once per node


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

    A plain pass records nothing, so gradients flow between nodes as bare
    ndarrays; with `create_graph=True` they are Tensors and every VJP is recorded.
    """
    grads: dict[Tensor, Any] = {}  # ndarrays in a plain pass, Tensors under create_graph
    summed: set[Tensor] = set()  # tensors whose gradient is an array this pass allocated, so += is safe
    for root, seed in zip(roots, seeds, strict=True):
        _accumulate(grads, summed, root, seed if create_graph else seed.data)
    captured: dict[Tensor, Any] = {}
    wanted = {id(t) for t in capture}
    order = topological_order(roots)
    with _GradModeBlock(create_graph):
        while order:
            tensor = order.pop()  # latest first; popping also lets each tensor be freed once used
            node = tensor._node
            assert node is not None and node.parents is not None
            if node.outputs is None:  # one output: the common case, kept lean
                grad = _settled(grads.pop(tensor, None))
                summed.discard(tensor)  # else the set would keep every such tensor alive to the end
                if grad is not None and (tensor._hooks or tensor._retains_grad or wanted):
                    grad = _visit(tensor, grad, wanted, captured, fill_retained, create_graph)
                grad_outs: list[Any] = [grad]
                reached = grad is not None
            else:
                grad_outs, reached = _several_grad_outs(
                    node, grads, summed, wanted, captured, fill_retained, create_graph
                )
            if reached:
                grads_in = _call_backward(node, grad_outs, create_graph)
                if backward_observers:
                    _notify(node, grad_outs, grads_in)
                for parent, grad in zip(node.parents, grads_in, strict=True):
                    if grad is None:
                        continue
                    if parent in grads:
                        _accumulate(grads, summed, parent, grad)
                    else:  # the first contribution, the common case: no call
                        grads[parent] = grad
            if not retain_graph:
                node.release()
    result = {leaf: _as_tensor(_settled(g)) for leaf, g in grads.items()}
    for leaf, g in result.items():
        if leaf._hooks:
            result[leaf] = leaf._run_hooks(g)
    result.update({t: _as_tensor(g) for t, g in captured.items()})
    return result


def _several_grad_outs(
    node: Function,
    grads: dict[Tensor, Any],
    summed: set[Tensor],
    wanted: set[int],
    captured: dict[Tensor, Any],
    fill_retained: bool,
    create_graph: bool,
) -> tuple[list[Any], bool]:
    """The gradients of a node with several outputs, zeros for an output no gradient reached."""
    assert node.outputs is not None
    grad_outs: list[Any] = []
    reached = False
    for ref, (shape, dtype) in zip(node.outputs, node.output_meta, strict=True):
        out = ref()
        grad = None
        if out is not None:
            grad = _settled(grads.pop(out, None))
            summed.discard(out)
        if grad is None:
            zeros = np.zeros(shape, dtype)
            grad_outs.append(Tensor._make(zeros, None) if create_graph else zeros)
            continue
        reached = True
        if out is not None and (out._hooks or out._retains_grad or wanted):
            grad = _visit(out, grad, wanted, captured, fill_retained, create_graph)
        grad_outs.append(grad)
    return grad_outs, reached


def _settled(grad: Any) -> Any:
    """A gradient ready to use: a ProductSum (see products.py) is computed now."""
    return grad.value() if type(grad) is ProductSum else grad


def _as_tensor(grad: Any) -> Tensor:
    return grad if isinstance(grad, Tensor) else Tensor._make(np.asarray(grad), None)


def _visit(
    out: Tensor, grad: Any, wanted: set[int], captured: dict[Tensor, Any], fill_retained: bool, create_graph: bool
) -> Any:
    """dL/d(out) is complete: run its hooks, capture it for grad(), keep it for retain_grad()."""
    if out._hooks:
        replaced = out._run_hooks(_as_tensor(grad))
        grad = replaced if create_graph else replaced.data
    if id(out) in wanted:
        captured[out] = grad
    if fill_retained and out._retains_grad:
        out._accumulate_grad(_as_tensor(grad), create_graph)
    return grad


def _notify(node: Function, grad_outs: Sequence[Any], grads_in: Sequence[Any]) -> None:
    """Show one VJP to the backward observers, always as Tensors."""
    outs = tuple(_as_tensor(g) for g in grad_outs)
    ins = tuple(None if g is None else _as_tensor(_settled(g)) for g in grads_in)
    for observe in backward_observers:
        observe(node, outs, ins)


def _call_backward(node: Function, grad_outs: Sequence[Any], create_graph: bool) -> list[Any]:
    """Run one VJP, and bring each gradient to its input's shape and dtype (or fail naming the op).

    Gradients come back as Tensors under create_graph, else as ndarrays."""
    vjp = type(node).backward
    if create_graph or node.backward_on_arrays:
        raw = vjp(node, *grad_outs)
    else:  # a VJP written with Tensor methods: give it Tensors
        raw = vjp(node, *[Tensor._make(g, None) for g in grad_outs])
    grads = list(raw) if type(raw) is tuple or type(raw) is list else [raw]
    parents = node.parents
    assert parents is not None
    if len(grads) != len(parents):
        raise GradientError(
            f"{type(node).__name__}.backward returned {len(grads)} gradient(s) for {len(parents)} input(s)"
        )
    needs = node.needs_input_grad
    for i, grad in enumerate(grads):
        if grad is None:
            continue
        if not needs[i]:
            grads[i] = None
            continue
        data = parents[i].data
        if create_graph:
            if not isinstance(grad, Tensor):
                grad = Tensor._make(np.asarray(grad), None)
        elif type(grad) is ProductSum:
            if grad.shape == data.shape and grad.dtype == data.dtype:
                continue  # stays a sum of products until it is consumed: see products.py
            grad = grad.value()
        elif type(grad) is not np.ndarray:  # a Tensor, or the numpy scalar a ufunc gives on 0-d arrays
            grad = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
        if grad.shape != data.shape:
            grad = _unbroadcast(node, i, grad, data.shape)
        if grad.dtype != data.dtype:
            grad = grad.astype(data.dtype)
        grads[i] = grad
    return grads


def _unbroadcast(node: Function, i: int, grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum a gradient shaped like a broadcast result back to the input's shape: the adjoint of broadcasting."""
    axes = unbroadcast_axes(grad.shape, shape)
    if axes is None:
        raise GradientError(
            f"{type(node).__name__}.backward returned a gradient of shape {fmt_shape(grad.shape)} "
            f"for input {i} of shape {fmt_shape(shape)}"
        )
    total = grad.sum(axis=axes, keepdims=True).reshape(shape)
    return total if isinstance(total, Tensor | np.ndarray) else np.asarray(total)


def _accumulate(grads: dict[Tensor, Any], summed: set[Tensor], tensor: Tensor, grad: Any) -> None:
    """Add a gradient contribution: a tensor used k times receives k terms."""
    previous = grads.get(tensor)
    if previous is None:
        grads[tensor] = grad  # may be shared (Add hands out one array twice): not ours to write
    elif isinstance(previous, Tensor):
        grads[tensor] = previous + grad  # recorded, so that the sum itself can be differentiated
    elif type(previous) is ProductSum:  # made for this pass, so ours: the new term joins it
        previous.add(grad)
    elif type(grad) is ProductSum:
        grad.add(previous)
        grads[tensor] = grad
        summed.discard(tensor)
    elif tensor in summed:
        np.add(previous, grad, out=previous)  # our own buffer: add in place (a shared weight gets T terms)
    else:
        total = previous + grad
        if type(total) is np.ndarray:
            grads[tensor] = total
            summed.add(tensor)
        else:
            grads[tensor] = np.asarray(total)


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
    if grad_outputs is None or isinstance(grad_outputs, Tensor | np.ndarray | np.generic | int | float):
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
                f"single-element output. Pass {'grad_outputs' if op == 'grad' else 'grad'}= with the same shape "
                "(or reduce it first, e.g. .sum())."
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
    backward: Callable[[Function, tuple[Tensor, ...], tuple[Tensor | None, ...]], None] | None = None,
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
