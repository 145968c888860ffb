"""Entropy bottlenecks: learned-prior rate estimates and real range coding, as Keras layers.

Both layers wrap a tensorflow-compression (tfc) entropy model around a learned, channel-wise
`tfc.NoisyDeepFactorized` prior (Ballé et al. 2018, Appendix 6.1-6.2):

  * `EntropyBottleneck`: `tfc.ContinuousBatchedEntropyModel`. Training adds uniform noise; inference
    rounds (to the prior's median offset). Deterministic: `decompress(compress(y))` equals the inference
    output.
  * `UniversalBottleneck`: `tfc.UniversalBatchedEntropyModel`, universal quantization with a dither
    that tfc derives from a fixed seed (Agustsson & Theis 2020). Used to entropy code the dithered
    quantization of Liu et al. 2022 (eq. 14).

None of the papers' reference code writes a bitstream: the rates there are implied by layer sizes. These
layers give both a differentiable rate estimate for training and real bit strings for evaluation.

Following tfc's own pattern (its `models/bls2017.py`), the range-coding tables are built once, after
training, by `update_tables()`. They are stored in variables of the layer (so checkpoints, SavedModels and
the `.keras` format all carry the exact tables, and the decoder never re-derives them), and each
`compress`/`decompress` call wraps them in a stateless tfc entropy model, which works inside
`tf.function` and in `tf.saved_model.save` signatures. A SavedModel with these signatures uses tfc's
range-coding ops: it loads only in a process that imported `tensorflow_compression`.
"""

import functools
import math
from typing import Callable, Optional, Sequence, Tuple

import gin
import tensorflow as tf
import tensorflow_compression as tfc

from tfdplc.layers.quantizers import as_float_dtype

__all__ = ["EntropyBottleneck", "UniversalBottleneck"]


def _select(training, train_fn: Callable, infer_fn: Callable):
    """Runs `train_fn` if `training` else `infer_fn`; `training` may be None, a bool or a bool tensor."""
    if training is None:
        return infer_fn()
    if isinstance(training, (bool, int)):
        return train_fn() if training else infer_fn()
    return tf.cond(tf.cast(training, tf.bool), train_fn, infer_fn)


class _PriorBottleneck(tf.keras.layers.Layer):
    """Shared machinery: the learned prior, the range-coding table variables, saving and config.

    Subclasses implement `_entropy_model` (the differentiable model used by `call`), `_table_builder`
    (a compression-ready tfc model built from the prior) and `_coder` (a stateless tfc model that reads
    the stored tables).
    """

    def __init__(
        self,
        coding_rank: Optional[int] = None,
        num_filters: Sequence[int] = (3, 3),
        init_scale: float = 10.0,
        tail_mass: float = 2.0**-8,
        range_coder_precision: int = 12,
        expected_grads: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if coding_rank is not None and (
            isinstance(coding_rank, bool) or not isinstance(coding_rank, int) or coding_rank < 1
        ):
            raise ValueError(
                f"{type(self).__name__}: coding_rank must be None or an integer >= 1, got {coding_rank!r}."
            )
        try:
            num_filters = tuple(int(f) for f in num_filters)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"{type(self).__name__}: num_filters must be a sequence of ints, got {num_filters!r}."
            ) from error
        if any(f < 1 for f in num_filters):
            raise ValueError(f"{type(self).__name__}: num_filters must be positive, got {num_filters}.")
        init_scale = float(init_scale)
        if not (math.isfinite(init_scale) and init_scale > 0):
            raise ValueError(f"{type(self).__name__}: init_scale must be positive, got {init_scale}.")
        tail_mass = float(tail_mass)
        if not 0 < tail_mass < 1:
            raise ValueError(f"{type(self).__name__}: tail_mass must be in (0, 1), got {tail_mass}.")
        if isinstance(range_coder_precision, bool) or not isinstance(range_coder_precision, int):
            raise TypeError(
                f"{type(self).__name__}: range_coder_precision must be an int, got {range_coder_precision!r}."
            )
        if not 1 <= range_coder_precision <= 16:
            raise ValueError(
                f"{type(self).__name__}: range_coder_precision must be in [1, 16], got {range_coder_precision}."
            )
        self.coding_rank = coding_rank
        self.num_filters = num_filters
        self.init_scale = init_scale
        self.tail_mass = tail_mass
        self.range_coder_precision = range_coder_precision
        self.expected_grads = bool(expected_grads)
        self._prior = None

    # ----------------------------------------------------------------------------------------------------
    # Building.

    def build(self, input_shape):
        """Creates the prior (batch shape [C], C = last input dimension) and the table variables.

        Args:
          input_shape: shape of a batch, at least (batch, channels), with a known channel dimension.

        Raises:
          ValueError: if the input rank is below 2, the channel dimension is unknown or zero, or
            `coding_rank` does not fit the input rank.
        """
        input_shape = tf.TensorShape(input_shape)
        name = type(self).__name__
        if input_shape.rank is None or input_shape.rank < 2:
            raise ValueError(
                f"{name}: expected input of rank >= 2 (batch, ..., channels), got {input_shape}."
            )
        channels = input_shape[-1]
        if channels is None or channels < 1:
            raise ValueError(
                f"{name}: the channel (last) dimension must be known and positive, got {input_shape}."
            )
        if self.coding_rank is None:
            # One example (everything but the batch dimension) is one coding unit.
            self._rank = input_shape.rank - 1
        elif self.coding_rank > input_shape.rank - 1:
            raise ValueError(
                f"{name}: coding_rank={self.coding_rank} needs inputs of rank >= {self.coding_rank + 1} "
                f"(a batch dimension first), got {input_shape}."
            )
        else:
            self._rank = self.coding_rank
        self.channels = int(channels)
        self._prior = tfc.NoisyDeepFactorized(
            batch_shape=[self.channels], num_filters=self.num_filters, init_scale=self.init_scale
        )
        # Range-coding tables: empty until `update_tables()`. Their length depends on the prior, hence the
        # unknown shape.
        self._cdf = tf.Variable(
            tf.zeros([0], tf.int32), trainable=False, shape=tf.TensorShape([None]), name="cdf"
        )
        self._cdf_offset = tf.Variable(
            tf.zeros([0], tf.int32), trainable=False, shape=tf.TensorShape([None]), name="cdf_offset"
        )
        self._build_extra_variables()
        super().build(input_shape)

    def _build_extra_variables(self):
        """Hook for subclasses that store more table state."""

    def _require_built(self, what: str):
        if not self.built:
            raise RuntimeError(
                f"{type(self).__name__}.{what}: the layer is not built; call it on a batch first (and call "
                "update_tables() after training)."
            )

    @property
    def prior(self) -> tfc.NoisyDeepFactorized:
        """The learned prior, a batch of C scalar `tfc.NoisyDeepFactorized` densities."""
        self._require_built("prior")
        return self._prior

    # ----------------------------------------------------------------------------------------------------
    # Range-coding tables.

    def _table_state(self) -> list:
        """The variables that `update_tables()` writes."""
        return [self._cdf, self._cdf_offset]

    def update_tables(self):
        """Builds the range-coding tables from the current prior and stores them in the layer.

        Call this after training (and again after any further training) and before `compress`,
        `decompress` or exporting a model (call it eagerly, outside any `tf.function`).
        """
        self._require_built("update_tables")

        # tfc estimates the prior's tails with an iterative solver, about 10x faster as a graph than
        # eagerly. The stateless builder may be constructed inside a tf.function.
        @tf.function(autograph=False)
        def build_and_store():
            builder = self._table_builder()
            self._cdf.assign(builder.cdf)
            self._cdf_offset.assign(builder.cdf_offset)
            self._store_extra_tables(builder)

        build_and_store()

    def _store_extra_tables(self, builder):
        """Hook for subclasses that store more table state."""

    @property
    def has_tables(self) -> bool:
        """Whether `update_tables()` has filled the range-coding tables (eager only)."""
        self._require_built("has_tables")
        return int(tf.size(self._cdf)) > 0

    def _checked_tables(self) -> Tuple[tf.Tensor, tf.Tensor]:
        """The tables as tensors, with a run-time check that they were built."""
        check = tf.debugging.assert_positive(
            tf.size(self._cdf),
            message=f"{type(self).__name__}: no range-coding tables; call update_tables() after training.",
        )
        with tf.control_dependencies([check]):
            return tf.identity(self._cdf), tf.identity(self._cdf_offset)

    def compress(self, inputs: tf.Tensor) -> tf.Tensor:
        """Quantizes and range codes each coding unit (by default: each example) into one string.

        Args:
          inputs: float tensor shaped like the layer's input, e.g. (B, d) or (B, h, w, C).

        Returns:
          A string tensor with the batch dimensions of `inputs`, e.g. shape (B,).

        Raises:
          RuntimeError: if the layer is not built.
          tf.errors.InvalidArgumentError: (at run time) if `update_tables()` was never called.
        """
        self._require_built("compress")
        inputs = as_float_dtype(inputs, self.compute_dtype)
        return self._coder(*self._checked_tables()).compress(inputs)

    def decompress(self, strings: tf.Tensor, spatial_shape) -> tf.Tensor:
        """Decodes strings from `compress` to the inference-mode output of `call`.

        Args:
          strings: string tensor from `compress`, e.g. shape (B,).
          spatial_shape: the shape of one coding unit without its channel dimension: `()` for vectors
            (B, C), `(h, w)` for feature maps (B, h, w, C). Int tensor or sequence.

        Returns:
          A float tensor of shape `strings.shape + spatial_shape + (C,)`.

        Raises:
          RuntimeError: if the layer is not built.
          tf.errors.InvalidArgumentError: (at run time) if `update_tables()` was never called or a string
            is not a complete code.
        """
        self._require_built("decompress")
        spatial_shape = tf.cast(tf.reshape(spatial_shape, [-1]), tf.int32)
        return self._coder(*self._checked_tables()).decompress(strings, spatial_shape)

    # ----------------------------------------------------------------------------------------------------
    # Keras plumbing.

    def call(self, inputs: tf.Tensor, training=None, seed=None) -> Tuple[tf.Tensor, tf.Tensor]:
        """Quantizes (or perturbs, in training) and estimates the rate.

        Args:
          inputs: float tensor (B, ..., C).
          training: True: additive uniform noise and a differentiable rate upper bound; False/None: the
            quantized values that `compress`/`decompress` reproduce and their information content.
          seed: training only: a stateless seed (int tensor of shape [2]) of the noise
            u ~ U(-1/2, 1/2) (`perturbed`), so that a training step's draw is a function of a seed its
            caller controls and checkpoints. None: tfc draws u itself from TF's global seed (a process's
            own stream, which a resumed run does not continue). Ignored in inference.

        Returns:
          `(outputs, bits)`: `outputs` has the input's shape; `bits` has the batch shape (by default (B,)):
          the estimated bits per coding unit (per example), summed over all its elements.
        """
        inputs = as_float_dtype(inputs, self.compute_dtype)

        def train():
            if seed is None:
                return self._entropy_model(training=True)(inputs, training=True)
            noise = tf.random.stateless_uniform(
                tf.shape(inputs), seed=seed, minval=-0.5, maxval=0.5, dtype=inputs.dtype
            )
            return self.perturbed(inputs, noise)

        return _select(training, train, lambda: self._entropy_model(training=False)(inputs, training=False))

    def perturbed(self, inputs: tf.Tensor, noise: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """The training-mode `(inputs + noise, bits)` for a given noise u instead of tfc's own draw.

        The training branch of tfc's `__call__` (`ContinuousBatchedEntropyModel`,
        `UniversalBatchedEntropyModel`: `perturb_and_apply` of the model's log-density, summed over the
        coding rank, in bits), with u passed in: tfc's `__call__` always draws it with `tf.random.uniform`.
        With the u tfc would have drawn, the result is tfc's bit for bit (tests/test_layers.py).

        Args:
          inputs: float tensor (B, ..., C) (the layer must be built).
          noise: u, a tensor of the same shape, U(-1/2, 1/2) for the rate estimate to be tfc's.

        Returns:
          `(inputs + noise, bits)` as `call(inputs, training=True)` returns them.
        """
        self._require_built("perturbed")
        inputs = as_float_dtype(inputs, self.compute_dtype)
        model = self._entropy_model(training=True)
        # tfc's own log-density (with its tail handling), as its __call__ uses it.
        log_prob = functools.partial(model._log_prob, model.prior)
        log_probs, outputs = tfc.perturb_and_apply(
            log_prob, inputs, u=tf.cast(noise, inputs.dtype), expected_grads=self.expected_grads
        )
        axes = tuple(range(-model.coding_rank, 0))
        bits = tf.reduce_sum(log_probs, axis=axes) / -tf.math.log(tf.constant(2, log_probs.dtype))
        return outputs, bits

    def compute_output_shape(self, input_shape):
        """`(input_shape, batch_shape)`."""
        input_shape = tf.TensorShape(input_shape)
        rank = self.coding_rank if self.coding_rank is not None else input_shape.rank - 1
        return input_shape, input_shape[: input_shape.rank - rank]

    def _state_variables(self) -> list:
        return list(self._prior.variables) + self._table_state()

    def save_own_variables(self, store):
        """Saves the prior and the range-coding tables (`.keras` format).

        Keras' default only saves variables created with `add_weight`; the prior's variables live in a
        tfc distribution, so they are listed explicitly.
        """
        if not self.built:
            return
        for index, variable in enumerate(self._state_variables()):
            store[str(index)] = variable.numpy()

    def load_own_variables(self, store):
        """Restores what `save_own_variables` saved.

        Raises:
          ValueError: if the layer is not built or the number of saved arrays does not match.
        """
        variables = self._state_variables() if self.built else []
        if len(store.keys()) != len(variables):
            raise ValueError(
                f"{type(self).__name__} '{self.name}': expected {len(variables)} saved arrays (prior and "
                f"tables; the layer must be built before loading), found {len(store.keys())}."
            )
        for index, variable in enumerate(variables):
            variable.assign(store[str(index)])

    def get_config(self) -> dict:
        """Returns the constructor arguments (plus the base layer's)."""
        config = super().get_config()
        config.update(
            coding_rank=self.coding_rank,
            num_filters=list(self.num_filters),
            init_scale=self.init_scale,
            tail_mass=self.tail_mass,
            range_coder_precision=self.range_coder_precision,
            expected_grads=self.expected_grads,
        )
        return config

    # Subclass hooks.
    def _entropy_model(self, training: bool):
        raise NotImplementedError

    def _table_builder(self):
        raise NotImplementedError

    def _coder(self, cdf: tf.Tensor, cdf_offset: tf.Tensor):
        raise NotImplementedError


@tf.keras.utils.register_keras_serializable(package="tfdplc")
@gin.configurable(module="tfdplc.layers")
class EntropyBottleneck(_PriorBottleneck):
    """Learned-prior entropy bottleneck with rounding, wrapping `tfc.ContinuousBatchedEntropyModel`.

    The prior is a channel-wise `tfc.NoisyDeepFactorized` (batch shape [C], C = last input dimension):
    elements of one channel are i.i.d., channels are independent.

    * `call(y, training=True)`: `y + u` with `u ~ U(-1/2, 1/2)` (tfc's noise relaxation of rounding) and
      a differentiable upper bound on the bits; u from TF's global seed, or from the stateless seed s
      with `call(y, training=True, seed=s)`.
    * `call(y, training=False)`: `round(y - o) + o` with `o` the quantization offset (tfc's offset
      heuristic: the prior's median, shifted to [-1/2, 1/2]; zero with `offset_heuristic=False`) and the
      information content `-log2 p(y_hat)` under the prior, a tight lower bound on the length of the
      `compress` strings. Before `update_tables()` the offset is recomputed from the prior on each call
      (tfc's behaviour, slow); afterwards the stored offset is used, so the output equals
      `decompress(compress(y))` exactly.
    * `bits` are per coding unit: summed over the innermost `coding_rank` dimensions, by default all
      dimensions but the batch, i.e. bits per example for vectors (B, d) and feature maps (B, h, w, C).

    Differences from tfc's layer-free usage: the tables live in this layer's variables (see the module
    docstring) and tfc's `get_config` is not used; ours returns the constructor arguments.
    """

    def __init__(
        self,
        coding_rank: Optional[int] = None,
        num_filters: Sequence[int] = (3, 3),
        init_scale: float = 10.0,
        tail_mass: float = 2.0**-8,
        range_coder_precision: int = 12,
        expected_grads: bool = False,
        offset_heuristic: bool = True,
        **kwargs,
    ):
        """Initialises the bottleneck.

        Args:
          coding_rank: number of innermost dimensions that form one coding unit (one string, one bits
            entry). None: all dimensions but the batch (one string per example).
          num_filters: hidden widths of the `NoisyDeepFactorized` density network.
          init_scale: initial scale of the prior (tfc's default 10).
          tail_mass: probability mass outside the range-coding tables, coded with an escape code.
          range_coder_precision: bits of precision of the range coder's CDFs.
          expected_grads: use tfc's analytical expected gradients w.r.t. the uniform noise.
          offset_heuristic: round around the prior's median (tfc's default) instead of integers.
          **kwargs: passed to `tf.keras.layers.Layer` (e.g. `name`).

        Raises:
          ValueError: if an argument is out of range.
          TypeError: if an argument has the wrong type.
        """
        super().__init__(
            coding_rank=coding_rank,
            num_filters=num_filters,
            init_scale=init_scale,
            tail_mass=tail_mass,
            range_coder_precision=range_coder_precision,
            expected_grads=expected_grads,
            **kwargs,
        )
        self.offset_heuristic = bool(offset_heuristic)

    def _build_extra_variables(self):
        self._quantization_offset = tf.Variable(
            tf.zeros([self.channels], self.compute_dtype), trainable=False, name="quantization_offset"
        )

    def _table_state(self) -> list:
        return [self._cdf, self._cdf_offset, self._quantization_offset]

    def _table_builder(self):
        return tfc.ContinuousBatchedEntropyModel(
            self._prior,
            coding_rank=self._rank,
            compression=True,
            stateless=True,
            tail_mass=self.tail_mass,
            range_coder_precision=self.range_coder_precision,
            offset_heuristic=self.offset_heuristic,
            bottleneck_dtype=self.compute_dtype,
        )

    def _store_extra_tables(self, builder):
        # tfc returns None for an all-zero offset (or without the heuristic); store zeros then.
        offset = builder.quantization_offset
        if offset is None:
            offset = tf.zeros([self.channels], self.compute_dtype)
        self._quantization_offset.assign(tf.broadcast_to(offset, [self.channels]))

    @property
    def quantization_offset(self) -> tf.Tensor:
        """The offset `o` of inference-mode rounding, shape [C].

        The stored one once `update_tables()` has run; before that, recomputed from the prior (or zeros
        with `offset_heuristic=False`).
        """
        self._require_built("quantization_offset")
        if not self.offset_heuristic:
            return tf.identity(self._quantization_offset)

        def from_prior():
            offset = tf.stop_gradient(tfc.quantization_offset(self._prior))
            return tf.broadcast_to(tf.cast(offset, self.compute_dtype), [self.channels])

        if tf.executing_eagerly():
            # An iterative solver (tfc's estimate_tails): much faster as a graph.
            from_prior = tf.function(from_prior, autograph=False)
        return tf.cond(tf.size(self._cdf) > 0, lambda: tf.identity(self._quantization_offset), from_prior)

    def _entropy_model(self, training: bool):
        # compression=False models hold no state, so a fresh one per call is cheap (tfc's bls2017 does
        # the same). Inference passes the offset explicitly: the stored one once tables exist.
        return tfc.ContinuousBatchedEntropyModel(
            self._prior,
            coding_rank=self._rank,
            compression=False,
            expected_grads=self.expected_grads,
            tail_mass=self.tail_mass,
            offset_heuristic=False,
            quantization_offset=None if training else self.quantization_offset,
            bottleneck_dtype=self.compute_dtype,
        )

    def _coder(self, cdf: tf.Tensor, cdf_offset: tf.Tensor):
        return tfc.ContinuousBatchedEntropyModel(
            prior_shape=[self.channels],
            coding_rank=self._rank,
            compression=True,
            stateless=True,
            tail_mass=self.tail_mass,
            cdf=cdf,
            cdf_offset=cdf_offset,
            quantization_offset=tf.identity(self._quantization_offset),
            bottleneck_dtype=self.compute_dtype,
        )

    def get_config(self) -> dict:
        """Returns the constructor arguments (plus the base layer's)."""
        config = super().get_config()
        config.update(offset_heuristic=self.offset_heuristic)
        return config


class UniversalModelWithTables(tfc.UniversalBatchedEntropyModel):
    """tfc's universal model with range-coding tables supplied by the caller.

    `tfc.ContinuousBatchedEntropyModel` accepts precomputed tables (`cdf=`, `cdf_offset=`,
    `stateless=True`); tfc 2.14's `UniversalBatchedEntropyModel` does not, it always rebuilds them from
    the prior. This subclass builds the model without tables and then installs the given ones through
    the base class's own `_init_compression`, exactly as tfc does after building them itself. It relies
    on tfc 2.14.1 internals (pinned in setup.py); `tests/test_layers.py` checks the round trip.
    """

    def __init__(self, prior, coding_rank: int, cdf, cdf_offset, **kwargs):
        super().__init__(prior, coding_rank, compression=False, **kwargs)
        self._compression = True
        self._stateless = True
        self._init_compression(cdf, cdf_offset, None)


@tf.keras.utils.register_keras_serializable(package="tfdplc")
@gin.configurable(module="tfdplc.layers")
class UniversalBottleneck(_PriorBottleneck):
    """Learned-prior bottleneck with universal quantization, wrapping `tfc.UniversalBatchedEntropyModel`.

    Same channel-wise `tfc.NoisyDeepFactorized` prior as `EntropyBottleneck`.

    * `call(y, training=True)`: `y + u` with fresh `u ~ U(-1/2, 1/2)` and the differential-entropy bits
      estimate (tfc draws this noise from the global TF seed; `call(y, training=True, seed=s)` draws it
      from the stateless seed s instead).
    * `call(y, training=False)`: `round(y - o) + o` with a dither `o` from tfc's fixed stateless seed,
      quantized to `num_noise_levels` values in (-1/2, 1/2). Facts about tfc's universal model to keep in
      mind: the dither depends only on the shape of one coding unit, so EVERY example of a batch (and
      every batch) gets the SAME dither pattern; the bits are `-log2 p(y_hat)` under the prior. `compress`
      and `decompress` use the same dither, so `decompress(compress(y))` equals this output exactly.
    * `bits` are per coding unit (by default per example), as in `EntropyBottleneck`.

    tfc's universal model does not implement `get_config()`; it is never called here, and this layer's
    `get_config` returns its own constructor arguments. For a per-example, seedable dither with a fixed
    rate, use `tfdplc.layers.UniversalQuantizer` instead.
    """

    def __init__(
        self,
        coding_rank: Optional[int] = None,
        num_filters: Sequence[int] = (3, 3),
        init_scale: float = 10.0,
        tail_mass: float = 2.0**-8,
        range_coder_precision: int = 12,
        expected_grads: bool = False,
        num_noise_levels: int = 15,
        **kwargs,
    ):
        """Initialises the bottleneck.

        Args:
          coding_rank: number of innermost dimensions that form one coding unit (one string, one bits
            entry). None: all dimensions but the batch (one string per example).
          num_filters: hidden widths of the `NoisyDeepFactorized` density network.
          init_scale: initial scale of the prior (tfc's default 10).
          tail_mass: probability mass outside the range-coding tables, coded with an escape code.
          range_coder_precision: bits of precision of the range coder's CDFs.
          expected_grads: use tfc's analytical expected gradients w.r.t. the uniform noise.
          num_noise_levels: number of discrete dither values (tfc's default 15); the tables hold one CDF
            per (dither value, channel).
          **kwargs: passed to `tf.keras.layers.Layer` (e.g. `name`).

        Raises:
          ValueError: if an argument is out of range.
          TypeError: if an argument has the wrong type.
        """
        super().__init__(
            coding_rank=coding_rank,
            num_filters=num_filters,
            init_scale=init_scale,
            tail_mass=tail_mass,
            range_coder_precision=range_coder_precision,
            expected_grads=expected_grads,
            **kwargs,
        )
        if (
            isinstance(num_noise_levels, bool)
            or not isinstance(num_noise_levels, int)
            or num_noise_levels < 1
        ):
            raise ValueError(
                f"UniversalBottleneck: num_noise_levels must be a positive int, got {num_noise_levels!r}."
            )
        self.num_noise_levels = num_noise_levels

    def _model_kwargs(self) -> dict:
        return dict(
            coding_rank=self._rank,
            tail_mass=self.tail_mass,
            num_noise_levels=self.num_noise_levels,
            bottleneck_dtype=self.compute_dtype,
        )

    def _entropy_model(self, training: bool):
        del training  # The same (table-free) model serves both modes.
        return tfc.UniversalBatchedEntropyModel(
            self._prior, compression=False, expected_grads=self.expected_grads, **self._model_kwargs()
        )

    def _table_builder(self):
        return tfc.UniversalBatchedEntropyModel(
            self._prior,
            compression=True,
            stateless=True,
            range_coder_precision=self.range_coder_precision,
            **self._model_kwargs(),
        )

    def _coder(self, cdf: tf.Tensor, cdf_offset: tf.Tensor):
        kwargs = self._model_kwargs()
        rank = kwargs.pop("coding_rank")
        return UniversalModelWithTables(self._prior, rank, cdf, cdf_offset, **kwargs)

    def get_config(self) -> dict:
        """Returns the constructor arguments (plus the base layer's)."""
        config = super().get_config()
        config.update(num_noise_levels=self.num_noise_levels)
        return config
