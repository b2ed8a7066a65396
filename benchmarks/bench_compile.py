"""bench_compile.py — the composed RNN cell, eager on the tape and replayed by tg.compile, against the reference.

The cell is issue 10's: `h = (x_t @ W_hx + h @ W_hh + b).tanh()` written with raw
Tensor ops, a readout `h @ W_oh + b_o` and an MSE term per step, then one
backward. Ratios are median times over the hand-written per-step numpy BPTT
(tinygrad_rnn.checks.reference) of the same step, in the same run; the
first-call (record) cost is given as a multiple of one eager step. The cell
(`composed_step`) lives in bench_rnn.py, whose "composed" pair times it
beside the other pairs, each eager and compiled.

Run: python benchmarks/bench_compile.py [--sizes small,typical] [--rounds 7] [--dtype float32] [--profile]

--profile also times each instruction of the replay and prints the time per
label (every `matmul.vjp` together, ...), the largest first: where a replay's
time goes. The timer around each call adds ~0.3 us per instruction.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
from bench_rnn import SIZES, ReferenceStep, composed_step, interleaved_times, make_problem, replay_agrees

import tinygrad_rnn as tg


def profile_replay(compiled: Any, params: list[tg.Tensor], x: Any, targets: Any, rounds: int) -> str:
    """Microseconds per replay spent in each instruction label, timed one call at a time."""
    program = compiled.last
    spent: dict[str, float] = {}
    count: dict[str, int] = {}
    originals = [ins.run for ins in program.instructions]
    for ins in program.instructions:
        count[ins.label] = count.get(ins.label, 0) + 1

        def timed(*values: Any, run: Any = ins.run, label: str = ins.label) -> Any:
            start = time.perf_counter()
            out = run(*values)
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - start
            return out

        ins.run = timed
    program._straight = None
    try:
        for _ in range(rounds):
            for p in params:
                p.grad = None
            compiled(x, targets)
    finally:
        for ins, run in zip(program.instructions, originals, strict=True):
            ins.run = run
        program._straight = None
    total = sum(spent.values())
    rows = sorted(spent.items(), key=lambda item: -item[1])
    return "\n".join(
        f"  {label:<12} {t / rounds * 1e3:7.3f} ms {t / total:6.1%}  {count[label]:6d} x {each * 1e6:6.2f} us"
        for label, t in rows
        for each in [t / rounds / count[label]]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="small,typical")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--profile", action="store_true", help="time the replay per instruction label")
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
        compiled(x, targets)  # a replay gives the same gradients, to float rounding (batched_matmuls)
        assert all(replay_agrees(p.grad.numpy(), g) for p, g in zip(params, eager_grads, strict=True))  # type: ignore[union-attr]

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
        if args.profile:
            print(profile_replay(compiled, params, x, targets, args.rounds))


if __name__ == "__main__":
    main()
