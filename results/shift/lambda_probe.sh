#!/usr/bin/env bash
# Re-probes lambda for the authors' degradation by the rule in results/shift/README.md ("Lambda for the
# authors' degradation"), written before the first probe run: for lambda in GRID (in order), the end-to-end
# run without common randomness at K = 5 (10 bits), seed 0, STEPS steps, on gin/shift_sr_authors_mnist5k.gin;
# stop at the first lambda with FD <= 150 and MSE to X <= 0.040. Every probe resumes from its workdir
# (WORKDIRS/lambda<l>), and after each one results/shift/sr_authors_mnist5k/lambda_probe.json is rewritten
# with every finished probe's record (field `lambda`) and the rule's verdict, so the script can be stopped
# and started again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source tools/setup_env.sh
WORKDIRS=${WORKDIRS:-workdirs/shift-authors-lambda}
read -r -a GRID <<< "${GRID:-1e-3 3e-3 1e-2 3e-2}"
STEPS=${STEPS:-1000}
OUT=results/shift/sr_authors_mnist5k/lambda_probe.json
for lambda in "${GRID[@]}"; do
  TASK=sr_authors LAMBDA="$lambda" SEEDS=0 NCR_KS=5 DECOMPOSITION_KS= STAGES=seeds STEPS="$STEPS" \
    WORKDIRS="$WORKDIRS/lambda$lambda" results/shift/reproduce.sh
  verdict=$(python - "$WORKDIRS" "$OUT" "${GRID[@]}" <<'PY'
import json, os, sys
workdirs, out, grid = sys.argv[1], sys.argv[2], sys.argv[3:]
records = []
for value in grid:
    path = os.path.join(workdirs, f"lambda{value}", "authors", "sweeps", "shift-ncr-seed0", "results.json")
    if os.path.exists(path):
        with open(path) as f:
            (record,) = [r for r in json.load(f) if round(r["rate_bits"]) == 10]
        meets = record["fd"] <= 150 and record["mse"] <= 0.040
        records.append(dict(record, seed=0, **{"lambda": float(value), "meets_rule": meets}))
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    json.dump(records, f, indent=2)
print("accept" if records and records[-1]["meets_rule"] else "next")
PY
)
  echo "[lambda_probe] lambda = $lambda: $verdict"
  if [ "$verdict" = accept ]; then
    break
  fi
done
