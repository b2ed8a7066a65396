#!/usr/bin/env bash
# CPU time per training step of two checkouts, run alternately (benchmarks/step_cpu_time.py in each).
# Usage: benchmarks/compare_checkouts.sh BASE_DIR HEAD_DIR [REPEATS]   (run from this repository's root)
# BASE_DIR can be made with: mkdir /tmp/base && git archive <commit> | tar -x -C /tmp/base
set -euo pipefail
base=$1 head=$2 repeats=${3:-3}
scripts=$(mktemp -d)
# one copy, so both checkouts time the same step (step_cpu_time.py imports the step from bench_rnn.py)
cp benchmarks/step_cpu_time.py benchmarks/bench_rnn.py "$scripts"
for size in 1,100,8,32 32,50,64,128 16,1000,32,64; do
  for rep in $(seq "$repeats"); do
    for which in base head; do
      dir=$base; [ "$which" = head ] && dir=$head
      echo "$size $which $rep $(cd /tmp && OPENBLAS_NUM_THREADS=1 PYTHONPATH=$dir python "$scripts/step_cpu_time.py" --size "$size" --blocks 5 --steps 5 | tr '\n' ' ')"
    done
  done
done
rm -rf "$scripts"
