"""The benchmark programs run end to end on tiny sizes, so they cannot rot. No time is asserted."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("program", ["bench_engine.py", "bench_rnn.py", "bench_through_time.py"])
def test_benchmark_runs_on_tiny_sizes(program: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / program), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "us/op" in done.stdout or "| ratio |" in done.stdout, done.stdout
