"""Losses shared by the objectives: distortions, MMD, Wasserstein critic terms and the gradient penalty.

Scale conventions (DESIGN.md "Scales"). DPLC's constants (gamma, lambda_MMD, the lambda(R) bases of
Table 3 and App. B) only mean something in the loss scale they were tuned in. Two conventions exist, each a
(distortion, gradient penalty) pair of gin-selectable functions defined here and collected in
`CONVENTIONS`:

- "paper_text": what the paper's text and Algorithm 1 write, to the letter: `euclidean_distance`
  (1/b sum_i ||x_i - x^_i||_2 over all pixels and channels of [0, 1] images, line 15) and
  `gradient_penalty` (per-sample norm over all pixels and channels, Gulrajani et al., line 12).
- "authors_code": what the authors' published code (mitscha/dplc, train.py) computes, where the
  constants were tuned: `batch_rmse_pm1` (square root of the batch-mean squared error over all pixels of
  images mapped to [-1, 1]) and `per_pixel_gradient_penalty` (gradient w.r.t. the [-1, 1] image, norm
  over channels at each pixel, (norm - 1)^2 averaged over batch and pixels).

Per image, the paper-text distortion's gradient is sqrt(D)/2 times the authors' (D = pixels x channels)
when all images have the same error, and the per-pixel penalty lets the critic's per-image input gradient
grow to ~2 sqrt(pixels) instead of ~1; `tools/diagnose.py` prints the resulting gradient ratios.
"""

import collections
from typing import Callable, Sequence

import gin
import tensorflow as tf
import tensorflow_gan as tfgan

__all__ = [
    "AUTHORS_CODE",
    "CONVENTIONS",
    "Convention",
    "IMQ_SCALES",
    "PAPER_TEXT",
    "batch_rmse_pm1",
    "critic_input_gradients",
    "critic_loss",
    "euclidean_distance",
    "generator_loss",
    "gradient_penalty",
    "imq_kernel",
    "mmd_imq",
    "per_example_squared_error",
    "per_pixel_gradient_penalty",
    "squared_error",
]

# Kernel scales of the WAE-MMD inverse multiquadratics kernel (Tolstikhin et al. 2018, App. C.2 / their
# code): k(x, y) = sum_s s*C / (s*C + ||x - y||^2) with C = 2 * m * sigma_z^2 and sigma_z^2 = 1 (P_Z is a
# standard normal).
IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)

# Keeps the gradient of the Euclidean norm finite at a perfect reconstruction (d/dx sqrt(x) at 0 is inf).
_NORM_EPSILON = 1e-12


def per_example_squared_error(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Mean squared error of each example over all its pixels and channels.

    Args:
      x: a batch of images, shape (B, ...).
      y: a batch of the same shape.

    Returns:
      A (B,) float tensor.
    """
    x, y = tf.convert_to_tensor(x), tf.cast(y, tf.convert_to_tensor(x).dtype)
    return tf.reduce_mean(tf.reshape(tf.math.squared_difference(x, y), [tf.shape(x)[0], -1]), axis=1)


@gin.configurable(module="tfdplc.losses")
def euclidean_distance(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Batch mean of the Euclidean distance ||x_i - y_i||_2 over all pixels and channels (paper text).

    Convention "paper_text" (module docstring): images in [0, 1], one norm per image. This is the distortion
    d of DPLC (Tschannen et al. 2018, Section 5: "The Euclidean distance is used as
    distortion measure"; Algorithm 1 line 15: L_d = 1/b sum_i ||x_i - G(z_i)||). A tiny epsilon inside the
    square root keeps the gradient finite when x_i == y_i.

    Args:
      x: a batch of images, shape (B, ...).
      y: a batch of the same shape.

    Returns:
      A scalar tensor.
    """
    x = tf.convert_to_tensor(x)
    diff = tf.reshape(x - tf.cast(y, x.dtype), [tf.shape(x)[0], -1])
    return tf.reduce_mean(tf.sqrt(tf.reduce_sum(tf.square(diff), axis=1) + _NORM_EPSILON))


@gin.configurable(module="tfdplc.losses")
def batch_rmse_pm1(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Root of the batch-mean squared error over all pixels of images mapped to [-1, 1] (authors' code).

    Convention "authors_code" (module docstring): the distortion of the DPLC authors' code,
    `torch.sqrt(nn.MSELoss()(G(E(x)), x))` on images normalised to [-1, 1], where Tables 2-3 / App. B's
    constants were tuned. With [0, 1] inputs it equals 2 * sqrt(mean((x - y)^2)). One root for the whole
    batch: an image's gradient is weighted by its own error relative to the batch's (2 (y_i - x_i) /
    sqrt(b D sum_j ||x_j - y_j||^2) w.r.t. y_i on [0, 1]). A tiny epsilon keeps the gradient finite at
    x == y.

    Args:
      x: a batch of images in [0, 1], shape (B, ...).
      y: a batch of the same shape.

    Returns:
      A scalar tensor.
    """
    x = tf.convert_to_tensor(x)
    # (2x - 1) - (2y - 1) = 2 (x - y): the [0, 1] -> [-1, 1] map doubles every difference.
    return tf.sqrt(tf.reduce_mean(tf.square(2.0 * (x - tf.cast(y, x.dtype)))) + _NORM_EPSILON)


@gin.configurable(module="tfdplc.losses")
def squared_error(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Mean squared error over the batch, pixels and channels (the MSE of Yan et al. and Liu et al.).

    Args:
      x: a batch of images.
      y: a batch of the same shape.

    Returns:
      A scalar tensor.
    """
    return tf.reduce_mean(per_example_squared_error(x, y))


def imq_kernel(x: tf.Tensor, y: tf.Tensor, scales: Sequence[float] = IMQ_SCALES) -> tf.Tensor:
    """Inverse multiquadratics kernel matrix summed over scales, for latent codes of dimension m.

    k(x, y) = sum_s C_s / (C_s + ||x - y||^2), C_s = s * 2 * m (WAE's choice for a unit-variance prior).

    Args:
      x: (N, m) codes.
      y: (M, m) codes.
      scales: the multipliers s of the base scale 2 * m.

    Returns:
      The (N, M) kernel matrix.
    """
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    squared = (
        tf.reduce_sum(x * x, axis=1)[:, None]
        + tf.reduce_sum(y * y, axis=1)[None, :]
        - 2.0 * tf.matmul(x, y, transpose_b=True)
    )
    squared = tf.maximum(squared, 0.0)  # rounding can make it slightly negative
    base = 2.0 * tf.cast(tf.shape(x)[1], x.dtype)
    return tf.add_n([s * base / (s * base + squared) for s in scales])


@gin.configurable(module="tfdplc.losses")
def mmd_imq(z_prior: tf.Tensor, z_encoded: tf.Tensor, scales: Sequence[float] = IMQ_SCALES) -> tf.Tensor:
    """Unbiased (U-statistic) MMD^2 estimate with the IMQ kernel, DPLC Algorithm 1 line 16.

    L_MMD = 1/(b(b-1)) sum_{l != j} k(z_l, z_j) + 1/(b(b-1)) sum_{l != j} k(zbar_l, zbar_j)
            - 2/b^2 sum_{l, j} k(z_l, zbar_j).

    Args:
      z_prior: (b, m) samples of P_Z.
      z_encoded: (b, m) encoded samples (F(X) in WAE / Wasserstein++, B(E(X)) in DPLC stage 2).
      scales: kernel scales, see `imq_kernel`.

    Returns:
      A scalar (can be slightly negative, as the U-statistic is unbiased).

    Raises:
      ValueError: if the two batches differ in size or have fewer than 2 samples (static shapes).
    """
    z_prior, z_encoded = tf.convert_to_tensor(z_prior), tf.convert_to_tensor(z_encoded)
    b_static = z_prior.shape[0]
    if b_static is not None and z_encoded.shape[0] is not None:
        if b_static != z_encoded.shape[0] or b_static < 2:
            raise ValueError(
                f"mmd_imq needs two batches of equal size >= 2, got {b_static} and {z_encoded.shape[0]}."
            )
    b = tf.cast(tf.shape(z_prior)[0], z_prior.dtype)

    def off_diagonal_mean(k):
        return (tf.reduce_sum(k) - tf.linalg.trace(k)) / (b * (b - 1.0))

    return (
        off_diagonal_mean(imq_kernel(z_prior, z_prior, scales))
        + off_diagonal_mean(imq_kernel(z_encoded, z_encoded, scales))
        - 2.0 * tf.reduce_mean(imq_kernel(z_prior, z_encoded, scales))
    )


def critic_loss(real_scores: tf.Tensor, fake_scores: tf.Tensor) -> tf.Tensor:
    """WGAN critic loss E[f(fake)] - E[f(real)] (the negated dual objective of eq. 5), via tfgan."""
    return tfgan.losses.wargs.wasserstein_discriminator_loss(real_scores, fake_scores)


def generator_loss(fake_scores: tf.Tensor) -> tf.Tensor:
    """WGAN generator loss -E[f(fake)] (Algorithm 1 line 17), via tfgan."""
    return tfgan.losses.wargs.wasserstein_generator_loss(fake_scores)


def _interpolates(real: tf.Tensor, fake: tf.Tensor, seed=None) -> tf.Tensor:
    """x~_i = nu_i x_i + (1 - nu_i) x^_i with one nu_i ~ U(0, 1) per sample (Algorithm 1 lines 8, 11)."""
    shape = tf.concat([tf.shape(real)[:1], tf.ones([tf.rank(real) - 1], tf.int32)], axis=0)
    if seed is None:
        nu = tf.random.uniform(shape, dtype=real.dtype)
    else:
        nu = tf.random.stateless_uniform(shape, seed=seed, dtype=real.dtype)
    return nu * real + (1.0 - nu) * fake


def critic_input_gradients(critic: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor) -> tf.Tensor:
    """grad_x f(x) for every image of a batch (the critic's scores summed: each depends on its own image).

    Written with a GradientTape because `tfgan.losses.wasserstein_gradient_penalty` is graph-only
    (`tf.gradients`) on this stack.

    Args:
      critic: f, images -> (b,) or (b, 1) scores.
      images: (b, H, W, C) images in [0, 1].

    Returns:
      The (b, H, W, C) gradient w.r.t. the [0, 1] images.
    """
    with tf.GradientTape() as tape:
        tape.watch(images)
        scores = critic(images)
    return tape.gradient(scores, images)


@gin.configurable(module="tfdplc.losses")
def gradient_penalty(
    critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, fake: tf.Tensor, seed=None
) -> tf.Tensor:
    """Per-sample gradient penalty of Gulrajani et al. (2017), DPLC Algorithm 1 lines 8, 11 and 12.

    Convention "paper_text" (module docstring). x~_i = nu_i x_i + (1 - nu_i) x^_i with nu_i ~ Uniform(0, 1)
    per sample; the penalty is 1/b sum_i (||grad f(x~_i)||_2 - 1)^2 where the norm runs over ALL pixels and
    channels of sample i, w.r.t. the [0, 1] images the critic sees (`per_pixel_gradient_penalty` is the
    authors'-code variant).

    Args:
      critic: f, images -> (b,) or (b, 1) scores.
      real: (b, ...) real images.
      fake: (b, ...) generated images of the same shape.
      seed: optional stateless seed (shape [2]) for nu; None draws from the global generator.

    Returns:
      The scalar penalty (not yet multiplied by lambda_GP).
    """
    real = tf.convert_to_tensor(real)
    grads = critic_input_gradients(critic, _interpolates(real, tf.cast(fake, real.dtype), seed))
    norms = tf.sqrt(tf.reduce_sum(tf.reshape(tf.square(grads), [tf.shape(grads)[0], -1]), axis=1) + 1e-12)
    return tf.reduce_mean(tf.square(norms - 1.0))


@gin.configurable(module="tfdplc.losses")
def per_pixel_gradient_penalty(
    critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, fake: tf.Tensor, seed=None
) -> tf.Tensor:
    """The gradient penalty of the DPLC authors' code: norm over channels at each pixel, on [-1, 1] images.

    Convention "authors_code" (module docstring). Same interpolates as `gradient_penalty`, but the
    authors' `compute_gradient_penalty` takes `gradients.norm(2, dim=1)` of an (N, C, H, W) gradient, i.e.
    one norm per pixel over the channels, and averages (norm - 1)^2 over the batch AND the pixels; their
    critic sees images in [-1, 1], so the gradient is taken w.r.t. those: grad_{[-1,1]} f = grad_{[0,1]} f
    / 2. This lets a critic's per-image input gradient settle near 2 sqrt(H W) (w.r.t. [0, 1] images),
    not 1. It is the convention Table 2's lambda_GP and gamma and App. B's lambda_GC were tuned in; it
    deviates from Algorithm 1 line 12's per-sample norm.

    Args:
      critic: f, images in [0, 1] -> (b,) or (b, 1) scores.
      real: (b, H, W, C) real images.
      fake: (b, H, W, C) generated images.
      seed: optional stateless seed (shape [2]) for nu; None draws from the global generator.

    Returns:
      The scalar penalty (not yet multiplied by lambda_GP).
    """
    real = tf.convert_to_tensor(real)
    grads = critic_input_gradients(critic, _interpolates(real, tf.cast(fake, real.dtype), seed)) / 2.0
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=-1) + 1e-12)  # (b, H, W): one per pixel
    return tf.reduce_mean(tf.square(norms - 1.0))


#: A scale convention: the distortion and the gradient-penalty function tuned together.
Convention = collections.namedtuple("Convention", ["distortion", "gradient_penalty"])

PAPER_TEXT = "paper_text"
AUTHORS_CODE = "authors_code"

#: name -> Convention (module docstring).
CONVENTIONS = {
    PAPER_TEXT: Convention(euclidean_distance, gradient_penalty),
    AUTHORS_CODE: Convention(batch_rmse_pm1, per_pixel_gradient_penalty),
}
