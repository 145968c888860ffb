"""The generative-compression (GC) baseline: eq. (3) of DPLC with d_f = W_d (Tschannen et al. 2018).

  min_{E, D} E[d(X, D(E(X)))] + lambda(R) * W_d(P_{D(E(X))}, P_X),   D = G o B with noise input,

as DPLC Section 5 trains it "as done in the generative compression (GC) approach from [15], but replacing
d_f by W_d". W_d is estimated in its dual form (eq. 5) by a critic f with the per-sample gradient penalty
of Gulrajani et al. (Algorithm 1 lines 8-13); E, B, G are trained jointly on
  L = 1/b sum_i ||x_i - x^_i|| + lambda(R) * (-1/b sum_i f(x^_i)),   x^_i = G(B(E(x_i))),
with the Wasserstein++ parameters of Table 2 (App. B: alpha 3e-4 for E/B/G, 1e-4 for f, beta 0.5/0.999,
b 256, 25k iterations, x0.4@15k;21k, n_critic 5, lambda_GP 10) and lambda(R) of App. B (see
`tfdplc.objectives.scaled_lambda`).
"""

from typing import Callable, Dict, Optional

import gin
import numpy as np
import tensorflow as tf

from tfdplc import losses
from tfdplc.codec.interface import CodecSpec, noise_layer_draw, quantized_code_spec
from tfdplc.layers.noise import WithNoiseInput
from tfdplc.objectives.base import Objective
from tfdplc.objectives.wgan_gp import objective_critic_update, repeat_critic_updates, split_critic_batches

__all__ = ["GC"]


@gin.configurable(module="tfdplc.objectives")
class GC(Objective):
    """G o B o E with a noisy B, trained jointly on distortion + lambda(R) * W_d (DPLC eq. 3, App. B).

    One `train_step` is one generator iteration of Algorithm 1's loop structure: n_critic critic updates,
    each on its own mini-batch of b images, then one update of E, B and G on the last of these
    mini-batches (Algorithm 1 lines 3-19 use the x_i of the last critic iteration too). Keras `fit` hands
    `train_step` one batch, so the input batch must hold n_critic * b images: it is split into n_critic
    mini-batches of b (set `input_pipeline.batch_size` to n_critic * b; per replica under a strategy).

    The fakes the critic sees are x^ = G(B(E(x))) with E, B, G in training mode (batch statistics, as the
    generator step sees them), detached from E, B, G. The critic's learning-rate schedule counts critic
    updates: scale its boundaries by n_critic (see `tfdplc.train.step_decay`).

    The decoder is stochastic (B's noise), so `decode` takes an optional explicit noise, as in `DPLC`.
    Randomness: B's noise comes from B's own noise layer (its generator is part of the model's checkpoint),
    the penalty's interpolation weights from the objective's `random_generator` (exact resume).
    """

    def __init__(
        self,
        encoder: tf.keras.Model = gin.REQUIRED,
        mapping: tf.keras.Model = gin.REQUIRED,
        generator: tf.keras.Model = gin.REQUIRED,
        critic: tf.keras.Model = gin.REQUIRED,
        quantizer: tf.keras.layers.Layer = gin.REQUIRED,
        optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        critic_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        lambda_wd: float = gin.REQUIRED,
        n_critic: int = 5,
        gp_weight: float = 10.0,
        distortion: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] = losses.euclidean_distance,
        gradient_penalty: Callable[..., tf.Tensor] = losses.gradient_penalty,
        name: Optional[str] = "gc",
    ):
        """Initialises the objective.

        Args:
          encoder: E, images -> unquantized code maps (B, h, w, k); k may be 0.
          mapping: B with its noise input (`mapping_B(noise=True)`, a `WithNoiseInput`): codes -> z (B, m).
          generator: G, z -> images in [0, 1] (trained jointly with E and B).
          critic: f, images -> scores (B, 1); no batch norm (the gradient penalty is per sample).
          quantizer: the fixed-codebook quantizer of E's output (exposes `bits_per_element`).
          optimizer: one optimizer for E, B and G.
          critic_optimizer: the critic's optimizer.
          lambda_wd: lambda(R), the weight of the W_d term (e.g. `@scaled_lambda()` in gin), >= 0.
          n_critic: critic updates per generator update (Table 2: 5).
          gp_weight: lambda_GP of the gradient penalty (Table 2: 10).
          distortion: d(x, x_hat) -> scalar; the paper uses the Euclidean distance.
          gradient_penalty: the critic's penalty function. With `distortion`, it fixes the scale
            convention (`tfdplc.losses`) in which lambda_wd means something: App. B's bases were tuned with
            the authors'-code pair (`batch_rmse_pm1`, `per_pixel_gradient_penalty`).
          name: Keras model name.

        Raises:
          ValueError: if B has no noise input, n_critic < 1, or lambda_wd / gp_weight is negative.
        """
        super().__init__(name=name)
        if not isinstance(mapping, WithNoiseInput):
            raise ValueError(
                "GC: B must take noise (mapping_B(noise=True)): eq. (3) uses a stochastic decoder."
            )
        if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
            raise ValueError(f"GC: n_critic must be a positive integer, got {n_critic!r}.")
        lambda_wd, gp_weight = float(lambda_wd), float(gp_weight)
        for value, label in ((lambda_wd, "lambda_wd"), (gp_weight, "gp_weight")):
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"GC: {label} must be non-negative and finite, got {value}.")
        self.encoder = encoder
        self.mapping = mapping
        self.generator = generator
        self.critic = critic
        self.quantizer = quantizer
        self.optimizer_ae = optimizer
        self.optimizer_critic = critic_optimizer
        self.lambda_wd = lambda_wd
        self.n_critic = n_critic
        self.gp_weight = gp_weight
        self.distortion = distortion
        self.gradient_penalty = gradient_penalty
        self.loss_tracker = tf.keras.metrics.Mean("loss")
        self.distortion_tracker = tf.keras.metrics.Mean("distortion")
        self.generator_loss_tracker = tf.keras.metrics.Mean("generator_loss")
        self.critic_loss_tracker = tf.keras.metrics.Mean("critic_loss")
        self.gp_tracker = tf.keras.metrics.Mean("gradient_penalty")
        self.mse_tracker = tf.keras.metrics.Mean("mse")

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        return {"autoencoder": self.optimizer_ae, "critic": self.optimizer_critic}

    @property
    def metrics(self):  # noqa: D102 - Keras resets these every epoch.
        return [
            self.loss_tracker,
            self.distortion_tracker,
            self.generator_loss_tracker,
            self.critic_loss_tracker,
            self.gp_tracker,
            self.mse_tracker,
        ]

    @property
    def rate_bits(self) -> float:  # noqa: D102
        return float(np.prod(self.encoder.output_shape[1:])) * self.quantizer.bits_per_element

    def sample_noise(self, n) -> tf.Tensor:
        """Draws B's (n, m) input noise from B's own noise layer (advances its state)."""
        return self.mapping.noise_layer.sample(n)

    def encode(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Images -> quantized code maps (B, h, w, k), values on the quantizer's centres."""
        return self.quantizer(self.encoder(images, training=training), training=training)

    def decode(self, code: tf.Tensor, noise: Optional[tf.Tensor] = None, training: bool = False) -> tf.Tensor:
        """Code maps -> images G(B(code, noise)) in [0, 1]; stochastic unless `noise` is given.

        Args:
          code: quantized code maps from `encode`.
          noise: optional (batch, m) noise of B; the same noise gives the same images.
          training: mode of B and G.

        Returns:
          The decoded images.
        """
        return self.float32(
            self.generator(self.mapping(code, noise=noise, training=training), training=training)
        )

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:  # noqa: D102
        return self.decode(self.encode(images, training=training), training=training)

    # Codec interface (tfdplc.codec.interface): real bitstreams and export.

    def codec_spec(self) -> CodecSpec:
        """Fixed-rate codes (indices of E's quantized output), a stochastic decoder (B's noise)."""
        return quantized_code_spec(self.encoder, self.quantizer, self.name, stochastic_decoder=True)

    def encode_codes(self, images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        """Images -> int32 centre indices (B, h, w, k) of the quantized code; `seeds` are unused."""
        del seeds  # E is deterministic.
        return self.quantizer.indices(self.encoder(images, training=False))

    def decode_codes(self, codes: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        """Centre indices -> images, B's noise drawn from each image's seed (stream DECODER_NOISE).

        The noise has B's own distribution (`NoiseInput.distribution`), so `decode_codes(c, s)` is one
        draw of the same decoder as `decode(dequantize(c))`, reproducible from the seed.
        """
        noise = noise_layer_draw(self.mapping.noise_layer, seeds)
        return self.decode(self.quantizer.dequantize(codes), noise=noise)

    def generator_losses(
        self, images: tf.Tensor, noise: Optional[tf.Tensor] = None, training: bool = False
    ) -> Dict[str, tf.Tensor]:
        """The objective of E, B, G in eq. (3) for one mini-batch.

        Args:
          images: (b, H, W, C) images.
          noise: optional (b, m) noise of B (drawn when None).
          training: mode of E, B, G.

        Returns:
          A dict with "loss" (= distortion + lambda_wd * generator_loss), "distortion", "generator_loss"
          (-1/b sum_i f(x^_i), Algorithm 1 line 17) and "reconstructions".
        """
        reconstructions = self.decode(self.encode(images, training=training), noise=noise, training=training)
        distortion = self.distortion(images, reconstructions)
        # Critic scores and losses stay float32 under a mixed-precision policy.
        generator_loss = losses.generator_loss(self.float32(self.critic(reconstructions, training=training)))
        return {
            "loss": distortion + self.lambda_wd * generator_loss,
            "distortion": distortion,
            "generator_loss": generator_loss,
            "reconstructions": reconstructions,
        }

    def _split(self, images: tf.Tensor) -> tf.Tensor:
        """(n_critic * b, ...) images -> (n_critic, b, ...) mini-batches (`split_critic_batches`).

        Raises:
          ValueError: if the (static) batch size is not a multiple of n_critic (checked at run time when the
            batch size is dynamic).
        """
        return split_critic_batches(images, self.n_critic)

    def critic_step(self, real: tf.Tensor) -> None:
        """One critic update on b real images and their reconstructions (Algorithm 1 lines 4-13).

        The shared WGAN critic step (`wgan_gp.critic_update`) with this objective's penalty function; the
        "critic_loss" metric is its Wasserstein part E f(x^) - E f(x), without the penalty.
        """
        fake = self(real, training=True)
        _, wasserstein, penalty = objective_critic_update(self, real, fake)
        self.critic_loss_tracker.update_state(-wasserstein)
        self.gp_tracker.update_state(penalty)

    def train_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = self.images_of(data)
        chunks = self._split(images)
        # The optimizers' slots must exist before the loop below (no variable creation inside a while loop).
        self.optimizer_critic.build(self.critic.trainable_variables)

        # n_critic critic updates, Algorithm 1 lines 3-14.
        repeat_critic_updates(self.n_critic, lambda t: self.critic_step(tf.gather(chunks, t)))
        real = chunks[-1]
        with tf.GradientTape() as tape:
            terms = self.generator_losses(real, training=True)
            scaled = self.scale_for_replicas(terms["loss"])
        variables = (
            self.encoder.trainable_variables
            + self.mapping.trainable_variables
            + self.generator.trainable_variables
        )
        self.apply_gradients(self.optimizer_ae, tape, scaled, variables)
        return self._update_metrics(real, terms)

    def test_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = self.images_of(data)
        terms = self.generator_losses(images, training=False)
        self.critic_loss_tracker.update_state(
            losses.critic_loss(
                self.float32(self.critic(images)), self.float32(self.critic(terms["reconstructions"]))
            )
        )
        return self._update_metrics(images, terms)

    def _update_metrics(self, images, terms) -> Dict[str, tf.Tensor]:
        self.loss_tracker.update_state(terms["loss"])
        self.distortion_tracker.update_state(terms["distortion"])
        self.generator_loss_tracker.update_state(terms["generator_loss"])
        self.mse_tracker.update_state(losses.squared_error(images, terms["reconstructions"]))
        return {m.name: m.result() for m in self.metrics}
