#!/usr/bin/env python
"""Issue 27's two regime checks, read from the committed results files of one super-resolution task.

1. "MSE to X falls by >= 30% from 4 to 30 bits": for shift-ncr and shift-cr, the mean MSE to X over the
   seeds at 4 and at 30 bits (each seed's own fall too, where a seed has both rates).
2. "Term (a) within 2x of Table 11": for each decomposition reading (own targets, joint) and rate, the mean
   (a) = E||X - Y^1||^2 over the seeds against Table 11's (a) (results/shift/tables.py's PAPER_SR), as a ratio
   ours / paper; "within 2x" means 0.5 <= ratio <= 2.

Example:
  python results/shift/regime_checks.py --task=sr_authors
"""

import argparse
import importlib.util
import json
import os
import statistics

HERE = os.path.dirname(os.path.abspath(__file__))
LOW, HIGH = 4, 30  # bits
METHODS = ("shift-ncr", "shift-cr")
READINGS = (("decomposition-own", "own targets"), ("decomposition-joint", "joint"))


def _tables():
    spec = importlib.util.spec_from_file_location("shift_tables", os.path.join(HERE, "tables.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def _seeds(values):
    return f"{len(values)} seed" + ("s" if len(values) != 1 else "")


def _by_seed(records, method, bits, key):
    return {
        r["seed"]: float(r[key]) for r in records if r["method"] == method and round(r["rate_bits"]) == bits
    }


def mse_fall_lines(records):
    """Markdown lines: the fall of the mean MSE to X from LOW to HIGH bits per method, and per seed."""
    lines = []
    for method in METHODS:
        low, high = _by_seed(records, method, LOW, "mse"), _by_seed(records, method, HIGH, "mse")
        if not low or not high:
            lines.append(f"- {method}: not run at both {LOW} and {HIGH} bits.")
            continue
        mean_low, mean_high = statistics.mean(low.values()), statistics.mean(high.values())
        fall = 1 - mean_high / mean_low
        per_seed = ", ".join(
            f"{s}: {100 * (1 - high[s] / low[s]):.0f}%" for s in sorted(set(low) & set(high))
        )
        lines.append(
            f"- {method}: mean MSE to X {mean_low:.4f} ({_seeds(low)}) at {LOW} bits -> {mean_high:.4f} "
            f"({_seeds(high)}) at {HIGH} bits, a fall of {100 * fall:.0f}% "
            f"({'>=' if fall >= 0.30 else '<'} 30%); per seed {per_seed}."
        )
    return lines


def term_a_lines(records, table11):
    """Markdown lines: mean term (a) per reading and rate against Table 11's (a)."""
    lines = []
    for method, reading in READINGS:
        for bits in sorted(table11):
            values = _by_seed(records, method, bits, "term_a")
            if not values:
                continue
            ours, paper = statistics.mean(values.values()), table11[bits][0]
            ratio = ours / paper
            verdict = "within 2x" if 0.5 <= ratio <= 2 else "not within 2x"
            lines.append(
                f"- {reading}, {bits} bits: (a) = {ours:.4f} ({_seeds(values)}) against Table 11's "
                f"{paper:.4f}: ratio {ratio:.2f}, {verdict}."
            )
    return lines or ["- no decomposition records."]


def main():
    """Prints both checks for one task."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="sr_authors", choices=("sr", "sr_authors"))
    parser.add_argument("--output", default=HERE, help="The results folder (results/shift).")
    args = parser.parse_args()
    tables = _tables()
    task = tables.TASKS[args.task]
    end_to_end_folder, decomposition_folder = task["folders"]
    end_to_end = _load(os.path.join(args.output, end_to_end_folder, "results.json"))
    decomposition = _load(os.path.join(args.output, decomposition_folder, "results.json"))
    print(f"MSE to X from {LOW} to {HIGH} bits ({args.task}):")
    print("\n".join(mse_fall_lines(end_to_end)))
    print(f"Term (a) against Table 11 ({args.task}):")
    print("\n".join(term_a_lines(decomposition, task["paper"]["table11"])))


if __name__ == "__main__":
    main()
