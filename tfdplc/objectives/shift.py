"""Compression with distribution shift (Liu et al. 2022, Section 3.1, eq. 13-16, Appendix B.2-B.3).

The encoder f sees a degraded image X (a x4 down-up sampled digit, a noisy SVHN crop), the decoder g must
output an image Y^ that follows the distribution P_Y of CLEAN images while staying close to X:

  min_{f, g} E||X - Y^||^2 + lambda * W1(P_Y, P_Y^),   Y^ = g(Q(f(X) + U) - U)          (eq. 13-15)

W1 is estimated by a WGAN-GP critic h (Appendix B.3, Table 3: Adam 1e-4, (0.5, 0.999), lambda_GP = 10)
that compares Y^ with clean images. The setting is unsupervised: the critic's clean images are never
the clean versions of the images the encoder sees in that step (see `split_unpaired`); ground truth only
enters the evaluation (`mse_gt`, Appendix B.6).

Quantization (selected by the `quantizer` given to `ShiftCompression`):
  * fixed rate, the paper's: `tfdplc.layers.UniversalQuantizer(levels=L)` on the tanh output of f,
    d * log2 L bits per image (Appendix B.2), with a shared dither (common randomness, eq. 14) or with
    independent dithers U1, U2 at encoder and decoder (no common randomness, eq. 16:
    Y^ = g(Q(f(X) + U1) - U2)). The quantizer's `common_randomness=False` draws U2 from a different
    seed than U1 (the reference code's switch still shared the dither); `tests/test_shift.py` checks it.
  * variable rate, beyond the paper: a tfc entropy model with a learned prior
    (`tfdplc.layers.UniversalBottleneck`: universal quantization with tfc's shared dither, i.e. common
    randomness; `tfdplc.layers.EntropyBottleneck`: deterministic rounding, no randomness shared) on
    `code_scale * f(X)`, plus `rate_weight` * (estimated bits per image) in the loss; the prior may have
    an optimizer of its own (`prior_optimizer`, see `ShiftCompression`). Evaluation writes real
    range-coded strings (`compress` / `decompress`) and reports their length.

`UnpairedWassersteinObjective` holds the update rule (critic step, then the MSE + lambda * W1 step); the
separate baseline's restoration network (Appendix B.5, eq. 70, `tfdplc.objectives.restoration`) reuses it,
and `ShiftCompression(restoration_path=...)` is the baseline's compression stage (eq. 71).
"""

import json
import os
from typing import Dict, Optional, Tuple

import gin
import numpy as np
import tensorflow as tf

from tfdplc import losses
from tfdplc.codec.interface import (
    ENCODER_DITHER,
    CodecSpec,
    bottleneck_codes,
    bottleneck_values,
    per_example_seed_pairs,
)
from tfdplc.layers.bottlenecks import EntropyBottleneck, UniversalBottleneck
from tfdplc.layers.quantizers import UniversalQuantizer
from tfdplc.objectives.base import ENCODER_FILE, Objective
from tfdplc.objectives.wgan_gp import critic_update, repeat_critic_updates

__all__ = [
    "CODEC_FILE",
    "DECODER_FILE",
    "RESTORATION_FILE",
    "ShiftCompression",
    "UnpairedWassersteinObjective",
    "load_frozen_network",
    "load_shift_codec",
    "split_unpaired",
    "unpack_pairs",
]

#: Files a finished ShiftCompression workdir holds (read by the two-branch decomposition).
DECODER_FILE = "decoder.keras"
CODEC_FILE = "shift_codec.json"
#: The restoration network a finished Restoration workdir holds (read by the separate baseline).
RESTORATION_FILE = "restoration.keras"

_PAIRS_HINT = (
    "bind a degradation in gin (input_pipeline.degradation = @tfdplc.data.SuperResolution() or "
    "@tfdplc.data.GaussianNoise()) so that the pipeline yields (degraded, clean) pairs"
)


def unpack_pairs(data, what: str = "This objective") -> Tuple[tf.Tensor, tf.Tensor]:
    """The (degraded, clean) batches of what Keras hands to `train_step` / `test_step`.

    Args:
      data: a (degraded, clean) tuple, as `input_pipeline(degradation=...)` yields it.
      what: the caller's name for the error message.

    Returns:
      (degraded, clean), two image batches of the same shape.

    Raises:
      ValueError: if `data` is not a pair of batches.
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"{what} trains on (degraded, clean) image pairs: {_PAIRS_HINT}.")
    return data[0], data[1]


def split_unpaired(degraded: tf.Tensor, clean: tf.Tensor, n_critic: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """Splits a batch of 2 * n_critic * b pairs into unpaired (source, target) mini-batches.

    Chunk t holds pairs [2bt, 2b(t+1)); its first b DEGRADED images are the encoder's inputs X and its last
    b CLEAN images are the critic's samples of P_Y. So in every step the critic compares the outputs for
    X with clean images of OTHER digits, never with the clean versions of the X it sees (the unsupervised
    setting of Section 3). Over many steps an image may serve in either role, as both come from one
    training split; the pairing is never used.

    Args:
      degraded: (2 * n_critic * b, H, W, C) degraded images.
      clean: the clean images of the same batch.
      n_critic: number of critic mini-batches.

    Returns:
      (sources, targets), each (n_critic, b, H, W, C).

    Raises:
      ValueError: if the static batch size is not a multiple of 2 * n_critic (checked at run time when it
        is dynamic).
    """
    message = (
        f"The (per-replica) batch must hold 2 * n_critic * b pairs (n_critic = {n_critic}): half of each "
        "critic chunk feeds the encoder, the other half's clean images feed the critic. Set "
        "input_pipeline.batch_size accordingly."
    )
    batch = degraded.shape[0]
    if batch is not None and batch % (2 * n_critic):
        raise ValueError(f"{message} Got a batch of {batch}.")
    dynamic = tf.shape(degraded)[0]
    checks = [tf.debugging.assert_equal(dynamic % (2 * n_critic), 0, message=message)]
    with tf.control_dependencies(checks):
        shape = tf.concat([[n_critic, 2, dynamic // (2 * n_critic)], tf.shape(degraded)[1:]], axis=0)
        return tf.reshape(degraded, shape)[:, 0], tf.reshape(clean, shape)[:, 1]


def _check_nonnegative(value, label: str, owner: str) -> float:
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{owner}: {label} must be non-negative and finite, got {value}.")
    return value


def load_frozen_network(path: str, what: str) -> tf.keras.Model:
    """Loads a `.keras` network written by another workdir and freezes it (`trainable = False`).

    Callers must still run it with `training=False` so that BatchNorm uses (and keeps) its moving
    statistics.

    Args:
      path: the `.keras` file.
      what: what the file is and which run writes it, for the error message.

    Returns:
      The frozen model.

    Raises:
      FileNotFoundError: if `path` does not exist.
    """
    import tfdplc.layers  # noqa: F401 - registers the custom layers the saved networks may use.

    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"No {what} at {path!r}.")
    model = tf.keras.models.load_model(path, compile=False)
    model.trainable = False
    return model


class UnpairedWassersteinObjective(Objective):
    """MSE(S, T(S)) + lambda * W1(P_Y, P_T(S)) with an unpaired WGAN-GP critic (Liu et al. eq. 15, 70, 71).

    S is the source the output must stay close to (the degraded X, or the restored R(X) in the
    baseline's compression stage), T the trainable transform (f, Q, g, or the restoration U-Net). One
    `train_step`: n_critic critic updates (`critic_update`: the per-sample gradient penalty of Gulrajani et
    al., lambda_GP), each on its own chunk of the batch (`split_unpaired`), then one update of T on
    squared_error(S, T(S)) + lambda * (-1/b sum_i h(T(S)_i)) [+ rate_weight * bits] on the last chunk.
    The paper does not give n_critic; 1 (the default) matches the authors' code as the project's speed
    target describes it ("1 critic step with GP + 1 encoder/decoder step").

    Subclasses set `self.optimizer_ae` (the optimizer of T), implement
    `transform(sources, training, seed) -> (outputs, bits or None)` and `generator_variables()`, and may
    override `source(degraded)`.

    Evaluation is reproducible: `reconstruct(degraded, seed)` takes an explicit stateless seed (shape [2])
    for every random draw of T; without one it uses `[eval_seed, 0]`.
    """

    #: The training and evaluation data are (degraded, clean) pairs (tools/evaluate.py reads this).
    paired_data = True

    def __init__(
        self,
        critic: tf.keras.Model,
        critic_optimizer: tf.keras.optimizers.Optimizer,
        lambda_wd: float,
        gp_weight: float = 10.0,
        n_critic: int = 1,
        eval_seed: int = 0,
        name: Optional[str] = None,
    ):
        """Initialises the shared parts.

        Args:
          critic: h, images -> (B, 1) scores; no batch norm (the penalty is per sample).
          critic_optimizer: the critic's optimizer (Table 3: Adam 1e-4, 0.5, 0.999).
          lambda_wd: lambda of eq. 15 / 70 / 71, >= 0.
          gp_weight: lambda_GP (Table 3: 10).
          n_critic: critic updates per update of T.
          eval_seed: seed of the default evaluation randomness.
          name: Keras model name.

        Raises:
          ValueError: if n_critic < 1, lambda_wd or gp_weight is negative, or eval_seed is not an int.
        """
        super().__init__(name=name)
        owner = type(self).__name__
        if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
            raise ValueError(f"{owner}: n_critic must be a positive integer, got {n_critic!r}.")
        if isinstance(eval_seed, bool) or not isinstance(eval_seed, int):
            raise ValueError(f"{owner}: eval_seed must be an integer, got {eval_seed!r}.")
        self.critic = critic
        self.optimizer_critic = critic_optimizer
        self.lambda_wd = _check_nonnegative(lambda_wd, "lambda_wd", owner)
        self.gp_weight = _check_nonnegative(gp_weight, "gp_weight", owner)
        self.n_critic = n_critic
        self.eval_seed = eval_seed
        self.rate_weight = 0.0
        self.estimates_bits = False  # True where T has an entropy model (then "bits" is logged)
        self.optimizer_prior = None  # an entropy model's prior's own optimizer (`prior_variables`), if any
        # The critic steps may run in a graph loop, where optimizer slots cannot be created.
        self.optimizer_critic.build(self.critic.trainable_variables)
        self.loss_tracker = tf.keras.metrics.Mean("loss")
        self.mse_tracker = tf.keras.metrics.Mean("mse")
        self.generator_loss_tracker = tf.keras.metrics.Mean("generator_loss")
        self.critic_loss_tracker = tf.keras.metrics.Mean("critic_loss")
        self.wasserstein_tracker = tf.keras.metrics.Mean("wasserstein")
        self.gp_tracker = tf.keras.metrics.Mean("gradient_penalty")
        self.bits_tracker = tf.keras.metrics.Mean("bits")
        self.mse_gt_tracker = tf.keras.metrics.Mean("mse_gt")

    # ------------------------------------------------------------------------------------------------
    # Subclass hooks.

    def transform(
        self, sources: tf.Tensor, training: bool = False, seed: Optional[tf.Tensor] = None
    ) -> Tuple[tf.Tensor, Optional[tf.Tensor]]:
        """T: sources -> (outputs, estimated bits per example or None)."""
        raise NotImplementedError

    def generator_variables(self) -> list:
        """The trainable variables of T."""
        raise NotImplementedError

    def source(self, degraded: tf.Tensor) -> tf.Tensor:
        """The images T encodes and the MSE compares with (default: the degraded images themselves)."""
        return degraded

    def prior_variables(self) -> list:
        """Variables that `optimizer_prior` updates from the same loss (default: none)."""
        return []

    # ------------------------------------------------------------------------------------------------

    def default_seed(self) -> tf.Tensor:
        """The stateless seed `[eval_seed, 0]` used when evaluation gets none."""
        return tf.constant([self.eval_seed, 0], tf.int64)

    def reconstruct(self, images: tf.Tensor, seed: Optional[tf.Tensor] = None) -> tf.Tensor:
        """Inference-mode output for a batch of DEGRADED images, with explicit randomness.

        Args:
          images: (B, H, W, C) degraded images X.
          seed: stateless seed (shape [2]) of every random draw (dithers); None: `default_seed()`.

        Returns:
          The restored (and, for compression, decoded) images in [0, 1].
        """
        seed = self.default_seed() if seed is None else seed
        return self.transform(self.source(images), training=False, seed=seed)[0]

    def call(self, images, training: bool = False) -> tf.Tensor:  # noqa: D102
        if isinstance(images, (tuple, list)):  # a (degraded, clean) pair: T only sees the degraded images
            images = images[0]
        seed = None if training else self.default_seed()
        return self.transform(self.source(images), training=training, seed=seed)[0]

    @property
    def metrics(self):  # noqa: D102 - Keras resets these every epoch.
        return [
            self.loss_tracker,
            self.mse_tracker,
            self.generator_loss_tracker,
            self.critic_loss_tracker,
            self.wasserstein_tracker,
            self.gp_tracker,
            self.bits_tracker,
            self.mse_gt_tracker,
        ]

    def _critic_iteration(self, sources: tf.Tensor, targets: tf.Tensor) -> None:
        fake, _ = self.transform(self.source(sources), training=True)
        loss, wasserstein, penalty = critic_update(
            self.critic,
            self.optimizer_critic,
            targets,
            fake,
            self.gp_weight,
            self.scale_for_replicas,
            seed=self.next_seed(),  # checkpointed generator: a resumed run draws what it would have
        )
        self.critic_loss_tracker.update_state(loss)
        self.wasserstein_tracker.update_state(wasserstein)
        self.gp_tracker.update_state(penalty)

    def losses_of(self, sources: tf.Tensor, training: bool, seed=None) -> Dict[str, tf.Tensor]:
        """The objective of T on one mini-batch of sources (eq. 15 / 70 / 71, plus the rate term).

        Args:
          sources: (b, H, W, C) source images S (already through `source`).
          training: mode of T.
          seed: stateless seed of T's randomness (None: the layers' generators).

        Returns:
          A dict with "loss", "mse" (squared_error(S, T(S))), "generator_loss" (-mean h(T(S))), "bits"
          (mean estimated bits per example, 0 for fixed-rate or rate-free T) and "outputs".
        """
        outputs, bits = self.transform(sources, training=training, seed=seed)
        mse = losses.squared_error(sources, outputs)
        # Critic scores and losses stay float32 under a mixed-precision policy.
        generator_loss = losses.generator_loss(self.float32(self.critic(outputs, training=training)))
        loss = mse + self.lambda_wd * generator_loss
        mean_bits = tf.zeros([]) if bits is None else tf.reduce_mean(bits)
        if bits is not None and self.rate_weight:
            loss += self.rate_weight * mean_bits
        return {
            "loss": loss,
            "mse": mse,
            "generator_loss": generator_loss,
            "bits": mean_bits,
            "outputs": outputs,
        }

    def train_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        degraded, clean = unpack_pairs(data, type(self).__name__)
        sources, targets = split_unpaired(degraded, clean, self.n_critic)
        repeat_critic_updates(
            self.n_critic, lambda t: self._critic_iteration(tf.gather(sources, t), tf.gather(targets, t))
        )
        x = self.source(sources[-1])
        separate_prior = self.optimizer_prior is not None
        with tf.GradientTape(persistent=separate_prior) as tape:
            terms = self.losses_of(x, training=True)
            scaled = self.scale_for_replicas(terms["loss"])
        self.apply_gradients(self.optimizer_ae, tape, scaled, self.generator_variables())
        if separate_prior:  # the same loss's gradient, another optimizer (see ShiftCompression)
            self.apply_gradients(self.optimizer_prior, tape, scaled, self.prior_variables())
        del tape
        for tracker, key in (
            (self.loss_tracker, "loss"),
            (self.mse_tracker, "mse"),
            (self.generator_loss_tracker, "generator_loss"),
            (self.bits_tracker, "bits"),
        ):
            tracker.update_state(terms[key])
        names = ("loss", "mse", "generator_loss", "critic_loss", "wasserstein", "gradient_penalty")
        names += ("bits",) if self.estimates_bits else ()
        return {m.name: m.result() for m in self.metrics if m.name in names}

    def test_step(self, data) -> Dict[str, tf.Tensor]:
        """Held-out losses with the default evaluation seed, the critic's W1 estimate and `mse_gt`.

        Test-time pairs are used only to measure (the paper's Appendix B.6): `mse` is against the source
        (X, or R(X) in the baseline), `mse_gt` against the clean ground truth.
        """
        degraded, clean = unpack_pairs(data, type(self).__name__)
        terms = self.losses_of(self.source(degraded), training=False, seed=self.default_seed())
        self.loss_tracker.update_state(terms["loss"])
        self.mse_tracker.update_state(terms["mse"])
        self.generator_loss_tracker.update_state(terms["generator_loss"])
        self.bits_tracker.update_state(terms["bits"])
        self.mse_gt_tracker.update_state(losses.squared_error(clean, terms["outputs"]))
        self.wasserstein_tracker.update_state(
            -losses.critic_loss(self.float32(self.critic(clean)), self.float32(self.critic(terms["outputs"])))
        )
        names = ("loss", "mse", "generator_loss", "wasserstein", "mse_gt")
        names += ("bits",) if self.estimates_bits else ()
        return {m.name: m.result() for m in self.metrics if m.name in names}


def _fixed_rate(quantizer) -> bool:
    """True for the paper's L-level universal quantizer, False for an entropy bottleneck.

    Raises:
      TypeError: for any other layer.
      ValueError: for a UniversalQuantizer in unit-step mode (no fixed rate and no entropy model).
    """
    if isinstance(quantizer, UniversalQuantizer):
        if not quantizer.bounded:
            raise ValueError(
                "ShiftCompression: UniversalQuantizer(step=...) has an unbounded alphabet and no entropy "
                "model; use UniversalQuantizer(levels=L) (fixed rate, Appendix B.2) or "
                "UniversalBottleneck (variable rate)."
            )
        return True
    if isinstance(quantizer, (UniversalBottleneck, EntropyBottleneck)):
        return False
    raise TypeError(
        "ShiftCompression: quantizer must be a tfdplc.layers.UniversalQuantizer(levels=L) (fixed rate) or a "
        f"UniversalBottleneck / EntropyBottleneck (variable rate), got {type(quantizer).__name__}."
    )


@gin.configurable(module="tfdplc.objectives")
class ShiftCompression(UnpairedWassersteinObjective):
    """The end-to-end system of Liu et al. Fig. 4(a): f, Q, g and critic h trained on eq. 15.

    Y^ = g(Q(f(S))) with S = X (or S = R(X), a frozen restoration network, in the separate baseline of
    Appendix B.5: eq. 71 trains f, g on E||S - Y^||^2 + lambda_2 W1 and the evaluation reports E||X - Y^||^2).
    See the module docstring for the quantization modes. Table 3: f and g share one Adam (1e-4, 0.5, 0.999;
    identical to two Adams with those settings), lambda = 1e-3 (super-resolution) / 3e-3 (denoising).

    Rate: fixed-rate `rate_bits` = d * log2 L exactly (d = f's output size); variable rate: None, measured
    from real strings in evaluation (`compress`, after `prepare_for_coding()`).

    Randomness: in training the fixed-rate quantizer draws its dithers (U1 and, without common
    randomness, the independent U2 of eq. 16) from its own seeded generator, a layer of the model whose
    state is in the model's checkpoint; the variable-rate bottleneck's noise u ~ U(-1/2, 1/2) and the
    critic's penalty weights come from stateless seeds of the objective's `random_generator`, which the
    trainer checkpoints beside the model. So a stopped and resumed run continues every stream of the
    uninterrupted run (issue 26; tests/test_resume.py). In evaluation `reconstruct` / `compress` /
    `decompress` take an explicit stateless seed, so evaluation is reproducible for the stochastic decoder
    without common randomness as well. (The variable-rate models' inference output uses tfc's dither, a
    fixed function of the code shape, or plain rounding, and ignores the seed.)

    After training, `save_artifacts` writes f and g (`encoder.keras`, `decoder.keras`) and the quantizer
    (`shift_codec.json`) for the two-branch decomposition (`tfdplc.objectives.ShiftDecomposition`).
    """

    def __init__(
        self,
        encoder: tf.keras.Model = gin.REQUIRED,
        decoder: tf.keras.Model = gin.REQUIRED,
        critic: tf.keras.Model = gin.REQUIRED,
        quantizer: tf.keras.layers.Layer = gin.REQUIRED,
        optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        critic_optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        lambda_wd: float = 1e-3,
        gp_weight: float = 10.0,
        n_critic: int = 1,
        rate_weight: float = 0.0,
        code_scale: float = 1.0,
        prior_optimizer: Optional[tf.keras.optimizers.Optimizer] = None,
        restoration_path: Optional[str] = None,
        eval_seed: int = 0,
        name: Optional[str] = None,
    ):
        """Initialises the objective.

        Args:
          encoder: f, images -> (B, d) codes in (-1, 1) (tanh), e.g. `tfdplc.nets.liu_encoder`.
          decoder: g, (B, d) -> images in [0, 1], e.g. `tfdplc.nets.liu_decoder`.
          critic: h, images -> (B, 1), e.g. `tfdplc.nets.liu_critic`.
          quantizer: `UniversalQuantizer(levels=L, common_randomness=...)` (fixed rate) or
            `UniversalBottleneck()` / `EntropyBottleneck()` (variable rate).
          optimizer: one optimizer for f and g.
          critic_optimizer: the critic's optimizer.
          lambda_wd: lambda of eq. 15 (lambda_2 of eq. 71 for the baseline).
          gp_weight: lambda_GP.
          n_critic: critic updates per update of f and g.
          rate_weight: weight of the estimated bits per image in the loss (variable rate only).
          code_scale: the bottleneck quantizes `code_scale * f(S)` to integers, so the tanh code has about
            2 * code_scale + 1 levels per symbol (variable rate only; must be 1 for fixed rate).
          prior_optimizer: variable rate only: the learned prior's own optimizer (None: `optimizer` updates
            it with f and g). The prior's only gradient is the rate term's, whose optimum (the density of
            the codes) does not depend on `rate_weight`, and Adam removes the gradient's scale, so with
            the shared optimizer at its small learning rate the prior moves the same small distance at
            every weight and its initial width sets the rate (issue 27: 53 bits per image for a code
            carrying nothing, after 3000 steps from tfc's init_scale 10). A faster optimizer of its own
            lets it fit the codes within the run (results/shift/vr_prior_fit.py).
          restoration_path: a `restoration.keras` from a `Restoration` run: S = R(X) with R frozen
            (the separate baseline's compression stage), loaded at the first use. None: S = X.
          eval_seed: seed of the default evaluation dithers.
          name: Keras model name; None gives "shift-cr", "shift-ncr", "shift-vr", "shift-vr-ncr" (and
            "baseline-..." with a restoration stage).

        Raises:
          TypeError: if the quantizer is of an unsupported type.
          ValueError: on out-of-range arguments, rate_weight / code_scale / prior_optimizer set for a
            fixed-rate quantizer, or encoder and decoder code sizes that differ.
        """
        fixed = _fixed_rate(quantizer)
        rate_weight = _check_nonnegative(rate_weight, "rate_weight", "ShiftCompression")
        code_scale = float(code_scale)
        if not (np.isfinite(code_scale) and code_scale > 0):
            raise ValueError(f"ShiftCompression: code_scale must be positive and finite, got {code_scale}.")
        if fixed and prior_optimizer is not None:
            raise ValueError(
                "ShiftCompression: prior_optimizer applies to the variable-rate bottlenecks only (the "
                "fixed-rate UniversalQuantizer has no prior)."
            )
        if fixed and (rate_weight or code_scale != 1.0):
            raise ValueError(
                "ShiftCompression: rate_weight and code_scale apply to the variable-rate bottlenecks only; "
                f"the fixed-rate UniversalQuantizer has d * log2 L bits (got rate_weight={rate_weight}, "
                f"code_scale={code_scale})."
            )
        code_in, code_out = encoder.output_shape, decoder.input_shape
        if len(code_in) != 2 or code_in[1:] != code_out[1:]:
            raise ValueError(
                f"ShiftCompression: the encoder outputs codes of shape {code_in} but the decoder takes "
                f"{code_out}; both must be (batch, d) with one d."
            )
        if name is None:
            if fixed:
                suffix = "cr" if quantizer.common_randomness else "ncr"
            else:
                suffix = "vr" if isinstance(quantizer, UniversalBottleneck) else "vr-ncr"
            name = f"{'shift' if restoration_path is None else 'baseline'}-{suffix}"
        super().__init__(
            critic=critic,
            critic_optimizer=critic_optimizer,
            lambda_wd=lambda_wd,
            gp_weight=gp_weight,
            n_critic=n_critic,
            eval_seed=eval_seed,
            name=name,
        )
        self.encoder = encoder
        self.decoder = decoder
        self.quantizer = quantizer
        self.optimizer_ae = optimizer
        self.optimizer_prior = prior_optimizer
        self.fixed_rate = fixed
        self.rate_weight = rate_weight
        self.estimates_bits = not fixed
        self.code_scale = code_scale
        self.restoration = None  # loaded at the first use, see `restoration_network`
        self.restoration_path = None if restoration_path is None else os.fspath(restoration_path)
        self.latent_dim = int(code_in[1])

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        optimizers = {"autoencoder": self.optimizer_ae, "critic": self.optimizer_critic}
        if self.optimizer_prior is not None:
            optimizers["prior"] = self.optimizer_prior
        return optimizers

    @property
    def rate_bits(self) -> Optional[float]:
        """Bits per image: d * log2 L for the fixed-rate quantizer; None (measured) for variable rate."""
        return self.quantizer.rate_bits((self.latent_dim,)) if self.fixed_rate else None

    def restoration_network(self) -> Optional[tf.keras.Model]:
        """The frozen R of the separate baseline (None without `restoration_path`), loaded at the first use.

        Loading waits for the first call so that building the objective from a config does not need the
        restoration run yet (the trainer calls the model right after building it, so a missing file still
        stops training at once). Inside a `tf.function` it is loaded eagerly (`init_scope`).

        Raises:
          FileNotFoundError: if `restoration_path` does not exist.
        """
        if self.restoration_path is None:
            return None
        if self.restoration is None:
            with tf.init_scope():
                self.restoration = load_frozen_network(
                    self.restoration_path,
                    "restoration network (train the baseline's first stage, gin/shift_restoration_*.gin, "
                    "which writes WORKDIR/restoration.keras)",
                )
        return self.restoration

    def source(self, degraded: tf.Tensor) -> tf.Tensor:  # noqa: D102
        restoration = self.restoration_network()
        return degraded if restoration is None else self.float32(restoration(degraded, training=False))

    def generator_variables(self) -> list:  # noqa: D102
        variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        if not self.fixed_rate and self.optimizer_prior is None:
            variables += self.quantizer.trainable_variables  # the learned prior, with f and g
        return variables

    def prior_variables(self) -> list:
        """The learned prior's variables when it has its own optimizer (else none)."""
        return self.quantizer.trainable_variables if self.optimizer_prior is not None else []

    def transform(self, sources, training=False, seed=None):
        """Y^ = g(Q(f(S))) and the estimated bits per example (None for fixed rate).

        Args:
          sources: (B, H, W, C) images S.
          training: mode of f, g (BatchNorm) and of the bottleneck (noise vs. quantization).
          seed: stateless seed of the fixed-rate quantizer's dithers (None: its generator) or of the
            variable-rate bottleneck's training noise (None: a fresh seed from `random_generator`; the
            bottleneck's inference output is deterministic and ignores it).

        Returns:
          (Y^, bits or None).
        """
        # Under a mixed-precision policy f and g run in float16/bfloat16; the quantizer or the tfc
        # entropy model (float32 layers, `tfdplc.train.precision`), the bits and the outputs are float32.
        code = self.float32(self.encoder(sources, training=training))
        if self.fixed_rate:
            return self.float32(self.decoder(self.quantizer(code, seed=seed), training=training)), None
        if seed is None and training is not None and training is not False:
            # tfc would draw the noise from TF's global seed: from the checkpointed generator, a resumed
            # run draws what the uninterrupted one would have (exact resume, issue 26).
            seed = self.next_seed()
        quantized, bits = self.quantizer(code * self.code_scale, training=training, seed=seed)
        return self.float32(self.decoder(quantized / self.code_scale, training=training)), bits

    # ------------------------------------------------------------------------------------------------
    # The codec: what the sender transmits and how the receiver decodes it.

    def prepare_for_coding(self) -> None:
        """Builds the range-coding tables of a variable-rate bottleneck (call once after training)."""
        if not self.fixed_rate:
            self.quantizer.update_tables()

    def compress(self, images: tf.Tensor, seed: Optional[tf.Tensor] = None) -> tf.Tensor:
        """Sender: degraded images -> the transmitted code.

        Args:
          images: (B, H, W, C) degraded images X.
          seed: the stateless seed of the dither (fixed rate); None: `default_seed()`.

        Returns:
          Fixed rate: int32 (B, d) codeword indices in [0, L) (d * log2 L bits). Variable rate: (B,) strings
          from the range coder (call `prepare_for_coding()` first).
        """
        code = self.encoder(self.source(images), training=False)
        if self.fixed_rate:
            return self.quantizer.encode(code, self.default_seed() if seed is None else seed)
        return self.quantizer.compress(code * self.code_scale)

    def decompress(self, code: tf.Tensor, seed: Optional[tf.Tensor] = None) -> tf.Tensor:
        """Receiver: the transmitted code -> Y^.

        Fixed rate: g(z - u_dec), u_dec the encoder's dither (eq. 14) or an independent one (eq. 16), both
        functions of `seed`. Variable rate: g(decompress(strings) / code_scale).

        Args:
          code: what `compress` returned.
          seed: the seed given to `compress` (fixed rate); None: `default_seed()`.

        Returns:
          (B, H, W, C) images in [0, 1].
        """
        if self.fixed_rate:
            quantized = self.quantizer.decode(code, self.default_seed() if seed is None else seed)
        else:
            quantized = self.quantizer.decompress(code, ()) / self.code_scale
        return self.decoder(quantized, training=False)

    # ------------------------------------------------------------------------------------------------
    # The codec interface (tfdplc.codec.interface): containers, SavedModel export, tools/codec.py.
    #
    # Fixed rate (the paper's L-level universal quantizer): the codes are the quantizer's indices, as a
    # (1, 1, d) map. Every image i gets its own stateless dither seed p_i = [s_i, ENCODER_DITHER], s_i the
    # container's seed, and the quantizer's own rules apply per image: U1 = encoder_dither(p_i) and the
    # decoder subtracts decoder_dither(p_i), i.e.
    #   * common randomness (eq. 14): U2 = U1, so the decoder NEEDS the encoder's seed. The spec says
    #     `seeded_encoder`: the container's seed is that shared seed and decoding with any other one is
    #     refused (`Codec.decompress(seeds=...)`, `decompress_seeded` is not exported).
    #   * no common randomness (eq. 16): U2 is drawn from stateless_fold_in(p_i, 1), a Philox hash of p_i,
    #     so U2 is independent of U1; the decoder never computes U1. The spec says `stochastic_decoder` and
    #     NOT `seeded_encoder`: the container's seed drives the encoder's private dither and the decoder's
    #     default draw, and decoding with another seed (`decompress_seeded`) is another draw of U2, still
    #     independent of U1 -- eq. 16's Y^ = g(Q(f(X) + U1) - U2). (Deviation from the interface's
    #     wording "the seed matters only for a shared dither": here it also seeds a private dither.)
    # So decode_codes(encode_codes(x, s), s) == reconstruct(x_i, seed=p_i) image by image.
    #
    # Variable rate with EntropyBottleneck (deterministic rounding, no shared randomness): the codes are the
    # bottleneck's integers round(code_scale * f(S) - o), range coded by the same bottleneck; deterministic
    # decoder, seeds unused. Variable rate with UniversalBottleneck is refused: its dither lives inside tfc
    # (one fixed pattern per code shape, shared across the batch), not in the integer codes or the seed.

    def _codec_rate_mode(self) -> str:
        """The codec's rate mode, "fixed" or "entropy"; refuses a UniversalBottleneck (TypeError)."""
        if self.fixed_rate:
            return "fixed"
        if isinstance(self.quantizer, UniversalBottleneck):
            raise TypeError(
                f"{self.name}: a ShiftCompression with UniversalBottleneck cannot be exported or written to "
                "containers: tfc draws its universal dither internally (a fixed pattern per code shape, "
                "shared across the batch), so neither the integer codes nor the container's per-image seed "
                "can reproduce it. Use EntropyBottleneck (variable rate, no shared randomness) or "
                "UniversalQuantizer(levels=L) (the paper's fixed rate, with or without common randomness)."
            )
        return "entropy"

    def codec_spec(self) -> CodecSpec:
        """The codes of f(S): L-level indices (fixed rate) or range-coded integers (EntropyBottleneck).

        Raises:
          TypeError: for the UniversalBottleneck mode (see `_codec_rate_mode`).
        """
        mode = self._codec_rate_mode()
        common = mode == "fixed" and self.quantizer.common_randomness
        return CodecSpec(
            image_shape=tuple(self.encoder.input_shape[1:]),
            code_shape=(1, 1, self.latent_dim),
            levels=self.quantizer.levels if mode == "fixed" else None,
            stochastic_decoder=mode == "fixed" and not common,
            seeded_encoder=common,
            method=self.name,
        )

    @property
    def codec_bottleneck(self) -> Optional[EntropyBottleneck]:
        """The EntropyBottleneck that range codes the variable-rate codes (None in the other modes)."""
        return self.quantizer if isinstance(self.quantizer, EntropyBottleneck) else None

    def _per_image_dither(self, values: tf.Tensor, seeds: tf.Tensor, function, dtype) -> tf.Tensor:
        """Applies quantizer.encode / decode to each image with its own seed pair [s_i, ENCODER_DITHER]."""
        pairs = per_example_seed_pairs(seeds, ENCODER_DITHER)
        return tf.map_fn(
            lambda args: function(args[0], args[1]),
            (values, pairs),
            fn_output_signature=tf.TensorSpec([self.latent_dim], dtype),
        )

    def encode_codes(self, images: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        """Degraded images -> int32 codes (B, 1, 1, d): quantizer indices in [0, L), or bottleneck integers.

        Fixed rate: the dither of image i is a function of seeds[i] (see the codec comment above).
        """
        code = self.encoder(self.source(images), training=False)
        if self._codec_rate_mode() == "fixed":
            indices = self._per_image_dither(code, seeds, self.quantizer.encode, tf.int32)
        else:
            indices = bottleneck_codes(self.quantizer, code * self.code_scale)
        return tf.reshape(indices, [-1, 1, 1, self.latent_dim])

    def decode_codes(self, codes: tf.Tensor, seeds: tf.Tensor) -> tf.Tensor:
        """Codes (B, 1, 1, d) -> Y^ = g(z - u_dec) (fixed rate) or g(values / code_scale) (variable rate).

        Fixed rate: u_dec is the encoder's dither of seeds[i] (common randomness) or an independent one
        derived from seeds[i] (no common randomness). Variable rate: `seeds` are unused.
        """
        indices = tf.reshape(codes, [-1, self.latent_dim])
        if self._codec_rate_mode() == "fixed":
            quantized = self._per_image_dither(
                indices, seeds, self.quantizer.decode, self.quantizer.compute_dtype
            )
        else:
            quantized = bottleneck_values(self.quantizer, indices) / self.code_scale
        return self.decoder(quantized, training=False)

    def save_artifacts(self, directory: str) -> None:
        """Writes f (`encoder.keras`), g (`decoder.keras`) and the quantizer config (`shift_codec.json`).

        Args:
          directory: the output folder (exists).
        """
        self.encoder.save(os.path.join(directory, ENCODER_FILE))
        self.decoder.save(os.path.join(directory, DECODER_FILE))
        info = {
            "method": self.name,
            "fixed_rate": self.fixed_rate,
            "rate_bits": self.rate_bits,
            "quantizer": tf.keras.layers.serialize(self.quantizer) if self.fixed_rate else None,
            "restoration_path": self.restoration_path,
        }
        with tf.io.gfile.GFile(os.path.join(directory, CODEC_FILE), "w") as f:
            json.dump(info, f, indent=2)


def load_shift_codec(workdir: str) -> Tuple[tf.keras.Model, tf.keras.Model, UniversalQuantizer, dict]:
    """Loads the frozen f, g and quantizer of a finished fixed-rate `ShiftCompression` workdir.

    Args:
      workdir: a workdir trained with a ShiftCompression config (holds encoder.keras, decoder.keras and
        shift_codec.json).

    Returns:
      (f, g, quantizer, info): f and g frozen (`trainable = False`; call them with `training=False`), a
      fresh `UniversalQuantizer` with the run's L, common-randomness mode and seed, and the JSON info.

    Raises:
      FileNotFoundError: if the workdir lacks the files (not a finished ShiftCompression run).
      ValueError: if the run used a variable-rate bottleneck or a restoration stage (the decomposition of
        Section 3.2 is defined for the end-to-end fixed-rate system).
    """
    workdir = os.fspath(workdir)
    codec_path = os.path.join(workdir, CODEC_FILE)
    if not tf.io.gfile.exists(codec_path):
        raise FileNotFoundError(
            f"No {CODEC_FILE} in {workdir!r}: train an end-to-end ShiftCompression run there first "
            "(tools/train.py with gin/shift_*.gin writes it at the end of training)."
        )
    with tf.io.gfile.GFile(codec_path) as f:
        info = json.load(f)
    if not info.get("fixed_rate") or info.get("restoration_path"):
        raise ValueError(
            f"{workdir!r} holds a {info.get('method')!r} run; the two-branch decomposition needs an "
            "end-to-end fixed-rate ShiftCompression run (UniversalQuantizer(levels=L), no restoration stage)."
        )
    what = f"network of the end-to-end run in {workdir!r}"
    encoder = load_frozen_network(os.path.join(workdir, ENCODER_FILE), f"encoder {what}")
    decoder = load_frozen_network(os.path.join(workdir, DECODER_FILE), f"decoder {what}")
    quantizer = tf.keras.layers.deserialize(info["quantizer"])
    return encoder, decoder, quantizer, info
