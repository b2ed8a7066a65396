"""inspect/memory.py — how many bytes the tape keeps alive for backward, in total and per time step.

Read after tape.py. Backprop through time must keep every step's activations
until backward() reaches them; `memory(loss)` shows that cost per step tag, and
comparing it with a truncated run (`h = h.detach()` every k steps) shows what
truncation frees. Only reads the graph: `tensor._node`, the node's parents,
saved values and attributes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core import engine
from ..core.tensor import Tensor
from .tape import Trace, _parents, _roots, graph_values


@dataclass
class MemoryReport:
    """Bytes the tape keeps alive for backward. See `memory` for exactly what is counted."""

    total: int
    outputs: int  # outputs of recorded operations
    saved: int  # arrays saved with save_for_backward that are no op's output
    ctx: int  # other ndarrays that ops keep as attributes (masks, indices, ...)
    by_step: dict[Any, int]  # step tag -> bytes (None: recorded outside any step)
    leaves: int  # leaf arrays the tape refers to; not in `total` (they live without the tape)
    nodes: int

    def __str__(self) -> str:
        lines = [
            f"tape keeps {_bytes(self.total)} alive over {self.nodes} nodes "
            f"(outputs {_bytes(self.outputs)}, saved {_bytes(self.saved)}, ctx {_bytes(self.ctx)}); "
            f"leaves it refers to: {_bytes(self.leaves)}"
        ]
        for step, n in self.by_step.items():
            lines.append(f"  {'untagged' if step is None else f'step {step}'}: {_bytes(n)}")
        return "\n".join(lines)


def memory(tensor_or_trace: Tensor | Trace) -> MemoryReport:
    """What the graph behind a tensor keeps in memory so that backward() can run.

    Counted, walking the live graph from the tensor (from every entry, for a Trace):

    - the output array of every recorded operation still reachable;
    - every array saved with `save_for_backward` (an input, or a constant);
    - every ndarray held as an attribute of a node (`ctx.mask = ...`), also
      inside tuples and lists (e.g. an advanced index).

    Each buffer counts once, at its full size: views (reshape, broadcast_to,
    a slice) are traced back through `.base` to the array that owns the
    memory, and that array's id is the key. A buffer is charged to the first
    node, in recording order, that refers to it, and to that node's step tag.
    Leaf arrays (parameters, inputs) are reported apart and not in `total`,
    since they stay alive without the tape. After backward() frees the graph,
    a node drops its parents and saved values, so only what the caller still
    holds is counted.
    """
    if isinstance(tensor_or_trace, Trace):
        # A trace holds every tensor it lists, so all of them count, not only what the roots reach.
        roots = [e.tensor for e in tensor_or_trace]
    else:
        roots = _roots("memory", tensor_or_trace)
    order = engine.topological_order(roots, stop_at_freed=True)
    outputs: dict[int, list[Tensor]] = {}  # id(node) -> its outputs in the graph (several for unbind, split)
    for t, _ in graph_values(roots, order):
        outputs.setdefault(id(t._node), []).append(t)
    leaf_buffers: dict[int, int] = {}
    for t in order:
        for p in _parents(t):
            if p is not None and p._node is None:
                base = _base(p.data)
                leaf_buffers[id(base)] = base.nbytes
    seen = set(leaf_buffers)
    sizes = {"outputs": 0, "saved": 0, "ctx": 0}
    by_step: dict[Any, int] = {}
    for t in order:
        node = t._node
        assert node is not None
        step = node.tags.get("step")
        for kind, array in _node_arrays(outputs[id(node)], node):
            base = _base(array)
            if id(base) in seen:
                continue
            seen.add(id(base))
            sizes[kind] += base.nbytes
            by_step[step] = by_step.get(step, 0) + base.nbytes
    total = sum(sizes.values())
    return MemoryReport(total, by_step=by_step, leaves=sum(leaf_buffers.values()), nodes=len(order), **sizes)


def _node_arrays(outs: list[Tensor], node: engine.Function) -> Iterator[tuple[str, np.ndarray]]:
    """(kind, array) for every array the node holds: its outputs, saved values and ndarray attributes."""
    for out in outs:
        yield "outputs", out.data
    for value in node._saved:
        if isinstance(value, tuple):  # (input Tensor, the array forward saw)
            yield "saved", value[1]
        elif isinstance(value, np.ndarray):
            yield "saved", value
    stack = list(vars(node).values())
    while stack:
        value = stack.pop()
        if isinstance(value, np.ndarray):
            yield "ctx", value
        elif isinstance(value, tuple | list):
            stack.extend(value)


def _base(array: np.ndarray) -> np.ndarray:
    """The array that owns the memory a view looks at."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"
