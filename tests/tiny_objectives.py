"""Tiny objectives of the DPLC, perceptual and shift families, shared by the resume and ratio-curve tests.

`build(name)` gives a seeded-by-the-caller objective small enough to train a few steps in seconds; its
E, F and B have batch norm and its critics are non-linear, so a test can tell a wrong term or a lost
state from the right one. The shift objectives (`SHIFT_NAMES`) train on (degraded, clean) pairs of
`image_shape(name)` images (8x8: their nets are built here, not Liu et al.'s 28x28 ones); the others on
32x32x1 images.
"""

import tensorflow as tf

from tfdplc import nets
from tfdplc.layers import UniversalBottleneck, UniversalQuantizer
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import (
    CAE,
    DAL,
    DPLC,
    GC,
    WAE,
    WGANGP,
    PerceptualG2,
    PerceptualJoint,
    Restoration,
    ShiftCompression,
    ShiftDecomposition,
    WassersteinPP,
)

M = 8  # latent size of the DPLC-family nets
D = 4  # code length of the perceptual nets
S, K = 8, 3  # image side and code length of the shift nets
#: The shift family: fixed rate with and without common randomness (eq. 14 / 16), variable rate, the
#: separate baseline's restoration stage (eq. 70) and the two-branch decomposition (eq. 18, own targets).
SHIFT_NAMES = ("shift_cr", "shift_ncr", "shift_vr", "restoration", "decomposition")


def image_shape(name):
    """(H, W, C) of the images `build(name)`'s objective trains on."""
    return (S, S, 1) if name in SHIFT_NAMES else (32, 32, 1)


def paired(name):
    """Whether the objective trains on (degraded, clean) pairs."""
    return name in SHIFT_NAMES


def _leaky(x):
    return tf.keras.layers.LeakyReLU(0.2)(x)


def _shift_encoder():
    images = tf.keras.Input((S, S, 1))
    x = _leaky(tf.keras.layers.Conv2D(4, 3, 2, padding="same")(images))
    x = _leaky(tf.keras.layers.Dense(8)(tf.keras.layers.Flatten()(x)))
    return tf.keras.Model(images, tf.keras.layers.Dense(K, activation="tanh")(x))


def _shift_decoder(name="decoder"):
    """(B, K) -> (B, S, S, 1) in [0, 1], with batch norm (a lost moving statistic shows)."""
    code = tf.keras.Input((K,))
    x = _leaky(tf.keras.layers.BatchNormalization()(tf.keras.layers.Dense(16, use_bias=False)(code)))
    x = tf.keras.layers.Dense(S * S, activation="sigmoid")(x)
    return tf.keras.Model(code, tf.keras.layers.Reshape((S, S, 1))(x), name=name)


def _restoration_network():
    """R: (B, S, S, 1) -> (B, S, S, 1) in [0, 1], with batch norm."""
    images = tf.keras.Input((S, S, 1))
    x = _leaky(tf.keras.layers.BatchNormalization()(tf.keras.layers.Conv2D(4, 3, padding="same")(images)))
    return tf.keras.Model(images, tf.keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x))


def _shift_critic():
    images = tf.keras.Input((S, S, 1))
    x = _leaky(tf.keras.layers.Conv2D(4, 3, 2, padding="same")(images))
    return tf.keras.Model(images, tf.keras.layers.Dense(1)(tf.keras.layers.Flatten()(x)))


def _shift(quantizer, n_critic, **kwargs):
    return ShiftCompression(encoder=_shift_encoder(), decoder=_shift_decoder(), critic=_shift_critic(),
                            quantizer=quantizer, optimizer=_adam(), critic_optimizer=_adam(), lambda_wd=0.5,
                            n_critic=n_critic, **kwargs)  # fmt: skip


def write_shift_source(directory):
    """Writes a finished tiny fixed-rate run without common randomness (the decomposition's source).

    Args:
      directory: the workdir to write `save_artifacts`' files into (exists).
    """
    model = _shift(UniversalQuantizer(levels=4, common_randomness=False, seed=5), n_critic=1)
    model(tf.zeros((1, S, S, 1)))
    model.save_artifacts(str(directory))


def _adam():
    return tf.keras.optimizers.Adam(1e-3)


def _scaled(model, factor=20.0):
    """Scales the kernels: with N(0, 0.02) weights a tiny Yan network's output barely depends on its input."""
    for layer in model.submodules:
        if isinstance(layer, tf.keras.layers.Layer) and hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * factor)
    return model


def build(name, n_critic=2, pretrain_steps=3, source_workdir=None):
    """(objective, batch size) of a tiny objective; the caller sets the global seed first.

    Args:
      name: an objective: cae, wae, wgan_gp, wpp, dplc, gc, dal, g2, joint, or one of SHIFT_NAMES.
      n_critic: critic updates per step of the adversarial objectives.
      pretrain_steps: G2's and the joint objective's critic pre-training steps.
      source_workdir: the decomposition's source (`write_shift_source`).
    """
    # Quantizer seeds left None (non-deterministic, as a config without one): only a restored state can
    # make a resumed run equal the straight one. Batch 8 = 2 * n_critic * 2 pairs (`split_unpaired`).
    if name in ("shift_cr", "shift_ncr"):
        return _shift(UniversalQuantizer(levels=4, common_randomness=name == "shift_cr"), n_critic), 8
    if name == "shift_vr":
        return _shift(UniversalBottleneck(), n_critic, rate_weight=0.1, code_scale=2.0), 8
    if name == "restoration":
        return Restoration(network=_restoration_network(), critic=_shift_critic(),
                           optimizer=_adam(), critic_optimizer=_adam(), lambda_wd=0.5,
                           n_critic=n_critic), 8  # fmt: skip
    if name == "decomposition":
        if source_workdir is None:
            raise ValueError("The decomposition needs source_workdir (write_shift_source).")
        return ShiftDecomposition(source_workdir=str(source_workdir), decoder1=_shift_decoder("g1"),
                                  decoder2=_shift_decoder("g2"), optimizer=_adam()), 4  # fmt: skip
    dcgan = dict(width=4, channels=1)
    quantizer = ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard")
    if name == "cae":
        model = CAE(nets.encoder_E(32, 2, **dcgan), nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=False),
                    nets.generator_G(32, m=M, **dcgan), quantizer, _adam())  # fmt: skip
        return model, 4
    if name == "wae":
        return WAE(nets.encoder_F(32, M, **dcgan), nets.generator_G(32, M, **dcgan), _adam(), _adam()), 4
    if name == "wgan_gp":
        model = WGANGP(
            nets.generator_G(32, M, **dcgan), nets.critic_f(32, **dcgan), _adam(), _adam(), n_critic=n_critic
        )
        return model, 8
    if name == "wpp":
        model = WassersteinPP(nets.encoder_F(32, M, **dcgan), nets.generator_G(32, M, **dcgan),
                              nets.critic_f(32, **dcgan), _adam(), _adam(), _adam(), gamma=0.5,
                              n_critic=n_critic)  # fmt: skip
        return model, 8
    if name == "dplc":
        model = DPLC(encoder=nets.encoder_E(32, 2, **dcgan),
                     mapping=nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=True, seed=1),
                     quantizer=quantizer, optimizer=_adam(), lambda_mmd=10.0,
                     generator=nets.generator_G(32, m=M, **dcgan))  # fmt: skip
        return model, 4
    if name == "gc":
        model = GC(encoder=nets.encoder_E(32, 2, **dcgan),
                   mapping=nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=True, seed=1),
                   generator=nets.generator_G(32, m=M, **dcgan), critic=nets.critic_f(32, **dcgan),
                   quantizer=quantizer, optimizer=_adam(), critic_optimizer=_adam(), lambda_wd=0.5,
                   n_critic=n_critic)  # fmt: skip
        return model, 8
    yan = dict(width=4)
    binary = ScalarQuantizer((-1.0, 1.0), gradient="straight_through")
    if name == "dal":
        model = DAL(encoder=_scaled(nets.yan_encoder(D, **yan)), decoder=nets.yan_decoder(D, **yan),
                    critic=_scaled(nets.yan_critic(1, **yan), 5.0), quantizer=binary, optimizer=_adam(),
                    critic_optimizer=_adam(), lambda_adv=5.0, n_critic=n_critic)  # fmt: skip
        return model, 8
    if name in ("g2", "joint"):
        # Pre-training for 3 steps: the stop falls inside it, so shuffles are drawn on both sides of it,
        # and step 4 is adversarial.
        common = dict(generator=_scaled(nets.yan_generator(D, seed=1, **yan)),
                      critic=_scaled(nets.yan_critic(D, **yan), 5.0), quantizer=binary,
                      generator_optimizer=_adam(), critic_optimizer=_adam(), n_critic=n_critic,
                      pretrain_steps=pretrain_steps)  # fmt: skip
        encoder = _scaled(nets.yan_encoder(D, **yan))
        if name == "g2":
            return PerceptualG2(encoder=encoder, **common), 8
        return PerceptualJoint(
            encoder=encoder, decoder=nets.yan_decoder(D, **yan), optimizer=_adam(), **common
        ), 8
    raise ValueError(name)
