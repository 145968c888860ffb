"""WAE-MMD: the primal form (eq. 7) of W_d for learning the DPLC generator G* (Tschannen et al. 2018)."""

from typing import Callable, Dict, Optional

import gin
import tensorflow as tf

from tfdplc import losses
from tfdplc.objectives.base import GeneratorObjective

__all__ = ["WAE"]


@gin.configurable(module="tfdplc.objectives")
class WAE(GeneratorObjective):
    """Wasserstein autoencoder with the MMD penalty (Tolstikhin et al. 2018, Algorithm 2), as DPLC uses it.

    DPLC eq. (7): min_G min_{F: F(X) ~ P_Z} E[d(X, G(F(X)))], the constraint relaxed to
    lambda_MMD * MMD(P_Z, F(X)) with the inverse multiquadratics kernel (`losses.mmd_imq`, U-statistic,
    kernel scales `losses.IMQ_SCALES`). Per step, on a batch x of b images:
      z_bar = F(x), z ~ P_Z = N(0, I_m), L_d = 1/b sum_i ||x_i - G(z_bar_i)|| (Euclidean distance),
      G <- Adam(G, L_d),  F <- Adam(F, L_d + lambda_MMD * MMD(z, z_bar)).
    F is deterministic (WAE's deterministic encoder, as in DPLC's F of Appendix B); z comes from the
    objective's `random_generator` (exact resume). Table 2: Adam 1e-3 for
    F and G, beta1 = 0.5, beta2 = 0.999, lambda_MMD = 100 (CelebA) / 300 (LSUN), b = 256, 41k iterations,
    learning rates x0.4 at 22k and 38k.
    """

    def __init__(
        self,
        encoder: tf.keras.Model = gin.REQUIRED,
        generator: tf.keras.Model = gin.REQUIRED,
        encoder_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        generator_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        mmd_weight: float = 100.0,
        distortion: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] = losses.euclidean_distance,
        name: Optional[str] = "wae",
    ):
        """Initialises the objective.

        Args:
          encoder: F, images -> z (B, m).
          generator: G, z (B, m) -> images in [0, 1].
          encoder_optimizer: the optimizer of F.
          generator_optimizer: the optimizer of G.
          mmd_weight: lambda_MMD.
          distortion: d(x, x_hat) -> scalar batch mean; DPLC uses the Euclidean distance. Its scale
            convention (`tfdplc.losses`) fixes what mmd_weight means: Table 2's 100 / 300 were tuned
            with the authors'-code `losses.batch_rmse_pm1`.
          name: Keras model name.

        Raises:
          ValueError: if mmd_weight < 0.
        """
        super().__init__(name=name)
        if mmd_weight < 0:
            raise ValueError(f"mmd_weight must be >= 0, got {mmd_weight!r}.")
        self.encoder = encoder
        self.generator = generator
        self.optimizer_encoder = encoder_optimizer
        self.optimizer_generator = generator_optimizer
        self.mmd_weight = float(mmd_weight)
        self.distortion = distortion
        self.loss_tracker = tf.keras.metrics.Mean("loss")
        self.distortion_tracker = tf.keras.metrics.Mean("distortion")
        self.mmd_tracker = tf.keras.metrics.Mean("mmd")
        self.mse_tracker = tf.keras.metrics.Mean("mse")

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        return {"encoder": self.optimizer_encoder, "generator": self.optimizer_generator}

    @property
    def metrics(self):  # noqa: D102 - Keras resets these every epoch.
        return [self.loss_tracker, self.distortion_tracker, self.mmd_tracker, self.mse_tracker]

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """G(F(x)), the unconstrained reconstruction (DPLC Table 1)."""
        return self.float32(self.generator(self.encoder(images, training=training), training=training))

    def _forward(self, images, training):
        # The MMD kernel sums and the distortion stay float32 under a mixed-precision policy.
        z_bar = self.float32(self.encoder(images, training=training))
        reconstructions = self.float32(self.generator(z_bar, training=training))
        z = self.sample_prior(tf.shape(images)[0])
        distortion = self.distortion(images, reconstructions)
        if training:
            mmd = losses.mmd_imq(z, z_bar)
        else:
            # A last validation batch of one image has no U-statistic (it would divide by b(b-1) = 0).
            mmd = tf.cond(tf.shape(z)[0] > 1, lambda: losses.mmd_imq(z, z_bar), lambda: tf.zeros([]))
        return reconstructions, distortion, mmd

    def train_step(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = self.images_of(images)
        with tf.GradientTape() as tape:
            reconstructions, distortion, mmd = self._forward(images, training=True)
            # G's gradient of L_d + lambda * MMD is that of L_d alone: the MMD term does not depend on G.
            loss = distortion + self.mmd_weight * mmd
            scaled_loss = self.scale_for_replicas(loss)
        encoder_vars = self.encoder.trainable_variables
        generator_vars = self.generator.trainable_variables
        # One loss, two optimizers: under mixed_float16 the encoder optimizer's loss scale serves both.
        grads = self.gradients(self.optimizer_encoder, tape, scaled_loss, encoder_vars + generator_vars)
        self.optimizer_encoder.apply_gradients(zip(grads[: len(encoder_vars)], encoder_vars))
        self.optimizer_generator.apply_gradients(zip(grads[len(encoder_vars) :], generator_vars))
        return self._update_metrics(images, reconstructions, loss, distortion, mmd)

    def test_step(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = self.images_of(images)
        reconstructions, distortion, mmd = self._forward(images, training=False)
        return self._update_metrics(
            images, reconstructions, distortion + self.mmd_weight * mmd, distortion, mmd
        )

    def _update_metrics(self, images, reconstructions, loss, distortion, mmd) -> Dict[str, tf.Tensor]:
        self.loss_tracker.update_state(loss)
        self.distortion_tracker.update_state(distortion)
        self.mmd_tracker.update_state(mmd)
        self.mse_tracker.update_state(losses.squared_error(images, reconstructions))
        return {m.name: m.result() for m in self.metrics}
