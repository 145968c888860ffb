"""The "+n" noise input of DPLC (Tschannen et al. 2018, Appendix B) and a model that uses it.

`NoiseInput` concatenates an m-dimensional noise vector per example to its input: on a feature map it is
reshaped to the map's spatial size first. This is what makes the map B of DPLC (and the perceptual decoder
G2 of Yan et al. 2021) stochastic. `WithNoiseInput` wraps "+n followed by a network" as one Keras model
whose noise can be drawn internally or passed explicitly (reproducible decodes, conditional pixel variance).
"""

from typing import Optional

import gin
import tensorflow as tf

__all__ = ["NoiseInput", "WithNoiseInput"]

_DISTRIBUTIONS = ("uniform", "normal")


@tf.keras.utils.register_keras_serializable(package="tfdplc")
@gin.configurable(module="tfdplc.layers")
class NoiseInput(tf.keras.layers.Layer):
    """Concatenates m i.i.d. noise entries per example to the input ("+n", DPLC Appendix B).

    DPLC: "the suffix +n denotes concatenation of an m-dimensional noise vector with i.i.d. entries uniformly
    distributed on [0, 1], reshaped as to match the spatial dimension of the feature maps". For an input
    feature map (B, h, w, c) the noise vector (B, m) is reshaped to (B, h, w, m / (h * w)) (row-major: the
    first m / (h * w) entries fill position (0, 0)) and concatenated on the channel axis, giving
    (B, h, w, c + m / (h * w)). For a vector input (B, d) the m entries are concatenated: (B, d + m).
    The input may have zero channels (rate 0): the output is then the noise alone.

    `distribution="normal"` draws standard Gaussian entries instead (Yan et al. 2021, Section 4, feed
    Gaussian noise to G2). The DPLC reference code draws Uniform[-0.5, 0.5]; we follow the paper's [0, 1].

    Randomness: the layer owns a `tf.random.Generator` (seeded with `seed`, or from non-deterministic state
    when `seed` is None) created in `__init__`. Its state is a variable, so it is checkpointed and saved with
    the model, and it works in XLA-compiled functions. Under a `tf.distribute.Strategy`, construct the layer
    (i.e. the model) inside `strategy.scope()`, as for any Keras model: each replica then draws from its own
    stream (TF splits a generator created in the scope per replica), so replicas never share noise. Two
    layers built with the same seed draw the same sequence: give distinct layers distinct seeds.

    Noise is drawn in training and inference alike (B is stochastic at test time). Pass `noise=` to `call`
    to use a chosen noise instead, e.g. to decode reproducibly or to hold the noise fixed across codes.
    """

    def __init__(self, m: int, distribution: str = "uniform", seed: Optional[int] = None, **kwargs):
        """Initialises the layer.

        Args:
          m: number of noise entries per example (the DPLC latent dimension m).
          distribution: "uniform" (i.i.d. Uniform[0, 1), the paper) or "normal" (standard Gaussian).
          seed: integer seed of the layer's generator; None draws a non-deterministic seed.
          **kwargs: passed to `tf.keras.layers.Layer` (e.g. `name`).

        Raises:
          ValueError: if `m` is not a positive integer, `distribution` is unknown, or `seed` is not an int.
        """
        super().__init__(**kwargs)
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"NoiseInput: m must be a positive integer, got {m!r}.")
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"NoiseInput: distribution must be one of {_DISTRIBUTIONS}, got {distribution!r}."
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"NoiseInput: seed must be an int or None, got {seed!r}.")
        self.m = m
        self.distribution = distribution
        self.seed = seed
        # Created here rather than in build(): build() may run inside `strategy.run` (replica context), where
        # creating the generator's state variable is not allowed.
        with tf.init_scope():
            if seed is None:
                self._generator = tf.random.Generator.from_non_deterministic_state()
            else:
                self._generator = tf.random.Generator.from_seed(seed)

    def _noise_shape(self, input_shape: tf.TensorShape):
        """Static shape of the reshaped noise (without batch), after validating the input shape."""
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank == 2:
            return (self.m,)
        if input_shape.rank == 4:
            height, width = input_shape[1], input_shape[2]
            if height is None or width is None:
                raise ValueError(f"NoiseInput needs a static spatial size, got input shape {input_shape}.")
            if self.m % (height * width):
                raise ValueError(
                    f"NoiseInput: m={self.m} noise entries cannot be reshaped to the {height}x{width} "
                    f"feature map of input shape {input_shape}: m must be divisible by h*w={height * width}."
                )
            return (height, width, self.m // (height * width))
        raise ValueError(
            "NoiseInput expects a (batch, d) vector or a (batch, h, w, c) feature map, "
            f"got shape {input_shape}."
        )

    def build(self, input_shape):  # noqa: D102 - validates the shape early (at model construction).
        self._noise_shape(input_shape)
        super().build(input_shape)

    def call(self, inputs: tf.Tensor, noise: Optional[tf.Tensor] = None) -> tf.Tensor:
        """Concatenates noise to `inputs` on the last axis.

        Args:
          inputs: (B, d) vectors or (B, h, w, c) feature maps; c may be 0.
          noise: optional (B, m) noise to use instead of drawing it (a (B, h, w, m / (h * w)) tensor is
            accepted too); it is concatenated as given, whatever `distribution` says.

        Returns:
          (B, d + m) or (B, h, w, c + m / (h * w)), the dtype of `inputs`.

        Raises:
          ValueError: if `noise` does not hold m entries per example.
        """
        inputs = tf.convert_to_tensor(inputs)
        noise_shape = self._noise_shape(inputs.shape)
        batch = tf.shape(inputs)[0]
        if noise is None:
            noise = self.sample(batch)
        else:
            noise = tf.convert_to_tensor(noise)
            per_example = noise.shape[1:].num_elements()
            if noise.shape.rank is None or per_example != self.m:
                raise ValueError(
                    f"NoiseInput: explicit noise must hold m={self.m} entries per example, e.g. shape "
                    f"(batch, {self.m}); got shape {noise.shape}."
                )
        noise = tf.reshape(tf.cast(noise, inputs.dtype), tf.concat([[batch], noise_shape], axis=0))
        return tf.concat([inputs, noise], axis=-1)

    def sample(self, batch_size) -> tf.Tensor:
        """Draws a (batch_size, m) float32 noise batch from the layer's generator (advances its state)."""
        shape = tf.stack([tf.cast(batch_size, tf.int32), self.m])
        if self.distribution == "uniform":
            return self._generator.uniform(shape, minval=0.0, maxval=1.0, dtype=tf.float32)
        return self._generator.normal(shape, dtype=tf.float32)

    def compute_output_shape(self, input_shape):  # noqa: D102
        input_shape = tf.TensorShape(input_shape)
        noise_shape = self._noise_shape(input_shape)
        channels = input_shape[-1]
        total = None if channels is None else channels + noise_shape[-1]
        return input_shape[:-1].concatenate([total])

    # The generator's state is not a Keras weight: TF checkpoints and SavedModels track it on their own,
    # but the `.keras` format only stores what these two methods write.
    def save_own_variables(self, store):  # noqa: D102
        super().save_own_variables(store)
        store["generator_state"] = self._generator.state.numpy()

    def load_own_variables(self, store):  # noqa: D102
        if "generator_state" in store:
            self._generator.state.assign(store["generator_state"][...])

    def get_config(self):  # noqa: D102
        config = super().get_config()
        config.update(m=self.m, distribution=self.distribution, seed=self.seed)
        return config


@tf.keras.utils.register_keras_serializable(package="tfdplc")
class WithNoiseInput(tf.keras.Model):
    """A network preceded by "+n": `model(x, noise=None) = trunk(noise_layer(x, noise=noise))`.

    This is how the stochastic networks (DPLC's B with +n, Yan et al.'s G2) are returned: calling the model
    draws fresh noise, and `model(x, noise=n)` runs it with a chosen (B, m) noise `n`. Both are plain Keras
    calls, so the model trains, checkpoints and saves like any other; for a SavedModel signature with an
    explicit noise input, wrap `lambda x, n: model(x, noise=n, training=False)` in a `tf.function`.
    """

    def __init__(self, noise_layer: NoiseInput, trunk: tf.keras.Model, **kwargs):
        """Initialises the model.

        Args:
          noise_layer: the "+n" layer applied to the input.
          trunk: a built Keras model taking the noise layer's output.
          **kwargs: passed to `tf.keras.Model` (e.g. `name`).

        Raises:
          TypeError: if `noise_layer` is not a `NoiseInput` or `trunk` not a Keras model.
        """
        super().__init__(**kwargs)
        if not isinstance(noise_layer, NoiseInput):
            raise TypeError(f"WithNoiseInput: noise_layer must be a NoiseInput, got {type(noise_layer)}.")
        if not isinstance(trunk, tf.keras.Model):
            raise TypeError(f"WithNoiseInput: trunk must be a tf.keras.Model, got {type(trunk)}.")
        self.noise_layer = noise_layer
        self.trunk = trunk

    def call(self, inputs, training=None, noise=None):
        """Runs trunk(concat(inputs, noise)); `noise` (B, m) is drawn when None."""
        return self.trunk(self.noise_layer(inputs, noise=noise), training=training)

    @property
    def output_shape(self):
        """The trunk's output shape (a subclassed model has none of its own)."""
        return self.trunk.output_shape

    def get_config(self):  # noqa: D102
        return {
            "name": self.name,
            "noise_layer": tf.keras.layers.serialize(self.noise_layer),
            "trunk": tf.keras.layers.serialize(self.trunk),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):  # noqa: D102
        config = dict(config)
        noise_layer = tf.keras.layers.deserialize(config.pop("noise_layer"), custom_objects=custom_objects)
        trunk = tf.keras.layers.deserialize(config.pop("trunk"), custom_objects=custom_objects)
        return cls(noise_layer=noise_layer, trunk=trunk, **config)
