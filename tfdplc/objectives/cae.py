"""The compressive-autoencoder (CAE) baseline of DPLC (Tschannen et al. 2018, Section 5)."""

from typing import Callable, Dict, Optional

import gin
import numpy as np
import tensorflow as tf

from tfdplc import losses
from tfdplc.codec.interface import CodecSpec, quantized_code_spec
from tfdplc.objectives.base import Objective

__all__ = ["CAE"]


@gin.configurable(module="tfdplc.objectives")
class CAE(Objective):
    """G o B o E trained jointly to minimise distortion, with no noise and no distribution constraint.

    This is problem (1) of the DPLC paper as its Section 5 trains the baseline: "the same architecture
    G o B o E but without feeding noise to B, training G, B, E jointly to minimize distortion". E's output is
    quantized by a fixed-codebook quantizer (DPLC: centres {-1, 1} with the soft-to-hard gradient of
    Mentzer et al. [9]); the rate is exact: k * h * w * log2(L) bits per image. With k = 0 the code is empty
    and the decoder can only output one image (the mean), as it should at rate 0.

    Appendix B trains it with the WAE parameters of Table 2 (lambda_MMD = 0); see `gin/cae_celeba64.gin`.
    """

    def __init__(
        self,
        encoder: tf.keras.Model = gin.REQUIRED,
        mapping: tf.keras.Model = gin.REQUIRED,
        generator: tf.keras.Model = gin.REQUIRED,
        quantizer: tf.keras.layers.Layer = gin.REQUIRED,
        optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        distortion: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] = losses.euclidean_distance,
        name: Optional[str] = "cae",
    ):
        """Initialises the objective.

        Args:
          encoder: E, images -> unquantized code maps (B, h, w, k).
          mapping: B, deterministic (no noise input), code maps -> latent z (B, m).
          generator: G, z -> images in [0, 1].
          quantizer: the fixed-codebook quantizer applied to E's output (exposes `rate_bits`).
          optimizer: one optimizer for E, B and G.
          distortion: d(x, x_hat) -> scalar; the paper uses the Euclidean distance (scale conventions:
            `tfdplc.losses`; the distortion alone sets no balance, Adam is invariant to its scale, but the
            convention decides how the batch's images are weighted).
          name: Keras model name.
        """
        # No **kwargs: gin then rejects a misspelt binding such as `CAE.optimiser` when it parses it.
        super().__init__(name=name)
        self.encoder = encoder
        self.mapping = mapping
        self.generator = generator
        self.quantizer = quantizer
        self.optimizer_ae = optimizer
        self.distortion = distortion
        self.loss_tracker = tf.keras.metrics.Mean("loss")
        self.mse_tracker = tf.keras.metrics.Mean("mse")

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        return {"autoencoder": self.optimizer_ae}

    @property
    def metrics(self):  # noqa: D102 - Keras resets these every epoch.
        return [self.loss_tracker, self.mse_tracker]

    @property
    def rate_bits(self) -> float:  # noqa: D102
        code_shape = self.encoder.output_shape[1:]
        return float(np.prod(code_shape)) * self.quantizer.bits_per_element

    def encode(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Images -> quantized code maps (values on the quantizer's centres)."""
        return self.quantizer(self.encoder(images, training=training), training=training)

    def decode(self, code: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Quantized code maps -> images in [0, 1] (float32 under any precision policy)."""
        return self.float32(self.generator(self.mapping(code, training=training), training=training))

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:  # noqa: D102
        return self.decode(self.encode(images, training=training), training=training)

    # Codec interface (tfdplc.codec.interface): real bitstreams and export.

    def codec_spec(self) -> CodecSpec:
        """Fixed-rate codes: the indices of E's quantized output; a deterministic decoder."""
        return quantized_code_spec(self.encoder, self.quantizer, self.name)

    def encode_codes(self, images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        """Images -> int32 centre indices (B, h, w, k) of the quantized code; `seeds` are unused."""
        del seeds  # E is deterministic.
        return self.quantizer.indices(self.encoder(images, training=False))

    def decode_codes(self, codes: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        """Centre indices -> images; equals `reconstruct` of the encoded images. `seeds` are unused."""
        del seeds  # The CAE decoder has no noise.
        return self.decode(self.quantizer.dequantize(codes))

    def train_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = self.images_of(data)
        with tf.GradientTape() as tape:
            reconstructions = self(images, training=True)
            loss = self.distortion(images, reconstructions)
            scaled_loss = self.scale_for_replicas(loss)
        variables = (
            self.encoder.trainable_variables
            + self.mapping.trainable_variables
            + self.generator.trainable_variables
        )
        self.apply_gradients(self.optimizer_ae, tape, scaled_loss, variables)
        return self._update_metrics(images, reconstructions, loss)

    def test_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = self.images_of(data)
        reconstructions = self(images, training=False)
        return self._update_metrics(images, reconstructions, self.distortion(images, reconstructions))

    def _update_metrics(self, images, reconstructions, loss) -> Dict[str, tf.Tensor]:
        self.loss_tracker.update_state(loss)
        self.mse_tracker.update_state(losses.squared_error(images, reconstructions))
        return {m.name: m.result() for m in self.metrics}
