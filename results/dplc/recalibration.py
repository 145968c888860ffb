#!/usr/bin/env python
"""Tables of DPLC's deployed-mode check before / after re-estimating the batch-norm statistics (issue 25).

Reads, for every DPLC point WORKDIRS/seedS/METHOD-kK that has a deployed.json (tools/diagnose.py
--deployed_workdir) and its recalibrated copy METHOD-kK-bnrecal (tools/recalibrate.py --output_workdir,
then tools/evaluate.py and tools/diagnose.py there), and writes:
  OUTPUT/NAME.json   one record per (method, K, seed): the deployed MMD in null sd, the authors'-mode MMD,
                     PV and z statistics before and after, test MSE / FD / PV (tools/evaluate.py) before
                     and after, the recalibration's images and wall time;
  OUTPUT/NAME.md     the per-seed table, the mean ± sd over seeds per rate, and the verdict of the
                     criterion of results/dplc/calibration_plan.md (deployed MMD within NULL_SDS null sd
                     at every rate).
NAME is --name (default recalibration).

  python results/dplc/recalibration.py --workdirs=workdirs/dplc
"""

import argparse
import glob
import json
import os
import re

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NULL_SDS = 3.0  # tfdplc.deployed.NULL_SDS (not imported: this script needs no TensorFlow)
SUFFIX = "-bnrecal"


def _load(path):
    with open(path) as f:
        return json.load(f)


def _metrics(workdir):
    path = os.path.join(workdir, "metrics.json")
    return _load(path)[0] if os.path.exists(path) else {}


def collect(workdirs, methods=("dplc-wpp",)):
    """One record per point with a before and an after check; points missing either are listed apart."""
    records, missing = [], []
    for seed_dir in sorted(glob.glob(os.path.join(workdirs, "seed*"))):
        seed = int(re.fullmatch(r"seed(\d+)", os.path.basename(seed_dir)).group(1))
        for method in methods:
            for workdir in sorted(glob.glob(os.path.join(seed_dir, f"{method}-k*"))):
                match = re.fullmatch(rf"{re.escape(method)}-k(\d+)", os.path.basename(workdir))
                if not match:
                    continue
                after_dir = workdir + SUFFIX
                paths = [os.path.join(d, "deployed.json") for d in (workdir, after_dir)]
                if not all(os.path.exists(p) for p in paths):
                    missing.append(workdir)
                    continue
                before, after = (_load(p) for p in paths)
                m_before, m_after = _metrics(workdir), _metrics(after_dir)
                recal = _load(os.path.join(after_dir, "bn_recalibration.json"))
                record = {
                    "method": method,
                    "k": int(match.group(1)),
                    "seed": seed,
                    "rate_bits": before["rate_bits"],
                }
                for label, check, metrics in (("before", before, m_before), ("after", after, m_after)):
                    record.update(
                        {
                            f"checkpoint_{label}": check["checkpoint"],
                            f"mmd_deployed_{label}": check["mmd_deployed"],
                            f"mmd_null_sds_{label}": check["mmd_deployed_null_sds"],
                            f"within_null_{label}": check["mmd_deployed_within_null"],
                            f"z_mean_abs_{label}": check["z_mean_abs"],
                            f"z_var_mean_{label}": check["z_var_mean"],
                            f"pv_deployed_{label}": check.get("pv_deployed"),
                            f"authors_mode_mmd_null_sds_{label}": check.get("authors_mode_mmd_null_sds"),
                            f"mse_{label}": metrics.get("mse"),
                            f"fd_{label}": metrics.get("fd"),
                            f"pv_{label}": metrics.get("pv"),
                        }
                    )
                record.update(
                    mmd_null_sd=after["mmd_null_sd"],
                    num_images=after["num_images"],
                    sample_pixel_variance=after.get("sample_pixel_variance"),
                    recalibration_images=recal["num_images"],
                    recalibration_split=recal.get("split"),
                    recalibration_wall_s=recal["wall_s"],
                )
                records.append(record)
    return sorted(records, key=lambda r: (r["method"], r["rate_bits"], r["seed"])), missing


def _f(value, digits):
    return "-" if value is None else f"{value:.{digits}f}"


def _mean_sd(values, digits):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def tables(records):
    """Markdown: per point, then mean ± sd per rate, then the criterion's verdict."""
    lines = [
        "| method | bits | seed | deployed MMD, null sd: before / after | authors' mode (not the codec), null sd |"
        " MSE before / after | FD before / after | PV before / after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['method']} | {r['rate_bits']:g} | {r['seed']} | {_f(r['mmd_null_sds_before'], 1)} / "
            f"{_f(r['mmd_null_sds_after'], 1)} | {_f(r['authors_mode_mmd_null_sds_before'], 1)} | "
            f"{_f(r['mse_before'], 4)} / {_f(r['mse_after'], 4)} | {_f(r['fd_before'], 1)} / "
            f"{_f(r['fd_after'], 1)} | {_f(r['pv_before'], 4)} / {_f(r['pv_after'], 4)} |"
        )
    lines += [
        "",
        "| method | bits | seeds | deployed MMD null sd before | after | MSE before | after | FD before | after |"
        " PV before | after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups = {}
    for r in records:
        groups.setdefault((r["method"], r["rate_bits"]), []).append(r)
    for (method, bits), group in sorted(groups.items()):
        cells = [
            _mean_sd([r[f"{key}_{when}"] for r in group], digits)
            for key, digits in (("mmd_null_sds", 1), ("mse", 4), ("fd", 1), ("pv", 4))
            for when in ("before", "after")
        ]
        lines.append(f"| {method} | {bits:g} | {len(group)} | " + " | ".join(cells) + " |")
    if records:
        inside = [r for r in records if r["mmd_null_sds_after"] <= NULL_SDS]
        lines += [
            "",
            f"Criterion (calibration_plan.md): deployed MMD within {NULL_SDS:g} null sd at every rate. After "
            f"recalibration: {len(inside)} of {len(records)} points; before: "
            f"{sum(r['mmd_null_sds_before'] <= NULL_SDS for r in records)} of {len(records)}.",
        ]
    return "\n".join(lines) + "\n"


def main():
    """Collects the records, writes recalibration.json and recalibration.md (module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdirs", default="workdirs/dplc")
    parser.add_argument("--output", default=HERE)
    parser.add_argument("--name", default="recalibration", help="Output file names: NAME.json, NAME.md.")
    parser.add_argument("--methods", default="dplc-wpp", help="Comma-separated METHOD names of the points.")
    args = parser.parse_args()
    records, missing = collect(args.workdirs, tuple(args.methods.split(",")))
    if not records:  # not an error: reproduce.sh's tables stage may run before any recal stage
        print(
            f"[recalibration] no DPLC point checked before and after under {args.workdirs!r}: nothing written."
        )
        return
    with open(os.path.join(args.output, f"{args.name}.json"), "w") as f:
        json.dump(records, f, indent=1)
    text = tables(records)
    with open(os.path.join(args.output, f"{args.name}.md"), "w") as f:
        f.write(text)
    print(text)
    for workdir in missing:
        print(f"[recalibration] not yet checked before and after: {workdir}")


if __name__ == "__main__":
    main()
