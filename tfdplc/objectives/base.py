"""The base class of every training objective."""

import inspect
import os
from typing import Callable, Dict, List, Optional, Sequence

import tensorflow as tf

from tfdplc.codec.interface import SAMPLER, CodecSpec, per_example_normal

__all__ = [
    "ENCODER_FILE",
    "GENERATOR_FILE",
    "RANDOM_CHECKPOINT_KEY",
    "GeneratorObjective",
    "Objective",
    "accepts_seed",
    "objective_generator",
]

#: File names of the stand-alone networks a stage-1 (generator) workdir holds after training.
GENERATOR_FILE = "generator.keras"
ENCODER_FILE = "encoder.keras"

#: The name of the objective's random generator in the trainer's checkpoint, beside "model" and "step".
RANDOM_CHECKPOINT_KEY = "random"

# The high word of the Philox counter of the objectives' generators derived from the run's seed, whose
# key is the run's seed. A generator seeded with an integer s (`tf.random.Generator.from_seed(s)`, e.g. a
# NoiseInput layer's) has key 0 and counter (s, 0), and draws advance the low word only: with a nonzero
# high word the objective's stream never meets those, and runs of different seeds use different keys.
_OBJECTIVE_STREAM = 0x0B1EC7


def objective_generator(seed: Optional[int] = None) -> tf.random.Generator:
    """The random generator of an objective: from `seed`, or from the run's seed when `seed` is None.

    The run's seed is TF's global seed, which the trainer sets from `train.seed`
    (`tf.keras.utils.set_random_seed`) before it builds the objective; without one TF's default graph seed
    is used, so the stream is deterministic either way. Call it inside `strategy.scope()` (the trainer
    builds objectives there): TF then gives every replica its own stream, a hash of the replica id and the
    common state, so replicas draw different numbers and the run stays deterministic.

    Args:
      seed: an explicit seed (`tf.random.Generator.from_seed(seed)`), or None.

    Returns:
      A Philox `tf.random.Generator`.
    """
    with tf.init_scope():  # its state variable must not be created inside a traced function
        if seed is not None:
            return tf.random.Generator.from_seed(seed)
        run_seed, _ = tf.compat.v1.get_seed(_OBJECTIVE_STREAM)
        return tf.random.Generator.from_key_counter(
            key=run_seed, counter=[0, _OBJECTIVE_STREAM], alg=tf.random.Algorithm.PHILOX
        )


def accepts_seed(function: Callable) -> bool:
    """Whether `function` takes a `seed` keyword (a penalty function that can draw from a given seed).

    The penalty functions of `tfdplc.losses` do; a user's `penalty(critic, real, fake)` without one is
    called without a seed (its randomness, if any, is then its own and not resumed exactly).
    """
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    return any(p.name == "seed" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


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

    Randomness (exact resume, issue 26): every random draw of a training step (gradient-penalty
    interpolation weights, prior latents, shuffles) comes from the objective's own `random_generator`
    (`objective_generator`: seeded from the run's seed, one stream per replica), either directly or through
    a stateless seed from `next_seed()`. Its state is saved in the trainer's checkpoint under
    `RANDOM_CHECKPOINT_KEY`, beside (not inside) the model, so a checkpoint written before the generator
    existed still restores into the model unchanged (the generator then starts from its seed), and a
    stopped and resumed run continues the uninterrupted run's streams bit for bit. The decoders' noise
    layers (`tfdplc.layers.NoiseInput`) keep their own generators, which are part of the networks and
    hence of the model's checkpoint.
    """

    #: Whether `reconstruct` is meaningful (False for objectives without an encoder, e.g. WGAN-GP).
    can_reconstruct: bool = True

    def __init__(self, *args, random_seed: Optional[int] = None, **kwargs):
        """Initialises the Keras model and the objective's random generator.

        Args:
          *args: passed to `tf.keras.Model`.
          random_seed: seed of `random_generator`; None (the default) derives it from the run's seed
            (`objective_generator`).
          **kwargs: passed to `tf.keras.Model` (e.g. `name`).
        """
        super().__init__(*args, **kwargs)
        self._hold_generator(objective_generator(random_seed))

    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def _hold_generator(self, generator: tf.random.Generator) -> None:
        # Not a dependency of the model: the trainer checkpoints it beside the model, so the model's own
        # checkpoint layout (and every checkpoint written before the generator existed) stays as it was.
        self._random_generator = generator

    @property
    def random_generator(self) -> tf.random.Generator:
        """The objective's checkpointed generator of the training steps' random draws."""
        return self._random_generator

    def next_seed(self) -> tf.Tensor:
        """A fresh stateless seed (shape [2], int64) from `random_generator` (advances its state)."""
        return self._random_generator.make_seeds(1)[:, 0]

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
          seed: optional stateless seed (shape [2]); None draws from the objective's `random_generator`
            (advancing it).

        Returns:
          A (batch_size, m) float32 tensor.
        """
        shape = tf.stack([tf.cast(batch_size, tf.int32), self.latent_dim])
        if seed is None:
            return self.random_generator.normal(shape)
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
