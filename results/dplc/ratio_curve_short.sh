#!/usr/bin/env bash
# Issue 25 item 1: the gradient-ratio curve of the short-protocol W++ G* (gin/wpp_mnist5k.gin at 600 steps,
# seed 0: the G* of results/dplc/recalibration_short.md), measured every 25 steps during training, then
# printed and plotted by tools/diagnose.py. WITH_CURVE=0 trains the same run without the curve (to check
# that the curve leaves training unchanged). Resumable: rerun the same command.
# Usage: results/dplc/ratio_curve_short.sh [WORKDIR]   (default workdirs/dplc/ratio_curve/wpp600)
set -euo pipefail
cd "$(dirname "$0")/../.."
source tools/setup_env.sh >/dev/null
W=${1:-workdirs/dplc/ratio_curve/wpp600}
S=600
curve=()
if [ "${WITH_CURVE:-1}" = 1 ]; then curve=(--gin_bindings="train.gradient_ratio_every = 25"); fi
start=$SECONDS
TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 python tools/train.py \
  --gin_config=gin/wpp_mnist5k.gin --workdir="$W" \
  --gin_bindings="STEPS = $S" \
  --gin_bindings="step_decay.boundaries = ($((S * 60 / 100)), $((S * 84 / 100)))" \
  --gin_bindings="critic/step_decay.boundaries = ($((S * 5 * 60 / 100)), $((S * 5 * 84 / 100)))" \
  --gin_bindings="train.seed = 0" --gin_bindings="train.verbose = 2" \
  --gin_bindings="train.keep_checkpoints = 10" "${curve[@]}"
echo "[ratio_curve] trained in $((SECONDS - start)) s"
if [ "${WITH_CURVE:-1}" = 1 ]; then python tools/diagnose.py --ratio_curve_workdir="$W"; fi
