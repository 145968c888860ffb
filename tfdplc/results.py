"""Result records over several seeds: grouping, mean and standard deviation, and their text form.

Experiments write one record per run (DESIGN.md "Results files"), with a `seed` field when a setting was
trained more than once. These helpers summarise such records per setting (e.g. per method and rate) as
mean +- sample standard deviation (ddof = 1; 0 for a single run), the form every results README uses.
"""

import glob
import json
import math
import os
import re
from collections import defaultdict
from typing import Callable, Dict, Hashable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "STALL_BAND",
    "Stall",
    "Summary",
    "detect_stall",
    "folder_seed",
    "format_mean_sd",
    "group_records",
    "load_seeded_sweeps",
    "plateau_epoch",
    "summarize",
]

Key = Union[str, Callable[[dict], Hashable]]


class Summary(NamedTuple):
    """One metric over the runs of one setting; `sd` is the sample sd (ddof = 1), 0 for a single run."""

    mean: float
    sd: float
    n: int


def folder_seed(path: str) -> Optional[int]:
    """The seed S of a seed folder: one named "seed<S>" or "<name>-seed<S>" (a trailing "/" is ignored).

    Args:
      path: a folder path, e.g. "WORKDIRS/seed2" or "WORKDIRS/sweeps/g1g2-seed2".

    Returns:
      S, or None for any other name (e.g. "seed2-extended", "x-seed1b"): not a seed folder.
    """
    match = re.fullmatch(r"(?:.+-)?seed(\d+)", os.path.basename(os.path.normpath(path)))
    return int(match.group(1)) if match else None


def load_seeded_sweeps(directory: str) -> List[dict]:
    """The records of every DIRECTORY/<name>-seed<S>/results.json (`tools/sweep.py` outputs), with `seed`.

    Args:
      directory: the folder holding one sweep output folder per (name, seed), as the results/*/reproduce.sh
        scripts lay them out.

    Returns:
      The records of all of them, in path order, each a copy with `seed` = S added.
    """
    records = []
    for path in sorted(glob.glob(os.path.join(directory, "*-seed*", "results.json"))):
        seed = folder_seed(os.path.dirname(path))
        if seed is None:  # e.g. "x-seed1b": not a seed folder
            continue
        with open(path) as f:
            records.extend(dict(record, seed=seed) for record in json.load(f))
    return records


def _key_value(record: dict, key: Key) -> Hashable:
    return key(record) if callable(key) else record.get(key)


def group_records(records: Sequence[dict], by: Sequence[Key]) -> Dict[Tuple, List[dict]]:
    """Groups records by the values of `by` (record keys, or functions of a record), in first-seen order.

    Args:
      records: result records.
      by: the keys that define a setting, e.g. ("method", "rate_bits").

    Returns:
      {tuple of the keys' values: [records of that setting]}.
    """
    groups = defaultdict(list)
    for record in records:
        groups[tuple(_key_value(record, key) for key in by)].append(record)
    return dict(groups)


def summarize(
    records: Sequence[dict], metric: Union[str, Callable[[dict], Optional[float]]]
) -> Optional[Summary]:
    """Mean and sample standard deviation of one metric over records (the runs of one setting).

    Args:
      records: the runs of one setting.
      metric: a record key, or a function of a record (e.g. a ratio of two keys); records where it is
        missing or None are left out.

    Returns:
      A `Summary`, or None if no record has the metric.

    Raises:
      ValueError: if a value is not finite (a diverged run must be looked at, not averaged away).
    """
    values = [metric(r) if callable(metric) else r.get(metric) for r in records]
    values = [float(v) for v in values if v is not None]
    if not values:
        return None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"summarize: non-finite values {values} for {metric!r}.")
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return Summary(float(np.mean(values)), sd, len(values))


def format_mean_sd(summary: Optional[Summary], digits: int = 4, percent: bool = False) -> str:
    """`mean ± sd (n)` as text; "-" for None; the sd and n are left out for a single run.

    Args:
      summary: from `summarize`.
      digits: decimals.
      percent: show 100 x the values with a sign and a % sign (for relative differences).

    Returns:
      The text, e.g. "0.0251 ± 0.0004 (3)" or "+1.3 ± 0.8% (3)".
    """
    if summary is None:
        return "-"
    mean, sd, n = summary
    if percent:
        text = f"{100 * mean:+.{digits}f}"
        return f"{text}%" if n == 1 else f"{text} ± {100 * sd:.{digits}f}% ({n})"
    text = f"{mean:.{digits}f}"
    return text if n == 1 else f"{text} ± {sd:.{digits}f} ({n})"


def plateau_epoch(
    curves: Sequence[Sequence[float]],
    tolerances: Sequence[float],
    window: int = 10,
    lag: int = 20,
    first: int = 40,
) -> Optional[int]:
    """The first epoch at which every curve has flattened: a stopping rule read from per-epoch curves.

    With m_k(e) the mean of curve k over epochs e - window + 1 .. e (epochs count from 1), the curves have
    flattened at epoch e (a multiple of `lag`, e >= `first`) when |m_k(e) - m_k(e - lag)| <=
    tolerances[k] * |m_k(e - lag)| for every k.

    Args:
      curves: per-epoch values, one sequence per curve (index 0 is epoch 1); all of one length.
      tolerances: the relative change allowed for each curve over `lag` epochs.
      window: epochs each mean covers.
      lag: epochs between the two means compared (and between the epochs checked).
      first: the earliest epoch checked.

    Returns:
      The epoch, or None when no epoch up to the curves' length qualifies.

    Raises:
      ValueError: on curves of different lengths, a tolerance count that does not match, or window > lag.
    """
    if len(tolerances) != len(curves):
        raise ValueError(f"plateau_epoch: {len(curves)} curves but {len(tolerances)} tolerances.")
    lengths = {len(curve) for curve in curves}
    if len(lengths) != 1:
        raise ValueError(f"plateau_epoch: the curves have different lengths {sorted(lengths)}.")
    if not 1 <= window <= lag:
        raise ValueError(f"plateau_epoch: need 1 <= window <= lag, got window {window}, lag {lag}.")
    (length,) = lengths

    def mean_at(curve, epoch):
        return float(np.mean(curve[epoch - window : epoch]))

    start = -(-first // lag) * lag  # the first multiple of lag >= first
    for epoch in range(start, length + 1, lag):
        if epoch - lag < window:  # the earlier mean would reach before epoch 1
            continue
        if all(
            abs(mean_at(curve, epoch) - mean_at(curve, epoch - lag))
            <= tolerance * abs(mean_at(curve, epoch - lag))
            for curve, tolerance in zip(curves, tolerances)
        ):
            return epoch
    return None


#: A run is stalled when its final test MSE lies within this fraction of the code-ignoring floor 2 Var(X)
#: (issue 26: "stall = test MSE within 20% of the 2Var(X) floor").
STALL_BAND = 0.2


class Stall(NamedTuple):
    """What a test-MSE curve says about the code-ignoring plateau (`detect_stall`).

    Attributes:
      stalled: the final MSE lies in the band [(1 - band) floor, (1 + band) floor], ends included.
      ratio: final MSE / floor.
      above: the final MSE lies above the band (worse than any code-ignoring realistic decoder): not a
        stall by the definition, but no converged run either.
      reached: some point of the curve lies in the band or above it (the run was on the plateau).
      left_at: the step from which the curve stays below the band to its end, after having been in or
        above it; None when it ends in or above the band, or was never there.
    """

    stalled: bool
    ratio: float
    above: bool
    reached: bool
    left_at: Optional[int]


def detect_stall(
    steps: Sequence[int], values: Sequence[float], floor: float, band: float = STALL_BAND
) -> Stall:
    """Whether a run ended on the code-ignoring plateau, and when it left it (Yan et al., issue 26).

    A perceptual decoder that ignores the code and draws a realistic image has test MSE 2 Var(X) (the floor,
    `tfdplc.metrics.code_ignoring_mse`); G2 runs can sit there for thousands of steps before they use the
    code. The run is stalled when its last test MSE m satisfies |m - floor| <= band * floor, computed as
    (1 - band) * floor <= m <= (1 + band) * floor (both ends count as stalled).

    Args:
      steps: the training steps of the evaluations, strictly increasing.
      values: the test MSE at each of them (the last one decides).
      floor: 2 Var(X) of the test images, > 0.
      band: the relative half-width of the plateau band, in (0, 1).

    Returns:
      A `Stall`.

    Raises:
      ValueError: on an empty curve, lengths that differ, steps not strictly increasing, a non-finite
        value, a floor that is not positive and finite, or a band outside (0, 1).
    """
    steps, values = [int(s) for s in steps], [float(v) for v in values]
    if not values or len(steps) != len(values):
        raise ValueError(
            f"detect_stall: need one value per step, got {len(steps)} steps, {len(values)} values."
        )
    if any(b <= a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"detect_stall: the steps must increase strictly, got {steps}.")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"detect_stall: non-finite test MSE {values} (a diverged run must be looked at).")
    floor, band = float(floor), float(band)
    if not (math.isfinite(floor) and floor > 0):
        raise ValueError(f"detect_stall: the floor must be positive and finite, got {floor}.")
    if not 0 < band < 1:
        raise ValueError(f"detect_stall: band must lie in (0, 1), got {band}.")
    lower, upper = (1.0 - band) * floor, (1.0 + band) * floor
    final = values[-1]
    on_plateau = [v >= lower for v in values]  # in the band, or above it
    left_at = None
    if not on_plateau[-1] and any(on_plateau):
        last_on = max(i for i, on in enumerate(on_plateau) if on)
        left_at = steps[last_on + 1]
    return Stall(
        stalled=lower <= final <= upper,
        ratio=final / floor,
        above=final > upper,
        reached=any(on_plateau),
        left_at=left_at,
    )
