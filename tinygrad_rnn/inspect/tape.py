"""inspect/tape.py — the recorded graph as a Wengert list, who uses each parameter, and what it costs.

`trace(loss)` walks the graph behind a tensor (with the engine's own
`topological_order`) and numbers every value once: the leaves first, then each
operation in the order it was recorded. Printed, it reads like a program::

    %0 = leaf   x0          (2, 3) float64
    %1 = param  W           (3, 4) float64
    %2 = matmul(%0, %1)     (2, 4) float64   [step 0]
    %3 = unbind(%2)[0]      (4,) float64

A node with several outputs (`unbind`, `split`) gets one entry per output the
graph uses, each marked with its output number, as `%3` above.

`usage(trace)` counts, for each parameter, the edges leaving it: each is one
gradient term that backward() adds into `.grad`, so an RNN weight used at T
steps gets T terms. `memory(loss)` adds up the arrays the tape keeps alive
for backward, per time step, so the effect of truncating BPTT is visible.

Nothing here changes how the engine records or runs: these functions only read
`tensor._node`, `node.parents`, `node.tags` and the node's attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import engine
from ..core.errors import DTypeError, GradientError, fmt_shape
from ..core.tensor import Tensor
from ..nn.module import Module, Parameter

# ---------------------------------------------------------------- the trace


@dataclass
class Entry:
    """One numbered value of a trace: a leaf (`kind` "param" or "leaf") or an operation ("op")."""

    index: int
    kind: str  # "param" | "leaf" | "op"
    op: str  # the op's name ("matmul", "tanh", ...); "param" or "leaf" for leaves
    name: str | None  # a leaf's name; None for operations
    tensor: Tensor
    inputs: tuple[int | None, ...] = ()  # indices of earlier entries; None for a non-Tensor argument
    input_shapes: tuple[tuple[int, ...], ...] = ()
    input_dtypes: tuple[np.dtype[Any], ...] = ()
    tags: Mapping[str, Any] = field(default_factory=dict)
    seq: int | None = None  # the node's recording number (engine.Function.seq); None for leaves
    output: int | None = None  # which output of a node with several outputs (unbind, split); else None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.tensor.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.tensor.dtype

    @property
    def step(self) -> Any:
        """The `step` tag from `engine.scope(step=t)`, or None."""
        return self.tags.get("step")

    @property
    def is_leaf(self) -> bool:
        return self.kind != "op"

    @property
    def node(self) -> engine.Function | None:
        return self.tensor._node

    def head(self) -> str:
        """The left column of the listing: `%2 = matmul(%0, %1)` or `%1 = param  W`."""
        if self.is_leaf:
            return f"%{self.index} = {self.kind:<6} {self.name}"
        args = ", ".join("-" if i is None else f"%{i}" for i in self.inputs)
        which = "" if self.output is None else f"[{self.output}]"
        return f"%{self.index} = {self.op}({args}){which}"

    def describe(self) -> str:
        """The right column: shape, dtype and tags."""
        return f"{fmt_shape(self.shape)} {self.dtype}{_format_tags(self.tags)}"

    def __str__(self) -> str:
        return f"{self.head()}  {self.describe()}"


def _format_tags(tags: Mapping[str, Any]) -> str:
    if not tags:
        return ""
    return "   [" + ", ".join(f"{k} {v}" for k, v in tags.items()) + "]"


class Trace:
    """The graph behind one or more tensors, as a Wengert list: iterate it, index it, print it.

    Holds the traced tensors (so their values can be looked at); drop the trace to free them.
    """

    def __init__(self, entries: list[Entry], roots: tuple[int, ...]) -> None:
        self.entries = entries
        self.roots = roots  # indices of the traced tensors

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Entry:
        return self.entries[index]

    @property
    def leaves(self) -> list[Entry]:
        return [e for e in self.entries if e.is_leaf]

    @property
    def params(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "param"]

    @property
    def ops(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == "op"]

    def find(self, tensor: Tensor) -> Entry:
        """The entry of `tensor` (by identity)."""
        for e in self.entries:
            if e.tensor is tensor:
                return e
        raise GradientError(f"trace: the tensor of shape {fmt_shape(tensor.shape)} is not part of this trace")

    def __str__(self) -> str:
        width = max((len(e.head()) for e in self.entries), default=0)
        lines = [f"{e.head():<{width}}  {e.describe()}" for e in self.entries]
        lines.append("return " + ", ".join(f"%{i}" for i in self.roots))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<Trace: {len(self.leaves)} leaves, {len(self.ops)} ops>"


def trace(
    tensor: Tensor | Sequence[Tensor],
    params: Module | None = None,
    names: Mapping[str, Tensor] | None = None,
) -> Trace:
    """The recorded graph that produced `tensor`, leaves first, then ops in recording order.

    Leaves are named from `params.named_parameters()` and from `names`
    (name -> Tensor); others get short names: `p0, p1, ...` for Parameters,
    `x0, x1, ...` for other leaves, and the value itself for a scalar constant.

    >>> import tinygrad_rnn as tg
    >>> x = tg.Tensor([[1.0, 2.0]], requires_grad=True)
    >>> print(trace((x * 3.0).tanh().sum(), names={"x": x}))
    %0 = leaf   x       (1, 2) float64
    %1 = leaf   3       () float64
    %2 = mul(%0, %1)    (1, 2) float64
    %3 = tanh(%2)       (1, 2) float64
    %4 = sum(%3)        () float64
    return %4
    """
    roots = _roots("trace", tensor)
    given = _given_names("trace", params, names)
    try:
        order = engine.topological_order(roots)
    except GradientError:
        raise GradientError(
            "trace: part of this graph was freed by backward(); trace before calling backward(), "
            "or pass retain_graph=True to backward()"
        ) from None
    index: dict[int, int] = {}
    entries: list[Entry] = []
    counters = {"p": 0, "x": 0}

    def add_leaf(t: Tensor) -> None:
        kind = "param" if isinstance(t, Parameter) else "leaf"
        name = given.get(id(t)) or _default_name(t, kind, counters)
        index[id(t)] = len(entries)
        entries.append(Entry(len(entries), kind, kind, name, t))

    # Leaves first, in the order the operations first use them, then the operations.
    for t in roots:
        if t._node is None and id(t) not in index:
            add_leaf(t)
    for out in order:
        for p in _parents(out):
            if p is not None and p._node is None and id(p) not in index:
                add_leaf(p)
    for out, output in graph_values(roots, order):
        node = out._node
        assert node is not None
        parents = _parents(out)
        index[id(out)] = len(entries)
        entries.append(
            Entry(
                len(entries),
                "op",
                node.name,
                None,
                out,
                inputs=tuple(None if p is None else index[id(p)] for p in parents),
                input_shapes=tuple(p.shape for p in parents if p is not None),
                input_dtypes=tuple(p.dtype for p in parents if p is not None),
                tags=node.tags,
                seq=node.seq,
                output=output,
            )
        )
    return Trace(entries, tuple(index[id(t)] for t in roots))


def graph_values(roots: Sequence[Tensor], order: Sequence[Tensor]) -> list[tuple[Tensor, int | None]]:
    """Every op output of the graph, in recording order, with its output number (None for a node with one).

    `topological_order` lists one tensor per node. A node with several outputs
    (a layer's `unbind` of its hoisted input projection) also gets every other
    output the graph uses: an input of a recorded op, or a root.
    """
    used = {id(t) for t in roots}
    for t in order:
        used.update(id(p) for p in _parents(t) if isinstance(p, Tensor))
    values: list[tuple[Tensor, int | None]] = []
    for t in order:
        node = t._node
        refs = getattr(node, "outputs", None)
        if refs is None:
            values.append((t, None))
            continue
        for k, ref in enumerate(refs):
            out = ref()
            if out is not None and (out is t or id(out) in used):
                values.append((out, k))
    return values


def _parents(t: Tensor) -> tuple[Tensor | None, ...]:
    node = t._node
    return () if node is None or node.parents is None else node.parents


def _roots(op: str, tensor: Any) -> list[Tensor]:
    roots = [tensor] if isinstance(tensor, Tensor) else list(tensor) if isinstance(tensor, list | tuple) else None
    if not roots or not all(isinstance(t, Tensor) for t in roots):
        raise DTypeError(f"{op}: expected a Tensor (or a list of Tensors), got {type(tensor).__name__}")
    return roots


def _given_names(op: str, params: Module | None, names: Mapping[str, Tensor] | None) -> dict[int, str]:
    """id(tensor) -> name, from a Module's named_parameters() and from a name -> Tensor mapping."""
    if params is not None and not isinstance(params, Module):
        raise DTypeError(f"{op}: params= must be a Module (to name its parameters), got {type(params).__name__}")
    if names is not None and not isinstance(names, Mapping):
        raise DTypeError(f"{op}: names= must map names to Tensors, got {type(names).__name__}")
    pairs: list[tuple[str, Tensor]] = list(params.named_parameters()) if params is not None else []
    for name, t in (names or {}).items():
        if not isinstance(t, Tensor):
            raise DTypeError(f"{op}: names[{name!r}] is a {type(t).__name__}, not a Tensor")
        pairs.append((name, t))
    return {id(t): str(name) for name, t in pairs}


def _default_name(t: Tensor, kind: str, counters: dict[str, int]) -> str:
    if kind == "leaf" and t.size == 1 and not t.requires_grad:
        return f"{t.data.item():g}"  # a constant such as the 3.0 in `x * 3.0` reads best as itself
    prefix = "p" if kind == "param" else "x"
    counters[prefix] += 1
    return f"{prefix}{counters[prefix] - 1}"


def _as_trace(op: str, tensor_or_trace: Any) -> Trace:
    return tensor_or_trace if isinstance(tensor_or_trace, Trace) else trace(_roots(op, tensor_or_trace))


# ---------------------------------------------------------------- usage


# Ops that only rearrange or relabel their one input. A layer that computes W.T once and
# uses it at every step (ours use matmul's transpose flag instead, but user code may not)
# has W.T collect the T gradient terms, which then reach W through one permute VJP: so
# usage() looks through these to count the terms that matter.
_ALIASES = frozenset({"permute", "reshape", "broadcastto", "cast"})


@dataclass
class ParamUsage:
    """How often one leaf that gets a gradient was used: one use = one gradient term added up for it."""

    name: str
    kind: str  # "param" or "leaf"
    shape: tuple[int, ...]
    uses: int
    steps: tuple[Any, ...]  # the step tag of each use, in recording order (None where untagged)
    ops: tuple[str, ...]  # the op of each use
    via: tuple[str, ...] = ()  # alias ops (transpose, reshape, ...) looked through on the way

    @property
    def per_step(self) -> dict[Any, int]:
        counts: dict[Any, int] = {}
        for s in self.steps:
            counts[s] = counts.get(s, 0) + 1
        return counts

    def __str__(self) -> str:
        steps = sorted({s for s in self.steps if s is not None})
        where = f" at steps {_ranges(steps)}" if steps else ""
        untagged = self.steps.count(None)
        if steps and untagged:
            where += f" and {untagged} untagged"
        via = f" (through {', '.join(self.via)})" if self.via else ""
        return f"{self.name} {fmt_shape(self.shape)}: used {self.uses} time(s){where}{via}"


class Usage(dict[str, ParamUsage]):
    """name -> ParamUsage; prints one line per parameter."""

    def __str__(self) -> str:
        return "\n".join(str(u) for u in self.values())


def usage(tensor_or_trace: Tensor | Trace) -> Usage:
    """For each parameter (and each other leaf that requires grad): how many uses, at which steps.

    The count is the number of gradient terms backward() adds up for that leaf
    (`x * x` counts two uses). For a weight shared by an unrolled RNN of T steps
    it is T per place the cell uses it. Alias ops applied to the leaf itself
    (`W.T`, a reshape, a cast) are looked through and listed in `via`: their
    output collects the terms, and one VJP hands the sum to the leaf.
    """
    tr = _as_trace("usage", tensor_or_trace)
    users: dict[int, list[Entry]] = {}
    counted: set[int | None] = set()
    for e in tr.ops:
        if e.seq in counted:  # another output of a node with several: one node uses each input once
            continue
        counted.add(e.seq)
        for i in e.inputs:
            if i is not None:
                users.setdefault(i, []).append(e)
    result = Usage()
    for leaf in tr.leaves:
        if not leaf.tensor.requires_grad:
            continue
        uses: list[Entry] = []
        via: list[str] = []
        stack = [leaf.index]
        while stack:
            for user in users.get(stack.pop(), []):
                if user.op in _ALIASES and len(user.inputs) == 1:
                    via.append(user.op)
                    stack.append(user.index)
                else:
                    uses.append(user)
        uses.sort(key=lambda e: e.index)
        assert leaf.name is not None
        result[leaf.name] = ParamUsage(
            leaf.name,
            leaf.kind,
            leaf.shape,
            len(uses),
            tuple(u.step for u in uses),
            tuple(u.op for u in uses),
            tuple(via),
        )
    return result


def _ranges(steps: Sequence[Any]) -> str:
    """[0, 1, 2, 5] -> "0-2, 5" (non-integer steps are listed as they are)."""
    if not all(isinstance(s, int) for s in steps):
        return ", ".join(str(s) for s in steps)
    parts: list[str] = []
    i = 0
    while i < len(steps):
        j = i
        while j + 1 < len(steps) and steps[j + 1] == steps[j] + 1:
            j += 1
        parts.append(str(steps[i]) if i == j else f"{steps[i]}-{steps[j]}")
        i = j + 1
    return ", ".join(parts)
