"""inspect/dot.py — a trace as Graphviz DOT text, unrolled or folded over time. Read after tape.py.

Pipe the text to `dot -Tsvg` (Graphviz is not needed to produce it). Three kinds
of value look different: parameters are filled blue boxes, other leaves grey
ellipses, operations white rounded boxes; the traced output has a double border.

Unrolled (default): nodes tagged `step=t` sit in `subgraph cluster_step_t`. A
weight shared by every step is one node outside the clusters, with one edge
into each step: the edges that backward() will turn into gradient terms.

Folded (`fold_steps=True`): the k-th op of every step becomes one node, as in
the textbook RNN picture. An edge from one step into the next (the recurrence)
is dashed; a label "×T" says how many unrolled edges one drawn edge stands for.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import fmt_shape
from ..core.tensor import Tensor
from .tape import Entry, Trace, _as_trace

_STYLE = {
    "param": 'shape=box, style=filled, fillcolor="#a6cee3"',
    "leaf": 'shape=ellipse, style=filled, fillcolor="#e0e0e0"',
    "op": 'shape=box, style="rounded"',
}


def to_dot(tensor_or_trace: Tensor | Trace, fold_steps: bool = False) -> str:
    """Graphviz DOT text for the graph behind a tensor (or a trace made with `trace`)."""
    tr = _as_trace("to_dot", tensor_or_trace)
    return _folded(tr) if fold_steps else _unrolled(tr)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(e: Entry, extra: str = "", output: bool = True) -> str:
    top = str(e.name) if e.is_leaf else e.op
    if output and e.output is not None:
        top += f"[{e.output}]"  # one output of a node with several (unbind, split)
    return _quote(f"{top}\n{fmt_shape(e.shape)}{extra}").replace("\n", "\\n")


def _node_line(node_id: str, e: Entry, roots: tuple[int, ...], extra: str = "", output: bool = True) -> str:
    border = ", peripheries=2" if e.index in roots else ""
    return f"{node_id} [label={_label(e, extra, output)}, {_STYLE[e.kind]}{border}];"


def _cluster_id(step: Any) -> str:
    """A DOT identifier for a step tag: `cluster_step_3`."""
    return "cluster_step_" + "".join(c if c.isalnum() else "_" for c in str(step))


def _home_steps(tr: Trace) -> dict[int, Any]:
    """The step each entry is drawn in: an op's own tag; for a non-parameter leaf, or an untagged
    output of a node with several (a layer's unbind of its input projection), the step of its
    users when they all share one (so x_t sits inside step t); else None (outside clusters)."""
    users: dict[int, set[Any]] = {}
    for e in tr.ops:
        for i in e.inputs:
            if i is not None:
                users.setdefault(i, set()).add(e.step)
    home: dict[int, Any] = {}
    for e in tr:
        steps = users.get(e.index, set())
        follows_users = e.kind == "leaf" or (e.output is not None and e.step is None)
        home[e.index] = e.step if e.kind == "op" and not follows_users else None
        if follows_users and len(steps) == 1:
            home[e.index] = next(iter(steps))
    return home


def _header() -> list[str]:
    return ["digraph tape {", "  rankdir=LR;", '  node [fontname="monospace", fontsize=10];']


def _unrolled(tr: Trace) -> str:
    home = _home_steps(tr)
    lines = _header()
    clusters: dict[Any, list[str]] = {}
    for e in tr:
        line = _node_line(f"n{e.index}", e, tr.roots)
        if home[e.index] is None:
            lines.append("  " + line)
        else:
            clusters.setdefault(home[e.index], []).append(line)
    for step, members in clusters.items():
        lines.append(f"  subgraph {_cluster_id(step)} {{")
        lines.append(f"    label={_quote(f'step {step}')}; style=dashed;")
        lines.extend("    " + m for m in members)
        lines.append("  }")
    for e in tr.ops:
        lines.extend(f"  n{i} -> n{e.index};" for i in e.inputs if i is not None)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _folded(tr: Trace) -> str:
    home = _home_steps(tr)
    # Each entry gets a key; entries of different steps with the same key become one node.
    # Within a step, the k-th op of a kind and shape (and the k-th step-local leaf of a shape)
    # of the same module line up with those of the other steps.
    # A leaf has no tags of its own: it lines up by the tags of its first user (its layer's module).
    key_of: dict[int, tuple[Any, ...]] = {}
    position: dict[tuple[Any, ...], int] = {}
    first_user: dict[int, Entry] = {}
    for e in tr.ops:
        for i in e.inputs:
            if i is not None:
                first_user.setdefault(i, e)
    for e in tr:
        step = home[e.index]
        if step is None:
            key_of[e.index] = ("entry", e.index)
            continue
        tags = first_user[e.index].tags if e.is_leaf else e.tags
        others = tuple(sorted((k, repr(v)) for k, v in tags.items() if k != "step"))
        slot = (e.kind, others, e.op, e.shape, step)  # the k-th `add (1, 3)` of a step lines up with the next step's
        k = position.get(slot, 0)
        position[slot] = k + 1
        key_of[e.index] = (*slot[:-1], k)
    members: dict[tuple[Any, ...], list[Entry]] = {}
    for e in tr:
        members.setdefault(key_of[e.index], []).append(e)
    ids = {key: f"n{group[0].index}" for key, group in members.items()}

    lines = _header()
    for key, group in members.items():
        steps = [home[e.index] for e in group]
        extra = f"\n×{len(group)} (steps {steps[0]}..{steps[-1]})" if len(group) > 1 else ""
        same_output = len({e.output for e in group}) == 1  # else "unbind[0]" would misname outputs 1, 2, ...
        lines.append("  " + _node_line(ids[key], group[0], tr.roots, extra, same_output))
    edges: dict[tuple[str, str, bool], int] = {}
    for e in tr.ops:
        for i in e.inputs:
            if i is None:
                continue
            src, dst = home[i], home[e.index]
            recurrent = src is not None and dst is not None and src != dst
            edge = (ids[key_of[i]], ids[key_of[e.index]], recurrent)
            edges[edge] = edges.get(edge, 0) + 1
    for (src_id, dst_id, recurrent), count in edges.items():
        attrs = [f'label="×{count}"'] if count > 1 else []
        if recurrent:
            attrs += ["style=dashed", "constraint=false"]  # from step t-1 into step t: a loop in the folded picture
        lines.append(f"  {src_id} -> {dst_id}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"
