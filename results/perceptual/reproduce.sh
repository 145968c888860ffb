#!/usr/bin/env bash
# Reproduces results/perceptual/ on mnist5k (CPU scale): the perceptual decoder of Yan et al. 2021 and its
# DAL baseline, as their Section 4 / Figures 2-5 do it on MNIST.
#   - for every rate R in RATES (bits per image = K, the code length d): stage 1, E and the MSE decoder G1
#     (gin/perceptual_g1_mnist5k.gin, workdirs/perceptual/g1-kR), then stage 2, G2 against the
#     code-conditioned critic with E frozen, loading E from that run (gin/perceptual_g2_mnist5k.gin,
#     workdirs/perceptual/g2-kR);
#   - the DAL baseline at R = DAL_RATE for every lambda in DAL_LAMBDAS (gin/dal_mnist5k.gin,
#     workdirs/perceptual/dal-LAMBDA-kR).
# Every run is evaluated by tools/evaluate.py (test MSE, PSNR, Fréchet / kernel distances on the shipped
# digit classifier's features, PV) and tools/sweep.py writes results/perceptual/results.json (with the
# per-epoch train / test MSE of every run under "epoch_curves") and the plots: perceptual_rate_mse.png
# (MSE of G1, G2 and 2 x MSE(G1) against the rate, Fig. 2), epoch_mse.png (test MSE per epoch, Fig. 3),
# reconstructions.png (originals and reconstructions of G1, G2 and DAL per rate, Figs. 4-5),
# compare_k4.png (G1, G2, DAL at 4 bits: MSE, FD, KD; Fig. 5), rate_mse/fd/kd/pv.png and decodes.png.
# Projected wall time on the 2-core CPU (step times measured with other jobs running, load 5-8, see the
# gin files): per rate about 4.5 min for G1 (2800 steps at 93-100 ms) and 3.5-4 min for G2 (70
# pre-training steps at 36-125 ms, 2730 at 76-78 ms), per lambda 8.5-10 min for DAL (2800 steps at
# 179-212 ms): 65-75 min of training for the 5 rates and 3 lambdas, plus start-up, per-epoch validation and
# evaluation (about 0.5-1 min per run: a tiny end-to-end run of this script took 12-35 s to train and 18-24 s
# to evaluate each point), so about 80-90 min in all. Any extra arguments go to tools/sweep.py after these (later flags win), e.g.
#   results/perceptual/reproduce.sh --output=/tmp/perceptual --workdir_root=/tmp/perceptual_runs
# Run from anywhere; the script moves to the repository root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tools/setup_env.sh

RATES="${RATES:-2,4,8,16,32}"
DAL_RATE="${DAL_RATE:-4}"
read -r -a DAL_LAMBDAS <<< "${DAL_LAMBDAS:-0.1 1 5}"

methods="g1:gin/perceptual_g1_mnist5k.gin,g2:gin/perceptual_g2_mnist5k.gin"
dal_args=()
for lambda in "${DAL_LAMBDAS[@]}"; do
  methods+=",dal-${lambda}:gin/dal_mnist5k.gin"
  dal_args+=(--method_ks="dal-${lambda}:${DAL_RATE}" --bindings="dal-${lambda}:LAMBDA = ${lambda}")
done

start=$SECONDS
python tools/sweep.py --workdir_root=workdirs/perceptual --output=results/perceptual \
  --methods="$methods" \
  --ks="$RATES" \
  --bindings="g2:ENCODER_PATH = '{root}/g1-k{k}/encoder.keras'" \
  "${dal_args[@]}" \
  --common_bindings="train.verbose = 2" \
  --epoch_curves=mse \
  --perceptual=g1,g2 \
  "$@"
echo "[reproduce] $((SECONDS - start)) s wall"
python results/perceptual/floor.py  # the code-ignoring floor, floor.json, perceptual_rate_mse.png with it
