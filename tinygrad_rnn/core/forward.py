"""forward.py — forward mode: push tangents through a recorded tape. Read after ops.py.

Reverse mode (engine.py) walks the tape latest-first and calls each node's VJP;
forward mode walks the same tape earliest-first and calls each node's JVP,
`jvp(ctx, *tangents)`, which ops.py defines beside every VJP. A tangent says how
a tensor moves when the inputs move along a chosen direction v:

    dy = J_f(x) dx       (a Jacobian-vector product; reverse mode computes u^T J)

Design. The tangents are not carried by the Tensors during the forward pass
(the dual-number design of `torch.autograd.forward_ad`); the function is run
once with recording on, and the recorded nodes are then visited in recording
order, which is topological. That needs no change to `Function.apply` or to
the Tensor, and every node still holds what forward saved (`ctx.saved_tensors`,
`ctx.mask`, ...), which is exactly what its JVP reads. The price is the tape:
the forward's intermediates are kept until the push is done, as a VJP keeps
them; RTRL (nn/through_time.py) therefore records and pushes one time step at
a time, so its memory does not grow with T.

Every tangent has a leading axis of K directions, (K, *x.shape): one walk
pushes K tangents, which is how `jacfwd` builds a Jacobian in one pass and
RTRL carries dh/dθ for all parameters at once.

    >>> import tinygrad_rnn as tg
    >>> x = tg.Tensor([1.0, 2.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> (dy,) = push_tangents([y], [x], [np.array([[1.0, 0.0], [0.0, 1.0]])])
    >>> dy.numpy()          # two directions: dy/dx_0 and dy/dx_1
    array([2., 4.])

With `create_graph=True` the JVPs run on Tensors and are recorded, so the
tangents can be differentiated again (reverse over forward); otherwise they
run on ndarrays with nothing recorded, as a plain backward pass does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .engine import Function, enable_grad, no_grad, topological_order
from .errors import GradientError, ShapeError, fmt_shape
from .tensor import Tensor


def push_tangents(
    outputs: Sequence[Tensor],
    inputs: Sequence[Tensor],
    tangents: Sequence[Any],
    *,
    create_graph: bool = False,
) -> tuple[Tensor, ...]:
    """The tangents of `outputs` when `inputs` move along `tangents`, on the recorded tape.

    Forward mode's `tg.grad`: each tangent is (K, *input.shape), K directions;
    the result has one (K, *output.shape) Tensor per output (zeros where no
    input reaches it). Nodes recorded before an input, or not downstream of
    one, are skipped; so is the node that made an input (its tangent is given).
    """
    if len(inputs) != len(tangents):
        raise ShapeError(f"jvp: got {len(tangents)} tangents for {len(inputs)} inputs")
    known: dict[Tensor, Any] = {}
    count = None
    for i, (x, t) in enumerate(zip(inputs, tangents, strict=True)):
        t = _as_value(t, create_graph)
        if t.shape[1:] != x.shape or (count is not None and t.shape[0] != count):
            raise ShapeError(
                f"jvp: tangent {i} has shape {fmt_shape(t.shape)} for an input of shape {fmt_shape(x.shape)}; "
                "expected (K, *input.shape), with the same K (number of directions) for every input"
            )
        count = t.shape[0]
        known[x] = t if t.dtype == x.dtype else t.astype(x.dtype)
    assert count is not None, "jvp needs at least one input"
    seeded = {x.grad_fn for x in inputs if x.grad_fn is not None}
    with enable_grad() if create_graph else no_grad():
        for tensor in topological_order(outputs):  # raises if backward() already freed part of the graph
            node = tensor.grad_fn
            if node in seeded:
                continue
            ins = [known.get(p) if isinstance(p, Tensor) else None for p in node.parents]
            if all(t is None for t in ins):
                continue
            outs = _node_outputs(node, tensor)
            for out, t in zip(outs, _call_jvp(node, ins, outs, count, create_graph), strict=True):
                if out is not None and t is not None:
                    known[out] = t
    result = []
    for out in outputs:
        t = known.get(out)
        if t is None:
            t = np.zeros((count, *out.shape), out.dtype)
        result.append(t if isinstance(t, Tensor) else Tensor._make(np.asarray(t), None))
    return tuple(result)


def _as_value(tangent: Any, create_graph: bool) -> Any:
    """A tangent as the walk carries it: a Tensor when recording, else an ndarray."""
    if create_graph:
        return tangent if isinstance(tangent, Tensor) else Tensor._make(np.asarray(tangent), None)
    return np.asarray(tangent.data if isinstance(tangent, Tensor) else tangent)


def _node_outputs(node: Function, tensor: Tensor) -> list[Tensor | None]:
    """The node's outputs (None for one that has been freed: no one reads its tangent)."""
    if node.outputs is None:
        return [tensor]
    return [ref() for ref in node.outputs]


def _call_jvp(
    node: Function, tangents: list[Any], outs: list[Tensor | None], count: int, create_graph: bool
) -> list[Any]:
    """Run one JVP, and bring each output tangent to (count, *output.shape) and the output's dtype."""
    rule = getattr(type(node), "jvp", None)
    if rule is None:
        raise GradientError(
            f"forward mode: {type(node).__name__} defines no jvp(ctx, *tangents), so no tangent can pass "
            f"through {node.name}; add one beside its backward (docs/two-modes.md shows how)"
        )
    wrap = not create_graph and not node.backward_on_arrays  # a user's rule written with Tensor methods
    if wrap:
        tangents = [None if t is None else Tensor._make(t, None) for t in tangents]
    raw = rule(node, *tangents)
    results = list(raw) if isinstance(raw, tuple | list) else [raw]
    if len(results) != len(outs):
        raise GradientError(f"{type(node).__name__}.jvp returned {len(results)} tangent(s) for {len(outs)} output(s)")
    for i, (t, out) in enumerate(zip(results, outs, strict=True)):
        if t is None or out is None:
            continue
        if create_graph:
            t = t if isinstance(t, Tensor) else Tensor._make(np.asarray(t), None)
        else:
            t = np.asarray(t.data if isinstance(t, Tensor) else t)
        expected = (count, *out.shape)
        if t.shape != expected:
            t = _broadcast(node, i, t, expected)
        if t.dtype != out.dtype:
            t = t.astype(out.dtype)
        results[i] = t
    return results


def _broadcast(node: Function, i: int, tangent: Any, shape: tuple[int, ...]) -> Any:
    """A tangent shaped like a broadcast operand, copied to the output's shape: broadcasting's own JVP
    (reverse mode sums instead, in the engine)."""
    from .ops import BroadcastTo

    if tangent.ndim == len(shape) and tangent.shape[0] == shape[0]:
        try:
            np.broadcast_shapes(tangent.shape, shape)
            return BroadcastTo.apply(tangent, shape=shape)
        except ValueError:
            pass
    raise GradientError(
        f"{type(node).__name__}.jvp returned a tangent of shape {fmt_shape(tangent.shape)} for output {i}; "
        f"expected (K, *output.shape) = {fmt_shape(shape)}"
    )
