"""ab_passes.py — one pass's effect on the composed step's replay, measured in one run, alternating.

Compiles `composed_step` (bench_rnn.py) twice, once with every pass in PASSES and once without the
named ones, then times the reference, both replays and eager in turn. Ratios are medians over the
hand-written per-step reference of the same run.

--cpu times CPU time of this process instead (run it with OPENBLAS_NUM_THREADS=1, so that BLAS threads
spinning while the machine is busy do not count), and reports the minimum over rounds, not the median:
on a shared machine wall-clock medians swing by several times, CPU-time minima far less.

Run: python benchmarks/ab_passes.py --without stacked_products [--sizes small,long] [--rounds 7] [--cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np
from bench_rnn import SIZES, ReferenceStep, composed_step, interleaved_times, make_problem

import tinygrad_rnn as tg
from tinygrad_rnn.compile import passes

compile_module = sys.modules["tinygrad_rnn.compile"]  # the package: tg.compile, the function, shadows its name


def compiled_with(problem: dict[str, Any], chosen: tuple[Any, ...]) -> tuple[Any, int]:
    step, params = composed_step(problem)
    compiled = tg.compile(step)
    compile_module.PASSES = chosen  # read when a call records; the program is cached after that
    try:
        compiled(problem["x"], problem["targets"])
    finally:
        compile_module.PASSES = passes.PASSES
    assert compiled.last is not None

    def run() -> Any:
        for p in params:
            p.grad = None
        return compiled(problem["x"], problem["targets"])

    return run, len(compiled.last.instructions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--without", required=True, help="comma-separated pass names to leave out")
    parser.add_argument("--sizes", default="small,long")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--cpu", action="store_true", help="CPU time, minimum over rounds")
    args = parser.parse_args()
    clock = time.process_time if args.cpu else time.perf_counter
    summary = min if args.cpu else statistics.median
    left_out = set(args.without.split(","))
    fewer = tuple(p for p in passes.PASSES if p.__name__ not in left_out)
    for name in args.sizes.split(","):
        problem = make_problem(SIZES[name], np.dtype("float32"))
        before, n_before = compiled_with(problem, fewer)
        after, n_after = compiled_with(problem, passes.PASSES)
        systems = {"reference": ReferenceStep(problem, hoisted=False), "before": before, "after": after}
        times = interleaved_times(systems, args.rounds, clock)
        ref = summary(times["reference"])
        print(
            f"{name} {SIZES[name]}: reference {ref * 1e3:.2f} ms | without {args.without} "
            f"{summary(times['before']) / ref:.2f}x ({n_before} instructions) | "
            f"with {summary(times['after']) / ref:.2f}x ({n_after} instructions)"
        )


if __name__ == "__main__":
    main()
