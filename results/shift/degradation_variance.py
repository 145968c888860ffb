#!/usr/bin/env python
"""Per-pixel variance of the degraded super-resolution input X on mnist5k, for each named degradation.

The statistic: for each pixel position, the variance over the digits of the degraded value (on [0, 1]),
then the mean over the 784 positions, i.e. mean_p Var_n[X_n,p] = E||X - E[X]||^2 / 784: the per-pixel MSE
of the best code-ignoring decoder (the mean digit), the ceiling of "MSE to X" at zero rate. Computed in
float64 from the float32 degraded images, over the 4500 train digits and over the 500 test digits, next
to the clean digits' own figure. Also printed: the mean squared part of X that clipping to [0, 1] removes
(bicubic overshoot), and how far TF's own `tf.image.resize(method="bicubic", antialias=False)` (a = -0.5,
taps outside the image dropped) is from the torch emulation of the "authors" preset.

Example (about 10 s on the 2-core CPU):
  python results/shift/degradation_variance.py
"""

import argparse

import numpy as np
import tensorflow as tf

from tfdplc import data
from tfdplc.data import degradations


def _digits(split, data_dir):
    return np.concatenate(
        [
            batch
            for batch in data.load_images("mnist5k", split, data_dir=data_dir).batch(500).as_numpy_iterator()
        ]
    )


def per_pixel_variance(images):
    """Mean over pixels of the variance over images (float64)."""
    images = np.asarray(images, np.float64).reshape(len(images), -1)
    return float(images.var(axis=0).mean())


def main():
    """Prints a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="tfds data_dir (default: tfds' own).")
    args = parser.parse_args()
    splits = {split: _digits(split, args.data_dir) for split in ("train", "test")}
    print(
        "| degradation | method | antialias | clip | Var per pixel, train (4500) | Var per pixel, test (500) |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| none (clean digits) | - | - | - | {per_pixel_variance(splits['train']):.4f} | "
        f"{per_pixel_variance(splits['test']):.4f} |"
    )
    rows = [(name, choice) for name, choice in degradations.PRESETS.items()]
    rows.append(("authors, clipped", dict(degradations.PRESETS["authors"], clip=True)))
    for name, choice in rows:
        sr = data.SuperResolution(**choice)
        cells = [f"{per_pixel_variance(sr(x).numpy()):.4f}" for x in splits.values()]
        print(
            f"| {name} | {choice['method']} | {choice['antialias']} | {choice['clip']} | "
            + " | ".join(cells)
            + " |"
        )
    test = splits["test"]
    raw = data.SuperResolution(preset="authors")(test).numpy()
    clipped_off = float(np.mean((raw.astype(np.float64) - np.clip(raw, 0, 1)) ** 2))
    tf_bicubic = tf.image.resize(tf.image.resize(test, (7, 7), "bicubic"), (28, 28), "bicubic").numpy()
    diff = tf_bicubic.astype(np.float64) - raw
    print()
    print(f"authors preset, test digits: mean squared part removed by the clip to [0, 1]: {clipped_off:.2e}")
    print(
        "tf.image.resize bicubic without antialiasing vs the torch emulation (both unclipped), test digits: "
        f"RMS {np.sqrt(np.mean(diff**2)):.4f}, max |diff| {np.abs(diff).max():.3f}"
    )


if __name__ == "__main__":
    main()
