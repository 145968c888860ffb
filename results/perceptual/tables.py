#!/usr/bin/env python
"""Collects the seeded perceptual runs of results/perceptual/reproduce.sh into records, tables and figures.

Reads WORKDIRS/sweeps/<stage>-seed<S>/results.json (tools/sweep.py outputs: G1, G2 per rate, DAL per
lambda) and WORKDIRS/seed<S>/g2-k<R>/metrics_realism.json (tools/evaluate.py --realism), and writes to
OUTPUT:
  results_seeds.json   one record per run (method, rate_bits, seed, mse, fd, kd, pv, ...);
  realism.json         one record per (rate, seed, realism weight) of the slider;
  tables.md            the claims of issue 13 with mean ± sd over seeds: MSE(G2) / MSE(G1) per rate next to
                       the code-ignoring floor (floor.json), FD of G1 and G2, where the ratio comes from
                       (G2's spread and the offset of its mean), DAL per lambda, and the slider against
                       (1 + a^2) MSE(G1);
  run_times.json       one record per run folder: its training wall time (TensorBoard event times), for the
                       README's wall time of reproduce.sh;
  tradeoff_k<R>.png    per slider rate: the (MSE, FD) points of G1, G2, DAL (at its rate) and the slider
                       curve (Yan et al. Fig. 5, with the slider added).

Example:
  python results/perceptual/tables.py --workdirs=workdirs/perceptual
"""

import argparse
import glob
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tfdplc import metrics, plots, results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RATIO_RANGE = (1.7, 2.3)  # issue 13: the mean ratio at the informative rates


def load_realism(workdirs):
    """The slider records of WORKDIRS/seed<S>/g2-k<R>/metrics_realism.json, with `seed`."""
    records = []
    for path in sorted(glob.glob(os.path.join(workdirs, "seed*", "g2-k*", "metrics_realism.json"))):
        seed = results.folder_seed(os.path.dirname(os.path.dirname(path)))
        if seed is None:  # e.g. a diagnostic copy such as seed2-extended/
            continue
        with open(path) as f:
            records.extend(dict(record, seed=seed) for record in json.load(f))
    return records


def load_run_times(workdirs):
    """One record per run folder WORKDIRS/seed<S>/<kind>-...: `run`, `kind` (g1, g2, dal), `seed`, `minutes`.

    `minutes` is the training wall time read from the run's TensorBoard events
    (`tfdplc.plots.read_training_seconds`, pauses left out); runs without logs are skipped.
    """
    records = []
    for log_dir in sorted(glob.glob(os.path.join(workdirs, "seed*", "*", "logs", "train"))):
        workdir = os.path.dirname(os.path.dirname(log_dir))
        seed = results.folder_seed(os.path.dirname(workdir))
        if seed is None or not glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
            continue
        run = os.path.basename(workdir)
        records.append(
            {
                "run": run,
                "kind": run.split("-")[0],
                "seed": seed,
                "minutes": plots.read_training_seconds(log_dir) / 60.0,
            }
        )
    return records


def run_time_table(run_times):
    """Markdown lines: training minutes per run kind (mean ± sd over runs) and the hours they add up to."""
    lines = ["| runs | count | minutes per run | hours in all |", "|---|---|---|---|"]
    total = 0.0
    for (kind,), runs in sorted(results.group_records(run_times, ("kind",)).items()):
        minutes = results.summarize(runs, "minutes")
        hours = sum(r["minutes"] for r in runs) / 60.0
        total += hours
        lines.append(f"| {kind} | {len(runs)} | {_cell(minutes, 1)} | {hours:.1f} |")
    lines.append(f"| all | {len(run_times)} | - | {total:.1f} |")
    return lines


def _cell(summary, digits=4):
    return results.format_mean_sd(summary, digits) if summary else "-"


def ratio_table(records, floor):
    """Markdown lines: G1 vs G2 per rate, the ratio per seed pair, the floor test and the two claims."""
    groups = results.group_records(records, ("method", "rate_bits"))
    lines = [
        f"Code-ignoring floor 2 Var(X) = {floor:.4f}; a rate is informative when 2 x MSE(G1) < "
        f"0.8 x floor = {0.8 * floor:.4f}.",
        "",
        "| bits | seeds | MSE(G1) | MSE(G2) | MSE(G2) / MSE(G1) | informative | ratio in "
        f"[{RATIO_RANGE[0]}, {RATIO_RANGE[1]}] | FD G1 | FD G2 | FD G2 < FD G1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    verdicts = {"ratio": [], "fd": []}
    for bits in sorted({b for (m, b) in groups if m == "g1"}):
        g1, g2 = groups[("g1", bits)], groups.get(("g2", bits), [])
        if not g2:
            continue
        g1_by_seed = {r["seed"]: r for r in g1}
        pairs = [r for r in g2 if r["seed"] in g1_by_seed]
        ratio = results.summarize(pairs, lambda r, by_seed=g1_by_seed: r["mse"] / by_seed[r["seed"]]["mse"])
        mse_g1 = results.summarize(g1, "mse")
        informative = metrics.informative_for_theorem2(mse_g1.mean, floor)
        in_range = RATIO_RANGE[0] <= ratio.mean <= RATIO_RANGE[1]
        fd_g1, fd_g2 = results.summarize(g1, "fd"), results.summarize(g2, "fd")
        fd_better = fd_g2.mean < fd_g1.mean
        if informative:
            verdicts["ratio"].append(in_range)
        verdicts["fd"].append(fd_better)
        lines.append(
            f"| {bits:g} | {ratio.n} | {_cell(mse_g1)} | {_cell(results.summarize(g2, 'mse'))} | "
            f"{_cell(ratio, 2)} | {'yes' if informative else 'no'} | "
            f"{('yes' if in_range else 'no') if informative else '- (not informative)'} | {_cell(fd_g1, 1)} | "
            f"{_cell(fd_g2, 1)} | {'yes' if fd_better else 'no'} |"
        )
    lines += [
        "",
        f"Claim: the mean ratio lies in [{RATIO_RANGE[0]}, {RATIO_RANGE[1]}] at every informative rate: "
        f"{_verdict(verdicts['ratio'])}. G2's FD is below G1's at every rate: {_verdict(verdicts['fd'])}.",
    ]
    return lines


def spread_table(records):
    """Markdown lines: MSE(G2) / MSE(G1) split into G2's spread and the offset of its conditional mean.

    With G2's noise independent of X given the code c, MSE(G2) = E||X - m2(c)||^2 + PV(G2), m2(c) the mean of
    G2(c, .) over the noise. If G1 is the MMSE decoder, E||X - m2(c)||^2 = MSE(G1) + E||G1(c) - m2(c)||^2, so

      MSE(G2) / MSE(G1) = 1 + PV(G2) / MSE(G1) + offset,   offset = E||G1(c) - m2(c)||^2 / MSE(G1) >= 0,

    and a posterior sample (Theorem 2's optimum) has PV(G2) = MSE(G1) and offset = 0. The offset here is the
    remainder (MSE(G2) - PV(G2)) / MSE(G1) - 1 per seed: PV is measured on the PV protocol's 256 test codes,
    MSE on all 500 test digits, so it also carries that sampling difference (and is negative if G1 is not
    the MMSE decoder).
    """
    groups = results.group_records(records, ("method", "rate_bits"))
    lines = [
        "| bits | seeds | MSE(G2) / MSE(G1) | PV(G2) / MSE(G1) (posterior sample: 1) | offset (posterior "
        "sample: 0) |",
        "|---|---|---|---|---|",
    ]
    for bits in sorted({b for (m, b) in groups if m == "g1"}):
        g1_by_seed = {r["seed"]: r["mse"] for r in groups[("g1", bits)]}
        pairs = [
            (r, g1_by_seed[r["seed"]])
            for r in groups.get(("g2", bits), [])
            if r["seed"] in g1_by_seed and r.get("pv") is not None
        ]
        if not pairs:
            continue
        ratio = results.summarize(pairs, lambda p: p[0]["mse"] / p[1])
        spread = results.summarize(pairs, lambda p: p[0]["pv"] / p[1])
        offset = results.summarize(pairs, lambda p: (p[0]["mse"] - p[0]["pv"]) / p[1] - 1)
        lines.append(
            f"| {bits:g} | {ratio.n} | {_cell(ratio, 2)} | {_cell(spread, 2)} | {_cell(offset, 2)} |"
        )
    return lines


def _verdict(flags, unit="rates"):
    if not flags:
        return f"no {unit} to test"
    return f"{'holds' if all(flags) else 'fails'} ({sum(flags)} of {len(flags)} {unit})"


def dal_table(records):
    """Markdown lines: DAL per lambda against G1 and G2 at DAL's rate, and the dominance claim."""
    dal = [r for r in records if r["method"].startswith("dal-")]
    if not dal:
        return ["No DAL run yet."]
    bits = dal[0]["rate_bits"]
    groups = results.group_records(records, ("method", "rate_bits"))
    lines = [
        f"At {bits:g} bits (mean ± sd over seeds):",
        "",
        "| method | seeds | MSE | FD | KD | beats G2 on both MSE and FD |",
        "|---|---|---|---|---|---|",
    ]
    g2 = groups.get(("g2", bits))
    g2_mse = results.summarize(g2, "mse") if g2 else None
    g2_fd = results.summarize(g2, "fd") if g2 else None
    dominated = []
    methods = sorted({m for (m, b) in groups if b == bits}, key=_method_order)
    for method in methods:
        runs = groups[(method, bits)]
        mse, fd = results.summarize(runs, "mse"), results.summarize(runs, "fd")
        beats = "-"
        if method.startswith("dal-") and g2_mse:
            better = mse.mean < g2_mse.mean and fd.mean < g2_fd.mean
            dominated.append(not better)
            beats = "yes" if better else "no"
        lines.append(
            f"| {method} | {mse.n} | {_cell(mse)} | {_cell(fd, 1)} | {_cell(results.summarize(runs, 'kd'), 1)} "
            f"| {beats} |"
        )
    lines += [
        "",
        f"Claim: no DAL point has both lower MSE and lower FD than G2: {_verdict(dominated, 'lambdas')}.",
    ]
    return lines


def _method_order(method):
    if method.startswith("dal-"):
        return (1, float(method[len("dal-") :]))
    return (0, method)


def slider_table(records, realism):
    """Markdown lines: the slider per rate and weight against (1 + a^2) MSE(G1)."""
    if not realism:
        return ["No slider evaluation yet."]
    g1 = results.group_records([r for r in records if r["method"] == "g1"], ("rate_bits",))
    lines = [
        "| bits | realism a | seeds | MSE | (1 + a^2) MSE(G1) | FD | PV |",
        "|---|---|---|---|---|---|---|",
    ]
    for (bits, alpha), runs in sorted(results.group_records(realism, ("rate_bits", "realism")).items()):
        mse_g1 = results.summarize(g1.get((bits,), []), "mse")
        predicted = f"{(1 + alpha**2) * mse_g1.mean:.4f}" if mse_g1 else "-"
        lines.append(
            f"| {bits:g} | {alpha:g} | {len(runs)} | {_cell(results.summarize(runs, 'mse'))} | {predicted} | "
            f"{_cell(results.summarize(runs, 'fd'), 1)} | {_cell(results.summarize(runs, 'pv'))} |"
        )
    return lines


def tradeoff_plot(records, realism, bits, path):
    """(MSE, FD) of G1, G2, DAL at `bits` and the slider curve (mean over seeds)."""
    fig, ax = plt.subplots(figsize=(4.6, 3.6))
    groups = results.group_records(records, ("method", "rate_bits"))
    for (method, rate), runs in sorted(groups.items(), key=lambda item: _method_order(item[0][0])):
        if rate != bits:
            continue
        mse, fd = results.summarize(runs, "mse"), results.summarize(runs, "fd")
        marker = {"g1": "s", "g2": "D"}.get(method, "o")
        ax.errorbar(mse.mean, fd.mean, xerr=mse.sd, yerr=fd.sd, fmt=marker, capsize=2, label=method)
    curve = sorted(
        results.group_records([r for r in realism if r["rate_bits"] == bits], ("realism",)).items()
    )
    if curve:
        xs = [results.summarize(runs, "mse").mean for _, runs in curve]
        ys = [results.summarize(runs, "fd").mean for _, runs in curve]
        ax.plot(xs, ys, "-", color="black", linewidth=1, label="slider a = 0 .. 1")
        for ((alpha,), _), x, y in zip(curve, xs, ys):
            ax.annotate(f"{alpha:g}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("test MSE")
    ax.set_ylabel("FD (digit features)")
    ax.set_title(f"{bits:g} bits", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    return plots.save_figure(fig, path)


def _seed_set(text):
    try:
        return {int(seed) for seed in text.split(",")}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _of_seeds(records, seeds):
    return records if seeds is None else [r for r in records if r["seed"] in seeds]


def main():
    """Reads the sweeps and slider records, writes the JSON files, tables.md and the trade-off figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdirs", required=True, help="WORKDIRS of results/perceptual/reproduce.sh.")
    parser.add_argument("--output", default=HERE)
    parser.add_argument(
        "--seeds",
        type=_seed_set,
        default=None,
        help="Comma-separated seeds whose runs the tables and records use (default: every seed folder).",
    )
    args = parser.parse_args()
    records = _of_seeds(results.load_seeded_sweeps(os.path.join(args.workdirs, "sweeps")), args.seeds)
    if not records:
        raise SystemExit(f"error: no sweep records under {os.path.join(args.workdirs, 'sweeps')!r}.")
    realism = _of_seeds(load_realism(args.workdirs), args.seeds)
    run_times = _of_seeds(load_run_times(args.workdirs), args.seeds)
    with open(os.path.join(HERE, "floor.json")) as f:
        floor = json.load(f)["code_ignoring_mse"]
    for name, content in (
        ("results_seeds.json", records),
        ("realism.json", realism),
        ("run_times.json", run_times),
    ):
        with open(os.path.join(args.output, name), "w") as f:
            json.dump(content, f, indent=2)
    lines = ["# Perceptual decoder: seeded runs (written by tables.py)", "", "## G2 against G1", ""]
    lines += ratio_table(records, floor)
    lines += ["", "## Where the ratio comes from", ""] + spread_table(records)
    lines += ["", "## DAL", ""] + dal_table(records)
    lines += ["", "## Decode-time realism slider", ""] + slider_table(records, realism)
    lines += ["", "## Training wall time (TensorBoard event times; evaluation not included)", ""]
    lines += run_time_table(run_times)
    with open(os.path.join(args.output, "tables.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    for bits in sorted({r["rate_bits"] for r in realism}):
        tradeoff_plot(records, realism, bits, os.path.join(args.output, f"tradeoff_k{bits:g}.png"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
