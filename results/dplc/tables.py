#!/usr/bin/env python
"""Collects the DPLC runs of results/dplc/reproduce.sh into results files, plots and tables.

Reads WORKDIRS/sweeps/<name>-seed<S>/results.json (tools/sweep.py outputs: cae, dplc-gc, gstar) and
WORKDIRS/seed<S>/<generator>_mnist5k/metrics.json (stage 1), and writes
  OUTPUT/results.json         one record per (method, K, seed) of the rate sweeps, with `seed`,
  OUTPUT/stage1.json          one record per (generator, seed),
  OUTPUT/rate_{mse,fd,pv}.png mean ± sd over seeds per method (DPLC Figure 3 style),
  OUTPUT/decodes.png          seed 0: one test digit, stochastic decodes per rate and method (Figure 1),
  OUTPUT/tables.md            the tables (mean ± sd (n)) and each claim of the paper checked on them.
"""

import argparse
import glob
import json
import os

from tfdplc import plots, results

GENERATORS = ("wpp", "wae", "wgan_gp")
SWEEP_METHODS = ("cae", "dplc-wpp", "gc", "dplc-wae", "dplc-wgan_gp")


def load_stage1(workdirs):
    """The stage-1 records WORKDIRS/seed<S>/<generator>_mnist5k/metrics.json, with `generator` and `seed`."""
    records = []
    for path in sorted(glob.glob(os.path.join(workdirs, "seed*", "*_mnist5k", "metrics.json"))):
        generator = os.path.basename(os.path.dirname(path))[: -len("_mnist5k")]
        if generator not in GENERATORS:
            continue
        seed = results.folder_seed(os.path.dirname(os.path.dirname(path)))
        if seed is None:  # not a seed folder
            continue
        with open(path) as f:
            (record,) = json.load(f)
        records.append(dict(record, generator=generator, seed=seed))
    return records


def bits(record):
    """The record's rate in whole bits per image."""
    return int(round(record["rate_bits"]))


def cell(runs, key, digits):
    """Mean ± sd (n) of `key` over `runs`, or '-' when no run has it."""
    return results.format_mean_sd(results.summarize(runs, key), digits)


def mean(runs, key):
    """The mean of `key` over runs (None when absent)."""
    summary = results.summarize(runs, key)
    return None if summary is None else summary.mean


def sweep_table(records):
    """Per method and rate: MSE, FD, KD, PV, training seconds, mean ± sd over seeds."""
    groups = results.group_records(records, ("method", bits))
    lines = [
        "## Rate sweep, mean ± sd over seeds (n runs); FD / KD on the digit classifier's features",
        "",
        "| method | bits | bpp | test MSE | FD | KD | PV | train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = {m: i for i, m in enumerate(SWEEP_METHODS)}
    for method, b in sorted(groups, key=lambda key: (order.get(key[0], 99), key[0], key[1])):
        runs = groups[(method, b)]
        lines.append(
            f"| {method} | {b} | {b / 1024:.4f} | {cell(runs, 'mse', 4)} | {cell(runs, 'fd', 1)} | "
            f"{cell(runs, 'kd', 1)} | {cell(runs, 'pv', 4)} | {cell(runs, 'train_wall_s', 0)} |"
        )
    return lines + [""]


def stage1_table(records):
    """Per generator: reconstruction MSE / FD (G(F(x))) and sample FD / KD (G(z)), mean ± sd over seeds."""
    groups = results.group_records(records, ("generator",))
    lines = [
        "## Stage-1 generators (Table 1 style), mean ± sd over seeds (n runs)",
        "",
        "| generator | recon. MSE | recon. FD | sample FD | sample KD |",
        "|---|---|---|---|---|",
    ]
    for generator in GENERATORS:
        runs = groups.get((generator,))
        if runs:
            lines.append(
                f"| {generator} | {cell(runs, 'mse', 4)} | {cell(runs, 'fd', 1)} | "
                f"{cell(runs, 'sample_fd', 1)} | {cell(runs, 'sample_kd', 1)} |"
            )
    return lines + [""]


def claims(records, stage1):
    """Each claim of the paper, checked on the means (the verdicts are computed, not written by hand)."""
    by_rate = {}
    for (method, b), runs in results.group_records(records, ("method", bits)).items():
        by_rate.setdefault(method, {})[b] = runs
    lines = ["## The paper's claims, checked on these means", ""]

    def verdict(ok):
        return "holds" if ok else "fails"

    dplc = by_rate.get("dplc-wpp", {})
    if len(dplc) > 1:
        rates = sorted(dplc)
        pv = [mean(dplc[b], "pv") for b in rates]
        falls = all(a > b for a, b in zip(pv, pv[1:]))
        lines.append(
            f"- DPLC's PV rises as the rate falls — {verdict(falls)}: "
            + ", ".join(f"{b} bits {p:.4f}" for b, p in zip(rates, pv))
            + "."
        )
        fd = [mean(dplc[b], "fd") for b in rates]
        lines.append(
            f"- DPLC's reconstruction FD falls as the rate rises — {verdict(all(a > b for a, b in zip(fd, fd[1:])))}: "
            + ", ".join(f"{b} bits {f:.1f}" for b, f in zip(rates, fd))
            + "."
        )
    gc = by_rate.get("gc", {})
    if 0 in gc and 0 in dplc:
        ratio = mean(gc[0], "pv") / max(mean(dplc[0], "pv"), 1e-12)
        lines.append(
            f"- GC's PV at 0 bits is comparable to DPLC's (within 2x) — {verdict(0.5 <= ratio <= 2)}: "
            f"{mean(gc[0], 'pv'):.4f} vs {mean(dplc[0], 'pv'):.4f} (ratio {ratio:.2f})."
        )
    above = sorted(b for b in gc if b > 0)
    if above and 0 in dplc:
        worst = max(mean(gc[b], "pv") for b in above)
        near_zero = worst < 0.1 * mean(dplc[0], "pv")
        lines.append(
            f"- GC's PV is about 0 above 0 bits (here: below a tenth of DPLC's PV at 0 bits) — "
            f"{verdict(near_zero)}: at most {worst:.4f} at {', '.join(map(str, above))} bits."
        )
    shared = sorted(set(gc) & set(dplc))
    if shared:
        parts = [
            f"{b} bits MSE x{mean(gc[b], 'mse') / mean(dplc[b], 'mse'):.2f}, FD x{mean(gc[b], 'fd') / mean(dplc[b], 'fd'):.2f}"
            for b in shared
        ]
        lines.append(
            "- GC's MSE and FD against DPLC-W++'s (GC / DPLC, comparable in the paper): "
            + "; ".join(parts)
            + "."
        )
    generators = {g: runs for (g,), runs in results.group_records(stage1, ("generator",)).items()}
    if "wpp" in generators and "wae" in generators:
        wpp, wae = generators["wpp"], generators["wae"]
        lines.append(
            f"- Wasserstein++'s sample FD is below WAE's (Table 1) — "
            f"{verdict(mean(wpp, 'sample_fd') < mean(wae, 'sample_fd'))}: "
            f"{cell(wpp, 'sample_fd', 1)} vs {cell(wae, 'sample_fd', 1)}."
        )
        lines.append(
            f"- Wasserstein++'s reconstruction FD is below WAE's and its MSE above (Table 1) — "
            f"{verdict(mean(wpp, 'fd') < mean(wae, 'fd') and mean(wpp, 'mse') > mean(wae, 'mse'))}: "
            f"FD {cell(wpp, 'fd', 1)} vs {cell(wae, 'fd', 1)}, MSE {cell(wpp, 'mse', 4)} vs {cell(wae, 'mse', 4)}."
        )
    if "wpp" in generators and "wgan_gp" in generators:
        lines.append(
            f"- Wasserstein++'s sample FD is slightly above WGAN-GP's (Table 1): "
            f"{cell(generators['wpp'], 'sample_fd', 1)} vs {cell(generators['wgan_gp'], 'sample_fd', 1)}."
        )
    others = [m for m in ("dplc-wae", "dplc-wgan_gp") if m in by_rate]
    for b in sorted(set(dplc).intersection(*(by_rate[m] for m in others)) if others else []):
        fds = {m: mean(by_rate[m][b], "fd") for m in ["dplc-wpp", *others]}
        lowest = min(fds, key=fds.get)
        lines.append(
            f"- {b} bits: DPLC-W++ has the lowest reconstruction FD of the DPLC models (Fig. 3) — "
            f"{verdict(lowest == 'dplc-wpp')}: " + ", ".join(f"{m} {v:.1f}" for m, v in fds.items()) + "."
        )
    return lines + [""]


def main():
    """Merges the runs, writes results.json, stage1.json, the plots and tables.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdirs", required=True, help="The WORKDIRS folder of reproduce.sh.")
    parser.add_argument("--output", default="results/dplc", help="Where the files go.")
    args = parser.parse_args()

    records = results.load_seeded_sweeps(os.path.join(args.workdirs, "sweeps"))
    stage1 = load_stage1(args.workdirs)
    if not records and not stage1:
        raise SystemExit(f"No sweeps or stage-1 metrics under {args.workdirs!r}.")
    workdirs = os.path.abspath(args.workdirs)
    for record in records + stage1:  # paths relative to the workdirs folder, not this machine's layout
        if os.path.abspath(record["workdir"]).startswith(workdirs + os.sep):
            record["workdir"] = os.path.relpath(record["workdir"], workdirs)
    os.makedirs(args.output, exist_ok=True)
    for name, subset in (("results.json", records), ("stage1.json", stage1)):
        with open(os.path.join(args.output, name), "w") as f:
            json.dump(subset, f, indent=2)
    for path in plots.rate_plots(records, args.output):
        print(f"[tables] wrote {path}")
    # Seed 0's decodes, read from its workdirs (absent when the workdirs were not kept: no grid then).
    with_decodes = [r for r in records if r["seed"] == 0 and os.path.exists(r.get("decodes_file", ""))]
    grid = plots.decode_grid(with_decodes, os.path.join(args.output, "decodes.png"))
    if grid:
        print(f"[tables] wrote {grid}")
    lines = [
        "# DPLC on mnist5k (CPU scale): tables",
        "",
        "Written by results/dplc/tables.py from results.json and stage1.json (results/dplc/reproduce.sh).",
        "",
    ]
    lines += sweep_table(records) + stage1_table(stage1) + claims(records, stage1)
    with open(os.path.join(args.output, "tables.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
