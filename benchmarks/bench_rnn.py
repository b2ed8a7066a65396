"""bench_rnn.py — one RNN training step on the tape, against hand-written BPTT in the same process.

A training step is: the tanh RNN over T steps, a linear readout at every step,
an MSE loss, and the full backward pass to every parameter (and to x, which
the reference also returns). Three pairs are compared, each as a ratio of median
times within one run:

  percell   the engine running a per-step composed cell (nn.RNNCell and the
            readout inside a Python loop), against `reference.rnn_forward_backward`,
            the plain min-char-rnn-style BPTT;
  hoisted   nn.RNN (one matmul for the input projection of all steps, the
            readout applied to all steps at once), against
            `reference.rnn_forward_backward_hoisted`, which does the same by hand;
  composed  issue 10's cell written with raw Tensor ops (`composed_step`), against
            the per-step reference.

Each engine side is also timed compiled: the same step replayed by `tg.compile`
(the "compiled" column, as a ratio to the same reference in the same run). Then
what a compiled program costs to make and to keep: the first call (record) as a
multiple of one eager step, and the bytes the cache holds between calls.

Before timing, the losses and gradients of each pair are checked to agree.
Systems are interleaved round by round after a warm-up, so drift in machine
load hits all of them alike. Then: peak memory per step (tracemalloc sees
numpy's buffers), LSTM and GRU against the vanilla RNN (for information), and
long sequences (full BPTT, and truncated BPTT whose peak memory is bounded by
the chunk length).

Run: python benchmarks/bench_rnn.py [--quick] [--rounds N] [--dtype float32|float64|both]
     python benchmarks/bench_rnn.py --memory small,typical,long   (peak memory only)
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn, reference
from tinygrad_rnn.nn.functional import mse_loss

SIZES = {  # name: (B, T, D, H)
    "small": (1, 100, 8, 32),
    "typical": (32, 50, 64, 128),
    "matmul-bound": (32, 50, 256, 512),
    "long": (16, 1000, 32, 64),
}
QUICK_SIZES = {"tiny": (2, 8, 3, 4)}
OUT = 1  # the readout predicts one value per step


def make_problem(size: tuple[int, int, int, int], dtype: Any, seed: int = 0) -> dict[str, np.ndarray]:
    batch, steps, inputs, hidden = size
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden)
    arrays = {
        "x": rng.standard_normal((steps, batch, inputs)),
        "targets": rng.standard_normal((steps, batch, OUT)),
        "weight_ih": rng.uniform(-bound, bound, (hidden, inputs)),
        "weight_hh": rng.uniform(-bound, bound, (hidden, hidden)),
        "bias_ih": rng.uniform(-bound, bound, hidden),
        "bias_hh": rng.uniform(-bound, bound, hidden),
        "weight_out": rng.uniform(-bound, bound, (OUT, hidden)),
        "bias_out": rng.uniform(-bound, bound, OUT),
    }
    return {k: v.astype(dtype) for k, v in arrays.items()}


# ---------------------------------------------------------------- the systems


class EngineStep:
    """The tape: either a cell in a Python loop (percell) or nn.RNN over the whole sequence (hoisted)."""

    def __init__(
        self, problem: dict[str, np.ndarray], hoisted: bool, cell: str = "rnn", compiled: bool = False
    ) -> None:
        dtype = problem["x"].dtype
        inputs, hidden = problem["weight_ih"].shape[1], problem["weight_hh"].shape[0]
        self.hoisted = hoisted
        layer_cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        cell_cls = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[cell]
        self.rnn = layer_cls(inputs, hidden, dtype=dtype, rng=0) if hoisted else cell_cls(inputs, hidden, dtype=dtype)
        self.readout = nn.Linear(hidden, OUT, dtype=dtype)
        if cell == "rnn":  # the same weights as the reference, so the two can be compared
            suffix = "_l0" if hoisted else ""
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(self.rnn, name + suffix).data = problem[name].copy()
            self.readout.weight.data = problem["weight_out"].copy()
            self.readout.bias.data = problem["bias_out"].copy()
        self.x = tg.Tensor(problem["x"], requires_grad=True)
        self.targets = problem["targets"]
        self.forward_backward = tg.compile(self.step) if compiled else self.step

    def parameters(self) -> list[nn.Parameter]:
        return self.rnn.parameters() + self.readout.parameters()

    def __call__(self) -> float:
        for p in self.parameters():
            p.grad = None
        self.x.grad = None
        return float(self.forward_backward().item())  # outside the step: tg.compile refuses .item() inside

    def step(self) -> tg.Tensor:
        if self.hoisted:
            output, _ = self.rnn(self.x)
            prediction = self.readout(output)
        else:
            h: Any = None
            predictions = []
            for x_t in self.x.unbind(0):
                h = self.rnn(x_t, h)
                predictions.append(self.readout(h if isinstance(h, tg.Tensor) else h[0]))
            prediction = tg.stack(predictions)
        loss = mse_loss(prediction, self.targets)
        loss.backward()
        return loss.detach()

    def grads(self) -> dict[str, np.ndarray]:
        suffix = "_l0" if self.hoisted else ""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        out = {name: getattr(self.rnn, name + suffix).grad for name in names}
        out["weight_out"], out["bias_out"], out["x"] = self.readout.weight.grad, self.readout.bias.grad, self.x.grad
        return {name: np.asarray(g) for name, g in out.items()}


def composed_step(problem: dict[str, np.ndarray]) -> tuple[Any, list[tg.Tensor]]:
    """Issue 10's cell with raw Tensor ops, `h = (x_t @ W_hx + h @ W_hh + b).tanh()`, a readout
    `h @ W_oh + b_o` and an MSE term per step, then one backward: a function of (x, targets) closing
    over its parameters [W_hx, W_hh, b, W_oh, b_o], the reference's weights transposed."""
    w_hx = tg.Tensor(problem["weight_ih"].T.copy(), requires_grad=True)
    w_hh = tg.Tensor(problem["weight_hh"].T.copy(), requires_grad=True)
    b = tg.Tensor(problem["bias_ih"] + problem["bias_hh"], requires_grad=True)
    w_oh = tg.Tensor(problem["weight_out"].T.copy(), requires_grad=True)
    b_o = tg.Tensor(problem["bias_out"], requires_grad=True)
    params = [w_hx, w_hh, b, w_oh, b_o]

    def step(x: np.ndarray, targets: np.ndarray) -> tg.Tensor:
        xs, ys = tg.Tensor(x).unbind(0), tg.Tensor(targets).unbind(0)
        h = tg.zeros(x.shape[1], w_hh.shape[0], dtype=x.dtype)
        loss: Any = 0.0
        for x_t, y_t in zip(xs, ys, strict=True):
            h = (x_t @ w_hx + h @ w_hh + b).tanh()
            loss = loss + ((h @ w_oh + b_o - y_t) ** 2).mean()
        loss = loss * (1.0 / len(xs))
        loss.backward()
        return loss.detach()

    return step, params


class ComposedStep:
    """`composed_step` as a benchmark system: grads zeroed, one step, the loss; eager or compiled."""

    def __init__(self, problem: dict[str, np.ndarray], compiled: bool = False) -> None:
        step, self.params = composed_step(problem)
        self.forward_backward = tg.compile(step) if compiled else step
        self.x, self.targets = problem["x"], problem["targets"]

    def parameters(self) -> list[tg.Tensor]:
        return self.params

    def __call__(self) -> float:
        for p in self.params:
            p.grad = None
        return float(self.forward_backward(self.x, self.targets).item())

    def grads(self) -> dict[str, np.ndarray]:
        """Named as the reference's (its two biases get the same gradient, that of b)."""
        w_hx, w_hh, b, w_oh, b_o = (np.asarray(p.grad) for p in self.params)
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_out", "bias_out")
        return dict(zip(names, (w_hx.T, w_hh.T, b, b, w_oh.T, b_o), strict=True))


class ReferenceStep:
    """Hand-written BPTT (tinygrad_rnn.checks.reference), step by step or hoisted."""

    def __init__(self, problem: dict[str, np.ndarray], hoisted: bool) -> None:
        self.problem = problem
        self.fn = reference.rnn_forward_backward_hoisted if hoisted else reference.rnn_forward_backward
        self.last: dict[str, np.ndarray] = {}

    def __call__(self) -> float:
        loss, self.last, _ = self.fn(**self.problem)
        return loss

    def grads(self) -> dict[str, np.ndarray]:
        return self.last


def check_agreement(engine: EngineStep | ComposedStep, ref: ReferenceStep, dtype: Any) -> float:
    """Largest relative difference over the loss and every gradient; raises if it is not rounding."""
    loss_e, loss_r = engine(), ref()
    worst = abs(loss_e - loss_r) / max(abs(loss_r), 1e-30)
    for name, g in engine.grads().items():
        r = ref.grads()[name]
        worst = max(worst, float(np.max(np.abs(g - r)) / max(np.max(np.abs(r)), 1e-30)))
    tolerance = 1e-9 if np.dtype(dtype) == np.float64 else 1e-3
    if not worst < tolerance:
        raise SystemExit(f"engine and reference disagree: max relative difference {worst:.2e} >= {tolerance}")
    return worst


# ---------------------------------------------------------------- measuring


# The batched_matmuls pass runs one gemm over T*B rows where eager runs T over B rows: BLAS may round
# differently. Largest difference measured (composed step, every size): 1.5e-6 (float32) and 2.1e-15 (float64)
# of the gradient's largest entry; docs/compile.md, "Batching".
REPLAY_TOLERANCE = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def replay_agrees(replayed: np.ndarray, eager: np.ndarray) -> bool:
    """A compiled step's gradient against eager's: within REPLAY_TOLERANCE of eager's largest entry."""
    scale = float(np.max(np.abs(eager), initial=0.0))
    bound = REPLAY_TOLERANCE.get(eager.dtype, 0.0) * scale
    return replayed.dtype == eager.dtype and bool(np.max(np.abs(replayed - eager), initial=0.0) <= bound)


def interleaved_times(
    systems: dict[str, Callable[[], Any]], rounds: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, list[float]]:
    """Each system's times over `rounds`, the systems taking turns within a round after one warm-up call
    each; `clock` is wall time, or `time.process_time` for this process's CPU time on a busy machine."""
    for run in systems.values():
        run()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(rounds):
        for name, run in systems.items():
            start = clock()
            run()
            times[name].append(clock() - start)
    return times


def peak_bytes(run: Callable[[], Any]) -> int:
    run()  # warm-up, so lazily created state is not counted
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def ms(seconds: float) -> str:
    return f"{1e3 * seconds:9.2f}"


PAIRS = ("percell", "hoisted", "composed")
REFERENCE_OF = {"percell": "percell reference", "hoisted": "hoisted reference", "composed": "percell reference"}


def pair_systems(problem: dict[str, np.ndarray], pair: str, compiled: bool) -> EngineStep | ComposedStep:
    if pair == "composed":
        return ComposedStep(problem, compiled)
    return EngineStep(problem, pair == "hoisted", compiled=compiled)


def bench_sizes(sizes: dict[str, tuple[int, int, int, int]], dtypes: list[Any], rounds: int, repeats: int = 1) -> None:
    """Time each pair, eager and compiled; with repeats > 1, `repeats` separate interleaved blocks of `rounds` rounds.

    The times shown are over all rounds; each ratio is the median of the blocks' ratios, with
    the eager ratio's range, because this shared machine changes speed for seconds at a time."""
    how = f"median of {repeats} blocks' ratios of medians" if repeats > 1 else "ratio of medians"
    print(f"## One training step: engine (eager, and compiled by tg.compile) vs hand-written BPTT (ms, {how})\n")
    spread = " ratio range |" if repeats > 1 else ""
    print(
        f"| size (B,T,D,H) | dtype | pair | engine med | engine min | ref med | ref min | ratio |{spread} "
        "compiled med | compiled ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|" + ("---|" if repeats > 1 else ""))
    for size_name, size in sizes.items():
        for dtype in dtypes:
            problem = make_problem(size, dtype)
            systems: dict[str, Callable[[], Any]] = {}
            for pair in PAIRS:
                engine, compiled = pair_systems(problem, pair, False), pair_systems(problem, pair, True)
                if REFERENCE_OF[pair] not in systems:
                    systems[REFERENCE_OF[pair]] = ReferenceStep(problem, pair == "hoisted")
                ref = systems[REFERENCE_OF[pair]]
                assert isinstance(ref, ReferenceStep)
                check_agreement(engine, ref, dtype)
                compiled()  # records
                compiled()  # replays: the same loss and gradients as eager, to float rounding (batched_matmuls)
                for name, g in engine.grads().items():
                    if not replay_agrees(compiled.grads()[name], g):
                        raise SystemExit(f"{pair}: the compiled step's gradient of {name} differs from eager")
                systems[f"{pair} engine"], systems[f"{pair} compiled"] = engine, compiled
            block_rounds = rounds if size_name != "matmul-bound" else max(3, rounds // 2)
            blocks = [interleaved_times(systems, block_rounds) for _ in range(repeats)]
            for pair in PAIRS:
                e = [t for b in blocks for t in b[f"{pair} engine"]]
                c = [t for b in blocks for t in b[f"{pair} compiled"]]
                r = [t for b in blocks for t in b[REFERENCE_OF[pair]]]
                eager_ratios = block_ratios(blocks, f"{pair} engine", REFERENCE_OF[pair])
                compiled_ratios = block_ratios(blocks, f"{pair} compiled", REFERENCE_OF[pair])
                ratio = f"{statistics.median(eager_ratios):5.2f} |"
                if repeats > 1:
                    ratio += f" {min(eager_ratios):.2f}–{max(eager_ratios):.2f} |"
                print(
                    f"| {size_name} {size} | {np.dtype(dtype).name} | {pair} | {ms(statistics.median(e))} | "
                    f"{ms(min(e))} | {ms(statistics.median(r))} | {ms(min(r))} | {ratio} "
                    f"{ms(statistics.median(c))} | {statistics.median(compiled_ratios):5.2f} |"
                )


def block_ratios(blocks: list[dict[str, list[float]]], system: str, reference: str) -> list[float]:
    return [statistics.median(b[system]) / statistics.median(b[reference]) for b in blocks]


def program_bytes(compiled: Any) -> int:
    """Bytes of the arrays a tg.compile cache keeps between calls: each program's constants and the arrays
    computed in Python that it replays as they are. (Slots are local variables of a replay, freed after it.)"""
    total = 0
    for program in compiled.cache.values():
        kept = [value for _, value in program.constants] + [array for _, array in program.python_arrays]
        total += sum(int(a.nbytes) for a in kept if isinstance(a, np.ndarray | np.generic))
    return total


def bench_record(sizes: dict[str, tuple[int, int, int, int]], dtype: Any, rounds: int) -> None:
    """The first call of a compiled step (record) as a multiple of one eager step, and the memory its cache keeps."""
    print(f"\n## Compiled programs: record cost and memory held, {np.dtype(dtype).name}\n")
    print(
        "record = first call of the compiled step / median eager step (grads zeroed in both); held = bytes of "
        "the arrays the cache keeps (constants, Python-made arrays) and, by tracemalloc, all memory still "
        "allocated after the first call that the eager step would not keep (program, closures, arrays)\n"
    )
    print("| size (B,T,D,H) | pair | instructions | record | held arrays | held, tracemalloc |")
    print("|---|---|---|---|---|---|")
    for size_name, size in sizes.items():
        problem = make_problem(size, dtype)
        for pair in PAIRS:
            eager = pair_systems(problem, pair, False)
            eager_time = statistics.median(interleaved_times({"eager": eager}, rounds)["eager"])
            compiled = pair_systems(problem, pair, True)
            cache = compiled.forward_backward
            start = time.perf_counter()
            compiled()  # the first call records
            record = time.perf_counter() - start
            cache.cache.clear()  # record again under tracemalloc (which slows it): what does the cache keep?
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            compiled()
            for p in compiled.parameters():
                p.grad = None
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            instructions = len(cache.last.instructions) if cache.last else 0
            print(
                f"| {size_name} {size} | {pair} | {instructions} | {record / eager_time:.1f} eager steps | "
                f"{program_bytes(cache) / 1e3:.1f} kB | {held / 1e6:.2f} MB |"
            )


def bench_memory(size: tuple[int, int, int, int], dtype: Any) -> None:
    print(f"\n## Peak memory of one training step, {size} {np.dtype(dtype).name} (tracemalloc)\n")
    print("| pair | engine | reference | ratio | compiled | compiled ratio |")
    print("|---|---|---|---|---|---|")
    problem = make_problem(size, dtype)
    for pair in PAIRS:
        ref = peak_bytes(ReferenceStep(problem, pair == "hoisted"))
        engine = peak_bytes(pair_systems(problem, pair, False))
        replay = pair_systems(problem, pair, True)
        replay()  # records; peak_bytes then warms up (a second recording if Python-made arrays need checking)
        compiled = peak_bytes(replay)
        print(
            f"| {pair} | {engine / 1e6:.2f} MB | {ref / 1e6:.2f} MB | {engine / ref:.2f} | "
            f"{compiled / 1e6:.2f} MB | {compiled / ref:.2f} |"
        )


def bench_cells(size: tuple[int, int, int, int], dtype: Any, rounds: int) -> None:
    print(f"\n## LSTM and GRU against the vanilla RNN, nn layers, {size} {np.dtype(dtype).name} (information)\n")
    print("| cell | median ms | ratio to RNN |")
    print("|---|---|---|")
    problem = make_problem(size, dtype)
    systems: dict[str, Callable[[], Any]] = {cell: EngineStep(problem, True, cell) for cell in ("rnn", "lstm", "gru")}
    times = interleaved_times(systems, rounds)
    base = statistics.median(times["rnn"])
    for cell, t in times.items():
        print(f"| {cell} | {ms(statistics.median(t))} | {statistics.median(t) / base:.2f} |")


def bench_long(batch: int, inputs: int, hidden: int, full_steps: int, truncated_steps: int, chunk: int) -> None:
    print(f"\n## Long sequences, B={batch} D={inputs} H={hidden} float32\n")
    print("| run | time s | peak memory |")
    print("|---|---|---|")
    dtype = np.float32
    for steps in (full_steps // 2, full_steps):
        problem = make_problem((batch, steps, inputs, hidden), dtype)
        engine, ref = EngineStep(problem, True), ReferenceStep(problem, True)
        for name, run in (("engine nn.RNN", engine), ("reference (hoisted)", ref)):
            start = time.perf_counter()
            peak = peak_bytes(run)
            seconds = (time.perf_counter() - start) / 2  # peak_bytes runs it twice
            print(f"| full BPTT T={steps}, {name} | {seconds:.2f} | {peak / 1e6:.1f} MB |")
    for steps in (truncated_steps // 2, truncated_steps):
        rnn, readout = nn.RNN(inputs, hidden, dtype=dtype, rng=0), nn.Linear(hidden, OUT, dtype=dtype, rng=0)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((steps, batch, inputs)).astype(dtype)
        targets = rng.standard_normal((steps, batch, OUT)).astype(dtype)

        def truncated(
            rnn: nn.RNN = rnn, readout: nn.Linear = readout, x: np.ndarray = x, y: np.ndarray = targets
        ) -> None:
            for piece in nn.tbptt_chunks(rnn, x, chunk):
                loss = mse_loss(readout(piece.output), y[piece.start : piece.stop])
                loss.backward()

        start = time.perf_counter()
        peak = peak_bytes(truncated)
        seconds = (time.perf_counter() - start) / 2
        print(f"| truncated BPTT T={steps}, k={chunk}, engine | {seconds:.2f} | {peak / 1e6:.1f} MB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke run for CI")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument(
        "--repeats", type=int, default=1, help="separate blocks of --rounds rounds; the ratio is their median"
    )
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    parser.add_argument(
        "--sizes",
        help=f"comma-separated subset of {','.join(SIZES)}: time only those steps (no memory, cells, long runs)",
    )
    parser.add_argument(
        "--memory",
        help=f"comma-separated subset of {','.join(SIZES)}: only the peak-memory table of each, float32",
    )
    args = parser.parse_args()
    dtypes = [np.float32, np.float64] if args.dtype == "both" else [np.dtype(args.dtype).type]
    if args.quick:
        bench_sizes(QUICK_SIZES, dtypes, rounds=1, repeats=2)  # exercises the blocks too
        bench_record(QUICK_SIZES, np.float64, rounds=1)
        bench_memory(QUICK_SIZES["tiny"], np.float64)
        bench_cells(QUICK_SIZES["tiny"], np.float64, rounds=1)
        bench_long(2, 3, 4, full_steps=40, truncated_steps=80, chunk=10)
        return
    for chosen in (args.sizes, args.memory):
        unknown = [n for n in (chosen or "").split(",") if chosen and n not in SIZES]
        if unknown:
            parser.error(f"unknown size {', '.join(unknown)}; choose from {', '.join(SIZES)}")
    if args.memory:
        for name in args.memory.split(","):
            bench_memory(SIZES[name], np.float32)
        return
    if args.sizes:
        names = args.sizes.split(",")
        bench_sizes({n: SIZES[n] for n in names}, dtypes, args.rounds, args.repeats)
        return
    bench_sizes(SIZES, dtypes, args.rounds, args.repeats)
    bench_record(SIZES, np.float32, max(3, args.rounds // 2))
    bench_memory(SIZES["typical"], np.float32)
    bench_cells(SIZES["typical"], np.float32, max(3, args.rounds // 2))
    bench_long(16, 32, 64, full_steps=20_000, truncated_steps=100_000, chunk=100)


if __name__ == "__main__":
    main()
