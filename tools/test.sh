#!/usr/bin/env bash
# The whole test suite: sets up .venv if needed, lints, then runs pytest on 2 processes.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
ruff check tfdplc tools tests
# pytest -n 2 already keeps both cores of the reference machine busy: one TensorFlow thread per pool in each
# process (the workers and the tools they start) avoids oversubscribing them, and measured 6% faster on a
# 242-test subset (2 cores, idle). A caller's own setting wins.
export TF_NUM_INTRAOP_THREADS="${TF_NUM_INTRAOP_THREADS:-1}" TF_NUM_INTEROP_THREADS="${TF_NUM_INTEROP_THREADS:-1}"
# --dist loadfile: a file's tests share one worker, so its module-scoped fixtures (exports, trained
# workdirs) are built once, not once per worker.
# TensorFlow's kernels: oneDNN on every x86-64 CPU unless TF_ENABLE_ONEDNN_OPTS is set (tests/conftest.py,
# tfdplc.cpu.prefer_onednn); .ci/run also runs the numerically sensitive files with it set to 0.
# Test files given as arguments (tests/...) replace the whole suite; other arguments go to pytest.
paths=(tests)
for arg in "$@"; do
  case "$arg" in tests/*) paths=() ;; esac
done
run_pytest() { python -m pytest -n 2 --dist loadfile -q --durations=15 "$@"; }  # the 15 slowest, to keep it under 10 min
# ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 CPU (how docs/performance.md emulates an AVX2-only CPU) leaves TF
# sending bfloat16 ops to a oneDNN that cannot build them; a real AVX2-only CPU runs them on TF's Eigen
# kernels, so the tests marked bfloat16 run there, in a second pass (tfdplc.cpu.bf16_blocked_by_isa_cap).
if python -c "import sys; from tfdplc import cpu; sys.exit(0 if cpu.bf16_blocked_by_isa_cap() else 1)"; then
  echo "[test] ONEDNN_MAX_CPU_ISA=$ONEDNN_MAX_CPU_ISA on an AVX-512 CPU: the bfloat16 tests run on Eigen kernels"
  # pytest exits 5 when a pass selects no test (e.g. test files given as arguments without bfloat16 tests).
  run_pytest -m "not bfloat16" "${paths[@]}" "$@" || [ $? -eq 5 ]
  TF_ENABLE_ONEDNN_OPTS=0 run_pytest -m bfloat16 "${paths[@]}" "$@" || [ $? -eq 5 ]
else
  run_pytest "${paths[@]}" "$@"
fi
