"""Fixed-rate quantizers: scalar quantization to fixed centres, and universal (dithered) quantization.

`ScalarQuantizer` maps every element to its nearest centre, e.g. the fixed centres {-1, 1} of DPLC
(Tschannen et al. 2018, Section 4). Gradients flow either straight through (Yan et al. 2021, eq. 25) or
through the soft-to-hard relaxation of Mentzer et al. (CVPR 2018, reference [9] of DPLC).

`UniversalQuantizer` is the subtractive-dither quantizer of Liu et al. 2022 (eq. 14 and 16, Appendix B.2):
the encoder quantizes y + u, the decoder subtracts a dither again, either the same u (common randomness)
or an independent draw (no common randomness).

Both are fixed-rate: every element costs log2(L) bits, and `rate_bits` returns that count per example.
"""

import math
from typing import Optional, Sequence, Union

import gin
import numpy as np
import tensorflow as tf

__all__ = ["ScalarQuantizer", "UniversalQuantizer"]

_GRADIENTS = ("straight_through", "soft_to_hard")

ShapeOrTensor = Union[Sequence[int], tf.TensorShape, tf.Tensor, np.ndarray]


def _elements_per_example(shape_or_tensor: ShapeOrTensor) -> int:
    """Counts the elements of one example.

    Args:
      shape_or_tensor: the shape of ONE example (tuple, list or `tf.TensorShape`, without batch dimension),
        or a batched tensor / array whose leading dimension is the batch and is dropped.

    Returns:
      The number of elements of one example.

    Raises:
      ValueError: if the example shape is not fully known or has negative entries.
    """
    if isinstance(shape_or_tensor, (tf.Tensor, tf.Variable, np.ndarray)):
        example_shape = tf.TensorShape(shape_or_tensor.shape)[1:]
    else:
        example_shape = tf.TensorShape(shape_or_tensor)
    if not example_shape.is_fully_defined():
        raise ValueError(f"rate_bits needs a fully known example shape, got {example_shape}.")
    # A rank-0 example (a batch of scalars) has one element; TensorShape([]).num_elements() is 1.
    return int(example_shape.num_elements())


def _hard_forward(hard: tf.Tensor, surrogate: tf.Tensor) -> tf.Tensor:
    """Returns `hard` in the forward pass and the gradient of `surrogate` in the backward pass.

    Written as `stop_gradient(hard) + (surrogate - stop_gradient(surrogate))` rather than
    `surrogate + stop_gradient(hard - surrogate)`: both have the same gradient, but here the forward value
    is exactly `hard` (a - a is exactly 0 in floating point, a + (b - a) is not always b).
    """
    return tf.stop_gradient(hard) + (surrogate - tf.stop_gradient(surrogate))


def as_float_dtype(inputs, dtype: tf.DType) -> tf.Tensor:
    """`inputs` as a tensor of a layer's float `dtype`, cast from another float precision.

    Keras casts the inputs of a float32 layer's `call` under a mixed-precision policy, but not those of its
    other methods: `indices`, `compress` and the like get a bfloat16 / float16 network's output as it is
    (and `tf.convert_to_tensor(x, dtype=tf.float32)` refuses it). Other inputs are converted as before.
    """
    inputs = tf.convert_to_tensor(inputs)
    if inputs.dtype.is_floating and inputs.dtype != dtype:
        return tf.cast(inputs, dtype)
    return tf.convert_to_tensor(inputs, dtype=dtype)


@tf.keras.utils.register_keras_serializable(package="tfdplc")
@gin.configurable(module="tfdplc.layers")
class ScalarQuantizer(tf.keras.layers.Layer):
    """Element-wise nearest-centre quantizer with a straight-through or soft-to-hard gradient.

    Forward pass (always): every element x is replaced by its nearest centre c_i (ties go to the smaller
    centre). DPLC (Section 4) fixes the centres to {-1, 1}; any sorted list of L >= 2 distinct centres
    works, each element then costs log2(L) bits.

    Backward pass:
      * `"straight_through"`: identity gradient, i.e. `x + stop_gradient(hard - x)` (Yan et al. 2021,
        eq. 25; van den Oord et al. 2017).
      * `"soft_to_hard"`: the gradient of the soft assignment of Mentzer et al. (CVPR 2018, the
        "differentiable approximation from [9]" that DPLC uses):
        `soft(x) = sum_i c_i softmax_i(-temperature * (x - c_i)^2)`, combined as
        `soft + stop_gradient(hard - soft)`.

    Both are implemented so that the forward value is exactly the hard centre (see `_hard_forward`).

    Rate: fixed, `bits_per_element = log2(L)`. A zero-size input (e.g. zero channels, rate 0) passes
    through as an empty tensor.
    """

    def __init__(
        self,
        centers: Sequence[float] = (-1.0, 1.0),
        gradient: str = "straight_through",
        temperature: float = 1.0,
        **kwargs,
    ):
        """Initialises the quantizer.

        Args:
          centers: the quantization centres, strictly increasing, at least two.
          gradient: `"straight_through"` or `"soft_to_hard"`.
          temperature: hardness sigma of the soft assignment (Mentzer et al. call it sigma; larger values
            make the soft assignment closer to the hard one). Used only by `"soft_to_hard"`.
          **kwargs: passed to `tf.keras.layers.Layer` (e.g. `name`).

        Raises:
          ValueError: if the centres are fewer than two, not finite, not sorted or not distinct; if
            `gradient` is unknown; or if `temperature` is not a positive finite number.
          TypeError: if `centers` is not a sequence of numbers.
        """
        super().__init__(**kwargs)
        try:
            centers = tuple(float(c) for c in centers)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"ScalarQuantizer: centers must be a sequence of numbers, got {centers!r}."
            ) from error
        if len(centers) < 2:
            raise ValueError(
                f"ScalarQuantizer: need at least 2 centres, got {len(centers)} (one centre carries no "
                "information; for rate 0 give the quantized tensor zero channels instead)."
            )
        if not all(math.isfinite(c) for c in centers):
            raise ValueError(f"ScalarQuantizer: centres must be finite, got {centers}.")
        if any(b <= a for a, b in zip(centers, centers[1:])):
            raise ValueError(f"ScalarQuantizer: centres must be sorted and distinct, got {centers}.")
        if gradient not in _GRADIENTS:
            raise ValueError(f"ScalarQuantizer: gradient must be one of {_GRADIENTS}, got {gradient!r}.")
        temperature = float(temperature)
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"ScalarQuantizer: temperature must be positive and finite, got {temperature}.")
        self.centers = centers
        self.gradient = gradient
        self.temperature = temperature

    @property
    def num_levels(self) -> int:
        """Number of centres L."""
        return len(self.centers)

    @property
    def bits_per_element(self) -> float:
        """Bits per quantized element, log2(L)."""
        return math.log2(self.num_levels)

    def rate_bits(self, shape_or_tensor: ShapeOrTensor) -> float:
        """Exact bits per example: elements per example * log2(L).

        Args:
          shape_or_tensor: the shape of one example (without batch dimension), e.g. `(h, w, k)`, or a
            batched tensor whose first dimension is dropped.

        Returns:
          The number of bits per example (a Python float; 0.0 for zero-size examples).

        Raises:
          ValueError: if the example shape is not fully known.
        """
        return _elements_per_example(shape_or_tensor) * self.bits_per_element

    def _centers_tensor(self, dtype: tf.DType) -> tf.Tensor:
        return tf.constant(self.centers, dtype=dtype)

    def indices(self, inputs: tf.Tensor) -> tf.Tensor:
        """Returns the int32 index of the nearest centre of every element.

        Args:
          inputs: float tensor of any shape.

        Returns:
          An int32 tensor of the same shape, values in [0, L).
        """
        inputs = as_float_dtype(inputs, self.compute_dtype)
        centers = self._centers_tensor(inputs.dtype)
        # The centres are sorted, so the nearest one is found by counting the midpoints below x.
        midpoints = (centers[1:] + centers[:-1]) / 2
        above = tf.cast(tf.expand_dims(inputs, -1) > midpoints, tf.int32)
        return tf.reduce_sum(above, axis=-1)

    def dequantize(self, indices: tf.Tensor) -> tf.Tensor:
        """Maps centre indices back to centre values.

        Args:
          indices: integer tensor with values in [0, L).

        Returns:
          A float tensor of the same shape holding the centres.
        """
        return tf.gather(self._centers_tensor(self.compute_dtype), indices)

    def soft_assignment(self, inputs: tf.Tensor) -> tf.Tensor:
        """Soft quantization of Mentzer et al.: `sum_i c_i softmax_i(-temperature * (x - c_i)^2)`.

        Args:
          inputs: float tensor of any shape.

        Returns:
          The soft-quantized tensor, same shape as `inputs`.
        """
        inputs = as_float_dtype(inputs, self.compute_dtype)
        centers = self._centers_tensor(inputs.dtype)
        logits = -self.temperature * tf.square(tf.expand_dims(inputs, -1) - centers)
        return tf.reduce_sum(tf.nn.softmax(logits, axis=-1) * centers, axis=-1)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        """Quantizes to the nearest centre (forward) with the configured gradient (backward).

        Args:
          inputs: float tensor of any shape (may be zero-size).

        Returns:
          The hard-quantized tensor, same shape and dtype as `inputs`.
        """
        hard = self.dequantize(self.indices(inputs))
        if self.gradient == "straight_through":
            return _hard_forward(hard, inputs)
        return _hard_forward(hard, self.soft_assignment(inputs))

    def compute_output_shape(self, input_shape):
        """The output has the input's shape."""
        return tf.TensorShape(input_shape)

    def get_config(self) -> dict:
        """Returns the constructor arguments (plus the base layer's)."""
        config = super().get_config()
        config.update(centers=list(self.centers), gradient=self.gradient, temperature=self.temperature)
        return config


@tf.keras.utils.register_keras_serializable(package="tfdplc")
@gin.configurable(module="tfdplc.layers")
class UniversalQuantizer(tf.keras.layers.Layer):
    """Universal (subtractive-dither) quantization, Liu et al. 2022, eq. 14 and 16, Appendix B.2.

    Two modes:

      * L-level mode (`levels=L`, the paper's): the input y is a tanh output in [-1, 1]. The step is
        `step = 2 / (L - 1)` and the codebook is `C = {-1, -1 + step, ..., 1}`. Each element gets a dither
        `u ~ U[-step/2, step/2)` (the paper's `U[-1/(L-1), 1/(L-1)]`); the encoder sends the index of the
        codeword nearest to `y + u` (values beyond [-1, 1] go to the end codewords). Fixed rate: log2(L)
        bits per element, `d log2 L` per example.
      * Unit-step mode (`step=s`, `levels=None`): unbounded integer multiples of `s`,
        `s * round((y + u) / s)` with `u ~ U[-s/2, s/2)`. With `s = 1` this is `round(y + u)`, the
        quantizer inside tfc's universal entropy model; its alphabet is unbounded, so it has no fixed rate
        (entropy code it, e.g. with `UniversalBottleneck`).

    The decoder outputs `z - u_dec`:
      * `common_randomness=True`: `u_dec = u`, the encoder's dither (eq. 14). With y in [-1, 1] the error
        is then at most step/2 per element (uniform, independent of y: Gray & Stockham 1993).
      * `common_randomness=False`: `u_dec = u'`, an INDEPENDENT draw (eq. 16). (The papers' reference code
        had a switch for this that still shared the dither; here u' really comes from a different seed.)

    Randomness: every call draws a per-call seed (shape [2]) from the layer's `tf.random.Generator`
    (created from `seed`; non-deterministic when `seed` is None), and all dithers are stateless functions
    of that seed: `encoder_dither(shape, seed)` uses `seed` itself and `decoder_dither(shape, seed)`
    (without common randomness) uses `tf.random.experimental.stateless_fold_in(seed, 1)`, a Philox hash of
    the seed that differs from it (and from structured seeds such as [0, i]) with overwhelming
    probability. So two layers with the same `seed` draw the same sequence of dithers, and
    `decode(encode(y, s), s) == call(y, seed=s)` exactly. Each element of each example gets its own
    dither (unlike tfc's universal model, which shares one dither pattern across the batch). The
    generator's state is saved with the layer (checkpoints, SavedModel and `.keras`), so a loaded layer
    continues the dither sequence where the saved one stood.

    Gradient: straight through, `y + stop_gradient(output - y)` (forward value is exactly the output).
    """

    def __init__(
        self,
        levels: Optional[int] = None,
        step: Optional[float] = None,
        common_randomness: bool = True,
        seed: Optional[int] = None,
        **kwargs,
    ):
        """Initialises the quantizer.

        Args:
          levels: number of codewords L >= 2 on [-1, 1] (L-level mode). Exclusive with `step`.
          step: quantization step of the unbounded mode (e.g. 1.0). Exclusive with `levels`.
          common_randomness: whether the decoder subtracts the encoder's dither (True) or an independent
            one (False).
          seed: integer seed of the layer's dither generator; None draws a non-deterministic seed.
          **kwargs: passed to `tf.keras.layers.Layer` (e.g. `name`).

        Raises:
          ValueError: unless exactly one of `levels` (an integer >= 2) and `step` (a positive finite
            number) is given.
          TypeError: if `seed` is not an integer or None, or `common_randomness` is not a bool.
        """
        super().__init__(**kwargs)
        if (levels is None) == (step is None):
            raise ValueError(
                "UniversalQuantizer: give exactly one of levels (L-level codebook on [-1, 1]) and step "
                f"(unbounded uniform grid), got levels={levels!r}, step={step!r}."
            )
        if levels is not None and (isinstance(levels, bool) or not isinstance(levels, int) or levels < 2):
            raise ValueError(f"UniversalQuantizer: levels must be an integer >= 2, got {levels!r}.")
        if step is not None:
            step = float(step)
            if not (math.isfinite(step) and step > 0):
                raise ValueError(f"UniversalQuantizer: step must be positive and finite, got {step}.")
        if not isinstance(common_randomness, bool):
            raise TypeError(
                f"UniversalQuantizer: common_randomness must be a bool, got {common_randomness!r}."
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"UniversalQuantizer: seed must be an int or None, got {seed!r}.")
        self.levels = levels
        self.step = step
        self.common_randomness = common_randomness
        self.seed = seed
        if seed is None:
            self._generator = tf.random.Generator.from_non_deterministic_state()
        else:
            self._generator = tf.random.Generator.from_seed(seed)

    @property
    def bounded(self) -> bool:
        """True in L-level mode (fixed codebook on [-1, 1]), False in unit-step mode."""
        return self.levels is not None

    @property
    def delta(self) -> float:
        """The quantization step: 2 / (L - 1) in L-level mode, `step` otherwise."""
        return 2.0 / (self.levels - 1) if self.bounded else self.step

    @property
    def bits_per_element(self) -> float:
        """Bits per element, log2(L) (L-level mode only).

        Raises:
          ValueError: in unit-step mode, whose alphabet is unbounded.
        """
        if not self.bounded:
            raise ValueError(
                "UniversalQuantizer: the unit-step mode has an unbounded alphabet and no fixed rate; "
                "entropy code it (e.g. with UniversalBottleneck) or use levels=L."
            )
        return math.log2(self.levels)

    def rate_bits(self, shape_or_tensor: ShapeOrTensor) -> float:
        """Exact bits per example, d * log2(L) with d the elements per example (L-level mode only).

        Args:
          shape_or_tensor: the shape of one example (without batch dimension), or a batched tensor whose
            first dimension is dropped.

        Returns:
          The number of bits per example (a Python float).

        Raises:
          ValueError: in unit-step mode, or if the example shape is not fully known.
        """
        return _elements_per_example(shape_or_tensor) * self.bits_per_element

    def next_seed(self) -> tf.Tensor:
        """Draws the next per-call seed (int64, shape [2]) from the layer's generator.

        `call(y)` without `seed` uses exactly this draw, so a layer with the same `seed` reproduces it.
        """
        return self._generator.make_seeds(1)[:, 0]

    def _dither(self, shape: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        half = self.delta / 2
        return tf.random.stateless_uniform(
            shape, seed=seed, minval=-half, maxval=half, dtype=self.compute_dtype
        )

    def encoder_dither(self, shape, seed) -> tf.Tensor:
        """The encoder's dither u ~ U[-step/2, step/2) of the given shape, a function of `seed`.

        Args:
          shape: shape of the quantized tensor (batch included).
          seed: int tensor of shape [2].

        Returns:
          A float tensor of shape `shape`.
        """
        return self._dither(shape, seed)

    def decoder_dither(self, shape, seed) -> tf.Tensor:
        """The dither the decoder subtracts: the encoder's, or an independent one without common randomness.

        Args:
          shape: shape of the quantized tensor (batch included).
          seed: the int tensor of shape [2] given to the encoder.

        Returns:
          A float tensor of shape `shape`.
        """
        if self.common_randomness:
            return self._dither(shape, seed)
        return self._dither(shape, tf.random.experimental.stateless_fold_in(seed, 1))

    def encode(self, inputs: tf.Tensor, seed) -> tf.Tensor:
        """Encoder: indices of the codewords nearest to `inputs + u`.

        Args:
          inputs: float tensor (in [-1, 1] for the L-level mode).
          seed: int tensor of shape [2] that determines the dither.

        Returns:
          An int32 tensor of the same shape: codeword indices in [0, L) (L-level mode; codeword i is
          `-1 + i * step`), or the integers k of the grid points `k * step` (unit-step mode).
        """
        inputs = as_float_dtype(inputs, self.compute_dtype)
        dithered = inputs + self.encoder_dither(tf.shape(inputs), seed)
        if self.bounded:
            index = tf.clip_by_value(tf.round((dithered + 1.0) / self.delta), 0.0, float(self.levels - 1))
        else:
            index = tf.round(dithered / self.delta)
        return tf.cast(index, tf.int32)

    def codewords(self, indices: tf.Tensor) -> tf.Tensor:
        """Maps indices to codewords z (before the dither is subtracted).

        Args:
          indices: integer tensor from `encode`.

        Returns:
          A float tensor of the same shape.
        """
        indices = tf.cast(indices, self.compute_dtype)
        return indices * self.delta - 1.0 if self.bounded else indices * self.delta

    def decode(self, indices: tf.Tensor, seed) -> tf.Tensor:
        """Decoder: `z - u_dec` with z the codewords of `indices` (eq. 14, or eq. 16 without common randomness).

        Args:
          indices: integer tensor from `encode`.
          seed: the int tensor of shape [2] given to `encode`.

        Returns:
          The reconstruction, a float tensor of the same shape.
        """
        z = self.codewords(indices)
        return z - self.decoder_dither(tf.shape(z), seed)

    def call(self, inputs: tf.Tensor, seed: Optional[tf.Tensor] = None) -> tf.Tensor:
        """Encodes and decodes with a fresh dither; straight-through gradient.

        Args:
          inputs: float tensor (in [-1, 1] for the L-level mode).
          seed: optional int tensor of shape [2]; by default the next seed of the layer's generator.

        Returns:
          The decoder output `z - u_dec`, same shape as `inputs`.
        """
        inputs = as_float_dtype(inputs, self.compute_dtype)
        if seed is None:
            seed = self.next_seed()
        outputs = self.decode(self.encode(inputs, seed), seed)
        return _hard_forward(outputs, inputs)

    def compute_output_shape(self, input_shape):
        """The output has the input's shape."""
        return tf.TensorShape(input_shape)

    def save_own_variables(self, store):
        """Saves the generator state in the `.keras` format (Keras' default would save nothing).

        So a model loaded from `.keras` continues the dither sequence where the saved one stood, as it
        does when loaded from a checkpoint or SavedModel.
        """
        store["0"] = self._generator.state.numpy()

    def load_own_variables(self, store):
        """Restores the generator state saved by `save_own_variables`.

        Raises:
          ValueError: if the store does not hold exactly the generator state.
        """
        if len(store.keys()) != 1:
            raise ValueError(
                f"UniversalQuantizer '{self.name}': expected 1 saved array (generator state), "
                f"found {len(store.keys())}."
            )
        self._generator.state.assign(store["0"])

    def get_config(self) -> dict:
        """Returns the constructor arguments (plus the base layer's)."""
        config = super().get_config()
        config.update(
            levels=self.levels, step=self.step, common_randomness=self.common_randomness, seed=self.seed
        )
        return config
