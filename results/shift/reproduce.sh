#!/usr/bin/env bash
# Reproduces the CPU-scale shift-compression results (Liu et al. 2022) on mnist5k, with several seeds, for
# one TASK: "sr" (default), x4 super-resolution (28 -> 7 -> 28, antialiased bilinear; L = 4 levels, 2K
# bits), "sr_authors", the same with the authors' degradation (torch bicubic without antialiasing,
# gin/shift_sr_authors_mnist5k.gin; workdirs and sweeps under WORKDIRS/authors; stages seeds, contrast, cr,
# tables), or "denoise", additive Gaussian noise of std 20 on 0-255 (App. B.1; L = 8 levels, 3K bits;
# workdirs and sweeps under WORKDIRS/denoise). Every run resumes from its last checkpoint and every sweep writes its
# records after each point, so the script can be stopped and started again; a finished run is not retrained.
#
# Stages (STAGES picks them, in this order; default all):
#   seeds       for each seed S in SEEDS: the end-to-end system WITHOUT common randomness at NCR_KS (eq. 16),
#               then its two-branch decomposition under both readings of Section 3.2 at DECOMPOSITION_KS
#               (a subset of NCR_KS; empty: none): "own_targets" (frozen f, g1 on (a) against X, g2 on (b)
#               against Y~, (c) measured) and "joint" (g1, g2 on the whole of eq. 18), both fed the code
#               index only (JOINT=0 skips the joint ones).
#   contrast    seed 0 only: the joint decomposition with the dithered decoder input (how this project
#               trained them before) and the separate variant (fresh f1, g1 and f2, g2, Table 2).
#   cr          for each seed: the end-to-end system WITH common randomness (eq. 14) at CR_KS (the headline
#               claim, cr vs ncr, compares these with the ncr runs of stage "seeds" at the same K).
#   baseline    seed 0 only: the restoration U-Net (App. B.5, eq. 70) and the separate baseline's
#               compression of R(X) (eq. 71) with and without common randomness at BASELINE_KS.
#   vr          TASK sr, seed 0 only: the VARIABLE-rate end-to-end system (gin/shift_sr_mnist5k_vr.gin: tfc entropy model
#               with a learned prior, universal quantization, K = 16 symbols) at each rate weight in VR_WEIGHTS
#               (methods shift-vr-W; default 1e-5 ... 1e-1; since issue 27 the prior has its own Adam at 1e-2
#               and init_scale 1, and lambda is the fixed-rate runs' 0.01; workdirs and sweeps under
#               WORKDIRS/vr, tables stage: results/shift/sr_mnist5k_vr/ and tables_vr.md); its rate is the
#               mean length of the test set's range-coded strings, next to the entropy model's estimate.
#   tables      sr: results/shift/{sr_mnist5k,decomposition}/results.json and results/shift/tables.md;
#               denoise: results/shift/denoise_mnist5k/{,decomposition/}results.json and
#               results/shift/tables_denoise.md (one record per run, with `seed`; mean +- sd over seeds next to
#               the paper's numbers), with the plots; for sr and sr_authors then results/shift/regime_checks.py
#               (printed), and for sr's variable-rate runs results/shift/vr_amortised_bits.py (printed).
# sr: K code symbols with L = 4 levels are 2K bits: K = 2, 5, 10, 15 are the 4, 10, 20, 30 bits of Tables 1,
# 2, 11. denoise: L = 8 levels, 3K bits: K = 4, 10, 20 are the 12, 30, 60 bits of Tables 1, 6, 11.
#
# Knobs: TASK, JOINT, LAMBDA (binds the end-to-end configs' LAMBDA; use one WORKDIRS per value, since the
# workdir names do not hold it), STEPS (every training; the configs' schedules are 3000 steps, the measured CPU-scale runs used
# 1000; the learning-rate drops move with it: 60% of the run for end-to-end, 50% for the decomposition),
# SEEDS, NCR_KS, DECOMPOSITION_KS, CR_KS, BASELINE_KS, VR_WEIGHTS, WORKDIRS (the workdirs folder), STAGES.
# Defaults: sr NCR_KS = DECOMPOSITION_KS = 2,5,10,15, CR_KS = 2,5,15, BASELINE_KS = 2,8,15;
# denoise NCR_KS = CR_KS = 2,4,10,20, DECOMPOSITION_KS = BASELINE_KS = 4,20.
# Seed S binds train.seed = S (weights, data order) and UniversalQuantizer.seed = S + 1 (training dithers);
# evaluation always uses seed 0 for its dithers.
# Run from anywhere. Wall times measured here: results/shift/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tools/setup_env.sh
timed() { local start=$SECONDS; "$@"; echo "[reproduce] $((SECONDS - start)) s: $*"; }

TASK=${TASK:-sr}
WORKDIRS=${WORKDIRS:-workdirs/shift}
OUT=results/shift
QUIET="train.verbose = 2"
STEPS=${STEPS:-1000}
SEEDS=${SEEDS:-0,1,2}
case "$TASK" in
  sr)
    ROOT=$WORKDIRS
    NCR_KS=${NCR_KS:-${DECOMPOSITION_KS:-2,5,10,15}}
    DECOMPOSITION_KS=${DECOMPOSITION_KS-2,5,10,15}
    CR_KS=${CR_KS:-2,5,15}
    BASELINE_KS=${BASELINE_KS:-2,8,15} ;;
  sr_authors)  # the issue-27 headline rates: 4, 10, 20, 30 bits for both cr and ncr
    ROOT=$WORKDIRS/authors
    NCR_KS=${NCR_KS:-2,5,10,15}
    DECOMPOSITION_KS=${DECOMPOSITION_KS-2,5,10,15}
    CR_KS=${CR_KS:-2,5,10,15}
    BASELINE_KS=${BASELINE_KS:-} ;;
  denoise)
    ROOT=$WORKDIRS/denoise
    NCR_KS=${NCR_KS:-2,4,10,20}
    DECOMPOSITION_KS=${DECOMPOSITION_KS-4,20}
    CR_KS=${CR_KS:-2,4,10,20}
    BASELINE_KS=${BASELINE_KS:-4,20} ;;
  *) echo "[reproduce] error: TASK must be sr, sr_authors or denoise, not '$TASK'" >&2; exit 2 ;;
esac
E2E_CONFIG=gin/shift_${TASK}_mnist5k.gin
DECOMPOSITION_CONFIG=gin/shift_decomposition_${TASK}_mnist5k.gin
RESTORATION_CONFIG=gin/shift_restoration_${TASK}_mnist5k.gin
BASELINE_CONFIG=gin/shift_baseline_${TASK}_mnist5k.gin
read -r -a VR_WEIGHTS <<< "${VR_WEIGHTS:-1e-5 1e-4 1e-3 1e-2 1e-1}"
STAGES=${STAGES:-seeds contrast cr baseline vr tables}
E2E_SCHEDULE=("STEPS = $STEPS" "step_decay.boundaries = ($((STEPS * 6 / 10)),)")
DECOMPOSITION_SCHEDULE=("STEPS = $STEPS" "step_decay.boundaries = ($((STEPS / 2)),)")
has_stage() { [[ " $STAGES " == *" $1 "* ]]; }
seed_bindings() { echo "train.seed = $1"; echo "UniversalQuantizer.seed = $(($1 + 1))"; }

# One sweep of end-to-end runs for seed $1, method $2 (shift-cr / shift-ncr) at rates $3.
end_to_end() {
  local seed=$1 method=$2 ks=$3 extra=()
  [ "$method" = shift-ncr ] && extra=(--common_bindings="COMMON_RANDOMNESS = False")
  [ -n "${LAMBDA:-}" ] && extra+=(--common_bindings="LAMBDA = $LAMBDA")
  mapfile -t seeded < <(seed_bindings "$seed")
  timed python tools/sweep.py --workdir_root="$ROOT/seed$seed" --output="$ROOT/sweeps/$method-seed$seed" \
    --ks="$ks" --methods="$method:$E2E_CONFIG" \
    --common_bindings="$QUIET" "${E2E_SCHEDULE[@]/#/--common_bindings=}" "${seeded[@]/#/--common_bindings=}" \
    "${extra[@]}"
}

# One sweep of decompositions of seed $1's ncr runs: method name $2, rates $3, then extra bindings.
decomposition() {
  local seed=$1 method=$2 ks=$3
  shift 3
  timed python tools/sweep.py --workdir_root="$ROOT/seed$seed" --output="$ROOT/sweeps/$method-seed$seed" \
    --ks="$ks" --methods="$method:$DECOMPOSITION_CONFIG" \
    --common_bindings="$QUIET" "${DECOMPOSITION_SCHEDULE[@]/#/--common_bindings=}" \
    --common_bindings="SOURCE = '{root}/shift-ncr-k{k}'" --common_bindings="ShiftDecomposition.seed = $((seed + 2))" \
    "${@/#/--common_bindings=}"
}

IFS=, read -r -a seed_list <<< "$SEEDS"
if has_stage seeds; then
  for seed in "${seed_list[@]}"; do
    end_to_end "$seed" shift-ncr "$NCR_KS"
    if [ -n "$DECOMPOSITION_KS" ]; then
      decomposition "$seed" decomposition-own "$DECOMPOSITION_KS" "MODE = 'own_targets'"
      if [ "${JOINT:-1}" != 0 ]; then
        decomposition "$seed" decomposition-joint "$DECOMPOSITION_KS" "MODE = 'joint'"
      fi
    fi
  done
fi
if has_stage contrast; then
  decomposition 0 decomposition-joint-dithered "$DECOMPOSITION_KS" "MODE = 'joint'" "BRANCH_INPUT = 'decoder_input'"
  decomposition 0 decomposition-separate "$DECOMPOSITION_KS" "MODE = 'separate'"
fi
if has_stage cr; then
  for seed in "${seed_list[@]}"; do
    end_to_end "$seed" shift-cr "$CR_KS"
  done
fi
if has_stage baseline && [ "$TASK" != sr_authors ]; then
  restoration_workdir="$ROOT/seed0/restoration-$TASK"
  RESTORATION="RESTORATION = '$restoration_workdir/restoration.keras'"
  timed python tools/train.py --gin_config="$RESTORATION_CONFIG" --workdir="$restoration_workdir" \
    --gin_bindings="$QUIET" "${E2E_SCHEDULE[@]/#/--gin_bindings=}"
  timed python tools/evaluate.py --workdir="$restoration_workdir" --output="$ROOT/sweeps/restoration_metrics.json"
  timed python tools/sweep.py --workdir_root="$ROOT/seed0" --output="$ROOT/sweeps/baseline-seed0" --ks="$BASELINE_KS" \
    --methods="baseline-cr:$BASELINE_CONFIG,baseline-ncr:$BASELINE_CONFIG" \
    --common_bindings="$QUIET" "${E2E_SCHEDULE[@]/#/--common_bindings=}" --common_bindings="$RESTORATION" \
    --bindings="baseline-ncr:COMMON_RANDOMNESS = False"
fi
if has_stage vr && [ "$TASK" = sr ]; then
  methods="" weights=()
  for weight in "${VR_WEIGHTS[@]}"; do
    methods+="${methods:+,}shift-vr-$weight:gin/shift_sr_mnist5k_vr.gin"
    weights+=(--bindings="shift-vr-$weight:RATE_WEIGHT = $weight")
  done
  timed python tools/sweep.py --workdir_root="$ROOT/vr/seed0" --output="$ROOT/vr/sweeps/shift-vr-seed0" --ks=16 \
    --methods="$methods" "${weights[@]}" \
    --common_bindings="$QUIET" "${E2E_SCHEDULE[@]/#/--common_bindings=}"
fi
if has_stage tables; then
  timed python results/shift/tables.py --sweeps="$ROOT/sweeps" --output="$OUT" --task="$TASK"
  if [ "$TASK" != denoise ]; then  # issue 27's regime checks (4 -> 30 bit fall, term (a) vs Table 11)
    timed python results/shift/regime_checks.py --task="$TASK" --output="$OUT"
  fi
  if [ "$TASK" = sr ] && [ -d "$ROOT/vr/sweeps" ]; then
    timed python results/shift/tables.py --sweeps="$ROOT/vr/sweeps" --output="$OUT" --task=sr_vr
    # Real bits per image with one string per image and one for the whole test set.
    timed python results/shift/vr_amortised_bits.py "$ROOT"/vr/seed0/shift-vr-*-k16
  fi
fi
