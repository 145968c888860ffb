"""tfdplc.deployed: DPLC's distribution constraint in the codec's mode, against independent computations."""

import numpy as np
import pytest
import tensorflow as tf

from tfdplc import deployed, losses, nets
from tfdplc.codec.interface import noise_layer_draw
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import DPLC

M = 8


@pytest.fixture(autouse=True)
def _no_gin_bindings():
    """DPLC is gin-configurable: bindings another test left in this worker (a failed run) must not reach it."""
    import gin

    gin.clear_config()
    yield
    gin.clear_config()


def _off_batch_statistics(network, rng):
    """Moving statistics far from any batch's: inference and training mode then give different outputs."""
    for layer in network.submodules:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0.0, 0.5, shape).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, shape).astype(np.float32))


def _tiny_dplc(k=2, seed=0):
    tf.keras.utils.set_random_seed(seed)
    generator = nets.generator_G(32, m=M, width=4, channels=1)
    for layer in generator.layers:  # N(0, 0.02) weights give a near-constant image; spread it
        if hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * 20.0)
    model = DPLC(
        encoder=nets.encoder_E(32, k, width=4, channels=1),
        mapping=nets.mapping_B(32, k, m=M, n_blocks=1, width=8, noise=True, seed=seed + 1),
        quantizer=ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard"),
        optimizer=tf.keras.optimizers.Adam(1e-3),
        lambda_mmd=1.0,
        generator=generator,
        seed=seed + 2,
    )
    model(tf.zeros((1, 32, 32, 1)))
    rng = np.random.default_rng(seed)
    _off_batch_statistics(model.encoder, rng)
    _off_batch_statistics(model.mapping, rng)
    return model


def _images(n, seed=3):
    return tf.random.stateless_uniform((n, 32, 32, 1), seed=[seed, 7]).numpy()


def _numpy_mmd(x, y):
    """The U-statistic of Algorithm 1 line 16 with the IMQ kernel (WAE scales), in float64 NumPy."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n, m = x.shape

    def kernel(a, b):
        squared = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return sum(s * 2 * m / (s * 2 * m + squared) for s in losses.IMQ_SCALES)

    def off_diagonal_mean(k):
        return (k.sum() - np.trace(k)) / (n * (n - 1))

    return off_diagonal_mean(kernel(x, x)) + off_diagonal_mean(kernel(y, y)) - 2 * kernel(x, y).mean()


def _latents(model, images, seeds, training):
    """B(E(x)) of the whole batch at once in the given mode, through the networks directly."""
    code = model.quantizer(model.encoder(images, training=training))
    noise = noise_layer_draw(model.mapping.noise_layer, tf.constant(seeds, tf.int64))
    return model.mapping(code, noise=noise, training=training).numpy()


def _prior(n, seed):
    return np.random.default_rng(seed).standard_normal((n, M)).astype(np.float32)


def test_deployed_mmd_is_of_codes_mapped_one_image_at_a_time_in_inference_mode():
    model = _tiny_dplc()
    images, seed = _images(12), 5
    seeds = deployed.image_seeds(12, seed)
    # Independent route to the same codes: in inference mode every layer acts per image, so the whole
    # batch at once gives each image's batch-of-one value.
    reference = _latents(model, images, seeds, training=False)
    z = deployed.deployed_latents(model, images, seed)
    np.testing.assert_allclose(z, reference, rtol=1e-5, atol=1e-5)
    expected = _numpy_mmd(_prior(12, seed + 2), reference)
    record = deployed.deployed_check(model, images, null_repetitions=5, seed=seed, authors_batch_size=None)
    # float32 kernel sums of O(7) per entry: the estimate is good to ~1e-5 absolute.
    np.testing.assert_allclose(record["mmd_deployed"], expected, atol=1e-4)
    # The test tells the modes apart: B in training mode (batch statistics) on a batch of one, or E and B
    # in training mode on the whole batch, give MMDs far outside that tolerance.
    one_by_one_training = np.concatenate(
        [
            model.mapping(
                model.quantizer(model.encoder(images[i : i + 1], training=False)),
                noise=noise_layer_draw(model.mapping.noise_layer, tf.constant(seeds[i : i + 1])),
                training=True,
            ).numpy()
            for i in range(12)
        ]
    )
    batch_training = _latents(model, images, seeds, training=True)
    for wrong in (one_by_one_training, batch_training):
        assert abs(_numpy_mmd(_prior(12, seed + 2), wrong) - expected) > 0.01
    assert record["num_images"] == 12 and record["latent_dim"] == M and record["rate_bits"] == 8.0
    np.testing.assert_allclose(record["z_mean_abs"], np.abs(reference.mean(0)).mean(), rtol=1e-4)
    np.testing.assert_allclose(record["z_var_mean"], reference.var(0, ddof=1).mean(), rtol=1e-4)
    sds = (record["mmd_deployed"] - record["mmd_null_mean"]) / record["mmd_null_sd"]
    assert record["mmd_deployed_null_sds"] == pytest.approx(sds)
    assert record["mmd_deployed_within_null"] == (sds <= deployed.NULL_SDS)


def test_null_band_matches_an_independent_computation():
    n, m, repetitions, seed = 10, 4, 6, 11
    rng = np.random.default_rng(seed)
    values = [_numpy_mmd(*rng.standard_normal((2, n, m)).astype(np.float32)) for _ in range(repetitions)]
    mean, sd = deployed.mmd_null_band(n, m, repetitions, seed)
    np.testing.assert_allclose(mean, np.mean(values), atol=1e-5)
    np.testing.assert_allclose(sd, np.std(values, ddof=1), rtol=1e-3)
    assert sd > 1e-3  # a spread to compare against (ddof 0 would be 9% smaller)
    with pytest.raises(ValueError, match="n >= 2"):
        deployed.mmd_null_band(1, m)


def test_authors_mode_uses_batch_statistics_per_batch_and_changes_no_variable():
    model = _tiny_dplc()
    images, seed = _images(10), 2
    seeds = deployed.image_seeds(10, seed)
    before = [v.numpy().copy() for v in model.variables]
    z = deployed.authors_mode_latents(model, images, seed, batch_size=4)  # batches of 4, 3, 3
    after = [v.numpy() for v in model.variables]
    assert all(np.array_equal(b, a) for b, a in zip(before, after))
    parts = [slice(0, 4), slice(4, 7), slice(7, 10)]
    reference = np.concatenate([_latents(model, images[p], seeds[p], training=True) for p in parts])
    np.testing.assert_allclose(z, reference, rtol=1e-5, atol=1e-5)
    whole = _latents(model, images, seeds, training=True)
    assert np.abs(whole - reference).max() > 1e-2  # the batch split matters
    inference = _latents(model, images, seeds, training=False)
    assert np.abs(inference - reference).max() > 1e-2  # and so does the mode
    with pytest.raises(ValueError, match="at least 2"):
        deployed.authors_mode_latents(model, images, batch_size=1)


def test_deployed_check_pv_at_zero_bits_beside_the_samples_pixel_variance():
    model = _tiny_dplc(k=0)
    images, seed = _images(6), 4
    before = [v.numpy().copy() for v in model.variables]
    record = deployed.deployed_check(model, images, pv_images=images[:3], pv_decodes=3, null_repetitions=3,
                                     seed=seed, authors_batch_size=3)  # fmt: skip
    assert all(np.array_equal(b, v.numpy()) for b, v in zip(before, model.variables))
    samples = model.generator(_prior(6, seed + 3), training=False).numpy().reshape(6, -1)
    expected = samples.astype(np.float64).var(0, ddof=1).mean()
    np.testing.assert_allclose(record["sample_pixel_variance"], expected, rtol=1e-4)
    assert record["data_pixel_variance"] == pytest.approx(
        images.reshape(6, -1).var(0, ddof=1).mean(), rel=1e-5
    )
    assert record["pv_over_sample_pixel_variance"] == pytest.approx(
        record["pv_deployed"] / expected, rel=1e-4
    )
    assert record["pv_deployed"] > 0 and record["authors_mode_pv"] > 0
    assert record["rate_bits"] == 0.0 and record["pv_codes"] == 3 and record["pv_decodes"] == 3
    assert "NOT what the codec produces" in record["authors_mode_note"]
    assert record["authors_mode_batch_size"] == 3
    with pytest.raises(ValueError, match="n >= 2"):
        deployed.deployed_check(model, images[:1])
