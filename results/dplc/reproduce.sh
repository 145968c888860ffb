#!/usr/bin/env bash
# Reproduces results/dplc/ on mnist5k (CPU scale): the three stage-1 generators (Table-1-style figures),
# then one rate sweep of CAE, DPLC (Wasserstein++ G*) and GC over K = 0, 1, 2, 4, 8 (4K bits per image).
# Run from the repository root; every step prints its wall time. Workdirs go to workdirs/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tools/setup_env.sh
timed() { local start=$SECONDS; "$@"; echo "[reproduce] $((SECONDS - start)) s: $*"; }
QUIET="--gin_bindings=train.verbose = 2"

stage1() {  # trains and evaluates one stage-1 generator; its metrics go to results/dplc/stage1/
  timed python tools/train.py --gin_config="gin/$1_mnist5k.gin" --workdir="workdirs/$1_mnist5k" "$QUIET"
  timed python tools/evaluate.py --workdir="workdirs/$1_mnist5k"
  mkdir -p results/dplc/stage1
  cp "workdirs/$1_mnist5k/metrics.json" "results/dplc/stage1/$1_metrics.json"
}

# Stage 1: G* by Wasserstein++ first (DPLC stage 2 loads workdirs/wpp_mnist5k/generator.keras).
stage1 wpp

# Stage 2 and baselines. lambda(R) of DPLC and GC scales with the CAE's MSE at rate K over its MSE at
# 0.5 bpp as App. B (K = 128 here: 4 * 128 bits / 1024 pixels; the configs check the reference's bpp), so
# the CAEs run first: the reference one on its own (it is no point of the sweep's plots), then the sweep.
CAE_REF=workdirs/dplc_reference/cae-k128
timed python tools/train.py --gin_config=gin/cae_mnist5k.gin --workdir="$CAE_REF" --gin_bindings="K = 128" "$QUIET"
timed python tools/evaluate.py --workdir="$CAE_REF"
SCALE_DPLC="CAE_METRICS = '{root}/cae-k{k}/metrics.json'"
REF="CAE_REFERENCE_METRICS = '$CAE_REF/metrics.json'"
G_STAR="GENERATOR_PATH = 'workdirs/wpp_mnist5k/generator.keras'"
timed python tools/sweep.py --workdir_root=workdirs/dplc --output=results/dplc \
  --methods=cae:gin/cae_mnist5k.gin,dplc-wpp:gin/dplc_mnist5k.gin,gc:gin/gc_mnist5k.gin \
  --ks=0,1,2,4,8 \
  --common_bindings="train.verbose = 2" \
  --bindings="dplc-wpp:$G_STAR" \
  --bindings="dplc-wpp:$SCALE_DPLC" --bindings="dplc-wpp:$REF" \
  --bindings="gc:$SCALE_DPLC" --bindings="gc:$REF"

# Stage 1, the other two generators (Table-1-style comparison).
stage1 wae
stage1 wgan_gp
