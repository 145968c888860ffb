"""Image degradations for the shift-compression tasks of Liu et al. (2022), Appendix B.1.

* Super-resolution (MNIST): "bilinear downsampling on the original image from 28 x 28 to 7 x 7", i.e. x4;
  the degraded image is brought back to the original size so that encoder input and target share a shape.
* Denoising (SVHN): "additive Gaussian noise. The standard deviation is set to 20" (in 0-255 pixel units).

All functions take float images in [0, 1], either one image (H, W, C) or a batch (N, H, W, C), and return
float32 tensors of the same shape. `SuperResolution` and `GaussianNoise` are small gin-configurable callables
for `input_pipeline.degradation`, e.g. in a gin file::

    tfdplc.data.input_pipeline.degradation = @tfdplc.data.SuperResolution()
    tfdplc.data.SuperResolution.factor = 4
"""

import inspect
from typing import Optional, Sequence, Union

import gin
import tensorflow as tf

_METHODS = ("bilinear", "bicubic")

SeedLike = Union[int, Sequence[int], tf.Tensor]


def _as_batch(images) -> tuple:
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.float32:
        images = tf.cast(images, tf.float32)
    if images.shape.rank == 3:
        return images[tf.newaxis], True
    if images.shape.rank == 4:
        return images, False
    raise ValueError(f"Expected an image (H, W, C) or a batch (N, H, W, C), got shape {images.shape}.")


def downsample_upsample(images, factor: int = 4, method: str = "bilinear") -> tf.Tensor:
    """Downsamples by `factor`, then upsamples back to the input size (the super-resolution degradation).

    Down: `tf.image.resize(..., (H // factor, W // factor), method, antialias=True)`. With `antialias=True`
    TF scales the interpolation kernel with the downsampling factor, so each low-resolution pixel is a
    (bilinear- or bicubic-weighted) average over its whole 4x4 footprint, as PIL's / torchvision's
    `Resize` do; without it, a x4 bilinear resize just interpolates between two of the sixteen pixels and
    aliases thin MNIST strokes away. Up: the same `method` back to (H, W) (antialiasing has no effect when
    upsampling). Bicubic overshoots, so the output is clipped to [0, 1]. A constant image is left unchanged.

    Args:
      images: float image (H, W, C) or batch (N, H, W, C), values in [0, 1].
      factor: integer downsampling factor; the low-resolution size is `H // factor` x `W // factor`
        (28 -> 7 for MNIST with the default 4).
      method: "bilinear" or "bicubic".

    Returns:
      float32 tensor of the input's shape, values in [0, 1].
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor}.")
    x, single = _as_batch(images)
    if factor == 1:
        out = x
    else:
        static_hw = [d for d in x.shape[1:3] if d is not None]
        if static_hw and min(static_hw) < factor:
            raise ValueError(f"Image of size {x.shape[1:3]} is smaller than the factor {factor}.")
        shape = tf.shape(x)
        h, w = shape[1], shape[2]
        small = tf.image.resize(x, tf.stack([h // factor, w // factor]), method=method, antialias=True)
        out = tf.image.resize(small, tf.stack([h, w]), method=method)
        out = tf.ensure_shape(out, x.shape)
    out = tf.clip_by_value(out, 0.0, 1.0)
    return out[0] if single else out


def _seed_pair(seed: SeedLike) -> tf.Tensor:
    """Turns an int or a shape-[2] seed into the shape-[2] int64 seed that stateless ops take."""
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        raise TypeError(f"seed must be an integer or a pair of integers, got {seed.dtype}.")
    seed = tf.cast(seed, tf.int64)
    if seed.shape.rank == 0:
        return tf.stack([seed, tf.constant(0, tf.int64)])
    return tf.ensure_shape(seed, [2])


def add_gaussian_noise(images, sigma: float, seed: SeedLike, clip: bool = False) -> tf.Tensor:
    """Adds white Gaussian noise of standard deviation `sigma / 255` (the denoising degradation).

    `sigma` is in 0-255 pixel units, as Liu et al. state it ("standard deviation ... 20"); on [0, 1] pixels
    the noise std is `sigma / 255` (20 -> 0.0784). The noise comes from `tf.random.stateless_normal`, so the
    same `seed` (and shape) always gives the same noise, in eager mode, in `tf.function` and in `tf.data`.

    Clipping: off by default. The paper specifies additive Gaussian noise (AWGN, the usual synthetic
    denoising setup); clipping to [0, 1] would turn it into censored noise whose mean and variance depend on
    the clean pixel (near black or white pixels it would lose half its spread and gain a bias), so the
    degraded images would no longer have noise of std sigma. Pass `clip=True` to get valid images instead
    (e.g. to display or to encode them as PNG).

    Args:
      images: float image (H, W, C) or batch (N, H, W, C), values in [0, 1].
      sigma: noise standard deviation in 0-255 units.
      seed: int, or shape-[2] integer tensor (the form `stateless_normal` takes; an int `s` means `[s, 0]`).
      clip: clip the result to [0, 1].

    Returns:
      float32 tensor of the input's shape.
    """
    x = tf.convert_to_tensor(images)
    if x.dtype != tf.float32:
        x = tf.cast(x, tf.float32)
    noise = tf.random.stateless_normal(tf.shape(x), seed=_seed_pair(seed), stddev=float(sigma) / 255.0)
    out = x + noise
    if clip:
        out = tf.clip_by_value(out, 0.0, 1.0)
    return out


@gin.configurable(module="tfdplc.data")
class SuperResolution:
    """Callable `images -> downsample_upsample(images, factor, method)`; see `downsample_upsample`."""

    def __init__(self, factor: int = 4, method: str = "bilinear"):
        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
        self.factor = int(factor)
        self.method = method

    def __call__(self, images) -> tf.Tensor:
        """Returns the degraded image(s), same shape, float32 in [0, 1]."""
        return downsample_upsample(images, factor=self.factor, method=self.method)

    def __repr__(self) -> str:
        return f"SuperResolution(factor={self.factor}, method={self.method!r})"


@gin.configurable(module="tfdplc.data")
class GaussianNoise:
    """Callable adding Gaussian noise of std `sigma / 255`; see `add_gaussian_noise`.

    `noise(images)` uses the seed pair `[seed, 0]`: the same noise on every call. `noise(images, index=i)`
    uses `[seed, i]`: `input_pipeline` passes the running batch index, so every batch gets fresh noise while
    the whole pipeline stays reproducible for a given `seed`.
    """

    def __init__(self, sigma: float = 20.0, seed: int = 0, clip: bool = False):
        self.sigma = float(sigma)
        self.seed = int(seed)
        self.clip = bool(clip)

    def __call__(self, images, index: Optional[Union[int, tf.Tensor]] = None) -> tf.Tensor:
        """Returns `images` plus noise drawn with the seed pair `[seed, index]` (`index` 0 if None)."""
        index = tf.constant(0, tf.int64) if index is None else tf.cast(index, tf.int64)
        seed = tf.stack([tf.constant(self.seed, tf.int64), index])
        return add_gaussian_noise(images, self.sigma, seed, clip=self.clip)

    def __repr__(self) -> str:
        return f"GaussianNoise(sigma={self.sigma}, seed={self.seed}, clip={self.clip})"


def accepts_index(fn) -> bool:
    """Whether the degradation callable `fn` takes an `index` keyword (a per-batch counter for its seed)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "index" in params
