#!/usr/bin/env python
"""The code-ignoring floor of Yan et al.'s ratio claim, and which rates of results.json can test it.

A realistic decoder that ignores the code has test MSE 2 Var(X) (`tfdplc.metrics.code_ignoring_mse`). Where
2 x MSE(G1) is near that floor, MSE(G2) = 2 MSE(G1) holds for any decoder that draws a random realistic
digit, so the claim says nothing there. This script computes the floor on the test digits the perceptual
runs are evaluated on (mnist5k test split, 500 digits at 32x32), writes floor.json, redraws
perceptual_rate_mse.png with the floor, and prints a table per rate: MSE(G1), 2 x MSE(G1), MSE(G2), the
ratio, and whether the rate is informative (2 x MSE(G1) < 0.8 x floor).

Usage: python results/perceptual/floor.py [--results=results/perceptual]
"""

import argparse
import json
import os

import numpy as np

from tfdplc import data, metrics, plots, results


def main():
    """Computes the floor, writes floor.json and the plot, prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results/perceptual", help="Folder with results.json.")
    parser.add_argument("--data_dir", default=None, help="tfds data folder (mnist5k builds itself).")
    args = parser.parse_args()

    dataset = data.load_images("mnist5k", "test", data_dir=args.data_dir, resolution=32)
    images = np.stack([image.numpy() for image in dataset])
    floor = metrics.code_ignoring_mse(images)
    with open(os.path.join(args.results, "results.json")) as f:
        records = json.load(f)
    with open(os.path.join(args.results, "floor.json"), "w") as f:
        json.dump({"code_ignoring_mse": floor, "num_images": len(images), "split": "test"}, f, indent=2)
    plots.perceptual_rate_plot(records, os.path.join(args.results, "perceptual_rate_mse.png"), floor=floor)

    print(
        f"Code-ignoring floor 2 Var(X) on {len(images)} test digits: {floor:.4f} (0.8 x floor {0.8 * floor:.4f})"
    )
    print()
    print(
        "| bits | MSE(G1) | 2 x MSE(G1) | MSE(G2) | MSE(G2) / MSE(G1) | informative (2 MSE(G1) < 0.8 floor) |"
    )
    print("|---|---|---|---|---|---|")
    groups = results.group_records(records, ("method", "rate_bits"))
    for bits in sorted({b for (m, b) in groups if m == "g1"}):
        g1, g2 = groups[("g1", bits)], groups.get(("g2", bits), [])
        mse_g1 = results.summarize(g1, "mse")
        mse_g2 = results.summarize(g2, "mse")
        by_seed = {r.get("seed"): r["mse"] for r in g1}
        ratio = results.summarize(
            g2,
            lambda r, g1_mse=by_seed: r["mse"] / g1_mse[r.get("seed")] if r.get("seed") in g1_mse else None,
        )
        informative = metrics.informative_for_theorem2(mse_g1.mean, floor)
        print(
            f"| {bits:g} | {results.format_mean_sd(mse_g1)} | {2 * mse_g1.mean:.4f} | "
            f"{results.format_mean_sd(mse_g2)} | {results.format_mean_sd(ratio, 2)} | {'yes' if informative else 'no'} |"
        )


if __name__ == "__main__":
    main()
