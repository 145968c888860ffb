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
