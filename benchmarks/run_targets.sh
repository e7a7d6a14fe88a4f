#!/bin/bash
# Issue 14's targets in one sitting: each benchmark after the other, outputs in $OUT (default bench-out/).
# Usage: bash benchmarks/run_targets.sh [PYTHON_WITH_CHINCHILLA_PACKAGE]
# (the optional argument: a venv's python with the PyPI `chinchilla` package, for bench_fit_package.py)
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
run() { name=$1; shift; date -u +"$name start %H:%M:%S" >> "$OUT/times.txt"; python "$@" > "$OUT/$name.txt" 2>&1; }
run cli benchmarks/bench_cli.py --points 1000 --repeat 5 --before 3818f92 --json "$OUT/cli.json"
run solve benchmarks/bench_solve.py --repeat 10 --cold 3
run whole benchmarks/bench_whole.py --before a39a5df
if [ $# -ge 1 ]; then run fit_package benchmarks/bench_fit_package.py --package-python "$1"; fi
run fit benchmarks/bench_fit.py --repeat 3 --max-runs 100000 --loop-every 450
date -u +"done %H:%M:%S" >> "$OUT/times.txt"
