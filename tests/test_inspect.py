"""Tests for tinygrad_rnn.inspect: the Wengert listing, DOT text, usage, memory, backward_trace, detect_anomaly.

The RNN here is hand-unrolled from Tensor ops inside `engine.scope(step=t)`, so
these tests depend only on the engine, not on nn's recurrent layers.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn.core import engine
from tinygrad_rnn.core.errors import AnomalyError, DTypeError, GradientError
from tinygrad_rnn.inspect import backward_trace, detect_anomaly, memory, to_dot, trace, usage
from tinygrad_rnn.nn import Module, Parameter


@pytest.fixture(autouse=True)
def _no_observer_left_behind() -> Iterator[None]:
    """Every study mode is opt-in: fail any test that leaves an observer subscribed."""
    assert engine.forward_observers == [] and engine.backward_observers == []
    yield
    assert engine.forward_observers == [], "a forward observer is still subscribed"
    assert engine.backward_observers == [], "a backward observer is still subscribed"


class TinyRNN(Module):
    """h_t = tanh(x_t @ W_xh + h_{t-1} @ W_hh + b): five ops per step."""

    def __init__(self, D: int = 3, H: int = 4, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.W_xh = Parameter(rng.normal(size=(D, H)) * 0.5)
        self.W_hh = Parameter(rng.normal(size=(H, H)) * 0.5)
        self.b = Parameter(rng.normal(size=(H,)) * 0.1)

    def run(self, xs: list[tg.Tensor], h: tg.Tensor, start: int = 0) -> tg.Tensor:
        for t, x in enumerate(xs, start):
            with engine.scope(module="cell", step=t):
                h = (x @ self.W_xh + h @ self.W_hh + self.b).tanh()
        return h


def rnn_loss(T: int, B: int = 2, seed: int = 1) -> tuple[TinyRNN, tg.Tensor]:
    model = TinyRNN()
    rng = np.random.default_rng(seed)
    xs = [tg.Tensor(rng.normal(size=(B, 3))) for _ in range(T)]
    h = model.run(xs, tg.Tensor(np.zeros((B, 4))))
    return model, (h * h).sum()


# ---------------------------------------------------------------- trace


def test_listing_is_topological_and_names_each_op() -> None:
    x = tg.Tensor(np.ones((2, 3)), requires_grad=True)
    W = Parameter(np.full((3, 2), 0.5))
    c = tg.Tensor(np.arange(4.0).reshape(2, 2))
    loss = ((x @ W).tanh() * c).sum()
    tr = trace(loss, names={"x": x, "W": W, "c": c})

    assert [e.op for e in tr.ops] == ["matmul", "tanh", "mul", "sum"]
    assert [(e.kind, e.name) for e in tr.leaves] == [("leaf", "x"), ("param", "W"), ("leaf", "c")]
    assert tr.entries[: len(tr.leaves)] == tr.leaves  # leaves are numbered first
    for e in tr.ops:
        assert all(i is not None and i < e.index for i in e.inputs)  # inputs are earlier entries
        node_parents = e.tensor._node.parents
        assert [tr[i].tensor for i in e.inputs] == list(node_parents)  # the references are the real parents
        assert e.input_shapes == tuple(p.shape for p in node_parents)
        assert e.shape == e.tensor.data.shape and e.dtype == e.tensor.data.dtype
    assert [e.seq for e in tr.ops] == sorted(e.seq for e in tr.ops)
    assert tr[tr.roots[0]].tensor is loss

    lines = str(tr).splitlines()
    assert len(lines) == len(tr) + 1
    assert all(line.startswith(f"%{i} = ") for i, line in enumerate(lines[:-1]))
    ix, iw = tr.find(x).index, tr.find(W).index
    assert re.match(rf"%{tr.find(loss).index - 3} = matmul\(%{ix}, %{iw}\)\s+\(2, 2\) float64$", lines[-5])
    assert re.match(r"%\d+ = param\s+W\s+\(3, 2\) float64$", lines[iw])
    assert lines[-1] == f"return %{tr.find(loss).index}"


def test_trace_names_come_from_the_module_and_defaults_are_short() -> None:
    model, loss = rnn_loss(T=2)
    tr = trace(loss, params=model)
    assert {e.name for e in tr.params} == {"W_xh", "W_hh", "b"}
    assert all(e.kind == "param" for e in tr.params)
    assert {e.name for e in tr.leaves if e.kind == "leaf"} == {"x0", "x1", "x2"}  # two inputs and h0

    p = Parameter(np.ones(2))
    tr2 = trace((p * 3.0).sum())
    assert [e.name for e in tr2.leaves] == ["p0", "3"]


def test_listing_shows_step_tags() -> None:
    _, loss = rnn_loss(T=2)
    tr = trace(loss)
    tagged = [line for line in str(tr).splitlines() if "[module cell, step 1]" in line]
    assert len(tagged) == 5 == len([e for e in tr.ops if e.step == 1])


def test_trace_of_a_tensor_without_a_graph_is_just_that_leaf() -> None:
    x = tg.Tensor(np.ones((2, 2)))
    y = x * 2.0  # nothing requires grad: nothing is recorded
    tr = trace(y, names={"y": y})
    assert len(tr) == 1 and tr.roots == (0,) and tr[0].kind == "leaf" and tr[0].name == "y"
    assert str(tr).splitlines() == ["%0 = leaf   y  (2, 2) float64", "return %0"]


def test_trace_of_a_freed_graph_says_so() -> None:
    _, loss = rnn_loss(T=1)
    loss.backward()
    with pytest.raises(GradientError, match=r"trace: .*freed by backward\(\).*retain_graph=True"):
        trace(loss)


def test_trace_rejects_bad_arguments_by_name() -> None:
    x = tg.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(DTypeError, match="trace: expected a Tensor"):
        trace([1.0, 2.0])  # type: ignore[list-item]
    with pytest.raises(DTypeError, match=r"trace: names\['a'\] is a ndarray"):
        trace(x * x, names={"a": np.ones(2)})  # type: ignore[dict-item]
    with pytest.raises(DTypeError, match="trace: params= must be a Module"):
        trace(x * x, params=[x])  # type: ignore[arg-type]
    with pytest.raises(DTypeError, match="to_dot: expected a Tensor"):
        to_dot("loss")  # type: ignore[arg-type]


# ---------------------------------------------------------------- DOT


def parse_dot(text: str) -> tuple[dict[str, str | None], list[tuple[str, str, str]], dict[str, str]]:
    """node id -> its cluster (None outside), edges (src, dst, attrs), node id -> attribute text."""
    depth, cluster = 0, None
    members: dict[str, str | None] = {}
    attrs: dict[str, str] = {}
    edges = []
    for line in text.splitlines():
        depth += line.count("{") - line.count("}")
        assert depth >= 0, f"unbalanced braces at: {line}"
        if m := re.match(r"\s*subgraph (cluster_\w+) \{$", line):
            cluster = m.group(1)
        elif line.strip() == "}" and depth == 1:
            cluster = None
        elif m := re.match(r"\s*(n\d+) -> (n\d+)(.*);$", line):
            edges.append((m.group(1), m.group(2), m.group(3)))
        elif m := re.match(r"\s*(n\d+) \[(.*)\];$", line):
            assert m.group(1) not in members, f"node {m.group(1)} declared twice"
            members[m.group(1)] = cluster
            attrs[m.group(1)] = m.group(2)
    assert depth == 0, "unbalanced braces"
    assert text.startswith("digraph tape {")
    assert all(s in members and d in members for s, d, _ in edges), "an edge names an undeclared node"
    return members, edges, attrs


@pytest.mark.parametrize("T", [1, 3, 5])
def test_dot_draws_a_shared_weight_once_with_an_edge_into_every_step(T: int) -> None:
    model, loss = rnn_loss(T)
    members, edges, attrs = parse_dot(to_dot(trace(loss, params=model)))

    w_hh = [n for n, a in attrs.items() if a.startswith('label="W_hh\\n')]
    assert len(w_hh) == 1 and members[w_hh[0]] is None  # one node, outside every cluster
    targets = [d for s, d, _ in edges if s == w_hh[0]]
    assert len(targets) == T
    assert sorted(members[d] for d in targets) == sorted(f"cluster_step_{t}" for t in range(T))  # type: ignore[type-var]
    assert {c for c in members.values() if c} == {f"cluster_step_{t}" for t in range(T)}
    for t in range(T):  # each step holds its five ops and its input x_t
        in_step = [n for n, c in members.items() if c == f"cluster_step_{t}"]
        assert sum("rounded" in attrs[n] for n in in_step) == 5
    # Parameters, other leaves and ops are drawn differently.
    styles = {re.sub(r'^label="[^"]*", |, peripheries=2', "", a) for a in attrs.values()}
    assert len(styles) == 3


def test_folded_dot_has_one_node_per_op_of_the_cell() -> None:
    T = 4
    model, loss = rnn_loss(T)
    members, edges, attrs = parse_dot(to_dot(trace(loss, params=model), fold_steps=True))
    assert all(c is None for c in members.values())
    assert sum(a.startswith('label="tanh') for a in attrs.values()) == 1
    assert sum(a.startswith('label="matmul') for a in attrs.values()) == 2
    (w_hh,) = [n for n, a in attrs.items() if a.startswith('label="W_hh')]
    (edge,) = [e for e in edges if e[0] == w_hh]
    assert f'label="×{T}"' in edge[2]
    recurrent = [e for e in edges if "dashed" in e[2]]
    assert len(recurrent) == 1 and f'label="×{T - 1}"' in recurrent[0][2]  # h_{t-1} -> step t


# ---------------------------------------------------------------- usage


@pytest.mark.parametrize("T", [1, 2, 6])
def test_usage_counts_one_use_per_step(T: int) -> None:
    model, loss = rnn_loss(T)
    used = usage(trace(loss, params=model))
    assert set(used) == {"W_xh", "W_hh", "b"}
    for name in used:
        assert used[name].uses == T
        assert used[name].steps == tuple(range(T))
        assert used[name].per_step == dict.fromkeys(range(T), 1)
    assert f"W_hh (4, 4): used {T} time(s)" in str(used)


def test_usage_counts_each_edge_and_skips_leaves_without_grad() -> None:
    x = tg.Tensor(np.ones(3), requires_grad=True)
    c = tg.Tensor(np.ones(3))
    used = usage((x * x + x * c).sum())  # three gradient terms add up in x.grad
    assert list(used) == ["x0"] and used["x0"].uses == 3 and used["x0"].ops == ("mul", "mul", "mul")


def test_usage_looks_through_a_transpose_taken_once_before_the_loop() -> None:
    T = 3
    W = Parameter(np.eye(2))
    W_t = W.T  # as a layer might do once, outside the steps
    h = tg.Tensor(np.ones((1, 2)))
    for t in range(T):
        with engine.scope(step=t):
            h = (h @ W_t).tanh()
    used = usage(trace(h.sum(), names={"W": W}))
    assert used["W"].uses == T and used["W"].steps == tuple(range(T)) and used["W"].via == ("permute",)
    assert str(used) == f"W (2, 2): used {T} time(s) at steps 0-{T - 1} (through permute)"


# ---------------------------------------------------------------- memory


def test_memory_counts_outputs_saved_and_ctx_arrays_once_each() -> None:
    x = tg.Tensor(np.linspace(-1, 1, 12).reshape(3, 4), requires_grad=True)
    y = x * 2.0  # saves x and the constant 2.0: leaves, reported apart
    r = y.relu()  # keeps a boolean mask as a node attribute
    v = r.reshape(12)  # a view of r's buffer: must not count twice
    w = v.exp()  # saves its output
    s = w.sum()
    report = memory(s)

    assert report.outputs == y.data.nbytes + r.data.nbytes + w.data.nbytes + s.data.nbytes
    assert report.ctx == r._node.mask.nbytes
    assert report.saved == 0
    assert report.total == report.outputs + report.ctx
    assert report.leaves == x.data.nbytes + np.asarray(2.0).nbytes
    assert report.by_step == {None: report.total}
    assert report.nodes == 5

    s.backward()  # frees the graph: only the root's own output is left
    after = memory(s)
    assert after.total == s.data.nbytes < report.total and after.nodes == 1


def test_memory_counts_a_saved_constant_that_is_not_a_leaf() -> None:
    class Scale(tg.Function):
        def forward(ctx, x: np.ndarray) -> np.ndarray:
            ctx.save_for_backward(np.full(x.shape, 3.0))
            return x * 3.0

        def backward(ctx, grad_out: tg.Tensor) -> tg.Tensor:
            (k,) = ctx.saved_tensors
            return grad_out * k

    x = tg.Tensor(np.ones(5), requires_grad=True)
    out = Scale.apply(x)
    assert memory(out).saved == out._node._saved[0].nbytes
    assert memory(out).total == out.data.nbytes + out._node._saved[0].nbytes


def test_memory_per_step_and_what_truncation_frees() -> None:
    T = 4
    model, loss = rnn_loss(T)
    tr = trace(loss)
    report = memory(loss)
    for t in range(T):
        assert report.by_step[t] == sum(e.tensor.data.nbytes for e in tr.ops if e.step == t)
    assert sum(report.by_step.values()) == report.total

    # Truncated BPTT: detaching h after step 1 leaves steps 0 and 1 off the tape.
    rng = np.random.default_rng(1)
    xs = [tg.Tensor(rng.normal(size=(2, 3))) for _ in range(T)]
    h = model.run(xs[:2], tg.Tensor(np.zeros((2, 4)))).detach()
    h = model.run(xs[2:], h, start=2)
    truncated = memory((h * h).sum())
    assert set(truncated.by_step) == {2, 3, None}
    assert truncated.total == report.total - report.by_step[0] - report.by_step[1]


# ---------------------------------------------------------------- backward_trace


def test_backward_trace_records_every_vjp_with_true_shapes_and_norms() -> None:
    model, loss = rnn_loss(T=3)
    tr = trace(loss, params=model)
    for e in tr.ops:
        e.tensor.retain_grad()
    n_uses = {e.index: sum(i == e.index for o in tr.ops for i in o.inputs) for e in tr}
    by_seq = {e.seq: e for e in tr.ops}

    with backward_trace() as records:
        loss.backward()

    assert len(records) == len(tr.ops)
    assert [r.seq for r in records] == sorted(by_seq, reverse=True)  # latest node first
    checked = 0
    for r in records:
        entry = by_seq[r.seq]
        assert r.op == entry.op and r.tags == entry.tags
        assert r.grad_out.shape == entry.shape
        assert r.grad_out.norm == pytest.approx(np.linalg.norm(entry.tensor.grad))
        for i, g in zip(entry.inputs, r.grads_in, strict=True):
            parent = tr[i]  # type: ignore[index]
            if not parent.tensor.requires_grad:
                assert g is None
                continue
            assert g is not None and g.shape == parent.shape
            if n_uses[parent.index] == 1:  # a single term: it is the whole of parent.grad
                assert g.norm == pytest.approx(np.linalg.norm(parent.tensor.grad))
                checked += 1
    assert checked >= 3 * 4  # every add, tanh and matmul-output edge of three steps

    table = str(records).splitlines()
    assert len(table) == len(records) + 1
    assert table[1].split()[:2] == ["0", "sum"]


def test_backward_trace_records_nothing_outside_its_block() -> None:
    x = tg.Tensor(np.ones(3), requires_grad=True)
    with backward_trace() as records:
        pass
    (x * x).sum().backward()
    assert len(records) == 0


# ---------------------------------------------------------------- detect_anomaly


def test_anomaly_in_forward_names_the_first_bad_op_and_the_line() -> None:
    x = tg.Tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(divide="ignore"), detect_anomaly():
        line = sys._getframe().f_lineno + 2
        with pytest.raises(AnomalyError) as info:
            x.log() * 0.0  # log(0) = -inf, then -inf * 0 = nan: the first bad op is log
    message = str(info.value)
    assert message.startswith("log: forward output of shape (2,) contains 1 inf")
    assert f"test_inspect.py:{line} " in message


def test_anomaly_nan_in_forward() -> None:
    x = tg.Tensor([0.0, 1.0], requires_grad=True)
    d = x - x
    with np.errstate(invalid="ignore"), pytest.raises(AnomalyError, match=r"^div: .* contains 2 nan"):
        with detect_anomaly():
            d / d


def test_anomaly_only_in_backward_points_at_the_forward_line() -> None:
    x = tg.Tensor([0.0, 4.0], requires_grad=True)
    with np.errstate(divide="ignore"), detect_anomaly():
        line = sys._getframe().f_lineno + 1
        y = x.sqrt()  # finite: sqrt(0) = 0, but d sqrt/dx = inf at 0
        loss = (y * 3.0).sum()
        with pytest.raises(AnomalyError) as info:
            loss.backward()
    message = str(info.value)
    assert message.startswith("sqrt.backward: the gradient for input 0 of shape (2,) contains 1 inf")
    assert f"test_inspect.py:{line} " in message


def test_anomaly_mode_lets_a_finite_double_backward_through() -> None:
    x = tg.Tensor([0.5, 2.0], requires_grad=True)
    with detect_anomaly():
        (g,) = tg.grad((x * x * x).sum(), x, create_graph=True)
        (gg,) = tg.grad(g.sum(), x)
    np.testing.assert_allclose(gg.data, 6 * x.data)


def test_anomaly_names_the_step_of_a_bad_op() -> None:
    x = tg.Tensor([-1.0], requires_grad=True)
    with np.errstate(invalid="ignore"), detect_anomaly(), engine.scope(step=7):
        with pytest.raises(AnomalyError, match=r"^sqrt \[step=7\]: forward output of shape \(1,\) contains 1 nan"):
            x.sqrt()


def test_anomaly_mode_works_as_a_decorator_and_cleans_up() -> None:
    calls = []

    @detect_anomaly()
    def step(x: tg.Tensor) -> tg.Tensor:
        calls.append(len(engine.forward_observers))
        return x / (x - x)

    with np.errstate(divide="ignore"), pytest.raises(AnomalyError, match=r"^div: "):
        step(tg.Tensor([1.0], requires_grad=True))
    assert calls == [1]
    assert engine.forward_observers == [] and engine.backward_observers == []


def test_everything_is_off_by_default() -> None:
    x = tg.Tensor([0.0, 1.0], requires_grad=True)
    with detect_anomaly():
        pass
    with np.errstate(divide="ignore", invalid="ignore"):
        y = x.log() * 0.0  # no error without the mode
    assert np.isnan(y.data[0])
    assert not hasattr(y._node, "created_at")
    assert engine.forward_observers == [] and engine.backward_observers == []


def test_nodes_recorded_before_the_mode_say_their_place_is_unknown() -> None:
    x = tg.Tensor([0.0], requires_grad=True)
    y = x.sqrt()
    with np.errstate(divide="ignore"), detect_anomaly():
        with pytest.raises(AnomalyError, match="recorded before detect_anomaly"):
            y.sum().backward()
