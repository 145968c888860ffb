#!/usr/bin/env python
"""Markdown table of where a training step's op time goes, from `tools/benchmark.py --profile_steps` JSON.

Each JSON file is named SETTING-CASE.json (default, avx2, eigen: see docs/performance.md). Op types are
grouped so that oneDNN's names (_MklNativeConv2D, ...) and Eigen's (Conv2D, ...) land in the same rows.

  python results/benchmark/profiles.py results/benchmark/profiles
"""

import collections
import json
import os
import re
import sys

#: (group, pattern on the op type), first match wins.
GROUPS = (
    ("conv input gradient", r"Conv2DBackpropInput"),
    ("conv filter gradient", r"Conv2DBackpropFilter"),
    ("conv forward", r"Conv2D"),
    ("matmul", r"MatMul"),
    ("batch norm", r"BatchNorm"),
    ("activations and their gradients", r"Relu|Sigmoid|Tanh|Softplus|Elu"),
)


def group_of(op: str) -> str:
    """The row an op type belongs to ("other" if none)."""
    for group, pattern in GROUPS:
        if re.search(pattern, op):
            return group
    return "other"


def shares(profile):
    """{group: share of op time} of one profile (list of {"op", "share"})."""
    result = collections.Counter()
    for row in profile:
        result[group_of(row["op"])] += row["share"]
    return result


def main(folder: str) -> None:
    """Prints the table for the SETTING-CASE.json files in `folder`."""
    runs = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            setting, case = name[: -len(".json")].split("-", 1)
            with open(os.path.join(folder, name)) as f:
                (record,) = json.load(f)
            runs[(case, setting)] = record
    groups = [g for g, _ in GROUPS] + ["other"]
    print("| case | setting | " + " | ".join(groups) + " |")
    print("|---|---|" + "---|" * len(groups))
    for (case, setting), record in sorted(runs.items()):
        row = shares(record["profile"])
        print(f"| {case} | {setting} | " + " | ".join(f"{100 * row[g]:.0f}%" for g in groups) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "profiles"))
