"""checkpoint.py — `tg.checkpoint(fn, *args)`: keep fn's inputs, not its intermediates; recompute them in backward.

Read after forward.py. This is `torch.utils.checkpoint`'s contract and
`jax.checkpoint`'s idea: during the forward pass fn's graph is dropped as soon
as its outputs are known, so the memory fn's intermediates would hold is not
held; the backward pass runs fn again, with recording on, and takes the VJP of
that fresh graph. Same arithmetic twice, so the same gradients, for about one
more forward pass of fn.

It is an ordinary `Function` whose VJP writes no derivative: it reruns fn on
the node's own inputs, with recording on, and answers with that fresh graph (a
`Subgraph`, backward.py), which the backward pass walks in the node's place.
So every VJP of fn's graph adds into the pass's own gradients, in the order the
pass would have added them had fn's graph been kept: the gradients are those of
the un-checkpointed graph, bit for bit (a weight's sum over fn's uses is not
summed apart first and then added once). Tensors that fn uses without
receiving them (a layer's parameters, or any tensor made before fn ran) are
found by running fn once with recording on and reading its graph's inputs;
they become inputs of the checkpoint node, so the pass reaches them after it
(nothing is written to `.grad` behind its back).

    >>> import tinygrad_rnn as tg
    >>> w = tg.Tensor([2.0, 3.0], requires_grad=True)
    >>> x = tg.Tensor([1.0, 1.0], requires_grad=True)
    >>> y = tg.checkpoint(lambda t: (t * w).tanh(), x)
    >>> y.grad_fn.name
    'checkpoint'
    >>> dx, dw = tg.grad(y.sum(), [x, w])
    >>> bool(np.allclose(dw.numpy(), 1 - np.tanh([2.0, 3.0]) ** 2))
    True
    >>> plain = tg.grad((x * w).tanh().sum(), [x, w])        # without the checkpoint: the same bits
    >>> all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip((dx, dw), plain))
    True

Caveat (as in PyTorch): fn must compute the same thing when run again, so no
randomness that is not seeded by its inputs, and the values it closes over
must not change between forward and backward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .backward import Subgraph
from .engine import Function, enable_grad, is_grad_enabled, topological_order
from .errors import ArgumentError
from .forward import push_tangents
from .function import _sequence  # the tape's sequence numbers: fn's nodes are the ones numbered after a mark
from .tensor import Tensor


def checkpoint(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), recording one node that recomputes fn in backward instead of keeping its graph.

    fn returns a Tensor or a (nested) tuple of Tensors, such as an RNN's
    (output, h_n) or an LSTM's (output, (h_n, c_n)); the result has the same shape.
    """
    if not is_grad_enabled():  # nothing will be recorded, so there is nothing to recompute
        return fn(*args)
    start = next(_sequence)  # every node fn records has a larger sequence number
    with enable_grad():
        raw = fn(*[_detached(a) for a in args])
    leaves, structure = _flatten(raw)
    distinct = _distinct(leaves)
    closed_over = _closed_over(distinct, args, start)
    outs = Checkpoint.apply(*args, *closed_over, fn=fn, count=len(args), values=[t.data for t in distinct])
    outer = dict(zip(distinct, outs if isinstance(outs, tuple) else (outs,), strict=True))
    return _rebuild(structure, iter([outer[t] for t in leaves]))


class Checkpoint(Function):
    """outs = fn(args);   dL/d(args, closed-over tensors) = the VJPs of fn's graph, recomputed in backward
    and walked by the pass itself; d(outs) = the JVP of the recomputed graph."""

    fn: Callable[..., Any]
    count: int  # how many of the inputs are fn's arguments; the rest are the tensors it closes over

    def forward(ctx, *arrays: Any, fn: Callable[..., Any], count: int, values: list[np.ndarray]) -> Any:
        ctx.fn, ctx.count = fn, count
        return values[0] if len(values) == 1 else tuple(values)  # fn already ran, in checkpoint()

    backward_on_arrays = True  # it never reads the gradients: the pass sends them into the Subgraph

    def backward(ctx, *grad_outs: Any) -> Subgraph:
        """fn's graph, recomputed from this node's live inputs, for the pass to walk in this node's place."""
        parents = ctx.parents
        assert parents is not None
        with enable_grad():
            raw = ctx.fn(*parents[: ctx.count])
        return Subgraph(_distinct(_flatten(raw)[0]))

    def jvp(ctx, *tangents: Tensor | None) -> Any:
        inputs, outs = _recompute(ctx)
        moving = [i for i, t in enumerate(tangents) if t is not None]
        pushed = push_tangents(
            list(outs),
            [inputs[i] for i in moving],
            [tangents[i] for i in moving],
            create_graph=is_grad_enabled(),
        )
        return pushed[0] if len(pushed) == 1 else pushed


def _recompute(ctx: Checkpoint) -> tuple[list[Any], tuple[Tensor, ...]]:
    """Run fn again with recording on, for forward mode. Without create_graph its inputs are fresh leaves,
    so the new graph is ours alone; under create_graph they are the live inputs, so the outer graph
    continues through it."""
    parents = ctx.parents
    assert parents is not None
    count = ctx.count
    nested = is_grad_enabled()
    args = [a if nested or not isinstance(a, Tensor) else _watched_copy(a) for a in parents[:count]]
    with enable_grad():
        raw = ctx.fn(*args)
    return [*args, *parents[count:]], tuple(_distinct(_flatten(raw)[0]))


def _watched_copy(t: Tensor) -> Tensor:
    copy = Tensor._make(t.data, None)
    return copy.requires_grad_() if t.requires_grad else copy


def _detached(a: Any) -> Any:
    return Tensor._make(a.data, None) if isinstance(a, Tensor) else a


def _closed_over(outs: list[Tensor], args: tuple[Any, ...], start: int) -> list[Tensor]:
    """The tensors requiring grad that fn's graph read but fn did not make (parameters, earlier results).

    fn's nodes are those recorded after `start`; whatever they read from before is an input of fn."""
    found: dict[Tensor, None] = {}
    for tensor in topological_order(outs, after=start):
        for p in tensor.grad_fn.parents:
            if isinstance(p, Tensor) and p.requires_grad and (p.is_leaf or p.grad_fn.seq <= start):
                found[p] = None
    passed = {id(a) for a in args}
    return [t for t in found if id(t) not in passed]


def _distinct(outs: list[Tensor]) -> list[Tensor]:
    """fn's output tensors, each once: a tensor fn returns twice (an RNN's last output, which is also
    its state) is one output of the node, so its gradients meet in one sum, in the order they would
    without the checkpoint."""
    return list(dict.fromkeys(outs))


def _flatten(value: Any) -> tuple[list[Tensor], Any]:
    """The Tensors of a nested tuple, and its shape (a Tensor's place is marked by None)."""
    if isinstance(value, Tensor):
        return [value], None
    if isinstance(value, tuple | list):
        leaves: list[Tensor] = []
        shape = []
        for item in value:
            inner, s = _flatten(item)
            leaves += inner
            shape.append((len(inner), s))
        return leaves, shape
    raise ArgumentError(f"checkpoint: fn must return Tensors (or tuples of them), got {type(value).__name__}")


def _rebuild(structure: Any, leaves: Any) -> Any:
    if structure is None:
        return next(leaves)
    return tuple(_rebuild(s, leaves) for _, s in structure)
