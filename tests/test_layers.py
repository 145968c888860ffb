"""Tests for tfdplc.layers quantizers and entropy bottlenecks."""

import math

import gin
import numpy as np
import pytest
import tensorflow as tf

from tfdplc.layers.bottlenecks import EntropyBottleneck, UniversalBottleneck
from tfdplc.layers.quantizers import ScalarQuantizer, UniversalQuantizer

BOTTLENECKS = [EntropyBottleneck, UniversalBottleneck]
# (batch, d) vectors and (batch, h, w, C) feature maps.
SHAPES = [(5, 6), (2, 3, 4, 3)]


@pytest.fixture(autouse=True)
def _seed():
    tf.keras.utils.set_random_seed(1234)


def _grad(layer_fn, x):
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer_fn(x)
    return y, tape.gradient(y, x)


# ---------------------------------------------------------------------------------------------------------
# ScalarQuantizer


def test_scalar_quantizer_two_centres_forward_is_hard():
    x = tf.constant([[-3.0, -0.2, -1e-6, 1e-6, 0.4, 2.5]])
    y = ScalarQuantizer()(x)
    np.testing.assert_array_equal(y.numpy(), [[-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]])


def test_scalar_quantizer_four_centres_forward_and_indices():
    centers = (-1.0, -1.0 / 3, 1.0 / 3, 1.0)
    q = ScalarQuantizer(centers=centers)
    x = tf.constant([-5.0, -0.7, -0.6, -0.1, 0.1, 0.6, 0.7, 9.0])
    expected_idx = [0, 0, 1, 1, 2, 2, 3, 3]
    np.testing.assert_array_equal(q.indices(x).numpy(), expected_idx)
    np.testing.assert_array_equal(q(x).numpy(), np.float32(centers)[expected_idx])
    assert q.indices(x).dtype == tf.int32


@pytest.mark.parametrize("gradient", ["straight_through", "soft_to_hard"])
def test_scalar_quantizer_forward_is_exactly_hard_for_both_gradients(gradient):
    q = ScalarQuantizer(centers=(-1.0, -0.3, 0.3, 1.0), gradient=gradient, temperature=2.0)
    x = tf.random.normal([64, 7])
    y = q(x)
    np.testing.assert_array_equal(y.numpy(), q.dequantize(q.indices(x)).numpy())
    assert set(np.unique(y.numpy())) <= {np.float32(c) for c in q.centers}


def test_straight_through_gradient_is_one():
    x = tf.random.normal([4, 5])
    _, grad = _grad(ScalarQuantizer(), x)
    np.testing.assert_array_equal(grad.numpy(), np.ones([4, 5], np.float32))


def test_soft_to_hard_gradient_is_nonzero_finite_and_not_straight_through():
    x = tf.constant(np.linspace(-1.5, 1.5, 13, dtype=np.float32))
    _, grad = _grad(ScalarQuantizer(gradient="soft_to_hard", temperature=1.0), x)
    grad = grad.numpy()
    assert np.all(np.isfinite(grad))
    assert np.all(grad > 0)
    # For centres {-1, 1}: soft(x) = tanh(2 * temperature * x), so the gradient is known in closed form.
    np.testing.assert_allclose(grad, 2.0 * (1.0 - np.tanh(2.0 * x.numpy()) ** 2), rtol=1e-4, atol=1e-6)
    assert not np.allclose(grad, 1.0)


def test_soft_to_hard_temperature_sharpens_the_gradient():
    x = tf.constant([0.0, 0.8])
    _, soft = _grad(ScalarQuantizer(gradient="soft_to_hard", temperature=1.0), x)
    _, hard = _grad(ScalarQuantizer(gradient="soft_to_hard", temperature=10.0), x)
    # Harder assignment: steeper at the decision boundary, flatter near a centre.
    assert hard[0] > soft[0]
    assert hard[1] < soft[1]


@pytest.mark.parametrize("centers, bits", [((-1.0, 1.0), 32.0), ((-1.0, -0.3, 0.3, 1.0), 64.0)])
def test_scalar_quantizer_rate_bits_exact(centers, bits):
    q = ScalarQuantizer(centers=centers)
    assert q.rate_bits((2, 2, 8)) == bits
    assert q.rate_bits(tf.TensorShape([2, 2, 8])) == bits
    # A batched tensor: the leading (batch) dimension is dropped.
    assert q.rate_bits(tf.zeros([7, 2, 2, 8])) == bits
    assert q.bits_per_element == math.log2(len(centers))


def test_scalar_quantizer_rate_of_three_levels_is_log2_3_per_element():
    assert ScalarQuantizer(centers=(-1.0, 0.0, 1.0)).rate_bits((10,)) == pytest.approx(10 * math.log2(3))


def test_scalar_quantizer_indices_dequantize_round_trip():
    q = ScalarQuantizer(centers=(-2.0, -0.5, 0.0, 1.5, 4.0))
    indices = tf.constant(np.random.default_rng(0).integers(0, 5, size=(3, 4, 5)), tf.int32)
    values = q.dequantize(indices)
    np.testing.assert_array_equal(q.indices(values).numpy(), indices.numpy())
    x = tf.random.normal([3, 4, 5]) * 3
    np.testing.assert_array_equal(q.dequantize(q.indices(x)).numpy(), q(x).numpy())


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(centers=(1.0,)), ValueError),
        (dict(centers=()), ValueError),
        (dict(centers=(1.0, -1.0)), ValueError),
        (dict(centers=(-1.0, 0.0, 0.0, 1.0)), ValueError),
        (dict(centers=(-1.0, float("nan"))), ValueError),
        (dict(centers=("a", "b")), TypeError),
        (dict(centers=None), TypeError),
        (dict(gradient="identity"), ValueError),
        (dict(gradient="soft_to_hard", temperature=0.0), ValueError),
    ],
)
def test_scalar_quantizer_bad_arguments_raise(kwargs, error):
    with pytest.raises(error):
        ScalarQuantizer(**kwargs)


def test_scalar_quantizer_zero_channels_pass_through_with_rate_zero():
    q = ScalarQuantizer(gradient="soft_to_hard")
    x = tf.zeros([2, 4, 4, 0])
    y, grad = _grad(q, x)
    assert y.shape == (2, 4, 4, 0)
    assert grad.shape == (2, 4, 4, 0)
    assert q.rate_bits(x) == 0.0
    assert q.rate_bits((4, 4, 0)) == 0.0


def test_rate_bits_needs_known_shape():
    with pytest.raises(ValueError, match="fully known"):
        ScalarQuantizer().rate_bits(tf.TensorShape([None, 3]))


# ---------------------------------------------------------------------------------------------------------
# UniversalQuantizer

SEED = tf.constant([3, 14], tf.int64)


def test_unit_step_shared_dither_is_round_y_plus_u_minus_u():
    q = UniversalQuantizer(step=1.0, seed=0)
    y = tf.random.normal([8, 16]) * 4
    u = q.encoder_dither(tf.shape(y), SEED).numpy()
    assert np.all(np.abs(u) <= 0.5)
    out = q(y, seed=SEED).numpy()
    np.testing.assert_array_equal(out, np.round(y.numpy() + u) - u)
    # Indices are the integers round(y + u), unbounded.
    np.testing.assert_array_equal(q.encode(y, SEED).numpy(), np.round(y.numpy() + u).astype(np.int32))


@pytest.mark.parametrize("levels", [2, 4, 8])
def test_levels_mode_is_nearest_codeword_minus_dither(levels):
    q = UniversalQuantizer(levels=levels, seed=0)
    delta = np.float32(2.0 / (levels - 1))
    codebook = np.arange(levels, dtype=np.float32) * delta - np.float32(1.0)
    y = tf.random.uniform([6, 20], -1.0, 1.0)
    u = q.encoder_dither(tf.shape(y), SEED).numpy()
    assert np.all(np.abs(u) <= delta / 2)
    dithered = y.numpy() + u
    nearest = np.argmin(np.abs(dithered[..., None] - codebook), axis=-1)
    np.testing.assert_array_equal(q.encode(y, SEED).numpy(), nearest)
    np.testing.assert_array_equal(q(y, seed=SEED).numpy(), codebook[nearest] - u)


def test_independent_dither_differs_from_shared():
    y = tf.random.uniform([64, 32], -1.0, 1.0)
    shared = UniversalQuantizer(levels=4, common_randomness=True)
    independent = UniversalQuantizer(levels=4, common_randomness=False)
    shape = tf.shape(y)
    u = independent.encoder_dither(shape, SEED).numpy()
    u_dec = independent.decoder_dither(shape, SEED).numpy()
    # Same encoder dither for both variants, a different decoder dither without common randomness.
    np.testing.assert_array_equal(u, shared.encoder_dither(shape, SEED).numpy())
    np.testing.assert_array_equal(shared.decoder_dither(shape, SEED).numpy(), u)
    assert np.all(u != u_dec)
    # ... that is uncorrelated with u (2048 samples: |corr| of independent draws ~ 1/sqrt(2048) = 0.02).
    assert abs(np.corrcoef(u.ravel(), u_dec.ravel())[0, 1]) < 0.1
    assert np.abs(u_dec).max() <= 1.0 / 3.0
    # Same indices, different outputs: z - u' instead of z - u.
    np.testing.assert_array_equal(independent.encode(y, SEED).numpy(), shared.encode(y, SEED).numpy())
    out_shared = shared(y, seed=SEED).numpy()
    out_indep = independent(y, seed=SEED).numpy()
    assert np.all(out_shared != out_indep)
    z = independent.codewords(independent.encode(y, SEED)).numpy()
    np.testing.assert_array_equal(out_indep, z - u_dec)
    # Without common randomness the error is larger: E(z - u' - y)^2 = 2 step^2 / 12 vs step^2 / 12.
    mse_shared = np.mean((out_shared - y.numpy()) ** 2)
    mse_indep = np.mean((out_indep - y.numpy()) ** 2)
    assert mse_indep > 1.5 * mse_shared


def test_same_seed_same_dither_sequence():
    y = tf.random.uniform([4, 10], -1.0, 1.0)
    a, b, c = (UniversalQuantizer(levels=4, seed=s) for s in (7, 7, 8))
    a1, a2 = a(y).numpy(), a(y).numpy()
    b1, b2 = b(y).numpy(), b(y).numpy()
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)  # Fresh dither every call.
    assert not np.array_equal(a1, c(y).numpy())  # Another seed, another sequence.


def test_call_equals_encode_decode_with_the_drawn_seed():
    y = tf.random.uniform([4, 10], -1.0, 1.0)
    for common_randomness in (True, False):
        a = UniversalQuantizer(levels=8, common_randomness=common_randomness, seed=5)
        b = UniversalQuantizer(levels=8, common_randomness=common_randomness, seed=5)
        seed = b.next_seed()
        assert seed.shape == (2,)
        np.testing.assert_array_equal(a(y).numpy(), b.decode(b.encode(y, seed), seed).numpy())


def test_dither_differs_per_example():
    # Identical examples get different dithers (unlike tfc's universal model).
    y = tf.zeros([2, 50])
    q = UniversalQuantizer(step=1.0, seed=0)
    out = q(y).numpy()
    assert not np.array_equal(out[0], out[1])


def test_universal_quantizer_rate_bits():
    q = UniversalQuantizer(levels=4)
    assert q.rate_bits((16,)) == 32.0
    assert q.rate_bits(tf.zeros([3, 2, 2, 5])) == 40.0
    assert UniversalQuantizer(levels=8).bits_per_element == 3.0
    with pytest.raises(ValueError, match="unbounded"):
        UniversalQuantizer(step=1.0).rate_bits((16,))


@pytest.mark.parametrize("levels", [2, 4, 8])
def test_error_bounded_by_half_step_with_common_randomness(levels):
    q = UniversalQuantizer(levels=levels, seed=1)
    y = tf.concat([tf.random.uniform([1000], -1.0, 1.0), tf.constant([-1.0, 1.0])], 0)
    error = np.abs(q(y).numpy() - y.numpy())
    assert error.max() <= q.delta / 2 + 1e-6
    assert q.delta == pytest.approx(2.0 / (levels - 1))


def test_universal_quantizer_gradient_is_straight_through():
    q = UniversalQuantizer(levels=4, seed=2)
    y = tf.random.uniform([3, 5], -1.0, 1.0)
    _, grad = _grad(q, y)
    np.testing.assert_array_equal(grad.numpy(), np.ones([3, 5], np.float32))


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(), ValueError),
        (dict(levels=4, step=1.0), ValueError),
        (dict(levels=1), ValueError),
        (dict(levels=2.5), ValueError),
        (dict(step=0.0), ValueError),
        (dict(step=-1.0), ValueError),
        (dict(levels=4, seed="a"), TypeError),
        (dict(levels=4, common_randomness="yes"), TypeError),
    ],
)
def test_universal_quantizer_bad_arguments_raise(kwargs, error):
    with pytest.raises(error):
        UniversalQuantizer(**kwargs)


# ---------------------------------------------------------------------------------------------------------
# Entropy bottlenecks


_TABLES_CACHE = {}


def _bottleneck_with_tables(cls, shape, **kwargs):
    """A seeded, untrained bottleneck with range-coding tables and a batch y (shared, tests only read it).

    Building the tables takes about a second, so each (class, shape, arguments) is built once.
    """
    key = (cls, tuple(shape), tuple(sorted(kwargs.items())))
    if key not in _TABLES_CACHE:
        tf.keras.utils.set_random_seed(99)
        layer = cls(**kwargs)
        y = tf.random.normal(shape) * 3.0
        layer(y, training=True)  # Builds the prior.
        layer.update_tables()
        _TABLES_CACHE[key] = layer, y
    return _TABLES_CACHE[key]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cls", BOTTLENECKS)
def test_compress_decompress_equals_inference_output_and_bits_match(cls, shape):
    layer, y = _bottleneck_with_tables(cls, shape)
    y_hat, bits = layer(y, training=False)
    strings = layer.compress(y)
    assert strings.shape == (shape[0],)
    decoded = layer.decompress(strings, shape[1:-1])
    assert decoded.shape == shape
    np.testing.assert_array_equal(decoded.numpy(), y_hat.numpy())
    # Quantization error of rounding (possibly dithered / offset) is at most 1/2.
    assert np.abs(y_hat.numpy() - y.numpy()).max() <= 0.5 + 1e-5
    assert bits.shape == (shape[0],)
    assert np.all(np.isfinite(bits.numpy())) and np.all(bits.numpy() > 0)
    # Untrained prior (fixed by the seed): about 5.5 bits per element. Seen: 8 * string length is within
    # 7.2 bits of the information content for 6 elements per string (~33 bits) and within 4.1 bits for 36
    # elements (~197 bits): the range coder adds up to about a byte per string.
    actual = np.array([8 * len(s) for s in strings.numpy()])
    np.testing.assert_allclose(actual, bits.numpy(), rtol=0.05, atol=16)


@pytest.mark.parametrize("cls", BOTTLENECKS)
def test_training_mode_adds_noise_and_gives_finite_bits(cls):
    layer = cls()
    y = tf.random.normal([4, 3, 3, 2]) * 3.0
    perturbed, bits = layer(y, training=True)
    noise = perturbed.numpy() - y.numpy()
    assert np.abs(noise).max() <= 0.5 + 1e-6
    assert np.std(noise) > 0.2  # ~ 1/sqrt(12) for U(-1/2, 1/2).
    assert bits.shape == (4,) and np.all(np.isfinite(bits.numpy()))
    with tf.GradientTape() as tape:
        _, bits = layer(y, training=True)
        loss = tf.reduce_mean(bits)
    grads = tape.gradient(loss, layer.trainable_variables)
    assert len(grads) == len(layer.trainable_variables) > 0
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)


# Both classes and both of tfc's gradient paths (plain, and expected gradients through tf.custom_gradient).
@pytest.mark.parametrize("cls, expected_grads", [(EntropyBottleneck, False), (UniversalBottleneck, True)])
def test_seeded_training_noise_is_tfcs_training_output_for_that_noise(cls, expected_grads):
    # `call(y, training=True, seed=s)` (exact resume: the noise from a checkpointed seed) is tfc's own
    # training branch with the noise u drawn from s: given the u tfc draws itself, `perturbed` is tfc's
    # output bit for bit (same ops), and with a seed the result is a function of the seed alone.
    layer = cls(expected_grads=expected_grads)
    y = tf.random.normal([4, 3, 3, 2]) * 3.0
    layer(y, training=True)  # builds the prior
    tf.random.set_seed(5)
    tfc_output, tfc_bits = layer(y, training=True)  # tfc draws u with tf.random.uniform ...
    tf.random.set_seed(5)
    u = tf.random.uniform(tf.shape(y), minval=-0.5, maxval=0.5)  # ... this u: the same op and seed
    output, bits = layer.perturbed(y, u)
    np.testing.assert_array_equal(output.numpy(), tfc_output.numpy())
    np.testing.assert_array_equal(bits.numpy(), tfc_bits.numpy())
    np.testing.assert_array_equal(output.numpy(), (y + u).numpy())
    assert bits.shape == (4,)

    seed = tf.constant([3, 26], tf.int64)
    seeded = layer(y, training=True, seed=seed)
    tf.random.set_seed(77)  # TF's global stream plays no part
    again = layer(y, training=True, seed=seed)
    drawn = layer.perturbed(y, tf.random.stateless_uniform(tf.shape(y), seed, minval=-0.5, maxval=0.5))
    for a, b, c in zip(seeded, again, drawn):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(a.numpy(), c.numpy())
    other = layer(y, training=True, seed=tf.constant([4, 26], tf.int64))[0]
    assert not np.array_equal(other.numpy(), seeded[0].numpy())
    # The gradients flow as tfc's do (expected gradients w.r.t. y with expected_grads).
    with tf.GradientTape() as tape:
        tape.watch(y)
        total = tf.reduce_sum(layer(y, training=True, seed=seed)[1])
    gradients = tape.gradient(total, [y] + layer.trainable_variables)
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in gradients)
    # Inference ignores the seed.
    np.testing.assert_array_equal(
        layer(y, training=False, seed=seed)[0].numpy(), layer(y, training=False)[0].numpy()
    )


def test_entropy_bottleneck_rounds_to_offset_integers():
    layer, y = _bottleneck_with_tables(EntropyBottleneck, SHAPES[0])
    y_hat, _ = layer(y, training=False)
    shifted = y_hat.numpy() - layer.quantization_offset.numpy()
    np.testing.assert_allclose(shifted, np.round(shifted), atol=1e-5)


def test_entropy_bottleneck_offset_before_tables_matches_stored_offset():
    layer = EntropyBottleneck()
    y = tf.random.normal([6, 4]) * 3.0
    before, _ = layer(y, training=False)  # Offset recomputed from the prior.
    layer.update_tables()
    after, _ = layer(y, training=False)  # Stored offset.
    np.testing.assert_allclose(before.numpy(), after.numpy(), atol=1e-5)


def test_universal_bottleneck_uses_one_dither_for_the_whole_batch():
    layer = UniversalBottleneck()
    y = tf.tile(tf.random.normal([1, 8]) * 3.0, [3, 1])
    y_hat, _ = layer(y, training=False)
    np.testing.assert_array_equal(y_hat.numpy()[0], y_hat.numpy()[1])
    np.testing.assert_array_equal(y_hat.numpy()[0], y_hat.numpy()[2])
    # The dither is not zero: outputs are not integers.
    assert np.abs(y_hat.numpy() - np.round(y_hat.numpy())).max() > 0.01


@pytest.mark.parametrize("cls", BOTTLENECKS)
def test_coding_rank_one_codes_each_position(cls):
    layer, y = _bottleneck_with_tables(cls, (2, 3, 4, 5), coding_rank=1)
    y_hat, bits = layer(y, training=False)
    assert bits.shape == (2, 3, 4)
    strings = layer.compress(y)
    assert strings.shape == (2, 3, 4)
    np.testing.assert_array_equal(layer.decompress(strings, ()).numpy(), y_hat.numpy())


@pytest.mark.parametrize("cls", BOTTLENECKS)
def test_compress_without_tables_fails_clearly(cls):
    layer = cls()
    y = tf.random.normal([2, 3])
    layer(y)
    assert not layer.has_tables
    with pytest.raises(tf.errors.InvalidArgumentError, match="update_tables"):
        layer.compress(y)
    with pytest.raises(RuntimeError, match="not built"):
        cls().compress(y)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(coding_rank=0), ValueError),
        (dict(tail_mass=1.5), ValueError),
        (dict(init_scale=-1.0), ValueError),
        (dict(num_filters=(3, 0)), ValueError),
        (dict(range_coder_precision=40), ValueError),
        (dict(range_coder_precision=12.0), TypeError),
    ],
)
@pytest.mark.parametrize("cls", BOTTLENECKS)
def test_bottleneck_bad_arguments_raise(cls, kwargs, error):
    with pytest.raises(error):
        cls(**kwargs)


@pytest.mark.parametrize("cls", BOTTLENECKS)
def test_bottleneck_bad_input_shapes_raise(cls):
    with pytest.raises(ValueError, match="rank >= 2"):
        cls()(tf.zeros([5]))
    with pytest.raises(ValueError, match="channel"):
        cls()(tf.zeros([2, 0]))
    with pytest.raises(ValueError, match="coding_rank=3"):
        cls(coding_rank=3)(tf.zeros([2, 4, 3]))


@pytest.mark.parametrize("cls", BOTTLENECKS)
def test_compress_in_tf_function(cls):
    layer, y = _bottleneck_with_tables(cls, SHAPES[1])
    compress = tf.function(layer.compress)
    decompress = tf.function(layer.decompress)
    strings = compress(y)
    np.testing.assert_array_equal(strings.numpy(), layer.compress(y).numpy())
    np.testing.assert_array_equal(
        decompress(strings, SHAPES[1][1:-1]).numpy(), layer(y, training=False)[0].numpy()
    )


# ---------------------------------------------------------------------------------------------------------
# Inside Keras models: fit, save (SavedModel and .keras), load, config round trip.


LAYER_FACTORIES = {
    "scalar": lambda name: ScalarQuantizer(
        centers=(-1.0, 0.0, 1.0), gradient="soft_to_hard", temperature=2.0, name=name
    ),
    "universal_shared": lambda name: UniversalQuantizer(levels=4, seed=3, name=name),
    "universal_independent": lambda name: UniversalQuantizer(
        levels=4, common_randomness=False, seed=4, name=name
    ),
    "entropy": lambda name: EntropyBottleneck(name=name),
    "universal_bottleneck": lambda name: UniversalBottleneck(name=name),
}
FEATURES = 5
BOTTLENECK_SCALE = 3.0  # Scales the latents of the bottlenecks so that rounding keeps some information.


def _is_bottleneck(layer):
    return isinstance(layer, (EntropyBottleneck, UniversalBottleneck))


def _model_with_every_layer():
    """One functional model with a branch per layer: x -> Dense -> layer -> concat -> Dense -> x.

    One model for all five layers keeps the file fast (fitting and saving a model costs seconds). Each
    branch's encoder is a Dense layer named "<layer>_latent"; the bottlenecks' bits go into the loss.
    """
    inputs = tf.keras.Input((FEATURES,))
    branches, rates = [], []
    for name, factory in LAYER_FACTORIES.items():
        layer = factory(name)
        if _is_bottleneck(layer):
            latent = tf.keras.layers.Dense(4, name=f"{name}_latent")(inputs)
            quantized, bits = layer(latent * BOTTLENECK_SCALE)
            rates.append(tf.reduce_mean(bits))
        else:
            # Quantizers expect values in [-1, 1]: a tanh encoder output, as in the papers.
            quantized = layer(tf.keras.layers.Dense(4, activation="tanh", name=f"{name}_latent")(inputs))
        branches.append(quantized)
    outputs = tf.keras.layers.Dense(FEATURES)(tf.keras.layers.Concatenate()(branches))
    model = tf.keras.Model(inputs, outputs)
    model.add_loss(1e-2 * tf.add_n(rates))
    return model


def _probe(model):
    """A model giving every layer's outputs (one call, so each generator advances once)."""
    outputs = {}
    for name in LAYER_FACTORIES:
        output = model.get_layer(name).output
        if isinstance(output, (list, tuple)):
            outputs[name], outputs[name + "/bits"] = output
        else:
            outputs[name] = output
    return tf.keras.Model(model.input, outputs)


def _codec_signatures(model, names):
    """compress_<name> (x -> strings) and decompress_<name> (strings -> latent) for each bottleneck."""
    signatures = {}
    for name in names:
        layer, encoder = model.get_layer(name), model.get_layer(f"{name}_latent")

        def compress(x, layer=layer, encoder=encoder):
            return {"strings": layer.compress(encoder(x) * BOTTLENECK_SCALE)}

        def decompress(strings, layer=layer):
            return {"latent": layer.decompress(strings, [])}

        signatures[f"compress_{name}"] = tf.function(
            compress, input_signature=[tf.TensorSpec([None, FEATURES], tf.float32, name="x")]
        )
        signatures[f"decompress_{name}"] = tf.function(
            decompress, input_signature=[tf.TensorSpec([None], tf.string, name="strings")]
        )
    return signatures


def test_fit_save_load_same_inference_output(tmp_path):
    model = _model_with_every_layer()
    x = np.random.default_rng(0).normal(size=(16, FEATURES)).astype(np.float32)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2), loss="mse")
    before = {
        name: [w.numpy().copy() for w in model.get_layer(f"{name}_latent").weights]
        for name in LAYER_FACTORIES
    }
    history = model.fit(x, x, batch_size=8, epochs=1, verbose=0)  # Two steps.
    assert np.all(np.isfinite(history.history["loss"]))
    # Gradients reached every encoder through its quantizer / bottleneck, and the priors were trained.
    for name in LAYER_FACTORIES:
        after = model.get_layer(f"{name}_latent").weights
        assert all(not np.array_equal(a, w.numpy()) for a, w in zip(before[name], after)), name
    bottlenecks = [name for name in LAYER_FACTORIES if _is_bottleneck(model.get_layer(name))]
    for name in bottlenecks:
        model.get_layer(name).update_tables()

    # Save both formats before running the model again: a UniversalQuantizer's generator state advances
    # with every call, and loaded models must continue from the saved state.
    paths = {"tf": str(tmp_path / "saved_model"), "keras": str(tmp_path / "model.keras")}
    model.save(paths["tf"], save_format="tf", signatures=_codec_signatures(model, bottlenecks))
    model.save(paths["keras"], save_format="keras")
    expected = _probe(model)(x, training=False)
    latent = tf.constant(np.random.default_rng(1).normal(size=(4, 4)).astype(np.float32) * 3)
    for save_format, path in paths.items():
        loaded = tf.keras.models.load_model(path)
        outputs = _probe(loaded)(x, training=False)
        for name in LAYER_FACTORIES:
            layer, loaded_layer = model.get_layer(name), loaded.get_layer(name)
            assert type(loaded_layer) is type(layer), (save_format, name)
            assert loaded_layer.get_config() == layer.get_config(), (save_format, name)
        for key, value in expected.items():
            np.testing.assert_array_equal(outputs[key].numpy(), value.numpy(), err_msg=f"{save_format} {key}")
        for name in bottlenecks:  # The range-coding tables were saved too.
            np.testing.assert_array_equal(
                loaded.get_layer(name).compress(latent).numpy(),
                model.get_layer(name).compress(latent).numpy(),
                err_msg=f"{save_format} {name}",
            )

    # The explicit compress/decompress signatures, through plain tf.saved_model.load (tfc is imported).
    signatures = tf.saved_model.load(paths["tf"]).signatures
    for name in bottlenecks:
        layer, latent = model.get_layer(name), model.get_layer(f"{name}_latent")(x) * BOTTLENECK_SCALE
        strings = signatures[f"compress_{name}"](x=tf.constant(x))["strings"]
        np.testing.assert_array_equal(strings.numpy(), layer.compress(latent).numpy(), err_msg=name)
        decoded = signatures[f"decompress_{name}"](strings=strings)["latent"]
        np.testing.assert_array_equal(decoded.numpy(), layer(latent, training=False)[0].numpy(), err_msg=name)


@pytest.mark.parametrize("name", sorted(LAYER_FACTORIES))
def test_config_round_trip(name):
    layer = LAYER_FACTORIES[name](name)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    revived = tf.keras.layers.deserialize(tf.keras.layers.serialize(layer))
    assert type(revived) is type(layer)
    assert revived.get_config() == config


def test_config_holds_constructor_arguments():
    assert ScalarQuantizer(centers=(-1, 0, 2), gradient="soft_to_hard", temperature=3).get_config()[
        "centers"
    ] == [-1.0, 0.0, 2.0]
    config = UniversalQuantizer(step=0.5, common_randomness=False, seed=9).get_config()
    assert (config["levels"], config["step"], config["common_randomness"], config["seed"]) == (
        None,
        0.5,
        False,
        9,
    )
    config = EntropyBottleneck(coding_rank=2, num_filters=(2,), offset_heuristic=False).get_config()
    assert (config["coding_rank"], config["num_filters"], config["offset_heuristic"]) == (2, [2], False)
    assert UniversalBottleneck(num_noise_levels=7).get_config()["num_noise_levels"] == 7


@pytest.mark.parametrize(
    "binding, cls, attribute, value",
    [
        (
            "tfdplc.layers.ScalarQuantizer.centers = (-2.0, 0.0, 2.0)",
            ScalarQuantizer,
            "centers",
            (-2.0, 0.0, 2.0),
        ),
        ("tfdplc.layers.UniversalQuantizer.levels = 8", UniversalQuantizer, "levels", 8),
        ("tfdplc.layers.EntropyBottleneck.tail_mass = 0.01", EntropyBottleneck, "tail_mass", 0.01),
        (
            "tfdplc.layers.UniversalBottleneck.num_noise_levels = 5",
            UniversalBottleneck,
            "num_noise_levels",
            5,
        ),
    ],
)
def test_gin_configurable(binding, cls, attribute, value):
    try:
        gin.parse_config(binding)
        assert getattr(cls(), attribute) == value
    finally:
        gin.clear_config()


@gin.configurable("tfdplc_test_layer_holder")
def _layer_holder(layer=None):
    return layer


@pytest.mark.parametrize(
    "reference, cls",
    [
        ("@tfdplc.layers.ScalarQuantizer()", ScalarQuantizer),
        ("@tfdplc.layers.UniversalQuantizer()", UniversalQuantizer),
        ("@tfdplc.layers.EntropyBottleneck()", EntropyBottleneck),
        ("@tfdplc.layers.UniversalBottleneck()", UniversalBottleneck),
    ],
)
def test_gin_reference_builds_the_layer(reference, cls):
    try:
        gin.parse_config(
            f"tfdplc_test_layer_holder.layer = {reference}\ntfdplc.layers.UniversalQuantizer.levels = 4"
        )
        assert isinstance(_layer_holder(), cls)
    finally:
        gin.clear_config()
