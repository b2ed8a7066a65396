"""count_backward_calls.py — how many distinct package functions a plain `loss.backward()` runs.

The graph is the one issue 11 names: `nn.RNN(3, 4)` on a (5, 2, 3) input, then
`nn.Linear(4, 1)`, then `mse_loss`. `sys.setprofile` records every Python
function called during `backward()` only (the forward pass is built first);
functions are counted once each, by file and name, and only those inside the
tinygrad_rnn package. Fewer distinct functions means a shorter path for a
reader to follow from the seed to a leaf's `.grad`.

Run: python benchmarks/count_backward_calls.py [--list]
"""

from __future__ import annotations

import argparse
import os
import sys
from types import FrameType
from typing import Any

import numpy as np

import tinygrad_rnn as tg
from tinygrad_rnn import nn
from tinygrad_rnn.nn.functional import mse_loss

PACKAGE = os.path.dirname(tg.__file__)


def count() -> set[tuple[str, str]]:
    rng = np.random.default_rng(0)
    rnn, readout = nn.RNN(3, 4), nn.Linear(4, 1)
    out, _ = rnn(tg.Tensor(rng.standard_normal((5, 2, 3))))
    loss = mse_loss(readout(out), rng.standard_normal((5, 2, 1)))
    called: set[tuple[str, str]] = set()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code.co_filename.startswith(PACKAGE):
            code = frame.f_code
            called.add((os.path.relpath(code.co_filename, PACKAGE), code.co_qualname))

    sys.setprofile(profile)
    try:
        loss.backward()
    finally:
        sys.setprofile(None)
    return called


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--list", action="store_true", help="print every function, grouped by file")
    args = parser.parse_args()
    called = count()
    files = sorted({f for f, _ in called})
    print(f"{len(called)} distinct functions in {len(files)} files")
    if args.list:
        for path, name in sorted(called):
            print(f"  {path}: {name}")


if __name__ == "__main__":
    main()
