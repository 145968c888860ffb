"""The small networks of Liu et al. 2022 (shift compression) and Yan et al. 2021 (perceptual decoder).

Liu et al., Appendix B.8, Tables 12-15: encoder, decoder and critic for super-resolution on MNIST
(28x28x1) and denoising on SVHN (32x32x3), plus the decoders of the two-branch model. The tables name the
layer types only; filter counts, kernel sizes and the 4x4x32 "Unflatten" follow the authors' public code
(Encoder_mnist / Decoder_mnist / Encoder_svhn / Decoder_svhn / Discriminator). Their leaky ReLUs use
PyTorch's default slope 0.01, kept here.

Yan et al., Section 4: encoder E (32x32 MNIST -> d values), MSE decoder G1, perceptual decoder G2 fed with
d code entries and Gaussian noise (100 inputs in all), and the critic J(x, code) conditioned on the code.
Layer sizes follow the authors' public code (DCGAN-style, 4x4 kernels, width parameter "d" there, here
`width`; weights ~ N(0, 0.02)). `yan_projection_critic` (not in the paper) conditions J on the code by
projection (Miyato & Koyama 2018) instead of concatenation.

Images are float32 in [0, 1], NHWC. Quantization is applied by the caller to the encoders' outputs.
"""

from typing import Optional

import gin
import tensorflow as tf

from tfdplc.layers.noise import NoiseInput, WithNoiseInput
from tfdplc.nets._checks import check_positive_int

__all__ = [
    "liu_encoder",
    "liu_decoder",
    "liu_two_branch_decoder",
    "liu_critic",
    "yan_encoder",
    "yan_decoder",
    "yan_generator",
    "yan_critic",
    "yan_projection_critic",
]

SUPER_RESOLUTION = "super_resolution"
DENOISING = "denoising"
# Task -> image shape: MNIST digits (super-resolution), SVHN crops (denoising).
_TASK_SHAPES = {SUPER_RESOLUTION: (28, 28, 1), DENOISING: (32, 32, 3)}
# Slope of torch.nn.LeakyReLU() (Liu et al. code) and of the DCGAN critics (Yan et al. code).
_LIU_SLOPE = 0.01
_YAN_SLOPE = 0.2
YAN_IMAGE_SHAPE = (32, 32, 1)


def _check_task(task) -> str:
    if task not in _TASK_SHAPES:
        raise ValueError(f"task must be one of {tuple(_TASK_SHAPES)}, got {task!r}.")
    return task


def _leaky(x, slope):
    return tf.keras.layers.LeakyReLU(slope)(x)


# ----------------------------------------------------------------------------------------------- Liu et al.


@gin.configurable(module="tfdplc.nets")
def liu_encoder(
    latent_dim: int, task: str = SUPER_RESOLUTION, width: Optional[int] = None, name: str = "liu_encoder"
):
    """Encoder f of Liu et al. Table 12 (super-resolution) / Table 14 (denoising); same in Tables 13/15.

    Super-resolution: Conv2D-lReLU, Conv2D-lReLU, Flatten, Linear(128)-lReLU, Linear(128)-lReLU,
    Linear(latent_dim)-tanh; the convolutions are 5x5, stride 2, with width and 2*width filters (width 32 in
    the authors' code). Its input is the degraded digit at 28x28 (the authors downsample by 4 and upsample
    back, so encoder input and decoder output have one size).
    Denoising: three 5x5 stride-2 Conv2D-lReLU (width, 2*width, 4*width; width 64), Flatten,
    Linear(latent_dim)-tanh.

    The output lies in (-1, 1)^latent_dim; the paper's quantizer (L levels on [-1, 1], with or without a
    shared dither) is applied by the caller.

    Args:
      latent_dim: number of code symbols (sets the rate with the quantizer's levels).
      task: "super_resolution" (28x28x1 input) or "denoising" (32x32x3 input).
      width: first-layer filters; None takes the authors' value (32 / 64).
      name: model name.

    Returns:
      A functional `tf.keras.Model`: images -> (B, latent_dim) in (-1, 1).

    Raises:
      ValueError: on an unknown task or non-positive sizes.
    """
    check_positive_int(latent_dim, "latent_dim")
    _check_task(task)
    width = check_positive_int(
        width if width is not None else (32 if task == SUPER_RESOLUTION else 64), "width"
    )
    images = tf.keras.Input(_TASK_SHAPES[task], name="images")
    multiples = (1, 2) if task == SUPER_RESOLUTION else (1, 2, 4)
    x = images
    for multiple in multiples:
        x = _leaky(tf.keras.layers.Conv2D(multiple * width, 5, 2, padding="same")(x), _LIU_SLOPE)
    x = tf.keras.layers.Flatten()(x)
    if task == SUPER_RESOLUTION:
        for _ in range(2):
            x = _leaky(tf.keras.layers.Dense(128)(x), _LIU_SLOPE)
    code = tf.keras.layers.Dense(latent_dim, activation="tanh")(x)
    return tf.keras.Model(images, code, name=name)


def _liu_expand(latent_dim: int):
    """The decoders' common start: Linear(128)-BN-lReLU, Linear(512)-BN-lReLU, Unflatten to 4x4x32."""
    code = tf.keras.Input((latent_dim,), name="code")
    x = code
    for units in (128, 512):
        x = tf.keras.layers.Dense(units, use_bias=False)(x)
        x = _leaky(tf.keras.layers.BatchNormalization()(x), _LIU_SLOPE)
    return code, tf.keras.layers.Reshape((4, 4, 32))(x)


def _liu_upsampling_plan(task: str):
    """(filters, kernel, stride) of the transposed convolutions: 4 -> 11 -> 25 -> 28 (or -> 29 -> 32)."""
    if task == SUPER_RESOLUTION:
        return [(64, 5, 2), (128, 5, 2), (1, 4, 1)]
    return [(64, 5, 2), (108, 5, 2), (128, 5, 1), (3, 4, 1)]


@gin.configurable(module="tfdplc.nets")
def liu_decoder(
    latent_dim: int, task: str = SUPER_RESOLUTION, last_batch_norm: bool = True, name: str = "liu_decoder"
):
    """Decoder g of the end-to-end model of Liu et al. (Table 12 super-resolution, Table 14 denoising).

    Linear(128)-BN-lReLU, Linear(512)-BN-lReLU, Unflatten (4x4x32), then "valid" transposed convolutions
    with BN and lReLU: super-resolution 64 (5x5, s2) -> 11x11, 128 (5x5, s2) -> 25x25, 1 (4x4, s1) -> 28x28;
    denoising 64 -> 11, 108 -> 25, 128 (5x5, s1) -> 29, 3 (4x4, s1) -> 32. The last one is followed by
    BatchNorm and a sigmoid as the tables say; the authors' code has no BatchNorm there
    (`last_batch_norm=False` reproduces it, and is the two-branch decoder of Table 13).

    Args:
      latent_dim: code length.
      task: "super_resolution" (28x28x1 output) or "denoising" (32x32x3 output).
      last_batch_norm: whether to batch-normalise the last layer before the sigmoid (Tables 12/14).
      name: model name.

    Returns:
      A functional `tf.keras.Model`: (B, latent_dim) -> images in [0, 1].

    Raises:
      ValueError: on an unknown task or a non-positive latent_dim.
    """
    check_positive_int(latent_dim, "latent_dim")
    _check_task(task)
    code, x = _liu_expand(latent_dim)
    plan = _liu_upsampling_plan(task)
    for index, (filters, kernel, stride) in enumerate(plan):
        last = index == len(plan) - 1
        normalise = not last or last_batch_norm
        upconv = tf.keras.layers.Conv2DTranspose(filters, kernel, stride, "valid", use_bias=not normalise)
        x = upconv(x)
        if normalise:
            x = tf.keras.layers.BatchNormalization()(x)
        x = tf.keras.layers.Activation("sigmoid")(x) if last else _leaky(x, _LIU_SLOPE)
    return tf.keras.Model(code, x, name=name)


def _liu_residual_block(x):
    """ResBlock of Table 15 ("two Conv2D and skip connection"): x + conv3x3(lReLU(conv3x3(x)))."""
    filters = x.shape[-1]
    y = _leaky(tf.keras.layers.Conv2D(filters, 3, padding="same")(x), _LIU_SLOPE)
    y = tf.keras.layers.Conv2D(filters, 3, padding="same")(y)
    return tf.keras.layers.Add()([x, y])


@gin.configurable(module="tfdplc.nets")
def liu_two_branch_decoder(
    latent_dim: int, task: str = SUPER_RESOLUTION, name: str = "liu_two_branch_decoder"
):
    """Decoder1 / Decoder2 of the two-branch model of Liu et al. (Table 13 super-res., Table 15 denoising).

    Super-resolution (Table 13): the end-to-end decoder without BatchNorm in the last layer.
    Denoising (Table 15): Linear(128)-BN-lReLU, Linear(512)-BN-lReLU, Unflatten, ConvT-lReLU, then
    (ResBlock, ConvT-lReLU) twice and ResBlock, ConvT-sigmoid, with the transposed convolutions of
    `liu_decoder` (64 -> 108 -> 128 -> 3 channels, 4 -> 11 -> 25 -> 29 -> 32) and no BatchNorm after them.
    The paper only says a ResBlock is "two Conv2D and skip connection"; we use 3x3 convolutions keeping
    the channel count with a leaky ReLU between them: x + conv(lReLU(conv(x))).

    Args:
      latent_dim: code length.
      task: "super_resolution" or "denoising".
      name: model name (build Decoder1 and Decoder2 with distinct names).

    Returns:
      A functional `tf.keras.Model`: (B, latent_dim) -> images in [0, 1].

    Raises:
      ValueError: on an unknown task or a non-positive latent_dim.
    """
    check_positive_int(latent_dim, "latent_dim")
    _check_task(task)
    if task == SUPER_RESOLUTION:
        return liu_decoder(latent_dim, task, last_batch_norm=False, name=name)
    code, x = _liu_expand(latent_dim)
    plan = _liu_upsampling_plan(task)
    for index, (filters, kernel, stride) in enumerate(plan):
        if index > 0:
            x = _liu_residual_block(x)
        x = tf.keras.layers.Conv2DTranspose(filters, kernel, stride, padding="valid")(x)
        x = tf.keras.layers.Activation("sigmoid")(x) if index == len(plan) - 1 else _leaky(x, _LIU_SLOPE)
    return tf.keras.Model(code, x, name=name)


@gin.configurable(module="tfdplc.nets")
def liu_critic(task: str = SUPER_RESOLUTION, width: int = 64, name: str = "liu_critic"):
    """Critic h of Liu et al. (Tables 12-15): three Conv2D-lReLU, then Linear(1).

    The convolutions are 5x5, stride 2, with width, 2*width, 4*width filters (64-128-256 in the authors'
    code), so both tasks end on a 4x4 map. No normalisation (WGAN-GP critic).

    Args:
      task: "super_resolution" (28x28x1 input) or "denoising" (32x32x3 input).
      width: first-layer filters.
      name: model name.

    Returns:
      A functional `tf.keras.Model`: images -> scores (B, 1).

    Raises:
      ValueError: on an unknown task or a non-positive width.
    """
    _check_task(task)
    check_positive_int(width, "width")
    images = tf.keras.Input(_TASK_SHAPES[task], name="images")
    x = images
    for multiple in (1, 2, 4):
        x = _leaky(tf.keras.layers.Conv2D(multiple * width, 5, 2, padding="same")(x), _LIU_SLOPE)
    scores = tf.keras.layers.Dense(1)(tf.keras.layers.Flatten()(x))
    return tf.keras.Model(images, scores, name=name)


# ----------------------------------------------------------------------------------------------- Yan et al.


def _yan_init():
    # normal_init(0, 0.02) of the authors' code, one instance per layer.
    return tf.keras.initializers.RandomNormal(stddev=0.02)


def _yan_conv_bn_relu(x, filters, kernel, stride, padding="same"):
    x = tf.keras.layers.Conv2D(
        filters, kernel, stride, padding=padding, use_bias=False, kernel_initializer=_yan_init()
    )(x)
    return tf.keras.layers.ReLU()(tf.keras.layers.BatchNormalization()(x))


def _yan_upconv_bn_relu(x, filters, kernel, stride, padding="same"):
    x = tf.keras.layers.Conv2DTranspose(
        filters, kernel, stride, padding=padding, use_bias=False, kernel_initializer=_yan_init()
    )(x)
    return tf.keras.layers.ReLU()(tf.keras.layers.BatchNormalization()(x))


def _yan_upsampling_head(x, width):
    """1x1 map -> t4 4*width (4x4), t4s2 2*width (8x8), t4s2 width (16x16), t4s2 1 (32x32), sigmoid."""
    x = _yan_upconv_bn_relu(x, 4 * width, 4, 1, padding="valid")
    x = _yan_upconv_bn_relu(x, 2 * width, 4, 2)
    x = _yan_upconv_bn_relu(x, width, 4, 2)
    x = tf.keras.layers.Conv2DTranspose(1, 4, 2, padding="same", kernel_initializer=_yan_init())(x)
    return tf.keras.layers.Activation("sigmoid")(x)


@gin.configurable(module="tfdplc.nets")
def yan_encoder(d: int, width: int = 64, name: str = "yan_encoder"):
    """Encoder E of Yan et al. (Section 4): a 32x32x1 image -> d values in (-1, 1) before quantization.

    As in the authors' code: c4s2 width, c4s2 2*width, c4s2 4*width (32 -> 16 -> 8 -> 4), a 4x4 "valid"
    conv to width channels at 1x1 (each with batch norm and ReLU), then a 1x1 conv to d and tanh. The paper
    quantizes to binary values with a straight-through gradient (eq. 25); the caller applies the quantizer.

    Args:
      d: code length (bits per image with binary quantization).
      width: base filter count (64 for G1's encoder in the authors' MNIST run).
      name: model name.

    Returns:
      A functional `tf.keras.Model`: images (B, 32, 32, 1) -> (B, d) in (-1, 1).

    Raises:
      ValueError: on non-positive d or width.
    """
    check_positive_int(d, "d")
    check_positive_int(width, "width")
    images = tf.keras.Input(YAN_IMAGE_SHAPE, name="images")
    x = images
    for multiple in (1, 2, 4):
        x = _yan_conv_bn_relu(x, multiple * width, 4, 2)
    x = _yan_conv_bn_relu(x, width, 4, 1, padding="valid")
    x = tf.keras.layers.Conv2D(d, 1, activation="tanh", kernel_initializer=_yan_init())(x)
    code = tf.keras.layers.Flatten()(x)
    return tf.keras.Model(images, code, name=name)


@gin.configurable(module="tfdplc.nets")
def yan_decoder(d: int, width: int = 64, name: str = "yan_decoder"):
    """Decoder G1 of Yan et al. (trained on MSE): d code values -> a 32x32x1 image in [0, 1].

    As in the authors' code: the code as a 1x1 map, a 1x1 transposed conv to width channels, then t4 (4x4,
    4*width), t4s2 (2*width), t4s2 (width), t4s2 (1), with batch norm and ReLU after all but the last. The
    authors' output is linear (their data is in [0, 1]); we end with a sigmoid so outputs are in [0, 1].

    Args:
      d: code length.
      width: base filter count (64 in the authors' MNIST run).
      name: model name.

    Returns:
      A functional `tf.keras.Model`: (B, d) -> images (B, 32, 32, 1) in [0, 1].

    Raises:
      ValueError: on non-positive d or width.
    """
    check_positive_int(d, "d")
    check_positive_int(width, "width")
    code = tf.keras.Input((d,), name="code")
    x = tf.keras.layers.Reshape((1, 1, d))(code)
    x = _yan_upconv_bn_relu(x, width, 1, 1)
    return tf.keras.Model(code, _yan_upsampling_head(x, width), name=name)


@gin.configurable(module="tfdplc.nets")
def yan_generator(
    d: int,
    width: int = 32,
    noise_dim: Optional[int] = None,
    seed: Optional[int] = None,
    name: str = "yan_generator",
):
    """Perceptual decoder G2 of Yan et al.: d code entries plus Gaussian noise -> a 32x32x1 image in [0, 1].

    Section 4: "The input of G2 is a 100 x 1 vector, in which the first d elements are the output of E and
    the other elements are Gaussian noise"; with d = 0 G2 is a plain generator. The noise is appended by a
    `NoiseInput(noise_dim, "normal")`; the rest follows the authors' code: the 100-vector as a 1x1 map,
    t4 (4x4, 4*width), t4s2 (2*width), t4s2 (width) with batch norm and ReLU, t4s2 (1). The authors' output
    is linear; we end with a sigmoid so outputs are in [0, 1].

    Args:
      d: code length, >= 0.
      width: base filter count (32 in the authors' MNIST run).
      noise_dim: number of Gaussian noise entries; None gives 100 - d (the paper).
      seed: seed of the noise generator (None: non-deterministic).
      name: model name.

    Returns:
      A `tfdplc.layers.WithNoiseInput` model: `G2(code)` draws the noise, `G2(code, noise=n)` uses the
      (B, noise_dim) tensor n; code is (B, d).

    Raises:
      ValueError: on negative d, non-positive width/noise_dim, or d >= 100 with noise_dim None.
    """
    check_positive_int(d, "d", allow_zero=True)
    check_positive_int(width, "width")
    if noise_dim is None:
        if d >= 100:
            raise ValueError(f"yan_generator: noise_dim defaults to 100 - d, which needs d < 100; got d={d}.")
        noise_dim = 100 - d
    check_positive_int(noise_dim, "noise_dim")
    inputs = tf.keras.Input((d + noise_dim,), name="code_noise")
    x = tf.keras.layers.Reshape((1, 1, d + noise_dim))(inputs)
    trunk = tf.keras.Model(inputs, _yan_upsampling_head(x, width), name=f"{name}_trunk")
    model = WithNoiseInput(NoiseInput(noise_dim, "normal", seed=seed, name="noise"), trunk, name=name)
    model.build((None, d))
    return model


def _yan_image_features(images, width):
    """J's image branch: c4s2 width, 2*width, 4*width, a 4x4 "valid" conv to 8*width, leaky ReLU 0.2."""
    x = images
    for multiple in (1, 2, 4):
        x = tf.keras.layers.Conv2D(multiple * width, 4, 2, padding="same", kernel_initializer=_yan_init())(x)
        x = _leaky(x, _YAN_SLOPE)
    x = tf.keras.layers.Conv2D(8 * width, 4, padding="valid", kernel_initializer=_yan_init())(x)
    return tf.keras.layers.Flatten()(_leaky(x, _YAN_SLOPE))


@gin.configurable(module="tfdplc.nets")
def yan_critic(d: int, width: int = 16, name: str = "yan_critic"):
    """Conditional critic J(x, code) of Yan et al.: scores an image together with its code.

    Section 3.2: J "takes both the data and the bit stream Z as the input", so G2 must decode images
    consistent with the code. As in the authors' code: the image goes through c4s2 width, c4s2 2*width,
    c4s2 4*width and a 4x4 "valid" conv to 8*width (leaky ReLU 0.2, no normalisation, as WGAN-GP needs);
    the code through a dense layer to 8*width (their 1x1 conv on a 1x1 map) with leaky ReLU; the two are
    concatenated and mapped by dense 4*width (leaky ReLU) and dense 1. d = 0 gives an unconditional critic
    (the code input is then (B, 0)).

    Args:
      d: code length, >= 0.
      width: base filter count (16 in the authors' MNIST run).
      name: model name.

    Returns:
      A functional `tf.keras.Model` with inputs [images (B, 32, 32, 1), code (B, d)] -> scores (B, 1).

    Raises:
      ValueError: on negative d or non-positive width.
    """
    check_positive_int(d, "d", allow_zero=True)
    check_positive_int(width, "width")
    images = tf.keras.Input(YAN_IMAGE_SHAPE, name="images")
    code = tf.keras.Input((d,), name="code")
    x = _yan_image_features(images, width)
    y = _leaky(tf.keras.layers.Dense(8 * width, kernel_initializer=_yan_init())(code), _YAN_SLOPE)
    x = tf.keras.layers.Concatenate()([x, y])
    x = _leaky(tf.keras.layers.Dense(4 * width, kernel_initializer=_yan_init())(x), _YAN_SLOPE)
    scores = tf.keras.layers.Dense(1, kernel_initializer=_yan_init())(x)
    return tf.keras.Model([images, code], scores, name=name)


@gin.configurable(module="tfdplc.nets")
def yan_projection_critic(d: int, width: int = 16, name: str = "yan_projection_critic"):
    """A projection-conditioned critic J(x, code) (Miyato & Koyama 2018); not in Yan et al. (issue 26).

    Miyato & Koyama, "cGANs with projection discriminator", ICLR 2018.

    J(x, c) = psi(phi(x)) + <V c, phi(x)>, with phi(x) features of the image alone, psi a linear map to one
    score and V c a linear embedding of the code (Miyato & Koyama embed a one-hot class label y as V^T y; a
    code of d entries in {-1, 1} is embedded by the same kind of linear map). The code acts only through
    the inner product with the image's features, instead of through layers shared with the image as in
    the concatenating `yan_critic`. Layers: `yan_critic`'s image branch (to 8*width features) and a dense
    4*width with leaky ReLU 0.2 give phi (4*width features); psi is dense 1 with a bias; V is dense
    4*width without a bias. No normalisation (WGAN-GP critic).

    Args:
      d: code length, >= 1.
      width: base filter count (16 as `yan_critic` in the authors' MNIST run).
      name: model name.

    Returns:
      A functional `tf.keras.Model` with inputs [images (B, 32, 32, 1), code (B, d)] -> scores (B, 1).

    Raises:
      ValueError: on non-positive d or width.
    """
    check_positive_int(d, "d")
    check_positive_int(width, "width")
    images = tf.keras.Input(YAN_IMAGE_SHAPE, name="images")
    code = tf.keras.Input((d,), name="code")
    x = _yan_image_features(images, width)
    features = _leaky(
        tf.keras.layers.Dense(4 * width, kernel_initializer=_yan_init(), name="phi")(x), _YAN_SLOPE
    )
    unconditional = tf.keras.layers.Dense(1, kernel_initializer=_yan_init(), name="psi")(features)
    embedded = tf.keras.layers.Dense(4 * width, use_bias=False, kernel_initializer=_yan_init(), name="embed")(
        code
    )
    projection = tf.keras.layers.Dot(axes=1, name="projection")([embedded, features])
    scores = tf.keras.layers.Add()([unconditional, projection])
    return tf.keras.Model([images, code], scores, name=name)
