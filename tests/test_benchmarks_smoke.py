"""The benchmark programs run end to end on tiny sizes, so they cannot rot. No time is asserted."""

import re
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


def test_count_backward_calls_sees_the_walk_and_the_vjps() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "count_backward_calls.py"), "--list"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert re.match(r"\d+ distinct functions in \d+ files", done.stdout), done.stdout
    for called in ("core/backward.py: _Pass.run", "core/ops.py: MatMul.backward", "core/ops.py: Tanh.backward"):
        assert called in done.stdout, done.stdout
    assert "nn/" not in done.stdout  # backward only: the forward pass is not counted


def test_step_cpu_time_runs_on_a_tiny_size() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "step_cpu_time.py"), "--size", "2,3,2,2", "--blocks", "1", "--steps", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"percell \d+\.\d+ ms  hoisted \d+\.\d+ ms  \n", done.stdout), done.stdout


def test_step_cpu_time_times_the_composed_cell_eager_and_compiled() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "step_cpu_time.py"), *("--size", "2,3,2,2", "--blocks", "1"), "--composed"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    pattern = r"percell [\d.]+ ms  hoisted [\d.]+ ms  composed [\d.]+ ms  composed-compiled [\d.]+ ms  \n"
    assert re.fullmatch(pattern, done.stdout), done.stdout
