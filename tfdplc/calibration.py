"""Gradient balance of the DPLC-family objectives and DAL: each regularizer's pull against the distortion's.

A constant such as gamma (Wasserstein++), lambda (GC) or lambda_MMD (WAE, Wasserstein++, DPLC stage 2) sets
how hard a regularizer pulls relative to the distortion; how hard depends on the scale convention of the
losses (`tfdplc.losses`, DESIGN.md "Scales"). `gradient_ratios` measures it on one batch, as the ratio of
the norms of the two weighted terms' gradients with respect to the tensor they share:

- adversarial (GC, Wasserstein++): w.r.t. the decoded images x^ (the generator step's input to both the
  distortion and the critic): ||grad_x^ w_adv L_adv|| / ||grad_x^ w_d L_d||, with (w_d, w_adv) =
  (1, lambda) for GC (eq. 3) and DAL (Yan et al. eq. 5, with its per-pixel MSE) and (1 - gamma, gamma) for
  Wasserstein++ (Algorithm 1 line 18);
- MMD (WAE, Wasserstein++, DPLC): w.r.t. the codes the MMD sees (F(x), or B(E(x)) in stage 2):
  ||grad_z lambda_MMD L_MMD|| / ||grad_z L_d|| (line 19; eq. 8).

Norms are over the whole batch tensor. Both terms' per-image gradients scale as 1/b, so the ratios do not
depend on the batch size beyond sampling noise. It also reports the critic's mean per-image input-gradient
norm at x^ (w.r.t. [0, 1] images), which the per-pixel penalty lets grow far above 1.
"""

from typing import Dict

import tensorflow as tf

from tfdplc import losses
from tfdplc.objectives.cae import CAE
from tfdplc.objectives.dal import DAL
from tfdplc.objectives.dplc import DPLC
from tfdplc.objectives.gc import GC
from tfdplc.objectives.wae import WAE
from tfdplc.objectives.wasserstein_pp import WassersteinPP
from tfdplc.objectives.wgan_gp import WGANGP, split_critic_batches

__all__ = ["gradient_ratios", "regularizer_weights"]


def _norm(tensor: tf.Tensor) -> float:
    return float(tf.norm(tf.reshape(tensor, [-1])))


def _critic_gradient_norm(critic: tf.keras.Model, images: tf.Tensor) -> float:
    """Mean over the batch of ||grad_x f(x_i)|| over all pixels and channels, w.r.t. [0, 1] images."""
    grads = losses.critic_input_gradients(lambda x: critic(x, training=True), images)
    per_image = tf.norm(tf.reshape(grads, [tf.shape(grads)[0], -1]), axis=1)
    return float(tf.reduce_mean(per_image))


def regularizer_weights(model: tf.keras.Model) -> Dict[str, float]:
    """The objective's weights of its terms, by name (e.g. {"gamma": 2.5e-5, "lambda_mmd": 100})."""
    if isinstance(model, WassersteinPP):
        return {"gamma": model.gamma, "lambda_mmd": model.mmd_weight, "lambda_gp": model.gp_weight}
    if isinstance(model, GC):
        return {"lambda_gc": model.lambda_wd, "lambda_gp": model.gp_weight}
    if isinstance(model, WAE):
        return {"lambda_mmd": model.mmd_weight}
    if isinstance(model, DPLC):
        return {"lambda_mmd": model.lambda_mmd}
    if isinstance(model, WGANGP):
        return {"lambda_gp": model.gp_weight}
    if isinstance(model, DAL):
        return {"lambda_adv": model.lambda_adv, "lambda_gp": model.gp_weight}
    return {}


def _mmd_terms(model, real, codes, prior, decode) -> Dict[str, float]:
    """||grad_z lambda MMD|| / ||grad_z L_d|| at the codes z (and the distortion value)."""
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(codes)
        distortion = model.distortion(real, decode(codes))
        mmd = losses.mmd_imq(prior, codes)
    weight = regularizer_weights(model)["lambda_mmd"]
    d_grad = _norm(tape.gradient(distortion, codes))
    m_grad = _norm(tape.gradient(mmd, codes))
    return {"distortion": float(distortion), "mmd": float(mmd), "mmd_ratio": weight * m_grad / d_grad}


def _adversarial_terms(
    model, real, decoded, w_distortion, w_adversarial, distortion_fn=None, critic=None
) -> Dict[str, float]:
    """||grad_x^ w_adv L_WGAN|| / ||grad_x^ w_d L_d|| at the decoded images x^.

    `distortion_fn` and `critic` default to the model's `distortion` and `critic`.
    """
    distortion_fn = distortion_fn or model.distortion
    critic = critic or model.critic
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(decoded)
        distortion = distortion_fn(real, decoded)
        adversarial = losses.generator_loss(critic(decoded, training=True))
    d_grad = _norm(tape.gradient(distortion, decoded))
    a_grad = _norm(tape.gradient(adversarial, decoded))
    return {
        "distortion": float(distortion),
        "adversarial_ratio": w_adversarial * a_grad / (w_distortion * d_grad),
        "critic_grad": _critic_gradient_norm(critic, decoded),
    }


def gradient_ratios(model: tf.keras.Model, images: tf.Tensor) -> Dict[str, float]:
    """Measures the balance of one batch's loss terms, with the networks in training mode.

    Args:
      model: a built CAE, WAE, WGANGP, WassersteinPP, DPLC, GC or DAL objective.
      images: one input batch as `train_step` receives it (n_critic * b images for the objectives with a
        critic: the generator step's last mini-batch is used, as in Algorithm 1).

    Returns:
      A dict with, where they apply: "distortion" (L_d), "mmd" (L_MMD), "adversarial_ratio",
      "mmd_ratio" (see the module docstring) and "critic_grad" (the critic's mean per-image input-gradient
      norm at x^; at G(z) for WGAN-GP).

    Raises:
      TypeError: for another objective.
    """
    images = tf.convert_to_tensor(images)
    if isinstance(model, WassersteinPP):
        real = split_critic_batches(images, model.n_critic)[-1]
        codes = model.encoder(real, training=True)
        prior = model.sample_prior(tf.shape(real)[0])
        decoded = model.generator(codes, training=True)
        result = _adversarial_terms(model, real, decoded, 1.0 - model.gamma, model.gamma)
        result.update(_mmd_terms(model, real, codes, prior, lambda z: model.generator(z, training=True)))
        return result
    if isinstance(model, GC):
        real = split_critic_batches(images, model.n_critic)[-1]
        return _adversarial_terms(model, real, model(real, training=True), 1.0, model.lambda_wd)
    if isinstance(model, WAE):
        codes = model.encoder(images, training=True)
        prior = model.sample_prior(tf.shape(images)[0])
        return _mmd_terms(model, images, codes, prior, lambda z: model.generator(z, training=True))
    if isinstance(model, DPLC):
        batch = tf.shape(images)[0]
        codes = model.latents(model.encode(images, training=True), model.sample_noise(batch), training=True)
        prior = model.sample_prior(batch)
        return _mmd_terms(model, images, codes, prior, lambda z: model.generator(z, training=False))
    if isinstance(model, WGANGP):
        real = split_critic_batches(images, model.n_critic)[-1]
        samples = model.generator(model.sample_prior(tf.shape(real)[0]), training=True)
        return {"critic_grad": _critic_gradient_norm(model.critic, samples)}
    if isinstance(model, DAL):
        # Yan et al. eq. 5: L = MSE + lambda L_adv, both at the reconstructions G(E(x)) of the last mini-batch.
        real = split_critic_batches(images, model.n_critic)[-1]
        decoded = model(real, training=True)
        return _adversarial_terms(
            model, real, decoded, 1.0, model.lambda_adv, losses.squared_error, model.image_critic
        )
    if isinstance(model, CAE):
        return {"distortion": float(model.distortion(images, model(images, training=True)))}
    raise TypeError(f"gradient_ratios: no balance defined for {type(model).__name__}.")
