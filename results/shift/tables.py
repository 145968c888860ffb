#!/usr/bin/env python
"""Collects the shift-compression sweeps of results/shift/reproduce.sh into results files and tables.

Reads SWEEPS/<method>-seed<S>/results.json (one tools/sweep.py output per method and seed) of one task and
writes, for --task=sr (x4 super-resolution; --task=denoise writes the names in brackets)
  OUTPUT/sr_mnist5k/results.json      [denoise_mnist5k/results.json] end-to-end (shift-cr, shift-ncr,
                                      shift-vr) and baseline records, with `seed`,
  OUTPUT/decomposition/results.json   [denoise_mnist5k/decomposition/results.json] decomposition records
                                      (decomposition-own, -joint, -joint-dithered, -separate), with `seed`,
the rate plots (mean ± sd over seeds), and OUTPUT/tables.md [tables_denoise.md]: the headline claim (common
randomness vs none), the variable-rate runs, the separate baseline (with SWEEPS/restoration_metrics.json,
the restoration network's own evaluation, when present), the decomposition as the paper trains it (L2 / end-to-end - 1 per rate, mean ± sd over
seeds, next to Tables 1 and 11), and the contrast between training procedures.
"""

import argparse
import json
import math
import os

from tfdplc import plots, results

# The paper's numbers at our rates (bits), per task. Super-resolution: Tables 5 / 9 / 7 (full MNIST; the
# paper's networks trained ~47k steps), Table 11 (decomposition; its L2 and end-to-end columns are Table 1's).
# Denoising (SVHN, so trends only against our mnist5k digits): Table 6 (MSE to the noisy input, cr / ncr),
# Table 11's "Image Denoising Using Joint Training" (g1, g2 trained at the same time, each on its own target).
PAPER_SR = {
    "mse": {
        "shift-cr": {4: 0.0515, 10: 0.0394, 16: 0.0339, 20: 0.0313, 30: 0.0277},
        "shift-ncr": {4: 0.0558, 10: 0.0435, 16: 0.0383, 20: 0.0351, 30: 0.0308},
    },
    "mse_gt": {
        "shift-cr": {4: 0.0582, 16: 0.0380, 20: 0.0360},
        "shift-ncr": {4: 0.0646, 16: 0.0390, 20: 0.0375},
    },
    # Table 11: (a), (b), (c), L2, end-to-end. The 30-bit (a) reads 0.00122 in the paper's text, which does
    # not add up to its L2 (0.0309); 0.0122 does.
    "table11": {
        4: (0.0355, 0.0227, 0.0004, 0.0586, 0.0558),
        10: (0.0223, 0.0222, 0.0008, 0.0453, 0.0435),
        20: (0.0136, 0.0191, 0.00013, 0.0349, 0.0351),
        30: (0.0122, 0.0172, 0.0015, 0.0309, 0.0308),
    },
}
PAPER_DENOISE = {
    "mse": {
        "shift-cr": {12: 0.0219, 18: 0.0195, 24: 0.0175, 30: 0.01634, 60: 0.0129},
        "shift-ncr": {12: 0.0230, 18: 0.0208, 24: 0.0189, 30: 0.0175, 60: 0.0140},
    },
    "table11": {
        12: (0.01911, 0.00497, 0.00020, 0.02428, 0.02302),
        30: (0.01458, 0.00435, 0.00026, 0.01919, 0.01746),
        60: (0.01168, 0.00378, 0.00032, 0.01578, 0.01401),
    },
}
# Per task: the paper's numbers, the results folders (end-to-end, decomposition), the tables file, its title.
TASKS = {
    "sr": {
        "paper": PAPER_SR,
        "folders": ("sr_mnist5k", "decomposition"),
        "tables": "tables.md",
        "title": "x4 super-resolution",
        "source": "Liu et al. 2022 on full MNIST (Tables 1, 5, 9, 11)",
    },
    "denoise": {
        "paper": PAPER_DENOISE,
        "folders": ("denoise_mnist5k", os.path.join("denoise_mnist5k", "decomposition")),
        "tables": "tables_denoise.md",
        "title": "denoising (Gaussian noise, std 20 on 0-255)",
        "source": "Liu et al. 2022 on SVHN (Tables 1, 6, 11)",
    },
}
END_TO_END = ("shift-cr", "shift-ncr", "baseline-cr", "baseline-ncr", "shift-vr")
VARIABLE_RATE_PREFIX = "shift-vr-"  # sweep methods shift-vr-<rate weight>, one curve "shift-vr" in the plots
DECOMPOSITIONS = (
    ("decomposition-own", "the paper: g1 on (a), g2 on (b), code only"),
    ("decomposition-joint", "all of eq. 18, code only"),
    ("decomposition-joint-dithered", "all of eq. 18, dithered decoder input"),
    ("decomposition-separate", "separate f1, g1 / f2, g2 (Table 2)"),
)


def bits(record):
    """The record's rate in whole bits per image."""
    return int(round(record["rate_bits"]))


def relative_gap(record):
    """L2 / end-to-end loss - 1 of one decomposition record."""
    return record["decomposed_loss"] / record["end_to_end_loss"] - 1


def fmt(summary, digits=4, percent=False):
    """`results.format_mean_sd` with this file's defaults."""
    return results.format_mean_sd(summary, digits, percent)


def headline_table(records, paper_numbers=PAPER_SR):
    """Common randomness vs none per rate: mean ± sd of mse, mse_gt, fd; where cr's mean is lower by more than one sd.

    Args:
      records: end-to-end records (shift-cr and shift-ncr are used).
      paper_numbers: the task's PAPER_* dictionary.

    Returns:
      The markdown lines.
    """
    groups = results.group_records(records, ("method", bits))
    rates = sorted({b for (m, b) in groups if m == "shift-cr"} & {b for (m, b) in groups if m == "shift-ncr"})
    lines = [
        "## Common randomness vs none (eq. 14 vs 16), mean ± sd over seeds (runs)",
        "",
        "`cr < ncr by > 1 sd`: the cr mean is below the ncr mean by more than the pooled sd",
        "sqrt((sd_cr^2 + sd_ncr^2) / 2) of the two.",
        "",
        "| bits | metric | cr | ncr | cr < ncr by > 1 sd | paper cr / ncr |",
        "|---|---|---|---|---|---|",
    ]
    counts = {}
    for b in rates:
        for metric in ("mse", "mse_gt", "fd"):
            cr = results.summarize(groups[("shift-cr", b)], metric)
            ncr = results.summarize(groups[("shift-ncr", b)], metric)
            if cr is None or ncr is None:
                continue
            pooled = math.sqrt((cr.sd**2 + ncr.sd**2) / 2)
            seeded = cr.n > 1 and ncr.n > 1
            better = seeded and ncr.mean - cr.mean > pooled
            if seeded:  # the count covers only rates with several runs of both
                counts.setdefault(metric, [0, 0])
                counts[metric][0] += better
                counts[metric][1] += 1
            paper = paper_numbers.get(metric, {})
            paper_text = " / ".join(
                "-" if paper.get(m, {}).get(b) is None else f"{paper[m][b]:.4f}"
                for m in ("shift-cr", "shift-ncr")
            )
            digits = 1 if metric == "fd" else 4
            lines.append(
                f"| {b} | {metric} | {fmt(cr, digits)} | {fmt(ncr, digits)} | "
                f"{('yes' if better else 'no') if seeded else '- (one run)'} | {paper_text} |"
            )
    lines.append("")
    for metric, (better, total) in counts.items():
        lines.append(
            f"- {metric}: cr below ncr by more than one sd at {better} of the {total} rates with several runs of both."
        )
    return lines + [""]


def baseline_table(records, restoration=None):
    """The separate baseline (App. B.5) against the end-to-end system at the baseline's rates.

    Args:
      records: end-to-end records (shift-cr, shift-ncr, baseline-cr, baseline-ncr are used).
      restoration: the restoration network's own evaluation record (no rate constraint), or None.

    Returns:
      The markdown lines (none without baseline records).
    """
    methods = ("shift-cr", "shift-ncr", "baseline-cr", "baseline-ncr")
    groups = results.group_records(records, ("method", bits))
    rates = sorted({b for (m, b) in groups if m.startswith("baseline")})
    if not rates:
        return []
    lines = [
        "## The separate baseline (App. B.5: restoration R, then compression of R(X)) vs end to end",
        "",
        "mse is to the degraded input X (Tables 7, 8), mse_gt to the clean image; mean ± sd over seeds (runs).",
        "",
        "| bits | method | mse | mse_gt | fd |",
        "|---|---|---|---|---|",
    ]
    for b in rates:
        for method in methods:
            runs = groups.get((method, b))
            if runs:
                cells = [fmt(results.summarize(runs, "mse")), fmt(results.summarize(runs, "mse_gt"))]
                cells.append(fmt(results.summarize(runs, "fd"), 1))
                lines.append(f"| {b} | {method} | " + " | ".join(cells) + " |")
    if restoration is not None:
        lines += [
            "",
            f"The restoration network alone (no rate constraint): mse {restoration['mse']:.4f}, mse_gt "
            f"{restoration['mse_gt']:.4f}, fd {restoration['fd']:.1f}.",
        ]
    return lines + [""]


def as_variable_rate(record):
    """A sweep record of method shift-vr-<w> as one point of the "shift-vr" curve, with `rate_weight` = w."""
    if not record["method"].startswith(VARIABLE_RATE_PREFIX):
        return record
    weight = float(record["method"][len(VARIABLE_RATE_PREFIX) :])
    return dict(record, method="shift-vr", rate_weight=weight)


def variable_rate_table(records):
    """The variable-rate model per rate weight: estimated vs real bits of the test set, MSE, mse_gt, FD."""
    runs = sorted(
        (r for r in records if r["method"] == "shift-vr"), key=lambda r: (r["rate_weight"], r["seed"])
    )
    if not runs:
        return []
    lines = [
        "## Variable rate (tfc entropy model with a learned prior, universal quantization)",
        "",
        "Rate = mean length of the range-coded strings of the 500 test images (`real_bits`), next to the entropy",
        "model's estimate (`estimated_bits`) of the same images.",
        "",
        "| rate weight | seed | estimated bits | real bits | real / estimated - 1 | mse | mse_gt | fd |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        gap = r.get("real_vs_estimated_bits")
        lines.append(
            f"| {r['rate_weight']:g} | {r['seed']} | {r.get('estimated_bits', float('nan')):.2f} | "
            f"{r['real_bits']:.2f} | {'-' if gap is None else f'{100 * gap:+.1f}%'} | {r['mse']:.4f} | "
            f"{r['mse_gt']:.4f} | {r.get('fd', float('nan')):.1f} |"
        )
    return lines + [""]


def decomposition_table(records, paper_numbers=PAPER_SR):
    """The paper's procedure: per rate, mean ± sd of (a), (b), (c), L2, e2e and L2 / e2e - 1, and Table 11.

    Args:
      records: decomposition records (decomposition-own is used).
      paper_numbers: the task's PAPER_* dictionary.

    Returns:
      The markdown lines.
    """
    own = [r for r in records if r["method"] == "decomposition-own"]
    groups = results.group_records(own, (bits,))
    lines = [
        "## Two-branch decomposition as the paper trains it (Section 3.2, eq. 18), mean ± sd over seeds",
        "",
        "Frozen f, g of the end-to-end runs WITHOUT common randomness of the same seed; g1 trained on (a) against",
        "X and g2 on (b) against Y~, both fed the code index only; (c) measured. Per-pixel MSEs, 500 test digits.",
        "",
        "| bits | (a) | (b) | (c) | L2 | end-to-end | L2 / e2e - 1 | paper (a) / (b) / (c) | paper L2 / e2e | paper L2 / e2e - 1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (b,) in sorted(groups):
        runs = groups[(b,)]
        row = [str(b)]
        row += [
            fmt(results.summarize(runs, k))
            for k in ("term_a", "term_b", "term_c", "decomposed_loss", "end_to_end_loss")
        ]
        row.append(fmt(results.summarize(runs, relative_gap), 1, percent=True))
        paper = paper_numbers["table11"].get(b)
        if paper:
            row += [
                " / ".join(f"{v:.4f}" for v in paper[:3]),
                f"{paper[3]:.4f} / {paper[4]:.4f}",
                f"{100 * (paper[3] / paper[4] - 1):+.1f}%",
            ]
        else:
            row += ["-", "-", "-"]
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def contrast_table(records):
    """Training procedures side by side at the seeds where each ran (normally seed 0)."""
    groups = results.group_records(records, ("method", bits, "seed"))
    lines = [
        "## The decomposition under four training procedures (same frozen f, g)",
        "",
        "| bits | seed | procedure | (a) | (b) | (c) | L2 | end-to-end | L2 / e2e - 1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted(
        {(b, s) for (m, b, s) in groups if m != "decomposition-own" and m.startswith("decomposition")}
    )
    for b, s in keys:
        for method, description in DECOMPOSITIONS:
            runs = groups.get((method, b, s))
            if not runs:
                continue
            (r,) = runs
            values = [
                f"{r[k]:.4f}" for k in ("term_a", "term_b", "term_c", "decomposed_loss", "end_to_end_loss")
            ]
            lines.append(
                f"| {b} | {s} | {description} | " + " | ".join(values) + f" | {100 * relative_gap(r):+.1f}% |"
            )
    return lines + [""]


def main():
    """Merges the sweeps, writes the results files, plots and tables.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", required=True, help="Folder of the <method>-seed<S> sweep outputs.")
    parser.add_argument("--output", default="results/shift", help="results/shift")
    parser.add_argument("--task", default="sr", choices=sorted(TASKS), help="The sweeps' task.")
    args = parser.parse_args()
    task = TASKS[args.task]

    records = [as_variable_rate(r) for r in results.load_seeded_sweeps(args.sweeps)]
    if not records:
        raise SystemExit(f"No SWEEPS/<method>-seed<S>/results.json under {args.sweeps!r}.")
    workdirs = os.path.dirname(os.path.abspath(args.sweeps))
    for record in records:  # paths relative to the workdirs folder, not this machine's layout
        if os.path.abspath(record["workdir"]).startswith(workdirs + os.sep):
            record["workdir"] = os.path.relpath(record["workdir"], workdirs)
    end_to_end = [r for r in records if r["method"] in END_TO_END]
    decomposition = [r for r in records if r["method"].startswith("decomposition")]
    end_to_end_folder, decomposition_folder = task["folders"]
    lines = [
        f"# Shift compression on mnist5k, {task['title']} (CPU scale)",
        "",
        f"Written by results/shift/tables.py --task={args.task} from {end_to_end_folder}/results.json and",
        f"{decomposition_folder}/results.json (results/shift/reproduce.sh). Paper: {task['source']}: trends only.",
        "",
    ]
    for name, subset, metrics in (
        (end_to_end_folder, end_to_end, ("mse", "mse_gt", "fd")),
        (decomposition_folder, decomposition, ("decomposed_loss", "end_to_end_loss")),
    ):
        if not subset:
            continue
        folder = os.path.join(args.output, name)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump(subset, f, indent=2)
        for path in plots.rate_plots(subset, folder, metrics=metrics):
            print(f"[tables] wrote {path}")
    restoration = None
    restoration_path = os.path.join(args.sweeps, "restoration_metrics.json")
    if os.path.exists(restoration_path):
        with open(restoration_path) as f:
            (restoration,) = json.load(f)
    if end_to_end:
        lines += headline_table(end_to_end, task["paper"]) + variable_rate_table(end_to_end)
        lines += baseline_table(end_to_end, restoration)
    if decomposition:
        lines += decomposition_table(decomposition, task["paper"]) + contrast_table(decomposition)
    with open(os.path.join(args.output, task["tables"]), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
