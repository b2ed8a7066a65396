"""test_compile_usage.py — tg.compile on every training step the CLI and the docs use.

Each step runs twice from the same seed: eagerly, and with its forward and backward under tg.compile
(the optimizer step, clipping and zero_grad outside, as docs/compile.md shows). The losses, every .grad
and every parameter after each optimizer step must agree to the bit. Where tg.compile refuses a feature
on purpose, the CompileError must name it and say what to do instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.cli import chars, forecast, main
from tinygrad_rnn.cli.experiments import Config, _CopyModel, build_layer, copy_forward_backward, train_copy
from tinygrad_rnn.cli.models import CharModel, Forecaster
from tinygrad_rnn.compile import CompileError
from tinygrad_rnn.inspect.gradflow import gradient_flow
from tinygrad_rnn.io.data import adding_problem, delayed_copy
from tinygrad_rnn.nn.functional import cross_entropy, mse_loss
from tinygrad_rnn.nn.utils import clip_grad_norm_

Built = tuple[list[Any], Callable[..., Any], Any]  # (parameters, step, optimizer)
Build = Callable[[Callable[..., Any]], Built]  # given tg.compile or the identity, wraps its forward+backward


def _arrays(out: Any) -> list[bytes]:
    items = out if isinstance(out, tuple) else () if out is None else (out,)
    return [t.numpy().tobytes() for t in items]


def _train(build: Build, batches: Sequence[tuple[Any, ...]], compiled: bool, clip: float) -> tuple[Any, list[Any]]:
    made: list[Any] = []

    def wrap(fn: Callable[..., Any]) -> Any:
        made.append(tg.compile(fn) if compiled else fn)
        return made[-1]

    params, step, optimizer = build(wrap)
    seen = []
    for args in batches:
        optimizer.zero_grad()
        out = step(*args)
        grads = [p.grad.numpy().tobytes() for p in params]
        if clip:
            clip_grad_norm_(params, clip)
        optimizer.step()
        seen.append((_arrays(out), grads, [p.data.tobytes() for p in params]))
    return seen, made


def assert_trains_like_eager(
    build: Build, batches: Sequence[tuple[Any, ...]], clip: float = 0.0, programs: int = 1
) -> None:
    """Compiled and eager runs from the same seed: returned values, .grad and parameters equal to the bit at
    every step, and at most `programs` recordings (fewer than the steps, so later steps replayed)."""
    eager, _ = _train(build, batches, False, clip)
    got, made = _train(build, batches, True, clip)
    for step, (e, g) in enumerate(zip(eager, got, strict=True)):
        assert g[0] == e[0], f"step {step}: returned values differ"
        assert g[1] == e[1], f"step {step}: .grad differs"
        assert g[2] == e[2], f"step {step}: parameters after the optimizer step differ"
    assert made and sum(len(c.cache) for c in made) <= programs < len(batches)


def assert_refused(step: Callable[..., Any], args: tuple[Any, ...], *names: str) -> None:
    with pytest.raises(CompileError) as info:
        tg.compile(step)(*args)
    message = str(info.value)
    for name in names:
        assert name in message, message


# ---------------------------------------------------------------- the CLI


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_cli_forecast_step(cell: str) -> None:
    """cli/forecast.py: `forward_backward` (tbptt chunks, each loss weighted and backward) and `train_step`."""
    series = np.sin(np.arange(60) / 3.0) + 0.1 * np.random.default_rng(0).standard_normal(60)
    batches = [(series[i : i + 13].reshape(13, 1, 1) * np.ones((1, 3, 1)),) for i in range(0, 25, 5)]

    def build(wrap: Callable[..., Any]) -> Built:
        model = Forecaster(cell, 5, 2, rng=1)
        step = wrap(forecast.forward_backward(model, 5, mse_loss, False))
        return model.parameters(), step, tg.optim.Adam(model.parameters(), lr=0.05)

    def as_tensors(seq: np.ndarray) -> tuple[tg.Tensor, tg.Tensor]:
        return tg.Tensor(seq[:-1]), tg.Tensor(seq[1:])

    assert_trains_like_eager(build, [as_tensors(seq) for (seq,) in batches], clip=1.0)


def test_cli_forecast_train_step_gives_the_same_loss_compiled() -> None:
    seq = np.cos(np.arange(11) / 2.0).reshape(11, 1, 1) * np.ones((1, 2, 1))
    losses = []
    for compiled in (False, True):
        model = Forecaster("gru", 4, 1, rng=3)
        optimizer = tg.optim.SGD(model.parameters(), lr=0.1)
        step = forecast.forward_backward(model, 4, mse_loss, compiled)
        losses.append([forecast.train_step(optimizer, step, model.parameters(), seq, 1.0) for _ in range(4)])
    assert losses[0] == losses[1]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_cli_chars_step_carries_state_through_arguments(cell: str) -> None:
    """cli/chars.py: `forward_backward` over one-hot chunks, the state (an LSTM's h, c) passed in and out."""
    ids = np.random.default_rng(4).integers(0, 6, size=(5 * 4 + 1, 3))

    def build(wrap: Callable[..., Any]) -> Built:
        model = CharModel(cell, 6, 8, 2, rng=2)
        train_chunk = wrap(chars.forward_backward(model, cell, False))
        state: list[tg.Tensor] = []

        def step(x: tg.Tensor, target: tg.Tensor) -> tuple[tg.Tensor, ...]:
            loss, *state[:] = train_chunk(x, target, *state)
            return (loss, *state)

        return model.parameters(), step, tg.optim.Adam(model.parameters())

    one_hot = CharModel(cell, 6, 8, 2, rng=2).one_hot
    batches = [(one_hot(ids[i : i + 4]), one_hot(ids[i + 1 : i + 5])) for i in range(0, 20, 4)]
    assert_trains_like_eager(build, batches, clip=1.0, programs=2)  # the first chunk starts from no state


def test_cli_gradflow_lag_sweep_step() -> None:
    """cli/experiments.py `train_copy` (tinygrad-rnn gradflow --sweep --compile): Adam, cross-entropy with a
    mask, clipping. Its targets go in one-hot, so new batches replay; class indices would key the cache."""
    tasks = [tuple(delayed_copy(6, 3, 2, 4, seed=s)) for s in range(4)]

    def build(wrap: Callable[..., Any]) -> Built:
        model = _CopyModel("lstm", 4, 8, seed=0, gate_bias=1.0)
        step = wrap(copy_forward_backward(model))
        return model.parameters(), step, tg.optim.Adam(model.parameters(), lr=0.02)

    assert_trains_like_eager(build, [(x, np.eye(4)[targets], mask) for x, targets, mask in tasks], clip=1.0)
    model = _CopyModel("rnn", 4, 8, seed=0)
    with_ids = tg.compile(lambda x, t, m: cross_entropy(model(x), t, mask=m).backward())
    for x, targets, mask in tasks[:3]:
        with_ids(x, targets, mask)
    assert len(with_ids.cache) == 3
    runs = [train_copy("gru", 2, budget=6, eval_every=3, hidden=8, compile=c) for c in (False, True)]
    assert runs[0] == runs[1]


def test_cli_gradflow_sweep_prints_the_same_compiled(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["gradflow", "--T", "4", "--batch", "2", "--hidden", "4", "--sweep", "--lags", "2,3", "--budget", "8"]
    printed = []
    for flag in ("--compile", "--no-compile"):
        assert main([*argv, flag]) == 0
        printed.append([line for line in capsys.readouterr().out.splitlines() if " took " not in line])
    assert printed[0] == printed[1] and any("lag 3" in line for line in printed[0])


def test_cli_gradflow_experiment_is_refused() -> None:
    """cli/experiments.py `run_experiment`: gradient_flow watches a pass (retain_grad, observers)."""
    layer = build_layer(Config("x", "rnn", rho=0.9), 2, 4, seed=0)
    x = adding_problem(5, 2, seed=0).inputs

    def study(x: np.ndarray) -> None:
        gradient_flow(layer, x, lambda out: (out[-1] ** 2).sum())

    assert_refused(study, (x,), "study tools", "outside the compiled function")


# ---------------------------------------------------------------- the docs


def test_docs_remedies_clipped_sgd_on_the_adding_problem() -> None:
    """docs/remedies.md `train(clip)`: an exploding RNN (rho = 2), a readout on the last step, SGD, clipping."""
    batches = [tuple(adding_problem(12, 4, seed=s))[:2] for s in range(4)]

    def build(wrap: Callable[..., Any], as_written: bool = False) -> Built:
        layer = build_layer(Config("x", "rnn", rho=2.0), 2, 8, seed=0)
        head = nn.Linear(8, 1, rng=1)

        def step(x: np.ndarray, y: np.ndarray) -> tg.Tensor:
            out, _ = layer(x)
            target = y if as_written else tg.Tensor(y)  # y[-1] of an ndarray is cut in Python
            loss = mse_loss(head(out[-1]), target[-1])
            loss.backward()
            return loss.detach()

        params = layer.parameters() + head.parameters()
        return params, wrap(step), tg.optim.SGD(params, lr=0.1)

    assert_trains_like_eager(build, batches, clip=1.0)
    _, step, _ = build(lambda f: f, as_written=True)
    assert_refused(step, batches[0], "cut from argument 1", "tg.Tensor(x)")


@pytest.mark.parametrize("k", [4, 5])
def test_docs_truncated_bptt_chunks_inside_one_step(k: int) -> None:
    """docs/rnn.md section 7 and docs/remedies.md: `tbptt_chunks` with a backward per chunk; k = 5 leaves
    a short last chunk. The state crosses chunks detached, inside the call."""
    rng = np.random.default_rng(7)
    batches = [(rng.standard_normal((12, 3, 2)),) for _ in range(4)]

    def build(wrap: Callable[..., Any]) -> Built:
        rnn, readout = nn.RNN(2, 5, rng=1), nn.Linear(5, 1, rng=1)

        def step(x: np.ndarray) -> tuple[tg.Tensor, ...]:
            pieces = []
            for chunk in nn.tbptt_chunks(rnn, tg.Tensor(x), k=k):  # chunks of a Tensor: recorded slices
                piece = ((readout(chunk.output) - 1.0) ** 2).mean()
                piece.backward()
                pieces.append(piece.detach())
            return tuple(pieces)

        params = rnn.parameters() + readout.parameters()
        return params, wrap(step), tg.optim.Adam(params, lr=0.01)

    assert_trains_like_eager(build, batches)
    rnn = nn.RNN(2, 5, rng=1)

    def as_written(x: np.ndarray) -> None:  # the ndarray sliced into chunks in Python
        for chunk in nn.tbptt_chunks(rnn, x, k=k):
            (chunk.output**2).mean().backward()

    assert_refused(as_written, batches[0], "cut from argument 0", "tg.Tensor(x)")


@pytest.mark.parametrize("layers", [1, 2])
def test_docs_rnn_layer_with_readout_every_step(layers: int) -> None:
    """docs/rnn.md section 4 and README.md: nn.RNN + Linear, MSE over every step, float32 as well."""
    rng = np.random.default_rng(layers)
    batches = [(rng.standard_normal((5, 4, 3)), rng.standard_normal((5, 4, 1))) for _ in range(4)]

    def build(wrap: Callable[..., Any]) -> Built:
        rnn, readout = nn.RNN(3, 6, num_layers=layers, rng=1), nn.Linear(6, 1, rng=1)

        def step(x: np.ndarray, y: np.ndarray) -> tg.Tensor:
            output, _ = rnn(x)
            loss = ((readout(output) - y) ** 2).mean()
            loss.backward()
            return loss.detach()

        params = rnn.parameters() + readout.parameters()
        return params, wrap(step), tg.optim.RMSprop(params, lr=0.01)

    assert_trains_like_eager(build, batches)


def _manual_rnn(retain: bool, wrap: Callable[..., Any] = lambda f: f) -> Built:
    """docs/rnn.md section 3: the cell written with raw Tensor ops in a Python loop over t."""
    rng = np.random.default_rng(0)
    D, H = 2, 3
    W_hx, W_hh, b_h, W_oh = (
        tg.Tensor(rng.uniform(-1, 1, shape), requires_grad=True) for shape in [(H, D), (H, H), (H,), (1, H)]
    )

    def step(xs: Any, ys: Any, h0: np.ndarray) -> tg.Tensor:
        h, loss = tg.Tensor(h0), 0.0
        if not retain:  # as a compiled step must: index Tensors, not the ndarray arguments
            xs, ys = tg.Tensor(xs), tg.Tensor(ys)
        for t in range(len(xs)):
            a = W_hx @ xs[t] + W_hh @ h + b_h
            h = (a.retain_grad() if retain else a).tanh()
            loss = loss + ((W_oh @ h - ys[t]) ** 2).sum() / len(xs)
        assert isinstance(loss, tg.Tensor)
        loss.backward()
        return loss.detach()

    params = [W_hx, W_hh, b_h, W_oh]
    return params, wrap(step), tg.optim.SGD(params, lr=0.1, momentum=0.9)


def test_docs_hand_written_rnn_cell() -> None:
    rng = np.random.default_rng(1)
    batches = [(rng.standard_normal((3, 2)), rng.standard_normal((3, 1)), rng.standard_normal(3)) for _ in range(4)]
    assert_trains_like_eager(lambda wrap: _manual_rnn(False, wrap), batches)
    _, step, _ = _manual_rnn(retain=True)  # as the doc writes it: retain_grad, and xs[t] of an ndarray
    assert_refused(step, batches[0], "cut from argument 0")
    assert_refused(step, tuple(tg.Tensor(a) for a in batches[0]), "retain_grad", "outside the compiled function")


def test_docs_pytorch_sequential_with_adamw_and_a_scheduler() -> None:
    """docs/pytorch.md: Sequential, CrossEntropyLoss with labels made inside the step, AdamW, StepLR."""

    def build(wrap: Callable[..., Any]) -> Built:
        tg.manual_seed(0)
        model = tg.nn.Sequential(tg.nn.Linear(3, 4), tg.nn.Tanh(), tg.nn.Linear(4, 2))
        opt = tg.optim.AdamW(model.parameters(), lr=0.1)
        sched = tg.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

        def step(x: tg.Tensor) -> tg.Tensor:
            loss = tg.nn.CrossEntropyLoss()(model(x), tg.tensor([0, 1, 0, 1, 1]))
            loss.backward()
            return loss.detach()

        class Stepping:  # opt.step(); sched.step(), as the doc's loop does
            def zero_grad(self) -> None:
                opt.zero_grad()

            def step(self) -> None:
                opt.step()
                sched.step()

        return model.parameters(), wrap(step), Stepping()

    rng = np.random.default_rng(2)
    assert_trains_like_eager(build, [(tg.Tensor(rng.standard_normal((5, 3))),) for _ in range(4)])


def test_docs_two_modes_truncated_gradients_returned_from_tg_grad() -> None:
    """docs/two-modes.md `truncated(k)`: tg.grad per chunk, summed in numpy. Inside a compiled step the
    gradients are returned (`.numpy()` inside would be refused) and summed outside."""
    layer = nn.RNN(2, 3, rng=0)
    params = list(layer.parameters())
    targets = np.random.default_rng(0).normal(size=(12, 1, 3))

    def per_chunk(x: np.ndarray) -> tuple[tg.Tensor, ...]:
        grads: list[Any] = []
        for chunk in nn.tbptt_chunks(layer, tg.Tensor(x), 5):
            loss = ((chunk.output - targets[chunk.start : chunk.stop]) ** 2).sum()
            grads += tg.grad(loss, params)
        return tuple(grads)

    compiled = tg.compile(per_chunk)
    for seed in range(3):
        x = np.random.default_rng(seed).normal(size=(12, 1, 2))
        assert _arrays(compiled(x)) == _arrays(per_chunk(x))
    assert len(compiled.cache) == 1

    def summed_inside(x: np.ndarray) -> None:
        total = [np.zeros(p.shape) for p in params]
        for t, g in zip(total, per_chunk(x)[:4], strict=True):
            t += g.numpy()

    assert_refused(summed_inside, (np.ones((12, 1, 2)),), "numpy()", "outside the compiled function")


@pytest.mark.parametrize("how", ["checkpoint_every", "nn.checkpointed"])
def test_docs_checkpointed_bptt_is_refused_by_name(how: str) -> None:
    """docs/two-modes.md: a layer's `checkpoint_every` and `nn.checkpointed` recompute in backward."""
    layer = nn.RNN(2, 3, rng=0, checkpoint_every=5 if how == "checkpoint_every" else None)

    def step(x: np.ndarray) -> None:
        if how == "checkpoint_every":
            output, _ = layer(x)
            loss = (output**2).sum()
        else:
            loss, _ = nn.checkpointed(layer, tg.Tensor(x), every=5, loss_fn=lambda start, out: (out**2).sum())
        loss.backward()

    assert_refused(step, (np.ones((10, 1, 2)),), "tg.checkpoint", "without checkpointing")


@pytest.mark.parametrize("transform", ["rtrl", "jvp", "jacfwd", "hvp"])
def test_docs_forward_mode_is_refused(transform: str) -> None:
    """docs/two-modes.md (nn.rtrl, tg.func.jvp, jacfwd) and docs/autodiff.md (a Hessian-vector product):
    their tangents are computed outside the recorded steps, so a replay would return the first call's."""
    cell = nn.RNNCell(2, 3, rng=0)

    def step(x: tg.Tensor) -> tuple[tg.Tensor, ...]:
        if transform == "rtrl":
            loss, grads = nn.rtrl(cell, (x * 1.0).reshape(2, 1, 2), lambda t, h: (h**2).sum())
            return (loss.detach(), *grads)
        if transform == "jvp":
            return tuple(tg.func.jvp(lambda a: (a**3).sum(), (x,), (tg.ones_like(x),)))
        if transform == "jacfwd":
            return (tg.func.jacfwd(lambda a: (a**3).sum())(x),)
        return tuple(tg.func.hvp(lambda a: (a**3).sum(), (x,), (tg.ones_like(x),)))

    feature = "create_graph" if transform == "hvp" else "forward mode"
    assert_refused(step, (tg.Tensor([1.0, 2.0, 3.0, 4.0]),), feature, "outside the compiled function")


def test_docs_custom_ops_softplus_refused_isru_replays() -> None:
    """docs/custom-ops.md: Softplus's VJP is written for Tensors (refused, naming the fix); ISRU sets
    backward_on_arrays and trains compiled to the bit."""

    class Softplus(tg.Function):
        def forward(ctx, x: Any) -> Any:
            ctx.save_for_backward(x)
            return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))

        def backward(ctx, grad_out: Any) -> Any:
            (x,) = ctx.saved_tensors
            return grad_out * x.sigmoid()

    class ISRU(tg.Function):
        backward_on_arrays = True

        def forward(ctx, x: Any) -> Any:
            ctx.save_for_backward(x)
            return x / np.sqrt(1.0 + x * x)

        def backward(ctx, grad_out: Any) -> Any:
            (x,) = ctx.saved_tensors
            return grad_out * (1.0 + x * x) ** -1.5

    def build(op: type[tg.Function], wrap: Callable[..., Any] = lambda f: f) -> Built:
        w = tg.Tensor(np.linspace(-2.0, 3.0, 6).reshape(3, 2), requires_grad=True)

        def step(x: np.ndarray) -> tg.Tensor:
            loss = op.apply(tg.Tensor(x) @ w).sum()
            loss.backward()
            return loss.detach()

        return [w], wrap(step), tg.optim.SGD([w], lr=0.1)

    rng = np.random.default_rng(3)
    assert_trains_like_eager(lambda wrap: build(ISRU, wrap), [(rng.standard_normal((4, 3)),) for _ in range(4)])
    _, step, _ = build(Softplus)
    assert_refused(step, (np.ones((4, 3)),), "Softplus", "backward_on_arrays = True")
