"""Shift compression (Liu et al. 2022): the universal quantizer's two randomness modes (eq. 14, 16), the
end-to-end objective (eq. 15), the separate baseline (App. B.5), the two-branch decomposition (eq. 18),
the paired evaluation metrics, the gin configs and tools/evaluate.py on a shift workdir."""

import json
import math
import os
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

import tfdplc
from tfdplc import layers, metrics, nets
from tfdplc.nets.unet import restoration_unet
from tfdplc.objectives import Restoration, ShiftCompression, ShiftDecomposition, load_shift_codec
from tfdplc.objectives.shift import split_unpaired, unpack_pairs
from tfdplc.train import config as gin_config
from tfdplc.train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (28, 28, 1)


@pytest.fixture(autouse=True)
def _clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _adam(lr=1e-3):
    return tf.keras.optimizers.Adam(lr, beta_1=0.5, beta_2=0.999)


def _tiny_shift(d=3, levels=4, common_randomness=True, quantizer=None, seed=0, **kwargs):
    tf.keras.utils.set_random_seed(seed)
    if quantizer is None:
        quantizer = layers.UniversalQuantizer(
            levels=levels, common_randomness=common_randomness, seed=seed + 1
        )
    return ShiftCompression(
        encoder=nets.liu_encoder(d, width=4),
        decoder=nets.liu_decoder(d),
        critic=nets.liu_critic(width=4),
        quantizer=quantizer,
        optimizer=_adam(),
        critic_optimizer=_adam(),
        **kwargs,
    )


def _pairs(n, seed=0):
    """n (degraded, clean) pairs of distinct random images."""
    clean = tf.random.stateless_uniform((n, *SHAPE), seed=[seed, 1])
    degraded = tfdplc.data.downsample_upsample(clean, 4)
    return degraded, clean


def _snapshot(variables):
    return [v.numpy().copy() for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


# ------------------------------------------------------------------------------------------------------
# Universal quantization with and without common randomness (eq. 14, 16, App. B.2).


@pytest.mark.parametrize("levels", [2, 4, 8])
def test_shared_dither_reconstruction_is_exact(levels):
    quantizer = layers.UniversalQuantizer(levels=levels, common_randomness=True, seed=0)
    y = tf.random.stateless_uniform((512, 16), [1, 2], minval=-1.0, maxval=1.0)
    seed = tf.constant([3, 4], tf.int64)
    dither = quantizer.encoder_dither(tf.shape(y), seed)
    indices = quantizer.encode(y, seed)  # what the sender transmits
    # The receiver, from the indices and the shared seed alone, reproduces the sender's Q(y + u) - u exactly.
    np.testing.assert_array_equal(quantizer.decode(indices, seed), quantizer.codewords(indices) - dither)
    np.testing.assert_array_equal(quantizer(y, seed=seed), quantizer.decode(indices, seed))
    # Its error is the quantization error of y + u: never more than half a step.
    step = 2.0 / (levels - 1)
    assert float(tf.reduce_max(tf.abs(quantizer.decode(indices, seed) - y))) <= step / 2 + 1e-6


def test_independent_dither_reconstruction_is_not_exact():
    levels, n = 4, 64 * 64
    step = 2.0 / (levels - 1)
    shared = layers.UniversalQuantizer(levels=levels, common_randomness=True, seed=0)
    private = layers.UniversalQuantizer(levels=levels, common_randomness=False, seed=0)
    # Interior values, away from the clipped ends, so both errors are pure dither errors.
    y = tf.random.stateless_uniform((n, 1), [5, 6], minval=-0.5, maxval=0.5)
    seed = tf.constant([7, 8], tf.int64)
    u1 = private.encoder_dither(tf.shape(y), seed)
    u2 = private.decoder_dither(tf.shape(y), seed)
    indices = private.encode(y, seed)
    received = private.decode(indices, seed)
    sender_side = private.codewords(indices) - u1
    assert not np.allclose(received, sender_side)
    np.testing.assert_allclose(received - sender_side, u1 - u2, atol=1e-6)
    # U2 is a genuinely independent draw: uniform on the same interval, uncorrelated with U1.
    assert float(tf.reduce_min(u2)) >= -step / 2 and float(tf.reduce_max(u2)) <= step / 2
    assert abs(np.corrcoef(u1.numpy().ravel(), u2.numpy().ravel())[0, 1]) < 0.05
    # Same encoder draw U1: the shared dither leaves the error of y + U1 (variance step^2 / 12 whatever y
    # is, Gray & Stockham 1993); the independent one adds U1 - U2 on top (variance step^2 / 6).
    shared_error = (shared.decode(shared.encode(y, seed), seed) - y).numpy()
    private_error = (received - y).numpy()
    assert np.var(shared_error) == pytest.approx(step**2 / 12, rel=0.08)
    assert np.var(private_error - shared_error) == pytest.approx(step**2 / 6, rel=0.08)
    assert np.mean(private_error**2) > 1.5 * np.mean(shared_error**2)
    assert np.abs(private_error).max() > step / 2  # beyond what a shared dither can ever give


def test_no_common_randomness_switch_in_gin_draws_an_independent_dither():
    for flag, name in ((True, "shift-cr"), (False, "shift-ncr")):
        gin.clear_config()
        gin_config.parse_gin([f"{ROOT}/gin/shift_sr_mnist5k.gin"], [f"COMMON_RANDOMNESS = {flag}"])
        model = trainer.build_objective()
        assert model.name == name
        seed, shape = tf.constant([1, 2], tf.int64), (64, model.latent_dim)
        u1 = model.quantizer.encoder_dither(shape, seed)
        u2 = model.quantizer.decoder_dither(shape, seed)
        assert np.array_equal(u1, u2) == flag


@pytest.mark.parametrize("d, levels", [(2, 4), (5, 4), (15, 4), (4, 8), (38, 8), (3, 2)])
def test_fixed_rate_is_d_log2_levels(d, levels):
    model = _tiny_shift(d=d, levels=levels)
    assert model.rate_bits == pytest.approx(d * math.log2(levels))
    indices = model.compress(_pairs(8)[0])
    assert indices.dtype == tf.int32 and indices.shape == (8, d)
    assert int(tf.reduce_min(indices)) >= 0 and int(tf.reduce_max(indices)) < levels


# ------------------------------------------------------------------------------------------------------
# The end-to-end objective (eq. 15).


def test_split_unpaired_never_pairs_an_input_with_its_own_clean_image():
    n_critic, b = 3, 4
    index = tf.reshape(tf.range(2 * n_critic * b, dtype=tf.float32), (-1, 1, 1, 1))
    degraded, clean = index * tf.ones((1, 2, 2, 1)), 1000.0 + index * tf.ones((1, 2, 2, 1))
    sources, targets = split_unpaired(degraded, clean, n_critic)
    assert sources.shape == targets.shape == (n_critic, b, 2, 2, 1)
    source_ids = set(sources[..., 0, 0, 0].numpy().ravel().astype(int))
    target_ids = set((targets[..., 0, 0, 0].numpy().ravel() - 1000).astype(int))
    assert not source_ids & target_ids
    assert source_ids | target_ids == set(range(2 * n_critic * b))
    with pytest.raises(ValueError, match="2 \\* n_critic \\* b"):
        split_unpaired(degraded[:5], clean[:5], 1)
    with pytest.raises(ValueError, match="degradation"):
        unpack_pairs(degraded)


def test_critic_never_sees_the_clean_version_of_an_encoded_image():
    seen = []

    class RecordingCritic(tf.keras.Model):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def call(self, images, training=False):
            seen.append(np.array(images))
            return self.inner(images, training=training)

    model = _tiny_shift()
    model.critic = RecordingCritic(nets.liu_critic(width=4))
    model.optimizer_critic = _adam()
    model.compile(run_eagerly=True)
    degraded, clean = _pairs(16, seed=3)
    model.train_on_batch(degraded, clean)
    shown = np.concatenate(seen).reshape(-1, int(np.prod(SHAPE)))
    for image in clean[:8].numpy().reshape(8, -1):  # the clean versions of the encoder's inputs
        assert not np.any(np.all(np.isclose(shown, image, atol=1e-7), axis=1))
    for image in clean[8:].numpy().reshape(8, -1):  # the critic's real samples: other digits
        assert np.any(np.all(shown == image, axis=1))


def test_train_step_updates_f_g_and_the_critic():
    # Graph mode (the trainer's path) with two critic chunks (the graph loop) of 2 x 4 pairs each.
    model = _tiny_shift(n_critic=2)
    degraded, clean = _pairs(16)
    model(degraded[:1])
    model.compile()
    variables = [model.encoder.trainable_variables, model.decoder.trainable_variables]
    # The critic's output bias has no gradient in a Wasserstein loss (it cancels); its kernels all must move.
    variables.append([v for v in model.critic.trainable_variables if "kernel" in v.name])
    before = [_snapshot(v) for v in variables]
    logs = model.train_on_batch(degraded, clean, return_dict=True)
    assert all(np.isfinite(value) for value in logs.values())
    assert {"loss", "mse", "generator_loss", "critic_loss", "wasserstein", "gradient_penalty"} <= set(logs)
    assert "bits" not in logs  # fixed rate: nothing to estimate
    for snapshot, group in zip(before, variables):
        assert all(_changed(snapshot, group))
    assert int(model.optimizer_critic.iterations) == 2 and int(model.optimizer_ae.iterations) == 1


def test_training_draws_come_from_the_objectives_generator_not_the_global_seed():
    """Exact resume: the critic's penalty weights and every other draw follow the checkpointed generator."""

    def trained(global_seed, generator_state=None):
        model = _tiny_shift(n_critic=2)
        degraded, clean = _pairs(16)
        model(degraded[:1])
        model.compile(run_eagerly=True)  # eager: no tracing, fast tests
        if generator_state is not None:
            model.random_generator.reset(generator_state)
        tf.random.set_seed(global_seed)  # what a restarted process changes
        model.train_on_batch(degraded, clean)
        return [v.numpy() for v in model.critic.trainable_variables + model.encoder.trainable_variables]

    first, other_global = trained(1), trained(2)
    for a, b in zip(first, other_global):
        np.testing.assert_array_equal(a, b)
    state = tf.random.Generator.from_seed(99).state  # another point of the objective's own stream
    other_stream = trained(1, state)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other_stream))


def test_test_step_reports_mse_against_input_and_ground_truth():
    model = _tiny_shift(common_randomness=False)
    degraded, clean = _pairs(8)
    model(degraded[:1])
    model.compile(run_eagerly=True)  # eager: no tracing, fast tests
    logs = model.evaluate(degraded, clean, batch_size=8, return_dict=True, verbose=0)
    outputs = model.reconstruct(degraded)
    assert logs["mse"] == pytest.approx(float(tf.reduce_mean(tf.square(degraded - outputs))), rel=1e-5)
    assert logs["mse_gt"] == pytest.approx(float(tf.reduce_mean(tf.square(clean - outputs))), rel=1e-5)


@pytest.mark.parametrize("common_randomness", [True, False])
def test_codec_round_trip_and_seeded_evaluation(common_randomness):
    model = _tiny_shift(common_randomness=common_randomness)
    degraded, _ = _pairs(8)
    seed = tf.constant([4, 2], tf.int64)
    received = model.decompress(model.compress(degraded, seed=seed), seed=seed)
    np.testing.assert_array_equal(received, model.reconstruct(degraded, seed=seed))
    np.testing.assert_array_equal(
        model.reconstruct(degraded, seed=seed), model.reconstruct(degraded, seed=seed)
    )
    other = model.reconstruct(degraded, seed=tf.constant([4, 3], tf.int64))
    assert not np.array_equal(other, received)


@pytest.mark.parametrize(
    "bottleneck, name", [(layers.UniversalBottleneck, "shift-vr"), (layers.EntropyBottleneck, "shift-vr-ncr")]
)
def test_variable_rate_trains_the_prior_and_writes_real_bitstreams(bottleneck, name):
    model = _tiny_shift(d=4, quantizer=bottleneck(), rate_weight=1e-2, code_scale=3.0)
    assert model.name == name and model.rate_bits is None
    degraded, clean = _pairs(16)
    model(degraded[:1])
    model.compile(run_eagerly=True)  # eager: no tracing, fast tests
    prior = _snapshot(model.quantizer.trainable_variables)
    logs = model.train_on_batch(degraded, clean, return_dict=True)
    assert logs["bits"] > 0
    assert logs["loss"] == pytest.approx(
        logs["mse"] + 1e-3 * logs["generator_loss"] + 1e-2 * logs["bits"], rel=1e-4
    )
    assert any(_changed(prior, model.quantizer.trainable_variables))
    model.prepare_for_coding()
    dataset = tf.data.Dataset.from_tensor_slices((degraded, clean)).batch(8)
    codec = metrics.codec_metrics(model, dataset)
    assert codec["bitstream_max_abs_error"] == 0.0
    strings = model.compress(degraded)
    assert codec["real_bits"] == pytest.approx(8 * np.mean([len(s) for s in strings.numpy()]))


def test_variable_rate_prior_has_its_own_optimizer():
    model = _tiny_shift(
        d=4,
        quantizer=layers.UniversalBottleneck(init_scale=1.0),
        rate_weight=1e-2,
        code_scale=3.0,
        prior_optimizer=_adam(1e-2),
    )
    degraded, clean = _pairs(16)
    model(degraded[:1])
    model.compile(run_eagerly=True)  # eager: no tracing, fast tests
    assert set(model.optimizers()) == {"autoencoder", "critic", "prior"}
    prior = model.quantizer.trainable_variables
    assert model.prior_variables() == prior
    assert not {id(v) for v in prior} & {id(v) for v in model.generator_variables()}
    before = _snapshot(prior)
    model.train_on_batch(degraded, clean)
    assert int(model.optimizer_prior.iterations) == 1
    # Adam's first step moves a parameter by lr * |g| / (|g| + 1e-7) (m / sqrt(v) = sign(g) after bias
    # correction, Keras' epsilon 1e-7): at most the learning rate, and within 1% of it for |g| > 1e-5 (the
    # rate weight 1e-2 makes the prior's gradients small, hence the 5% on the median). 1e-2 from the prior's
    # own optimizer, where the autoencoder's (1e-3) would give 1e-3. float32 rounding of parameters of size
    # ~1 adds ~1e-7, negligible.
    steps = np.concatenate([np.abs(v.numpy() - b).ravel() for b, v in zip(before, prior)])
    moved = steps[steps > 0]
    assert moved.size > 0.9 * steps.size
    assert moved.max() <= 1e-2 * (1 + 1e-4)
    np.testing.assert_allclose(np.median(moved), 1e-2, rtol=0.05)
    with pytest.raises(ValueError, match="prior_optimizer applies to the variable-rate"):
        _tiny_shift(prior_optimizer=_adam())


def _trained_variable_rate_bits(rate_weight, steps=60):
    """Estimated bits per image of a tiny VR model trained `steps` steps at `rate_weight` (seeded).

    The clean images are one random binary pattern times a per-image brightness in [0, 1], so the code
    must carry one number to bring the MSE to X below its variance.
    """
    tf.keras.utils.set_random_seed(0)
    model = ShiftCompression(
        encoder=nets.liu_encoder(4, width=4),
        decoder=nets.liu_decoder(4),
        critic=nets.liu_critic(width=4),
        quantizer=layers.UniversalBottleneck(init_scale=1.0),
        optimizer=_adam(5e-3),
        critic_optimizer=_adam(5e-3),
        rate_weight=rate_weight,
        code_scale=3.0,
        prior_optimizer=_adam(1e-2),
    )
    levels = tf.random.stateless_uniform((64, 1, 1, 1), seed=[0, 1])
    pattern = tf.cast(tf.random.stateless_uniform((1, *SHAPE), seed=[0, 2]) > 0.5, tf.float32)
    clean = levels * pattern
    degraded = tfdplc.data.downsample_upsample(clean, 4)
    model(degraded[:1])
    model.compile()
    for i in range(steps):
        start = 16 * (i % 4)
        model.train_on_batch(degraded[start : start + 16], clean[start : start + 16])
    code = model.encoder(degraded, training=False) * model.code_scale
    return float(tf.reduce_mean(model.quantizer(code, training=False)[1]))


def test_variable_rate_larger_weight_gives_fewer_bits():
    # Measured with this seed: about 7.7 bits at 1e-4, 3.0 at 1 (with the prior on the shared optimizer and
    # tfc's init_scale 10, as before issue 27: 14.6 and 14.1).
    low, high = _trained_variable_rate_bits(1e-4), _trained_variable_rate_bits(1.0)
    assert high < 0.6 * low


def test_shift_compression_rejects_bad_configurations():
    with pytest.raises(ValueError, match="unbounded"):
        _tiny_shift(quantizer=layers.UniversalQuantizer(step=1.0))
    with pytest.raises(TypeError, match="quantizer must be"):
        _tiny_shift(quantizer=layers.ScalarQuantizer())
    with pytest.raises(ValueError, match="variable-rate bottlenecks only"):
        _tiny_shift(rate_weight=1e-3)
    with pytest.raises(ValueError, match="n_critic"):
        _tiny_shift(n_critic=0)
    with pytest.raises(ValueError, match="decoder takes"):
        ShiftCompression(
            encoder=nets.liu_encoder(3, width=4),
            decoder=nets.liu_decoder(4),
            critic=nets.liu_critic(width=4),
            quantizer=layers.UniversalQuantizer(levels=4),
            optimizer=_adam(),
            critic_optimizer=_adam(),
        )
    model = _tiny_shift()
    model.compile(run_eagerly=True)  # eager: no tracing, fast tests
    with pytest.raises(ValueError, match="degraded, clean"):
        model.train_on_batch(_pairs(8)[0])


# ------------------------------------------------------------------------------------------------------
# The separate baseline (App. B.5).


def _saved_restoration(path, seed=0):
    """A small R with BatchNorm statistics off their initial values, saved as a Restoration run would."""
    tf.keras.utils.set_random_seed(seed)
    images = tf.keras.Input(SHAPE)
    x = tf.keras.layers.Conv2D(4, 3, padding="same")(images)
    x = tf.keras.layers.BatchNormalization()(x)
    outputs = tf.keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(x)
    network = tf.keras.Model(images, outputs)
    bn = network.layers[2]
    bn.moving_mean.assign(tf.random.normal(bn.moving_mean.shape, stddev=0.1))
    bn.moving_variance.assign(tf.random.uniform(bn.moving_variance.shape, 0.5, 1.5))
    network.save(path)
    return path


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_restoration_unet_starts_as_the_identity_and_stays_in_range(shape):
    network = restoration_unet(shape, width=4)
    images = tf.random.stateless_uniform((3, *shape), [2, 2])
    np.testing.assert_array_equal(network(images), images)  # zero-initialised residual
    noisy = images + tf.random.stateless_normal(tf.shape(images), [3, 3])  # a degraded input beyond [0, 1]
    outputs = network(noisy).numpy()
    assert outputs.min() >= 0.0 and outputs.max() <= 1.0
    with pytest.raises(ValueError, match="divisible by 4"):
        restoration_unet((30, 30, 1))


def test_restoration_objective_trains_and_saves_its_network(tmp_path):
    tf.keras.utils.set_random_seed(0)
    model = Restoration(
        network=restoration_unet(SHAPE, width=4),
        critic=nets.liu_critic(width=4),
        optimizer=_adam(),
        critic_optimizer=_adam(),
    )
    degraded, clean = _pairs(16)
    model(degraded[:1])
    model.compile(run_eagerly=True)  # eager: no tracing, fast tests
    before = _snapshot(model.network.trainable_variables)
    # Two steps: the zero-initialised output layer passes no gradient to the others in the first one.
    model.train_on_batch(degraded, clean)
    logs = model.train_on_batch(degraded, clean, return_dict=True)
    assert np.isfinite(logs["loss"]) and model.rate_bits is None
    assert all(_changed(before, model.network.trainable_variables))
    model.save_artifacts(str(tmp_path))
    loaded = tf.keras.models.load_model(tmp_path / "restoration.keras", compile=False)
    np.testing.assert_allclose(loaded(degraded), model.reconstruct(degraded), atol=1e-6)


def test_baseline_compresses_restored_images_with_a_frozen_restoration_network(tmp_path):
    path = _saved_restoration(str(tmp_path / "restoration.keras"))
    model = _tiny_shift(restoration_path=path)
    assert model.name == "baseline-cr"
    degraded, clean = _pairs(16)
    model(degraded[:1])
    model.compile(run_eagerly=True)  # eager: no tracing, fast tests
    frozen = model.restoration_network()
    before = _snapshot(frozen.variables)  # weights and BatchNorm statistics
    model.train_on_batch(degraded, clean)
    model.train_on_batch(degraded, clean)
    assert not any(_changed(before, frozen.variables))
    # The code is of R(X): compress(X) equals encoding R(X) with the same seed.
    seed = tf.constant([1, 1], tf.int64)
    restored = frozen(degraded, training=False)
    expected = model.quantizer.encode(model.encoder(restored, training=False), seed)
    np.testing.assert_array_equal(model.compress(degraded, seed=seed), expected)
    with pytest.raises(FileNotFoundError, match="restoration network"):
        _tiny_shift(restoration_path=str(tmp_path / "missing.keras"))(degraded[:1])


# ------------------------------------------------------------------------------------------------------
# The two-branch decomposition (Section 3.2, eq. 18).


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A tiny end-to-end run without common randomness, trained a few steps and saved as the trainer would."""
    workdir = tmp_path_factory.mktemp("shift_ncr")
    model = _tiny_shift(common_randomness=False, seed=5)
    degraded, clean = _pairs(16, seed=9)
    model(degraded[:1])
    model.compile(run_eagerly=True)  # eager: no tracing, fast tests
    for _ in range(3):
        model.train_on_batch(degraded, clean)
    model.save_artifacts(str(workdir))
    return str(workdir), model


def _decomposition(workdir, mode="own_targets", d=3, **kwargs):
    tf.keras.utils.set_random_seed(1)
    return ShiftDecomposition(
        source_workdir=workdir,
        decoder1=nets.liu_two_branch_decoder(d, name="g1"),
        decoder2=nets.liu_two_branch_decoder(d, name="g2"),
        mode=mode,
        seed=3,
        **{"optimizer": _adam(), **kwargs},
    )


def test_decomposition_joint_trains_only_the_two_decoders(source_run):
    model = _decomposition(source_run[0], mode="joint")
    degraded, clean = _pairs(8, seed=2)
    model(degraded[:1])
    model.compile(run_eagerly=True)  # eager: no tracing, fast tests
    frozen = _snapshot(model.encoder.variables + model.decoder.variables)  # incl. g's BatchNorm statistics
    branches = model.decoder1.trainable_variables + model.decoder2.trainable_variables
    before = _snapshot(branches)
    logs = model.train_on_batch(degraded, clean, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["term_a"] + logs["term_b"] + logs["term_c"], rel=1e-5)
    assert not any(_changed(frozen, model.encoder.variables + model.decoder.variables))
    assert all(_changed(before, branches))
    assert model.rate_bits == pytest.approx(3 * 2.0)


def test_decomposition_terms_add_up_and_match_the_end_to_end_system(source_run):
    workdir, source = source_run
    model = _decomposition(workdir, mode="joint")
    degraded, _ = _pairs(8, seed=4)
    seed = tf.constant([6, 0], tf.int64)
    terms = model.decomposition_terms(degraded, seed=seed)
    np.testing.assert_allclose(
        terms["decomposed_loss"], terms["term_a"] + terms["term_b"] + terms["term_c"], rtol=1e-6
    )
    # Y~ is the end-to-end system's output for the same draw (the first derived seed).
    y_tilde = source.reconstruct(degraded, seed=tf.random.experimental.stateless_fold_in(seed, 0))
    expected = tf.reduce_mean(tf.square(degraded - y_tilde), axis=[1, 2, 3])
    np.testing.assert_allclose(terms["end_to_end_loss"], expected, rtol=1e-5, atol=1e-7)


def _perturb(network, seed, scale=0.3):
    """Moves every trainable weight by scale * N(0, 1): fresh branches all output ~0.5 and would agree."""
    for i, variable in enumerate(network.trainable_variables):
        noise = tf.random.stateless_normal(variable.shape, seed=[seed, i])
        variable.assign(variable + scale * noise)


def _branch_codes(source, images, seed, branch_input):
    """What the branches should decode, computed from the source run's own f and quantizer."""
    encoded = source.encoder(images, training=False)
    if branch_input == "code":  # the transmitted index's codewords, no decoder dither
        return source.quantizer.codewords(source.quantizer.encode(encoded, seed))
    return source.quantizer.decode(source.quantizer.encode(encoded, seed), seed)


@pytest.mark.parametrize("branch_input", ["code", "decoder_input"])
def test_each_decomposition_term_against_a_direct_computation(source_run, branch_input):
    workdir, source = source_run
    model = _decomposition(workdir, branch_input=branch_input)
    degraded, _ = _pairs(8, seed=4)
    model(degraded[:1])
    _perturb(model.decoder1, 1)
    _perturb(model.decoder2, 2)
    seed = tf.constant([6, 0], tf.int64)
    first = tf.random.experimental.stateless_fold_in(seed, 0)
    terms = {k: v.numpy() for k, v in model.decomposition_terms(degraded, seed=seed).items()}
    codes = _branch_codes(source, degraded, first, branch_input)
    x = degraded.numpy()
    y_tilde = source.reconstruct(degraded, seed=first).numpy()
    y1 = model.decoder1(codes, training=False).numpy()
    y2 = model.decoder2(codes, training=False).numpy()
    # The two branches and the two targets all differ, so a swapped output or target changes a term.
    for u, v in ((x, y_tilde), (y1, y2), (x, y1), (y_tilde, y2)):
        assert np.mean((u - v) ** 2) > 1e-4

    def mse(u, v):
        return np.mean((u - v) ** 2, axis=(1, 2, 3))

    expected = {
        "term_a": mse(x, y1),
        "term_b": mse(y_tilde, y2),
        "term_c": mse(y1, y2),
        "end_to_end_loss": mse(x, y_tilde),
    }
    expected["decomposed_loss"] = expected["term_a"] + expected["term_b"] + expected["term_c"]
    for key, value in expected.items():
        np.testing.assert_allclose(terms[key], value, rtol=1e-5, atol=1e-7, err_msg=key)


def test_decomposition_branches_never_see_the_decoder_dither(source_run):
    """With branch_input="code", Y^1 and Y^2 are functions of the transmitted index alone (rate R)."""
    workdir, source = source_run
    model = _decomposition(workdir)
    degraded, _ = _pairs(4, seed=4)
    seed = tf.constant([6, 0], tf.int64)
    first = tf.random.experimental.stateless_fold_in(seed, 0)
    indices = source.quantizer.encode(source.encoder(degraded, training=False), first)
    outputs = model.branches(degraded, seed)
    np.testing.assert_allclose(
        outputs["y2"], model.decoder2(source.quantizer.codewords(indices), training=False), atol=1e-6
    )
    # The end-to-end output Y~ does use the decoder's own (independent) dither.
    dithered = source.quantizer.decode(indices, first)
    assert not np.allclose(dithered, source.quantizer.codewords(indices))
    np.testing.assert_allclose(outputs["y_tilde"], source.decoder(dithered, training=False), atol=1e-6)


@pytest.mark.parametrize(
    "mode, trained_on",
    [
        ("own_targets", {"g1": ("term_a",), "g2": ("term_b",)}),  # the paper: each branch on its target
        ("joint", {"g1": ("term_a", "term_c"), "g2": ("term_b", "term_c")}),  # eq. 18 over both
    ],
)
def test_decomposition_step_follows_each_branch_loss(source_run, mode, trained_on):
    """One SGD step moves g1 and g2 by -lr times the gradient of their own terms, computed here directly."""
    workdir, source = source_run
    lr = 0.5
    model = _decomposition(workdir, mode=mode, optimizer=tf.keras.optimizers.SGD(lr))
    degraded, clean = _pairs(8, seed=2)
    model(degraded[:1])
    _perturb(model.decoder1, 1)
    _perturb(model.decoder2, 2)
    model.compile(run_eagerly=True)
    # The seed train_step draws first: the objective's generator was created from seed=3.
    seed = tf.random.Generator.from_seed(3).make_seeds(1)[:, 0]
    first = tf.random.experimental.stateless_fold_in(seed, 0)
    codes = _branch_codes(source, degraded, first, "code")
    y_tilde = source.reconstruct(degraded, seed=first)
    networks = {"g1": model.decoder1, "g2": model.decoder2}
    expected = {}
    with tf.GradientTape(persistent=True) as tape:
        y = {name: net(codes, training=True) for name, net in networks.items()}
        term = {
            "term_a": tf.reduce_mean(tf.square(degraded - y["g1"])),
            "term_b": tf.reduce_mean(tf.square(y_tilde - y["g2"])),
            "term_c": tf.reduce_mean(tf.square(y["g1"] - y["g2"])),
        }
        loss = {name: tf.add_n([term[k] for k in keys]) for name, keys in trained_on.items()}
    for name, net in networks.items():
        grads = tape.gradient(loss[name], net.trainable_variables)
        expected[name] = [(v.numpy(), -lr * g.numpy()) for v, g in zip(net.trainable_variables, grads)]
    model.train_on_batch(degraded, clean)
    # Float32 error analysis: a correct step differs from this direct computation only by summation order
    # (Eigen's blocking depends on the CPU's cache sizes and thread count, oneDNN's on its ISA). Each layer
    # with weights adds one reduction of at most n = batch x pixels terms to the forward pass and one to the
    # backward pass, each off by at most n * eps relative (Higham's gamma_n), so the step is off by at most
    # about 2 * layers * n * eps of its norm (1.4% here; the worst seen, Eigen on 2 threads, was 0.13%),
    # plus half an ulp of each updated weight. Each branch trained on another set of terms (6 mutants
    # tried) moved every weight tensor 75% or more of its step off.
    n = int(np.prod(degraded.shape))
    for name, net in networks.items():
        layers = sum(1 for layer in net.layers if layer.trainable_weights)
        rel_tol = 2 * layers * n * np.finfo(np.float32).eps
        for (before, step), got in zip(expected[name], net.trainable_variables):
            want = before + step
            error = np.linalg.norm(got.numpy() - want)
            allowed = rel_tol * np.linalg.norm(step) + np.linalg.norm(np.spacing(want.astype(np.float32)))
            assert error <= allowed, f"{mode} {name} {got.name}: |error| {error:.3g} > {allowed:.3g}"


def test_decomposition_separate_trains_fresh_encoders(source_run):
    model = _decomposition(source_run[0], mode="separate")
    degraded, clean = _pairs(8, seed=2)
    model(degraded[:1])
    model.compile(run_eagerly=True)  # eager: no tracing, fast tests
    assert not np.array_equal(model.encoder1.variables[0], model.encoder.variables[0])  # fresh weights
    frozen = _snapshot(model.encoder.variables + model.decoder.variables)
    trained = model.trainable_branch_variables()
    assert len(trained) == 2 * len(model.encoder.variables) + len(
        model.decoder1.trainable_variables + model.decoder2.trainable_variables
    )
    before = _snapshot(trained)
    logs = model.train_on_batch(degraded, clean, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["term_a"] + logs["term_b"], rel=1e-5)  # (c) only measured
    assert not any(_changed(frozen, model.encoder.variables + model.decoder.variables))
    assert all(_changed(before, trained))


def test_decomposition_errors(source_run, tmp_path):
    with pytest.raises(ValueError, match="mode"):
        _decomposition(source_run[0], mode="both")
    with pytest.raises(ValueError, match="branch_input"):
        _decomposition(source_run[0], branch_input="dither")
    for mode in ("own_targets", "joint"):
        with pytest.raises(ValueError, match=f"'{mode}' mode"):
            _decomposition(source_run[0], mode=mode, encoder1=nets.liu_encoder(3, width=4))
    with pytest.raises(ValueError, match="d = 3"):
        _decomposition(source_run[0], d=4).load_source()
    with pytest.raises(FileNotFoundError, match="shift_codec.json"):
        load_shift_codec(str(tmp_path))
    variable = _tiny_shift(d=3, quantizer=layers.UniversalBottleneck(), code_scale=2.0)
    variable(_pairs(2)[0])
    variable.save_artifacts(str(tmp_path))
    with pytest.raises(ValueError, match="fixed-rate"):
        load_shift_codec(str(tmp_path))


# ------------------------------------------------------------------------------------------------------
# Paired evaluation metrics.


class _NoisyIdentity:
    """A stand-in objective: reconstruct(x, seed) = x + 0.1 * N(0, 1) drawn from the seed."""

    def reconstruct(self, images, seed=None):
        return images + 0.1 * tf.random.stateless_normal(tf.shape(images), seed=seed)


def test_paired_metrics_are_against_input_and_ground_truth_and_seeded():
    degraded, clean = _pairs(12)
    dataset = tf.data.Dataset.from_tensor_slices((degraded, clean)).batch(5)
    model = _NoisyIdentity()
    first = metrics.paired_reconstruction_metrics(model, dataset, seed=3)
    assert first == metrics.paired_reconstruction_metrics(model, dataset, seed=3)
    assert first["mse"] != metrics.paired_reconstruction_metrics(model, dataset, seed=4)["mse"]
    assert first["mse"] == pytest.approx(0.01, rel=0.1)  # the added noise only
    outputs = np.concatenate([o.numpy() for *_, o in metrics.paired_reconstructions(model, dataset, 3)])
    assert first["mse_gt"] == pytest.approx(float(np.mean((outputs - clean.numpy()) ** 2)), rel=1e-5)
    assert first["num_images"] == 12
    with pytest.raises(ValueError, match="pairs"):
        metrics.paired_reconstruction_metrics(model, tf.data.Dataset.from_tensor_slices(clean).batch(5))


def test_decomposition_metrics_average_the_per_image_terms(source_run):
    model = _decomposition(source_run[0])
    degraded, clean = _pairs(10, seed=8)
    dataset = tf.data.Dataset.from_tensor_slices((degraded, clean)).batch(4)
    result = metrics.decomposition_metrics(model, dataset, seed=1)
    per_batch = [
        model.decomposition_terms(d, seed=metrics.batch_seed(1, i))["term_a"].numpy()
        for i, (d, _) in enumerate(dataset)
    ]
    assert result["term_a"] == pytest.approx(float(np.concatenate(per_batch).mean()), rel=1e-6)
    assert set(result) == {"term_a", "term_b", "term_c", "decomposed_loss", "end_to_end_loss"}


# ------------------------------------------------------------------------------------------------------
# Gin configs and tools/evaluate.py.

SHIFT_CONFIGS = sorted(p for p in os.listdir(f"{ROOT}/gin") if p.startswith("shift_") and p.endswith(".gin"))


@pytest.mark.parametrize("path", SHIFT_CONFIGS)
def test_every_shift_config_builds_and_runs_on_one_batch(path, tmp_path):
    text = open(f"{ROOT}/gin/{path}").read()
    denoise_svhn = "svhn" in path
    shape = (32, 32, 3) if denoise_svhn else SHAPE
    bindings = []
    if "RESTORATION =" in text:  # stand in the restoration stage's file
        network = restoration_unet(shape, width=2)
        network.save(str(tmp_path / "restoration.keras"))
        bindings.append(f"RESTORATION = '{tmp_path / 'restoration.keras'}'")
    if "SOURCE =" in text:  # stand in a finished end-to-end run without common randomness
        gin_config.parse_gin([f"{ROOT}/gin/{path}"])
        k = gin.query_parameter("%K")
        gin.clear_config()
        task = "denoising" if denoise_svhn else "super_resolution"
        source = ShiftCompression(
            encoder=nets.liu_encoder(k, task, width=2),
            decoder=nets.liu_decoder(k, task),
            critic=nets.liu_critic(task, width=2),
            quantizer=layers.UniversalQuantizer(
                levels=8 if "denoise" in path else 4, common_randomness=False
            ),
            optimizer=_adam(),
            critic_optimizer=_adam(),
        )
        source(tf.zeros((1, *shape)))
        source.save_artifacts(str(tmp_path))
        bindings.append(f"SOURCE = '{tmp_path}'")
    gin_config.parse_gin([f"{ROOT}/gin/{path}"], bindings)
    model = trainer.build_objective()
    assert model.paired_data and model.optimizers()
    outputs = model.reconstruct(tf.random.stateless_uniform((2, *shape), [0, 0]))
    assert outputs.shape == (2, *shape)
    if "LEVELS" in text:
        k, levels = gin.query_parameter("%K"), gin.query_parameter("%LEVELS")
        assert model.rate_bits == pytest.approx(k * math.log2(levels))


def test_evaluate_tool_on_a_shift_workdir(tmp_path, mnist5k_dir):
    workdir = str(tmp_path / "ncr")
    bindings = [
        "K = 2",
        "COMMON_RANDOMNESS = False",
        "liu_encoder.width = 4",
        "liu_critic.width = 4",
    ]
    gin_config.parse_gin([f"{ROOT}/gin/shift_sr_mnist5k.gin"], bindings)
    # A workdir as the trainer leaves it (config.gin + a checkpoint), without spending time on training:
    # the trainer's own path is covered by tests/test_train.py, the objective's steps above.
    model = trainer.build_objective()
    model(tf.zeros((1, *SHAPE)))
    os.makedirs(workdir)
    with open(os.path.join(workdir, trainer.CONFIG_FILE), "w") as f:
        f.write(gin.config_str())
    tf.train.Checkpoint(model=model).save(os.path.join(workdir, "checkpoints", "ckpt"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    args = [f"--workdir={workdir}", f"--data_dir={mnist5k_dir}", "--features=none", "--num_decodes=2"]
    result = subprocess.run(
        [sys.executable, "tools/evaluate.py", *args, "--batch_size=250"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with open(os.path.join(workdir, "metrics.json")) as f:
        (record,) = json.load(f)
    assert record["method"] == "shift-ncr"
    assert record["rate_bits"] == 4.0 and record["bpp"] == pytest.approx(4.0 / 784)
    assert record["num_images"] == 500 and record["eval_seed"] == 0
    assert record["bitstream_max_abs_error"] == 0.0
    assert 0 < record["mse"] < 1 and 0 < record["mse_gt"] < 1 and record["mse"] != record["mse_gt"]
    decodes = np.load(record["decodes_file"])["decodes"]
    assert decodes.shape == (2, *SHAPE) and not np.array_equal(decodes[0], decodes[1])
