"""bench_engine.py — what the engine costs per recorded op, and how the tape walk scales.

Two measurements, each a ratio inside one run so that a noisy, shared machine
matters less:

1. Overhead per op: a chain y = ((x * c) * c) * ... of N small multiplies,
   forward and backward through the engine, against the bare numpy calls that
   do the same arithmetic (one multiply forward and one backward per op).
   overhead = (engine - numpy) / N. The same chain compiled by `tg.compile`
   (recorded once, then replayed as a flat program) is timed beside it:
   replay overhead = (replay - numpy) / N. Medians, and the same from each
   system's fastest round (the least disturbed when other work shares the cores).
2. The tape walk: backward through chains of 10^3 .. 10^5 nodes. If the cost
   per node stays flat, the walk is linear in the number of nodes.

Run: python benchmarks/bench_engine.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import tinygrad_rnn as tg


def _median_and_min(fn: Callable[[], None], rounds: int) -> tuple[float, float]:
    fn()  # warm up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def engine_chain(n: int, width: int, compiled: bool = False) -> Callable[[], None]:
    x = tg.Tensor(np.ones(width), requires_grad=True)
    c = tg.Tensor(np.full(width, 1.0001))

    def chain() -> None:
        y = x
        for _ in range(n):
            y = y * c
        y.backward(np.ones(width))

    step = tg.compile(chain) if compiled else chain

    def run() -> None:
        step()
        x.grad = None  # outside the step: tg.compile refuses a .grad changed other than by backward

    if compiled:
        run()  # records; the timed calls replay
    return run


def numpy_chain(n: int, width: int) -> Callable[[], None]:
    x = np.ones(width)
    c = np.full(width, 1.0001)

    def run() -> None:
        y = x
        for _ in range(n):
            y = y * c  # forward
        g = np.ones(width)
        for _ in range(n):
            g = g * c  # the VJP of each multiply

    return run


def overhead_per_op(n: int, rounds: int, width: int = 4) -> dict[str, float]:
    # Interleave the systems round by round, so drift in machine load hits them all.
    systems = {"engine": engine_chain(n, width), "replay": engine_chain(n, width, True), "numpy": numpy_chain(n, width)}
    times: dict[str, list[float]] = {name: [] for name in systems}
    for run in systems.values():
        run()
    for _ in range(rounds):
        for name, run in systems.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    engine, replay, bare = (statistics.median(times[name]) for name in ("engine", "replay", "numpy"))
    fastest = {name: min(t) for name, t in times.items()}  # the least disturbed round of each, on a busy machine
    return {
        "replay_overhead_us_per_op_min": 1e6 * (fastest["replay"] - fastest["numpy"]) / n,
        "overhead_us_per_op_min": 1e6 * (fastest["engine"] - fastest["numpy"]) / n,
        "engine_us_per_op": 1e6 * engine / n,
        "replay_us_per_op": 1e6 * replay / n,
        "numpy_us_per_op": 1e6 * bare / n,
        "overhead_us_per_op": 1e6 * (engine - bare) / n,
        "replay_overhead_us_per_op": 1e6 * (replay - bare) / n,
        "ratio": engine / bare,
        "replay_ratio": replay / bare,
    }


def walk_scaling(sizes: list[int], rounds: int) -> list[tuple[int, float]]:
    """Backward-only time per node for chains of each size (forward excluded)."""
    rows = []
    for n in sizes:
        x = tg.Tensor(np.ones(2), requires_grad=True)
        per_round = []
        for _ in range(rounds):
            y = x
            for _ in range(n):
                y = y * 1.0
            start = time.perf_counter()
            y.backward(np.ones(2))
            per_round.append(time.perf_counter() - start)
        rows.append((n, 1e6 * statistics.median(per_round) / n))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI smoke runs")
    parser.add_argument("--rounds", type=int, help="rounds of the overhead measurement (default 15; --quick 3)")
    args = parser.parse_args()
    n, rounds = (200, 3) if args.quick else (5000, 15)
    rounds = args.rounds or rounds
    sizes = [100, 1000] if args.quick else [1000, 10_000, 100_000]

    stats = overhead_per_op(n, rounds)
    print(f"chain of {n} multiplies on (4,) arrays, forward + backward, median of {rounds} rounds")
    print(f"  engine (eager)      {stats['engine_us_per_op']:7.2f} us/op")
    print(f"  tg.compile replay   {stats['replay_us_per_op']:7.2f} us/op")
    print(f"  bare numpy          {stats['numpy_us_per_op']:7.2f} us/op")
    print(f"  eager overhead      {stats['overhead_us_per_op']:7.2f} us/op   (engine / numpy = {stats['ratio']:.1f}x)")
    print(
        f"  replay overhead     {stats['replay_overhead_us_per_op']:7.2f} us/op   "
        f"(replay / numpy = {stats['replay_ratio']:.1f}x)"
    )
    print(
        f"  fastest rounds      eager overhead {stats['overhead_us_per_op_min']:.2f} us/op, "
        f"replay overhead {stats['replay_overhead_us_per_op_min']:.2f} us/op"
    )
    print("tape walk (backward only), time per node:")
    for size, per_node in walk_scaling(sizes, max(2, rounds // 5)):
        print(f"  {size:>7} nodes  {per_node:6.2f} us/node")


if __name__ == "__main__":
    main()
