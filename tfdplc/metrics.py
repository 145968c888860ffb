"""Evaluation metrics on [0, 1] images: MSE, PSNR and rates."""

from typing import Dict

import numpy as np
import tensorflow as tf

from tfdplc.losses import per_example_squared_error

__all__ = ["psnr", "bits_per_pixel", "reconstruction_metrics"]


def psnr(mse: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of per-image MSEs on [0, peak] pixels."""
    mse = np.maximum(np.asarray(mse, dtype=np.float64), 1e-12)  # a perfect image gives 120 dB, not inf
    return 10.0 * np.log10(peak**2 / mse)


def bits_per_pixel(bits_per_image: float, image_shape) -> float:
    """Bits per pixel: bits per image over the number of pixels H * W (channels not counted).

    Args:
      bits_per_image: the rate of one image.
      image_shape: (H, W) or (H, W, C).

    Returns:
      The rate in bpp.
    """
    height, width = image_shape[:2]
    return float(bits_per_image) / float(height * width)


def reconstruction_metrics(model: tf.keras.Model, dataset: tf.data.Dataset) -> Dict[str, float]:
    """Test MSE and PSNR of `model.reconstruct` over a finite dataset of image batches.

    Args:
      model: an objective with `reconstruct(images)`.
      dataset: finite dataset of float32 image batches in [0, 1].

    Returns:
      {"mse": mean per-image MSE, "psnr": mean per-image PSNR (dB), "psnr_of_mean_mse": PSNR of the mean
      MSE (the figure papers usually quote), "num_images": count}.

    Raises:
      ValueError: if the dataset is empty.
    """
    per_image = []
    for images in dataset:
        per_image.append(per_example_squared_error(images, model.reconstruct(images)).numpy())
    if not per_image:
        raise ValueError("The evaluation dataset is empty.")
    mse = np.concatenate(per_image)
    return {
        "mse": float(mse.mean()),
        "psnr": float(psnr(mse).mean()),
        "psnr_of_mean_mse": float(psnr(mse.mean())),
        "num_images": int(mse.size),
    }
