"""The base class of every training objective."""

import os
from typing import Dict, List, Optional, Sequence

import tensorflow as tf

from tfdplc.codec.interface import SAMPLER, CodecSpec, per_example_normal

__all__ = ["ENCODER_FILE", "GENERATOR_FILE", "GeneratorObjective", "Objective"]

#: File names of the stand-alone networks a stage-1 (generator) workdir holds after training.
GENERATOR_FILE = "generator.keras"
ENCODER_FILE = "encoder.keras"


class Objective(tf.keras.Model):
    """A Keras model whose `train_step` holds one paper's update rule.

    Subclasses own their networks and optimizers (injected by gin), implement `train_step` / `test_step`,
    and expose:
      - `reconstruct(images)`: the decoded images for a batch (used by evaluation and image summaries);
        objectives that cannot reconstruct (a pure generator such as WGAN-GP) set `can_reconstruct = False`
        and raise `NotImplementedError`;
      - `rate_bits`: the exact rate in bits per image for fixed-rate codes, or None for objectives that
        have no code and hence no rate (the stage-1 generators WAE / WGAN-GP / Wasserstein++);
      - optionally `sample(n)`: n images drawn from the model's generator (`can_sample` tells whether an
        objective implements it);
      - optionally `save_artifacts(directory)`: stand-alone networks written after training (the trainer
        calls it at the end of a successful run);
      - optionally the codec interface of `tfdplc.codec.interface` (`codec_spec()`, `encode_codes`,
        `decode_codes`, `sample_images`): real bitstreams, SavedModel export and tools/codec.py.
    The trainer calls `compile()` with no optimizer: the objective passes its own to Keras.
    """

    #: Whether `reconstruct` is meaningful (False for objectives without an encoder, e.g. WGAN-GP).
    can_reconstruct: bool = True

    @staticmethod
    def images_of(data) -> tf.Tensor:
        """The image batch of what Keras hands to `train_step` / `test_step`.

        `fit` on a dataset of images passes a tensor, `train_on_batch(x)` a tuple `(x,)`.
        """
        return tf.keras.utils.unpack_x_y_sample_weight(data)[0]

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:
        """The objective's optimizers by role (e.g. {"autoencoder": ..., "critic": ...})."""
        raise NotImplementedError

    def compile(self, **kwargs):  # noqa: D102 - see Keras.
        optimizers = self.optimizers()
        # Keras wants one optimizer in `compile`; the others are tracked as attributes of the subclass.
        super().compile(optimizer=next(iter(optimizers.values())), **kwargs)

    @property
    def rate_bits(self) -> Optional[float]:
        """Exact rate in bits per image of the fixed-rate code, or None when the objective has no code.

        The stage-1 generator objectives of DPLC (WAE, WGAN-GP, Wasserstein++) learn G* without any rate
        constraint: for them this is None, and evaluation must skip rate and bpp instead of reporting 0
        (0 bits is a real operating point of the compression objectives: a pure generator).
        """
        return None

    def reconstruct(self, images: tf.Tensor) -> tf.Tensor:
        """Encodes and decodes a batch in inference mode.

        Raises:
          NotImplementedError: in objectives with `can_reconstruct = False`.
        """
        return self(images, training=False)

    @property
    def can_sample(self) -> bool:
        """Whether the objective implements `sample`."""
        return type(self).sample is not Objective.sample

    def sample(self, n: int, seed: Optional[tf.Tensor] = None) -> tf.Tensor:
        """Draws n images from the model's generator in inference mode (optional capability).

        Args:
          n: number of images.
          seed: optional stateless seed (shape [2]) for the latent draw; None uses the global generator.

        Returns:
          (n, H, W, C) images in [0, 1].

        Raises:
          NotImplementedError: if the objective has no generator to sample from.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot sample.")

    def save_artifacts(self, directory: str) -> None:
        """Writes stand-alone networks into `directory` after training (default: nothing).

        The trainer calls it at the end of a successful `train` (on every worker, the chief with the
        workdir, other workers with a scratch folder: under MultiWorkerMirroredStrategy reading the
        networks' synced-on-read variables is a collective operation).

        Args:
          directory: the output folder (exists).
        """
        del directory

    @staticmethod
    def scale_for_replicas(loss: tf.Tensor) -> tf.Tensor:
        """Scales a per-replica mean loss so that summing gradients over replicas averages them.

        Keras optimizers all-reduce gradients by SUM across replicas; a custom `train_step` must divide
        its loss by the number of replicas (Keras's compiled losses do the same).
        """
        return loss / tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, loss.dtype)

    @staticmethod
    def float32(outputs):
        """Casts the floating tensors of a network's outputs (a tensor or a nest) to float32.

        Under a mixed-precision policy (`train.precision`, `tfdplc.train.precision`) the networks compute
        and return float16/bfloat16; every loss, MMD kernel sum, gradient penalty, critic score and metric
        of the objectives is computed in float32 on their outputs (Keras' mixed-precision guide: outputs
        and losses stay float32). Under float32 this is the identity.
        """

        def cast(tensor):
            tensor = tf.convert_to_tensor(tensor)
            return tf.cast(tensor, tf.float32) if tensor.dtype.is_floating else tensor

        return tf.nest.map_structure(cast, outputs)

    @staticmethod
    def gradients(
        optimizer: tf.keras.optimizers.Optimizer,
        tape: tf.GradientTape,
        loss: tf.Tensor,
        variables: Sequence[tf.Variable],
    ) -> List[tf.Tensor]:
        """The gradients of `loss` w.r.t. `variables`, loss-scaled when `optimizer` asks for it.

        With a `tf.keras.mixed_precision.LossScaleOptimizer` (`train.precision = 'mixed_float16'`), the
        loss is multiplied by the optimizer's loss scale before differentiation and the gradients divided
        by it afterwards, so small float16 gradients do not underflow (the optimizer then skips a step with
        non-finite gradients and lowers its scale). Otherwise this is `tape.gradient(loss, variables)`.
        """
        variables = list(variables)
        if isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer):
            # d(scale * loss) is the backprop of `loss` seeded with `scale` (= get_scaled_loss(1)), so the
            # tape need not have recorded the product.
            scale = optimizer.get_scaled_loss(tf.ones_like(loss))
            gradients = tape.gradient(loss, variables, output_gradients=scale)
            return optimizer.get_unscaled_gradients(gradients)
        return tape.gradient(loss, variables)

    @classmethod
    def apply_gradients(
        cls,
        optimizer: tf.keras.optimizers.Optimizer,
        tape: tf.GradientTape,
        loss: tf.Tensor,
        variables: Sequence[tf.Variable],
    ) -> None:
        """Applies the (loss-scaled, see `gradients`) gradient of `loss` to `variables` with `optimizer`.

        Args:
          optimizer: the optimizer of `variables`.
          tape: the tape that recorded `loss`.
          loss: the loss, already scaled by `scale_for_replicas`.
          variables: the variables to update.
        """
        variables = list(variables)
        optimizer.apply_gradients(zip(cls.gradients(optimizer, tape, loss, variables), variables))


class GeneratorObjective(Objective):
    """Base of the DPLC stage-1 objectives that learn a generator G* of P_X from a prior P_Z = N(0, I_m).

    Subclasses (WAE, WGAN-GP, Wasserstein++) set `self.generator` (G: z (B, m) -> images) and, if they
    have one, `self.encoder` (F: images -> z). They have no code, so `rate_bits` is None. After training,
    `save_artifacts` writes G* as `generator.keras` (and F as `encoder.keras`) for DPLC stage 2, which
    loads it with `tf.keras.models.load_model` (import `tfdplc.nets` first: G's output layer is registered
    under the "tfdplc" package).
    """

    @property
    def latent_dim(self) -> int:
        """m, the dimension of the prior P_Z = N(0, I_m) (G's input size)."""
        return int(self.generator.input_shape[-1])

    def sample_prior(self, batch_size, seed: Optional[tf.Tensor] = None) -> tf.Tensor:
        """Draws (batch_size, m) codes from P_Z = N(0, I_m) (DPLC Section 5).

        Args:
          batch_size: number of codes (int or scalar tensor).
          seed: optional stateless seed (shape [2]); None uses TF's global generator.

        Returns:
          A (batch_size, m) float32 tensor.
        """
        shape = tf.stack([tf.cast(batch_size, tf.int32), self.latent_dim])
        if seed is None:
            return tf.random.normal(shape)
        return tf.random.stateless_normal(shape, seed=seed)

    def sample(self, n: int, seed: Optional[tf.Tensor] = None) -> tf.Tensor:  # noqa: D102 - see base.
        return self.float32(self.generator(self.sample_prior(n, seed=seed), training=False))

    def codec_spec(self) -> CodecSpec:
        """Codec interface (`tfdplc.codec.interface`): a pure generator, no code, it samples only."""
        return CodecSpec(
            image_shape=tuple(self.generator.output_shape[1:]), can_sample=True, method=self.name
        )

    def sample_images(self, seeds: tf.Tensor) -> tf.Tensor:
        """Codec interface: one image G(z_i) per seed, z_i ~ N(0, I_m) drawn from seed i (stream SAMPLER).

        Args:
          seeds: (B,) int64 seeds.

        Returns:
          (B, H, W, C) images in [0, 1].
        """
        return self.float32(
            self.generator(per_example_normal(seeds, [self.latent_dim], SAMPLER), training=False)
        )

    def save_artifacts(self, directory: str) -> None:
        """Writes G* to `directory/generator.keras` and, if the objective has one, F to `encoder.keras`.

        Args:
          directory: the output folder (exists).
        """
        self.generator.save(os.path.join(directory, GENERATOR_FILE))
        encoder = getattr(self, "encoder", None)
        if encoder is not None:
            encoder.save(os.path.join(directory, ENCODER_FILE))
