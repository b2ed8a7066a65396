"""backward.py — the backward walk: from dL/d(root) to every leaf's gradient. Read after function.py.

`backward(roots, seeds)` visits the recorded nodes latest-first. Each node's
`backward` is its vector-Jacobian product (VJP): given dL/d(output) it returns
dL/d(input) for each input. A tensor used k times receives k terms, which are
added up; once every user of a tensor has run, its gradient is complete and
its own node runs. That is the whole algorithm:

    for out in reversed(topological_order(roots)):   # state = _Pass(...)
        grad_outs = [state.take(out)]                 # dL/d out, complete
        grads_in = vjp(node, grad_outs)               # state.run(out)
        for parent, g in zip(node.parents, grads_in):
            state.add(parent, g)                      # previous + new

Why latest-first is a valid order: a node is created after all of its inputs
exist, so its sequence number is larger than theirs. The recording order of
the tape is therefore already topological; we only need the nodes reachable
from the root, found by an explicit-stack search (no recursion, so a
100,000-step chain is fine), sorted by sequence number.

One representation of the gradient per pass, decided once (`_Pass.create_graph`):
a plain pass records nothing, so gradients travel as bare ndarrays and the
built-in VJPs run on them (no Tensor per intermediate); with
`create_graph=True` they are Tensors, every VJP is recorded, and the result
can be differentiated again. Users always see Tensors: the pass converts at one
boundary (`_Pass.outward` and `_Pass.inward`), for hooks, observers, user
Functions that did not opt into arrays, and the results.

A VJP may also return a value that is not an array but knows how to add
itself, such as MatMul's deferred sum of products (products.py): the walk only
ever adds gradients (`previous + new`, in place into a buffer the pass made),
and a node that consumes one gets it as an array (`np.asarray`).

A VJP may also answer with a `Subgraph` instead of gradients: tensors it has
just recomputed, with recording on, from the node's own inputs (checkpoint.py
does this). The pass then walks those tensors' nodes in the node's place, adding
into the same gradients as everywhere else, so the result is what the pass would
have computed had the recomputed graph been recorded in the first place: the
same contributions, added in the same order.

This module never imports tensor.py: it makes Tensors with
`Function.tensor_class` (see function.py).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .errors import DTypeError, GradientError, fmt_shape
from .function import Function, _freed_error, _Tracing
from .mode import _GradMode, backward_observers
from .shapes import unbroadcast_axes

if TYPE_CHECKING:  # annotations only; at run time the class is Function.tensor_class
    from .tensor import Tensor


def topological_order(roots: Sequence[Tensor], *, stop_at_freed: bool = False, after: int = -1) -> list[Tensor]:
    """One output tensor of every node reachable from `roots`, earliest-recorded first.

    Only nodes recorded after sequence number `after` are listed: tensors made
    earlier end the search, like leaves (a `Subgraph` is walked this way).

    A node whose inputs backward() already freed raises GradientError, or with
    `stop_at_freed=True` is listed and ends its branch of the search (the study
    tools look at half-freed graphs).
    """
    seen: set[Function] = set()
    stack: list[Any] = list(roots)  # parents go on as they are; leaves and constants are skipped when popped
    order: list[Tensor] = []
    while stack:
        tensor = stack.pop()
        node = getattr(tensor, "_node", None)  # None for leaves and for non-Tensor arguments
        if node is None or node in seen or node.seq <= after:
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


class Subgraph(NamedTuple):
    """A VJP's other possible answer: "differentiate these instead of me".

    `outputs` holds one tensor per output of the node, recomputed (recording
    on) from the node's inputs, after the node was recorded. The pass sends each
    output's gradient into its recomputed tensor and walks the nodes recorded
    since, in its own accumulators; they end at the node's inputs, whose nodes
    (older) the pass reaches later as usual.
    """

    outputs: Sequence[Tensor]


class _Pass:
    """The state of one backward pass: the gradients so far and what to do with them.

    grads      dL/d tensor for every tensor reached whose node has not run yet (and every leaf)
    owned      tensors whose gradient is a buffer this pass made, so adding into it in place is safe
    captured   gradients `grad()` asked for (`wanted`, by id), kept as they pass by
    """

    __slots__ = ("captured", "create_graph", "fill_retained", "grads", "owned", "tensor_class", "wanted")

    def __init__(self, create_graph: bool, capture: Sequence[Tensor], fill_retained: bool) -> None:
        self.create_graph = create_graph
        self.fill_retained = fill_retained
        self.tensor_class = Function.tensor_class
        self.grads: dict[Tensor, Any] = {}  # ndarrays in a plain pass, Tensors under create_graph
        self.owned: set[Tensor] = set()
        self.captured: dict[Tensor, Any] = {}
        self.wanted = set(map(id, capture))

    # ------------------------------------------------------------ the boundary

    def inward(self, value: Any) -> Any:
        """A gradient from outside (a seed, a hook's result, a user VJP's result) in this pass's form."""
        if isinstance(value, self.tensor_class):
            return value if self.create_graph else value.data
        value = np.asarray(value)  # a numpy scalar becomes a 0-d array
        return self.tensor_class._make(value, None) if self.create_graph else value

    def outward(self, grad: Any) -> Tensor:
        """A gradient shown outside (to hooks, observers, user VJPs, and as a result): always a Tensor."""
        return grad if self.create_graph else self.tensor_class._make(np.asarray(grad), None)

    # ------------------------------------------------------------ the three steps

    def add(self, tensor: Any, grad: Any) -> None:
        """Add one contribution to dL/d tensor: previous + new."""
        grads = self.grads
        previous = grads.get(tensor)
        if previous is None:
            grads[tensor] = grad  # may be shared (Add hands out one array twice): not ours to write into
        elif _Tracing.tracer is not None:  # tg.compile records this sum (out of place: the same values)
            grads[tensor] = _Tracing.tracer.add(previous, grad)
        elif tensor in self.owned:
            previous += grad  # our own buffer: add in place (a weight used at T steps gets T terms)
            grads[tensor] = previous  # `+=` may also have made a new value, e.g. array += deferred sum
        else:
            grads[tensor] = previous + grad
            if not self.create_graph:  # a sum of Tensors is recorded, so it is never added into in place
                self.owned.add(tensor)

    def take(self, tensor: Tensor | None) -> Any:
        """dL/d tensor, complete now that every user of `tensor` has run; None if none reached it.

        Hooks, `grad()`'s captures and retain_grad see it here, as a Tensor."""
        grad = self.grads.pop(tensor, None)  # type: ignore[arg-type]  # a dead weak reference gives None
        if grad is None:
            return None
        assert tensor is not None
        self.owned.discard(tensor)  # else the set would keep every such tensor alive to the end
        if type(grad) is not np.ndarray and not self.create_graph:
            # a deferred sum (products.py) or a numpy scalar: the VJP needs an array
            grad = np.asarray(grad) if _Tracing.tracer is None else _Tracing.tracer.as_array(grad)
        if tensor._hooks:
            if _Tracing.tracer is not None:
                _Tracing.tracer.refuse("register_hook")
            grad = self.inward(tensor._run_hooks(self.outward(grad)))
        if self.wanted and id(tensor) in self.wanted:
            self.captured[tensor] = grad
        if tensor._retains_grad and self.fill_retained:
            if _Tracing.tracer is not None:
                _Tracing.tracer.refuse("retain_grad")
            tensor._accumulate_grad(self.outward(grad))
        return grad

    def run(self, out: Tensor) -> None:
        """Run the VJP of the node that made `out`, and add what it returns to the node's inputs."""
        node = out._node
        assert node is not None and node.parents is not None
        if node.outputs is None:  # one output: the common case
            grad = self.take(out)
            if grad is None:
                return
            reached = grad_outs = [grad]
        else:
            reached = [self.take(ref()) for ref in node.outputs]  # None where no gradient came
            if all(grad is None for grad in reached):
                return
            # An output no gradient reached contributes zeros.
            grad_outs = [
                self.inward(np.zeros(shape, dtype)) if grad is None else grad
                for grad, (shape, dtype) in zip(reached, node.output_meta, strict=True)
            ]
        grads_in = self.vjp(node, grad_outs)
        if isinstance(grads_in, Subgraph):
            self.splice(node, grads_in.outputs, reached)
            return
        if backward_observers:
            self.show(node, grad_outs, grads_in)
        grads = self.grads
        for parent, grad in zip(node.parents, grads_in, strict=True):
            if grad is None:
                continue
            if parent in grads:
                self.add(parent, grad)
            else:  # the first contribution, the common case: stored without a call
                grads[parent] = grad

    def splice(self, node: Function, outputs: Sequence[Tensor], grads: list[Any]) -> None:
        """Walk the recomputed `outputs` in `node`'s place (see Subgraph).

        Only gradients that reached an output are sent: a zero sent where none
        came would run nodes that would not have run, changing no value but the
        grouping of a weight's sum of products (products.py), hence its rounding."""
        same = len(outputs) == len(grads)
        if not same or any(g is not None and g.shape != t.shape for t, g in zip(outputs, grads, strict=True)):
            raise GradientError(
                f"{node.name}: recomputed in backward, it gave {len(outputs)} output(s) of shapes "
                f"{[fmt_shape(t.shape) for t in outputs]}, not what it gave in the forward pass; "
                "it must compute the same thing again"
            )
        for recomputed, grad in zip(outputs, grads, strict=True):
            if grad is not None and recomputed.requires_grad:
                self.add(recomputed, grad)
        order = topological_order(outputs, after=node.seq)
        while order:
            out = order.pop()
            self.run(out)
            if not self.create_graph:  # under create_graph the gradients' own graph runs through these nodes
                out._node.release()  # type: ignore[union-attr]  # every listed tensor has a node

    def show(self, node: Function, grad_outs: list[Any], grads_in: list[Any]) -> None:
        """Show one VJP to the backward observers, as Tensors."""
        shown_in = tuple(None if g is None else self.outward(g) for g in grads_in)
        for observe in backward_observers:
            observe(node, tuple(self.outward(g) for g in grad_outs), shown_in)

    def vjp(self, node: Function, grad_outs: list[Any]) -> list[Any] | Subgraph:
        """The node's VJP, each gradient brought to its input's shape and dtype (or an error naming the op)."""
        if self.create_graph or node.backward_on_arrays:
            raw = type(node).backward(node, *grad_outs)
        else:  # a VJP written for Tensors gets Tensors
            raw = type(node).backward(node, *[self.outward(g) for g in grad_outs])
        if type(raw) is Subgraph:
            return raw
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
            if self.create_graph or not node.backward_on_arrays:
                grad = self.inward(grad)
            shape = parents[i].data.shape
            if grad.shape != shape:  # shaped like a broadcast result: sum it back (the adjoint of broadcasting)
                axes = unbroadcast_axes(grad.shape, shape)
                if axes is None:
                    raise GradientError(
                        f"{type(node).__name__}.backward returned a gradient of shape {fmt_shape(grad.shape)} "
                        f"for input {i} of shape {fmt_shape(shape)}"
                    )
                grad = grad.sum(axis=axes, keepdims=True).reshape(shape)
            dtype = parents[i].data.dtype
            if grad.dtype != dtype:
                grad = grad.astype(dtype)
            grads[i] = grad
        if _Tracing.tracer is not None:
            _Tracing.tracer.vjp(node, grad_outs, raw, grads)
        return grads

    def results(self) -> dict[Tensor, Tensor]:
        """dL/d leaf for every leaf reached (its hooks run now), and every captured gradient."""
        result: dict[Tensor, Tensor] = {}
        if _Tracing.tracer is not None:
            self.grads = {leaf: _Tracing.tracer.leaf_grad(leaf, g) for leaf, g in self.grads.items()}
        for leaf, g in self.grads.items():
            result[leaf] = leaf._run_hooks(self.outward(g)) if leaf._hooks else self.outward(g)
        for t, g in self.captured.items():
            result[t] = self.outward(g)
        return result


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
    if _Tracing.tracer is not None:
        _Tracing.tracer.begin_pass(create_graph)
    state = _Pass(create_graph, capture, fill_retained)
    for root, seed in zip(roots, seeds, strict=True):
        state.add(root, state.inward(seed))
    order = topological_order(roots)
    recording, _GradMode.enabled = _GradMode.enabled, create_graph  # VJPs are recorded only under create_graph
    try:
        while order:
            out = order.pop()  # latest first; popping also lets each tensor be freed once used
            state.run(out)
            if not retain_graph:
                out._node.release()  # type: ignore[union-attr]  # every listed tensor has a node
    finally:
        _GradMode.enabled = recording
    return state.results()


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs) as a tuple with one Tensor per input; no `.grad` is touched.

    `grad_outputs` is dL/d(output): one value for every output, or a list or
    tuple with one per output (None where the output is a single element).

    >>> import tinygrad_rnn as tg
    >>> x = tg.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (dx,) = tg.grad((x * x).sum(), x)
    >>> dx.numpy()
    array([2., 4., 6.])
    """
    outs = list(outputs) if isinstance(outputs, Sequence) else [outputs]
    ins = list(inputs) if isinstance(inputs, Sequence) else [inputs]
    given = list(grad_outputs) if isinstance(grad_outputs, list | tuple) else [grad_outputs] * len(outs)
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
    Tensor = Function.tensor_class
    name = "grad_outputs" if op == "grad" else "grad"
    if not root.requires_grad:
        raise GradientError(
            f"{op}: the tensor of shape {fmt_shape(root.shape)} does not require grad and has no graph; "
            "did you create it under no_grad() or from tensors without requires_grad=True?"
        )
    if grad is None:
        if root.data.size != 1:
            raise GradientError(
                f"{op}: the tensor has shape {fmt_shape(root.shape)}; a gradient is implied only for a "
                f"single-element output. Pass {name}= with the same shape (or reduce it first, e.g. .sum())."
            )
        return Tensor._make(np.ones(root.data.shape, dtype=root.data.dtype), None)
    if not isinstance(grad, Tensor):
        values = np.asarray(grad)
        if values.dtype.kind not in "biuf":
            raise DTypeError(f"{op}: {name} must hold real numbers, got {type(grad).__name__} of dtype {values.dtype}")
        grad = Tensor(values, dtype=root.dtype)
    if grad.shape != root.shape:
        raise GradientError(
            f"{op}: {name} has shape {fmt_shape(grad.shape)} but the tensor has shape {fmt_shape(root.shape)}"
        )
    if grad.dtype.kind != "f":
        raise DTypeError(f"{op}: {name} must be floating point, got {grad.dtype}")
    return grad
