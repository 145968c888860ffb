#!/usr/bin/env python
"""G2's training curves per rate and seed, and the stopping rule read from them (issue 13, item 2).

Reads, for every WORKDIR_ROOT/seed<S>/g2-k<R> (and its stage-1 run g1-k<R>), the per-epoch validation
curves the trainer logs to TensorBoard: G2's test MSE on the 500 test digits and the critic's estimate of
the conditional Wasserstein distance on them (`wasserstein`, PerceptualG2.test_step), and G1's test MSE.

The stopping rule (fixed before the curves of the long seed-0 runs were read): G2 has converged at the
first epoch e (a multiple of 20, e >= 40) at which the 10-epoch means of both curves changed by at most
3% (test MSE) and 10% (W estimate) over the previous 20 epochs (`tfdplc.results.plateau_epoch`).

The stall rule (issue 26): a G2 run is stalled when its test MSE at the end of its budget lies within 20%
of the code-ignoring floor 2 Var(X) (`tfdplc.results.detect_stall`, floor from floor.json). From the
curves, each record also says whether the run was ever on the plateau and the step from which it stayed
below it.

Writes OUTPUT/convergence.json (one record per G2 run: rate, seed, epochs, the plateau epoch or None,
the last epoch's values, the stall verdict) and OUTPUT/convergence.png (per rate: the W estimate and the
test MSE against the epoch, one line per seed, with 2 x G1's last test MSE and the floor 2 Var(X)), and
prints both tables. With --records instead of --workdir_root, it reads an earlier convergence.json (whose
runs are gone) and adds the stall verdict from each record's last test MSE alone; the curve-dependent
fields `reached_plateau` and `left_plateau_step` are then null.

Examples:
  python results/perceptual/convergence.py --workdir_root=/work/runs/perceptual --output=results/perceptual
  python results/perceptual/convergence.py --records=results/perceptual/convergence.json
"""

import argparse
import glob
import json
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tfdplc import plots, results  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MSE_TOLERANCE = 0.03
W_TOLERANCE = 0.10
STEPS_PER_EPOCH = 70
FLOOR_FILE = os.path.join(HERE, "floor.json")  # results/perceptual/floor.py writes it


def load_runs(root):
    """{(rate, seed): {"g2_mse", "g2_w", "g1_mse"}} from ROOT/seed<S>/g{1,2}-k<R>/logs/validation."""
    runs = {}
    for workdir in sorted(glob.glob(os.path.join(root, "seed*", "g2-k*"))):
        seed = results.folder_seed(os.path.dirname(workdir))
        if seed is None:  # e.g. a diagnostic copy such as seed2-extended/
            continue
        rate = int(re.search(r"g2-k(\d+)$", workdir).group(1))
        logs = os.path.join(workdir, "logs", "validation")
        if not glob.glob(os.path.join(logs, "events.out.tfevents.*")):
            continue
        run = {
            "g2_mse": plots.read_epoch_curve(logs, "mse"),
            "g2_w": plots.read_epoch_curve(logs, "wasserstein"),
        }
        g1_logs = os.path.join(os.path.dirname(workdir), f"g1-k{rate}", "logs", "validation")
        if glob.glob(os.path.join(g1_logs, "events.out.tfevents.*")):
            run["g1_mse"] = plots.read_epoch_curve(g1_logs, "mse")
        runs[(rate, seed)] = run
    return runs


def read_floor(path=FLOOR_FILE):
    """The code-ignoring floor 2 Var(X) of the test digits (results/perceptual/floor.py writes floor.json).

    Raises:
      SystemExit: if the file is missing.
    """
    if not os.path.exists(path):
        raise SystemExit(
            f"error: no {path}: run results/perceptual/floor.py first (the stall rule needs it)."
        )
    with open(path) as f:
        return float(json.load(f)["code_ignoring_mse"])


def stall_fields(curve, floor, epochs=None):
    """The stall verdict of one G2 run (`tfdplc.results.detect_stall`) as record fields.

    Args:
      curve: the per-epoch test MSE (epoch i + 1 at step (i + 1) * STEPS_PER_EPOCH), or only its last value
        with `epochs` given (the curve-dependent fields are then None).
      floor: 2 Var(X).
      epochs: the run's epoch count when `curve` holds only the last value.

    Returns:
      {"stalled", "stall_ratio", "reached_plateau", "left_plateau_step"}.
    """
    if epochs is None:
        steps = [STEPS_PER_EPOCH * (i + 1) for i in range(len(curve))]
    else:
        steps = [STEPS_PER_EPOCH * epochs]
    stall = results.detect_stall(steps, curve, floor)
    return {
        "stalled": stall.stalled,
        "stall_ratio": stall.ratio,
        "reached_plateau": stall.reached if epochs is None else None,
        "left_plateau_step": stall.left_at if epochs is None else None,
    }


def with_stalls(records, floor):
    """Earlier convergence.json records with the stall verdict of their last test MSE added."""
    return [
        {
            **r,
            **stall_fields([r["last_test_mse"]], floor, epochs=r["epochs"]),
            "stall_band": results.STALL_BAND,
        }
        for r in records
    ]


def stall_table(records):
    """Markdown lines: per rate, how many runs ended stalled, and which seeds."""
    lines = [
        "| bits | runs | stalled | stalled seeds | last test MSE / floor per seed |",
        "|---|---|---|---|---|",
    ]
    for rate in sorted({r["rate_bits"] for r in records}):
        runs = sorted((r for r in records if r["rate_bits"] == rate), key=lambda r: r["seed"])
        stalled = [r["seed"] for r in runs if r["stalled"]]
        ratios = ", ".join(f"{r['stall_ratio']:.3f}" for r in runs)
        seeds = ", ".join(str(s) for s in stalled) or "-"
        lines.append(f"| {rate:g} | {len(runs)} | {len(stalled)} | {seeds} | {ratios} |")
    return lines


def records_of(runs, floor):
    """One record per G2 run with the stopping rule's epoch and the stall verdict."""
    records = []
    for (rate, seed), run in sorted(runs.items()):
        plateau = results.plateau_epoch([run["g2_mse"], run["g2_w"]], [MSE_TOLERANCE, W_TOLERANCE])
        records.append(
            {
                "rate_bits": float(rate),
                "seed": seed,
                "epochs": len(run["g2_mse"]),
                "plateau_epoch": plateau,
                "plateau_step": None if plateau is None else plateau * STEPS_PER_EPOCH,
                "last_test_mse": run["g2_mse"][-1],
                "last_wasserstein": run["g2_w"][-1],
                "g1_last_test_mse": run["g1_mse"][-1] if "g1_mse" in run else None,
                **stall_fields(run["g2_mse"], floor),
                "stall_band": results.STALL_BAND,
            }
        )
    return records


def plot(runs, path, floor):
    """Per rate, the W estimate (top) and G2's test MSE (bottom) against the epoch; returns `path`."""
    rates = sorted({rate for rate, _ in runs})
    fig, axes = plt.subplots(2, len(rates), figsize=(3.2 * len(rates), 5.2), squeeze=False)
    for column, rate in enumerate(rates):
        top, bottom = axes[0][column], axes[1][column]
        for (r, seed), run in sorted(runs.items()):
            if r != rate:
                continue
            epochs = range(1, len(run["g2_mse"]) + 1)
            top.plot(epochs, run["g2_w"], label=f"seed {seed}", linewidth=0.8)
            bottom.plot(epochs, run["g2_mse"], label=f"G2 seed {seed}", linewidth=0.8)
            if "g1_mse" in run:
                bottom.axhline(2 * run["g1_mse"][-1], linestyle="--", linewidth=0.6, color="grey")
        if floor is not None:
            bottom.axhline(floor, linestyle=":", color="black", linewidth=0.8, label="2 Var(X)")
        top.set_title(f"{rate} bits", fontsize=9)
        bottom.set_xlabel("epoch (70 steps)")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("critic's W estimate (test)")
    axes[1][0].set_ylabel("G2 test MSE (dashed: 2 x G1)")
    axes[1][0].legend(fontsize=6)
    return plots.save_figure(fig, path)


def main():
    """Reads the runs, applies the stopping rule, writes the JSON and the figure, prints the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workdir_root", help="the runs: ROOT/seed<S>/g2-k<R> with validation logs")
    source.add_argument("--records", help="an earlier convergence.json: add the stall verdicts only")
    parser.add_argument("--output", default=HERE)
    args = parser.parse_args()
    floor = read_floor()
    if args.records:
        with open(args.records) as f:
            records = with_stalls(json.load(f), floor)
        with open(os.path.join(args.output, "convergence.json"), "w") as f:
            json.dump(records, f, indent=2)
        print("\n".join(stall_table(records)))
        return
    runs = load_runs(args.workdir_root)
    if not runs:
        raise SystemExit(f"error: no seed*/g2-k* workdir with validation logs under {args.workdir_root!r}.")
    records = records_of(runs, floor)
    with open(os.path.join(args.output, "convergence.json"), "w") as f:
        json.dump(records, f, indent=2)
    plot(runs, os.path.join(args.output, "convergence.png"), floor)
    print("| bits | seed | epochs | plateau epoch | last test MSE | last W estimate | 2 x G1 |")
    print("|---|---|---|---|---|---|---|")
    for r in records:
        g1 = "-" if r["g1_last_test_mse"] is None else f"{2 * r['g1_last_test_mse']:.4f}"
        plateau = "none" if r["plateau_epoch"] is None else r["plateau_epoch"]
        print(
            f"| {r['rate_bits']:g} | {r['seed']} | {r['epochs']} | {plateau} | {r['last_test_mse']:.4f} | "
            f"{r['last_wasserstein']:.3g} | {g1} |"
        )
    print()
    print("\n".join(stall_table(records)))


if __name__ == "__main__":
    main()
