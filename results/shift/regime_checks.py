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
import math
import os
import statistics
from typing import Dict, NamedTuple

__all__ = ["Fall", "TermA", "mse_fall", "mse_fall_lines", "term_a_lines", "term_a_ratio"]

HERE = os.path.dirname(os.path.abspath(__file__))
LOW, HIGH = 4, 30  # bits
MIN_FALL = 0.30  # issue 27: MSE to X falls by >= 30% from LOW to HIGH bits
RATIO_BOUNDS = (0.5, 2.0)  # issue 27: term (a) within 2x of Table 11
# The bounds are met within this relative tolerance: the figures are decimals compared through float64
# division (0.07 / 0.1 = 0.7000000000000001, so an exact 30% fall would read 29.99999999999999%); 1e-9 is
# far below the 4 significant digits the records' float32 metrics carry.
BOUND_RTOL = 1e-9
METHODS = ("shift-ncr", "shift-cr")
READINGS = (("decomposition-own", "own targets"), ("decomposition-joint", "joint"))


class Fall(NamedTuple):
    """The fall of one method's mean MSE to X from `low` to `high` bits (means over the seeds at each rate)."""

    method: str
    mean_low: float
    mean_high: float
    seeds_low: int
    seeds_high: int
    fall: float  # 1 - mean_high / mean_low
    per_seed: Dict[int, float]  # seed -> its own fall, for the seeds run at both rates
    meets: bool  # fall >= MIN_FALL


class TermA(NamedTuple):
    """One reading's mean term (a) at one rate against Table 11's (a)."""

    method: str
    bits: int
    ours: float
    seeds: int
    paper: float
    ratio: float  # ours / paper
    within: bool  # RATIO_BOUNDS[0] <= ratio <= RATIO_BOUNDS[1]


def _at_least(value, bound):
    return value >= bound or math.isclose(value, bound, rel_tol=BOUND_RTOL)


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


def _seeds(count):
    return f"{count} seed" + ("s" if count != 1 else "")


def _by_seed(records, method, bits, key):
    """{seed: record[key]} of `method`'s records at `bits` (rounded rate_bits).

    Raises:
      ValueError: if a seed has two such records (a mean over them would count it twice).
    """
    values = {}
    for r in records:
        if r["method"] != method or round(r["rate_bits"]) != bits:
            continue
        if r["seed"] in values:
            raise ValueError(f"Two {method} records of seed {r['seed']} at {bits} bits.")
        values[r["seed"]] = float(r[key])
    return values


def mse_fall(records, method, low=LOW, high=HIGH):
    """The fall of `method`'s mean MSE to X from `low` to `high` bits.

    Args:
      records: end-to-end records (`method`, `rate_bits`, `seed`, `mse`).
      method: e.g. "shift-ncr".
      low: the lower rate, bits.
      high: the higher rate, bits.

    Returns:
      A `Fall`, or None if the method was not run at both rates.

    Raises:
      ValueError: if a seed has two records of the method at one of the rates.
    """
    at_low, at_high = _by_seed(records, method, low, "mse"), _by_seed(records, method, high, "mse")
    if not at_low or not at_high:
        return None
    mean_low, mean_high = statistics.mean(at_low.values()), statistics.mean(at_high.values())
    fall = 1 - mean_high / mean_low
    per_seed = {s: 1 - at_high[s] / at_low[s] for s in sorted(set(at_low) & set(at_high))}
    return Fall(
        method, mean_low, mean_high, len(at_low), len(at_high), fall, per_seed, _at_least(fall, MIN_FALL)
    )


def term_a_ratio(records, method, bits, table11):
    """`method`'s mean term (a) at `bits` against Table 11's (a) at that rate.

    Args:
      records: decomposition records (`method`, `rate_bits`, `seed`, `term_a`).
      method: "decomposition-own" or "decomposition-joint".
      bits: the rate, bits.
      table11: {bits: ((a), (b), (c), L2, end-to-end)}, e.g. tables.PAPER_SR["table11"].

    Returns:
      A `TermA`, or None if the method has no record at `bits`.

    Raises:
      ValueError: if a seed has two records at `bits`, or Table 11 has no row for `bits`.
    """
    values = _by_seed(records, method, bits, "term_a")
    if not values:
        return None
    if bits not in table11:
        raise ValueError(f"Table 11 has no row at {bits} bits (rows: {sorted(table11)}).")
    ours, paper = statistics.mean(values.values()), table11[bits][0]
    ratio = ours / paper
    lower, upper = RATIO_BOUNDS
    within = _at_least(ratio, lower) and _at_least(upper, ratio)
    return TermA(method, bits, ours, len(values), paper, ratio, within)


def mse_fall_lines(records):
    """Markdown lines: the fall of the mean MSE to X from LOW to HIGH bits per method, and per seed."""
    lines = []
    for method in METHODS:
        fall = mse_fall(records, method)
        if fall is None:
            lines.append(f"- {method}: not run at both {LOW} and {HIGH} bits.")
            continue
        per_seed = ", ".join(f"{s}: {100 * f:.0f}%" for s, f in fall.per_seed.items())
        lines.append(
            f"- {method}: mean MSE to X {fall.mean_low:.4f} ({_seeds(fall.seeds_low)}) at {LOW} bits -> "
            f"{fall.mean_high:.4f} ({_seeds(fall.seeds_high)}) at {HIGH} bits, a fall of "
            f"{100 * fall.fall:.0f}% ({'>=' if fall.meets else '<'} {100 * MIN_FALL:.0f}%); per seed {per_seed}."
        )
    return lines


def term_a_lines(records, table11):
    """Markdown lines: mean term (a) per reading and rate against Table 11's (a)."""
    lines = []
    for method, reading in READINGS:
        for bits in sorted(table11):
            check = term_a_ratio(records, method, bits, table11)
            if check is None:
                continue
            lines.append(
                f"- {reading}, {bits} bits: (a) = {check.ours:.4f} ({_seeds(check.seeds)}) against Table 11's "
                f"{check.paper:.4f}: ratio {check.ratio:.2f}, {'within' if check.within else 'not within'} 2x."
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
