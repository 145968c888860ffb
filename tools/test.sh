#!/usr/bin/env bash
# The whole test suite: sets up .venv if needed, lints, then runs pytest on 2 processes.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
ruff check tfdplc tools tests
# --dist loadfile: a file's tests share one worker, so its module-scoped fixtures (exports, trained
# workdirs) are built once, not once per worker.
python -m pytest -n 2 --dist loadfile -q --durations=15 tests "$@"  # the 15 slowest, to keep it under 8 min
