"""bench_through_time.py — BPTT, checkpointed BPTT, truncated BPTT and RTRL on the same RNN; JVP against VJP.

Sections (docs/two-modes.md quotes them):

  three ways   one RNN, one loss (squared error of a readout at every step):
               time, peak memory (tracemalloc) and the relative difference
               of the gradient from BPTT's, for each method ("identical" when
               every array is BPTT's, bit for bit);
  rtrl memory  RTRL's peak memory at T = 100, 1,000, 10,000 beside BPTT's;
  rtrl cost    RTRL's time per step against H, beside BPTT's;
  long         T = 20,000, B = 16, D = 32, H = 64, float32: full, checkpointed
               (k = 141 ≈ sqrt(T); the layer's checkpoint_every, and pieces
               with their loss inside) and truncated BPTT, time and peak memory;
  bias         truncated BPTT's gradient against the full one as T and k vary
               (cosine similarity and relative error);
  jvp vs vjp   one forward-mode pass against one reverse-mode pass.

Run: python benchmarks/bench_through_time.py [--quick] [--only three,memory,cost,long,bias,jvp]
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
from tinygrad_rnn import nn


def peak_and_seconds(run: Callable[[], Any]) -> tuple[float, float, Any]:
    """Peak bytes traced while `run` runs (numpy reports its buffers to tracemalloc), its time untraced,
    and what it returned."""
    gc.collect()
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    del result
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    result = run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, seconds, result


def mb(peak: float) -> str:
    return f"{peak / 1e6:.2f} MB"


class Problem:
    """An RNN (as a cell and as a layer with the same weights), a readout and targets."""

    def __init__(self, steps: int, batch: int, inputs: int, hidden: int, dtype: Any = np.float64, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.steps, self.dtype = steps, np.dtype(dtype)
        self.cell = nn.RNNCell(inputs, hidden, dtype=dtype, rng=seed)
        self.layer = nn.RNN(inputs, hidden, dtype=dtype, rng=seed)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(self.layer, f"{name}_l0").data = getattr(self.cell, name).data.copy()
        self.readout = (rng.standard_normal((hidden, 1)) / np.sqrt(hidden)).astype(dtype)
        self.x = tg.Tensor(rng.standard_normal((steps, batch, inputs)).astype(dtype))  # made once, outside the runs
        self.y = rng.standard_normal((steps, batch, 1)).astype(dtype)
        self.scale = 1.0 / (steps * batch)

    def piece_loss(self, start: int, output: tg.Tensor) -> tg.Tensor:
        """Squared error of the readout over the steps start.. of `output` (one piece, or all of it)."""
        error = output @ self.readout - self.y[start : start + output.shape[0]]
        return (error * error).sum() * self.scale

    def step_loss(self, t: int, h: tg.Tensor) -> tg.Tensor:
        return self.piece_loss(t, h.reshape(1, *h.shape))

    def bptt(self) -> list[np.ndarray]:
        output, _ = self.layer(self.x)
        return [g.data for g in tg.grad(self.piece_loss(0, output), list(self.layer.parameters()))]

    def checkpointed(self, every: int) -> list[np.ndarray]:
        """BPTT through the layer with checkpoint_every=k: the same loss on the same (O(T)) output."""
        self.layer.checkpoint_every = every
        try:
            return self.bptt()
        finally:
            self.layer.checkpoint_every = None

    def checkpointed_pieces(self, every: int) -> list[np.ndarray]:
        """Each piece's loss inside its checkpoint: not even the output is kept (each piece projects its input)."""
        loss, _ = nn.checkpointed(self.layer, self.x, every=every, loss_fn=self.piece_loss)
        return [g.data for g in tg.grad(loss, list(self.layer.parameters()))]

    def truncated(self, every: int) -> list[np.ndarray]:
        """The sum of every chunk's gradient, with the weights held fixed (no optimizer step)."""
        params = list(self.layer.parameters())
        total = [np.zeros_like(p.data) for p in params]
        for chunk in nn.tbptt_chunks(self.layer, self.x, every):
            for t, g in zip(total, tg.grad(self.piece_loss(chunk.start, chunk.output), params), strict=True):
                t += g.data
        return total

    def rtrl(self) -> list[np.ndarray]:
        _, grads = nn.rtrl(self.cell, self.x, self.step_loss)
        return [g.data for g in grads]


def difference(grads: list[np.ndarray], reference: list[np.ndarray]) -> str:
    """'identical' when every array is the reference's bit for bit, else the relative difference."""
    if all(np.array_equal(a, b) for a, b in zip(grads, reference, strict=True)):
        return "identical"
    return f"{relative_error(grads, reference):.1e}"


def relative_error(grads: list[np.ndarray], reference: list[np.ndarray]) -> float:
    a, b = np.concatenate([g.ravel() for g in grads]), np.concatenate([g.ravel() for g in reference])
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def cosine(grads: list[np.ndarray], reference: list[np.ndarray]) -> float:
    a, b = np.concatenate([g.ravel() for g in grads]), np.concatenate([g.ravel() for g in reference])
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def three_ways(steps: int, batch: int, inputs: int, hidden: int, every: int) -> None:
    problem = Problem(steps, batch, inputs, hidden)
    reference = problem.bptt()
    print(f"\n## Three ways through time: RNN T={steps} B={batch} D={inputs} H={hidden} float64\n")
    print("| method | time s | peak memory | gradient vs BPTT (relative) |")
    print("|---|---|---|---|")
    runs: list[tuple[str, Callable[[], list[np.ndarray]]]] = [
        ("BPTT", problem.bptt),
        (f"checkpointed BPTT, checkpoint_every={every}", lambda: problem.checkpointed(every)),
        (f"checkpointed BPTT, k={every}, loss in each piece", lambda: problem.checkpointed_pieces(every)),
        (f"truncated BPTT, k={every} (biased)", lambda: problem.truncated(every)),
        ("RTRL", problem.rtrl),
    ]
    for name, run in runs:
        peak, seconds, grads = peak_and_seconds(run)
        print(f"| {name} | {seconds:.3f} | {mb(peak)} | {difference(grads, reference)} |")


def rtrl_memory(lengths: tuple[int, ...], batch: int, inputs: int, hidden: int) -> None:
    print(f"\n## RTRL's memory does not grow with T: RNN B={batch} D={inputs} H={hidden} float64\n")
    print("| T | BPTT peak | BPTT s | RTRL peak | RTRL s |")
    print("|---|---|---|---|---|")
    for steps in lengths:
        problem = Problem(steps, batch, inputs, hidden)
        bptt_peak, bptt_s, _ = peak_and_seconds(problem.bptt)
        rtrl_peak, rtrl_s, _ = peak_and_seconds(problem.rtrl)
        print(f"| {steps} | {mb(bptt_peak)} | {bptt_s:.2f} | {mb(rtrl_peak)} | {rtrl_s:.2f} |")


def rtrl_cost(hiddens: tuple[int, ...], steps: int, batch: int, inputs: int) -> None:
    print(f"\n## RTRL's time per step against H: RNN T={steps} B={batch} D={inputs} float64 (best of 5)\n")
    print("| H | parameters P | BPTT ms/step | RTRL ms/step | ratio |")
    print("|---|---|---|---|---|")
    for hidden in hiddens:
        problem = Problem(steps, batch, inputs, hidden)
        times = {}
        for name, run in (("bptt", problem.bptt), ("rtrl", problem.rtrl)):
            samples = []
            for _ in range(5):  # the best of 5: this machine is shared, and load only ever adds time
                start = time.perf_counter()
                run()
                samples.append(time.perf_counter() - start)
            times[name] = 1e3 * min(samples) / steps
        count = sum(p.size for p in problem.cell.parameters())
        print(
            f"| {hidden} | {count} | {times['bptt']:.3f} | {times['rtrl']:.3f} | {times['rtrl'] / times['bptt']:.0f} |"
        )


def long_sequence(steps: int, batch: int, inputs: int, hidden: int, every: int) -> None:
    problem = Problem(steps, batch, inputs, hidden, dtype=np.float32)
    print(f"\n## Long sequence: T={steps} B={batch} D={inputs} H={hidden} float32, k={every}\n")
    print("| method | time s | peak memory | gradient against full BPTT's |")
    print("|---|---|---|---|")
    reference = problem.bptt()
    for name, run in (
        ("full BPTT", problem.bptt),
        (f"checkpointed BPTT, checkpoint_every={every}", lambda: problem.checkpointed(every)),
        (f"checkpointed BPTT, k={every}, loss in each piece", lambda: problem.checkpointed_pieces(every)),
        (f"truncated BPTT, k={every}", lambda: problem.truncated(every)),
    ):
        peak, seconds, grads = peak_and_seconds(run)
        print(f"| {name} | {seconds:.2f} | {mb(peak)} | {difference(grads, reference)} |")


def truncation_bias(lengths: tuple[int, ...], chunks: tuple[int, ...], batch: int, inputs: int, hidden: int) -> None:
    print(f"\n## Truncated BPTT's bias: RNN B={batch} D={inputs} H={hidden} float64\n")
    print("Gradient of the whole-sequence loss by truncated BPTT (weights held fixed) against BPTT's.")
    for radius in (None, 1.0):
        label = "default init" if radius is None else f"W_hh rescaled to spectral radius {radius}"
        print(f"\n{label}:\n")
        print("| T | k | cosine similarity | relative error |")
        print("|---|---|---|---|")
        for steps in lengths:
            problem = Problem(steps, batch, inputs, hidden)
            if radius is not None:
                w = problem.layer.weight_hh_l0
                w.data = w.data * (radius / max(abs(np.linalg.eigvals(w.data))))
            reference = problem.bptt()
            for every in chunks:
                if every < steps:
                    grads = problem.truncated(every)
                    similarity, error = cosine(grads, reference), relative_error(grads, reference)
                    print(f"| {steps} | {every} | {similarity:.4f} | {error:.3f} |")


def jvp_against_vjp(steps: int, batch: int, inputs: int, hidden: int, rounds: int) -> None:
    problem = Problem(steps, batch, inputs, hidden)
    x = tg.Tensor(problem.x)
    direction = tg.Tensor(np.random.default_rng(1).standard_normal(problem.x.shape))

    def f(inp: tg.Tensor) -> tg.Tensor:
        return problem.piece_loss(0, problem.layer(inp)[0])

    def forward() -> None:
        with tg.no_grad():
            f(x)

    def vjp() -> None:
        tg.func.grad(f)(x)

    def jvp() -> None:
        tg.func.jvp(f, (x,), (direction,))

    times: dict[str, list[float]] = {"forward": [], "vjp": [], "jvp": []}
    for _ in range(rounds):
        for name, run in (("forward", forward), ("vjp", vjp), ("jvp", jvp)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    median = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    print(f"\n## One JVP against one VJP: RNN loss, T={steps} B={batch} D={inputs} H={hidden} float64\n")
    print(f"d(loss)/dx along one direction (JVP) or for all of x (VJP), each with its forward; median of {rounds}\n")
    print("| pass | ms | ratio |")
    print("|---|---|---|")
    for name in ("forward", "vjp", "jvp"):
        print(f"| {name} | {median[name]:.2f} | {median[name] / median['vjp']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run for CI")
    parser.add_argument(
        "--only", default="three,memory,cost,long,bias,jvp", help="comma-separated sections to run (default: all)"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    if args.quick:
        three_ways(12, 2, 3, 4, every=4)
        rtrl_memory((5, 10), 1, 2, 3)
        rtrl_cost((2, 4), 5, 1, 2)
        long_sequence(20, 2, 3, 4, every=5)
        truncation_bias((12,), (3, 6), 2, 2, 3)
        jvp_against_vjp(5, 2, 3, 4, rounds=2)
        return
    if "three" in only:
        three_ways(1000, 1, 4, 8, every=32)
    if "memory" in only:
        rtrl_memory((100, 1_000, 10_000), 1, 4, 8)
    if "cost" in only:
        rtrl_cost((4, 8, 16, 32), 50, 1, 4)
    if "long" in only:
        long_sequence(20_000, 16, 32, 64, every=141)
    if "bias" in only:
        truncation_bias((50, 200), (1, 5, 10, 25, 50, 100), 8, 4, 16)
    if "jvp" in only:
        jvp_against_vjp(100, 8, 16, 32, rounds=11)


if __name__ == "__main__":
    main()
