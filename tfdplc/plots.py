"""Plots of rate sweeps: rate-distortion-perception curves (DPLC Fig. 3) and decode grids (Fig. 1).

For the perceptual decoder of Yan et al. 2021 also: MSE of G1, G2 and 2 x MSE(G1) against the rate
(their Fig. 2), MSE against the training epoch (Fig. 3, read from the trainer's TensorBoard logs),
reconstruction grids per rate (Fig. 4) and a comparison at one rate with the DAL baseline (Fig. 5).
"""

import os
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tfdplc import results  # noqa: E402

__all__ = [
    "METRIC_LABELS",
    "comparison_plot",
    "decode_grid",
    "epoch_curve_plot",
    "perceptual_rate_plot",
    "rate_distortion_perception_plot",
    "rate_plots",
    "read_epoch_curve",
    "read_training_seconds",
    "reconstruction_grid",
    "save_figure",
]

METRIC_LABELS = {
    "mse": "test MSE",
    "fd": "reconstruction Fréchet distance",
    "kd": "reconstruction kernel distance",
    "pv": "conditional pixel variance (PV)",
    "psnr": "PSNR (dB)",
}


def save_figure(fig, path: str, dpi: int = 120) -> str:
    """Lays out `fig`, writes it to `path` as an image and closes it (frees its memory).

    Args:
      fig: a Matplotlib figure.
      path: the output file (its extension picks the format).
      dpi: resolution.

    Returns:
      `path`.
    """
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _by_method(records: Sequence[dict]) -> Dict[str, List[dict]]:
    groups = defaultdict(list)
    for record in records:
        groups[record["method"]].append(record)
    return {name: sorted(group, key=lambda r: r["bpp"]) for name, group in groups.items()}


def rate_plots(
    records: Sequence[dict], directory: str, metrics: Sequence[str] = ("mse", "fd", "pv")
) -> List[str]:
    """Writes one PNG per metric against bpp, one line per method; skips metrics no record has.

    Records of the same method and bpp (runs with different seeds) are drawn as their mean with error bars
    of one sample standard deviation (`tfdplc.results.summarize`).

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
            runs = results.group_records([r for r in group if metric in r], ("bpp",))
            points = [(bpp, results.summarize(runs[(bpp,)], metric)) for (bpp,) in runs]
            if not points:
                continue
            bpps = [bpp for bpp, _ in points]
            means = [summary.mean for _, summary in points]
            if any(summary.n > 1 for _, summary in points):
                sds = [summary.sd for _, summary in points]
                ax.errorbar(bpps, means, yerr=sds, marker="o", capsize=3, label=name)
            else:
                ax.plot(bpps, means, marker="o", label=name)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
        ax.legend()
        written.append(save_figure(fig, os.path.join(directory, f"rate_{metric}.png")))
    return written


def rate_distortion_perception_plot(
    records: Sequence[dict], path: str, metrics: Sequence[str] = ("mse", "fd", "pv")
) -> Optional[str]:
    """One PNG with a panel per metric against bpp (DPLC Fig. 3 layout), one line per method.

    Solid lines use the model's estimated rate ("bpp"); where records carry the rate measured from real
    files ("real_bpp", tools/evaluate.py), a dashed line of the same colour shows the metric at that rate.

    Args:
      records: result records with "method", "bpp" and metric keys.
      path: the PNG to write.
      metrics: metric keys, one panel each; metrics no record has are left out.

    Returns:
      The path written, or None if no record has any of the metrics.
    """
    present = [m for m in metrics if any(m in r for r in records)]
    if not present:
        return None
    groups = _by_method(records)
    fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], present):
        for index, (name, group) in enumerate(groups.items()):
            color = f"C{index % 10}"
            points = [(r["bpp"], r[metric]) for r in group if metric in r]
            if points:
                ax.plot(*zip(*points), marker="o", color=color, label=f"{name} (estimated rate)")
            real = sorted((r["real_bpp"], r[metric]) for r in group if metric in r and "real_bpp" in r)
            if real:
                ax.plot(*zip(*real), marker="x", linestyle="--", color=color, label=f"{name} (file payload)")
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, path)


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
    return save_figure(fig, path)


# ----------------------------------------------------------------------------------------------------------
# Perceptual decoder (Yan et al. 2021).


def _log_events(log_dir: str):
    """Yields (event file path, Event) for every event of every TensorBoard file in `log_dir`, in order.

    Raises:
      FileNotFoundError: if `log_dir` holds no event file.
    """
    import tensorflow as tf  # only the log readers need TensorFlow
    from tensorflow.core.util import event_pb2

    files = sorted(tf.io.gfile.glob(os.path.join(log_dir, "events.out.tfevents.*")))
    if not files:
        raise FileNotFoundError(f"No TensorBoard event file in {log_dir!r}.")
    for path in files:
        for raw in tf.data.TFRecordDataset(path):
            yield path, event_pb2.Event.FromString(raw.numpy())


def read_epoch_curve(log_dir: str, metric: str) -> List[float]:
    """Per-epoch values of a metric from the TensorBoard logs the trainer writes (Keras' callback).

    Keras logs the epoch mean of every metric as the scalar `epoch_<metric>` with the epoch index as step,
    under WORKDIR/logs/train and WORKDIR/logs/validation. A resumed run appends event files; for an epoch
    logged twice the later file wins.

    Args:
      log_dir: e.g. "WORKDIR/logs/validation".
      metric: the metric name, e.g. "mse" (reads the tag "epoch_mse").

    Returns:
      The values in epoch order (index 0 is the first epoch).

    Raises:
      FileNotFoundError: if `log_dir` holds no event file.
      ValueError: if no event file has the tag.
    """
    import tensorflow as tf

    tag = f"epoch_{metric}"
    values, tags = {}, set()
    for _, event in _log_events(log_dir):
        for value in event.summary.value:
            tags.add(value.tag)
            if value.tag == tag:
                values[event.step] = float(tf.make_ndarray(value.tensor))
    if not values:
        raise ValueError(f"No scalar {tag!r} in {log_dir!r}; tags found: {sorted(tags)}.")
    return [values[step] for step in sorted(values)]


def read_training_seconds(log_dir: str, max_gap: float = 300.0) -> float:
    """The wall time a run spent training, from the event times of its TensorBoard logs.

    Each event file (one per start of the trainer; a resumed run appends one) spans from its first event,
    written when training starts, to its last. Gaps of more than `max_gap` seconds between consecutive
    events are left out: the trainer logs every few seconds, so such a gap is a paused process (SIGSTOP),
    not training. Set-up before the first event and the final save and evaluation are not counted.

    Args:
      log_dir: e.g. "WORKDIR/logs/train".
      max_gap: the longest gap between two events still counted as training, in seconds.

    Returns:
      The seconds of training summed over the event files.

    Raises:
      FileNotFoundError: if `log_dir` holds no event file.
    """
    seconds, last = 0.0, {}
    for path, event in _log_events(log_dir):
        if path in last and 0.0 <= event.wall_time - last[path] <= max_gap:
            seconds += event.wall_time - last[path]
        last[path] = max(event.wall_time, last.get(path, event.wall_time))
    return seconds


def _by_rate(records: Sequence[dict], method: str) -> Dict[float, dict]:
    return {r["rate_bits"]: r for r in records if r["method"] == method and "rate_bits" in r}


def perceptual_rate_plot(
    records: Sequence[dict], path: str, g1: str = "g1", g2: str = "g2", floor: Optional[float] = None
) -> Optional[str]:
    """Yan et al. Figure 2: test MSE of G1, G2 and 2 x MSE(G1) against the rate in bits per image.

    Records of other methods (e.g. DAL runs) are drawn as single labelled points. With `floor` (the MSE of
    a code-ignoring realistic decoder, `tfdplc.metrics.code_ignoring_mse`), the floor and 0.8 x the floor
    are drawn as horizontal lines: only where 2 x MSE(G1) lies below the second is the ratio informative.

    Args:
      records: result records with "method", "rate_bits" and "mse".
      path: the PNG to write.
      g1: method name of the MSE decoder runs.
      g2: method name of the perceptual decoder runs.
      floor: optional code-ignoring MSE of the test set.

    Returns:
      The path written, or None if there are neither G1 nor G2 records.
    """
    first, second = _by_rate(records, g1), _by_rate(records, g2)
    if not first and not second:
        return None
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    if first:
        rates = sorted(first)
        ax.plot(rates, [first[r]["mse"] for r in rates], marker="o", label=f"{g1}: MSE(G1)")
        ax.plot(rates, [2 * first[r]["mse"] for r in rates], linestyle="--", label="2 x MSE(G1)")
    if second:
        rates = sorted(second)
        ax.plot(rates, [second[r]["mse"] for r in rates], marker="s", label=f"{g2}: MSE(G2)")
    if floor is not None:
        ax.axhline(floor, color="grey", label="2 Var(X): code-ignoring realistic decoder")
        ax.axhline(0.8 * floor, color="grey", linestyle=":", label="0.8 x 2 Var(X)")
    for record in records:
        if record["method"] not in (g1, g2) and "rate_bits" in record and "mse" in record:
            ax.scatter([record["rate_bits"]], [record["mse"]], marker="^")
            ax.annotate(record["method"], (record["rate_bits"], record["mse"]), fontsize=7)
    ax.set_xlabel("rate (bits per image)")
    ax.set_ylabel("test MSE")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def epoch_curve_plot(
    records: Sequence[dict], path: str, g1: str = "g1", g2: str = "g2", curve: str = "validation_mse"
) -> Optional[str]:
    """Yan et al. Figure 3: MSE of G1, G2 and 2 x MSE(G1) against the training epoch, one panel per rate.

    Uses each record's "epoch_curves"[curve] (a list of per-epoch values, as `tools/sweep.py
    --epoch_curves=mse` stores them).

    Returns:
      The path written, or None if no G1 or G2 record has the curve.
    """

    def curves(method):
        return {
            rate: r["epoch_curves"][curve]
            for rate, r in _by_rate(records, method).items()
            if curve in r.get("epoch_curves", {})
        }

    first, second = curves(g1), curves(g2)
    rates = sorted(set(first) | set(second))
    if not rates:
        return None
    fig, axes = plt.subplots(1, len(rates), figsize=(3 * len(rates), 2.8), squeeze=False)
    for ax, rate in zip(axes[0], rates):
        if rate in first:
            epochs = np.arange(1, len(first[rate]) + 1)
            ax.plot(epochs, first[rate], label="G1")
            ax.plot(epochs, 2 * np.asarray(first[rate]), linestyle="--", label="2 x G1")
        if rate in second:
            ax.plot(np.arange(1, len(second[rate]) + 1), second[rate], label="G2")
        ax.set_title(f"{rate:g} bits", fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    labels = {"validation_mse": "test MSE", "train_mse": "training-batch MSE"}
    axes[0][0].set_ylabel(labels.get(curve, curve.replace("_", " ")))
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, path)


def _grid_halves(png: str):
    """(originals row, reconstructions row) of a 2-row grid PNG written by tools/evaluate.py."""
    image = plt.imread(png)
    if image.ndim == 3:
        image = image[..., :3].mean(axis=-1) if image.shape[-1] >= 3 else image[..., 0]
    if image.shape[0] % 2:
        raise ValueError(
            f"{png!r} is not a 2-row grid of originals over reconstructions: shape {image.shape}."
        )
    half = image.shape[0] // 2
    return image[:half], image[half:]


def reconstruction_grid(records: Sequence[dict], path: str, methods: Sequence[str]) -> Optional[str]:
    """Yan et al. Figures 4/5: per rate, the test originals and each method's reconstructions of them.

    Reads WORKDIR/reconstructions.png of every record (tools/evaluate.py writes the same evenly spaced
    test images on its top row and their reconstructions below), and stacks, per rate, the originals once
    and one row per method.

    Args:
      records: result records with "method", "rate_bits" and "workdir".
      path: the PNG to write.
      methods: method names, in row order.

    Returns:
      The path written, or None if no record of these methods has a reconstructions.png.
    """
    rows, labels = [], []
    rates = sorted({r["rate_bits"] for r in records if r["method"] in methods and "rate_bits" in r})
    for rate in rates:
        originals_added = False
        for method in methods:
            record = _by_rate(records, method).get(rate)
            png = os.path.join(record["workdir"], "reconstructions.png") if record else None
            if not png or not os.path.exists(png):
                continue
            originals, reconstructions = _grid_halves(png)
            if not originals_added:
                rows.append(originals)
                labels.append(f"original ({rate:g} bits)")
                originals_added = True
            rows.append(reconstructions)
            labels.append(method)
    if not rows:
        return None
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 0), (0, width - row.shape[1])), constant_values=1.0) for row in rows]
    image = np.concatenate(rows, axis=0)
    height = rows[0].shape[0]
    fig, ax = plt.subplots(figsize=(width / 40 + 1.5, len(rows) * height / 40 + 0.3))
    ax.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax.set_yticks([(i + 0.5) * height for i in range(len(rows))])
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xticks([])
    return save_figure(fig, path)


def comparison_plot(
    records: Sequence[dict],
    path: str,
    rate_bits: float,
    metrics: Sequence[str] = ("mse", "fd", "kd"),
) -> Optional[str]:
    """Yan et al. Figure 5: the methods at one rate side by side (e.g. G1, G2 and DAL for each lambda).

    One bar chart per metric that any record at this rate has (MSE, and the Fréchet / kernel distances
    between test images and reconstructions on the digit classifier's features).

    Returns:
      The path written, or None if fewer than two records are at this rate.
    """
    chosen = [r for r in records if r.get("rate_bits") == rate_bits]
    metrics = [m for m in metrics if any(m in r for r in chosen)]
    if len(chosen) < 2 or not metrics:
        return None
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        names = [r["method"] for r in chosen if metric in r]
        ax.bar(range(len(names)), [r[metric] for r in chosen if metric in r])
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{rate_bits:g} bits per image", fontsize=9)
    return save_figure(fig, path)
