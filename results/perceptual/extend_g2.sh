#!/usr/bin/env bash
# Continues finished G2 runs of reproduce.sh past the fixed budget, to tell a slow G2 from a stuck one
# (issue 13: seed 2's G2 at 8 and 16 bits was still at the code-ignoring floor at 8400 steps).
#
# For every rate R in RATES: copies WORKDIRS/seedSEED/g2-kR (its checkpoints, logs and configs; the run
# itself is left as it is) and the logs of its stage-1 run g1-kR to COPIES/seedSEED/, trains the copy on to
# STEPS steps with reproduce.sh's bindings for that seed (same config, constant learning rates), then
# evaluates it (tools/evaluate.py, and with --realism=REALISMS for the slider unless REALISMS is empty).
# Finally results/perceptual/convergence.py draws the curves of every copy under COPIES into OUTPUT
# (convergence.json / .png). Every step resumes, so the script can be stopped and started again.
#
# TRAIN_SEED (default SEED) other than SEED continues with another train.seed: another data order and other
# gradient-penalty draws from the same checkpoint (a restart probe; G2's noise stream is checkpointed).
#
# Knobs: WORKDIRS (workdirs/perceptual), SEED (2), RATES (8,16), STEPS (16800: twice the budget), TRAIN_SEED,
# REALISMS (0,0.25,0.5,0.75,1), COPIES (WORKDIRS/extended), OUTPUT (results/perceptual/extended).
# Run from anywhere.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tools/setup_env.sh

WORKDIRS=${WORKDIRS:-workdirs/perceptual}
SEED=${SEED:-2}
RATES=${RATES:-8,16}
STEPS=${STEPS:-16800}
TRAIN_SEED=${TRAIN_SEED:-$SEED}
REALISMS=${REALISMS-0,0.25,0.5,0.75,1}
COPIES=${COPIES:-$WORKDIRS/extended}
OUTPUT=${OUTPUT:-results/perceptual/extended}
seed_args=(--gin_bindings="train.seed = $TRAIN_SEED")
[ "$TRAIN_SEED" = "$SEED" ] || seed_args+=(--allow_config_change=train.seed)

IFS=, read -r -a rates <<< "$RATES"
for rate in "${rates[@]}"; do
  source_dir="$WORKDIRS/seed$SEED/g2-k$rate"
  copy="$COPIES/seed$SEED/g2-k$rate"
  if [ ! -d "$copy" ]; then
    [ -f "$source_dir/metrics.json" ] || { echo "error: $source_dir is not a finished G2 run." >&2; exit 2; }
    mkdir -p "$copy" "$COPIES/seed$SEED/g1-k$rate"
    cp -r "$source_dir/checkpoints" "$source_dir/logs" "$source_dir/config.gin" \
      "$source_dir/operative_config.gin" "$copy/"
    cp -r "$WORKDIRS/seed$SEED/g1-k$rate/logs" "$COPIES/seed$SEED/g1-k$rate/"
  fi
  python tools/train.py --gin_config=gin/perceptual_g2_mnist5k.gin --workdir="$copy" \
    --gin_bindings="K = $rate" --gin_bindings="train.verbose = 2" "${seed_args[@]}" \
    --gin_bindings="yan_generator.seed = $((SEED + 1))" \
    --gin_bindings="ENCODER_PATH = '$WORKDIRS/seed$SEED/g1-k$rate/encoder.keras'" \
    --gin_bindings="train.total_steps = $STEPS"
  [ -f "$copy/metrics.json" ] || python tools/evaluate.py --workdir="$copy"
  if [ -n "$REALISMS" ] && [ ! -f "$copy/metrics_realism.json" ]; then
    python tools/evaluate.py --workdir="$copy" --realism="$REALISMS"
  fi
done
mkdir -p "$OUTPUT"
python results/perceptual/convergence.py --workdir_root="$COPIES" --output="$OUTPUT"
