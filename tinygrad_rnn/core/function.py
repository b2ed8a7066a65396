"""function.py — a primitive operation and, once applied, one node of the tape. Read after mode.py.

Every primitive is a `Function` subclass. `Function.apply` runs its `forward`
on plain ndarrays and, when some input requires grad, keeps the `Function`
instance as a node of the tape: it remembers its inputs (`parents`), whatever
`forward` saved, and a sequence number (the order of recording, which the
backward walk relies on: see backward.py).

Dependencies run one way: tensor.py imports ops.py, which imports this module;
this module never imports tensor.py. It still has to make Tensors (the outputs
of `apply`, and saved values handed to a VJP), so tensor.py hands its class
over once, at import, as `Function.tensor_class`: the dependency is inverted,
not circular.
"""

from __future__ import annotations

import itertools
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .errors import DTypeError, GradientError, fmt_shape
from .mode import _GradMode, _Scope, forward_observers

if TYPE_CHECKING:  # annotations only; at run time the class is Function.tensor_class
    from .tensor import Tensor


_sequence = itertools.count()
_OUTPUT = object()  # marks "the output of this node" among saved values


class _Tracing:
    """The recorder of `tg.compile` (tinygrad_rnn/compile/record.py) while it records a call, else None.

    The engine tells it each primitive it applies and each step of a plain backward pass;
    when nothing records, that costs one attribute test per op."""

    tracer: Any = None


class Function:
    """A primitive operation and, once applied, one node of the tape.

    Subclasses define two methods, with `ctx` (the node itself) first::

        class Exp(Function):
            '''y = exp(x);   dL/dx = dL/dy * y'''
            def forward(ctx, x):             # ndarrays in, ndarray out
                y = np.exp(x)
                ctx.save_for_backward(y)
                return y
            def backward(ctx, grad_out):     # Tensors in, Tensors (or arrays) out
                (y,) = ctx.saved_tensors
                return grad_out * y

    and are called as `Exp.apply(x)`. Positional Tensor arguments become
    ndarrays for `forward`; keyword arguments are passed through unchanged
    and are never differentiated. `backward` returns one gradient per
    positional argument (None where there is none). A gradient shaped like a
    broadcast result is summed back to the input's shape by the engine, so
    ops never undo broadcasting themselves.

    What `backward` receives: Tensors (its gradients and `saved_tensors`),
    unless the class sets `backward_on_arrays = True`. That promises the VJP
    uses only operators, `.reshape`/`.sum`/`.astype`/`.shape` and `Op.apply`,
    which mean the same on ndarrays: then a plain backward pass hands it the
    very ndarrays (no Tensor per intermediate; nothing is recorded there
    anyway), and `backward(create_graph=True)` hands it Tensors, so the VJP is
    itself recorded. The built-in ops all do. `Op.apply` on plain arrays only
    is just `forward`.

    A `forward` that returns a tuple of arrays makes a node with several
    outputs: `apply` returns a tuple of Tensors, and `backward` receives one
    gradient per output (zeros for an output that no gradient reached).

    Save inputs or the output by passing the very array `forward` received or
    returned: as Tensors they come back as the live ones, so the VJP stays
    differentiable (higher-order gradients). Any other saved array comes back
    as a constant. A recorded op's output array is read-only for good, and
    saved arrays that belong to a leaf (requiring grad or not) are read-only
    while a graph holds them (see `_read_only` and `_Frozen`); rebind `.data`
    instead (as the optimizers do) and recorded graphs keep the values they saw.

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

    # The Tensor class, set by tensor.py when it is imported (see the module docstring).
    tensor_class: ClassVar[type[Tensor]]

    # See the class docstring: True when `backward` means the same on ndarrays and on Tensors.
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

    def backward(ctx, grad_out: Any) -> Any:  # a node with several outputs gets one argument per output
        raise NotImplementedError(f"{type(ctx).__name__} defines no backward()")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        Tensor = cls.tensor_class
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
            return _apply_several(ctx, raw, args, arrays, kwargs)
        # A ufunc on 0-d arrays returns a numpy scalar; asarray makes a new array, but `raw` is still the output.
        out_data = raw if type(raw) is np.ndarray else np.asarray(raw)
        if _Tracing.tracer is not None:
            _Tracing.tracer.forward(ctx, args, arrays, kwargs, (out_data,), record)
        if not (record and out_data.dtype.kind == "f"):
            if record and out_data.dtype.kind == "c":
                raise _complex_error(ctx, out_data.dtype)
            return Tensor._make(out_data, None)
        for a in arrays:  # `_read_only`, inlined: this runs once per recorded op
            if a is out_data:
                out_data = out_data.view()
                break
        out_data.setflags(write=False)
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
        """The saved values, in the form this node's `backward` receives its gradients (class docstring):
        the very ndarrays forward saw in a plain pass of a `backward_on_arrays` op, else Tensors
        (a saved input or output as the live, differentiable Tensor; anything else as a constant)."""
        if ctx.parents is None:
            raise _freed_error(ctx)
        if ctx.backward_on_arrays and not _GradMode.enabled:
            return ctx._saved
        if not ctx._saved:
            raise GradientError(
                f"{type(ctx).__name__}.backward reads ctx.saved_tensors, but its forward saved nothing; "
                "call ctx.save_for_backward(...) in forward with the arrays backward needs"
            )
        Tensor = ctx.tensor_class
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
        """Drop the saved values and inputs: called once backward has used this node.

        Values a forward kept as plain attributes of ctx (masks, signs, flags)
        stay until the node itself is collected."""
        ctx.parents = None
        ctx._saved = ctx._sources = ()
        ctx._frozen = None


def _apply_several(
    ctx: Function, raw: tuple[Any, ...], args: tuple[Any, ...], inputs: list[Any], kwargs: dict[str, Any]
) -> tuple[Tensor, ...]:
    """The rest of `Function.apply` for a forward that returned several arrays."""
    arrays = [np.asarray(a) for a in raw]
    record = True in ctx.needs_input_grad and all(a.dtype.kind == "f" for a in arrays)
    if _Tracing.tracer is not None:
        _Tracing.tracer.forward(ctx, args, inputs, kwargs, tuple(arrays), record)
    if True in ctx.needs_input_grad and not record:
        for a in arrays:
            if a.dtype.kind == "c":
                raise _complex_error(ctx, a.dtype)
    if record:
        inputs = [a.data if isinstance(a, ctx.tensor_class) else a for a in args]
        arrays = [_read_only(a, inputs) for a in arrays]
    outs = tuple(ctx.tensor_class._make(a, ctx if record else None) for a in arrays)
    if record:
        ctx.parents = args
        ctx.outputs = tuple(weakref.ref(t) for t in outs)
        ctx.seq = next(_sequence)
        ctx.tags = _Scope.tags
        if ctx._saved:
            _find_sources(ctx, args, None, None)  # saved outputs come back as constants
        ctx.output_meta = [(a.shape, a.dtype) for a in arrays]  # for zeros when an output got no gradient
        for observe in forward_observers:
            for out in outs:
                observe(ctx, out)
    return outs


def _read_only(output: np.ndarray, inputs: list[Any]) -> np.ndarray:
    """A recorded op's output array, made read-only for good (see the note below `_find_sources`).

    A forward that returned one of its inputs unchanged gets a new view of it, so the input
    itself stays writable."""
    for a in inputs:
        if a is output:
            output = output.view()
            break
    output.setflags(write=False)
    return output


def _find_sources(node: Function, args: tuple[Any, ...], raw: Any, out: Tensor | None) -> None:
    """Where each saved array came from: the output, an input Tensor, or nowhere (a constant).

    Found now, because `.data` may be rebound before backward. A saved leaf's
    array is frozen for as long as this node lives (see `_Frozen`)."""
    Tensor = node.tensor_class
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
                if a._node is None:  # a leaf: a parameter, an input, a constant
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


# A write into an array a node saved, between forward and backward, would silently
# change the gradient. Two rules stop it:
# - The output array of every recorded op is read-only from birth, for good (`_read_only`):
#   it is the op's own fresh array (or a view of an input), nobody else has a reference
#   to write through, and one flag per output costs far less than a token per saved
#   intermediate (measured in benchmarks/RESULTS.md). Tensor-level `+=`, `x[i] = v` and
#   `zero_()` rebind `.data` to an updated copy, so they still work on such tensors.
# - A leaf's array (a parameter, an input, a constant such as a target) is what users
#   write to in place (`x.numpy()[0] = 100`), so while some live node has saved it, it
#   is read-only. Every such node holds the array's one `_Frozen` token; when the last of
#   them is released or collected, reference counting drops the token and it makes the
#   array writable again.
# Ops never write to their inputs. Not covered (numpy keeps the flag per array object and
# cannot revoke it from one that already exists; a fingerprint would cost O(n) per saved
# array): writes through an array made before the forward pass that shares memory with a
# saved one, such as a view of a leaf taken earlier, or a leaf's own array when an op saved
# a view of it.
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


def _complex_error(node: Function, dtype: np.dtype[Any]) -> DTypeError:
    # Gradients of complex functions need the conjugate convention, which no VJP here follows:
    # refusing is better than a silently wrong (unconjugated) gradient.
    return DTypeError(
        f"{node.name}: its result has dtype {dtype}, and complex tensors cannot be differentiated; "
        "compute on the real and imaginary parts as separate real tensors, or detach() the inputs first"
    )
