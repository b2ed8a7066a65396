"""bench_compile.py — the composed RNN cell, eager on the tape and replayed by tg.compile, against the reference.

The cell is issue 10's: `h = (x_t @ W_hx + h @ W_hh + b).tanh()` written with raw
Tensor ops, a readout `h @ W_oh + b_o` and an MSE term per step, then one
backward. Ratios are median times over the hand-written per-step numpy BPTT
(tinygrad_rnn.checks.reference) of the same step, in the same run; the
first-call (record) cost is given as a multiple of one eager step. The cell
(`composed_step`) lives in bench_rnn.py, whose "composed" pair times it
beside the other pairs, each eager and compiled.

Run: python benchmarks/bench_compile.py [--sizes small,typical] [--rounds 7] [--dtype float32]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
from bench_rnn import SIZES, ReferenceStep, composed_step, interleaved_times, make_problem

import tinygrad_rnn as tg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="small,typical")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    for name in args.sizes.split(","):
        problem = make_problem(SIZES[name], np.dtype(args.dtype))
        step, params = composed_step(problem)
        compiled = tg.compile(step)
        x, targets = problem["x"], problem["targets"]
        start = time.perf_counter()
        compiled(x, targets)  # the first call records
        record = time.perf_counter() - start
        eager_grads = [p.grad.numpy().copy() for p in params]  # type: ignore[union-attr]
        for p in params:
            p.grad = None
        compiled(x, targets)  # a replay gives the same gradients, to the last bit
        assert all(np.array_equal(p.grad.numpy(), g) for p, g in zip(params, eager_grads, strict=True))  # type: ignore[union-attr]

        def zeroed(run: Any, params: list[tg.Tensor] = params, x: Any = x, targets: Any = targets) -> Any:
            def timed() -> Any:
                for p in params:
                    p.grad = None
                return run(x, targets)

            return timed

        times = interleaved_times(
            {"reference": ReferenceStep(problem, hoisted=False), "eager": zeroed(step), "compiled": zeroed(compiled)},
            args.rounds,
        )
        ref = statistics.median(times["reference"])
        eager = statistics.median(times["eager"])
        replay = statistics.median(times["compiled"])
        instructions = len(compiled.last.instructions) if compiled.last else 0
        print(
            f"{name} {SIZES[name]} {args.dtype}: reference {ref * 1e3:.2f} ms | eager {eager / ref:.2f}x | "
            f"compiled {replay / ref:.2f}x | record {record / eager:.1f} eager steps | {instructions} instructions"
        )


if __name__ == "__main__":
    main()
