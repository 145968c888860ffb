#!/usr/bin/env bash
# Creates (or reuses) .venv at the repository root and installs tfdplc with its test extras into it.
# Sourced by tools/quickstart.sh and tools/test.sh; the install is skipped while setup.py is unchanged.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON_BIN="${PYTHON:-}"
if [ -z "$PYTHON_BIN" ]; then
  for candidate in python3.11 python3.10 python3.9 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON_BIN="$candidate"; break; fi
  done
fi
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $PYTHON_BIN"
  "$PYTHON_BIN" -m venv .venv
fi
STAMP=.venv/.tfdplc-installed
WANT="$(sha256sum setup.py | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] || ! .venv/bin/python -c "import tfdplc" 2>/dev/null; then
  echo "[setup] pip install -e .[test] (one call, so every pin in setup.py holds)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
  echo "$WANT" > "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
