"""Evaluation metrics on [0, 1] images: MSE, PSNR, rates, conditional pixel variance, Fréchet / kernel distance.

* `reconstruction_metrics`: test MSE and PSNR.
* `conditional_pixel_variance`: DPLC's PV (Tschannen et al. 2018, Section 5), how much a stochastic decoder
  varies for a fixed code; `noise_decode_fn` / `objective_pixel_variance` adapt an objective to it.
* `distribution_distances`: Fréchet distance (FID-style) and kernel distance (KID-style) between two image
  sets on the features of a pluggable network (`tfdplc.features`), through tfgan's `*_from_activations`.
  DPLC's sample distance (G(z) vs test images) and reconstruction distance (G(B(E(x))) vs test images) are
  both this function.
* Shift compression (Liu et al. 2022), on datasets of (degraded, clean) pairs with seeded randomness:
  `paired_reconstruction_metrics` (`mse` against the degraded input X, `mse_gt` against ground truth,
  Appendix B.6), `codec_metrics` (real bitstreams: lengths and the round trip), `decomposition_metrics`
  (the terms of eq. 18, Tables 1 and 11).
"""

from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf
import tensorflow_gan as tfgan

from tfdplc.losses import per_example_squared_error

__all__ = [
    "batch_seed",
    "bits_per_pixel",
    "code_ignoring_mse",
    "codec_metrics",
    "conditional_pixel_variance",
    "decomposition_metrics",
    "distribution_distances",
    "error_metrics",
    "estimated_rate_metrics",
    "extract_features",
    "informative_for_theorem2",
    "noise_decode_fn",
    "objective_pixel_variance",
    "paired_reconstruction_metrics",
    "paired_reconstructions",
    "psnr",
    "realism_curve",
    "reconstruct_dataset",
    "reconstruction_metrics",
]


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


def error_metrics(images: np.ndarray, reconstructions: np.ndarray) -> Dict[str, float]:
    """Test MSE and PSNR of given reconstructions of `images` (both [0, 1] floats of one shape).

    Args:
      images: (N, H, W, C) originals.
      reconstructions: (N, H, W, C) reconstructions of them.

    Returns:
      {"mse": mean per-image MSE, "psnr": mean per-image PSNR (dB), "psnr_of_mean_mse": PSNR of the mean
      MSE (the figure papers usually quote), "num_images": count}.

    Raises:
      ValueError: if there are no images or the shapes differ.
    """
    images, reconstructions = np.asarray(images), np.asarray(reconstructions)
    if images.shape != reconstructions.shape:
        raise ValueError(
            f"images {images.shape} and reconstructions {reconstructions.shape} differ in shape."
        )
    if not len(images):
        raise ValueError("The evaluation dataset is empty.")
    mse = per_example_squared_error(images, reconstructions).numpy()
    return {
        "mse": float(mse.mean()),
        "psnr": float(psnr(mse).mean()),
        "psnr_of_mean_mse": float(psnr(mse.mean())),
        "num_images": int(mse.size),
    }


def code_ignoring_mse(images: np.ndarray) -> float:
    """MSE of a realistic decoder that ignores the code: E||X - X'||^2 per pixel, X, X' independent.

    A decoder that outputs an independent draw X' from the data distribution (perfect realism, no
    information about X) has per-pixel MSE 2 Var(X) (summed over pixels, averaged here). It is the floor
    against which Yan et al.'s MSE(G2) = 2 MSE(G1) (Theorem 2) must be read: where 2 MSE(G1) is near it,
    any realistic decoder "confirms" the ratio. Computed as the mean over all ordered pairs i != j of the
    test images of mean((x_i - x_j)^2), which equals 2 x the per-pixel sample variance (ddof = 1),
    averaged over pixels and channels.

    Args:
      images: (N, H, W, C) array, N >= 2.

    Returns:
      The per-pixel MSE of a code-ignoring realistic decoder on these images.

    Raises:
      ValueError: with fewer than 2 images.
    """
    images = np.asarray(images, np.float64)
    if images.ndim < 2 or images.shape[0] < 2:
        raise ValueError(f"code_ignoring_mse needs at least 2 images, got shape {images.shape}.")
    return float(2.0 * np.mean(np.var(images.reshape(images.shape[0], -1), axis=0, ddof=1)))


def informative_for_theorem2(mse_g1: float, floor: float, margin: float = 0.8) -> bool:
    """Whether MSE(G2) = 2 MSE(G1) can fail at this rate: 2 MSE(G1) < margin x the code-ignoring floor.

    Args:
      mse_g1: test MSE of the MSE-optimal decoder G1.
      floor: `code_ignoring_mse` of the test images.
      margin: how far below the floor 2 MSE(G1) must be (issue 13: 0.8).

    Returns:
      True where a code-ignoring realistic decoder would NOT also satisfy the ratio.
    """
    return 2.0 * mse_g1 < margin * floor


def reconstruct_dataset(model: tf.keras.Model, dataset: tf.data.Dataset) -> Tuple[np.ndarray, np.ndarray]:
    """Runs `model.reconstruct` once over a finite dataset of image batches.

    A stochastic decoder draws its noise once per image here, so every metric computed from the returned
    reconstructions (MSE, distribution distances) sees the same draws.

    Args:
      model: an objective with `reconstruct(images)`.
      dataset: finite dataset of float32 image batches in [0, 1].

    Returns:
      (images, reconstructions) as (N, H, W, C) arrays.

    Raises:
      ValueError: if the dataset is empty.
    """
    images, reconstructions = [], []
    for batch in dataset:
        images.append(batch.numpy())
        reconstructions.append(model.reconstruct(batch).numpy())
    if not images:
        raise ValueError("The evaluation dataset is empty.")
    return np.concatenate(images), np.concatenate(reconstructions)


def reconstruction_metrics(model: tf.keras.Model, dataset: tf.data.Dataset) -> Dict[str, float]:
    """`error_metrics` of `model.reconstruct` over a finite dataset of image batches (one pass).

    Args:
      model: an objective with `reconstruct(images)`.
      dataset: finite dataset of float32 image batches in [0, 1].

    Returns:
      See `error_metrics`.

    Raises:
      ValueError: if the dataset is empty.
    """
    return error_metrics(*reconstruct_dataset(model, dataset))


# ----------------------------------------------------------------------------------------------------------
# Conditional pixel variance (DPLC Section 5).

PV_NUM_CODES = 256  # DPLC Section 5: "PV which is computed on a subset 256 testing samples ...
PV_NUM_DECODES = 100  # ... averaged over 100 reconstructions per testing sample (i.e., code w)".


def conditional_pixel_variance(
    decode_fn: Callable[[tf.Tensor, int], tf.Tensor],
    codes,
    num_decodes: int = PV_NUM_DECODES,
    seed: int = 0,
    batch_size: int = 256,
) -> float:
    """Mean conditional pixel variance PV[X^|w] of a stochastic decoder (DPLC Section 5).

    PV[X^|w] = 1/N sum_{i,j} E_B[(X^_ij - E_B[X^_ij | w])^2 | w], N the number of pixels, averaged over the
    given codes w. For every code, `num_decodes` images are decoded with independent randomness; the
    variance of each pixel over these decodes is estimated, averaged over the pixels, then over the codes.

    Estimator and conventions (choices the paper leaves open):
      * the variance over the K = `num_decodes` draws is the UNBIASED sample variance (divides by K - 1),
        so a decoder adding i.i.d. noise of variance s^2 gives PV ~= s^2 in expectation, for any K;
      * pixels are on the [0, 1] scale of the images (as the project's MSE), so PV is in the same units as
        MSE; PV of a decoder whose pixels are i.i.d. Bernoulli(1/2) would be 0.25, the maximum;
      * channels: the per-entry variance is averaged over all H * W * C entries, i.e. over the channels of
        each pixel too (for RGB this is the mean of the three channel variances, 1/(N C) sum_{i,j,c}).
      * a deterministic decoder gives exactly 0 (deviations are taken from the first decode, so equal
        decodes cancel exactly in floating point). Accumulation is in float64.

    Args:
      decode_fn: `decode_fn(codes_batch, seed)` -> (B, H, W, C) images for one stochastic draw; `seed` is a
        Python int, different for every call; equal seeds must give equal draws if reproducibility matters.
        See `noise_decode_fn` to build one from an objective's `decode(code, noise=...)`.
      codes: (num_codes, ...) array or tensor of codes w (e.g. E(x) for 256 test images: `PV_NUM_CODES`).
      num_decodes: decodes per code (the paper's 100), >= 2.
      seed: seed of the per-call seeds passed to `decode_fn`.
      batch_size: codes decoded together in one `decode_fn` call.

    Returns:
      PV as a Python float.

    Raises:
      ValueError: if `num_decodes` < 2, `batch_size` < 1, there are no codes, or `decode_fn` returns a
        batch of the wrong size.
    """
    if num_decodes < 2:
        raise ValueError(f"num_decodes must be at least 2 to estimate a variance, got {num_decodes}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    codes = tf.convert_to_tensor(codes)
    num_codes = int(codes.shape[0]) if codes.shape.rank else 0
    if num_codes == 0:
        raise ValueError("conditional_pixel_variance needs at least one code.")
    starts = range(0, num_codes, batch_size)
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=(len(starts), num_decodes))
    per_code = []
    for b, start in enumerate(starts):
        batch = codes[start : start + batch_size]
        size = int(batch.shape[0])
        first = shifted_sum = shifted_sq = None
        for d in range(num_decodes):
            images = np.asarray(decode_fn(batch, int(seeds[b, d])), dtype=np.float64)
            if images.shape[0] != size:
                raise ValueError(f"decode_fn returned {images.shape[0]} images for {size} codes.")
            images = images.reshape(size, -1)
            if first is None:
                first = images
                shifted_sum = np.zeros_like(images)
                shifted_sq = np.zeros_like(images)
                continue
            shifted = images - first  # Shifted data: exact zeros for a deterministic decoder.
            shifted_sum += shifted
            shifted_sq += shifted**2
        # Sum over the K draws of (x - x0) is shifted_sum (the first draw contributes 0).
        variance = (shifted_sq - shifted_sum**2 / num_decodes) / (num_decodes - 1)
        per_code.append(np.maximum(variance, 0.0).mean(axis=1))
    return float(np.concatenate(per_code).mean())


def noise_decode_fn(
    decode: Callable[..., tf.Tensor],
    noise_dim: Optional[int],
    distribution: str = "uniform",
) -> Callable[[tf.Tensor, int], tf.Tensor]:
    """Adapts a decoder `decode(code, noise=...)` to the `decode_fn(codes, seed)` of PV.

    Assumed interface (the project's objectives): `decode(code, noise=None)` maps a batch of codes to
    images in [0, 1]; `noise` is a (B, noise_dim) tensor, for DPLC's B i.i.d. Uniform[0, 1) entries
    (`tfdplc.layers.NoiseInput`, Appendix B "+n"); with `noise=None` the decoder draws its own. The adapter
    draws the noise itself with `tf.random.stateless_uniform` / `stateless_normal` from the seed it gets,
    so every PV draw is reproducible and independent of the decoder's generator state.

    Args:
      decode: the decoder, e.g. `objective.decode`.
      noise_dim: noise entries per example (DPLC's m); None calls `decode(codes)` without noise, for
        deterministic decoders (CAE) or decoders that only draw internally (the seed is then unused).
      distribution: "uniform" (Uniform[0, 1), DPLC) or "normal" (standard Gaussian, Yan et al. 2021's G2).

    Returns:
      `decode_fn(codes, seed)` -> images.

    Raises:
      ValueError: on an unknown distribution.
    """
    if distribution not in ("uniform", "normal"):
        raise ValueError(f"distribution must be 'uniform' or 'normal', got {distribution!r}.")

    def decode_fn(codes, seed):
        if noise_dim is None:
            return decode(codes)
        shape = tf.stack([tf.shape(codes)[0], noise_dim])
        pair = tf.constant([seed, 0], tf.int64)
        if distribution == "uniform":
            noise = tf.random.stateless_uniform(shape, pair, minval=0.0, maxval=1.0)
        else:
            noise = tf.random.stateless_normal(shape, pair)
        return decode(codes, noise=noise)

    return decode_fn


def _encode_in_batches(model, images, batch_size: int) -> tf.Tensor:
    """`model.encode` of float32 `images`, `batch_size` at a time, concatenated."""
    images = tf.convert_to_tensor(images, tf.float32)
    return tf.concat(
        [model.encode(images[i : i + batch_size]) for i in range(0, int(images.shape[0]), batch_size)], 0
    )


def objective_pixel_variance(
    model,
    images,
    noise_dim: Optional[int],
    num_decodes: int = PV_NUM_DECODES,
    seed: int = 0,
    batch_size: int = 256,
    distribution: str = "uniform",
) -> float:
    """PV of an objective with `encode(images)` and `decode(code, noise=...)` on the given test images.

    The codes are w = model.encode(images) (pass `PV_NUM_CODES` = 256 test images for the paper's
    protocol); each is decoded `num_decodes` times with fresh noise (`noise_decode_fn`).

    Args:
      model: the objective.
      images: (num_codes, H, W, C) test images in [0, 1].
      noise_dim: see `noise_decode_fn` (DPLC: m).
      num_decodes: decodes per code.
      seed: seed of the noise.
      batch_size: images encoded / codes decoded together.
      distribution: see `noise_decode_fn`.

    Returns:
      PV as a Python float.
    """
    codes = _encode_in_batches(model, images, batch_size)
    return conditional_pixel_variance(
        noise_decode_fn(model.decode, noise_dim, distribution), codes, num_decodes, seed, batch_size
    )


def realism_curve(
    model,
    images: np.ndarray,
    realisms: Sequence[float],
    feature_extractor: Optional[Callable] = None,
    pv_images: Optional[np.ndarray] = None,
    pv_decodes: int = PV_NUM_DECODES,
    batch_size: int = 100,
) -> List[Dict[str, float]]:
    """Metrics of a decode-time realism slider, (1 - a) G1(c) + a G2(c, n), at each weight a.

    Every weight decodes the same codes with the same G2 noise: image i's noise is `model.codec_noise(i)`
    (i its index in `images`), as a file with seed i would be decoded. The points of the curve therefore
    differ only by the weight. At the optimum of Yan et al. Theorem 2 (G2 a posterior sample),
    MSE(a) = (1 + a^2) MSE(G1) and PV(a) = a^2 PV(G2).

    Args:
      model: an objective with `encode`, `codec_noise(seeds)` and `decode_realism(code, realism, noise)`
        (`tfdplc.objectives.PerceptualG2` with its stage-1 decoder).
      images: (N, H, W, C) test images in [0, 1].
      realisms: the weights, each in [0, 1].
      feature_extractor: features for `distribution_distances` (None: no fd / kd).
      pv_images: test images whose codes give the PV (None: no pv).
      pv_decodes: decodes per code for the PV (fresh G2 noise each).
      batch_size: images encoded / decoded together.

    Returns:
      One dict per weight: `realism`, `error_metrics` (mse, psnr, ...), fd / kd with a feature
      extractor, pv with `pv_images`.

    Raises:
      ValueError: if a weight is not a number in [0, 1] (`decode_realism`).
    """
    images = np.asarray(images, np.float32)
    codes, noises = [], []
    for start in range(0, len(images), batch_size):
        batch = tf.constant(images[start : start + batch_size])
        codes.append(model.encode(batch))
        noises.append(model.codec_noise(tf.range(start, start + len(batch), dtype=tf.int64)))
    if pv_images is not None:  # encoded once, decoded at every weight (as objective_pixel_variance does)
        pv_codes = _encode_in_batches(model, pv_images, 256)
    records = []
    for realism in realisms:
        outputs = np.concatenate(
            [model.decode_realism(code, realism, noise=noise).numpy() for code, noise in zip(codes, noises)]
        )
        record = {"realism": float(realism), **error_metrics(images, outputs)}
        if feature_extractor is not None:
            record.update(distribution_distances(images, outputs, feature_extractor, batch_size))
        if pv_images is not None:
            decode = noise_decode_fn(lambda code, weight=realism: model.decode_realism(code, weight), None)
            record["pv"] = conditional_pixel_variance(decode, pv_codes, pv_decodes)
        records.append(record)
    return records


# ----------------------------------------------------------------------------------------------------------
# Distribution distances on pluggable features.

Images = Union[np.ndarray, tf.Tensor, tf.data.Dataset, Iterable]


def extract_features(images: Images, feature_extractor: Callable, batch_size: int = 100) -> np.ndarray:
    """Features of an image set, computed in batches.

    Args:
      images: (N, H, W, C) array / tensor in [0, 1], or an iterable (e.g. a finite `tf.data.Dataset`) of
        such batches.
      feature_extractor: callable (B, H, W, C) -> (B, d), e.g. from `tfdplc.features`.
      batch_size: images per call when `images` is an array or tensor.

    Returns:
      (N, d) float64 features.

    Raises:
      ValueError: if there are no images.
    """
    if isinstance(images, (np.ndarray, tf.Tensor)):
        n = int(images.shape[0])
        batches = (images[i : i + batch_size] for i in range(0, n, batch_size))
    else:
        batches = images
    out = [np.asarray(feature_extractor(batch), dtype=np.float64) for batch in batches]
    out = [f for f in out if f.shape[0]]
    if not out:
        raise ValueError("No images to extract features from.")
    return np.concatenate(out)


def distribution_distances(
    real_images: Images,
    fake_images: Images,
    feature_extractor: Callable,
    batch_size: int = 100,
) -> Dict[str, Union[float, str]]:
    """Fréchet distance and kernel distance between two image sets on `feature_extractor`'s features.

    FD (Heusel et al. 2017; FID with Inception features, the measure of DPLC Section 5): ||mu_r - mu_f||^2
    + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) of Gaussians fitted to the two feature sets
    (`tfgan.eval.frechet_classifier_distance_from_activations`). KD (Bińkowski et al. 2018, KID): the
    unbiased estimate of the squared MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3
    (`tfgan.eval.kernel_classifier_distance_from_activations`, blocks of at most 1024 samples); being
    unbiased, it can be slightly negative for two samples of one distribution. Both computed in float64.

    DPLC's sample distance compares G(z) to test images, its reconstruction distance G(B(E(x))) to test
    images; both are this function. The sets may differ in size; FD needs more images than feature
    dimensions for a well-conditioned covariance (d = 64 for the digit classifier, 2048 for Inception).

    Args:
      real_images: (N, H, W, C) images in [0, 1] (array, tensor, or iterable of batches).
      fake_images: the same for the other set.
      feature_extractor: callable images -> (B, d) features with a `name` attribute, e.g.
        `tfdplc.features.DigitClassifierFeatures()` or `InceptionFeatures(path)`.
      batch_size: images per feature-extractor call for arrays / tensors.

    Returns:
      {"fd": float, "kd": float, "fd_features": the extractor's name, "fd_num_real": N_real,
      "fd_num_fake": N_fake}.

    Raises:
      ValueError: if either set has fewer than 2 images.
    """
    real = extract_features(real_images, feature_extractor, batch_size)
    fake = extract_features(fake_images, feature_extractor, batch_size)
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"Need at least 2 images per set, got {len(real)} and {len(fake)}.")
    real_t, fake_t = tf.constant(real, tf.float64), tf.constant(fake, tf.float64)
    fd = tfgan.eval.frechet_classifier_distance_from_activations(real_t, fake_t)
    kd = tfgan.eval.kernel_classifier_distance_from_activations(real_t, fake_t, dtype=tf.float64)
    name = getattr(feature_extractor, "name", None) or type(feature_extractor).__name__
    return {
        "fd": float(fd),
        "kd": float(kd),
        "fd_features": str(name),
        "fd_num_real": int(len(real)),
        "fd_num_fake": int(len(fake)),
    }


# ----------------------------------------------------------------------------------------------------------
# Shift compression (Liu et al. 2022): paired (degraded, clean) data, seeded stochastic decoders.


def batch_seed(seed: int, index: int) -> tf.Tensor:
    """The stateless seed `[seed, index]` (int64, shape [2]) of evaluation batch `index`.

    Every paired metric below draws the randomness of batch i (the dithers, shared or not) from this
    seed, so an evaluation is reproducible and two metrics computed with one seed see the same draws.
    """
    return tf.constant([int(seed), int(index)], tf.int64)


def _pairs(batch, what: str):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(
            f"{what} needs a dataset of (degraded, clean) pairs (input_pipeline with a degradation), got "
            f"{type(batch).__name__}."
        )
    return batch


def paired_reconstructions(model, dataset: tf.data.Dataset, seed: int = 0):
    """Yields (degraded, clean, model.reconstruct(degraded, seed=batch_seed(seed, i))) per batch i.

    Args:
      model: an objective with `reconstruct(degraded, seed=...)` (e.g. `ShiftCompression`).
      dataset: finite dataset of (degraded, clean) batches.
      seed: evaluation seed.

    Yields:
      Three tensors per batch.

    Raises:
      ValueError: if the dataset does not hold pairs.
    """
    for index, batch in enumerate(dataset):
        degraded, clean = _pairs(batch, "paired_reconstructions")
        yield degraded, clean, model.reconstruct(degraded, seed=batch_seed(seed, index))


def paired_reconstruction_metrics(model, dataset: tf.data.Dataset, seed: int = 0) -> Dict[str, float]:
    """MSE / PSNR of the outputs against the degraded inputs X and against the ground truth (Liu et al.).

    Liu et al. report E||X - Y^||^2 against the DEGRADED input (Fig. 5, Tables 5-8: how much of the input's
    content the restored output keeps) and, in Appendix B.6 (Tables 9, 10), against the clean ground truth.

    Args:
      model: an objective with `reconstruct(degraded, seed=...)`.
      dataset: finite dataset of (degraded, clean) batches in [0, 1].
      seed: evaluation seed (`batch_seed(seed, i)` for batch i).

    Returns:
      {"mse": mean per-image MSE against X, "psnr": mean per-image PSNR against X, "psnr_of_mean_mse",
      "mse_gt": mean per-image MSE against the ground truth, "psnr_gt", "num_images", "eval_seed"}.

    Raises:
      ValueError: if the dataset is empty or does not hold pairs.
    """
    to_input, to_truth = [], []
    for degraded, clean, outputs in paired_reconstructions(model, dataset, seed):
        to_input.append(per_example_squared_error(degraded, outputs).numpy())
        to_truth.append(per_example_squared_error(clean, outputs).numpy())
    if not to_input:
        raise ValueError("The evaluation dataset is empty.")
    mse, mse_gt = np.concatenate(to_input), np.concatenate(to_truth)
    return {
        "mse": float(mse.mean()),
        "psnr": float(psnr(mse).mean()),
        "psnr_of_mean_mse": float(psnr(mse.mean())),
        "mse_gt": float(mse_gt.mean()),
        "psnr_gt": float(psnr(mse_gt).mean()),
        "num_images": int(mse.size),
        "eval_seed": int(seed),
    }


def codec_metrics(model, dataset: tf.data.Dataset, seed: int = 0) -> Dict[str, float]:
    """Sends every test image through the codec: `model.decompress(model.compress(x, seed), seed)`.

    Checks the receiver's output against `model.reconstruct(x, seed)` (what the other metrics measure) and,
    for codecs that write strings (variable rate), measures their length.

    Args:
      model: an objective with `compress(degraded, seed=...)` returning codeword indices or strings,
        `decompress(code, seed=...)` and `reconstruct(degraded, seed=...)` (call the model's
        `prepare_for_coding()` first).
      dataset: finite dataset of (degraded, clean) batches.
      seed: evaluation seed (`batch_seed(seed, i)` for batch i).

    Returns:
      {"bitstream_max_abs_error": max |decompress(compress(x)) - reconstruct(x)| over all pixels}, plus for
      string codes "real_bits" (mean bits per image: 8 x string length), "real_bits_min", "real_bits_max".

    Raises:
      ValueError: if the dataset is empty or does not hold pairs.
    """
    max_error, lengths, batches = 0.0, [], 0
    for index, batch in enumerate(dataset):
        batches += 1
        degraded, _ = _pairs(batch, "codec_metrics")
        pair = batch_seed(seed, index)
        code = model.compress(degraded, seed=pair)
        received = model.decompress(code, seed=pair)
        error = tf.reduce_max(tf.abs(received - model.reconstruct(degraded, seed=pair)))
        max_error = max(max_error, float(error))
        if code.dtype == tf.string:
            lengths.append(8 * tf.strings.length(code).numpy())
    if not batches:
        raise ValueError("The evaluation dataset is empty.")
    result = {"bitstream_max_abs_error": max_error}
    if lengths:
        bits = np.concatenate(lengths).astype(np.float64)
        result.update(
            real_bits=float(bits.mean()), real_bits_min=float(bits.min()), real_bits_max=float(bits.max())
        )
    return result


def estimated_rate_metrics(model, dataset: tf.data.Dataset) -> Dict[str, float]:
    """The entropy model's estimate of the bits per image over a paired test set (variable-rate objectives).

    What training minimises (`rate_weight` * bits) in inference mode: the code quantized as the codec
    quantizes it, its bits -log2 p(code) under the learned prior, per image. Compared with the strings'
    lengths (`codec_metrics`' real_bits), it shows what the range coder adds (whole bytes, its own overhead).

    Args:
      model: an objective with `transform(sources, training=False)` returning (outputs, bits per example)
        and `source(degraded)` (`tfdplc.objectives.ShiftCompression` with an entropy bottleneck).
      dataset: finite dataset of (degraded, clean) batches.

    Returns:
      {"estimated_bits": mean, "estimated_bits_min", "estimated_bits_max"} over the test images.

    Raises:
      ValueError: if the dataset is empty, or the model estimates no bits (a fixed-rate code).
    """
    bits = []
    for batch in dataset:
        degraded, _ = _pairs(batch, "estimated_rate_metrics")
        _, estimate = model.transform(model.source(degraded), training=False)
        if estimate is None:
            raise ValueError(f"{type(model).__name__} estimates no bits: its code has a fixed rate.")
        bits.append(np.asarray(estimate, np.float64).reshape(-1))
    if not bits:
        raise ValueError("The evaluation dataset is empty.")
    bits = np.concatenate(bits)
    return {
        "estimated_bits": float(bits.mean()),
        "estimated_bits_min": float(bits.min()),
        "estimated_bits_max": float(bits.max()),
    }


def decomposition_metrics(model, dataset: tf.data.Dataset, seed: int = 0) -> Dict[str, float]:
    """Test means of the per-image terms of eq. 18 (Liu et al. Tables 1, 2, 11).

    Args:
      model: an objective with `decomposition_terms(degraded, seed=...)` returning a dict of (B,) tensors
        (`tfdplc.objectives.ShiftDecomposition`: term_a, term_b, term_c, decomposed_loss, end_to_end_loss).
      dataset: finite dataset of (degraded, clean) batches (only the degraded images are used).
      seed: evaluation seed (`batch_seed(seed, i)` for batch i).

    Returns:
      The mean of every term over the test images.

    Raises:
      ValueError: if the dataset is empty or does not hold pairs.
    """
    sums: Dict[str, List[np.ndarray]] = {}
    for index, batch in enumerate(dataset):
        degraded, _ = _pairs(batch, "decomposition_metrics")
        for key, value in model.decomposition_terms(degraded, seed=batch_seed(seed, index)).items():
            sums.setdefault(key, []).append(value.numpy())
    if not sums:
        raise ValueError("The evaluation dataset is empty.")
    return {key: float(np.concatenate(values).mean()) for key, values in sums.items()}
