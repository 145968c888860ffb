"""The perceptual decoder of Yan et al. 2021 (Section 3.2, Section 4): two-stage training of (E, G1), then G2.

Stage 1 (`PerceptualG1`), eq. (26): the encoder E, ending in binary quantization with the straight-through
gradient of eq. (25), and the MSE decoder G1 are trained jointly on

  min_{E, G1} E ||X - G1(E(X))||^2                                                             (26)

(as a mean over pixels). The rate is exact: d code entries of 1 bit each (log2(L) bits with L centres).

Stage 2 (`PerceptualG2`): E is frozen and G2 is trained against a critic J(x, code) conditioned on the code,

  min_{G2} max_{J in F} E[J(G2(E(X)), E(X))] - E[J(X, E(X))],                                   (Sec. 4)

with WGAN-GP (lambda_gp = 10) and no distortion term. G2 takes the code concatenated with Gaussian noise
(100 inputs in all). Theorem 3 says an encoder optimal for MSE is optimal under the perfect-perception
constraint, and an optimal G2 then doubles the MSE of G1: MSE(G2) = 2 MSE(G1) (Theorem 2, Figure 2).

Optional critic pre-training (the "pre-training scheme" Section 4 mentions; it is in the authors' code, not
in the paper's text): during the first `pretrain_steps` steps of stage 2, G2 is not trained and the critic
learns to tell matched pairs (x, E(x)) (scored as real) from pairs with the codes shuffled within the batch
(scored as fake), so that J is sensitive to the code before the adversarial game starts. Its budget is
given in steps (`pretrain_steps`) or in matched/shuffled pairs (`pretrain_pairs`; the authors' code
pre-trains for one MNIST epoch: 469 updates of up to 128 pairs, `AUTHORS_PRETRAIN_PAIRS` = 469 x 128).

Remedies for a G2 that stalls on the code-ignoring plateau (issue 26; none of them is in the paper):
`warm_start` starts G2 from G1's weights (`warm_start_from_g1`, with a G2 of G1's layers,
`g1_shaped_generator`; both in `tfdplc.nets.warm_start`, importable from here too); `n_critic` > 1
gives more critic updates per G2 update; and a projection critic (`tfdplc.nets.yan_projection_critic`)
can replace the concatenating J.
"""

import os
from typing import Dict, Optional, Tuple

import gin
import numpy as np
import tensorflow as tf

from tfdplc import losses
from tfdplc.codec.interface import (
    CodecSpec,
    check_indexed_quantizer,
    noise_layer_draw,
    quantized_code_spec,
    realism_value,
)
from tfdplc.layers.noise import WithNoiseInput
from tfdplc.nets.warm_start import g1_shaped_generator, warm_start_from_g1
from tfdplc.objectives.base import ENCODER_FILE, Objective
from tfdplc.objectives.wgan_gp import critic_update, repeat_critic_updates, split_critic_batches

__all__ = [
    "AUTHORS_PRETRAIN_PAIRS",
    "DECODER_FILE",
    "code_map",
    "code_vector",
    "PerceptualG1",
    "PerceptualG2",
    "conditional_critic",
    "g1_shaped_generator",
    "load_encoder",
    "load_mse_decoder",
    "pretrain_critic_update",
    "pretrain_step_count",
    "random_permutation",
    "warm_start_from_g1",
]

#: File name of the stage-1 MSE decoder G1 in a stage-1 workdir (E is `ENCODER_FILE`, "encoder.keras").
DECODER_FILE = "decoder.keras"

#: The critic pre-training of the authors' train_MNIST.py, in matched/shuffled pairs: one epoch of the
#: 60,000 MNIST training digits at batch 128, i.e. 469 updates (the last of 96 pairs, so 60,000 pairs in
#: fact); counted here as 469 full batches.
AUTHORS_PRETRAIN_PAIRS = 469 * 128


def _images(data) -> tf.Tensor:
    """The images of a Keras batch (`train_on_batch(x)` hands `train_step` a 1-tuple `(x,)`)."""
    return tf.keras.utils.unpack_x_y_sample_weight(data)[0]


def _code_length(shape, what: str) -> int:
    """The code length d of a (batch, d) shape, with a clear error otherwise."""
    shape = tuple(shape)
    if len(shape) != 2 or shape[1] is None:
        raise ValueError(f"{what}: expected a (batch, d) code, got shape {shape}.")
    return int(shape[1])


def code_map(indices: tf.Tensor) -> tf.Tensor:
    """(B, d) code indices -> the codec's (B, 1, 1, d) code map (the codec's codes are (h, w, k))."""
    return tf.reshape(indices, [-1, 1, 1, int(indices.shape[-1])])


def code_vector(codes: tf.Tensor) -> tf.Tensor:
    """The codec's (B, 1, 1, d) code map -> (B, d) code indices (inverse of `code_map`)."""
    return tf.reshape(codes, [-1, int(codes.shape[-1])])


def _checked_realism(realism) -> tf.Tensor:
    """The realism weight alpha as a float32 scalar, refused unless it is finite and in [0, 1].

    Python numbers are checked at once (ValueError); tensors by graph assertions (InvalidArgumentError).
    """
    if not tf.is_tensor(realism):
        return tf.constant(realism_value(realism), tf.float32)
    alpha = tf.cast(realism, tf.float32)
    if alpha.shape.rank not in (None, 0):
        raise ValueError(f"realism must be a scalar, got shape {alpha.shape}.")
    with tf.control_dependencies(
        [
            tf.debugging.assert_greater_equal(alpha, 0.0, message="realism must be in [0, 1]"),
            tf.debugging.assert_less_equal(alpha, 1.0, message="realism must be in [0, 1]"),
        ]
    ):
        return tf.identity(alpha)


def load_encoder(path: str) -> tf.keras.Model:
    """Loads the stage-1 encoder E (`encoder.keras` of a finished `PerceptualG1` workdir).

    Args:
      path: a Keras v3 `.keras` file written by `PerceptualG1.save_artifacts`.

    Returns:
      The encoder model (images -> (B, d) values before quantization), not compiled.

    Raises:
      FileNotFoundError: if `path` does not exist.
    """
    import tfdplc.nets  # noqa: F401 - registers the custom objects a saved network may use.

    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"No stage-1 encoder at {path!r}: train (E, G1) first (tools/train.py with "
            "gin/perceptual_g1_*.gin writes WORKDIR/encoder.keras) and point PerceptualG2.encoder_path at it."
        )
    return tf.keras.models.load_model(path, compile=False)


def load_mse_decoder(path: str, code_length: int) -> tf.keras.Model:
    """Loads the stage-1 MSE decoder G1 (`decoder.keras` of a `PerceptualG1` workdir), frozen.

    Args:
      path: a Keras v3 `.keras` file written by `PerceptualG1.save_artifacts`.
      code_length: the code length d G1 must take.

    Returns:
      G1, (B, d) codes -> images, with `trainable = False`.

    Raises:
      FileNotFoundError: if `path` does not exist.
      ValueError: if G1 takes another code length than `code_length`.
    """
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"No stage-1 decoder at {path!r}: PerceptualG1 writes WORKDIR/decoder.keras.")
    import tfdplc.nets  # noqa: F401 - registers the custom objects a saved network may use.

    with tf.init_scope():
        decoder = tf.keras.models.load_model(path, compile=False)
    d = _code_length(decoder.input_shape, "the stage-1 decoder G1")
    if d != code_length:
        raise ValueError(
            f"PerceptualG2: the stage-1 decoder G1 takes d={d} code entries but G2 takes {code_length}: use "
            "the G1 of the same stage-1 run as the encoder."
        )
    decoder.trainable = False
    return decoder


def pretrain_step_count(pretrain_pairs, n_critic, batch, replicas=1):
    """The steps of critic pre-training that see at least `pretrain_pairs` matched/shuffled pairs.

    Each pre-training step makes n_critic critic updates, each on b matched and b shuffled pairs per
    replica, so a step sees n_critic * b * replicas pairs and the budget takes
    ceil(pretrain_pairs / (n_critic * b * replicas)) steps (whole steps: the last one may overshoot).

    Args:
      pretrain_pairs: the budget in pairs, >= 0 (Python int or integer tensor).
      n_critic: critic updates per step.
      batch: b, the images of one critic update on one replica (int or integer tensor).
      replicas: replicas in sync (each updates on its own b pairs per critic update).

    Returns:
      The number of steps, of the type of the arguments.
    """
    per_step = n_critic * batch * replicas
    return (pretrain_pairs + per_step - 1) // per_step


class _Conditioned:
    """J(., code) with the code held fixed: the single-input critic `critic_update` expects."""

    def __init__(self, critic: tf.keras.Model, code: tf.Tensor):
        self.critic = critic
        self.code = code

    def __call__(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        # The scores are float32 under a mixed-precision policy (critic outputs and losses stay float32).
        return Objective.float32(self.critic([images, self.code], training=training))

    @property
    def trainable_variables(self):
        return self.critic.trainable_variables


def conditional_critic(critic: tf.keras.Model, code: tf.Tensor):
    """Wraps J(x, code) as a function of the images alone for one batch of codes.

    The result is callable as `f(images, training=...)` and exposes J's `trainable_variables`, so the
    WGAN-GP critic step of `tfdplc.objectives.wgan_gp.critic_update` applies unchanged: the gradient
    penalty is then taken with respect to the images at the batch's own codes (as the authors' code does).

    Args:
      critic: J, [images (B, H, W, C), code (B, d)] -> scores (B, 1).
      code: (B, d) codes.

    Returns:
      The wrapped critic.
    """
    return _Conditioned(critic, code)


def random_permutation(n, seed: tf.Tensor) -> tf.Tensor:
    """A uniformly random permutation of 0..n-1 drawn from a stateless seed (shape [2]).

    The ranks of n i.i.d. full-range int64 draws (ties, which would bias it, have probability about
    n^2 / 2^65). Core ops only, so it also runs under XLA.
    """
    keys = tf.random.stateless_uniform(
        tf.reshape(n, [1]), seed=seed, minval=None, maxval=None, dtype=tf.int64
    )
    return tf.argsort(keys, stable=True)


def pretrain_critic_update(
    critic: tf.keras.Model,
    optimizer: tf.keras.optimizers.Optimizer,
    images: tf.Tensor,
    code: tf.Tensor,
    gp_weight: float,
    scale,
    permutation: Optional[tf.Tensor] = None,
    seed: Optional[tf.Tensor] = None,
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One pre-training step of the conditional critic J on matched vs. shuffled (image, code) pairs.

    As the authors' code does in its first epoch: real pairs (x_i, c_i), fake pairs (x_i, c_pi(i)) with pi a
    random permutation of the batch, and

      L = 1/b sum_i J(x_i, c_pi(i)) - J(x_i, c_i) + lambda_GP (||grad_x J(x_i, c~_i)|| - 1)^2,
      c~_i = nu_i c_i + (1 - nu_i) c_pi(i),  nu_i ~ U(0, 1),

    the norm per sample over all pixels. The penalty interpolates the codes and differentiates with
    respect to the image, as the authors' code does. Deviation: the authors apply the Wasserstein term and
    the penalty in two separate optimizer steps; here they form one loss and one step (standard WGAN-GP).

    Args:
      critic: J, [images, code] -> (B, 1) scores.
      optimizer: J's optimizer.
      images: (b, H, W, C) images x.
      code: (b, d) their codes c = E(x).
      gp_weight: lambda_GP.
      scale: maps the loss to the value whose gradient is applied (`Objective.scale_for_replicas`).
      permutation: optional (b,) permutation of the batch (drawn at random when None).
      seed: stateless seed (shape [2]) of the random draws: the permutation (when not given) from
        `stateless_fold_in(seed, 0)`, nu from `stateless_fold_in(seed, 1)`; `PerceptualG2` passes its
        `next_seed()` (exact resume). None: both from TF's global generator.

    Returns:
      (the loss, the estimate E J(x, c) - E J(x, c_pi), the gradient penalty), all scalars.
    """
    batch = tf.shape(images)[0]
    if seed is None:
        if permutation is None:
            permutation = tf.random.shuffle(tf.range(batch))
        nu = tf.random.uniform(tf.stack([batch, 1]), dtype=code.dtype)
    else:
        if permutation is None:
            permutation = random_permutation(batch, tf.random.experimental.stateless_fold_in(seed, 0))
        nu = tf.random.stateless_uniform(
            tf.stack([batch, 1]), seed=tf.random.experimental.stateless_fold_in(seed, 1), dtype=code.dtype
        )
    shuffled = tf.gather(code, permutation)
    mixed_code = nu * code + (1.0 - nu) * shuffled

    def scores_of(pairs):  # float32 scores under a mixed-precision policy: the penalty stays float32
        return Objective.float32(critic(pairs, training=True))

    with tf.GradientTape() as tape:
        wasserstein_loss = losses.critic_loss(scores_of([images, code]), scores_of([images, shuffled]))
        with tf.GradientTape() as inner:
            inner.watch(images)
            scores = scores_of([images, mixed_code])
        grads = inner.gradient(scores, images)
        norms = tf.sqrt(tf.reduce_sum(tf.reshape(tf.square(grads), [batch, -1]), axis=1) + 1e-12)
        penalty = tf.reduce_mean(tf.square(norms - 1.0))
        loss = wasserstein_loss + gp_weight * penalty
        scaled_loss = scale(loss)
    Objective.apply_gradients(optimizer, tape, scaled_loss, critic.trainable_variables)
    return loss, -wasserstein_loss, penalty


def _per_replica_batch(iterator) -> Optional[int]:
    """The static per-replica batch size of a (distributed) dataset iterator's images, or None.

    The images are the first component of an element (`x` of `(x,)` / `(x, y)`); under a distribution
    strategy the element spec holds one spec per local replica, all of one batch size.
    """
    spec = getattr(iterator, "element_spec", None)
    leaves = [leaf for leaf in tf.nest.flatten(spec, expand_composites=True) if hasattr(leaf, "shape")]
    if not leaves or leaves[0].shape.rank in (None, 0):
        return None
    batch = leaves[0].shape[0]
    return None if batch is None else int(batch)


class _PhasedTrainFunction:
    """The train function of a `PerceptualG2` with critic pre-training: one traced step per phase.

    Before each call it reads the finished steps (the critic optimizer's updates / n_critic, n_critic per
    step in both phases, as `PerceptualG2.in_pretraining` does) and runs Keras' train function made for
    the phase of the next step, with `PerceptualG2._pinned_phase` set so that tracing that function traces
    that phase only. A call of several steps (`steps_per_execution`) that would cross the end of the
    pre-training runs as two calls, the pre-training steps then the adversarial ones (Keras' multi-step
    function reads the step count from its variable at every call). With `pretrain_pairs` and a batch
    size unknown before the step runs, the phase is left to the step's `tf.cond` (one replica only).
    """

    def __init__(self, model: "PerceptualG2"):
        self.model = model
        execution = model._steps_per_execution
        # The value Keras decides by whether its function runs one step or loops over the variable's value.
        self.nominal = None if execution is None else int(execution.numpy())
        self.multi_step = execution is not None and (
            self.nominal > 1 or model.enable_tune_steps_per_execution
        )
        self.functions = {}

    def _function(self, phase: Optional[bool]):
        if phase not in self.functions:
            model = self.model
            execution, cached = model._steps_per_execution, model.train_function
            current = None if execution is None else int(execution.numpy())
            try:
                # Keras makes a 1-step function when the variable holds 1, e.g. in a call shortened by
                # StepClock or by the split below: make it at the compiled value.
                if execution is not None:
                    execution.assign(self.nominal)
                self.functions[phase] = model._keras_train_function()
            finally:
                if execution is not None:
                    execution.assign(current)
                model.train_function = cached  # Keras' maker caches its own function there
        return self.functions[phase]

    def _run(self, phase: Optional[bool], iterator):
        self.model._pinned_phase = phase  # read while the phase's function is traced (first call, retrace)
        try:
            return self._function(phase)(iterator)
        finally:
            self.model._pinned_phase = None

    def __call__(self, iterator):
        model = self.model
        batch = _per_replica_batch(iterator)
        boundary = model.pretraining_end(None if batch is None else batch // model.n_critic)
        if boundary is None:
            return self._run(None, iterator)
        done = int(model.optimizer_critic.iterations.numpy()) // model.n_critic
        execution = model._steps_per_execution
        steps = int(execution.numpy()) if self.multi_step else 1
        if done >= boundary or done + steps <= boundary:
            return self._run(done < boundary, iterator)
        first = boundary - done
        try:
            execution.assign(first)
            self._run(True, iterator)
            execution.assign(steps - first)
            return self._run(False, iterator)  # its logs hold both calls' steps (trackers reset per epoch)
        finally:
            execution.assign(steps)


@gin.configurable(module="tfdplc.objectives")
class PerceptualG1(Objective):
    """Stage 1 of Yan et al.: E (binary code, straight-through) and G1 trained on MSE only, eq. (26).

    Section 4: E maps a 32x32 image to d values quantized to {-1, 1} by z + sg[Q(z) - z] (eq. 25), so the
    rate is d bits per image; G1 decodes them. One optimizer for E and G1 (the authors' code: RMSprop,
    1e-4, /10 at epoch 50 of 100, batch 128). After training, `save_artifacts` writes E to `encoder.keras`
    and G1 to `decoder.keras`; stage 2 (`PerceptualG2`) loads E from there.
    """

    def __init__(
        self,
        encoder: tf.keras.Model = gin.REQUIRED,
        decoder: tf.keras.Model = gin.REQUIRED,
        quantizer: tf.keras.layers.Layer = gin.REQUIRED,
        optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        name: Optional[str] = "perceptual_g1",
    ):
        """Initialises the objective.

        Args:
          encoder: E, images -> (B, d) values before quantization (`tfdplc.nets.yan_encoder`).
          decoder: G1, (B, d) codes -> images in [0, 1] (`tfdplc.nets.yan_decoder`).
          quantizer: the fixed-codebook quantizer of E's output (the paper: centres (-1, 1), straight-through
            gradient); exposes `bits_per_element`.
          optimizer: one optimizer for E and G1.
          name: Keras model name.

        Raises:
          ValueError: if E's code length and G1's input length differ.
        """
        super().__init__(name=name)
        d = _code_length(encoder.output_shape, "PerceptualG1 encoder")
        if _code_length(decoder.input_shape, "PerceptualG1 decoder") != d:
            raise ValueError(
                f"PerceptualG1: E emits d={d} code entries but G1 takes {decoder.input_shape[1]}: give "
                "yan_encoder.d and yan_decoder.d the same value."
            )
        self.encoder = encoder
        self.decoder = decoder
        self.quantizer = quantizer
        self.optimizer_ae = optimizer
        self.mse_tracker = tf.keras.metrics.Mean("mse")

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        return {"autoencoder": self.optimizer_ae}

    @property
    def metrics(self):  # noqa: D102 - Keras resets these every epoch.
        return [self.mse_tracker]

    @property
    def rate_bits(self) -> float:  # noqa: D102 - d entries of log2(L) bits each.
        return float(np.prod(self.encoder.output_shape[1:])) * self.quantizer.bits_per_element

    def encode(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Images -> (B, d) codes on the quantizer's centres."""
        return self.quantizer(self.encoder(images, training=training), training=training)

    def decode(self, code: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Codes -> images G1(code) in [0, 1] (deterministic; float32 under any precision policy)."""
        return self.float32(self.decoder(code, training=training))

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:  # noqa: D102
        return self.decode(self.encode(images, training=training), training=training)

    # Codec interface (tfdplc.codec.interface): real bitstreams and export.

    def codec_spec(self) -> CodecSpec:
        """Fixed-rate codes: the d indices of E's quantized output as a (1, 1, d) map; G1 is deterministic.

        Raises:
          TypeError: if the quantizer has no centre indices (not a `ScalarQuantizer`).
        """
        code_length = _code_length(self.encoder.output_shape, "PerceptualG1 encoder")
        return quantized_code_spec(self.encoder, self.quantizer, self.name, code_shape=(1, 1, code_length))

    def encode_codes(self, images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        """Images -> int32 centre indices (B, 1, 1, d) of E's quantized code; `seeds` are unused."""
        del seeds  # E is deterministic.
        return code_map(self.quantizer.indices(self.encoder(images, training=False)))

    def decode_codes(self, codes: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        """Centre indices (B, 1, 1, d) -> G1(code); equals `self(images)` in inference mode. No seed used."""
        del seeds  # G1 has no noise (eq. 26 is an MSE decoder).
        return self.decode(self.quantizer.dequantize(code_vector(codes)))

    def train_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = _images(data)
        with tf.GradientTape() as tape:
            reconstructions = self(images, training=True)
            loss = losses.squared_error(images, reconstructions)  # eq. (26)
            scaled_loss = self.scale_for_replicas(loss)
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.apply_gradients(self.optimizer_ae, tape, scaled_loss, variables)
        self.mse_tracker.update_state(loss)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = _images(data)
        self.mse_tracker.update_state(losses.squared_error(images, self(images, training=False)))
        return {m.name: m.result() for m in self.metrics}

    def save_artifacts(self, directory: str) -> None:
        """Writes E to `directory/encoder.keras` and G1 to `directory/decoder.keras`.

        Args:
          directory: the output folder (exists).
        """
        self.encoder.save(os.path.join(directory, ENCODER_FILE))
        self.decoder.save(os.path.join(directory, DECODER_FILE))


@gin.configurable(module="tfdplc.objectives")
class PerceptualG2(Objective):
    """Stage 2 of Yan et al.: G2 and the conditional critic J trained by WGAN-GP with E frozen (Section 4).

    - E comes from stage 1 (`encoder_path`, a `PerceptualG1` workdir's `encoder.keras`, or `encoder`). It is
      frozen: `trainable = False`, in no optimizer, and ALWAYS called with `training=False`, so its
      BatchNorm moving statistics stay those of stage 1. From `encoder_path` it is loaded at the first use
      (`stage1_encoder`), so a config builds before the stage-1 run exists; the trainer calls the model
      right after building it, so a missing file still stops training at once.
    - G2 (`tfdplc.nets.yan_generator`) takes the d code entries and 100 - d Gaussian noise entries; J
      (`tfdplc.nets.yan_critic`) scores an image together with its code.
    - One step: n_critic critic updates, each on its own mini-batch of b images (the input batch holds
      n_critic * b images, `split_critic_batches`), with L_J = 1/b sum_i J(G2(c_i, n_i), c_i) - J(x_i, c_i)
      + lambda_GP (||grad_x J(x~_i, c_i)|| - 1)^2 (per-sample norm, `critic_update` on J(., c)); then one
      G2 update on L_G2 = -1/b sum_i J(G2(c_i, n'_i), c_i) with fresh noise on the last mini-batch. There
      is no distortion term. E runs once per step, on all n_critic * b images. The authors' code uses n_critic = 1 and batch 128.
    - `pretrain_steps` > 0: the first `pretrain_steps` steps only pre-train J on matched vs. shuffled code
      pairs (`pretrain_critic_update`, one update per mini-batch) and leave G2 untouched; the authors' code
      does this for one epoch. The phase is read from the critic optimizer's step count
      (n_critic updates per step in both phases), so it survives a resumed run. Keras' train function
      (`make_train_function`) reads it in Python before each call and runs a step traced for that phase
      alone, so pre-training also trains under a multi-replica strategy (MirroredStrategy), where a
      `tf.cond` between the phases' optimizer updates cannot. G2's optimizer counts only
      its own updates: a G2 learning-rate schedule starts after the pre-training. The training "mse" of
      a pre-training step is that of the untrained G2 in inference mode.
    - `pretrain_pairs` > 0 instead: the pre-training lasts the fewest whole steps that see at least that
      many matched/shuffled pairs (`pretrain_step_count`: n_critic * b * replicas pairs per step), so the
      budget does not change with the batch or n_critic. The authors' code: `AUTHORS_PRETRAIN_PAIRS`.
    - `warm_start` (not in the paper; issue 26): G2 starts from G1's weights (`warm_start_from_g1`, with
      G2 = `g1_shaped_generator`), loaded from `mse_decoder_path` when the objective is built. A resumed
      run overwrites them from its checkpoint; G1 is not attached, so checkpoints hold no copy of it.

    Randomness (exact resume): the penalty's interpolation weights and the pre-training's shuffles come
    from the objective's `random_generator`; G2's noise from its own noise layer (a generator inside G2,
    part of the model's checkpoint).

    Deviations from the authors' code (which trains G1 and G2 at the same time, feeding G2 the codes of the
    E that is still learning): the two stages run one after the other, as Section 3.2 prescribes; the critic
    update is one step on the Wasserstein term plus the penalty (theirs: two optimizer steps).
    """

    def __init__(
        self,
        generator: tf.keras.Model = gin.REQUIRED,
        critic: tf.keras.Model = gin.REQUIRED,
        quantizer: tf.keras.layers.Layer = gin.REQUIRED,
        generator_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        critic_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        encoder_path: Optional[str] = None,
        encoder: Optional[tf.keras.Model] = None,
        n_critic: int = 1,
        gp_weight: float = 10.0,
        pretrain_steps: int = 0,
        mse_decoder_path: Optional[str] = None,
        pretrain_pairs: int = 0,
        warm_start: bool = False,
        name: Optional[str] = "perceptual_g2",
    ):
        """Initialises the objective.

        Args:
          generator: G2, a `WithNoiseInput` model (`tfdplc.nets.yan_generator`): (B, d) codes [+ noise]
            -> images in [0, 1].
          critic: J, [images, (B, d) codes] -> (B, 1) scores (`tfdplc.nets.yan_critic`); no batch norm.
          quantizer: the quantizer of stage 1 (the same centres), applied to E's output.
          generator_optimizer: G2's optimizer (authors' code: RMSprop 1e-4).
          critic_optimizer: J's optimizer (authors' code: RMSprop 1e-3).
          encoder_path: the stage-1 `encoder.keras` (exactly one of this and `encoder`).
          encoder: the stage-1 encoder as a model.
          n_critic: critic updates per G2 update (authors' code: 1).
          gp_weight: lambda_GP (Section 4: 10).
          pretrain_steps: steps of critic pre-training on matched vs. shuffled codes before G2 trains
            (0: none).
          mse_decoder_path: the stage-1 `decoder.keras` (G1), needed for decoding with a realism weight
            (`decode_realism`, `decode_codes_realism`; loaded at the first such call, never trained) and
            for `warm_start`. None: `decoder.keras` beside `encoder_path` (the stage-1 workdir writes both).
          pretrain_pairs: the critic pre-training budget in matched/shuffled pairs instead of steps (0:
            none); at most one of `pretrain_steps` and `pretrain_pairs` may be non-zero.
          warm_start: copy G1's weights into G2 before training (`warm_start_from_g1`; not in the paper).
          name: Keras model name.

        Raises:
          ValueError: if both or neither of `encoder_path` / `encoder` are given, if G2 takes no noise, if
            the code lengths of G2 and J (and of `encoder`) differ, on a bad n_critic / gp_weight /
            pretrain_steps / pretrain_pairs, on both pre-training budgets, or (`warm_start`) if no G1
            path is known or G2 does not have G1's layers.
          FileNotFoundError: with `warm_start`, if G1's file does not exist.
        """
        super().__init__(name=name)
        if (encoder_path is None) == (encoder is None):
            raise ValueError(
                "PerceptualG2: give exactly one of encoder_path (a stage-1 encoder.keras) and encoder."
            )
        if not isinstance(generator, WithNoiseInput):
            raise ValueError(
                "PerceptualG2: G2 must take noise (tfdplc.nets.yan_generator): Section 4 feeds it Gaussian noise."
            )
        if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
            raise ValueError(f"PerceptualG2: n_critic must be a positive integer, got {n_critic!r}.")
        if isinstance(pretrain_steps, bool) or not isinstance(pretrain_steps, int) or pretrain_steps < 0:
            raise ValueError(
                f"PerceptualG2: pretrain_steps must be a non-negative integer, got {pretrain_steps!r}."
            )
        if isinstance(pretrain_pairs, bool) or not isinstance(pretrain_pairs, int) or pretrain_pairs < 0:
            raise ValueError(
                f"PerceptualG2: pretrain_pairs must be a non-negative integer, got {pretrain_pairs!r}."
            )
        if pretrain_steps and pretrain_pairs:
            raise ValueError(
                "PerceptualG2: give the critic pre-training budget as pretrain_steps or as pretrain_pairs, "
                f"not both (got {pretrain_steps} steps and {pretrain_pairs} pairs)."
            )
        gp_weight = float(gp_weight)
        if not (np.isfinite(gp_weight) and gp_weight >= 0):
            raise ValueError(f"PerceptualG2: gp_weight must be non-negative and finite, got {gp_weight}.")
        if not isinstance(critic.input_shape, list) or len(critic.input_shape) != 2:
            raise ValueError(
                f"PerceptualG2: J must take [images, code] (tfdplc.nets.yan_critic), got inputs {critic.input_shape}."
            )
        d = int(generator.trunk.input_shape[-1]) - generator.noise_layer.m
        self.code_length = d
        self.encoder = None
        self.encoder_path = None if encoder_path is None else os.fspath(encoder_path)
        # G1 is attached only when a realism-weighted decode asks for it, so training checkpoints (and
        # those written before this option existed) hold no copy of it.
        self.mse_decoder = None
        if mse_decoder_path is None and self.encoder_path is not None:
            mse_decoder_path = os.path.join(os.path.dirname(self.encoder_path), DECODER_FILE)
        self.mse_decoder_path = None if mse_decoder_path is None else os.fspath(mse_decoder_path)
        if encoder is not None:  # checked first: E's code is what G2 and J must take
            self._attach_encoder(encoder)
        critic_d = _code_length(critic.input_shape[1], "PerceptualG2 critic")
        if critic_d != d:
            raise ValueError(
                f"PerceptualG2: G2 takes d={d} code entries but J takes {critic_d}: set yan_critic.d = {d}."
            )
        self.generator = generator
        self.critic = critic
        self.quantizer = quantizer
        self.optimizer_generator = generator_optimizer
        self.optimizer_critic = critic_optimizer
        self.n_critic = n_critic
        self.gp_weight = gp_weight
        self.pretrain_steps = pretrain_steps
        self.pretrain_pairs = pretrain_pairs
        # The phase of the step being traced, set by `_PhasedTrainFunction` around each call (None outside).
        self._pinned_phase: Optional[bool] = None
        if warm_start:
            if self.mse_decoder_path is None:
                raise ValueError(
                    "PerceptualG2: warm_start needs G1: set PerceptualG2.mse_decoder_path (or encoder_path, "
                    "beside which the stage-1 run wrote decoder.keras)."
                )
            # A local G1, not self.mse_decoder: checkpoints must not grow a copy of it.
            warm_start_from_g1(generator, load_mse_decoder(self.mse_decoder_path, d))
        # Both updates may run inside tf.cond / tf.while_loop, where optimizer slots cannot be created.
        self.optimizer_critic.build(self.critic.trainable_variables)
        self.optimizer_generator.build(self.generator.trainable_variables)
        self.critic_loss_tracker = tf.keras.metrics.Mean("critic_loss")
        self.wasserstein_tracker = tf.keras.metrics.Mean("wasserstein")
        self.penalty_tracker = tf.keras.metrics.Mean("gradient_penalty")
        self.pretrain_tracker = tf.keras.metrics.Mean("pretrain_critic_loss")
        self.generator_loss_tracker = tf.keras.metrics.Mean("generator_loss")
        self.mse_tracker = tf.keras.metrics.Mean("mse")

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        return {"generator": self.optimizer_generator, "critic": self.optimizer_critic}

    @property
    def metrics(self):  # noqa: D102 - Keras resets these every epoch.
        return [
            self.critic_loss_tracker,
            self.wasserstein_tracker,
            self.penalty_tracker,
            self.pretrain_tracker,
            self.generator_loss_tracker,
            self.mse_tracker,
        ]

    @property
    def rate_bits(self) -> float:  # noqa: D102 - the d entries of the stage-1 code (E's length is checked).
        return float(self.code_length) * self.quantizer.bits_per_element

    def _attach_encoder(self, encoder: tf.keras.Model) -> None:
        d = _code_length(encoder.output_shape, "PerceptualG2 encoder")
        if d != self.code_length:
            raise ValueError(
                f"PerceptualG2: the stage-1 E emits d={d} code entries but G2 takes {self.code_length}: set "
                f"yan_generator.d = yan_critic.d = {d} (the K of the stage-1 run)."
            )
        encoder.trainable = False
        self.encoder = encoder

    def stage1_encoder(self) -> tf.keras.Model:
        """The frozen stage-1 E, loaded from `encoder_path` at the first call.

        Inside a `tf.function` the file is loaded eagerly (`tf.init_scope`).

        Raises:
          FileNotFoundError: if `encoder_path` does not exist.
          ValueError: if its code length differs from G2's.
        """
        if self.encoder is None:
            with tf.init_scope():
                self._attach_encoder(load_encoder(self.encoder_path))
        return self.encoder

    def encode(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Images -> (B, d) codes with the frozen E (always in inference mode; `training` is ignored)."""
        del training
        encoder = self.stage1_encoder()
        return tf.stop_gradient(self.quantizer(encoder(images, training=False), training=False))

    def sample_noise(self, n) -> tf.Tensor:
        """Draws G2's (n, noise_dim) Gaussian noise from its own noise layer (advances its state)."""
        return self.generator.noise_layer.sample(n)

    def decode(self, code: tf.Tensor, noise: Optional[tf.Tensor] = None, training: bool = False) -> tf.Tensor:
        """Codes -> images G2(code, noise) in [0, 1]; stochastic unless `noise` is given.

        Args:
          code: (B, d) codes from `encode`.
          noise: optional (B, noise_dim) noise; the same noise gives the same images.
          training: mode of G2.

        Returns:
          The decoded images.
        """
        return self.float32(self.generator(code, noise=noise, training=training))

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:  # noqa: D102
        return self.decode(self.encode(images), training=training)

    # Codec interface (tfdplc.codec.interface): real bitstreams and export.

    def codec_spec(self) -> CodecSpec:
        """Fixed-rate codes of the frozen stage-1 E as a (1, 1, d) map; a stochastic decoder (G2's noise).

        The image shape is G2's output shape, so the spec needs no stage-1 file (E is loaded when the codec
        first encodes).

        Raises:
          TypeError: if the quantizer has no centre indices (not a `ScalarQuantizer`).
        """
        check_indexed_quantizer(self.quantizer, self.name)
        return CodecSpec(
            image_shape=tuple(self.generator.output_shape[1:]),
            code_shape=(1, 1, self.code_length),
            levels=self.quantizer.num_levels,
            stochastic_decoder=True,
            method=self.name,
        )

    def encode_codes(self, images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        """Images -> int32 centre indices (B, 1, 1, d) of the frozen E's code; `seeds` are unused."""
        del seeds  # E is deterministic (and frozen, in inference mode).
        encoder = self.stage1_encoder()
        return code_map(self.quantizer.indices(encoder(images, training=False)))

    def codec_noise(self, seeds: tf.Tensor) -> tf.Tensor:
        """G2's (B, noise_dim) noise drawn from each image's seed (stream DECODER_NOISE).

        It has the distribution of G2's own noise layer (Section 4: Gaussian), so `decode(code,
        codec_noise(s))` is one draw of the trained decoder, reproducible from the seed.
        """
        return noise_layer_draw(self.generator.noise_layer, seeds)

    def decode_codes(self, codes: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        """Centre indices (B, 1, 1, d) -> G2(code, noise) with the noise of `codec_noise(seeds)`."""
        code = self.quantizer.dequantize(code_vector(codes))
        return self.decode(code, noise=self.codec_noise(seeds))

    # Decode-time distortion-perception slider (beyond the paper; issue 13): G1 and G2 share E, so one
    # code can be decoded by either decoder or by a blend of the two.

    def has_mse_decoder(self) -> bool:
        """Whether G1 is attached or its file exists, so `decode_codes_realism` can run.

        The exporter adds the `decompress_realism` signature only then (`tfdplc.codec.export`).
        """
        if self.mse_decoder is not None:
            return True
        return self.mse_decoder_path is not None and tf.io.gfile.exists(self.mse_decoder_path)

    def stage1_decoder(self) -> tf.keras.Model:
        """The frozen stage-1 MSE decoder G1, loaded from `mse_decoder_path` at the first call.

        Raises:
          ValueError: if no `mse_decoder_path` was given, or G1 takes another code length than G2.
          FileNotFoundError: if the file does not exist.
        """
        if self.mse_decoder is None:
            if self.mse_decoder_path is None:
                raise ValueError(
                    "PerceptualG2: decoding with a realism weight needs the stage-1 MSE decoder G1: set "
                    "PerceptualG2.mse_decoder_path to the stage-1 workdir's decoder.keras."
                )
            self.mse_decoder = load_mse_decoder(self.mse_decoder_path, self.code_length)
        return self.mse_decoder

    def decode_realism(self, code: tf.Tensor, realism, noise: Optional[tf.Tensor] = None) -> tf.Tensor:
        """Codes -> the blend (1 - alpha) G1(code) + alpha G2(code, noise), alpha = `realism`.

        alpha = 0 is G1's MSE decode and alpha = 1 G2's perceptual decode, each exactly. With G2 a sample of
        the posterior given the code (the optimum of Yan et al. Theorem 2), MSE(alpha) = (1 + alpha^2)
        MSE(G1): a decoder-side trade-off between distortion and perception from one trained pair.

        Args:
          code: (B, d) codes on the quantizer's centres (from `encode` or dequantized indices).
          realism: alpha, a Python number or scalar tensor in [0, 1].
          noise: optional (B, noise_dim) noise of G2 (None: G2 draws its own).

        Returns:
          The decoded images, in [0, 1].

        Raises:
          ValueError: if a Python `realism` is not a finite number in [0, 1].
          tf.errors.InvalidArgumentError: if a tensor `realism` is outside [0, 1] or not finite.
        """
        alpha = _checked_realism(realism)
        mse_decode = self.float32(self.stage1_decoder()(code, training=False))
        perceptual_decode = self.decode(code, noise=noise)
        return (1.0 - alpha) * mse_decode + alpha * perceptual_decode

    def decode_codes_realism(self, codes: tf.Tensor, seeds: tf.Tensor, realism) -> tf.Tensor:
        """Centre indices (B, 1, 1, d) -> `decode_realism` with G2's noise from `codec_noise(seeds)`.

        At `realism` = 1 this is `decode_codes(codes, seeds)` exactly; at 0, G1's decode of the codes.
        """
        code = self.quantizer.dequantize(code_vector(codes))
        return self.decode_realism(code, realism, noise=self.codec_noise(seeds))

    def generator_loss(self, code: tf.Tensor, noise: Optional[tf.Tensor] = None) -> Dict[str, tf.Tensor]:
        """-1/b sum_i J(G2(c_i, n_i), c_i), the G2 objective of Section 4, with G2 and J in training mode.

        Returns:
          A dict with "generator_loss" and "reconstructions".
        """
        fake = self.decode(code, noise=noise, training=True)
        loss = losses.generator_loss(self.float32(self.critic([fake, code], training=True)))
        return {"generator_loss": loss, "reconstructions": fake}

    def _critic_iteration(self, real: tf.Tensor, code: tf.Tensor, pretraining: bool) -> None:
        if pretraining:
            loss, wasserstein, penalty = pretrain_critic_update(
                self.critic,
                self.optimizer_critic,
                real,
                code,
                self.gp_weight,
                self.scale_for_replicas,
                seed=self.next_seed(),
            )
            self.pretrain_tracker.update_state(loss)
        else:
            fake = self.decode(code, training=True)
            loss, wasserstein, penalty = critic_update(
                conditional_critic(self.critic, code),
                self.optimizer_critic,
                real,
                fake,
                self.gp_weight,
                self.scale_for_replicas,
                seed=self.next_seed(),
            )
            self.critic_loss_tracker.update_state(loss)
            self.wasserstein_tracker.update_state(wasserstein)
        self.penalty_tracker.update_state(penalty)

    def _critic_loop(self, batches: tf.Tensor, codes: tf.Tensor, pretraining: bool) -> None:
        repeat_critic_updates(
            self.n_critic,
            lambda t: self._critic_iteration(tf.gather(batches, t), tf.gather(codes, t), pretraining),
        )

    def _adversarial_step(self, batches: tf.Tensor, codes: tf.Tensor) -> tf.Tensor:
        self._critic_loop(batches, codes, pretraining=False)
        real, code = batches[-1], codes[-1]
        with tf.GradientTape() as tape:
            terms = self.generator_loss(code)
            scaled = self.scale_for_replicas(terms["generator_loss"])
        self.apply_gradients(self.optimizer_generator, tape, scaled, self.generator.trainable_variables)
        self.generator_loss_tracker.update_state(terms["generator_loss"])
        # MSE of G2 on the training batch (the curve the authors log); not part of any loss.
        self.mse_tracker.update_state(losses.squared_error(real, terms["reconstructions"]))
        return tf.constant(True)

    def _pretrain_step(self, batches: tf.Tensor, codes: tf.Tensor) -> tf.Tensor:
        self._critic_loop(batches, codes, pretraining=True)
        # G2 is not trained yet; its MSE (in inference mode: no BatchNorm update) keeps the curve defined.
        self.mse_tracker.update_state(losses.squared_error(batches[-1], self.decode(codes[-1])))
        return tf.constant(False)

    def pretrains(self) -> bool:
        """Whether the run has a critic pre-training phase (either budget non-zero)."""
        return bool(self.pretrain_steps or self.pretrain_pairs)

    def in_pretraining(self, batch=None) -> tf.Tensor:
        """Whether the next step is a critic pre-training step (a boolean scalar tensor).

        The critic optimizer has made n_critic updates per finished step, in both phases, so the finished
        steps are its iterations / n_critic.

        Args:
          batch: b, the images of one critic update on one replica; needed with `pretrain_pairs`.

        Raises:
          ValueError: with `pretrain_pairs` and no `batch`.
        """
        if self.pretrain_pairs:
            if batch is None:
                raise ValueError(
                    "PerceptualG2.in_pretraining: a budget in pairs needs the batch b per update."
                )
            steps = pretrain_step_count(
                tf.constant(self.pretrain_pairs, tf.int64),
                self.n_critic,
                tf.cast(batch, tf.int64),
                tf.distribute.get_strategy().num_replicas_in_sync,
            )
        else:
            steps = self.pretrain_steps
        return self.optimizer_critic.iterations < steps * self.n_critic

    def pretraining_end(self, batch: Optional[int] = None) -> Optional[int]:
        """The step after which pre-training ends (its number of steps), as a Python int.

        `in_pretraining` is True while the finished steps are fewer (the same count, as a graph tensor).

        Args:
          batch: b, the images of one critic update on one replica; needed with `pretrain_pairs`.

        Returns:
          `pretrain_steps`, or with `pretrain_pairs` the steps of `pretrain_step_count` at the model's
          replicas; None with `pretrain_pairs` and no `batch`.
        """
        if not self.pretrain_pairs:
            return self.pretrain_steps
        if batch is None:
            return None
        replicas = self.distribute_strategy.num_replicas_in_sync
        return pretrain_step_count(self.pretrain_pairs, self.n_critic, int(batch), replicas)

    def make_train_function(self, force: bool = False):
        """Keras' train function; with critic pre-training, one traced step per phase (see `stage2_step`).

        A `tf.cond` between the two phases cannot hold their optimizer updates under a multi-replica
        strategy (each update aggregates gradients across replicas, a merge_call, which TensorFlow does not
        allow inside a cond). The function returned here decides the phase in Python before each call,
        from the critic optimizer's step count as `in_pretraining` does, and runs the Keras train function
        traced for that phase (`_PhasedTrainFunction`): the same steps, in the same order, with the same
        random draws as the `tf.cond`, on any number of replicas, and a resumed run starts in the phase its
        checkpoint is in. A call of `steps_per_execution` steps that would cross the end of the pre-training
        is split there into two calls. On one replica the results equal the `tf.cond`'s bit for bit with
        Grappler off; with it on, they may differ in float rounding (measured: about 1e-7 relative after 4
        steps), because Grappler fuses ops of a one-phase graph differently from those of the cond's
        branches (the `tf.cond` step itself differs as much between steps_per_execution 1 and 3).

        Args:
          force: make a new function even if one is cached.

        Returns:
          A function of a (distributed) dataset iterator that runs one call of training steps.
        """
        if not self.pretrains() or self._cluster_coordinator:
            return super().make_train_function(force=force)
        if self.train_function is None or force:
            self.train_function = _PhasedTrainFunction(self)
        return self.train_function

    def _keras_train_function(self):
        """A new train function of Keras' own (`tf.keras.Model.make_train_function`), not cached."""
        return super().make_train_function(force=True)

    def train_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = _images(data)
        batches = split_critic_batches(images, self.n_critic)
        # E is frozen and runs in inference mode, so a code does not depend on its batch: one call of E
        # serves every critic update and the G2 update (which reuses the last mini-batch).
        codes = split_critic_batches(self.encode(images), self.n_critic)
        self.stage2_step(batches, codes)
        return {m.name: m.result() for m in self.metrics}

    def stage2_step(self, batches: tf.Tensor, codes: tf.Tensor) -> None:
        """The critic updates and the G2 update of one step (or J's pre-training while `in_pretraining`).

        The phase is the one the train function of `make_train_function` pinned for the step being traced;
        a step traced or run outside it (a hand-written loop) reads it from the critic optimizer's step
        count with a `tf.cond`, which works eagerly and on one replica only.

        Args:
          batches: (n_critic, b, H, W, C) images, one mini-batch per critic update (`split_critic_batches`).
          codes: (n_critic, b, d) their codes, with no gradient to E.

        Raises:
          ValueError: when traced under several replicas without a pinned phase.
        """
        if not self.pretrains():
            self._adversarial_step(batches, codes)
        elif self._pinned_phase is not None:  # decided in Python by `make_train_function`'s function
            if self._pinned_phase:
                self._pretrain_step(batches, codes)
            else:
                self._adversarial_step(batches, codes)
        else:
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            if replicas > 1 and not tf.executing_eagerly():
                # Each branch would aggregate gradients across replicas (a merge_call) inside a tf.cond.
                raise ValueError(
                    f"PerceptualG2: a traced step under {replicas} replicas cannot choose between critic "
                    "pre-training and the adversarial step in the graph; train through Keras (fit / "
                    "train_on_batch, which trace one step per phase: make_train_function) with a static "
                    "batch size (drop_remainder=True), or call train_step eagerly."
                )
            tf.cond(
                self.in_pretraining(tf.shape(batches)[1]),
                lambda: self._pretrain_step(batches, codes),
                lambda: self._adversarial_step(batches, codes),
            )

    def test_step(self, data) -> Dict[str, tf.Tensor]:
        """MSE of G2 on held-out images and the critic's estimate of the conditional W (no update)."""
        images = _images(data)
        code = self.encode(images)
        fake = self.decode(code)
        real_scores = self.float32(self.critic([images, code], training=False))
        fake_scores = self.float32(self.critic([fake, code], training=False))
        self.wasserstein_tracker.update_state(-losses.critic_loss(real_scores, fake_scores))
        self.generator_loss_tracker.update_state(losses.generator_loss(fake_scores))
        self.mse_tracker.update_state(losses.squared_error(images, fake))
        tracked = (self.wasserstein_tracker, self.generator_loss_tracker, self.mse_tracker)
        return {m.name: m.result() for m in tracked}
