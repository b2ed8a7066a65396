"""test_compile.py — tg.compile replays give eager's values and gradients, bit for bit; its limits are loud."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_table import OPS, OpSpec
from test_op_properties import draw_values

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.checks.testing import arrays
from tinygrad_rnn.compile import CompileError
from tinygrad_rnn.compile.passes import PASSES, add_in_place, dead_code, release
from tinygrad_rnn.core.mode import observe
from tinygrad_rnn.nn.functional import mse_loss

by_op = pytest.mark.parametrize("spec", OPS, ids=[spec.name for spec in OPS])
# Ops whose Tensor method computes a mask or an index from the values in Python, outside any primitive:
# tg.compile refuses them when that array changes between calls (a replay would reuse the first call's).
MADE_IN_PYTHON = {"clamp_tensor_bounds", "max_dim", "min_dim"}
FEW = settings(max_examples=max(3, settings().max_examples // 4))  # each example records and replays twice


def op_step(spec: OpSpec, params: dict[str, Any], inputs: int) -> Any:
    """The op's values and the gradients of sum(out * seed) for its inputs, from plain arrays."""

    def step(*arrays: np.ndarray) -> tuple[tg.Tensor, ...]:
        xs = [tg.Tensor(a, requires_grad=True) for a in arrays[:inputs]]
        out = spec.fn(*xs, **params)
        outs = tuple(out) if isinstance(out, tuple | list) else (out,)
        loss = sum((o * tg.Tensor(s)).sum() for o, s in zip(outs, arrays[inputs:], strict=True))
        grads = tg.grad(loss, xs)
        return (*(o.detach() for o in outs), *(g for g in grads if g is not None))

    return step


@by_op
@FEW
@given(data=st.data())
def test_every_op_replays_like_eager(spec: OpSpec, data: st.DataObject) -> None:
    in_shapes, params = data.draw(spec.draw_cases(), label="shapes and params")
    step = op_step(spec, params, len(in_shapes))
    compiled = tg.compile(step)
    # The first call records; the second records again where ops got arrays made in Python (checking they
    # did not change); the others replay, all on fresh values of the same shapes.
    for call in range(2 if spec.name in MADE_IN_PYTHON else 3):
        values = draw_values(data, spec, in_shapes)
        eager_outs = _eager_outputs(spec, params, values)
        seeds = [data.draw(arrays(o.shape, o.dtype), label=f"seed {call}") for o in eager_outs]
        expected = step(*values, *seeds)
        try:
            got = compiled(*values, *seeds)
        except CompileError as error:  # refused, loudly: the only other allowed outcome
            assert spec.name in MADE_IN_PYTHON and "computed" in str(error), str(error)
            return
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert g.shape == e.shape and g.dtype == e.dtype
            np.testing.assert_array_equal(g.numpy(), e.numpy())
    assert len(compiled.cache) == 1 or spec.name in MADE_IN_PYTHON


def _eager_outputs(spec: OpSpec, params: dict[str, Any], values: list[np.ndarray]) -> tuple[tg.Tensor, ...]:
    out = spec.fn(*[tg.Tensor(a) for a in values], **params)
    return tuple(out) if isinstance(out, tuple | list) else (out,)


# ---------------------------------------------------------------- recurrent training steps


def _twin_models(kind: str, layers: int, seed: int) -> tuple[Any, Any]:
    tg.manual_seed(seed)
    made = [(getattr(nn, kind)(3, 4, num_layers=layers), nn.Linear(4, 2)) for _ in range(2)]
    for a, b in zip(
        made[0][0].parameters() + made[0][1].parameters(),
        made[1][0].parameters() + made[1][1].parameters(),
        strict=True,
    ):
        b.data = a.data.copy()
    return made[0], made[1]


def _train_step(rnn: Any, readout: Any) -> Any:
    def step(x: np.ndarray, y: np.ndarray, lengths: np.ndarray) -> tg.Tensor:
        out, _ = rnn(tg.Tensor(x), lengths=lengths)
        loss = mse_loss(readout(out), tg.Tensor(y))
        loss.backward()
        return loss.detach()

    return step


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("layers", [1, 2])
def test_recurrent_training_replays_like_eager(kind: str, layers: int) -> None:
    (rnn, readout), (twin, twin_readout) = _twin_models(kind, layers, seed=layers)
    params = rnn.parameters() + readout.parameters()
    twin_params = twin.parameters() + twin_readout.parameters()
    opt, twin_opt = tg.optim.Adam(params, lr=0.01), tg.optim.Adam(twin_params, lr=0.01)
    compiled, eager = tg.compile(_train_step(rnn, readout)), _train_step(twin, twin_readout)
    rng = np.random.default_rng(0)
    lengths = np.array([6, 4, 2])
    for _ in range(4):  # the optimizer rebinds every parameter's .data between calls
        x, y = rng.standard_normal((6, 3, 3)), rng.standard_normal((6, 3, 2))
        opt.zero_grad()
        twin_opt.zero_grad()
        loss, twin_loss = compiled(x, y, lengths), eager(x, y, lengths)
        assert loss.item() == twin_loss.item()
        for p, q in zip(params, twin_params, strict=True):
            np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
        opt.step()
        twin_opt.step()
    assert len(compiled.cache) == 1
    compiled(x, y, np.array([6, 6, 1]))  # other lengths: a new recording beside the first
    assert len(compiled.cache) == 2


def test_gradients_accumulate_across_calls_as_eager() -> None:
    w = tg.Tensor([1.0, -2.0], requires_grad=True)
    step = tg.compile(lambda x: (x * w * w).sum().backward())
    step(np.array([1.0, 2.0]))
    step(np.array([3.0, 4.0]))  # replayed, no zero_grad: added to the .grad of the first call
    np.testing.assert_array_equal(w.grad.numpy(), 2 * w.data * np.array([1.0, 2.0]) + 2 * w.data * np.array([3.0, 4.0]))


def test_masks_are_recomputed_on_replay() -> None:
    step = tg.compile(lambda x: tg.grad(x.relu().sum(), x)[0])
    x = tg.Tensor([1.0, -1.0], requires_grad=True)
    np.testing.assert_array_equal(step(x).numpy(), [1.0, 0.0])
    np.testing.assert_array_equal(step(tg.Tensor([-1.0, 1.0], requires_grad=True)).numpy(), [0.0, 1.0])


def test_program_lists_forward_then_backward() -> None:
    w = tg.Tensor(np.ones((3, 2)), requires_grad=True)
    step = tg.compile(lambda x: (tg.Tensor(x) @ w).tanh().sum().backward())
    step(np.ones((4, 3)))
    listing = step.program
    forward, backward = listing.split("-- backward --")
    assert "= matmul(" in forward and "(4, 2) float64" in forward
    assert "tanh.vjp(" in backward and "matmul.vjp(" in backward
    assert listing.strip().endswith(".grad += %" + listing.strip().rsplit("%", 1)[1])


# ---------------------------------------------------------------- what cannot be compiled, loudly


def _weight() -> tg.Tensor:
    return tg.Tensor([1.0, 2.0], requires_grad=True)


@pytest.mark.parametrize("read", ["item", "numpy", "float", "bool"])
def test_reading_a_value_into_python_is_refused(read: str) -> None:
    w = _weight()

    def step(x: np.ndarray) -> None:
        loss = (tg.Tensor(x) * w).sum()
        reads = {"item": loss.item, "numpy": loss.numpy, "float": lambda: float(loss), "bool": lambda: bool(loss > 0)}
        reads[read]()
        loss.backward()

    with pytest.raises(CompileError, match=r"tg.compile\(.*step\).*control flow"):
        tg.compile(step)(np.ones(2))


def test_random_numbers_inside_are_refused() -> None:
    w = _weight()
    step = tg.compile(lambda x: (nn.functional.dropout(tg.Tensor(x), 0.5, training=True) * w).sum().backward())
    with pytest.raises(CompileError, match="random numbers"):
        step(np.ones(2))


@pytest.mark.parametrize("feature", ["register_hook", "retain_grad", "observers", "create_graph"])
def test_hooks_observers_and_create_graph_inside_are_refused(feature: str) -> None:
    w = _weight()

    def step(x: np.ndarray) -> None:
        h = tg.Tensor(x) * w
        if feature == "register_hook":
            h.register_hook(lambda g: g)
        if feature == "retain_grad":
            h.retain_grad()
        if feature == "observers":
            with observe(forward=lambda node, out: None):
                h = h * 2
        h.sum().backward(create_graph=feature == "create_graph")

    with pytest.raises(CompileError, match=feature.replace("_", ".")):
        tg.compile(step)(np.ones(2))


def test_user_function_with_tensor_backward_is_refused_and_array_backward_works() -> None:
    class Cube(tg.Function):
        def forward(ctx, x: Any) -> Any:
            ctx.save_for_backward(x)
            return x**3

        def backward(ctx, g: Any) -> Any:
            (x,) = ctx.saved_tensors
            return 3 * x * x * g

    w = _weight()
    step = tg.compile(lambda: Cube.apply(w).sum().backward())
    with pytest.raises(CompileError, match=r"Cube.*backward_on_arrays"):
        step()
    Cube.backward_on_arrays = True
    w.grad = None
    step = tg.compile(lambda: Cube.apply(w).sum().backward())
    step()
    step()
    np.testing.assert_array_equal(w.grad.numpy(), 2 * 3 * w.data**2)


def test_replaced_parameters_retrace() -> None:
    model = nn.Linear(2, 1)
    step = tg.compile(lambda x: model(tg.Tensor(x)).sum().backward())
    step(np.ones((1, 2)))
    step(np.ones((1, 2)))
    assert len(step.cache) == 1
    model.weight = nn.Parameter(np.full((1, 2), 5.0))  # a new tensor, not new values in the old one
    step(np.array([[1.0, 3.0]]))
    assert len(step.cache) == 2
    np.testing.assert_array_equal(model.weight.grad.numpy(), [[1.0, 3.0]])


def test_aliased_inputs_key_the_cache() -> None:
    w = _weight()
    step = tg.compile(lambda a, b: ((tg.Tensor(a) + tg.Tensor(b)) * w).sum().backward())
    x = np.ones(2)
    step(x, x)
    step(x, np.ones(2))
    assert len(step.cache) == 2


def test_new_shapes_and_dtypes_retrace_into_the_cache() -> None:
    w = tg.Tensor(2.0, requires_grad=True)
    step = tg.compile(lambda x: (tg.Tensor(x) * w).sum().backward())
    for x in [np.ones(2), np.ones(3), np.ones(2), np.ones(3, np.float32), np.ones(3)]:
        step(x)
    assert len(step.cache) == 3
    assert w.grad.item() == 2 + 3 + 2 + 3 + 3


def test_optimizer_step_inside_is_refused() -> None:
    w = _weight()
    opt = tg.optim.SGD([w], lr=0.1)

    def step(x: np.ndarray) -> None:
        (tg.Tensor(x) * w).sum().backward()
        opt.step()

    with pytest.raises(CompileError, match="optimizer step"):
        tg.compile(step)(np.ones(2))


def test_returning_a_live_graph_is_refused() -> None:
    w = _weight()
    with pytest.raises(CompileError, match="graph is still alive"):
        tg.compile(lambda x: (tg.Tensor(x) * w).sum())(np.ones(2))


def test_masks_from_comparisons_are_recomputed_on_replay() -> None:
    step = tg.compile(lambda x: tg.grad(tg.where(x > 0, x, x * 0.5).sum(), x)[0])
    np.testing.assert_array_equal(step(tg.Tensor([1.0, -1.0], requires_grad=True)).numpy(), [1.0, 0.5])
    np.testing.assert_array_equal(step(tg.Tensor([-1.0, 1.0], requires_grad=True)).numpy(), [0.5, 1.0])


def test_dead_code_pass_drops_what_nothing_reads() -> None:
    w = _weight()

    def step(x: np.ndarray) -> tg.Tensor:
        h = tg.Tensor(x) * w
        unused = h.exp().sum()  # noqa: F841  # computed eagerly, read by nothing
        loss = h.sum()
        loss.backward()
        return loss.detach()

    compiled = tg.compile(step)
    compiled(np.ones(2))
    assert compiled.recorded is not None
    before, after = compiled.recorded.listing(), compiled.program
    assert "= exp(" in before and "= exp(" not in after
    assert before.count("= sum(") == 2 and after.count("= sum(") == 1
    assert len(compiled.last.instructions) < len(compiled.recorded.instructions)  # type: ignore[union-attr]
    got = compiled(np.array([2.0, 3.0]))  # the pruned program still gives eager's answers
    assert got.item() == 2.0 * 1.0 + 3.0 * 2.0
    np.testing.assert_array_equal(w.grad.numpy(), [1.0 + 2.0, 1.0 + 3.0])


def test_add_in_place_pass_accumulates_a_shared_weight_into_one_buffer() -> None:
    (rnn, readout), (twin, twin_readout) = _twin_models("RNN", 1, seed=3)
    compiled, eager = tg.compile(_train_step(rnn, readout)), _train_step(twin, twin_readout)
    rng = np.random.default_rng(1)
    lengths = np.array([5, 5])
    for _ in range(3):
        x, y = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 2))
        compiled(x, y, lengths)
        eager(x, y, lengths)  # no zero_grad: in-place sums must not leak into the accumulated .grad
    for p, q in zip(
        rnn.parameters() + readout.parameters(), twin.parameters() + twin_readout.parameters(), strict=True
    ):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    assert compiled.recorded is not None
    # the pass alone: in the full pipeline stacked_products folds these weights' sums before it runs
    before, after = compiled.recorded.listing(), add_in_place(dead_code(compiled.recorded)).listing()
    assert "= add_(" not in before and " = add(" in before
    assert "= add_(" in after


@given(
    rows=st.integers(1, 4),
    cols=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_unwrap_vjps_pass_lists_shape_work_and_keeps_every_bit(rows: int, cols: int, seed: int, dtype: Any) -> None:
    """A bias and a row scale broadcast over the batch: their gradients are summed back by `sum_to`
    (a `reshape` when the batch has one row)."""
    rng = np.random.default_rng(seed)
    values = [rng.standard_normal(shape).astype(dtype) for shape in [(cols,), (1, cols), (cols,)]] * 2
    w, scale, b, w2, scale2, b2 = (tg.Tensor(v, requires_grad=True) for v in values)

    def make(w: tg.Tensor, scale: tg.Tensor, b: tg.Tensor) -> Any:
        def step(x: np.ndarray) -> tg.Tensor:
            loss = ((tg.Tensor(x) * w * scale + b).tanh() ** 2).mean()
            loss.backward()
            return loss.detach()

        return step

    compiled, eager = tg.compile(make(w, scale, b)), make(w2, scale2, b2)
    for _ in range(3):  # the first call records, the others replay; .grad accumulates over all three
        x = rng.standard_normal((rows, cols)).astype(dtype)
        assert compiled(x).numpy().tobytes() == eager(x).numpy().tobytes()
    for p, q in zip((w, scale, b), (w2, scale2, b2), strict=True):
        assert p.grad.numpy().tobytes() == q.grad.numpy().tobytes()  # type: ignore[union-attr]
    assert compiled.recorded is not None
    before, after = compiled.recorded.listing(), compiled.program
    assert "sum_to(" not in before and "_, " not in before
    # w and b are (cols,) from (rows, cols), scale (1, cols); summing one row is a reshape
    assert (after.count("= sum_to("), after.count("= reshape(")) == ((3, 0) if rows > 1 else (0, 2))
    assert "_, " in after  # x needs no gradient: its slot of mul.vjp is listed as _


def test_unwrap_vjps_pass_lists_a_dtype_cast_and_keeps_every_bit() -> None:
    """A float32 product promoted to float64: its float32 factor's gradient is cast back by `astype`."""

    def make() -> tuple[Any, tg.Tensor, tg.Tensor]:
        w = tg.Tensor(np.array([0.5, -1.0], np.float32), requires_grad=True)
        v = tg.Tensor(np.array([[0.3, 0.7]]), requires_grad=True)

        def step(x: np.ndarray) -> None:
            ((tg.Tensor(x) * w * v) ** 2).sum().backward()

        return step, w, v

    (step, w, v), (eager, w2, v2) = make(), make()
    compiled = tg.compile(step)
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = rng.standard_normal((3, 2)).astype(np.float32)
        compiled(x)
        eager(x)
    for p, q in ((w, w2), (v, v2)):
        assert p.grad.dtype == q.grad.dtype  # type: ignore[union-attr]
        assert p.grad.numpy().tobytes() == q.grad.numpy().tobytes()  # type: ignore[union-attr]
    assert compiled.recorded is not None and "astype(" not in compiled.recorded.listing()
    assert "= astype(" in compiled.program and "dtype=float32" in compiled.program


@pytest.mark.parametrize(
    "derive",
    [
        lambda x: x > 0,
        lambda x: (x // 1.0) == 1.0,
        lambda x: x.argmax().astype(np.float64) == 0.0,
        lambda x: (x > 0).any() == (x > 0),
        lambda x: x.astype(np.int64) == 1,
    ],
    ids=["comparison", "floordiv", "argmax", "any", "int cast"],
)
def test_values_made_outside_primitives_are_recomputed(derive: Any) -> None:
    """Comparisons, argmax, any, integer casts and floor division make tensors without a primitive."""
    w, twin = tg.Tensor([1.0, 2.0], requires_grad=True), tg.Tensor([1.0, 2.0], requires_grad=True)

    def step(x: np.ndarray, w: tg.Tensor = w) -> tg.Tensor:
        xt = tg.Tensor(x)
        loss = (xt * w * derive(xt).astype(np.float64)).sum()
        loss.backward()
        return loss.detach()

    compiled = tg.compile(step)
    for x in [np.array([1.5, -1.0]), np.array([-1.0, 1.5]), np.array([1.0, 1.0]), np.array([-2.0, -3.0])]:
        w.grad = twin.grad = None
        got, expected = compiled(x), step(x, twin)
        assert got.item() == expected.item()
        np.testing.assert_array_equal(w.grad.numpy(), twin.grad.numpy())


@pytest.mark.parametrize("write", ["setitem", "iadd", "zero_"])
def test_in_place_writes_of_computed_tensors_are_refused(write: str) -> None:
    w = _weight()

    def step(x: np.ndarray) -> None:
        xt = tg.Tensor(x)
        if write == "setitem":
            xt[0] = 5.0
        elif write == "iadd":
            xt += 1.0
        else:
            xt.zero_()
        (xt * w).sum().backward()

    with pytest.raises(CompileError, match=r"in-place write"):
        tg.compile(step)(np.ones(2))


def test_truncated_bptt_carries_state_through_arguments() -> None:
    (rnn, readout), (twin, twin_readout) = _twin_models("GRU", 1, seed=5)

    def chunk_step(rnn: Any, readout: Any) -> Any:
        def step(x: np.ndarray, y: np.ndarray, h: tg.Tensor) -> tuple[tg.Tensor, tg.Tensor]:
            out, h_n = rnn(tg.Tensor(x), h)
            loss = mse_loss(readout(out), tg.Tensor(y))
            loss.backward()
            return loss.detach(), h_n.detach()

        return step

    compiled, eager = tg.compile(chunk_step(rnn, readout)), chunk_step(twin, twin_readout)
    rng = np.random.default_rng(2)
    h = twin_h = tg.zeros(1, 2, 4)
    for _ in range(4):  # chunks of one long sequence; the state crosses calls detached
        x, y = rng.standard_normal((3, 2, 3)), rng.standard_normal((3, 2, 2))
        (loss, h), (twin_loss, twin_h) = compiled(x, y, h), eager(x, y, twin_h)
        assert loss.item() == twin_loss.item()
        np.testing.assert_array_equal(h.numpy(), twin_h.numpy())
    for p, q in zip(rnn.parameters(), twin.parameters(), strict=True):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    assert len(compiled.cache) == 1


def _all_passes_but_release(recorded: Any) -> Any:
    for optimise in PASSES:
        recorded = recorded if optimise is release else optimise(recorded)
    return recorded


def test_release_pass_frees_each_slot_after_its_last_reader_and_keeps_every_bit() -> None:
    """An RNN step (a shared weight: aliased gradient terms summed in place) replays eager's bits with every
    slot dropped after its last use; the listing shows where."""
    (rnn, readout), (twin, twin_readout) = _twin_models("RNN", 1, seed=4)
    compiled, eager = tg.compile(_train_step(rnn, readout)), _train_step(twin, twin_readout)
    rng = np.random.default_rng(3)
    for _ in range(3):  # no zero_grad: .grad accumulates over a recording and two replays
        x, y = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 2))
        assert compiled(x, y, np.array([4, 3])).item() == eager(x, y, np.array([4, 3])).item()
    params, twin_params = rnn.parameters() + readout.parameters(), twin.parameters() + twin_readout.parameters()
    for p, q in zip(params, twin_params, strict=True):
        assert p.grad.numpy().tobytes() == q.grad.numpy().tobytes()  # type: ignore[union-attr]
    program = compiled.last
    assert compiled.recorded is not None and program is not None
    before, after = _all_passes_but_release(compiled.recorded).listing(), compiled.program
    assert "free " not in before and "\nfree ctx%" in after and "= add_(" in after
    assert [line for line in after.splitlines() if not line.startswith("free ")] == before.splitlines()
    kept = {slot for slot, _ in program.grad_writes} | {program.result}
    freed: set[int] = set()
    for ins in program.instructions:
        assert not freed.intersection(ins.ins), f"{ins.label} reads a freed slot"
        assert not freed.intersection(ins.frees), "a slot freed twice"
        freed.update(ins.frees)
    made = {o for ins in program.instructions for o in ins.outs}
    made |= {slot for slot, _ in [*program.arguments, *program.reads, *program.constants]}
    assert made - kept - program.discarded == freed  # every other slot is dropped, the kept ones never
    assert after.count("\nfree ") == sum(1 for ins in program.instructions if ins.frees)


def test_release_pass_lowers_the_peak_memory_of_a_replay() -> None:
    """A chain of 40 ops on 10^5 floats: without freeing, the replay still holds every gradient at its end."""

    def step(x: tg.Tensor) -> tg.Tensor:
        h = x
        for _ in range(40):
            h = (h * 0.999).tanh()
        return tg.grad(h.sum(), x)[0]

    compiled = tg.compile(step)
    x = tg.Tensor(np.linspace(0.0, 1.0, 100_000), requires_grad=True)
    compiled(x)
    assert compiled.recorded is not None and compiled.last is not None
    peaks = []
    for program in (_all_passes_but_release(compiled.recorded), compiled.last):
        program.replay([x.data], [x])  # warm-up: the generated function is made once
        tracemalloc.start()
        got = program.replay([x.data], [x])
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert got.numpy().tobytes() == step(x).numpy().tobytes()
    assert peaks[1] < 0.75 * peaks[0], peaks
