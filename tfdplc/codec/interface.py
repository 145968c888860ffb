"""The codec interface: how a model opts in to real bitstreams, SavedModel export and the CLI.

Any model can be exported (`tfdplc.codec.export_model`) and used by `tools/codec.py` if it implements a
small interface; the tfdplc objectives (CAE, DPLC stage 2, GC, the stage-1 generators) do, and a user's
own `tf.keras.Model` can (see docs/serving.md). Nothing has to be inherited:

    codec_spec() -> CodecSpec
        What the model's codes look like (static; callable before the model has been built).
    encode_codes(images, seeds) -> codes                              [if spec.can_encode]
        images: float32 (B, H, W, C) in [0, 1]; seeds: int64 (B,). Returns int32 codes (B, h, w, k):
        indices in [0, L) for a fixed-rate code (spec.levels = L), or unbounded integers that the
        model's entropy bottleneck codes (spec.levels = None). Deterministic given (images, seeds); the
        seed matters only for an encoder with a dither: shared with the decoder (spec.seeded_encoder), or
        private to a stochastic decoder's encoder (no common randomness, e.g. ShiftCompression "ncr").
    decode_codes(codes, seeds) -> images                              [if spec.can_encode]
        int32 codes (B, h, w, k) and int64 seeds (B,) -> float32 images (B, H, W, C) in [0, 1]. A
        stochastic decoder (spec.stochastic_decoder) must draw all its noise from the seeds, so that
        one (code, seed) always gives the same image: use `per_example_uniform` / `per_example_normal`.
        Image i may depend only on code i and seed i (not on the rest of the batch).
    sample_images(seeds) -> images                                    [if spec.can_sample]
        int64 seeds (B,) -> float32 images (B, H, W, C) in [0, 1], e.g. G(z) with z drawn from the seeds.
    codec_bottleneck                                                  [if spec.levels is None]
        The `tfdplc.layers.EntropyBottleneck` whose tables range code the integer codes (one string per
        image: its coding unit must be a whole (h, w, k) code, or the shape the bottleneck was built on
        when that is a reshape of it with the same channels, e.g. (d,) for a (1, 1, d) code). `bottleneck_codes` /
        `bottleneck_values` convert between the bottleneck's float outputs and the integer codes.
    decode_codes_realism(codes, seeds, realism) -> images, has_mse_decoder() -> bool   [optional]
        A model with an MSE decoder and a perceptual one of the same code (`PerceptualG2`): the blend
        (1 - realism) G1 + realism G2 with G2's noise from the seeds. When `has_mse_decoder()` is True the
        export adds the `decompress_realism` signature (`tfdplc.codec.export.has_realism_decoder`).

All four functions are traced into `tf.function`s with a dynamic batch size; they must run in inference
mode (`training=False`) and use only TF ops. Seeds: one int64 in [0, 2^63) per image; a model derives
stateless seed pairs from it, one stream per purpose (`DECODER_NOISE`, `SAMPLER`, `ENCODER_DITHER`), so
that e.g. the decoder noise and a sampler's latent never coincide.

Adding the interface to a new objective: implement the methods above, return a `CodecSpec`, and test
that `decode_codes(encode_codes(x, s), s)` equals the objective's own reconstruction (with the same
noise). Objectives with a `tfdplc.layers.UniversalQuantizer` set `seeded_encoder=True` and derive the
dither from `per_example_seed_pairs(seeds, ENCODER_DITHER)` on both sides.
"""

import dataclasses
import math
from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

__all__ = [
    "DECODER_NOISE",
    "ENCODER_DITHER",
    "SAMPLER",
    "CodecSpec",
    "bottleneck_codes",
    "bottleneck_values",
    "codec_spec_of",
    "per_example_normal",
    "per_example_seed_pairs",
    "per_example_uniform",
    "check_indexed_quantizer",
    "quantized_code_spec",
    "noise_layer_draw",
    "realism_value",
]

#: Streams of the per-image seed (the second entry of the stateless seed pair [seed, stream]).
DECODER_NOISE = 0
SAMPLER = 1
ENCODER_DITHER = 2

_MAX_DIM = 2**16 - 1  # Shapes are stored as uint16 in the container.


def _shape(value, name: str, minimum: int) -> Tuple[int, int, int]:
    try:
        shape = tuple(int(d) for d in value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"CodecSpec: {name} must be a sequence of 3 ints, got {value!r}.") from error
    if len(shape) != 3 or any(d < minimum or d > _MAX_DIM for d in shape):
        raise ValueError(f"CodecSpec: {name} must be 3 ints in [{minimum}, {_MAX_DIM}], got {value!r}.")
    return shape


@dataclasses.dataclass(frozen=True)
class CodecSpec:
    """What a model tells the codec about its images and codes.

    Attributes:
      image_shape: (H, W, C) of the images the encoder takes and the decoder / sampler outputs.
      code_shape: (h, w, k) of one image's code (k may be 0: rate 0), or None for a model without an
        encoder (a pure generator, which can only sample).
      levels: L, the number of symbols of a fixed-rate code (indices in [0, L), packed with
        ceil(log2 L) bits each), or None when the integer codes are range coded by `codec_bottleneck`.
      stochastic_decoder: whether `decode_codes` draws noise from the seeds.
      seeded_encoder: whether `encode_codes` uses the seeds (a dither shared with the decoder); the
        decoder must then use the seed of the container, never another one.
      can_sample: whether `sample_images` is implemented.
      method: a name for reports (e.g. the objective's name).
    """

    image_shape: Tuple[int, int, int]
    code_shape: Optional[Tuple[int, int, int]] = None
    levels: Optional[int] = None
    stochastic_decoder: bool = False
    seeded_encoder: bool = False
    can_sample: bool = False
    method: str = "model"

    def __post_init__(self):
        object.__setattr__(self, "image_shape", _shape(self.image_shape, "image_shape", 1))
        if self.code_shape is not None:
            code_shape = _shape(self.code_shape, "code_shape", 0)
            if min(code_shape[:2]) < 1:
                raise ValueError(f"CodecSpec: the code's h and w must be >= 1, got {code_shape}.")
            object.__setattr__(self, "code_shape", code_shape)
        if self.levels is not None:
            if (
                isinstance(self.levels, bool)
                or not isinstance(self.levels, int)
                or not 2 <= self.levels < 2**31
            ):
                raise ValueError(
                    f"CodecSpec: levels must be None or an int in [2, 2^31), got {self.levels!r}."
                )
        for name in ("stochastic_decoder", "seeded_encoder", "can_sample"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"CodecSpec: {name} must be a bool, got {getattr(self, name)!r}.")
        if self.code_shape is None and (
            self.levels is not None or self.stochastic_decoder or self.seeded_encoder
        ):
            raise ValueError("CodecSpec: levels / stochastic_decoder / seeded_encoder need a code_shape.")
        if self.code_shape is None and not self.can_sample:
            raise ValueError("CodecSpec: a model without a code (code_shape=None) must be able to sample.")
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"CodecSpec: method must be a non-empty string, got {self.method!r}.")

    @property
    def can_encode(self) -> bool:
        """Whether the model has an encoder (and hence compress / decompress)."""
        return self.code_shape is not None

    @property
    def entropy_coded(self) -> bool:
        """Whether the codes are range coded with the model's entropy bottleneck (tfc ops)."""
        return self.can_encode and self.levels is None

    @property
    def nominal_rate_bits(self) -> Optional[float]:
        """The rate h * w * k * log2(L) in bits per image of a fixed-rate code; None otherwise."""
        if not self.can_encode or self.levels is None:
            return None
        return float(math.prod(self.code_shape)) * math.log2(self.levels)

    def to_json(self) -> dict:
        """A JSON-serialisable dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "CodecSpec":
        """Inverse of `to_json`."""
        data = dict(data)
        for key in ("image_shape", "code_shape"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)


def codec_spec_of(model) -> CodecSpec:
    """The `CodecSpec` of a model, after checking that it implements the interface it declares.

    Raises:
      TypeError: if the model has no `codec_spec`, returns something else than a `CodecSpec`, or lacks a
        method its spec needs (naming it).
    """
    get_spec = getattr(model, "codec_spec", None)
    if not callable(get_spec):
        raise TypeError(
            f"{type(model).__name__} does not implement the tfdplc codec interface (no codec_spec()); "
            "see tfdplc.codec.interface."
        )
    spec = get_spec()
    if not isinstance(spec, CodecSpec):
        raise TypeError(
            f"{type(model).__name__}.codec_spec() must return a CodecSpec, got {type(spec).__name__}."
        )
    needed = []
    if spec.can_encode:
        needed += ["encode_codes", "decode_codes"]
    if spec.can_sample:
        needed.append("sample_images")
    missing = [name for name in needed if not callable(getattr(model, name, None))]
    if spec.entropy_coded and getattr(model, "codec_bottleneck", None) is None:
        missing.append("codec_bottleneck")
    if missing:
        raise TypeError(
            f"{type(model).__name__}: its CodecSpec needs {missing}, which it does not implement."
        )
    return spec


def per_example_seed_pairs(seeds: tf.Tensor, stream: int) -> tf.Tensor:
    """(B,) int64 seeds -> (B, 2) stateless seed pairs [seed, stream]."""
    seeds = tf.cast(seeds, tf.int64)
    return tf.stack([seeds, tf.fill(tf.shape(seeds), tf.constant(stream, tf.int64))], axis=1)


def _per_example(draw, seeds: tf.Tensor, shape: Sequence[int], stream: int) -> tf.Tensor:
    shape = [int(d) for d in shape]
    pairs = per_example_seed_pairs(seeds, stream)
    # One stateless draw per image, so an image's noise depends on its own seed only (not on the batch).
    return tf.map_fn(
        lambda pair: draw(shape, pair),
        pairs,
        fn_output_signature=tf.TensorSpec(shape, tf.float32),
    )


def per_example_uniform(
    seeds: tf.Tensor,
    shape: Sequence[int],
    stream: int = DECODER_NOISE,
    minval: float = 0.0,
    maxval: float = 1.0,
) -> tf.Tensor:
    """Uniform[minval, maxval) noise of `shape` per image, a stateless function of each image's seed.

    Args:
      seeds: (B,) int64 seeds.
      shape: the noise shape of one image, e.g. (m,).
      stream: which stream of the seed (see the module docstring).
      minval: lower bound.
      maxval: upper bound (excluded).

    Returns:
      A float32 tensor (B, *shape).
    """
    return _per_example(
        lambda s, pair: tf.random.stateless_uniform(s, pair, minval=minval, maxval=maxval),
        seeds,
        shape,
        stream,
    )


def per_example_normal(seeds: tf.Tensor, shape: Sequence[int], stream: int = DECODER_NOISE) -> tf.Tensor:
    """Standard normal noise of `shape` per image, a stateless function of each image's seed.

    Args:
      seeds: (B,) int64 seeds.
      shape: the noise shape of one image, e.g. (m,).
      stream: which stream of the seed.

    Returns:
      A float32 tensor (B, *shape).
    """
    return _per_example(lambda s, pair: tf.random.stateless_normal(s, pair), seeds, shape, stream)


def _stored_offset(bottleneck) -> tf.Tensor:
    # The offset the range coder uses (stored by update_tables(); zeros without the offset heuristic).
    # Read directly: the public property would put tfc's tail-estimation branch into servable graphs.
    return tf.identity(bottleneck._quantization_offset)


def bottleneck_codes(bottleneck, latents: tf.Tensor) -> tf.Tensor:
    """The integer codes an `EntropyBottleneck` codes for float latents: round(y - o), int32.

    `bottleneck(y, training=False)[0]` equals `bottleneck_values(bottleneck, bottleneck_codes(bottleneck, y))`
    once `update_tables()` has run.
    """
    latents = tf.convert_to_tensor(latents, tf.float32)
    return tf.cast(tf.round(latents - _stored_offset(bottleneck)), tf.int32)


def bottleneck_values(bottleneck, codes: tf.Tensor) -> tf.Tensor:
    """The bottleneck's dequantized output for integer codes: codes + o, float32."""
    return tf.cast(codes, tf.float32) + _stored_offset(bottleneck)


def realism_value(realism) -> float:
    """A realism weight alpha as a float in [0, 1], refused (ValueError) unless it is a finite number there.

    The one Python-side check of alpha, shared by `PerceptualG2.decode_realism` and `tfdplc.codec.Codec`.

    Args:
      realism: a Python or NumPy real number (bools and strings are refused).

    Returns:
      alpha as a Python float.

    Raises:
      ValueError: if it is not a number, is NaN or infinite, or lies outside [0, 1].
    """
    if isinstance(realism, (bool, np.bool_)) or not isinstance(
        realism, (int, float, np.integer, np.floating)
    ):
        raise ValueError(f"realism must be a number in [0, 1], got {realism!r}.")
    alpha = float(realism)
    if not (np.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise ValueError(
            f"realism must be in [0, 1] (0: the MSE decoder, 1: the perceptual decoder), got {realism!r}."
        )
    return alpha


def check_indexed_quantizer(quantizer, method: str) -> None:
    """Refuses a quantizer without centre indices: the codec sends indices, not centre values.

    Args:
      quantizer: the quantizer of a fixed-rate code.
      method: the objective's name, for the message.

    Raises:
      TypeError: unless the quantizer has `indices` and `dequantize` (as `tfdplc.layers.ScalarQuantizer`).
    """
    if not hasattr(quantizer, "indices") or not hasattr(quantizer, "dequantize"):
        raise TypeError(
            f"{method!r}: the codec needs a quantizer with indices/dequantize "
            f"(tfdplc.layers.ScalarQuantizer), got {type(quantizer).__name__}."
        )


def quantized_code_spec(encoder, quantizer, method: str, code_shape=None, **flags) -> CodecSpec:
    """The CodecSpec of a fixed-rate code: the centre indices of `quantizer` applied to `encoder`'s output.

    Shared by the objectives whose code is E's output quantized to a fixed codebook (CAE, DPLC, GC, and
    with a (1, 1, d) `code_shape` the vector codes of PerceptualG1 and DAL).

    Args:
      encoder: E, a Keras model images -> (B, h, w, k) code maps.
      quantizer: the quantizer of E's output; it must map to and from centre indices
        (`indices` / `dequantize` / `num_levels`, as `tfdplc.layers.ScalarQuantizer`).
      method: the objective's name, stored in the spec.
      code_shape: the (h, w, k) code map the codec sends; None takes E's output shape.
      **flags: further CodecSpec fields, e.g. `stochastic_decoder=True`, `can_sample=True`.

    Returns:
      The CodecSpec.

    Raises:
      TypeError: if the quantizer has no centre indices.
    """
    check_indexed_quantizer(quantizer, method)
    return CodecSpec(
        image_shape=tuple(encoder.input_shape[1:]),
        code_shape=tuple(encoder.output_shape[1:] if code_shape is None else code_shape),
        levels=quantizer.num_levels,
        method=method,
        **flags,
    )


def noise_layer_draw(layer, seeds: tf.Tensor, stream: int = DECODER_NOISE) -> tf.Tensor:
    """Per-image noise with the distribution of a `tfdplc.layers.NoiseInput` layer, from each image's seed.

    So `decode_codes(c, s)` of a stochastic decoder is one draw of the same decoder the layer feeds in
    training, reproducible from the seed stored in the container.

    Args:
      layer: the decoder's NoiseInput (exposes `distribution`, "uniform" or "normal", and `m`).
      seeds: (B,) int64 seeds.
      stream: which stream of the seed.

    Returns:
      A float32 tensor (B, m).
    """
    if layer.distribution == "uniform":
        return per_example_uniform(seeds, [layer.m], stream)
    return per_example_normal(seeds, [layer.m], stream)
