#!/usr/bin/env bash
# Paper-scale smoke run (tools/smoke.py): every paper-scale gin config trained a few steps on tfds mock data
# of the data set's real features, then evaluated, exported and taken through a codec round trip.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/setup_env.sh"
python "$here/smoke.py" "$@"
