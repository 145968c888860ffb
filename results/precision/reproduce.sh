#!/usr/bin/env bash
# Issue 15 item 1: float32 against mixed_bfloat16 on 1000-step mnist5k runs of the CAE and of DPLC at K = 2
# (8 bits), seeds 0 and 1, each evaluated by tools/evaluate.py; results/precision/results.json collects the
# records (method, precision, seed, test MSE, FD, KD, PV). DPLC needs the seed-0 Wasserstein++ G*, the
# seed-0 CAE at K = 2 and the reference CAE of results/dplc/reproduce.sh (DPLC_WORKDIRS, its WORKDIRS).
# Resumable: a finished run is not retrained.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tools/setup_env.sh
WORKDIRS=${WORKDIRS:-workdirs/precision}
DPLC_WORKDIRS=${DPLC_WORKDIRS:-workdirs/dplc}
for seed in 0 1; do
  for precision in float32 mixed_bfloat16; do
    common=(--gin_bindings="K = 2" --gin_bindings="train.precision = '$precision'" --gin_bindings="train.verbose = 2"
      --gin_bindings="train.seed = $seed")
    cae="$WORKDIRS/cae-k2-$precision-seed$seed" dplc="$WORKDIRS/dplc-k2-$precision-seed$seed"
    python tools/train.py --gin_config=gin/cae_mnist5k.gin --workdir="$cae" "${common[@]}" \
      --gin_bindings="train.total_steps = 1000"
    [ -f "$cae/metrics.json" ] || python tools/evaluate.py --workdir="$cae"
    python tools/train.py --gin_config=gin/dplc_mnist5k.gin --workdir="$dplc" "${common[@]}" --gin_bindings="STEPS = 1000" \
      --gin_bindings="GENERATOR_PATH = '$DPLC_WORKDIRS/seed0/wpp_mnist5k/generator.keras'" \
      --gin_bindings="CAE_METRICS = '$DPLC_WORKDIRS/seed0/cae-k2/metrics.json'" \
      --gin_bindings="CAE_REFERENCE_METRICS = '$DPLC_WORKDIRS/reference/cae-k128/metrics.json'" \
      --gin_bindings="DPLC.seed = $seed" --gin_bindings="mapping_B.seed = $seed"
    [ -f "$dplc/metrics.json" ] || python tools/evaluate.py --workdir="$dplc"
  done
done
python - "$WORKDIRS" <<'PY'
import glob, json, os, re, sys
records = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*-k2-*-seed*", "metrics.json"))):
    method, precision, seed = re.match(r"(\w+)-k2-(\w+)-seed(\d+)$", os.path.basename(os.path.dirname(path))).groups()
    (record,) = json.load(open(path))
    keep = ("mse", "psnr", "fd", "kd", "pv", "rate_bits")
    records.append(dict(method=method, precision=precision, seed=int(seed), steps=1000, **{k: record[k] for k in keep}))
json.dump(records, open("results/precision/results.json", "w"), indent=2)
print(f"{len(records)} records: results/precision/results.json")
PY
