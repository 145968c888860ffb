"""Yan et al.'s E, G1 and G2 trained in one loop, as the authors' code does (an option beside the two stages).

The paper (Section 3.2) trains in two stages: (E, G1) on MSE, eq. (26) (`PerceptualG1`), then G2 against
the code-conditioned critic J with E frozen (`PerceptualG2`). The authors' code instead runs both in the
same loop: every step updates E and G1 on the MSE, then J and G2 on the codes of that step. This objective
does the latter, so a user can reproduce that loop and so E runs once per step for both decoders (the
two-stage pipeline runs it again in stage 2).
"""

import os
from typing import Dict, Optional

import gin
import tensorflow as tf

from tfdplc import losses
from tfdplc.objectives.base import ENCODER_FILE
from tfdplc.objectives.perceptual import DECODER_FILE, PerceptualG2, _code_length, _images
from tfdplc.objectives.wgan_gp import split_critic_batches

__all__ = ["PerceptualJoint"]


@gin.configurable(module="tfdplc.objectives")
class PerceptualJoint(PerceptualG2):
    """E and the MSE decoder G1 (eq. 26) trained together with G2 and its critic J (Section 4), one loop.

    One step on a batch of n_critic * b images:
      1. one update of E and G1 on eq. (26), E(X) + straight-through quantization in training mode, on all
         the images (`optimizer`);
      2. the stage-2 step of `PerceptualG2` (n_critic updates of J, then one of G2; or, during the first
         `pretrain_steps` steps, J's pre-training on matched vs. shuffled codes) on the codes of step 1's
         forward pass of E, with their gradient stopped: J and G2 never train E, and E runs once per step.
    G1 is also the slider's MSE decoder (`decode_realism`, the `decompress_realism` signature), and
    `save_artifacts` writes E and G1 as a stage-1 run does, so a joint workdir can seed `PerceptualG2`.
    Evaluation, export and the codec use E in inference mode, as `PerceptualG2` does.

    Deviations from the paper (Section 3.2's two stages), as in the authors' code: G2 and J train on the
    codes of an E that is still learning (Theorem 3 speaks of the final, MSE-optimal E), and G2's codes
    come from E in training mode (BatchNorm with batch statistics) before this step's E update. The
    critic update is one optimizer step on the Wasserstein term plus the penalty (the authors': two).
    """

    def __init__(
        self,
        encoder: tf.keras.Model = gin.REQUIRED,
        decoder: tf.keras.Model = gin.REQUIRED,
        generator: tf.keras.Model = gin.REQUIRED,
        critic: tf.keras.Model = gin.REQUIRED,
        quantizer: tf.keras.layers.Layer = gin.REQUIRED,
        optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        generator_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        critic_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        n_critic: int = 1,
        gp_weight: float = 10.0,
        pretrain_steps: int = 0,
        name: Optional[str] = "perceptual_joint",
    ):
        """Initialises the objective.

        Args:
          encoder: E, images -> (B, d) values before quantization (`tfdplc.nets.yan_encoder`); trained.
          decoder: G1, (B, d) codes -> images in [0, 1] (`tfdplc.nets.yan_decoder`).
          generator: G2, a `WithNoiseInput` model (`tfdplc.nets.yan_generator`).
          critic: J, [images, (B, d) codes] -> (B, 1) scores (`tfdplc.nets.yan_critic`).
          quantizer: the fixed-codebook quantizer of E's output (centres (-1, 1), straight-through).
          optimizer: one optimizer for E and G1 (authors' code: RMSprop 1e-4).
          generator_optimizer: G2's optimizer (authors' code: RMSprop 1e-4).
          critic_optimizer: J's optimizer (authors' code: RMSprop 1e-3).
          n_critic: critic updates per G2 update (authors' code: 1).
          gp_weight: lambda_GP (Section 4: 10).
          pretrain_steps: steps of critic pre-training before G2 trains (0: none); E and G1 train in them.
          name: Keras model name.

        Raises:
          ValueError: as `PerceptualG2`, and if G1's code length differs from E's.
        """
        super().__init__(
            generator=generator,
            critic=critic,
            quantizer=quantizer,
            generator_optimizer=generator_optimizer,
            critic_optimizer=critic_optimizer,
            encoder=encoder,
            n_critic=n_critic,
            gp_weight=gp_weight,
            pretrain_steps=pretrain_steps,
            name=name,
        )
        if _code_length(decoder.input_shape, "PerceptualJoint decoder") != self.code_length:
            raise ValueError(
                f"PerceptualJoint: E emits d={self.code_length} code entries but G1 takes "
                f"{decoder.input_shape[1]}: give yan_encoder.d and yan_decoder.d the same value."
            )
        encoder.trainable = True  # PerceptualG2 freezes the E it is given; here E trains on eq. (26).
        self.mse_decoder = decoder
        self.optimizer_ae = optimizer
        self.mse_g1_tracker = tf.keras.metrics.Mean("mse_g1")

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        return {"autoencoder": self.optimizer_ae, **super().optimizers()}

    @property
    def metrics(self):  # noqa: D102 - Keras resets these every epoch.
        return super().metrics + [self.mse_g1_tracker]

    def train_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = _images(data)
        variables = self.encoder.trainable_variables + self.mse_decoder.trainable_variables
        with tf.GradientTape() as tape:
            code = self.quantizer(self.encoder(images, training=True), training=True)
            loss = losses.squared_error(images, self.float32(self.mse_decoder(code, training=True)))  # (26)
            scaled_loss = self.scale_for_replicas(loss)
        self.apply_gradients(self.optimizer_ae, tape, scaled_loss, variables)
        self.mse_g1_tracker.update_state(loss)
        batches = split_critic_batches(images, self.n_critic)
        self.stage2_step(batches, split_critic_batches(tf.stop_gradient(code), self.n_critic))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data) -> Dict[str, tf.Tensor]:
        """`PerceptualG2.test_step` (G2's MSE, J's W estimate) plus G1's MSE as `mse_g1`."""
        logs = super().test_step(data)
        images = _images(data)
        mse_decode = self.float32(self.mse_decoder(self.encode(images), training=False))
        self.mse_g1_tracker.update_state(losses.squared_error(images, mse_decode))
        return dict(logs, mse_g1=self.mse_g1_tracker.result())

    def save_artifacts(self, directory: str) -> None:
        """Writes E to `encoder.keras` and G1 to `decoder.keras`, as a `PerceptualG1` run does.

        Args:
          directory: the output folder (exists).
        """
        self.encoder.save(os.path.join(directory, ENCODER_FILE))
        self.mse_decoder.save(os.path.join(directory, DECODER_FILE))
