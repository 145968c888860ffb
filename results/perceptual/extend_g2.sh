#!/usr/bin/env bash
# Continues finished G2 runs of reproduce.sh past the fixed budget, to tell a slow G2 from a stuck one
# (issue 13: seed 2's G2 at 8 and 16 bits was still at the code-ignoring floor at 8400 steps).
#
# For every rate R in RATES: copies WORKDIRS/seedSEED/g2-kR (its checkpoints, logs and configs; the run
# itself is left as it is) and the logs of its stage-1 run g1-kR to WORKDIRS/extended/seedSEED/, trains the
# copy on to STEPS steps with reproduce.sh's bindings for that seed (same config, constant learning rates),
# then evaluates it (tools/evaluate.py, with --realism=REALISMS for the slider). Finally
# results/perceptual/convergence.py draws the extended curves into OUTPUT (convergence.json / .png).
# Every step resumes, so the script can be stopped and started again.
#
# Knobs: WORKDIRS (workdirs/perceptual), SEED (2), RATES (8,16), STEPS (16800: twice the budget), REALISMS
# (0,0.25,0.5,0.75,1), OUTPUT (results/perceptual/extended). Run from anywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tools/setup_env.sh

WORKDIRS=${WORKDIRS:-workdirs/perceptual}
SEED=${SEED:-2}
RATES=${RATES:-8,16}
STEPS=${STEPS:-16800}
REALISMS=${REALISMS:-0,0.25,0.5,0.75,1}
OUTPUT=${OUTPUT:-results/perceptual/extended}

IFS=, read -r -a rates <<< "$RATES"
for rate in "${rates[@]}"; do
  source_dir="$WORKDIRS/seed$SEED/g2-k$rate"
  copy="$WORKDIRS/extended/seed$SEED/g2-k$rate"
  if [ ! -d "$copy" ]; then
    [ -f "$source_dir/metrics.json" ] || { echo "error: $source_dir is not a finished G2 run." >&2; exit 2; }
    mkdir -p "$copy" "$WORKDIRS/extended/seed$SEED/g1-k$rate"
    cp -r "$source_dir/checkpoints" "$source_dir/logs" "$source_dir/config.gin" \
      "$source_dir/operative_config.gin" "$copy/"
    cp -r "$WORKDIRS/seed$SEED/g1-k$rate/logs" "$WORKDIRS/extended/seed$SEED/g1-k$rate/"
  fi
  python tools/train.py --gin_config=gin/perceptual_g2_mnist5k.gin --workdir="$copy" \
    --gin_bindings="K = $rate" --gin_bindings="train.verbose = 2" --gin_bindings="train.seed = $SEED" \
    --gin_bindings="yan_generator.seed = $((SEED + 1))" \
    --gin_bindings="ENCODER_PATH = '$WORKDIRS/seed$SEED/g1-k$rate/encoder.keras'" \
    --gin_bindings="train.total_steps = $STEPS"
  [ -f "$copy/metrics.json" ] || python tools/evaluate.py --workdir="$copy"
  [ -f "$copy/metrics_realism.json" ] || python tools/evaluate.py --workdir="$copy" --realism="$REALISMS"
done
mkdir -p "$OUTPUT"
python results/perceptual/convergence.py --workdir_root="$WORKDIRS/extended" --output="$OUTPUT"
