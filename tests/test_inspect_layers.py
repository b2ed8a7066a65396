"""The study tools on layer graphs: nn.RNN, LSTM and GRU, one or two layers, with and without lengths.

A layer hoists its input projection out of the loop and takes it apart with
`unbind`, a node with several outputs (LSTM and GRU also `split` their gates),
so these graphs exercise what the per-cell loops of test_inspect.py do not.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from test_inspect import parse_dot

import tinygrad_rnn as tg
from tinygrad_rnn.core import engine
from tinygrad_rnn.inspect import backward_trace, memory, to_dot, trace, usage
from tinygrad_rnn.nn import Module
from tinygrad_rnn.nn.recurrent import GRU, LSTM, RNN

T, B, D, H = 4, 3, 2, 3
KINDS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
LENGTHS = np.array([4, 2, 3])  # T = 4; sequences 1 and 2 finish early
CONFIGS = [
    ("rnn", 1, False),
    ("lstm", 1, False),
    ("gru", 1, False),
    ("rnn", 2, True),
    ("lstm", 2, True),
    ("gru", 2, False),
    ("gru", 1, True),
]
IDS = [f"{kind}-{n}l{'-lengths' if lengths else ''}" for kind, n, lengths in CONFIGS]


@pytest.fixture(autouse=True)
def _no_observer_left_behind() -> Iterator[None]:
    yield
    assert engine.forward_observers == [] and engine.backward_observers == []


def layer_loss(kind: str, num_layers: int, lengths: bool, steps: int = T) -> tuple[Module, tg.Tensor]:
    layer = KINDS[kind](D, H, num_layers=num_layers, rng=0)
    x = tg.Tensor(np.random.default_rng(1).normal(size=(steps, B, D)))
    out, _ = layer(x, None, LENGTHS if lengths else None)
    return layer, (out * out).sum()


def _nodes(loss: tg.Tensor) -> set[engine.Function]:
    return {t._node for t in engine.topological_order([loss]) if t._node is not None}


@pytest.mark.parametrize(("kind", "num_layers", "lengths"), CONFIGS, ids=IDS)
def test_trace_numbers_every_output_of_every_node(kind: str, num_layers: int, lengths: bool) -> None:
    layer, loss = layer_loss(kind, num_layers, lengths)
    tr = trace(loss, params=layer)

    assert {e.tensor._node for e in tr.ops} == _nodes(loss)
    for e in tr.ops:
        parents = e.tensor._node.parents
        assert all(i is None or i < e.index for i in e.inputs)  # a Wengert list: inputs come first
        assert [None if i is None else tr[i].tensor for i in e.inputs] == list(parents)
        if e.output is not None:
            assert e.tensor._node.outputs[e.output]() is e.tensor
    # Each layer's projection is unbound into one value per step, numbered apart and in order.
    unbinds = [e for e in tr.ops if e.op == "unbind"]
    assert len({e.seq for e in unbinds}) == num_layers and len(unbinds) == num_layers * T
    assert [e.output for e in unbinds] == list(range(T)) * num_layers
    lines = str(tr).splitlines()
    for e in unbinds:
        assert lines[e.index].startswith(f"%{e.index} = unbind(%{e.inputs[0]})[{e.output}] ")
    assert lines[-1] == f"return %{tr.find(loss).index}"


@pytest.mark.parametrize(("kind", "num_layers", "lengths"), CONFIGS, ids=IDS)
def test_usage_counts_the_recurrent_weight_once_per_step(kind: str, num_layers: int, lengths: bool) -> None:
    layer, loss = layer_loss(kind, num_layers, lengths)
    used = usage(trace(loss, params=layer))
    assert set(used) == {name for name, _ in layer.named_parameters()}
    for k in range(num_layers):
        assert used[f"weight_hh_l{k}"].steps == tuple(range(T))
        # The input weight is used once, by the projection hoisted out of the loop (no step tag);
        # counting each of unbind's T outputs as a use would give T.
        assert used[f"weight_ih_l{k}"].uses == 1 and used[f"weight_ih_l{k}"].steps == (None,)


@pytest.mark.parametrize(("kind", "num_layers", "lengths"), CONFIGS, ids=IDS)
def test_unrolled_dot_puts_each_unbound_input_in_its_step(kind: str, num_layers: int, lengths: bool) -> None:
    layer, loss = layer_loss(kind, num_layers, lengths)
    tr = trace(loss, params=layer)
    members, edges, attrs = parse_dot(to_dot(tr))

    assert len(members) == len(tr)
    assert len(edges) == sum(i is not None for e in tr.ops for i in e.inputs)
    assert {c for c in members.values() if c} == {f"cluster_step_{t}" for t in range(T)}
    for t in range(T):
        unbound = [n for n, a in attrs.items() if a.startswith(f'label="unbind[{t}]\\n')]
        assert len(unbound) == num_layers and all(members[n] == f"cluster_step_{t}" for n in unbound)
    for k in range(num_layers):
        (w_hh,) = [n for n, a in attrs.items() if a.startswith(f'label="weight_hh_l{k}\\n')]
        assert members[w_hh] is None
        assert sorted(members[d] or "" for s, d, _ in edges if s == w_hh) == [f"cluster_step_{t}" for t in range(T)]


def _folded(kind: str, num_layers: int, steps: int) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    layer, loss = layer_loss(kind, num_layers, False, steps)
    _, edges, attrs = parse_dot(to_dot(trace(loss, params=layer), fold_steps=True))
    return attrs, edges


@pytest.mark.parametrize(("kind", "num_layers"), [("rnn", 1), ("lstm", 2), ("gru", 2)])
def test_folded_dot_is_the_same_picture_for_any_length(kind: str, num_layers: int) -> None:
    short, short_edges = _folded(kind, num_layers, 3)
    attrs, edges = _folded(kind, num_layers, 6)

    def first_lines(labels: dict[str, str]) -> list[str]:  # the op or leaf name; shapes hold T
        return sorted(a.split("\\n")[0] for a in labels.values())

    assert first_lines(attrs) == first_lines(short)
    assert len(edges) == len(short_edges)
    unbinds = [a for a in attrs.values() if a.startswith('label="unbind\\n')]
    assert len(unbinds) == num_layers and all("×6 (steps 0..5)" in a for a in unbinds)
    for k in range(num_layers):
        (w_hh,) = [n for n, a in attrs.items() if a.startswith(f'label="weight_hh_l{k}\\n')]
        assert [e[2] for e in edges if e[0] == w_hh] == [' [label="×6"]']
    assert any("dashed" in e[2] for e in edges)  # the recurrence, h_{t-1} -> step t


@pytest.mark.parametrize(("kind", "num_layers", "lengths"), CONFIGS, ids=IDS)
def test_memory_counts_every_output_buffer_once(kind: str, num_layers: int, lengths: bool) -> None:
    layer, loss = layer_loss(kind, num_layers, lengths)
    tr = trace(loss, params=layer)
    report = memory(loss)
    assert report.nodes == len(_nodes(loss))
    assert set(report.by_step) == {None, *range(T)} and sum(report.by_step.values()) == report.total

    def base(a: np.ndarray) -> np.ndarray:
        while isinstance(a.base, np.ndarray):
            a = a.base
        return a

    leaf_ids = {id(base(e.tensor.data)) for e in tr.leaves}
    op_buffers = {id(base(e.tensor.data)): base(e.tensor.data).nbytes for e in tr.ops}
    assert report.outputs == sum(n for i, n in op_buffers.items() if i not in leaf_ids)
    assert memory(tr).total == report.total


@pytest.mark.parametrize(("kind", "num_layers", "lengths"), CONFIGS, ids=IDS)
def test_backward_trace_has_one_record_per_traced_value(kind: str, num_layers: int, lengths: bool) -> None:
    layer, loss = layer_loss(kind, num_layers, lengths)
    tr = trace(loss, params=layer)
    for e in tr.ops:
        e.tensor.retain_grad()
    with backward_trace() as records:
        loss.backward()

    by_value = {(e.seq, e.output): e for e in tr.ops}
    assert sorted((r.seq, r.output) for r in records) == sorted(by_value)
    for r in records:
        entry = by_value[(r.seq, r.output)]
        grad = entry.tensor.grad
        grad_data = grad.data if isinstance(grad, tg.Tensor) else grad
        assert r.op == entry.op and r.grad_out.shape == entry.shape
        assert r.grad_out.norm == pytest.approx(np.linalg.norm(grad_data), rel=1e-12, abs=1e-300)
    table = str(records)
    assert "unbind[0]" in table and f"unbind[{T - 1}]" in table


def test_a_node_with_several_outputs_is_one_use_of_its_input() -> None:
    p = tg.nn.Parameter(np.arange(6.0).reshape(3, 2))
    rows = p.unbind(0)
    loss = (rows[0] * rows[2]).sum()  # row 1 is never used: it gets no entry
    tr = trace(loss, names={"p": p})
    assert [(e.op, e.output) for e in tr.ops] == [("unbind", 0), ("unbind", 2), ("mul", None), ("sum", None)]
    used = usage(tr)
    assert used["p"].uses == 1 and used["p"].ops == ("unbind",)
