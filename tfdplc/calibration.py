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

With a `seed`, every random input of the measurement (the prior samples the MMD compares with, B's noise)
is drawn statelessly from it, so the measurement advances none of the objective's or the networks' random
generators; `measure_gradient_ratios` also puts back the batch-norm moving statistics that the
training-mode forward passes update, so measuring during a run leaves the run as it was
(`tfdplc.train.ratio_curve`).
"""

from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfdplc import losses
from tfdplc.deployed import preserved_variables
from tfdplc.objectives.cae import CAE
from tfdplc.objectives.dal import DAL
from tfdplc.objectives.dplc import DPLC
from tfdplc.objectives.gc import GC
from tfdplc.objectives.wae import WAE
from tfdplc.objectives.wasserstein_pp import WassersteinPP
from tfdplc.objectives.wgan_gp import WGANGP, split_critic_batches

__all__ = ["CURVE_KEYS", "MEASURABLE", "gradient_ratios", "measure_gradient_ratios", "regularizer_weights"]

#: The values of `gradient_ratios`, in the order tables and curves show them.
CURVE_KEYS = ("adversarial_ratio", "mmd_ratio", "critic_grad", "distortion", "mmd")

#: The objectives `gradient_ratios` measures (what applies to each: see its Returns).
MEASURABLE = (WassersteinPP, GC, WAE, DPLC, WGANGP, DAL, CAE)


def _norm(tensor: tf.Tensor) -> float:
    return float(tf.norm(tf.reshape(tensor, [-1])))


def _prior(model, n, seed) -> tf.Tensor:
    """(n, m) samples of P_Z = N(0, I_m): from `seed` (stateless), or from the objective's generator."""
    if seed is None:
        return model.sample_prior(n)
    return tf.random.stateless_normal(tf.stack([tf.cast(n, tf.int32), model.latent_dim]), seed=seed)


def _noise(model, n, seed) -> Optional[tf.Tensor]:
    """B's (n, m) noise with its layer's distribution from `seed`; None (B draws its own) without a seed."""
    if seed is None:
        return None
    layer = model.mapping.noise_layer
    shape = tf.stack([tf.cast(n, tf.int32), layer.m])
    if layer.distribution == "uniform":
        return tf.random.stateless_uniform(shape, seed=seed)
    return tf.random.stateless_normal(shape, seed=seed)


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


def gradient_ratios(
    model: tf.keras.Model, images: tf.Tensor, seed: Optional[Sequence[int]] = None
) -> Dict[str, float]:
    """Measures the balance of one batch's loss terms, with the networks in training mode.

    The networks run as the objective's training step runs them: in training mode (batch statistics),
    except DPLC's E and B with `batch_statistics=False`, which its step runs in inference mode too.

    Args:
      model: a built CAE, WAE, WGANGP, WassersteinPP, DPLC, GC or DAL objective.
      images: one input batch as `train_step` receives it (n_critic * b images for the objectives with a
        critic: the generator step's last mini-batch is used, as in Algorithm 1).
      seed: an optional stateless seed (shape [2]) of the measurement's random inputs: the prior samples
        are `tf.random.stateless_normal((b, m), s1)` and B's noise (DPLC, GC) has its noise layer's
        distribution drawn with `s2`, where (s1, s2) = `tf.random.experimental.stateless_split(seed, 2)`.
        None draws them from the objective's and B's own generators (advancing them).

    Returns:
      A dict with, where they apply: "distortion" (L_d), "mmd" (L_MMD), "adversarial_ratio",
      "mmd_ratio" (see the module docstring) and "critic_grad" (the critic's mean per-image input-gradient
      norm at x^; at G(z) for WGAN-GP).

    Raises:
      TypeError: for another objective.
    """
    images = tf.convert_to_tensor(images)
    prior_seed = noise_seed = None
    if seed is not None:
        prior_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    if isinstance(model, WassersteinPP):
        real = split_critic_batches(images, model.n_critic)[-1]
        codes = model.float32(model.encoder(real, training=True))
        decoded = model.float32(model.generator(codes, training=True))
        result = _adversarial_terms(model, real, decoded, 1.0 - model.gamma, model.gamma)
        prior = _prior(model, tf.shape(real)[0], prior_seed)
        result.update(_mmd_terms(model, real, codes, prior, lambda z: model.generator(z, training=True)))
        return result
    if isinstance(model, GC):
        real = split_critic_batches(images, model.n_critic)[-1]
        noise = _noise(model, tf.shape(real)[0], noise_seed)
        decoded = model.decode(model.encode(real, training=True), noise=noise, training=True)
        return _adversarial_terms(model, real, decoded, 1.0, model.lambda_wd)
    if isinstance(model, WAE):
        codes = model.float32(model.encoder(images, training=True))
        prior = _prior(model, tf.shape(images)[0], prior_seed)
        return _mmd_terms(model, images, codes, prior, lambda z: model.generator(z, training=True))
    if isinstance(model, DPLC):
        batch = tf.shape(images)[0]
        # As DPLC.compute_losses: E and B in training mode only with batch statistics; the quantizer in
        # training mode always.
        networks_training = model.batch_statistics
        code = model.quantizer(model.encoder(images, training=networks_training), training=True)
        noise = _noise(model, batch, noise_seed)
        if noise is None:
            noise = model.sample_noise(batch)
        codes = model.latents(code, noise, training=networks_training)
        prior = _prior(model, batch, prior_seed)
        return _mmd_terms(model, images, codes, prior, lambda z: model.generator(z, training=False))
    if isinstance(model, WGANGP):
        real = split_critic_batches(images, model.n_critic)[-1]
        samples = model.generator(_prior(model, tf.shape(real)[0], prior_seed), training=True)
        return {"critic_grad": _critic_gradient_norm(model.critic, model.float32(samples))}
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


def measure_gradient_ratios(
    model: tf.keras.Model, batches: Sequence[tf.Tensor], seed: int
) -> Dict[str, float]:
    """`gradient_ratios` averaged over batches, leaving every variable of the model as it was.

    Batch i is measured with the stateless seed (seed, i), so no random generator advances; the
    training-mode forward passes update batch-norm moving statistics, which are put back afterwards (every
    variable of `model.variables` is restored to its value before the call, by
    `tfdplc.deployed.preserved_variables`). Measuring between two
    training steps therefore leaves the training run unchanged.

    Args:
      model: a built objective of `MEASURABLE`.
      batches: input batches as `train_step` receives them.
      seed: the measurement's seed.

    Returns:
      The mean over the batches of each value `gradient_ratios` returns.

    Raises:
      ValueError: if `batches` is empty.
      TypeError: for an objective `gradient_ratios` does not measure.
    """
    if not batches:
        raise ValueError("measure_gradient_ratios needs at least one batch.")
    with preserved_variables(model):
        results = [gradient_ratios(model, images, seed=(seed, i)) for i, images in enumerate(batches)]
    return {key: float(np.mean([r[key] for r in results])) for key in results[0]}
