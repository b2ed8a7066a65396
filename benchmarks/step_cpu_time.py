"""step_cpu_time.py — CPU time of one training step, for comparing two versions on a busy machine.

bench_rnn.py times wall-clock medians against a hand-written reference, which
is the right measure on a quiet machine. When other work shares the cores,
wall-clock times swing by several times; CPU time of this process (with one
BLAS thread, so that idle BLAS threads spinning do not count) swings far less.
A step is the same as bench_rnn.py's (tanh RNN, readout, MSE, full backward),
for the per-step cell and for nn.RNN; the figure is the minimum over blocks.

--composed adds issue 10's composed cell (bench_rnn.composed_step, float32), eager
and replayed by tg.compile: the step whose time goes to the ops' own VJPs.

Run: OPENBLAS_NUM_THREADS=1 python benchmarks/step_cpu_time.py --size 1,100,8,32 [--blocks 5 --steps 10] [--composed]
Compare two checkouts by running each with PYTHONPATH=<checkout>, alternately.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from bench_rnn import composed_step, make_problem

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.nn.functional import mse_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="1,100,8,32", help="B,T,D,H")
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="training steps per block")
    parser.add_argument("--composed", action="store_true", help="also the composed cell, eager and compiled")
    args = parser.parse_args()
    batch, steps, inputs, hidden = (int(v) for v in args.size.split(","))
    rng = np.random.default_rng(0)
    rnn, readout, cell = nn.RNN(inputs, hidden), nn.Linear(hidden, 1), nn.RNNCell(inputs, hidden)
    x = tg.Tensor(rng.standard_normal((steps, batch, inputs)), requires_grad=True)
    targets = rng.standard_normal((steps, batch, 1))

    def hoisted() -> None:
        out, _ = rnn(x)
        mse_loss(readout(out), targets).backward()

    def percell() -> None:
        h = tg.Tensor(np.zeros((batch, hidden)))
        states = []
        for x_t in x.unbind(0):
            h = cell(x_t, h)
            states.append(h)
        mse_loss(readout(tg.stack(states)), targets).backward()

    systems: list[tuple[str, Any]] = [("percell", percell), ("hoisted", hoisted)]
    if args.composed:
        problem = make_problem((batch, steps, inputs, hidden), np.float32)
        composed, params = composed_step(problem)

        def zeroed(run: Any) -> Any:
            def step() -> None:
                for p in params:
                    p.grad = None
                run(problem["x"], problem["targets"])

            return step

        systems += [("composed", zeroed(composed)), ("composed-compiled", zeroed(tg.compile(composed)))]
    for name, step in systems:
        step()  # warm-up
        best = float("inf")
        for _ in range(args.blocks):
            start = time.process_time()
            for _ in range(args.steps):
                step()
            best = min(best, (time.process_time() - start) / args.steps)
        print(f"{name} {best * 1e3:.3f} ms", end="  ")
    print()


if __name__ == "__main__":
    main()
