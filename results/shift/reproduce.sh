#!/usr/bin/env bash
# Reproduces the CPU-scale shift-compression results (Liu et al. 2022) on mnist5k, x4 super-resolution
# (28 -> 7 -> 28), with several seeds. Every run resumes from its last checkpoint and every sweep writes its
# records after each point, so the script can be stopped and started again; a finished run is not retrained.
#
# Stages (STAGES picks them, in this order; default all):
#   seeds       for each seed S in SEEDS: the end-to-end system WITHOUT common randomness at DECOMPOSITION_KS
#               (eq. 16), then its two-branch decomposition as the paper trains it (Section 3.2, mode
#               "own_targets": frozen f, g1 on (a) against X, g2 on (b) against Y~, both fed the code
#               index only, (c) measured) at the same rates.
#   contrast    seed 0 only: the same decompositions trained on the whole of eq. 18 ("joint"), with the code
#               index and with the dithered decoder input (how this project trained them before), and the
#               separate variant (fresh f1, g1 and f2, g2, Table 2).
#   cr          for each seed: the end-to-end system WITH common randomness (eq. 14) at CR_KS (the headline
#               claim, cr vs ncr, compares these with the ncr runs of stage "seeds" at the same K).
#   baseline    seed 0 only: the restoration U-Net (App. B.5, eq. 70) and the separate baseline's
#               compression of R(X) (eq. 71) with and without common randomness at BASELINE_KS.
#   vr          seed 0 only: the VARIABLE-rate end-to-end system (gin/shift_sr_mnist5k_vr.gin: tfc entropy model
#               with a learned prior, universal quantization, K = 16 symbols) at each rate weight in VR_WEIGHTS
#               (methods shift-vr-W); its rate is the mean length of the test set's range-coded strings,
#               evaluated next to the entropy model's estimate.
#   tables      results/shift/{sr_mnist5k,decomposition}/results.json (one record per run, with `seed`),
#               the plots, and results/shift/tables.md (mean +- sd over seeds, next to the paper's numbers).
# K code symbols with L = 4 levels are 2K bits: K = 2, 5, 10, 15 are the 4, 10, 20, 30 bits of Tables 1, 2, 11.
#
# Knobs: STEPS (every training; the configs' schedules are 3000 steps, the measured CPU-scale runs used 1000;
# the learning-rate drops move with it: 60% of the run for end-to-end, 50% for the decomposition), SEEDS,
# DECOMPOSITION_KS, CR_KS, BASELINE_KS, VR_WEIGHTS, WORKDIRS (the workdirs folder), STAGES.
# Seed S binds train.seed = S (weights, data order) and UniversalQuantizer.seed = S + 1 (training dithers);
# evaluation always uses seed 0 for its dithers.
# Run from anywhere. Wall times measured here: results/shift/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tools/setup_env.sh
timed() { local start=$SECONDS; "$@"; echo "[reproduce] $((SECONDS - start)) s: $*"; }

WORKDIRS=${WORKDIRS:-workdirs/shift}
OUT=results/shift
QUIET="train.verbose = 2"
STEPS=${STEPS:-1000}
SEEDS=${SEEDS:-0,1,2}
DECOMPOSITION_KS=${DECOMPOSITION_KS:-2,5,10,15}
CR_KS=${CR_KS:-2,5,15}
BASELINE_KS=${BASELINE_KS:-2,8,15}
read -r -a VR_WEIGHTS <<< "${VR_WEIGHTS:-1e-4 1e-3 1e-2}"
STAGES=${STAGES:-seeds contrast cr baseline vr tables}
E2E_SCHEDULE=("STEPS = $STEPS" "step_decay.boundaries = ($((STEPS * 6 / 10)),)")
DECOMPOSITION_SCHEDULE=("STEPS = $STEPS" "step_decay.boundaries = ($((STEPS / 2)),)")
has_stage() { [[ " $STAGES " == *" $1 "* ]]; }
seed_bindings() { echo "train.seed = $1"; echo "UniversalQuantizer.seed = $(($1 + 1))"; }

# One sweep of end-to-end runs for seed $1, method $2 (shift-cr / shift-ncr) at rates $3.
end_to_end() {
  local seed=$1 method=$2 ks=$3 extra=()
  [ "$method" = shift-ncr ] && extra=(--common_bindings="COMMON_RANDOMNESS = False")
  mapfile -t seeded < <(seed_bindings "$seed")
  timed python tools/sweep.py --workdir_root="$WORKDIRS/seed$seed" --output="$WORKDIRS/sweeps/$method-seed$seed" \
    --ks="$ks" --methods="$method:gin/shift_sr_mnist5k.gin" \
    --common_bindings="$QUIET" "${E2E_SCHEDULE[@]/#/--common_bindings=}" "${seeded[@]/#/--common_bindings=}" \
    "${extra[@]}"
}

# One sweep of decompositions of seed $1's ncr runs: method name $2, rates $3, then extra bindings.
decomposition() {
  local seed=$1 method=$2 ks=$3
  shift 3
  timed python tools/sweep.py --workdir_root="$WORKDIRS/seed$seed" --output="$WORKDIRS/sweeps/$method-seed$seed" \
    --ks="$ks" --methods="$method:gin/shift_decomposition_sr_mnist5k.gin" \
    --common_bindings="$QUIET" "${DECOMPOSITION_SCHEDULE[@]/#/--common_bindings=}" \
    --common_bindings="SOURCE = '{root}/shift-ncr-k{k}'" --common_bindings="ShiftDecomposition.seed = $((seed + 2))" \
    "${@/#/--common_bindings=}"
}

IFS=, read -r -a seed_list <<< "$SEEDS"
if has_stage seeds; then
  for seed in "${seed_list[@]}"; do
    end_to_end "$seed" shift-ncr "$DECOMPOSITION_KS"
    decomposition "$seed" decomposition-own "$DECOMPOSITION_KS" "MODE = 'own_targets'"
  done
fi
if has_stage contrast; then
  decomposition 0 decomposition-joint "$DECOMPOSITION_KS" "MODE = 'joint'"
  decomposition 0 decomposition-joint-dithered "$DECOMPOSITION_KS" "MODE = 'joint'" "BRANCH_INPUT = 'decoder_input'"
  decomposition 0 decomposition-separate "$DECOMPOSITION_KS" "MODE = 'separate'"
fi
if has_stage cr; then
  for seed in "${seed_list[@]}"; do
    end_to_end "$seed" shift-cr "$CR_KS"
  done
fi
if has_stage baseline; then
  RESTORATION="RESTORATION = '$WORKDIRS/seed0/restoration-sr/restoration.keras'"
  timed python tools/train.py --gin_config=gin/shift_restoration_sr_mnist5k.gin --workdir="$WORKDIRS/seed0/restoration-sr" \
    --gin_bindings="$QUIET" "${E2E_SCHEDULE[@]/#/--gin_bindings=}"
  timed python tools/evaluate.py --workdir="$WORKDIRS/seed0/restoration-sr" --output="$WORKDIRS/sweeps/restoration_metrics.json"
  timed python tools/sweep.py --workdir_root="$WORKDIRS/seed0" --output="$WORKDIRS/sweeps/baseline-seed0" --ks="$BASELINE_KS" \
    --methods=baseline-cr:gin/shift_baseline_sr_mnist5k.gin,baseline-ncr:gin/shift_baseline_sr_mnist5k.gin \
    --common_bindings="$QUIET" "${E2E_SCHEDULE[@]/#/--common_bindings=}" --common_bindings="$RESTORATION" \
    --bindings="baseline-ncr:COMMON_RANDOMNESS = False"
fi
if has_stage vr; then
  methods="" weights=()
  for weight in "${VR_WEIGHTS[@]}"; do
    methods+="${methods:+,}shift-vr-$weight:gin/shift_sr_mnist5k_vr.gin"
    weights+=(--bindings="shift-vr-$weight:RATE_WEIGHT = $weight")
  done
  timed python tools/sweep.py --workdir_root="$WORKDIRS/seed0" --output="$WORKDIRS/sweeps/shift-vr-seed0" --ks=16 \
    --methods="$methods" "${weights[@]}" \
    --common_bindings="$QUIET" "${E2E_SCHEDULE[@]/#/--common_bindings=}"
fi
if has_stage tables; then
  timed python results/shift/tables.py --sweeps="$WORKDIRS/sweeps" --output="$OUT"
fi
