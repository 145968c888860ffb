#!/usr/bin/env bash
# Reproduces results/dplc/ on mnist5k (CPU scale) with several seeds: the three stage-1 generators
# (Table-1-style figures), the rate sweep of CAE, DPLC (Wasserstein++ G*) and GC, and DPLC stage 2 on the
# WAE and WGAN-GP generators (the paper's Fig. 3 has DPLC on each G*). K code channels at 2x2 with the
# {-1, 1} codebook are 4K bits per 32x32 image: K = 0, 1, 2, 4, 8 are 0, 4, 8, 16, 32 bits.
#
# Every run resumes from its last checkpoint, a finished run is not retrained (tools/train.py stops at
# total_steps) and every sweep writes its records after each point, so the script can be stopped and
# started again, and two copies may run side by side on different SEEDS once the reference CAE exists.
#
# Stages (STAGES picks them; default all), per seed S in SEEDS, in this order:
#   reference  (once, seed 0) the CAE at 0.5 bpp (K = 128: 4 * 128 bits / 1024 pixels) that lambda(R) of
#              DPLC and GC is referenced to (App. B); the configs check the reference's bpp.
#   wpp        stage 1, the Wasserstein++ G* of seed S (gin/wpp_mnist5k.gin), trained and evaluated.
#   sweep      CAE, DPLC-W++ (on seed S's G*) and GC at ALL_KS for seed 0, at SEED_KS for other seeds.
#              lambda(R) = base * MSE_CAE(K) / MSE_CAE(0.5 bpp), with the CAE of the same seed at K.
#   recal      for each DPLC-W++ point of seed S (the sweep's rates): the deployed-mode check
#              (tools/diagnose.py --deployed_workdir -> POINT/deployed.json), then E's and B's batch-norm
#              moving statistics re-estimated on the training split (tools/recalibrate.py, not in the paper)
#              into POINT-bnrecal, evaluated (tools/evaluate.py) and checked again there (issue 25);
#              python results/dplc/recalibration.py --workdirs=WORKDIRS tabulates before / after.
#   gcbudget   GC as App. B trains it, on the Wasserstein++ schedule (gin/gc_wpp_budget_mnist5k.gin: 1830 steps
#              at b = 64, the G images of the W++ G*; issue 25 item 2) at GC_BUDGET_KS, with the CAE of seed S
#              at those rates for lambda(R) (WORKDIRS/seedS/gc_wppbudget-kK).
#   others     stage 1, the WAE and WGAN-GP generators of seed S.
#   gstar      for seeds in GSTAR_SEEDS: DPLC stage 2 on seed S's WAE and WGAN-GP generators at GSTAR_KS.
#   tables     results/dplc/results.json and stage1.json (one record per run, with `seed`), the plots with
#              sd bars and results/dplc/tables.md (python results/dplc/tables.py).
# Seed S binds train.seed = S (weights, data order), mapping_B.seed = S (B's noise) and DPLC.seed = S (the
# prior draws of the MMD). Evaluation (tools/evaluate.py) always uses its own fixed seeds.
#
# Knobs: SEEDS (default 0,1,2), ALL_KS (0,1,2,4,8), SEED_KS (0,2,8), GSTAR_SEEDS (0), GSTAR_KS (0,2,8),
# GC_BUDGET_KS (0,2,8), RATIO_EVERY (50: steps between the gradient-ratio points of the W++ G* and of GC on
# the W++ budget),
# WORKDIRS (default workdirs/dplc), STAGES. Wall times measured here: results/dplc/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tools/setup_env.sh
timed() { local start=$SECONDS; "$@"; echo "[reproduce] $((SECONDS - start)) s: $*"; }

WORKDIRS=${WORKDIRS:-workdirs/dplc}
SEEDS=${SEEDS:-0,1,2}
ALL_KS=${ALL_KS:-0,1,2,4,8}
SEED_KS=${SEED_KS:-0,2,8}
GSTAR_SEEDS=${GSTAR_SEEDS:-0}
GSTAR_KS=${GSTAR_KS:-0,2,8}
GC_BUDGET_KS=${GC_BUDGET_KS:-0,2,8}
RATIO_EVERY=${RATIO_EVERY:-50}
STAGES=${STAGES:-reference wpp sweep recal gcbudget others gstar tables}
QUIET="train.verbose = 2"
has_stage() { [[ " $STAGES " == *" $1 "* ]]; }
listed() { [[ ",$2," == *",$1,"* ]]; }

CAE_REF="$WORKDIRS/reference/cae-k128"
SCALE="CAE_METRICS = '{root}/cae-k{k}/metrics.json'"
REF="CAE_REFERENCE_METRICS = '$CAE_REF/metrics.json'"

# Trains and evaluates stage-1 generator $2 (wpp, wae, wgan_gp) of seed $1 in WORKDIRS/seedS/NAME_mnist5k.
# The W++ G* also logs its adversarial / distortion gradient-ratio curve (logs/gradient_ratios.jsonl, every
# RATIO_EVERY steps; the run is bit-identical with and without it: tests/test_ratio_curve.py), read by
# `python tools/diagnose.py --ratio_curve_workdir=WORKDIR` (issue 25 item 1).
stage1() {
  local seed=$1 name=$2 workdir="$WORKDIRS/seed$1/$2_mnist5k" extra=()
  [ "$name" = wpp ] && extra+=(--gin_bindings="train.gradient_ratio_every = $RATIO_EVERY")
  timed python tools/train.py --gin_config="gin/${name}_mnist5k.gin" --workdir="$workdir" \
    --gin_bindings="$QUIET" --gin_bindings="train.seed = $seed" "${extra[@]}"
  [ -f "$workdir/metrics.json" ] || timed python tools/evaluate.py --workdir="$workdir"
}

# One tools/sweep.py call for seed $1: rates $2, METHOD:CONFIG pairs $3, output name $4, then extra flags.
sweep() {
  local seed=$1 ks=$2 methods=$3 name=$4
  shift 4
  timed python tools/sweep.py --workdir_root="$WORKDIRS/seed$seed" --output="$WORKDIRS/sweeps/$name-seed$seed" \
    --methods="$methods" --ks="$ks" \
    --common_bindings="$QUIET" --common_bindings="train.seed = $seed" --common_bindings="mapping_B.seed = $seed" \
    "$@"
}

# The deployed-mode check of DPLC point $1 before and after re-estimating its batch-norm statistics.
recalibrated() {
  local workdir=$1 after="$1-bnrecal"
  [ -f "$workdir/deployed.json" ] || timed python tools/diagnose.py --deployed_workdir="$workdir"
  [ -f "$after/bn_recalibration.json" ] || timed python tools/recalibrate.py --workdir="$workdir" --output_workdir="$after"
  [ -f "$after/metrics.json" ] || timed python tools/evaluate.py --workdir="$after"
  [ -f "$after/deployed.json" ] || timed python tools/diagnose.py --deployed_workdir="$after"
}

if has_stage reference && [ ! -f "$CAE_REF/metrics.json" ]; then
  timed python tools/train.py --gin_config=gin/cae_mnist5k.gin --workdir="$CAE_REF" \
    --gin_bindings="K = 128" --gin_bindings="$QUIET" --gin_bindings="train.seed = 0"
  timed python tools/evaluate.py --workdir="$CAE_REF"
fi

IFS=, read -r -a seed_list <<< "$SEEDS"
for seed in "${seed_list[@]}"; do
  ks=$SEED_KS
  [ "$seed" = 0 ] && ks=$ALL_KS
  root="$WORKDIRS/seed$seed"
  has_stage wpp && stage1 "$seed" wpp
  if has_stage sweep; then
    sweep "$seed" "$ks" cae:gin/cae_mnist5k.gin cae
    sweep "$seed" "$ks" "dplc-wpp:gin/dplc_mnist5k.gin,gc:gin/gc_mnist5k.gin" dplc-gc \
      --bindings="dplc-wpp:GENERATOR_PATH = '$root/wpp_mnist5k/generator.keras'" \
      --bindings="dplc-wpp:DPLC.seed = $seed" \
      --bindings="dplc-wpp:$SCALE" --bindings="dplc-wpp:$REF" --bindings="gc:$SCALE" --bindings="gc:$REF"
  fi
  if has_stage recal; then
    IFS=, read -r -a k_list <<< "$ks"
    for k in "${k_list[@]}"; do recalibrated "$root/dplc-wpp-k$k"; done
  fi
  if has_stage gcbudget; then
    sweep "$seed" "$GC_BUDGET_KS" cae:gin/cae_mnist5k.gin cae
    sweep "$seed" "$GC_BUDGET_KS" "gc_wppbudget:gin/gc_wpp_budget_mnist5k.gin" gc-wppbudget \
      --bindings="gc_wppbudget:$SCALE" --bindings="gc_wppbudget:$REF" \
      --bindings="gc_wppbudget:train.gradient_ratio_every = $RATIO_EVERY"
  fi
  if has_stage others; then
    stage1 "$seed" wae
    stage1 "$seed" wgan_gp
  fi
  if has_stage gstar && listed "$seed" "$GSTAR_SEEDS"; then
    # lambda(R) needs the CAE of this seed at each rate: the sweep stage trains them (SEED_KS cover GSTAR_KS).
    sweep "$seed" "$GSTAR_KS" "dplc-wae:gin/dplc_mnist5k.gin,dplc-wgan_gp:gin/dplc_mnist5k.gin" gstar \
      --bindings="dplc-wae:GENERATOR_PATH = '$root/wae_mnist5k/generator.keras'" \
      --bindings="dplc-wgan_gp:GENERATOR_PATH = '$root/wgan_gp_mnist5k/generator.keras'" \
      --bindings="dplc-wae:DPLC.seed = $seed" --bindings="dplc-wgan_gp:DPLC.seed = $seed" \
      --bindings="dplc-wae:$SCALE" --bindings="dplc-wae:$REF" \
      --bindings="dplc-wgan_gp:$SCALE" --bindings="dplc-wgan_gp:$REF"
  fi
done

if has_stage tables; then
  python results/dplc/tables.py --workdirs="$WORKDIRS"
  python results/dplc/recalibration.py --workdirs="$WORKDIRS"
fi
