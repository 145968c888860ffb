"""Plots of rate sweeps: rate-distortion-perception curves (DPLC Fig. 3) and decode grids (Fig. 1)."""

import os
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["METRIC_LABELS", "rate_plots", "decode_grid"]

METRIC_LABELS = {
    "mse": "test MSE",
    "fd": "reconstruction Fréchet distance",
    "kd": "reconstruction kernel distance",
    "pv": "conditional pixel variance (PV)",
    "psnr": "PSNR (dB)",
}


def _by_method(records: Sequence[dict]) -> Dict[str, List[dict]]:
    groups = defaultdict(list)
    for record in records:
        groups[record["method"]].append(record)
    return {name: sorted(group, key=lambda r: r["bpp"]) for name, group in groups.items()}


def rate_plots(
    records: Sequence[dict], directory: str, metrics: Sequence[str] = ("mse", "fd", "pv")
) -> List[str]:
    """Writes one PNG per metric against bpp, one line per method; skips metrics no record has.

    Args:
      records: result records with "method", "bpp" and metric keys.
      directory: output folder.
      metrics: metric keys to plot.

    Returns:
      The paths written.
    """
    written = []
    groups = _by_method(records)
    for metric in metrics:
        if not any(metric in r for r in records):
            continue
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        for name, group in groups.items():
            points = [(r["bpp"], r[metric]) for r in group if metric in r]
            if points:
                ax.plot(*zip(*points), marker="o", label=name)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = os.path.join(directory, f"rate_{metric}.png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def decode_grid(records: Sequence[dict], path: str) -> Optional[str]:
    """Figure-1-style grid: per method, one column per rate of several decodes of one test image.

    Uses each record's "decodes_file" (an .npz written by tools/evaluate.py with arrays "original" (H, W, C)
    and "decodes" (N, H, W, C)). Rows: the original, then the N decodes; column blocks: methods; columns
    within a block: rates, increasing.

    Returns:
      The path written, or None if no record has decodes.
    """
    groups = {
        name: [r for r in group if r.get("decodes_file")] for name, group in _by_method(records).items()
    }
    groups = {name: group for name, group in groups.items() if group}
    if not groups:
        return None
    columns = max(len(g) for g in groups.values())
    fig, axes = plt.subplots(1, len(groups), figsize=(1.2 * columns * len(groups) + 1, 6), squeeze=False)
    for ax, (name, group) in zip(axes[0], groups.items()):
        stacks = []
        for record in group:
            data = np.load(record["decodes_file"])
            stacks.append(np.concatenate([data["original"][None], data["decodes"]], axis=0))
        column_images = [
            np.concatenate(list(np.pad(s, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=1.0)), axis=0)
            for s in stacks
        ]
        image = np.concatenate(column_images, axis=1).clip(0, 1)
        ax.imshow(image.squeeze(-1) if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
        ax.set_title(name)
        ax.set_xticks([(i + 0.5) * image.shape[1] / len(group) for i in range(len(group))])
        ax.set_xticklabels([f"{r['bpp']:.3g}" for r in group], fontsize=7)
        ax.set_xlabel("bpp")
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
