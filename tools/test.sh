#!/usr/bin/env bash
# The whole test suite: sets up .venv if needed, lints, then runs pytest on 2 processes.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
ruff check tfdplc tools tests
python -m pytest -n 2 -q tests "$@"
