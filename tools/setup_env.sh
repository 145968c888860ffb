#!/usr/bin/env bash
# Creates (or reuses) .venv at the repository root and installs tfdplc with its test extras into it; then
# puts .venv/bin first on PATH and changes to the repository root. The install is skipped while setup.py
# is unchanged.
#
#   source tools/setup_env.sh      # in your shell: activates the environment for tools/*.py
#
# Safe to source from an interactive shell: it leaves the shell's options as they were (no `set -e` that
# would close the terminal on the next failing command) and returns, not exits, on failure, with a
# non-zero status that scripts running under `set -e` (tools/test.sh, tools/quickstart.sh) stop on.
_tfdplc_setup_env() {
  local - # options set here (errexit, pipefail) end with the function
  set -uo pipefail
  local root python_bin candidate stamp want
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
  cd "$root" || return 1
  python_bin="${PYTHON:-}"
  if [ -z "$python_bin" ]; then
    for candidate in python3.11 python3.10 python3.9 python3; do
      if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
    done
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $python_bin"
    "$python_bin" -m venv .venv || { echo "[setup] error: could not create .venv" >&2; return 1; }
  fi
  stamp=.venv/.tfdplc-installed
  want="$(sha256sum setup.py | cut -d' ' -f1)" || return 1
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c "import tfdplc" 2>/dev/null; then
    echo "[setup] pip install -e .[test] (one call, so every pin in setup.py holds)"
    .venv/bin/python -m pip install --quiet --upgrade pip &&
      .venv/bin/python -m pip install --quiet -e ".[test]" ||
      { echo "[setup] error: pip install failed" >&2; return 1; }
    echo "$want" > "$stamp"
  fi
  export PATH="$root/.venv/bin:$PATH"
  export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
}
if _tfdplc_setup_env; then
  unset -f _tfdplc_setup_env
else
  unset -f _tfdplc_setup_env
  return 1 2>/dev/null || exit 1
fi
