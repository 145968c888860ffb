#!/usr/bin/env python
"""Collects the shift-compression sweeps of results/shift/reproduce.sh into results files and tables.

Reads SWEEPS/<method>-seed<S>/results.json (one tools/sweep.py output per method and seed) of one task and
writes, for --task=sr (x4 super-resolution; --task=denoise, --task=sr_authors (the authors' degradation)
and --task=sr_vr (the variable-rate runs of issue 27) write denoise_mnist5k/, tables_denoise.md,
sr_authors_mnist5k/, tables_authors.md and sr_mnist5k_vr/, tables_vr.md instead)
  OUTPUT/sr_mnist5k/results.json      end-to-end (shift-cr, shift-ncr, shift-vr) and baseline records, with
                                      `seed` (and the restoration network's restoration_metrics.json),
  OUTPUT/decomposition/results.json   decomposition records (decomposition-own, -joint, -joint-dithered,
                                      -separate), with `seed`,
the rate plots (mean ± sd over seeds), and OUTPUT/tables.md: the headline claim (common randomness vs
none, paired by seed, with Student-t intervals of cr - ncr), the variable-rate runs, the separate baseline,
the decomposition under both readings of Section 3.2 (own targets, joint; with the transport term T and
Table 11 under each reading), and the contrast between training procedures.

--from_results rewrites only the tables file from the results files already in OUTPUT (e.g. the committed
ones, after a change to this script).
"""

import argparse
import json
import math
import os
from typing import NamedTuple, Tuple

from scipy import stats

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
    "sr_authors": {
        "paper": PAPER_SR,
        "folders": ("sr_authors_mnist5k", os.path.join("sr_authors_mnist5k", "decomposition")),
        "tables": "tables_authors.md",
        "title": "x4 super-resolution with the authors' degradation (torch bicubic, no antialiasing)",
        "source": "Liu et al. 2022 on full MNIST (Tables 1, 5, 9, 11)",
    },
    "sr_vr": {  # the variable-rate runs since issue 27 (own prior optimizer, lambda 0.01): WORKDIRS/vr/sweeps
        "paper": PAPER_SR,
        "folders": ("sr_mnist5k_vr", os.path.join("sr_mnist5k_vr", "decomposition")),
        "tables": "tables_vr.md",
        "title": "x4 super-resolution, variable rate (learned prior with its own optimizer)",
        "source": "Liu et al. 2022 on full MNIST (fixed rates only)",
    },
    "denoise": {
        "paper": PAPER_DENOISE,
        "folders": ("denoise_mnist5k", os.path.join("denoise_mnist5k", "decomposition")),
        "tables": "tables_denoise.md",
        "title": "denoising (Gaussian noise, std 20 on 0-255)",
        "source": "Liu et al. 2022 on SVHN (Tables 1, 6, 11)",
    },
}
#: The restoration network's own evaluation (tools/evaluate.py output), in SWEEPS and beside the results.
RESTORATION_METRICS = "restoration_metrics.json"
END_TO_END = ("shift-cr", "shift-ncr", "baseline-cr", "baseline-ncr", "shift-vr")
VARIABLE_RATE_PREFIX = "shift-vr-"  # sweep methods shift-vr-<rate weight>, one curve "shift-vr" in the plots
DECOMPOSITIONS = (
    ("decomposition-own", "own targets: g1 on (a), g2 on (b), code only"),
    ("decomposition-joint", "joint: all of eq. 18, code only"),
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


class PairedDifference(NamedTuple):
    """The cr - ncr of one metric at one rate over the seeds where both ran (paired by `seed`)."""

    seeds: Tuple[int, ...]
    differences: Tuple[float, ...]
    mean: float
    sd: float  # sample sd (ddof = 1); 0 for one seed
    low: float  # 95% t-interval of the mean difference; nan for one seed
    high: float

    @property
    def excludes_zero(self) -> bool:
        """Whether the 95% interval lies wholly on one side of 0 (False for one seed)."""
        return self.low > 0 or self.high < 0


def paired_difference(cr_runs, ncr_runs, metric, confidence=0.95):
    """The per-seed cr - ncr of one metric: mean, sd and Student-t interval (`scipy.stats.t`, n - 1 dof).

    The runs of a seed share `train.seed` (weights, data order) and the training dithers' seed, so the
    per-seed difference removes the seed's own effect: the interval is mean ± t_{(1+c)/2, n-1} sd / sqrt(n).

    Args:
      cr_runs: the shift-cr records of one rate.
      ncr_runs: the shift-ncr records of the same rate.
      metric: the record key.
      confidence: the interval's coverage.

    Returns:
      A `PairedDifference`, or None if no seed has the metric in both.

    Raises:
      ValueError: if a seed has two runs of one method (the pairing would be ambiguous).
    """
    by_seed = []
    for runs in (cr_runs, ncr_runs):
        values = {}
        for r in runs:
            if r.get(metric) is None:
                continue
            if r["seed"] in values:
                raise ValueError(f"Two {r['method']} runs of seed {r['seed']} at {bits(r)} bits.")
            values[r["seed"]] = float(r[metric])
        by_seed.append(values)
    seeds = tuple(sorted(set(by_seed[0]) & set(by_seed[1])))
    if not seeds:
        return None
    differences = tuple(by_seed[0][s] - by_seed[1][s] for s in seeds)
    n = len(differences)
    mean = sum(differences) / n
    if n == 1:
        return PairedDifference(seeds, differences, mean, 0.0, math.nan, math.nan)
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * sd / math.sqrt(n)
    return PairedDifference(seeds, differences, mean, sd, mean - half, mean + half)


def _signed(value, digits):
    return f"{value:+.{digits}f}"


def headline_table(records, paper_numbers=PAPER_SR):
    """Common randomness vs none per rate: mean ± sd of mse, mse_gt, fd and the seed-paired cr - ncr.

    Args:
      records: end-to-end records (shift-cr and shift-ncr are used).
      paper_numbers: the task's PAPER_* dictionary.

    Returns:
      The markdown lines: the table, the per-seed differences, and per metric the number of rates (with
      at least two paired seeds) whose 95% interval of cr - ncr lies below 0 and above 0.
    """
    groups = results.group_records(records, ("method", bits))
    rates = sorted({b for (m, b) in groups if m == "shift-cr"} & {b for (m, b) in groups if m == "shift-ncr"})
    if not rates:
        return []
    lines = [
        "## Common randomness vs none (eq. 14 vs 16), mean ± sd over seeds (runs), paired by seed",
        "",
        "cr and ncr runs of one seed share `train.seed` (weights, data order) and the dithers' seed, so they are",
        "compared seed by seed: `cr - ncr` is the mean ± sd of the per-seed differences (seeds), `95% CI` its",
        "Student-t interval (n - 1 degrees of freedom), `excludes 0` whether that interval lies below (cr",
        "lower) or above 0.",
        "",
        "| bits | metric | cr | ncr | cr - ncr (paired) | 95% CI | excludes 0 | paper cr / ncr |",
        "|---|---|---|---|---|---|---|---|",
    ]
    counts = {}
    per_seed = []
    for b in rates:
        for metric in ("mse", "mse_gt", "fd"):
            cr_runs, ncr_runs = groups[("shift-cr", b)], groups[("shift-ncr", b)]
            cr = results.summarize(cr_runs, metric)
            ncr = results.summarize(ncr_runs, metric)
            if cr is None or ncr is None:
                continue
            digits = 1 if metric == "fd" else 4
            paired = paired_difference(cr_runs, ncr_runs, metric)
            if paired is None or len(paired.seeds) < 2:
                difference = "-" if paired is None else f"{_signed(paired.mean, digits)} (1)"
                interval, verdict = "-", "- (one seed)"
            else:
                difference = f"{_signed(paired.mean, digits)} ± {paired.sd:.{digits}f} ({len(paired.seeds)})"
                interval = f"[{_signed(paired.low, digits)}, {_signed(paired.high, digits)}]"
                below, above = paired.high < 0, paired.low > 0
                verdict = "yes, cr lower" if below else "yes, cr higher" if above else "no"
                count = counts.setdefault(metric, [0, 0, 0])
                count[0] += below
                count[1] += above
                count[2] += 1
            if paired is not None:
                per_seed.append(
                    f"| {b} | {metric} | "
                    + ", ".join(
                        f"{s}: {_signed(d, digits)}" for s, d in zip(paired.seeds, paired.differences)
                    )
                    + " |"
                )
            paper = paper_numbers.get(metric, {})
            paper_text = " / ".join(
                "-" if paper.get(m, {}).get(b) is None else f"{paper[m][b]:.4f}"
                for m in ("shift-cr", "shift-ncr")
            )
            lines.append(
                f"| {b} | {metric} | {fmt(cr, digits)} | {fmt(ncr, digits)} | {difference} | {interval} | "
                f"{verdict} | {paper_text} |"
            )
    lines.append("")
    for metric, (below, above, total) in counts.items():
        lines.append(
            f"- {metric}: the 95% interval of cr - ncr lies below 0 at {below} of the {total} rates with at "
            f"least two paired seeds (above 0 at {above})."
        )
    if per_seed:
        lines += ["", "cr - ncr per seed:", "", "| bits | metric | seed: cr - ncr |", "|---|---|---|"]
        lines += per_seed
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


def transport_estimate(record):
    """T = E||E[X|V] - E[Y~|V]||^2 from one decomposition record, assuming its branches reached their optimum.

    Own targets (g1 on (a), g2 on (b)): Y^1 = E[X|V], Y^2 = E[Y~|V], so (c) = T. Joint (all of eq. 18):
    Y^1 - Y^2 = (E[X|V] - E[Y~|V]) / 3 and L2 = end-to-end - (2/3) T, so T = (3/2)(end-to-end - L2).
    Other modes: None.
    """
    if record["method"] == "decomposition-own":
        return record["term_c"]
    if record["method"] == "decomposition-joint":
        return 1.5 * (record["end_to_end_loss"] - record["decomposed_loss"])
    return None


def joint_gap_predicted(record):
    """-(2/3) T / end-to-end: the joint optimum's L2 / e2e - 1 with T estimated by an own-targets record."""
    if record["method"] != "decomposition-own":
        return None
    return -2 / 3 * record["term_c"] / record["end_to_end_loss"]


DECOMPOSITION_READINGS = (
    ("decomposition-own", "own targets"),
    ("decomposition-joint", "joint (eq. 18)"),
)


def decomposition_table(records, paper_numbers=PAPER_SR):
    """Both readings of Section 3.2 per rate (mean ± sd over seeds), with T, and Table 11 under each reading.

    Args:
      records: decomposition records (decomposition-own and decomposition-joint are used).
      paper_numbers: the task's PAPER_* dictionary.

    Returns:
      The markdown lines.
    """
    groups = results.group_records(records, ("method", bits))
    rates = sorted({b for (m, b) in groups if m in dict(DECOMPOSITION_READINGS)})
    lines = [
        "## Two-branch decomposition (Section 3.2, eq. 18) under both readings, mean ± sd over seeds",
        "",
        "Frozen f, g of the end-to-end runs WITHOUT common randomness of the same seed; both branches fed the",
        "code V (the codewords of the transmitted index); per-pixel MSEs, 500 test digits. Own targets: g1 on",
        "(a) against X, g2 on (b) against Y~, (c) measured; joint: g1, g2 on (a) + (b) + (c). At the optimum",
        "(X and Y~ independent given V), own targets give L2 = end-to-end exactly and (c) = T =",
        "E||E[X|V] - E[Y~|V]||^2, joint gives L2 = end-to-end - (2/3) T. `T` is (c) for own targets and",
        "(3/2)(e2e - L2) for joint (equal at the optimum); `joint optimum` is -(2/3) T / e2e with T = (c) of the",
        "own-targets runs.",
        "",
        "| bits | reading | (a) | (b) | (c) | L2 | end-to-end | L2 / e2e - 1 | T | joint optimum |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in rates:
        for method, reading in DECOMPOSITION_READINGS:
            runs = groups.get((method, b))
            if not runs:
                continue
            row = [str(b), reading]
            row += [
                fmt(results.summarize(runs, k))
                for k in ("term_a", "term_b", "term_c", "decomposed_loss", "end_to_end_loss")
            ]
            row.append(fmt(results.summarize(runs, relative_gap), 1, percent=True))
            row.append(fmt(results.summarize(runs, transport_estimate)))
            predicted = results.summarize(runs, joint_gap_predicted)
            row.append(fmt(predicted, 1, percent=True) if predicted else "-")
            lines.append("| " + " | ".join(row) + " |")
    paper_rates = [b for b in sorted(paper_numbers["table11"]) if b in rates] or sorted(
        paper_numbers["table11"]
    )
    lines += [
        "",
        "Table 11 under each reading: own targets read its (c) as T; joint reads it as T / 9, so T = 9 (c) and",
        "the joint optimum would put L2 at end-to-end - 6 (c).",
        "",
        "| bits | paper (a) / (b) / (c) | paper L2 / e2e | paper L2 / e2e - 1 | T, own reading | T, joint reading | "
        "joint optimum L2 / e2e - 1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in paper_rates:
        a_, b_, c_, l2, e2e = paper_numbers["table11"][b]
        lines.append(
            f"| {b} | {a_:.4f} / {b_:.4f} / {c_:.4f} | {l2:.4f} / {e2e:.4f} | {100 * (l2 / e2e - 1):+.1f}% | "
            f"{c_:.4f} | {9 * c_:.4f} | {100 * (-6 * c_ / e2e):+.1f}% |"
        )
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


def _load_json(path):
    with open(path) as f:
        return json.load(f)


def _records_from_sweeps(sweeps):
    """The records of SWEEPS/<method>-seed<S>/results.json, workdirs relative to the workdirs folder."""
    records = [as_variable_rate(r) for r in results.load_seeded_sweeps(sweeps)]
    if not records:
        raise SystemExit(f"No SWEEPS/<method>-seed<S>/results.json under {sweeps!r}.")
    workdirs = os.path.dirname(os.path.abspath(sweeps))
    for record in records:  # paths relative to the workdirs folder, not this machine's layout
        if os.path.abspath(record["workdir"]).startswith(workdirs + os.sep):
            record["workdir"] = os.path.relpath(record["workdir"], workdirs)
    return records


def main():
    """Merges the sweeps (or reads the committed results files), writes the tables (and results, plots)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--sweeps", help="Folder of the <method>-seed<S> sweep outputs.")
    source.add_argument(
        "--from_results",
        action="store_true",
        help="Rewrite only the tables file from OUTPUT's committed results.json files (and the restoration "
        "network's restoration_metrics.json beside the end-to-end one); results files and plots are kept.",
    )
    parser.add_argument("--output", default="results/shift", help="results/shift")
    parser.add_argument("--task", default="sr", choices=sorted(TASKS), help="The sweeps' task.")
    args = parser.parse_args()
    task = TASKS[args.task]
    end_to_end_folder, decomposition_folder = task["folders"]
    restoration_file = os.path.join(args.output, end_to_end_folder, RESTORATION_METRICS)

    if args.from_results:
        records = []
        for name in task["folders"]:
            path = os.path.join(args.output, name, "results.json")
            if os.path.exists(path):
                records += _load_json(path)
        if not records:
            raise SystemExit(f"No results.json in {args.output!r}'s {' or '.join(task['folders'])}.")
        restoration_path = restoration_file
    else:
        records = _records_from_sweeps(args.sweeps)
        restoration_path = os.path.join(args.sweeps, RESTORATION_METRICS)
    end_to_end = [r for r in records if r["method"] in END_TO_END]
    decomposition = [r for r in records if r["method"].startswith("decomposition")]
    lines = [
        f"# Shift compression on mnist5k, {task['title']} (CPU scale)",
        "",
        f"Written by results/shift/tables.py --task={args.task} from {end_to_end_folder}/results.json and",
        f"{decomposition_folder}/results.json (results/shift/reproduce.sh). Paper: {task['source']}: trends only.",
        "",
    ]
    if not args.from_results:
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
    if os.path.exists(restoration_path):
        (restoration,) = _load_json(restoration_path)
        if not args.from_results:  # kept beside the end-to-end results, for --from_results
            os.makedirs(os.path.dirname(restoration_file), exist_ok=True)
            with open(restoration_file, "w") as f:
                json.dump([restoration], f, indent=2)
    if end_to_end:
        lines += headline_table(end_to_end, task["paper"]) + variable_rate_table(end_to_end)
        lines += baseline_table(end_to_end, restoration)
    if decomposition:
        lines += decomposition_table(decomposition, task["paper"]) + contrast_table(decomposition)
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, task["tables"]), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
