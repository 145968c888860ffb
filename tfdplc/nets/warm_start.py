"""A G2 with the layers of the MSE decoder G1 of Yan et al., and its warm start from G1 (not in the paper).

A remedy for a perceptual decoder G2 that stalls on the code-ignoring plateau: start G2 from the trained G1
(`tfdplc.objectives.PerceptualG2.warm_start`). The authors' G2 (`yan_generator`) shares no layer shape with
G1 (`yan_decoder`), so the warm start needs a G2 built from G1's layers, `g1_shaped_generator`.

`g1_shaped_generator` keeps the gin name it had in `tfdplc.objectives.perceptual`
(`@tfdplc.objectives.g1_shaped_generator()`), which configs and the config.gin of existing workdirs use;
both functions are still importable from there.
"""

from typing import Optional

import gin
import tensorflow as tf

from tfdplc.layers.noise import NoiseInput, WithNoiseInput
from tfdplc.nets._checks import check_positive_int
from tfdplc.nets.mnist import yan_decoder

__all__ = ["g1_shaped_generator", "warm_start_from_g1"]


@gin.configurable(module="tfdplc.objectives")
def g1_shaped_generator(
    d: int,
    width: int = 64,
    noise_dim: Optional[int] = None,
    seed: Optional[int] = None,
    name: str = "g1_shaped_generator",
) -> WithNoiseInput:
    """A G2 with G1's layers, so that it can be warm-started from G1 (`warm_start_from_g1`). Not in the paper.

    `tfdplc.nets.yan_generator` (the authors' G2) feeds [code, noise] straight into a 4x4 transposed
    convolution, while G1 (`tfdplc.nets.yan_decoder`) first maps the code by a 1x1 transposed convolution
    with batch norm and ReLU; the two share no layer shape, and G1's first layer cannot be folded into G2's
    (a batch norm and a ReLU lie between). This G2 is `yan_decoder(d + noise_dim, width)` behind a Gaussian
    `NoiseInput`: the same layers as G1 of the same width, its first layer taking [code, noise].

    Args:
      d: code length.
      width: base filter count; G1's (64 in gin/perceptual_g1_mnist5k.gin) for a warm start.
      noise_dim: Gaussian noise entries; None gives 100 - d (Section 4's 100 inputs).
      seed: seed of the noise generator (None: non-deterministic).
      name: model name.

    Returns:
      A `WithNoiseInput` model: (B, d) codes [+ (B, noise_dim) noise] -> images (B, 32, 32, 1) in [0, 1].

    Raises:
      ValueError: on a non-positive d, width or noise_dim, or d >= 100 with noise_dim None.
    """
    check_positive_int(d, "g1_shaped_generator: d")
    if noise_dim is None:
        if d >= 100:
            raise ValueError(
                f"g1_shaped_generator: noise_dim defaults to 100 - d, which needs d < 100; got d={d}."
            )
        noise_dim = 100 - d
    check_positive_int(noise_dim, "g1_shaped_generator: noise_dim")
    trunk = yan_decoder(d + noise_dim, width=width, name=f"{name}_trunk")
    model = WithNoiseInput(NoiseInput(noise_dim, "normal", seed=seed, name="noise"), trunk, name=name)
    model.build((None, d))
    return model


def _weighted_layers(model: tf.keras.Model):
    return [layer for layer in model.layers if layer.weights]


def warm_start_from_g1(generator: WithNoiseInput, g1: tf.keras.Model) -> None:
    """Copies G1's weights into G2 (a warm start; not in the paper, issue 26).

    The layers with weights are paired in order; each pair must be of one type. Every weight of the same
    shape is copied (kernels, biases, batch-norm scales, offsets and moving statistics). The one exception
    is G2's first layer, which takes [code, noise] where G1's takes the code: its kernel's input axis (the
    last axis of a `Conv2DTranspose` kernel) holds the d code rows, copied from G1, then the noise rows,
    which keep the values the layer's initializer drew when G2 was built (N(0, 0.02) in the Yan networks).
    With zero noise and batch norm in inference mode, G2 then computes what G1 computes (up to float
    rounding in its first layer's longer sums).

    Args:
      generator: G2 with G1's layers (`g1_shaped_generator`), built.
      g1: the stage-1 decoder G1 (`load_mse_decoder`).

    Raises:
      ValueError: if the two networks do not have the same layers, or a weight shape other than the
        first layer's input axis differs.
    """
    if not isinstance(generator, WithNoiseInput):
        raise ValueError("warm_start_from_g1: G2 must be a WithNoiseInput model (g1_shaped_generator).")
    noise_dim = generator.noise_layer.m
    mine, theirs = _weighted_layers(generator.trunk), _weighted_layers(g1)
    hint = (
        "a warm start needs a G2 with G1's layers and width: PerceptualG2.generator = "
        "@tfdplc.objectives.g1_shaped_generator() with g1_shaped_generator.width = G1's yan_decoder.width"
    )
    if len(mine) != len(theirs):
        raise ValueError(
            f"warm_start_from_g1: G2 has {len(mine)} layers with weights, G1 {len(theirs)}: {hint}."
        )
    for index, (target, source) in enumerate(zip(mine, theirs)):
        if type(target) is not type(source) or len(target.weights) != len(source.weights):
            raise ValueError(
                f"warm_start_from_g1: layer {index} is {type(target).__name__} in G2 but "
                f"{type(source).__name__} in G1: {hint}."
            )
        for variable, value in zip(target.weights, source.weights):
            if variable.shape == value.shape:
                variable.assign(value)
            elif (
                index == 0
                and variable.shape[:-1] == value.shape[:-1]
                and (variable.shape[-1] == value.shape[-1] + noise_dim)
            ):
                code_rows = value.shape[-1]  # the code comes first: NoiseInput appends the noise
                variable.assign(tf.concat([value, variable[..., code_rows:]], axis=-1))
            else:
                raise ValueError(
                    f"warm_start_from_g1: weight {variable.name} of layer {index} has shape "
                    f"{variable.shape} in G2 but {value.shape} in G1: {hint}."
                )
