#!/usr/bin/env python
"""GC on the Wasserstein++ budget (App. B) against DPLC-W++ and the issue-11 GC (issue 25 item 2).

Reads the `gcbudget` stage of results/dplc/reproduce.sh (sweeps WORKDIRS/sweeps/gc-wppbudget-seedS) and the
committed issue-11 records (results/dplc/results.json: DPLC-W++ and GC at 32,000 generator images;
stage1.json: the W++ G*'s sample FD), adds each record's training budget (tables.record_budget), and writes
  OUTPUT/gc_budget.json  the new GC records, with their budget;
  OUTPUT/gc_budget.md    per method and rate: MSE, FD, PV with mean ± sd (n seeds) and generator images,
                         then the verdicts of the criteria fixed in results/dplc/calibration_plan.md
                         section 3 before the runs finished (computed on the means, not written by hand).

  python results/dplc/gc_budget.py --workdirs=workdirs/dplc
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tables  # noqa: E402  (results/dplc/tables.py: budgets and table cells)

from tfdplc import results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
METHOD = "gc_wppbudget"
PV_RATIO_MIN = 0.5  # GC's PV at 0 bits >= 0.5x DPLC's (issue 25 item 2)
FD_RATIO_MAX = 1.5  # "near the G* samples'": GC's 0-bit FD <= 1.5x the W++ G*'s sample FD
PV_NEAR_ZERO = 0.1  # "about 0": below a tenth of DPLC's 0-bit PV, as tables.claims reads it


def _mean(runs, key):
    return tables.mean(runs, key) if runs else None


def claims(budget_runs, reference_runs, stage1):
    """The calibration plan's verdicts for GC on the W++ budget.

    Args:
      budget_runs: {bits: [records]} of GC on the W++ budget.
      reference_runs: {(method, bits): [records]} of the committed issue-11 sweep (dplc-wpp, gc).
      stage1: the committed stage-1 records (generator, sample_fd).

    Returns:
      Markdown lines, one per criterion that the available runs can answer.
    """
    lines = []
    dplc0 = reference_runs.get(("dplc-wpp", 0), [])
    gc0 = budget_runs.get(0, [])
    if gc0 and dplc0:
        ratio = _mean(gc0, "pv") / _mean(dplc0, "pv")
        verdict = "holds" if ratio >= PV_RATIO_MIN else "fails"
        lines.append(
            f"- GC's PV at 0 bits >= {PV_RATIO_MIN}x DPLC-W++'s — {verdict}: {tables.cell(gc0, 'pv', 4)} vs "
            f"{tables.cell(dplc0, 'pv', 4)} (ratio {ratio:.2f}; issue-11 GC: "
            f"{tables.cell(reference_runs.get(('gc', 0), []), 'pv', 4)})."
        )
    wpp = [r for r in stage1 if r.get("generator") == "wpp" and r.get("sample_fd") is not None]
    if gc0 and wpp:
        ratio = _mean(gc0, "fd") / _mean(wpp, "sample_fd")
        verdict = "holds" if ratio <= FD_RATIO_MAX else "fails"
        lines.append(
            f"- GC's FD at 0 bits <= {FD_RATIO_MAX}x the W++ G*'s sample FD — {verdict}: "
            f"{tables.cell(gc0, 'fd', 1)} vs {tables.cell(wpp, 'sample_fd', 1)} (ratio {ratio:.2f}; "
            f"issue-11 GC: {tables.cell(reference_runs.get(('gc', 0), []), 'fd', 1)})."
        )
    for bits in sorted(b for b in budget_runs if b > 0):
        if not dplc0:
            break
        pv = _mean(budget_runs[bits], "pv")
        near_zero = pv < PV_NEAR_ZERO * _mean(dplc0, "pv")
        lines.append(
            f"- GC's PV at {bits} bits is about 0 (< {PV_NEAR_ZERO} x DPLC's 0-bit PV) — "
            f"{'holds' if near_zero else 'fails'}: {tables.cell(budget_runs[bits], 'pv', 4)}; DPLC-W++ at "
            f"{bits} bits {tables.cell(reference_runs.get(('dplc-wpp', bits), []), 'pv', 4)}."
        )
    return lines


def table(groups):
    """Rows per (method, bits): MSE, FD, PV (mean ± sd (n)) and the generator's images."""
    lines = [
        "| method | bits | MSE | FD | PV | G images |",
        "|---|---|---|---|---|---|",
    ]
    for (method, bits), runs in sorted(groups.items(), key=lambda item: (item[0][1], item[0][0])):
        lines.append(
            f"| {method} | {bits} | {tables.cell(runs, 'mse', 4)} | {tables.cell(runs, 'fd', 1)} | "
            f"{tables.cell(runs, 'pv', 4)} | {tables.images_cell(runs, 'generator_images')} |"
        )
    return lines


def main():
    """Writes gc_budget.json and gc_budget.md (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdirs", required=True, help="The WORKDIRS folder of reproduce.sh.")
    parser.add_argument(
        "--reference", default=HERE, help="Folder with the committed results.json, stage1.json."
    )
    parser.add_argument("--output", default=HERE, help="Where gc_budget.json and gc_budget.md go.")
    args = parser.parse_args()

    workdirs = os.path.abspath(args.workdirs)
    new = [r for r in results.load_seeded_sweeps(os.path.join(workdirs, "sweeps")) if r["method"] == METHOD]
    if not new:
        raise SystemExit(f"No {METHOD} records under {workdirs}/sweeps (run STAGES=gcbudget reproduce.sh).")
    for record in new:
        if os.path.abspath(record["workdir"]).startswith(workdirs + os.sep):
            record["workdir"] = os.path.relpath(record["workdir"], workdirs)
        record.update(tables.record_budget(record, workdirs))
    with open(os.path.join(args.reference, "results.json")) as f:
        reference = [r for r in json.load(f) if r["method"] in ("dplc-wpp", "gc")]
    with open(os.path.join(args.reference, "stage1.json")) as f:
        stage1 = json.load(f)
    # The issue-11 records predate the budget fields; their config files are committed, so read them here.
    for record in reference:
        if record.get("generator_images") is None:
            config = tables.training_budget([record["config"]], [f"K = {record['k']}"])
            if record["method"] == "gc":
                record["generator_images"] = config["images"]
            else:  # DPLC: its decoder is the W++ G*
                record["generator_images"] = tables.training_budget(["gin/wpp_mnist5k.gin"])["images"]

    groups = results.group_records(new + reference, ("method", tables.bits))
    budget_runs = {bits: runs for (method, bits), runs in groups.items() if method == METHOD}
    lines = [
        "# GC on the Wasserstein++ budget (App. B), against DPLC-W++ and the issue-11 GC",
        "",
        "Written by results/dplc/gc_budget.py; criteria: results/dplc/calibration_plan.md section 3. "
        "gc = the issue-11 GC (gin/gc_mnist5k.gin), gc_wppbudget = gin/gc_wpp_budget_mnist5k.gin; "
        "dplc-wpp and gc from results.json (3 seeds, 500 test digits).",
        "",
        *table(groups),
        "",
        *claims(budget_runs, groups, stage1),
        "",
    ]
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "gc_budget.json"), "w") as f:
        json.dump(new, f, indent=2)
    with open(os.path.join(args.output, "gc_budget.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
