"""Tiny objectives of the DPLC and perceptual families, shared by the resume and ratio-curve tests.

`build(name)` gives a seeded-by-the-caller objective small enough to train a few steps in seconds; its
E, F and B have batch norm and its critics are non-linear, so a test can tell a wrong term or a lost
state from the right one.
"""

import tensorflow as tf

from tfdplc import nets
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import CAE, DAL, DPLC, GC, WAE, WGANGP, PerceptualG2, PerceptualJoint, WassersteinPP

M = 8  # latent size of the DPLC-family nets
D = 4  # code length of the perceptual nets


def _adam():
    return tf.keras.optimizers.Adam(1e-3)


def _scaled(model, factor=20.0):
    """Scales the kernels: with N(0, 0.02) weights a tiny Yan network's output barely depends on its input."""
    for layer in model.submodules:
        if isinstance(layer, tf.keras.layers.Layer) and hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * factor)
    return model


def build(name, n_critic=2, pretrain_steps=3):
    """(objective, batch size) of a tiny objective; the caller sets the global seed first.

    Args:
      name: one of NAMES.
      n_critic: critic updates per step of the adversarial objectives.
      pretrain_steps: G2's and the joint objective's critic pre-training steps.
    """
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
