"""The two-branch decomposition of Liu et al. 2022 (Section 3.2, eq. 17-18, Tables 1, 2, 11; Fig. 4(b)).

Theorem 1 splits the distortion of the system without common randomness into compression of X,
compression of Y and transport between the two representations (eq. 17). Section 3.2 estimates the three
terms with two decoders on a FROZEN trained encoder f: with Y~ = g(Q(f(X))) the end-to-end output,

  Y^1 = g1(f(X)),  Y^2 = g2(f(X)),
  L2 = E||X - Y^1||^2 + E||Y~ - Y^2||^2 + E||Y^1 - Y^2||^2 = (a) + (b) + (c)               (eq. 18)

and compares L2 with the end-to-end loss E||X - Y~||^2 (Tables 1, 11). How g1 and g2 are trained, the text
admits two readings, and this module implements both (and Table 2's separate variant):

  * "own_targets" (the default): "decoder g1 is trained to minimize the distortion with X, and decoder g2
    is trained to minimize the distortion with Y~" -- g1 on (a), g2 on (b), both in the same run (Table 4:
    f frozen, Adam 1e-4, (0.5, 0.999) for g1 and g2); (c) is only measured.
  * "joint": the paragraph after Table 1 says "Training is performed jointly over g1 and g2" and that
    training them separately "would not be equivalent to minimizing (18) (there is no control over (c))",
    i.e. g1 and g2 minimise the whole of (18), (c) included.
  * "separate" (Table 2): two new encoder-decoder pairs, f1, g1 on (a) and f2, g2 on (b), each with its own
    quantizer of the same rate and randomness mode; (c) is only measured.

What each reading predicts at its optimum. Write V for the code the branches see, mu_X = E[X|V],
mu_Y = E[Y~|V] and T = E||mu_X - mu_Y||^2 (the transport term). Without common randomness Y~ = g(V - U2)
with U2 independent of X, so X and Y~ are independent given V.
  * Own targets: Y^1 = mu_X, Y^2 = mu_Y, hence (c) = T and L2 = E||X - Y~||^2 EXACTLY. Proof: expand
    X - Y~ = (X - mu_X) - (Y~ - mu_Y) + (mu_X - mu_Y); the cross terms with mu_X - mu_Y (a function of V)
    vanish because E[X - mu_X | V] = E[Y~ - mu_Y | V] = 0, and E<X - mu_X, Y~ - mu_Y> = E tr Cov(X, Y~ | V)
    = 0 by the conditional independence; what remains is (a) + (b) + T = L2. So under this reading Table 1
    ("L2 is close to the end-to-end loss") tests only that the branches converged, not Theorem 1.
  * Joint: per value of V, minimising ||mu_X - y1||^2 + ||mu_Y - y2||^2 + ||y1 - y2||^2 gives
    y1 = (2 mu_X + mu_Y) / 3, y2 = (mu_X + 2 mu_Y) / 3, each excess and (c) equal to T / 9, so
    L2 = E||X - Y~||^2 - (2/3) T: below the end-to-end loss by construction, by an amount set by T.
tests/test_shift_decomposition_identity.py checks both on an exactly enumerated discrete example, and
results/shift/README.md reports both readings with T beside (a), (b), (c).

What the branches see (`branch_input`):
  * "code" (the default; the paper's Y^1 = g1(f(X)), Y^2 = g2(f(X))): the codewords of the quantization
    index Q(f(X) + U), i.e. exactly what is transmitted at rate R and never the decoder's own dither. Theorem 1 needs rate-R
    representations (H(Y^) <= R); Y^1 and Y^2 are then functions of the code.
  * "decoder_input": Q(f(X) + U) - U_dec, what the end-to-end decoder g itself receives (with the
    independent decoder dither U_dec of the system without common randomness). From it a branch recovers
    the index AND U_dec, so g2 can copy g and (b) goes to ~0: Y^2 is then not a rate-R representation. This
    is how this module trained before (workdirs from then need `branch_input = "decoder_input"` to be
    evaluated as they were trained).

Other choices the paper leaves open, made here:
  * Table 4 lists a critic, but eq. 18 has no adversarial term and the text gives the critic no role;
    no critic is trained here.
  * Per-image squared errors are means over pixels and channels (the MSE of the end-to-end objective),
    so L2 and E||X - Y~||^2 are on the scale of Tables 1 and 11.
"""

import os
from typing import Dict, Optional

import gin
import tensorflow as tf

from tfdplc import losses
from tfdplc.objectives.base import Objective
from tfdplc.objectives.shift import load_shift_codec, unpack_pairs

__all__ = ["BRANCH_INPUTS", "DECOMPOSITION_TERMS", "MODES", "ShiftDecomposition"]

#: The per-image terms `ShiftDecomposition.decomposition_terms` returns (Table 11's columns).
DECOMPOSITION_TERMS = ("term_a", "term_b", "term_c", "decomposed_loss", "end_to_end_loss")
MODES = ("own_targets", "joint", "separate")
#: What the branches decode (see the module docstring).
BRANCH_INPUTS = ("code", "decoder_input")


def _fresh_copy(model: tf.keras.Model) -> tf.keras.Model:
    """`model`'s architecture with freshly initialised, trainable weights."""
    copy = tf.keras.models.clone_model(model)
    copy.trainable = True  # the frozen original's layers were cloned with trainable=False
    return copy


def _code_size(model: tf.keras.Model, what: str, side: str) -> int:
    shape = model.input_shape if side == "input" else model.output_shape
    if isinstance(shape, list) or len(shape) != 2 or shape[1] is None:
        raise ValueError(f"ShiftDecomposition: {what} must have a (batch, d) {side}, got {shape}.")
    return int(shape[1])


@gin.configurable(module="tfdplc.objectives")
class ShiftDecomposition(Objective):
    """Trains g1 on (a) and g2 on (b) (own targets), g1, g2 on all of eq. 18 (joint), or f1, g1 and f2, g2.

    The end-to-end run's f, g and quantizer come from `source_workdir` (its `save_artifacts`), loaded at
    the first use (`load_source`); f and g are frozen and always run with `training=False` (their BatchNorm
    statistics never change). Training data are the degraded images of (degraded, clean) pairs; the clean
    images are never used.

    `decomposition_terms(degraded, seed)` returns the per-image terms (a), (b), (c), L2 and the end-to-end
    loss, with explicit randomness, for reproducible evaluation. `reconstruct` returns Y^2, the two-branch
    model's estimate of the end-to-end output.
    """

    paired_data = True

    def __init__(
        self,
        source_workdir: str = gin.REQUIRED,
        decoder1: tf.keras.Model = gin.REQUIRED,
        decoder2: tf.keras.Model = gin.REQUIRED,
        optimizer: tf.keras.optimizers.Optimizer = gin.REQUIRED,
        mode: str = "own_targets",
        branch_input: str = "code",
        encoder1: Optional[tf.keras.Model] = None,
        encoder2: Optional[tf.keras.Model] = None,
        seed: Optional[int] = None,
        eval_seed: int = 0,
        name: Optional[str] = None,
    ):
        """Initialises the objective.

        Args:
          source_workdir: a finished fixed-rate ShiftCompression workdir (the paper uses the run without
            common randomness).
          decoder1: g1, (B, d) -> images (e.g. `tfdplc.nets.liu_two_branch_decoder`, Tables 13 / 15).
          decoder2: g2, same architecture, another instance.
          optimizer: one optimizer for everything trained (Table 4: Adam 1e-4, 0.5, 0.999).
          mode: "own_targets" (g1 on (a), g2 on (b), f frozen, (c) measured), "joint" (g1, g2 on the sum
            (a) + (b) + (c) of eq. 18) -- the two readings of Section 3.2, see the module docstring -- or
            "separate" (f1, g1 on (a) and f2, g2 on (b), Table 2).
          branch_input: "code" (the paper: the codewords of the quantization index, never the decoder's
            dither) or "decoder_input" (what the end-to-end decoder g receives, index codewords minus the
            decoder dither; lets g2 copy g, see the module docstring).
          encoder1: f1, images -> (B, d) in (-1, 1), separate mode only; None: f's architecture with fresh
            weights (`tf.keras.models.clone_model`).
          encoder2: f2, likewise.
          seed: seed of the training dithers (None: non-deterministic).
          eval_seed: seed of the default evaluation dithers.
          name: Keras model name; None gives "decomposition-" + mode.

        Raises:
          ValueError: on an unknown mode or branch input, or encoders given outside the separate mode. (The end-to-end run is loaded at
            the first use, see `load_source`.)
        """
        if mode not in MODES:
            raise ValueError(f"ShiftDecomposition: mode must be one of {MODES}, got {mode!r}.")
        if branch_input not in BRANCH_INPUTS:
            raise ValueError(
                f"ShiftDecomposition: branch_input must be one of {BRANCH_INPUTS}, got {branch_input!r}."
            )
        separate = mode == "separate"
        if not separate and (encoder1 is not None or encoder2 is not None):
            raise ValueError(
                f"ShiftDecomposition: the {mode!r} mode reuses the frozen end-to-end encoder f; encoder1 / "
                "encoder2 belong to the separate mode."
            )
        if isinstance(eval_seed, bool) or not isinstance(eval_seed, int):
            raise ValueError(f"ShiftDecomposition: eval_seed must be an integer, got {eval_seed!r}.")
        super().__init__(name=name or f"decomposition-{mode}")
        self.mode = mode
        self.branch_input = branch_input
        self.source_workdir = os.fspath(source_workdir)
        self.decoder1 = decoder1
        self.decoder2 = decoder2
        self.encoder1 = encoder1
        self.encoder2 = encoder2
        self.source_info = None  # set with the frozen networks by `load_source`
        self.optimizer_branches = optimizer
        self.eval_seed = eval_seed
        with tf.init_scope():
            self._generator = (
                tf.random.Generator.from_non_deterministic_state()
                if seed is None
                else tf.random.Generator.from_seed(seed)
            )
        self.trackers = {key: tf.keras.metrics.Mean(key) for key in ("loss",) + DECOMPOSITION_TERMS}

    def load_source(self) -> None:
        """Loads the end-to-end run's frozen f, g and quantizer (once; the first call of the model does it).

        Loading waits for the first use so that building the objective from a config does not need the
        end-to-end run yet (the trainer calls the model right after building it, so a missing run still
        stops training at once). Inside a `tf.function` the networks are loaded eagerly (`init_scope`).

        Raises:
          FileNotFoundError: if `source_workdir` is not a finished ShiftCompression run.
          ValueError: if the run is not fixed-rate end-to-end, or if the code sizes of the branches do not
            match the run's d.
        """
        if self.source_info is not None:
            return
        with tf.init_scope():
            encoder, decoder, quantizer, info = load_shift_codec(self.source_workdir)
            d = _code_size(encoder, "the end-to-end encoder f", "output")
            for model, what in ((self.decoder1, "decoder1"), (self.decoder2, "decoder2")):
                if _code_size(model, what, "input") != d:
                    raise ValueError(
                        f"ShiftDecomposition: {what} must take codes of size d = {d} (the code size of f in "
                        f"{self.source_workdir!r})."
                    )
            if self.mode == "separate":
                self.encoder1 = _fresh_copy(encoder) if self.encoder1 is None else self.encoder1
                self.encoder2 = _fresh_copy(encoder) if self.encoder2 is None else self.encoder2
                for model, what in ((self.encoder1, "encoder1"), (self.encoder2, "encoder2")):
                    if _code_size(model, what, "output") != d:
                        raise ValueError(
                            f"ShiftDecomposition: {what} must output d = {d} symbols (same rate)."
                        )
                # Fresh quantizers with the run's L and randomness mode; dithers come from explicit seeds.
                config = tf.keras.layers.serialize(quantizer)
                self.quantizer1 = tf.keras.layers.deserialize(config)
                self.quantizer2 = tf.keras.layers.deserialize(config)
            self.encoder = encoder
            self.decoder = decoder
            self.quantizer = quantizer
            self.source_info = info

    def optimizers(self) -> Dict[str, tf.keras.optimizers.Optimizer]:  # noqa: D102
        return {"branches": self.optimizer_branches}

    @property
    def metrics(self):  # noqa: D102 - Keras resets these every epoch.
        return list(self.trackers.values())

    @property
    def rate_bits(self) -> float:
        """The end-to-end run's d * log2 L (both branches code at that rate)."""
        self.load_source()
        return float(self.source_info["rate_bits"])

    def default_seed(self) -> tf.Tensor:
        """The stateless seed `[eval_seed, 0]` used when evaluation gets none."""
        return tf.constant([self.eval_seed, 0], tf.int64)

    def trainable_branch_variables(self) -> list:
        """g1, g2 (own_targets, joint) or f1, g1, f2, g2 (separate)."""
        self.load_source()
        variables = self.decoder1.trainable_variables + self.decoder2.trainable_variables
        if self.mode == "separate":
            variables += self.encoder1.trainable_variables + self.encoder2.trainable_variables
        return variables

    def branches(self, degraded: tf.Tensor, seed: tf.Tensor, training: bool = False) -> Dict[str, tf.Tensor]:
        """Y~ of the frozen end-to-end system and the two branch outputs Y^1, Y^2.

        Args:
          degraded: (B, H, W, C) degraded images X.
          seed: stateless seed (shape [2]); the three quantizers use independent derivations of it.
          training: mode of the trained branches (f and g always run in inference mode).

        Returns:
          {"x", "y_tilde", "y1", "y2"}.
        """
        self.load_source()
        seeds = [tf.random.experimental.stateless_fold_in(seed, i) for i in range(3)]
        # Under a mixed-precision policy the networks' outputs are cast: codes, quantizers and the
        # eq.-18 terms stay float32.
        f32 = self.float32
        code = f32(self.encoder(degraded, training=False))
        y_tilde = f32(self.decoder(self.quantizer(code, seed=seeds[0]), training=False))
        if self.mode == "separate":
            z1 = self._branch_input(
                self.quantizer1, f32(self.encoder1(degraded, training=training)), seeds[1]
            )
            z2 = self._branch_input(
                self.quantizer2, f32(self.encoder2(degraded, training=training)), seeds[2]
            )
        else:  # the same index (same draw) that produced Y~
            z1 = z2 = self._branch_input(self.quantizer, code, seeds[0])
        return {
            "x": degraded,
            "y_tilde": y_tilde,
            "y1": f32(self.decoder1(z1, training=training)),
            "y2": f32(self.decoder2(z2, training=training)),
        }

    def _branch_input(self, quantizer, encoded: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """What a branch decodes: the index's codewords ("code") or codewords minus the decoder dither.

        Both pass gradients straight through to the encoder (only f1, f2 of the separate mode use them).
        """
        if self.branch_input == "decoder_input":
            return quantizer(encoded, seed=seed)
        codewords = quantizer.codewords(quantizer.encode(encoded, seed))
        return encoded + tf.stop_gradient(codewords - encoded)

    def branch_loss(self, terms: Dict[str, tf.Tensor]) -> tf.Tensor:
        """Per-image training loss: (a) + (b) + (c) in the joint mode, else (a) + (b).

        In the "own_targets" and "separate" modes (a) depends only on g1 (and f1) and (b) only on g2 (and
        f2), so one gradient step on (a) + (b) is the two trainings on their own targets side by side.
        """
        if self.mode == "joint":
            return terms["decomposed_loss"]
        return terms["term_a"] + terms["term_b"]

    @staticmethod
    def terms_of(outputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """Per-image terms of eq. 18 and the end-to-end loss from `branches`' outputs."""
        error = losses.per_example_squared_error
        a = error(outputs["x"], outputs["y1"])
        b = error(outputs["y_tilde"], outputs["y2"])
        c = error(outputs["y1"], outputs["y2"])
        return {
            "term_a": a,
            "term_b": b,
            "term_c": c,
            "decomposed_loss": a + b + c,
            "end_to_end_loss": error(outputs["x"], outputs["y_tilde"]),
        }

    def decomposition_terms(
        self, images: tf.Tensor, seed: Optional[tf.Tensor] = None
    ) -> Dict[str, tf.Tensor]:
        """Per-image (a), (b), (c), L2 = (a) + (b) + (c) and E||X - Y~||^2 in inference mode.

        Args:
          images: (B, H, W, C) degraded images X.
          seed: stateless seed of the dithers (None: `default_seed()`).

        Returns:
          A dict of (B,) tensors keyed by `DECOMPOSITION_TERMS`.
        """
        seed = self.default_seed() if seed is None else seed
        return self.terms_of(self.branches(images, seed, training=False))

    def reconstruct(self, images: tf.Tensor, seed: Optional[tf.Tensor] = None) -> tf.Tensor:
        """Y^2 for a batch of degraded images (inference mode, explicit randomness)."""
        seed = self.default_seed() if seed is None else seed
        return self.branches(images, seed, training=False)["y2"]

    def call(self, images, training: bool = False) -> tf.Tensor:  # noqa: D102
        if isinstance(images, (tuple, list)):
            images = images[0]
        return self.branches(images, self.default_seed(), training=training)["y2"]

    def _degraded(self, data) -> tf.Tensor:
        if isinstance(data, (tuple, list)) and len(data) == 1:  # train_on_batch(x)
            data = data[0]
        if isinstance(data, (tuple, list)):
            return unpack_pairs(data, "ShiftDecomposition")[0]
        return data

    def train_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        degraded = self._degraded(data)
        seed = self._generator.make_seeds(1)[:, 0]
        with tf.GradientTape() as tape:
            terms = self.terms_of(self.branches(degraded, seed, training=True))
            loss = tf.reduce_mean(self.branch_loss(terms))
            scaled = self.scale_for_replicas(loss)
        self.apply_gradients(self.optimizer_branches, tape, scaled, self.trainable_branch_variables())
        return self._update(loss, terms)

    def test_step(self, data) -> Dict[str, tf.Tensor]:  # noqa: D102
        terms = self.decomposition_terms(self._degraded(data))
        return self._update(tf.reduce_mean(self.branch_loss(terms)), terms)

    def _update(self, loss, terms) -> Dict[str, tf.Tensor]:
        self.trackers["loss"].update_state(loss)
        for key in DECOMPOSITION_TERMS:
            self.trackers[key].update_state(tf.reduce_mean(terms[key]))
        return {key: tracker.result() for key, tracker in self.trackers.items()}
