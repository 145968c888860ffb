"""DPLC stage 2: the rate-constrained encoder E and stochastic map B for a frozen G* (Tschannen et al. 2018).

Eq. (8): min_{B, E: B(E(X)) ~ P_Z} E_{X,B}[d(X, G*(B(E(X))))], with the distribution constraint relaxed
to an MMD penalty (Section 4): the loss of one step is

  L = 1/b sum_i ||x_i - G*(B(E(x_i)))|| + lambda_MMD(R) * MMD_IMQ({z_j}, {B(E(x_i))}),  z_j ~ N(0, I_m),

the distortion and MMD of Algorithm 1 (lines 15-16) with F replaced by B o E and G fixed. The decoder of
the compression system is D = G* o B, stochastic through B's noise input.
"""

import os
from typing import Callable, Dict, Optional

import gin
import numpy as np
import tensorflow as tf

from tfdplc import batch_norm, losses
from tfdplc.codec.interface import (
    SAMPLER,
    CodecSpec,
    noise_layer_draw,
    per_example_normal,
    quantized_code_spec,
)
from tfdplc.layers.noise import WithNoiseInput
from tfdplc.objectives.base import Objective

__all__ = ["DPLC", "load_generator"]


def load_generator(path: str) -> tf.keras.Model:
    """Loads the stage-1 generator G* (`generator.keras` of a finished stage-1 workdir).

    Args:
      path: a Keras v3 `.keras` file saved with `model.save`.

    Returns:
      The generator model (not compiled).

    Raises:
      FileNotFoundError: if `path` does not exist.
    """
    import tfdplc.nets  # noqa: F401 - registers the custom objects the saved generator uses.

    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"No stage-1 generator at {path!r}: train G* first (e.g. tools/train.py with a WAE, WGAN-GP or "
            "Wasserstein++ config writes WORKDIR/generator.keras) and point DPLC.generator_path at it."
        )
    return tf.keras.models.load_model(path, compile=False)


def _latent_dim(model: tf.keras.Model, what: str) -> int:
    shape = model.input_shape if what == "input" else model.output_shape
    if isinstance(shape, list) or len(shape) != 2 or shape[1] is None:
        raise ValueError(f"{model.name}: expected a (batch, m) {what}, got shape {shape}.")
    return int(shape[1])


@gin.configurable(module="tfdplc.objectives")
class DPLC(Objective):
    """Stage 2 of DPLC: trains E and B against a frozen generator G* (eq. 8, Section 4, Table 3).

    - G* comes from stage 1 (WAE, WGAN-GP or Wasserstein++), loaded from `generator_path` or given as a
      model. It is frozen: `trainable = False`, never in an optimizer, and ALWAYS called with
      `training=False`, so its BatchNorm moving statistics never change (the DPLC reference code let them
      update in this stage).
    - E is quantized to the fixed centres {-1, 1} (soft-to-hard gradient of [9]); the rate is exact:
      h * w * k * log2(L) bits per image. k = 0 is rate 0: E emits an empty code, B maps its noise alone to
      z, and the system is a pure generator G* o B.
    - B must be stochastic (`mapping_B(noise=True)`): at low rates only its noise lets B(E(X)) match P_Z.
    - One Adam optimizer for E and B (Table 3: 1e-3, beta 0.5 / 0.999, b 256, 41k (CelebA) / 82k (LSUN)
      iterations, x0.4 at 22k;38k / 44k;76k).
    - lambda_MMD(R) scales with the CAE's MSE at rate R: see `tfdplc.objectives.scaled_lambda`.

    The prior samples z ~ N(0, I_m) come from the objective's `random_generator` (seeded with `seed`, or
    from the run's seed: `tfdplc.objectives.base.objective_generator`), created in `__init__`; build the
    objective inside `strategy.scope()` so each replica gets its own stream, as for
    `tfdplc.layers.NoiseInput`. The generator is also the model's attribute `_prior`, as before issue 26,
    so its state is in the model's checkpoint too and checkpoints of either age restore it.

    The checkpoint of a stage-2 run holds G*'s weights as well (they are attributes of the objective), but
    rebuilding the objective from gin loads `generator_path` again, so that file must still exist.
    """

    def __init__(
        self,
        encoder: tf.keras.Model = gin.REQUIRED,
        mapping: tf.keras.Model = gin.REQUIRED,
        quantizer: tf.keras.layers.Layer = gin.REQUIRED,
        optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        lambda_mmd: float = gin.REQUIRED,
        generator_path: Optional[str] = None,
        generator: Optional[tf.keras.Model] = None,
        distortion: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] = losses.euclidean_distance,
        seed: Optional[int] = None,
        batch_statistics: bool = True,
        recalibrate_batch_norm: bool = False,
        name: Optional[str] = "dplc",
    ):
        """Initialises the objective.

        Args:
          encoder: E, images -> unquantized code maps (B, h, w, k); k may be 0.
          mapping: B with its noise input, a `tfdplc.layers.WithNoiseInput` model (`mapping_B(noise=True)`):
            code maps -> z (B, m).
          quantizer: the fixed-codebook quantizer of E's output (exposes `bits_per_element`).
          optimizer: one optimizer for E and B.
          lambda_mmd: the MMD coefficient lambda_MMD(R) (e.g. `@scaled_lambda()` in gin), >= 0.
          generator_path: path of the stage-1 `generator.keras` (exactly one of this and `generator`).
          generator: the stage-1 generator as a model.
          distortion: d(x, x_hat) -> scalar; the paper uses the Euclidean distance. Its scale convention
            (`tfdplc.losses`) fixes what lambda_mmd means: Table 3's bases were tuned with the
            authors'-code `losses.batch_rmse_pm1`.
          seed: seed of the prior sampler (None: derived from the run's seed; before issue 26 it was
            non-deterministic).
          batch_statistics: whether E's and B's batch normalisation uses the batch's statistics while
            training (Keras training mode for both networks, as the paper and the authors' code). False
            runs E and B in inference mode in the training step too (the quantizer keeps its training
            gradient), so each z_i depends on x_i and its own noise only. With batch statistics the
            images of a batch are coupled, and the U-statistic MMD estimate, whose expectation is
            MMD^2 >= 0 only for independent samples, can be driven below zero by the coupling itself; with
            a large lambda_MMD that becomes the optimum (issue 11: results/dplc/README.md). A deviation
            from the paper, off by default.
          recalibrate_batch_norm: at the end of a successful training run (`save_artifacts`), set E's
            and B's batch-norm moving statistics to the population statistics of the training split in
            the deployed pipeline and save that as the workdir's latest checkpoint
            (`tfdplc.deployed.recalibrate_workdir`; the split is `train.train_split` when bound, else
            "train", read with the gin-bound `input_pipeline`). Not in the paper (its code never uses
            moving statistics): with batch statistics in training, the codec's inference mode otherwise
            runs on moving averages that lag the weights (issue 25). Off by default.
          name: Keras model name.

        Raises:
          ValueError: if both or neither of `generator_path` / `generator` are given, if B has no noise
            input, if B's output and G*'s input dimensions differ, if `lambda_mmd` is negative, or if
            `recalibrate_batch_norm` is set but E and B have no batch norm.
          FileNotFoundError: if `generator_path` does not exist.
        """
        super().__init__(name=name, random_seed=seed)
        if (generator_path is None) == (generator is None):
            raise ValueError(
                "DPLC: give exactly one of generator_path (a stage-1 generator.keras) and generator."
            )
        if generator is None:
            generator = load_generator(os.fspath(generator_path))
        if not isinstance(mapping, WithNoiseInput):
            raise ValueError(
                "DPLC: B must be stochastic (mapping_B(noise=True)): without noise B(E(X)) cannot match P_Z "
                "at low rates. For a deterministic B use the CAE objective."
            )
        m = _latent_dim(generator, "input")
        if _latent_dim(mapping, "output") != m:
            raise ValueError(
                f"DPLC: B outputs z of dimension {_latent_dim(mapping, 'output')} but G* takes m={m}: set "
                "mapping_B.m to the stage-1 generator's latent dimension."
            )
        lambda_mmd = float(lambda_mmd)
        if not (np.isfinite(lambda_mmd) and lambda_mmd >= 0):
            raise ValueError(f"DPLC: lambda_mmd must be non-negative and finite, got {lambda_mmd}.")
        if recalibrate_batch_norm and not batch_norm.batch_norm_layers([encoder, mapping]):
            raise ValueError(
                "DPLC: recalibrate_batch_norm needs batch norm in E or B; these networks normalise per "
                "example (nothing to recalibrate): leave it False."
            )
        generator.trainable = False
        self.encoder = encoder
        self.mapping = mapping
        self.quantizer = quantizer
        self.generator = generator
        self.optimizer_eb = optimizer
        self.lambda_mmd = lambda_mmd
        self.distortion = distortion
        self.batch_statistics = bool(batch_statistics)
        self.recalibrate_batch_norm = bool(recalibrate_batch_norm)
        self.latent_dim = m
        self._prior = self.random_generator  # tracked under its pre-issue-26 name (checkpoint layout)
        self.loss_tracker = tf.keras.metrics.Mean("loss")
        self.distortion_tracker = tf.keras.metrics.Mean("distortion")
        self.mmd_tracker = tf.keras.metrics.Mean("mmd")
        self.mse_tracker = tf.keras.metrics.Mean("mse")

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        return {"encoder_mapping": self.optimizer_eb}

    @property
    def metrics(self):  # noqa: D102 - Keras resets these every epoch.
        return [self.loss_tracker, self.distortion_tracker, self.mmd_tracker, self.mse_tracker]

    @property
    def rate_bits(self) -> float:  # noqa: D102
        return float(np.prod(self.encoder.output_shape[1:])) * self.quantizer.bits_per_element

    def sample_prior(self, n) -> tf.Tensor:
        """Draws n samples z ~ P_Z = N(0, I_m) from the objective's generator (advances its state)."""
        return self._prior.normal(tf.stack([tf.cast(n, tf.int32), self.latent_dim]), dtype=tf.float32)

    def sample_noise(self, n) -> tf.Tensor:
        """Draws B's (n, m) input noise from B's own noise layer (advances its state)."""
        return self.mapping.noise_layer.sample(n)

    def encode(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Images -> quantized code maps (B, h, w, k), values on the quantizer's centres."""
        return self.quantizer(self.encoder(images, training=training), training=training)

    def latents(
        self, code: tf.Tensor, noise: Optional[tf.Tensor] = None, training: bool = False
    ) -> tf.Tensor:
        """Code maps -> z = B(code, noise) (noise drawn when None), float32 under any precision policy."""
        return self.float32(self.mapping(code, noise=noise, training=training))

    def decode(self, code: tf.Tensor, noise: Optional[tf.Tensor] = None, training: bool = False) -> tf.Tensor:
        """Code maps -> images G*(B(code, noise)) in [0, 1]; stochastic unless `noise` is given.

        Args:
          code: quantized code maps from `encode`.
          noise: optional (batch, m) noise of B; the same noise gives the same images.
          training: mode of B (G* always runs in inference mode).

        Returns:
          The decoded images.
        """
        return self.float32(
            self.generator(self.latents(code, noise=noise, training=training), training=False)
        )

    def call(self, images: tf.Tensor, training: bool = False) -> tf.Tensor:  # noqa: D102
        return self.decode(self.encode(images, training=training), training=training)

    def sample(self, n: int, seed: Optional[tf.Tensor] = None) -> tf.Tensor:
        """Draws n samples G*(z), z ~ N(0, I_m), what the decoder matches in distribution at every rate.

        Args:
          n: number of images.
          seed: optional stateless seed (shape [2]) of the latent draw; None uses the objective's generator.

        Returns:
          (n, H, W, C) images in [0, 1].
        """
        if seed is None:
            z = self.sample_prior(n)
        else:
            z = tf.random.stateless_normal(tf.stack([tf.cast(n, tf.int32), self.latent_dim]), seed=seed)
        return self.float32(self.generator(z, training=False))

    def save_artifacts(self, directory: str) -> None:
        """With `recalibrate_batch_norm`: the workdir's latest checkpoint, recalibrated, as a new latest one.

        Called by the trainer after a successful run (and again when a finished run is restarted, which
        then finds the recalibrated checkpoint latest and does nothing). Without the option: nothing.
        """
        if not self.recalibrate_batch_norm:
            return
        # Imported here: the trainer imports the objectives.
        from tfdplc import data, deployed
        from tfdplc.train.config import bound_value

        latest = tf.train.latest_checkpoint(os.path.join(directory, "checkpoints"))
        if latest and os.path.basename(latest).startswith(deployed.RECALIBRATED_CHECKPOINT_NAME + "-"):
            return
        split = bound_value("train.train_split") or "train"
        dataset = data.input_pipeline(
            split=split, shuffle=False, repeat=False, drop_remainder=False, degradation=None
        )
        images = np.concatenate([batch.numpy() for batch in dataset])
        deployed.recalibrate_workdir(self, directory, images, metadata={"split": split})

    # Codec interface (tfdplc.codec.interface): real bitstreams and export.

    def codec_spec(self) -> CodecSpec:
        """Fixed-rate codes (indices of E's quantized output), a stochastic decoder (B's noise); samples G*(z)."""
        return quantized_code_spec(
            self.encoder, self.quantizer, self.name, stochastic_decoder=True, can_sample=True
        )

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

    def sample_images(self, seeds: tf.Tensor) -> tf.Tensor:
        """Codec interface: one image G*(z_i) per seed, z_i ~ N(0, I_m) drawn from seed i (stream SAMPLER)."""
        return self.float32(
            self.generator(per_example_normal(seeds, [self.latent_dim], SAMPLER), training=False)
        )

    def compute_losses(
        self, images: tf.Tensor, noise: tf.Tensor, prior: tf.Tensor, training: bool = False
    ) -> Dict[str, tf.Tensor]:
        """The terms of eq. (8) for a batch, given B's noise and the prior samples explicitly.

        Args:
          images: (b, H, W, C) images.
          noise: (b, m) noise of B.
          prior: (b, m) samples of P_Z.
          training: mode of E and B (G* always runs in inference mode); with `batch_statistics` False, E
            and B run in inference mode and only the quantizer sees `training`.

        Returns:
          A dict with "loss" (= distortion + lambda_MMD * mmd), "distortion", "mmd" and "reconstructions".
        """
        networks_training = training and self.batch_statistics
        code = self.quantizer(self.encoder(images, training=networks_training), training=training)
        z_hat = self.latents(code, noise=noise, training=networks_training)
        # z_hat is float32 (`latents`): the MMD kernel sums and the distortion stay float32.
        reconstructions = self.float32(self.generator(z_hat, training=False))
        distortion = self.distortion(images, reconstructions)
        mmd = losses.mmd_imq(prior, z_hat)
        return {
            "loss": distortion + self.lambda_mmd * mmd,
            "distortion": distortion,
            "mmd": mmd,
            "reconstructions": reconstructions,
        }

    def train_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = self.images_of(data)
        batch = tf.shape(images)[0]
        noise, prior = self.sample_noise(batch), self.sample_prior(batch)
        with tf.GradientTape() as tape:
            terms = self.compute_losses(images, noise, prior, training=True)
            scaled_loss = self.scale_for_replicas(terms["loss"])
        variables = self.encoder.trainable_variables + self.mapping.trainable_variables
        self.apply_gradients(self.optimizer_eb, tape, scaled_loss, variables)
        return self._update_metrics(images, terms)

    def test_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        images = self.images_of(data)
        batch = tf.shape(images)[0]
        terms = self.compute_losses(images, self.sample_noise(batch), self.sample_prior(batch))
        # The MMD U-statistic needs 2 samples; a last validation batch of 1 image reports 0.
        terms["mmd"] = tf.where(batch > 1, terms["mmd"], 0.0)
        terms["loss"] = terms["distortion"] + self.lambda_mmd * terms["mmd"]
        return self._update_metrics(images, terms)

    def _update_metrics(self, images, terms) -> Dict[str, tf.Tensor]:
        self.loss_tracker.update_state(terms["loss"])
        self.distortion_tracker.update_state(terms["distortion"])
        self.mmd_tracker.update_state(terms["mmd"])
        self.mse_tracker.update_state(losses.squared_error(images, terms["reconstructions"]))
        return {m.name: m.result() for m in self.metrics}
