"""The distortion-plus-adversarial-loss (DAL) baseline of Yan et al. 2021 (eq. 5, Sections 2.3 and 4).

  min_{E, G} L_rec + lambda * L_adv   (eq. 5 at a fixed rate, so without the entropy term beta * H)

with L_rec the MSE, L_adv = -1/b sum_i J(G(E(x_i))) the WGAN generator loss of an unconditional critic J
("the discriminator in DAL ... discriminate[s] whether its input is real", Section 3.2), and J trained by
WGAN-GP as in stage 2 of the perceptual decoder. Section 4 trains it at R = 4 bits for lambda in
{0.1, 1, 5} (Figure 5); each lambda is one run (`DAL.lambda_adv`).
"""

from typing import Dict, Optional

import gin
import numpy as np
import tensorflow as tf

from tfdplc import losses
from tfdplc.codec.interface import CodecSpec, quantized_code_spec
from tfdplc.objectives.base import Objective
from tfdplc.objectives.perceptual import code_map, code_vector
from tfdplc.objectives.wgan_gp import critic_update, repeat_critic_updates, split_critic_batches

__all__ = ["DAL"]


def _images(data) -> tf.Tensor:
    """The images of a Keras batch (`train_on_batch(x)` hands `train_step` a 1-tuple `(x,)`)."""
    return tf.keras.utils.unpack_x_y_sample_weight(data)[0]


class _ImageCritic:
    """An unconditional critic J(x): a one-input critic, or a two-input one fed a constant zero code."""

    def __init__(self, critic: tf.keras.Model):
        self.critic = critic
        self.code_length = critic.input_shape[1][-1] if isinstance(critic.input_shape, list) else None

    def __call__(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        # The scores are float32 under a mixed-precision policy (critic outputs and losses stay float32).
        if self.code_length is None:
            return Objective.float32(self.critic(images, training=training))
        zeros = tf.zeros(tf.stack([tf.shape(images)[0], self.code_length]), images.dtype)
        return Objective.float32(self.critic([images, zeros], training=training))

    @property
    def trainable_variables(self):
        return self.critic.trainable_variables


@gin.configurable(module="tfdplc.objectives")
class DAL(Objective):
    """E and G trained jointly on MSE + lambda * adversarial loss, J by WGAN-GP (Yan et al. eq. 5).

    The networks are those of stage 1 of the perceptual decoder (`tfdplc.nets.yan_encoder` with the binary
    straight-through quantizer of eq. 25, `tfdplc.nets.yan_decoder`: a deterministic decoder, as eq. 5 has
    no noise), and J is unconditional. To compare with G2's critic at equal capacity the configs use the
    conditional critic of stage 2 (`tfdplc.nets.yan_critic`) with d = 1 and feed it a constant zero code:
    its code branch then reduces to a learned constant vector, and J(x, 0) scores the image alone. (With
    d = 0, the natural choice, the network's dense layer on the empty code aborts the process in graph mode
    on CPU under TF 2.14's oneDNN, so it is refused.) Any one-input critic images -> (B, 1) works too.

    One step, as `GC` and `PerceptualG2` do it: n_critic critic updates, each on its own mini-batch of b
    images (the input batch holds n_critic * b images), with fakes G(E(x)) from E and G in training mode,
    detached; then one update of E and G on the last mini-batch with
      L = 1/(b N) sum_i ||x_i - G(E(x_i))||^2 + lambda * (-1/b sum_i J(G(E(x_i)))).
    The paper gives no optimizer for DAL; the configs use those of the perceptual decoder.
    """

    def __init__(
        self,
        encoder: tf.keras.Model = gin.REQUIRED,
        decoder: tf.keras.Model = gin.REQUIRED,
        critic: tf.keras.Model = gin.REQUIRED,
        quantizer: tf.keras.layers.Layer = gin.REQUIRED,
        optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        critic_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        lambda_adv: float = gin.REQUIRED,
        n_critic: int = 1,
        gp_weight: float = 10.0,
        name: Optional[str] = "dal",
    ):
        """Initialises the objective.

        Args:
          encoder: E, images -> (B, d) values before quantization.
          decoder: G, (B, d) codes -> images in [0, 1].
          critic: J, images -> (B, 1) scores, or [images, (B, d) code] -> (B, 1) with d >= 1 (`yan_critic(1)`),
            which is then always fed a zero code.
          quantizer: the fixed-codebook quantizer of E's output (exposes `bits_per_element`).
          optimizer: one optimizer for E and G.
          critic_optimizer: J's optimizer.
          lambda_adv: lambda, the weight of the adversarial term (Section 4: 0.1, 1, 5), >= 0.
          n_critic: critic updates per E/G update.
          gp_weight: lambda_GP of J's gradient penalty.
          name: Keras model name.

        Raises:
          ValueError: if E's and G's code lengths differ, J has an empty code input or more than two inputs,
            or on a bad lambda_adv / n_critic / gp_weight.
        """
        super().__init__(name=name)
        d = encoder.output_shape[-1]
        if tuple(decoder.input_shape) != (None, d):
            raise ValueError(
                f"DAL: E emits d={d} code entries but G takes input shape {decoder.input_shape}: give "
                "yan_encoder.d and yan_decoder.d the same value."
            )
        if isinstance(critic.input_shape, list) and (
            len(critic.input_shape) != 2 or not critic.input_shape[1][-1]
        ):
            # yan_critic(0)'s dense layer on the empty code aborts the process in graph mode on CPU
            # (oneDNN cannot build a zero-size inner product on TF 2.14), so d = 0 is refused here.
            raise ValueError(
                "DAL: J must be a one-input critic or a two-input one with a code of d >= 1 entries (fed a "
                f"constant zero code, e.g. yan_critic(1)); got inputs {critic.input_shape}. yan_critic(0) "
                "aborts the process under TF 2.14's oneDNN graph execution (zero-size dense layer)."
            )
        if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
            raise ValueError(f"DAL: n_critic must be a positive integer, got {n_critic!r}.")
        lambda_adv, gp_weight = float(lambda_adv), float(gp_weight)
        for value, label in ((lambda_adv, "lambda_adv"), (gp_weight, "gp_weight")):
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"DAL: {label} must be non-negative and finite, got {value}.")
        self.encoder = encoder
        self.decoder = decoder
        self.critic = critic
        self.quantizer = quantizer
        self.optimizer_ae = optimizer
        self.optimizer_critic = critic_optimizer
        self.lambda_adv = lambda_adv
        self.n_critic = n_critic
        self.gp_weight = gp_weight
        self.image_critic = _ImageCritic(critic)
        # The critic steps run in a graph loop, where optimizer slots cannot be created.
        self.optimizer_critic.build(self.critic.trainable_variables)
        self.loss_tracker = tf.keras.metrics.Mean("loss")
        self.mse_tracker = tf.keras.metrics.Mean("mse")
        self.generator_loss_tracker = tf.keras.metrics.Mean("generator_loss")
        self.critic_loss_tracker = tf.keras.metrics.Mean("critic_loss")
        self.wasserstein_tracker = tf.keras.metrics.Mean("wasserstein")
        self.penalty_tracker = tf.keras.metrics.Mean("gradient_penalty")

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        return {"autoencoder": self.optimizer_ae, "critic": self.optimizer_critic}

    @property
    def metrics(self):  # noqa: D102 - Keras resets these every epoch.
        return [
            self.loss_tracker,
            self.mse_tracker,
            self.generator_loss_tracker,
            self.critic_loss_tracker,
            self.wasserstein_tracker,
            self.penalty_tracker,
        ]

    @property
    def rate_bits(self) -> float:  # noqa: D102
        return float(np.prod(self.encoder.output_shape[1:])) * self.quantizer.bits_per_element

    def encode(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Images -> (B, d) codes on the quantizer's centres."""
        return self.quantizer(self.encoder(images, training=training), training=training)

    def decode(self, code: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Codes -> images G(code) in [0, 1] (deterministic; float32 under any precision policy)."""
        return self.float32(self.decoder(code, training=training))

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:  # noqa: D102
        return self.decode(self.encode(images, training=training), training=training)

    # Codec interface (tfdplc.codec.interface): real bitstreams and export.

    def codec_spec(self) -> CodecSpec:
        """Fixed-rate codes: E's d indices as a (1, 1, d) map. The decoder is DETERMINISTIC.

        DAL's G takes only the code (eq. 5 has no noise input; the adversarial term shapes a deterministic
        G), so decoding uses no seed and a file always decodes to the same image.

        Raises:
          TypeError: if the quantizer has no centre indices (not a `ScalarQuantizer`).
        """
        code_length = int(np.prod(self.encoder.output_shape[1:]))
        return quantized_code_spec(self.encoder, self.quantizer, self.name, code_shape=(1, 1, code_length))

    def encode_codes(self, images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        """Images -> int32 centre indices (B, 1, 1, d) of E's quantized code; `seeds` are unused."""
        del seeds  # E is deterministic.
        return code_map(self.quantizer.indices(self.encoder(images, training=False)))

    def decode_codes(self, codes: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        """Centre indices (B, 1, 1, d) -> G(code); equals `self(images)` in inference mode. No seed used."""
        del seeds  # G is deterministic.
        return self.decode(self.quantizer.dequantize(code_vector(codes)))

    def losses_of(self, images: tf.Tensor, training: bool = False) -> Dict[str, tf.Tensor]:
        """The terms of eq. (5) for one mini-batch.

        Args:
          images: (b, H, W, C) images.
          training: mode of E and G (J's mode follows it).

        Returns:
          A dict with "loss" (= mse + lambda_adv * generator_loss), "mse", "generator_loss" and
          "reconstructions".
        """
        reconstructions = self(images, training=training)
        mse = losses.squared_error(images, reconstructions)
        generator_loss = losses.generator_loss(self.image_critic(reconstructions, training=training))
        return {
            "loss": mse + self.lambda_adv * generator_loss,
            "mse": mse,
            "generator_loss": generator_loss,
            "reconstructions": reconstructions,
        }

    def train_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        batches = split_critic_batches(_images(data), self.n_critic)

        def critic_iteration(t):
            real = tf.gather(batches, t)
            loss, wasserstein, penalty = critic_update(
                self.image_critic,
                self.optimizer_critic,
                real,
                self(real, training=True),
                self.gp_weight,
                self.scale_for_replicas,
                seed=self.next_seed(),  # the penalty's nu, from the objective's generator (exact resume)
            )
            self.critic_loss_tracker.update_state(loss)
            self.wasserstein_tracker.update_state(wasserstein)
            self.penalty_tracker.update_state(penalty)

        repeat_critic_updates(self.n_critic, critic_iteration)
        real = batches[-1]
        with tf.GradientTape() as tape:
            terms = self.losses_of(real, training=True)
            scaled = self.scale_for_replicas(terms["loss"])
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.apply_gradients(self.optimizer_ae, tape, scaled, variables)
        return self._update_metrics(terms)

    def test_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = _images(data)
        terms = self.losses_of(images, training=False)
        real_scores = self.image_critic(images, training=False)
        fake_scores = self.image_critic(terms["reconstructions"], training=False)
        self.wasserstein_tracker.update_state(-losses.critic_loss(real_scores, fake_scores))
        self._update_metrics(terms)
        tracked = (self.loss_tracker, self.mse_tracker, self.generator_loss_tracker, self.wasserstein_tracker)
        return {m.name: m.result() for m in tracked}

    def _update_metrics(self, terms) -> Dict[str, tf.Tensor]:
        self.loss_tracker.update_state(terms["loss"])
        self.mse_tracker.update_state(terms["mse"])
        self.generator_loss_tracker.update_state(terms["generator_loss"])
        return {m.name: m.result() for m in self.metrics}
