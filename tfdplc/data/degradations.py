"""Image degradations for the shift-compression tasks of Liu et al. (2022), Appendix B.1.

* Super-resolution (MNIST): "bilinear downsampling on the original image from 28 x 28 to 7 x 7", i.e. x4;
  the degraded image is brought back to the original size so that encoder input and target share a shape.
  The text and the authors' code disagree (their code down- and up-samples with torch's bicubic
  `F.interpolate`, no antialiasing), and this project first used an antialiased resize; the three are
  named choices (`PRESETS`: "antialiased", the default, "paper_text", "authors"), which differ a lot in how
  much of the digit survives: the per-pixel variance of X on mnist5k is 0.011, 0.024 and 0.051.
* Denoising (SVHN): "additive Gaussian noise. The standard deviation is set to 20" (in 0-255 pixel units).

All functions take float images in [0, 1], either one image (H, W, C) or a batch (N, H, W, C), and return
float32 tensors of the same shape. `SuperResolution` and `GaussianNoise` are small gin-configurable callables
for `input_pipeline.degradation`, e.g. in a gin file::

    tfdplc.data.input_pipeline.degradation = @tfdplc.data.SuperResolution()
    tfdplc.data.SuperResolution.factor = 4
    tfdplc.data.SuperResolution.preset = "authors"
"""

import inspect
from typing import Optional, Sequence, Tuple, Union

import gin
import numpy as np
import tensorflow as tf

_METHODS = ("bilinear", "bicubic")

#: Named super-resolution degradations: the keyword arguments of `downsample_upsample` each one means.
#: Per-pixel variance of X on mnist5k (train / test; mean over pixels of the variance over digits, on
#: [0, 1]; results/shift/degradation_variance.py): clean digits 0.0671 / 0.0696.
PRESETS = {
    # This project's degradation since issue 5 (the default): TF's antialiased resize, each low-resolution
    # pixel a weighted average of its 4x4 footprint. Variance 0.0106 / 0.0111.
    "antialiased": {"method": "bilinear", "antialias": True, "clip": True},
    # What the paper's text says (App. B.1: "bilinear downsampling"), read as plain interpolation, torch's
    # F.interpolate(mode="bilinear", align_corners=False) (= TF's bilinear without antialiasing); bilinear
    # never leaves [0, 1], so the clip does nothing. Variance 0.0237 / 0.0251.
    "paper_text": {"method": "bilinear", "antialias": False, "clip": True},
    # What the authors' code does: torch's F.interpolate(mode="bicubic", align_corners=False) down and up,
    # no antialiasing (a = -0.75), output not clipped (as F.interpolate's). Variance 0.0508 / 0.0531
    # (clipped to [0, 1]: 0.0428 / 0.0445).
    "authors": {"method": "bicubic", "antialias": False, "clip": False},
}

#: The cubic convolution coefficient of torch's bicubic interpolation (PIL's and TF's Keys kernel: -0.5).
TORCH_CUBIC_A = -0.75

SeedLike = Union[int, Sequence[int], tf.Tensor]

__all__ = [
    "PRESETS",
    "TORCH_CUBIC_A",
    "GaussianNoise",
    "SuperResolution",
    "accepts_index",
    "add_gaussian_noise",
    "downsample_upsample",
    "interpolation_matrix",
    "resolve_preset",
]


def _as_batch(images) -> tuple:
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.float32:
        images = tf.cast(images, tf.float32)
    if images.shape.rank == 3:
        return images[tf.newaxis], True
    if images.shape.rank == 4:
        return images, False
    raise ValueError(f"Expected an image (H, W, C) or a batch (N, H, W, C), got shape {images.shape}.")


def _cubic(distance: np.ndarray, a: float) -> np.ndarray:
    """The cubic convolution kernel (Keys 1981) with coefficient `a`, for |distance| < 2."""
    d = np.abs(distance)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def interpolation_matrix(in_size: int, out_size: int, method: str) -> np.ndarray:
    """The (out_size, in_size) float64 matrix of torch's `F.interpolate(..., align_corners=False)` on one axis.

    Output pixel i samples the input at s = (i + 0.5) * in_size / out_size - 0.5 (half-pixel centres; the
    scale is in/out, as torch computes it when given `size`, and equal to 1 / scale_factor when the sizes
    divide). Bilinear: s is clamped below at 0 and the two neighbours floor(s), floor(s) + 1 (the latter
    clamped to the last pixel) get weights 1 - t, t with t = s - floor(s). Bicubic: the four neighbours
    floor(s) - 1 ... floor(s) + 2 get the cubic convolution weights with a = -0.75 (`TORCH_CUBIC_A`), and
    indices outside the image are clamped to the border pixel (replicate padding). No antialiasing: the
    kernel is not widened when downsampling, so a x4 bicubic reduction reads 4 of the 16 pixels per axis
    pair, weights (-0.094, 0.594, 0.594, -0.094).

    Args:
      in_size: input length along the axis.
      out_size: output length.
      method: "bilinear" or "bicubic".

    Returns:
      M with out = M @ in along that axis; each row sums to 1.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    scale = in_size / out_size
    matrix = np.zeros((out_size, in_size))
    for i in range(out_size):
        source = (i + 0.5) * scale - 0.5
        if method == "bilinear":
            source = max(source, 0.0)
            low = int(np.floor(source))
            t = source - low
            matrix[i, min(low, in_size - 1)] += 1 - t
            matrix[i, min(low + 1, in_size - 1)] += t
        else:
            low = int(np.floor(source))
            t = source - low
            taps = np.arange(low - 1, low + 3)
            weights = _cubic(taps - source, TORCH_CUBIC_A)
            np.add.at(matrix[i], np.clip(taps, 0, in_size - 1), weights)
    return matrix


def _torch_resize(x: tf.Tensor, size: Tuple[int, int], method: str) -> tf.Tensor:
    """Separable `interpolation_matrix` resize of a (N, H, W, C) batch with static H, W."""
    h, w = x.shape[1], x.shape[2]
    rows = tf.constant(interpolation_matrix(h, size[0], method), tf.float32)
    cols = tf.constant(interpolation_matrix(w, size[1], method), tf.float32)
    x = tf.einsum("oh,nhwc->nowc", rows, x)
    return tf.einsum("pw,nowc->nopc", cols, x)


def resolve_preset(
    preset: Optional[str] = None,
    method: Optional[str] = None,
    antialias: Optional[bool] = None,
    clip: Optional[bool] = None,
) -> dict:
    """The `downsample_upsample` choices of a preset name or of explicit arguments.

    Args:
      preset: a key of `PRESETS`, or None (then the defaults: bilinear, antialiased, clipped).
      method: "bilinear" / "bicubic", or None (the preset's or the default).
      antialias: bool, or None (likewise).
      clip: bool, or None (likewise).

    Returns:
      {"method", "antialias", "clip"}.

    Raises:
      ValueError: on an unknown preset or method, a non-boolean switch, or explicit choices that contradict
        the preset.
    """
    given = {"method": method, "antialias": antialias, "clip": clip}
    if preset is None:
        choice = dict(PRESETS["antialiased"])
    elif preset in PRESETS:
        choice = dict(PRESETS[preset])
        for name, value in given.items():
            if value is not None and value != choice[name]:
                raise ValueError(
                    f"preset {preset!r} means {PRESETS[preset]}; got {name}={value!r} as well. Give either "
                    "the preset or the explicit choices."
                )
    else:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}.")
    choice.update({name: value for name, value in given.items() if value is not None})
    if choice["method"] not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {choice['method']!r}.")
    for name in ("antialias", "clip"):
        if not isinstance(choice[name], (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {choice[name]!r}.")
        choice[name] = bool(choice[name])
    return choice


def downsample_upsample(
    images, factor: int = 4, method: str = "bilinear", antialias: bool = True, clip: bool = True
) -> tf.Tensor:
    """Downsamples by `factor`, then upsamples back to the input size (the super-resolution degradation).

    `antialias=True` (the default, this project's degradation since issue 5): down with
    `tf.image.resize(..., (H // factor, W // factor), method, antialias=True)`, which widens the
    interpolation kernel by the downsampling factor, so each low-resolution pixel is a (bilinear- or
    Keys-bicubic-weighted, a = -0.5) average over its whole footprint, as PIL's `Image.resize` does;
    up with `tf.image.resize(..., (H, W), method)` (antialiasing has no effect when upsampling).

    `antialias=False`: torch's `F.interpolate(..., mode=method, align_corners=False)` down and up, the
    authors' operation (`interpolation_matrix`: half-pixel centres, border replication, bicubic with
    a = -0.75), computed as two separable matrix products, exact up to float32 rounding. A x4 reduction
    then reads only the pixels next to each sample point (bilinear: 2 of the 4 per axis, each with weight
    1/2; bicubic: 4 with weights -0.094, 0.594, 0.594, -0.094), so thin strokes alias and much more of
    the digit's variance survives. Note that `tf.image.resize(method="bicubic", antialias=False)` is NOT
    this: it uses a = -0.5 and drops (and renormalises) taps outside the image instead of replicating the
    border; on the mnist5k test digits it differs from torch's result by an RMS of 0.029 per pixel (max
    0.19; measured with results/shift/degradation_variance.py). Bilinear without antialiasing is the same
    in TF and torch.

    Bicubic overshoots; `clip=True` (the default) clips the output to [0, 1], `clip=False` leaves it as
    torch's F.interpolate does (the "authors" preset). Bilinear stays in [0, 1] either way. On the mnist5k
    test digits the clip removes a mean squared 1.71e-3 per pixel from the authors' degradation, which a
    decoder with outputs in [0, 1] (sigmoid) can never reproduce. A constant image is left unchanged.

    Args:
      images: float image (H, W, C) or batch (N, H, W, C), values in [0, 1].
      factor: integer downsampling factor; the low-resolution size is `H // factor` x `W // factor`
        (28 -> 7 for MNIST with the default 4).
      method: "bilinear" or "bicubic".
      antialias: TF's antialiased resize (True) or torch's plain interpolation (False; needs a static H, W).
      clip: clip the output to [0, 1].

    Returns:
      float32 tensor of the input's shape (values in [0, 1] with `clip`).

    Raises:
      ValueError: on an unknown method, a factor below 1 or above the image size, or (antialias=False)
        an image size unknown when the graph is built.
    """
    choice = resolve_preset(None, method, antialias, clip)
    method, antialias = choice["method"], choice["antialias"]
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
        if antialias:
            shape = tf.shape(x)
            h, w = shape[1], shape[2]
            small = tf.image.resize(x, tf.stack([h // factor, w // factor]), method=method, antialias=True)
            out = tf.image.resize(small, tf.stack([h, w]), method=method)
        else:
            if len(static_hw) != 2:
                raise ValueError(f"antialias=False needs a static image size (H, W), got {x.shape[1:3]}.")
            h, w = static_hw
            small = _torch_resize(x, (h // factor, w // factor), method)
            out = _torch_resize(small, (h, w), method)
        out = tf.ensure_shape(out, x.shape)
    if choice["clip"]:
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
    """Callable `images -> downsample_upsample(images, factor, method, antialias, clip)`.

    Choose the degradation by `preset` (a key of `PRESETS`: "antialiased", "paper_text", "authors") or by
    `method`, `antialias` and `clip`; with none of them it is "antialiased" bilinear, clipped, so configs
    and checkpoints made before these choices existed keep their meaning. See `downsample_upsample`.

    Raises:
      ValueError: on an unknown preset or method, or a preset contradicted by explicit choices.
    """

    def __init__(
        self,
        factor: int = 4,
        method: Optional[str] = None,
        antialias: Optional[bool] = None,
        clip: Optional[bool] = None,
        preset: Optional[str] = None,
    ):
        choice = resolve_preset(preset, method, antialias, clip)
        self.method, self.antialias, self.clip = choice["method"], choice["antialias"], choice["clip"]
        self.factor = int(factor)
        if self.factor < 1:
            raise ValueError(f"factor must be a positive integer, got {factor}.")

    def __call__(self, images) -> tf.Tensor:
        """Returns the degraded image(s), same shape, float32."""
        return downsample_upsample(
            images, factor=self.factor, method=self.method, antialias=self.antialias, clip=self.clip
        )

    def __repr__(self) -> str:
        return (
            f"SuperResolution(factor={self.factor}, method={self.method!r}, antialias={self.antialias}, "
            f"clip={self.clip})"
        )


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
