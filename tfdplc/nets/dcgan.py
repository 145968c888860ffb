"""The DCGAN-style networks F, G, f, E, B of DPLC (Tschannen et al. 2018, Appendix B).

Notation of Appendix B: cxsy-z is an x*x convolution, stride y, z filters, then ReLU (omitted before
quantization or tanh); suffix b adds batch norm before the non-linearity, suffix l uses layer norm and
leaky ReLU (slope 0.2) instead; txsyb-z is the transposed convolution (upsampling by y) with batch norm and
ReLU; fc-z flattens and applies a z-unit dense layer; r-z is a residual block; bn is batch norm; +n
concatenates m noise entries (`tfdplc.layers.NoiseInput`); -q is quantization (applied by the caller).

The paper gives the 64x64 networks with 64 as base filter count; every constructor takes `width` (the
paper's 64) and scales all filter counts proportionally (64 -> width, 128 -> 2*width, ...), so CPU-scale
configs can use width=8 or 16. Layer details not in the paper follow the authors' public code: 4x4 kernels
with padding 1 (our "same" padding gives the same output sizes), convolutions followed by a normalisation
have no bias, weights are initialised from N(0, 0.02).

Resolution 32 (the paper only uses 64): G drops its last upsampling stage (t4s2b-64) and f its first
downsampling stage (c4s2l-64), so both keep the paper's 4x4x(8*width) bottleneck; F and E keep all four
stride-2 convolutions, so E's code map is 2x2 at resolution 32 (4x4 at 64).
"""

import math
from typing import Optional

import gin
import tensorflow as tf

from tfdplc.layers.noise import NoiseInput, WithNoiseInput
from tfdplc.nets._checks import check_positive_int

__all__ = ["NORMALIZATIONS", "encoder_F", "generator_G", "critic_f", "encoder_E", "mapping_B"]

_RESOLUTIONS = (32, 64)
# All four encoders (F, E) and the critic downsample by 2**4 at resolution 64.
_CODE_DOWNSAMPLING = 16
# The normalisations E and B can use in place of the paper's batch norm ("batch", the default). The other
# three are per example, so a code or z does not depend on the rest of its batch in training either.
NORMALIZATIONS = ("batch", "layer", "group", "none")
# Group norm's groups: gcd(channels, 8), i.e. 8 at the CPU-scale widths (multiples of 8); Wu & He 2018 use
# 32 groups at 64+ channels.
_GROUPS = 8


def _check_resolution(resolution) -> int:
    if resolution not in _RESOLUTIONS:
        raise ValueError(f"resolution must be one of {_RESOLUTIONS}, got {resolution!r}.")
    return resolution


def _check_channels(channels) -> int:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}.")
    return channels


def _init():
    # DCGAN initialisation of the reference code (weights ~ N(0, 0.02)); a fresh instance per layer.
    return tf.keras.initializers.RandomNormal(stddev=0.02)


def _check_normalization(normalization) -> str:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}.")
    return normalization


def _conv(x, filters, kernel, stride, norm=None, activation="relu"):
    """One cxsy[b|l]-z unit: conv, optional normalisation, then ReLU / leaky ReLU 0.2 / none.

    `norm` is None / "none" (conv with bias), "batch", "layer" or "group" (`NORMALIZATIONS`).
    """
    norm = None if norm == "none" else norm
    x = tf.keras.layers.Conv2D(
        filters, kernel, stride, padding="same", use_bias=norm is None, kernel_initializer=_init()
    )(x)
    if norm == "batch":
        x = tf.keras.layers.BatchNormalization()(x)
    elif norm == "layer":
        # Layer norm over (h, w, c) per example with per-element affine, as torch's LayerNorm([c, h, w]).
        x = tf.keras.layers.LayerNormalization(axis=(1, 2, 3), epsilon=1e-5)(x)
    elif norm == "group":
        # Group norm per example (Wu & He 2018) over (h, w, channels of a group), per-channel affine.
        groups = math.gcd(filters, _GROUPS)
        x = tf.keras.layers.GroupNormalization(groups, epsilon=1e-5)(x)
    if activation == "relu":
        x = tf.keras.layers.ReLU()(x)
    elif activation == "leaky":
        x = tf.keras.layers.LeakyReLU(0.2)(x)
    return x


def _upconv(x, filters, stride=2, padding="same"):
    """One t4s2b-z unit: transposed conv (4x4), batch norm, ReLU."""
    x = tf.keras.layers.Conv2DTranspose(
        filters, 4, stride, padding=padding, use_bias=False, kernel_initializer=_init()
    )(x)
    x = tf.keras.layers.BatchNormalization()(x)
    return tf.keras.layers.ReLU()(x)


def _fc_bn(x, units, norm="batch"):
    """fc-z followed by bn (the last layers of F and B); no bias since batch norm re-centres anyway.

    With any other `norm` the last layer is fc-z with a bias and no normalisation: a per-example
    normalisation of z (layer / group norm) would fix each z's mean and spread over its m entries, which
    samples of P_Z = N(0, I_m) do not share, so B(E(X)) could not match P_Z.
    """
    x = tf.keras.layers.Flatten()(x)
    if norm != "batch":
        return tf.keras.layers.Dense(units, kernel_initializer=_init())(x)
    x = tf.keras.layers.Dense(units, use_bias=False, kernel_initializer=_init())(x)
    return tf.keras.layers.BatchNormalization()(x)


def _downsampling_trunk(x, width, norm="batch"):
    """c4s2-w, c4s2b-2w, c4s2b-4w, c4s2b-8w: the shared first four layers of F and E."""
    x = _conv(x, width, 4, 2)
    for multiple in (2, 4, 8):
        x = _conv(x, multiple * width, 4, 2, norm=norm)
    return x


def _residual_block(x, filters, norm="batch"):
    """r-z: conv3x3-bn-relu-conv3x3-bn, plus the identity skip, then ReLU.

    This is the ResNet "basic block" used by the DPLC reference code for B's residual units (`norm`
    replaces its batch norms).
    """
    y = _conv(x, filters, 3, 1, norm=norm)
    y = _conv(y, filters, 3, 1, norm=norm, activation=None)
    return tf.keras.layers.ReLU()(tf.keras.layers.Add()([x, y]))


@gin.configurable(module="tfdplc.nets")
def encoder_F(resolution: int, m: int, width: int = 64, channels: int = 3, name: str = "encoder_F"):
    """The WAE encoder F: c4s2-64, c4s2b-128, c4s2b-256, c4s2b-512, fc-m, bn (DPLC Appendix B).

    Args:
      resolution: input height and width, 32 or 64.
      m: latent dimension.
      width: base filter count (the paper's 64).
      channels: input channels, 3 (RGB) or 1.
      name: model name.

    Returns:
      A functional `tf.keras.Model`: images (B, resolution, resolution, channels) in [0, 1] -> z (B, m).

    Raises:
      ValueError: on an unsupported resolution/channels or a non-positive m/width.
    """
    _check_resolution(resolution)
    check_positive_int(m, "m")
    check_positive_int(width, "width")
    _check_channels(channels)
    images = tf.keras.Input((resolution, resolution, channels), name="images")
    z = _fc_bn(_downsampling_trunk(images, width), m)
    return tf.keras.Model(images, z, name=name)


@gin.configurable(module="tfdplc.nets")
def generator_G(resolution: int, m: int, width: int = 64, channels: int = 3, name: str = "generator_G"):
    """The generator/decoder G: t4s2b-512, t4s2b-256, t4s2b-128, t4s2b-64, t4s2b-64, c3s1-C, tanh.

    DPLC Appendix B. The first transposed convolution lifts z, viewed as a 1x1 map, to a 4x4 map (4x4
    kernel, no padding, as in the DPLC reference code); the following ones double the size, so at resolution
    64 the maps are 4 -> 8 -> 16 -> 32 -> 64. At resolution 32 the last t4s2b-64 is dropped (4 -> 8 -> 16 ->
    32). The tanh output is mapped to [0, 1] as 0.5 * (tanh(x) + 1).

    Args:
      resolution: output height and width, 32 or 64.
      m: latent dimension.
      width: base filter count (the paper's 64).
      channels: output channels C, 3 (RGB) or 1.
      name: model name.

    Returns:
      A functional `tf.keras.Model`: z (B, m) -> images (B, resolution, resolution, channels) in [0, 1].

    Raises:
      ValueError: on an unsupported resolution/channels or a non-positive m/width.
    """
    _check_resolution(resolution)
    check_positive_int(m, "m")
    check_positive_int(width, "width")
    _check_channels(channels)
    z = tf.keras.Input((m,), name="z")
    x = tf.keras.layers.Reshape((1, 1, m))(z)
    x = _upconv(x, 8 * width, stride=1, padding="valid")  # 1x1 -> 4x4
    multiples = (4, 2, 1, 1) if resolution == 64 else (4, 2, 1)
    for multiple in multiples:
        x = _upconv(x, multiple * width)
    x = tf.keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer=_init())(x)
    images = tf.keras.layers.Activation(_tanh_to_unit, name="tanh_to_unit")(x)
    return tf.keras.Model(z, images, name=name)


@tf.keras.utils.register_keras_serializable(package="tfdplc")
def _tanh_to_unit(x):
    """0.5 * (tanh(x) + 1): the paper's tanh output mapped to [0, 1]."""
    return 0.5 * (tf.tanh(x) + 1.0)


@gin.configurable(module="tfdplc.nets")
def critic_f(resolution: int, width: int = 64, channels: int = 3, name: str = "critic_f"):
    """The WGAN critic f: c3s1-64, c4s2l-64, c4s2l-128, c4s2l-256, c4s2l-512, fc-1 (DPLC Appendix B).

    No batch norm anywhere (the gradient penalty needs each output to depend on its own example only):
    the stride-2 layers use layer norm and leaky ReLU 0.2. The first c3s1 layer uses leaky ReLU 0.2 as in
    the DPLC reference code (the paper's notation would read ReLU). At resolution 32 the first c4s2l-64 is
    dropped (maps 32 -> 16 -> 8 -> 4), mirroring `generator_G`.

    Args:
      resolution: input height and width, 32 or 64.
      width: base filter count (the paper's 64).
      channels: input channels, 3 (RGB) or 1.
      name: model name.

    Returns:
      A functional `tf.keras.Model`: images (B, resolution, resolution, channels) -> scores (B, 1).

    Raises:
      ValueError: on an unsupported resolution/channels or a non-positive width.
    """
    _check_resolution(resolution)
    check_positive_int(width, "width")
    _check_channels(channels)
    images = tf.keras.Input((resolution, resolution, channels), name="images")
    x = _conv(images, width, 3, 1, activation="leaky")
    multiples = (1, 2, 4, 8) if resolution == 64 else (2, 4, 8)
    for multiple in multiples:
        x = _conv(x, multiple * width, 4, 2, norm="layer", activation="leaky")
    x = tf.keras.layers.Flatten()(x)
    scores = tf.keras.layers.Dense(1, kernel_initializer=_init())(x)
    return tf.keras.Model(images, scores, name=name)


@gin.configurable(module="tfdplc.nets")
def encoder_E(
    resolution: int,
    k: int,
    width: int = 64,
    channels: int = 3,
    normalization: str = "batch",
    name: str = "encoder_E",
):
    """The rate-constrained encoder E: c4s2-64, c4s2b-128, c4s2b-256, c4s2b-512, c3s1-k (DPLC App. B).

    Returns the unquantized code map: the paper's "-q" (and "+n", which belongs to B) are applied by the
    caller. The map is (B, resolution/16, resolution/16, k): 4x4xk at 64, 2x2xk at 32.

    k = 0 (rate 0) gives an encoder with no weights whose output is an empty (B, h, w, 0) map.

    `normalization` other than "batch" is a deviation from App. B ("c4s2b"): with batch norm, training
    (batch statistics) and the deployed codec (one image at a time, moving statistics) compute different
    codes; "layer", "group" and "none" make each code a function of its own image in both modes.

    Args:
      resolution: input height and width, 32 or 64.
      k: code channels (sets the rate), >= 0.
      width: base filter count (the paper's 64).
      channels: input channels, 3 (RGB) or 1.
      normalization: of the three "b" convolutions, one of `NORMALIZATIONS` ("batch": the paper).
      name: model name.

    Returns:
      A functional `tf.keras.Model`: images (B, resolution, resolution, channels) -> (B, h, w, k) float32.

    Raises:
      ValueError: on an unsupported resolution/channels/normalization, a negative k or a non-positive width.
    """
    _check_resolution(resolution)
    check_positive_int(k, "k", allow_zero=True)
    check_positive_int(width, "width")
    _check_channels(channels)
    _check_normalization(normalization)
    images = tf.keras.Input((resolution, resolution, channels), name="images")
    if k == 0:
        # Nothing to learn at rate 0: an empty map with the batch and spatial size of a real code.
        step = _CODE_DOWNSAMPLING
        code = images[:, ::step, ::step, :0]
    else:
        x = _downsampling_trunk(images, width, normalization)
        # No ReLU: the output is quantized (Appendix B notation).
        code = tf.keras.layers.Conv2D(k, 3, padding="same", kernel_initializer=_init())(x)
    return tf.keras.Model(images, code, name=name)


@tf.keras.utils.register_keras_serializable(package="tfdplc")
class LearnedConstant(tf.keras.layers.Layer):
    """Outputs one trainable (units,) vector for every example of the batch, whatever the input."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, input_shape):  # noqa: D102
        self.value = self.add_weight(name="value", shape=(self.units,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs):  # noqa: D102
        return tf.tile(self.value[None], [tf.shape(inputs)[0], 1])

    def get_config(self):  # noqa: D102
        return {**super().get_config(), "units": self.units}


@gin.configurable(module="tfdplc.nets")
def mapping_B(
    resolution: int,
    k: int,
    m: int,
    n_blocks: int,
    width: int = 512,
    noise: bool = True,
    seed: Optional[int] = None,
    normalization: str = "batch",
    name: str = "mapping_B",
):
    """The (stochastic) map B: +n, c3s1-512, r-512, ..., r-512, fc-m, bn (DPLC Appendix B).

    B maps the quantized code map of `encoder_E` to the generator's latent space; with `noise=True` it
    first concatenates m Uniform[0, 1] entries reshaped to the code's spatial size (`NoiseInput`), so it is
    a stochastic function and B(E(X)) can match P_Z even at low rates; k = 0 gives a pure generator
    (noise -> z). `noise=False` gives the deterministic B of the CAE baseline.

    The residual blocks r-z are ResNet basic blocks (conv3x3-bn-relu-conv3x3-bn, identity skip, ReLU),
    as in the DPLC reference code. The c3s1 layer keeps the ReLU of the paper's notation (the reference
    code has none there).

    `normalization` other than "batch" is a deviation from App. B (see `encoder_E`): the residual blocks
    use it in place of batch norm and the last "fc-m, bn" becomes fc-m with a bias (`_fc_bn`), so z does
    not depend on the rest of its batch in training either.

    Args:
      resolution: image resolution E was built for, 32 or 64 (the code map is resolution/16 square).
      k: code channels, >= 0 (0 without noise gives a learned constant z: the CAE at rate 0).
      m: latent dimension; with noise it must be divisible by the code's h*w (16 at 64, 4 at 32).
      n_blocks: number of residual blocks, >= 0.
      width: filters of every convolution (the paper's 512).
      noise: whether to apply "+n".
      seed: seed of the noise generator (None: non-deterministic).
      normalization: one of `NORMALIZATIONS` ("batch": the paper).
      name: model name.

    Returns:
      With noise, a `tfdplc.layers.WithNoiseInput` model: `B(code)` draws noise, `B(code, noise=n)` uses
      the (batch, m) tensor n. Without noise, a functional model. Either maps (B, h, w, k) -> z (B, m).

    Raises:
      ValueError: on an unsupported resolution or normalization, invalid sizes, or m not divisible
        by h*w when noise is used.
    """
    _check_resolution(resolution)
    _check_normalization(normalization)
    check_positive_int(k, "k", allow_zero=True)
    check_positive_int(m, "m")
    check_positive_int(n_blocks, "n_blocks", allow_zero=True)
    check_positive_int(width, "width")
    side = resolution // _CODE_DOWNSAMPLING
    code_shape = (side, side, k)
    if k == 0 and not noise:
        # Rate 0 without noise (the CAE at 0 bits): there is nothing to map, the best B is a learned z.
        empty_code = tf.keras.Input(code_shape, name="code")
        return tf.keras.Model(empty_code, LearnedConstant(m, name="z")(empty_code), name=name)

    trunk_channels = k
    noise_layer = None
    if noise:
        noise_layer = NoiseInput(m, seed=seed, name="noise")
        trunk_channels += noise_layer.compute_output_shape((None,) + code_shape)[-1] - k

    features = tf.keras.Input(
        (side, side, trunk_channels), name="code" if noise_layer is None else "code_noise"
    )
    x = _conv(features, width, 3, 1)
    for _ in range(n_blocks):
        x = _residual_block(x, width, normalization)
    z = _fc_bn(x, m, normalization)
    if noise_layer is None:
        return tf.keras.Model(features, z, name=name)

    model = WithNoiseInput(noise_layer, tf.keras.Model(features, z, name=f"{name}_trunk"), name=name)
    model.build((None,) + code_shape)
    return model
