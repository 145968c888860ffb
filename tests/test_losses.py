"""MMD, Wasserstein terms and the gradient penalty against direct computations."""

import numpy as np
import pytest
import tensorflow as tf

from tfdplc import losses


def _numpy_mmd_imq(x, y, scales=losses.IMQ_SCALES):
    b, m = x.shape

    def k(a, c):
        d2 = ((a[:, None, :] - c[None, :, :]) ** 2).sum(-1)
        return sum(s * 2 * m / (s * 2 * m + d2) for s in scales)

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    off = lambda mat: (mat.sum() - np.trace(mat)) / (b * (b - 1))  # noqa: E731
    return off(kxx) + off(kyy) - 2 * kxy.mean()


def test_mmd_imq_matches_numpy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 8)), rng.normal(loc=0.5, size=(16, 8))
    np.testing.assert_allclose(losses.mmd_imq(x, y).numpy(), _numpy_mmd_imq(x, y), rtol=1e-10)
    # Same distribution: the unbiased estimate is near 0; shifted: clearly positive.
    same = losses.mmd_imq(rng.normal(size=(256, 8)), rng.normal(size=(256, 8))).numpy()
    shifted = losses.mmd_imq(rng.normal(size=(256, 8)), rng.normal(loc=1.0, size=(256, 8))).numpy()
    assert abs(same) < 0.01 < shifted


def test_mmd_rejects_mismatched_batches():
    with pytest.raises(ValueError, match="equal size"):
        losses.mmd_imq(tf.zeros((4, 2)), tf.zeros((3, 2)))


def test_gradient_penalty_is_zero_for_a_one_lipschitz_linear_critic():
    w = tf.random.normal((4 * 4 * 3,), seed=1)
    w = w / tf.norm(w)

    def critic(x):
        return tf.linalg.matvec(tf.reshape(x, [tf.shape(x)[0], -1]), w)

    real, fake = tf.random.uniform((5, 4, 4, 3), seed=2), tf.random.uniform((5, 4, 4, 3), seed=3)
    assert losses.gradient_penalty(critic, real, fake, seed=[0, 1]).numpy() == pytest.approx(0.0, abs=1e-8)


def test_gradient_penalty_norm_is_per_sample_over_all_pixels():
    # f(x) = a_i * sum(x) has gradient a_i everywhere: per-sample norm a_i * sqrt(#pixels*channels).
    scale = tf.constant([0.5, 2.0, 1.0])
    pixels = 4 * 4 * 3

    def critic(x):
        return scale * tf.reduce_sum(x, axis=[1, 2, 3])

    real = tf.random.uniform((3, 4, 4, 3), seed=4)
    expected = np.mean((scale.numpy() * np.sqrt(pixels) - 1.0) ** 2)
    got = losses.gradient_penalty(critic, real, tf.zeros_like(real), seed=[0, 2]).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_wasserstein_terms():
    real, fake = tf.constant([1.0, 3.0]), tf.constant([0.0, 1.0])
    assert losses.critic_loss(real, fake).numpy() == pytest.approx(0.5 - 2.0)
    assert losses.generator_loss(fake).numpy() == pytest.approx(-0.5)


def test_gradient_penalty_is_taken_at_the_interpolates_with_a_nonlinear_critic():
    # f(x) = 1/2 sum(x^2) has gradient x: at x~_i = nu_i * real_i + (1 - nu_i) * 0 the per-sample norm is
    # nu_i * ||real_i|| = 2 nu_i, so with nu ~ U(0, 1) the penalty is E[(2 nu - 1)^2] = 1/3; taken at the
    # real images instead it would be (2 - 1)^2 = 1, at the fakes (0 - 1)^2 = 1.
    def critic(x):
        return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])

    real = tf.fill((20000, 2, 2, 1), 1.0)  # ||real_i|| = 2
    got = losses.gradient_penalty(critic, real, tf.zeros_like(real), seed=[3, 4]).numpy()
    assert got == pytest.approx(1.0 / 3.0, abs=0.01)  # standard error of the mean ~0.002


def test_batch_rmse_pm1_matches_numpy():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(size=(2, 3, 4, 4, 2))
    expected = np.sqrt(np.mean(((2 * x - 1) - (2 * y - 1)) ** 2))  # the authors' sqrt(MSELoss) on [-1, 1]
    np.testing.assert_allclose(losses.batch_rmse_pm1(x, y), expected, rtol=1e-6)
    same = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(same)
        loss = losses.batch_rmse_pm1(same, tf.identity(same))
    assert np.all(np.isfinite(tape.gradient(loss, same)))


def _distortion_gradient(distortion, x, y):
    y = tf.constant(y, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(y)
        loss = distortion(tf.constant(x, tf.float32), y)
    return tape.gradient(loss, y).numpy().reshape(len(x), -1)


@pytest.mark.parametrize("shape", [(32, 32, 1), (64, 64, 3)])
def test_paper_text_distortion_gradient_is_sqrt_d_over_2_times_the_authors_per_image(shape):
    # Both gradients are w.r.t. the [0, 1] decoded images; the authors' loss sees 2x - 1, which doubles
    # every difference. Per image i (e_i = y_i - x_i): the paper-text gradient is e_i / (b ||e_i||), the
    # authors' 2 e_i / sqrt(b D sum_j ||e_j||^2): same direction, norm ratio sqrt(D)/2 * rms_j||e_j|| /
    # ||e_i||, i.e. exactly sqrt(D)/2 (16 at 32x32x1, 55.4 at 64x64x3) when the images' errors are equal.
    rng = np.random.default_rng(2)
    b, d = 4, int(np.prod(shape))
    x = rng.uniform(size=(b,) + shape)
    e = rng.normal(size=(b,) + shape)
    e *= (np.array([0.5, 1.0, 2.0, 4.0]) / np.linalg.norm(e.reshape(b, -1), axis=1)).reshape(b, 1, 1, 1)
    paper = _distortion_gradient(losses.euclidean_distance, x, x + e)
    authors = _distortion_gradient(losses.batch_rmse_pm1, x, x + e)
    flat = e.reshape(b, -1)
    norms = np.linalg.norm(flat, axis=1)
    for got, expected in (
        (paper, flat / (b * norms[:, None])),
        (authors, 2 * flat / np.sqrt(b * d * np.sum(norms**2))),
    ):
        # float32 inputs: absolute tolerance for the entries near 0.
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    ratio = np.linalg.norm(paper, axis=1) / np.linalg.norm(authors, axis=1)
    rms = np.sqrt(np.mean(norms**2))
    np.testing.assert_allclose(ratio, np.sqrt(d) / 2 * rms / norms, rtol=1e-3)
    # Equal errors: the plain sqrt(D)/2.
    e_equal = e / norms.reshape(b, 1, 1, 1)
    paper = _distortion_gradient(losses.euclidean_distance, x, x + e_equal)
    authors = _distortion_gradient(losses.batch_rmse_pm1, x, x + e_equal)
    ratio = np.linalg.norm(paper, axis=1) / np.linalg.norm(authors, axis=1)
    np.testing.assert_allclose(ratio, np.sqrt(d) / 2, rtol=1e-3)


def test_per_pixel_gradient_penalty_matches_numpy_with_a_nonlinear_critic():
    # f(x) = sum(tanh(x)) has gradient 1 - tanh(x)^2; real == fake makes the interpolate the image itself.
    # The authors' norm is over the channels of each pixel, of the gradient w.r.t. the [-1, 1] image (half
    # the [0, 1] gradient), and the penalty averages over batch and pixels.
    def critic(x):
        return tf.reduce_sum(tf.tanh(3.0 * x), axis=[1, 2, 3])

    x = np.random.default_rng(3).uniform(size=(3, 4, 5, 3)).astype(np.float32)
    grad01 = 3.0 * (1.0 - np.tanh(3.0 * x) ** 2)
    per_pixel = np.linalg.norm(grad01 / 2.0, axis=-1)
    got = losses.per_pixel_gradient_penalty(critic, x, x, seed=[0, 5]).numpy()
    np.testing.assert_allclose(got, np.mean((per_pixel - 1.0) ** 2), rtol=1e-5)
    per_sample = np.linalg.norm(grad01.reshape(3, -1), axis=1)
    got = losses.gradient_penalty(critic, x, x, seed=[0, 5]).numpy()
    np.testing.assert_allclose(got, np.mean((per_sample - 1.0) ** 2), rtol=1e-5)


def test_per_pixel_gradient_penalty_is_taken_at_the_interpolates():
    # f(x) = 1/2 sum(x^2), one channel: at x~ = nu * 1 the [-1, 1] gradient of each pixel is nu / 2, so the
    # penalty is E[(nu/2 - 1)^2] = 7/12; at the real images it would be 1/4, at the fakes 1.
    def critic(x):
        return 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])

    real = tf.fill((20000, 2, 2, 1), 1.0)
    got = losses.per_pixel_gradient_penalty(critic, real, tf.zeros_like(real), seed=[3, 4]).numpy()
    assert got == pytest.approx(7.0 / 12.0, abs=0.01)


def test_conventions_pair_the_functions():
    assert losses.CONVENTIONS[losses.PAPER_TEXT] == (losses.euclidean_distance, losses.gradient_penalty)
    assert losses.CONVENTIONS[losses.AUTHORS_CODE] == (
        losses.batch_rmse_pm1,
        losses.per_pixel_gradient_penalty,
    )
