"""The restoration stage of the separate baseline of Liu et al. 2022 (Appendix B.5, eq. 70).

The baseline restores first and compresses afterwards: a restoration network R is trained without
compression on

  L_1 = E||X - R(X)||^2 + lambda_1 W1(P_Y, P_R(X))                                          (eq. 70)

(lambda_1 = 0.05 for super-resolution, 0.03 for denoising), with the same unpaired WGAN-GP critic as
the end-to-end system (`UnpairedWassersteinObjective`). Its trained R is then frozen and the end-to-end
network compresses R(X) (`ShiftCompression(restoration_path=...)`, eq. 71); the baseline's figure is
E||X - Y+||^2, the MSE of the compressed output against the degraded input (Tables 7, 8).
"""

import os
from typing import Dict, Optional

import gin
import tensorflow as tf

from tfdplc.nets import unet  # noqa: F401 - registers tfdplc.nets.restoration_unet with gin
from tfdplc.objectives.shift import RESTORATION_FILE, UnpairedWassersteinObjective

__all__ = ["Restoration"]


@gin.configurable(module="tfdplc.objectives")
class Restoration(UnpairedWassersteinObjective):
    """R trained on eq. 70: MSE to the degraded input plus lambda_1 * W1 to clean images (no rate).

    `rate_bits` is None (no code). After training, `save_artifacts` writes R as `restoration.keras`, which
    `ShiftCompression.restoration_path` loads for the baseline's compression stage.
    """

    def __init__(
        self,
        network: tf.keras.Model = gin.REQUIRED,
        critic: tf.keras.Model = gin.REQUIRED,
        optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        critic_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        lambda_wd: float = 0.05,
        gp_weight: float = 10.0,
        n_critic: int = 1,
        eval_seed: int = 0,
        name: Optional[str] = "restoration",
    ):
        """Initialises the objective.

        Args:
          network: R, degraded images -> restored images of the same shape (e.g.
            `tfdplc.nets.unet.restoration_unet`).
          critic: h, images -> (B, 1) scores.
          optimizer: R's optimizer.
          critic_optimizer: the critic's optimizer.
          lambda_wd: lambda_1 of eq. 70 (App. B.5: 0.05 super-resolution, 0.03 denoising).
          gp_weight: lambda_GP.
          n_critic: critic updates per update of R.
          eval_seed: unused randomness seed (R is deterministic), kept for a uniform interface.
          name: Keras model name.

        Raises:
          ValueError: on out-of-range arguments or a network whose output shape differs from its input's.
        """
        if network.input_shape != network.output_shape:
            raise ValueError(
                f"Restoration: R must map images to images of the same shape, got {network.input_shape} -> "
                f"{network.output_shape}."
            )
        super().__init__(
            critic=critic,
            critic_optimizer=critic_optimizer,
            lambda_wd=lambda_wd,
            gp_weight=gp_weight,
            n_critic=n_critic,
            eval_seed=eval_seed,
            name=name,
        )
        self.network = network
        self.optimizer_ae = optimizer

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        return {"restoration": self.optimizer_ae, "critic": self.optimizer_critic}

    def transform(self, sources, training=False, seed=None):
        """R(S) (deterministic: `seed` is unused), no bits."""
        del seed
        return self.float32(self.network(sources, training=training)), None

    def generator_variables(self) -> list:  # noqa: D102
        return self.network.trainable_variables

    def save_artifacts(self, directory: str) -> None:
        """Writes R to `directory/restoration.keras`."""
        self.network.save(os.path.join(directory, RESTORATION_FILE))
