"""PV, Fréchet / kernel distances, and the feature extractors (shipped digit classifier, InceptionV3)."""

import os

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

from tfdplc import features, metrics, nets
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import CAE

# --------------------------------------------------------------------------------------------------------
# MSE / PSNR of reconstructions.


class _NoisyIdentity:
    """A stochastic 'decoder': each call adds fresh uniform noise, so two passes differ."""

    def __init__(self):
        self.generator = tf.random.Generator.from_seed(0)

    def reconstruct(self, images):
        return images + self.generator.uniform(tf.shape(images), -0.1, 0.1)


def test_error_metrics_match_a_direct_computation():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(5, 4, 4, 1)).astype(np.float32)
    reconstructions = np.clip(images + rng.normal(0, 0.1, images.shape), 0, 1).astype(np.float32)
    per_image = ((images - reconstructions) ** 2).mean(axis=(1, 2, 3))
    record = metrics.error_metrics(images, reconstructions)
    assert record["num_images"] == 5
    np.testing.assert_allclose(record["mse"], per_image.mean(), rtol=1e-6)
    np.testing.assert_allclose(record["psnr"], (10 * np.log10(1 / per_image)).mean(), rtol=1e-5)
    np.testing.assert_allclose(record["psnr_of_mean_mse"], 10 * np.log10(1 / per_image.mean()), rtol=1e-5)
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.error_metrics(images, reconstructions[:4])
    with pytest.raises(ValueError, match="empty"):
        metrics.error_metrics(images[:0], reconstructions[:0])


def test_reconstruct_dataset_runs_a_stochastic_decoder_once():
    images = np.full((6, 4, 4, 1), 0.5, np.float32)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4)
    model = _NoisyIdentity()
    originals, reconstructions = metrics.reconstruct_dataset(model, dataset)
    np.testing.assert_array_equal(originals, images)
    # The MSE of the returned draws is the one error_metrics reports: nothing is decoded again.
    record = metrics.error_metrics(originals, reconstructions)
    np.testing.assert_allclose(record["mse"], ((reconstructions - images) ** 2).mean(), rtol=1e-6)
    # A second pass draws other noise, which is why evaluate.py computes MSE and FD from one pass.
    assert not np.array_equal(metrics.reconstruct_dataset(model, dataset)[1], reconstructions)
    with pytest.raises(ValueError, match="empty"):
        metrics.reconstruct_dataset(model, dataset.take(0))


# --------------------------------------------------------------------------------------------------------
# Conditional pixel variance.


def _codes(n=64, side=8, channels=1):
    return tf.random.stateless_uniform((n, side, side, channels), seed=[1, 2])


def test_pv_of_a_deterministic_decoder_is_exactly_zero():
    tf.keras.utils.set_random_seed(0)
    net = tf.keras.Sequential([tf.keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid")])
    pv = metrics.conditional_pixel_variance(lambda codes, seed: net(codes), _codes(), num_decodes=5)
    assert pv == 0.0


def test_pv_of_a_real_deterministic_objective_is_exactly_zero():
    tf.keras.utils.set_random_seed(0)
    model = CAE(
        encoder=nets.encoder_E(32, 2, width=4, channels=1),
        mapping=nets.mapping_B(32, 2, m=8, n_blocks=1, width=8, noise=False),
        generator=nets.generator_G(32, m=8, width=4, channels=1),
        quantizer=ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard"),
        optimizer=tf.keras.optimizers.Adam(1e-3),
    )
    images = tf.random.stateless_uniform((6, 32, 32, 1), seed=[3, 4])
    pv = metrics.objective_pixel_variance(model, images, noise_dim=None, num_decodes=3, batch_size=4)
    assert pv == 0.0


@pytest.mark.parametrize("sigma", [0.05, 0.2])
def test_pv_of_additive_gaussian_noise_is_its_variance_unbiased(sigma):
    codes = _codes()
    k = 10  # Few decodes: the biased estimator would give (k-1)/k * sigma^2, 10% less.

    def decode(c, seed):
        return c + sigma * tf.random.stateless_normal(tf.shape(c), seed=[seed, 7])

    pv = metrics.conditional_pixel_variance(decode, codes, num_decodes=k, seed=0, batch_size=24)
    # 64 codes x 64 pixels x 9 degrees of freedom: relative standard error ~ sqrt(2 / 36864) = 0.7%.
    np.testing.assert_allclose(pv, sigma**2, rtol=0.03)
    assert abs(pv - sigma**2) < abs(pv - (k - 1) / k * sigma**2)


def test_pv_averages_channels_and_codes():
    codes = _codes(n=32, channels=3)
    sigma = 0.1
    # Half of the codes get noise on channel 0 only, the other half none: PV = (sigma^2 / 3) / 2.
    mask = tf.reshape(tf.cast(tf.range(32) < 16, tf.float32), (32, 1, 1, 1)) * tf.constant([1.0, 0.0, 0.0])

    def decode(c, seed):
        return c + mask * sigma * tf.random.stateless_normal(tf.shape(c), seed=[seed, 1])

    pv = metrics.conditional_pixel_variance(decode, codes, num_decodes=20, batch_size=32)
    np.testing.assert_allclose(pv, sigma**2 / 6, rtol=0.05)


def test_noise_decode_fn_draws_fresh_reproducible_uniform_noise():
    m = 64  # decode(code, noise): the (B, 64) noise reshaped to an 8x8 image, as DPLC's B gets Uniform[0,1).
    calls = []

    def decode(code, noise=None):
        calls.append(noise)
        return tf.reshape(noise, (-1, 8, 8, 1)) + 0.0 * code

    decode_fn = metrics.noise_decode_fn(decode, m)
    pv = metrics.conditional_pixel_variance(decode_fn, _codes(n=40), num_decodes=25, seed=3)
    np.testing.assert_allclose(pv, 1.0 / 12.0, rtol=0.03)  # Variance of Uniform[0, 1).
    assert all(0.0 <= float(tf.reduce_min(n)) and float(tf.reduce_max(n)) < 1.0 for n in calls)
    again = metrics.conditional_pixel_variance(decode_fn, _codes(n=40), num_decodes=25, seed=3)
    other = metrics.conditional_pixel_variance(decode_fn, _codes(n=40), num_decodes=25, seed=4)
    assert again == pv and other != pv
    normal = metrics.noise_decode_fn(decode, m, distribution="normal")
    np.testing.assert_allclose(
        metrics.conditional_pixel_variance(normal, _codes(n=40), num_decodes=25), 1.0, rtol=0.03
    )


def test_pv_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_decodes"):
        metrics.conditional_pixel_variance(lambda c, s: c, _codes(), num_decodes=1)
    with pytest.raises(ValueError, match="returned"):
        metrics.conditional_pixel_variance(lambda c, s: c[:1], _codes(), num_decodes=2)
    with pytest.raises(ValueError, match="distribution"):
        metrics.noise_decode_fn(lambda c, noise=None: c, 8, distribution="cauchy")


# --------------------------------------------------------------------------------------------------------
# Fréchet and kernel distances.


class _Projection:
    """A fixed random linear feature map (8-d), for a check against a direct NumPy/SciPy computation."""

    name = "projection"

    def __init__(self):
        self.w = np.random.default_rng(0).normal(size=(16, 8))

    def __call__(self, images):
        return np.asarray(images).reshape(len(images), -1) @ self.w


def test_fd_and_kd_match_a_direct_computation():
    rng = np.random.default_rng(1)
    real = rng.uniform(size=(300, 4, 4, 1))
    fake = rng.uniform(size=(200, 4, 4, 1)) ** 2
    out = metrics.distribution_distances(real, fake, _Projection(), batch_size=64)
    fr, ff = _Projection()(real), _Projection()(fake)
    mu_r, mu_f = fr.mean(0), ff.mean(0)
    s_r, s_f = np.cov(fr, rowvar=False), np.cov(ff, rowvar=False)
    fd = np.sum((mu_r - mu_f) ** 2) + np.trace(s_r + s_f - 2 * scipy.linalg.sqrtm(s_r @ s_f).real)
    k = lambda a, b: (a @ b.T / 8 + 1) ** 3  # noqa: E731
    kd = (
        (k(fr, fr).sum() - np.trace(k(fr, fr))) / (300 * 299)
        + (k(ff, ff).sum() - np.trace(k(ff, ff))) / (200 * 199)
        - 2 * k(fr, ff).mean()
    )
    np.testing.assert_allclose(out["fd"], fd, rtol=1e-4)
    np.testing.assert_allclose(out["kd"], kd, rtol=1e-6)
    assert out["fd_features"] == "projection" and out["fd_num_real"] == 300 and out["fd_num_fake"] == 200


@pytest.fixture(scope="module")
def digits(mnist5k_dir):
    test_x, test_y = features.labelled_mnist5k("test", mnist5k_dir)
    train_x, _ = features.labelled_mnist5k("train", mnist5k_dir)
    return test_x, test_y, train_x[::9]  # 500 train digits, 50 per class (the split is sorted by class).


@pytest.fixture(scope="module")
def classifier():
    return features.DigitClassifierFeatures()


def test_fd_and_kd_on_digit_features_are_ordered(digits, classifier):
    test_x, _, train_x = digits
    blurred = tf.image.resize(tf.image.resize(test_x, (14, 14)), (28, 28)).numpy()
    noise = np.random.default_rng(0).uniform(size=test_x.shape).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices(test_x).batch(128)
    same = metrics.distribution_distances(test_x, dataset, classifier)  # An iterable of batches works too.
    splits = metrics.distribution_distances(test_x, train_x, classifier)
    blur = metrics.distribution_distances(test_x, blurred, classifier)
    far = metrics.distribution_distances(test_x, noise, classifier)
    assert same["fd_features"] == "digit_classifier"
    assert abs(same["fd"]) < 1e-6
    # Two real-digit samples: FD only has its finite-sample bias; KD (unbiased) is ~0, of either sign. KD of
    # a set against itself is not 0: the cross term then includes the pairs (x, x) (documented).
    assert abs(splits["kd"]) < 0.05 * far["kd"] and abs(same["kd"]) < 0.1 * far["kd"]
    assert 0 < splits["fd"] < blur["fd"] / 3 < far["fd"] / 3
    assert splits["kd"] < blur["kd"] / 3 < far["kd"] / 3


# --------------------------------------------------------------------------------------------------------
# Feature extractors.


def test_shipped_digit_classifier_is_small_and_accurate(digits, classifier):
    test_x, test_y, _ = digits
    assert os.path.getsize(features.DIGIT_CLASSIFIER_WEIGHTS) < 1_000_000
    assert classifier.accuracy(test_x, test_y) > 0.95  # Measured: see tfdplc.features' docstring.
    feats = classifier(test_x[:5])
    assert feats.shape == (5, features.DIGIT_CLASSIFIER_FEATURE_DIM) == (5, 64)
    assert np.all(feats.numpy() >= 0)  # ReLU features.
    # 32x32 zero-padded digits (load_images(resolution=32)) and RGB digits give the same features.
    padded = np.pad(test_x[:5], [(0, 0), (2, 2), (2, 2), (0, 0)])
    np.testing.assert_allclose(classifier(padded), feats, atol=1e-5)
    # RGB goes through rgb_to_grayscale, whose weights sum to 0.9999: equal up to that factor.
    np.testing.assert_allclose(classifier(np.repeat(test_x[:5], 3, axis=-1)), feats, rtol=2e-3, atol=1e-3)


def test_fit_digit_size_crops_and_pads_centrally():
    x = np.arange(2 * 30 * 30, dtype=np.float32).reshape(2, 30, 30, 1)
    np.testing.assert_array_equal(features.fit_digit_size(x), x[:, 1:29, 1:29])
    small = features.fit_digit_size(np.ones((1, 25, 25, 1), np.float32)).numpy()
    assert small.shape == (1, 28, 28, 1) and small.sum() == 625 and small[0, 1, 1, 0] == 1
    with pytest.raises(ValueError, match="channels"):
        features.fit_digit_size(np.zeros((1, 28, 28, 2)))


def test_inception_without_weights_fails_clearly_and_offline(tmp_path):
    missing = str(tmp_path / "inception.h5")
    for path in (missing, None):
        with pytest.raises(FileNotFoundError, match="never downloads") as info:
            features.InceptionFeatures(path)
        assert features.INCEPTION_WEIGHTS_URL in str(info.value)
    assert not os.path.exists(missing)


def test_inception_features_from_a_local_weights_file(tmp_path):
    # Random weights saved from the same architecture stand in for the ImageNet file (no download here).
    tf.keras.utils.set_random_seed(0)
    path = str(tmp_path / "random_inception_notop.h5")
    tf.keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg").save_weights(path)
    extractor = features.InceptionFeatures(path)
    digits = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32)
    feats = extractor(digits).numpy()
    assert feats.shape == (2, 2048) and extractor.feature_dim == 2048
    assert np.all(np.isfinite(feats)) and np.all(feats >= 0) and np.any(feats > 0)
    # The same images in RGB and at another size go through the same resize: equal features for RGB.
    np.testing.assert_allclose(extractor(np.repeat(digits, 3, axis=-1)), feats, rtol=1e-5, atol=1e-6)
