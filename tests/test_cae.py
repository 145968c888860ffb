"""CAE objective, distortions and metrics."""

import numpy as np
import pytest
import tensorflow as tf

from tfdplc import losses, metrics, nets
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import CAE


def _tiny_cae(k, seed=0):
    tf.keras.utils.set_random_seed(seed)
    return CAE(
        encoder=nets.encoder_E(32, k, width=4, channels=1),
        mapping=nets.mapping_B(32, k, m=8, n_blocks=1, width=8, noise=False),
        generator=nets.generator_G(32, m=8, width=4, channels=1),
        quantizer=ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard"),
        optimizer=tf.keras.optimizers.Adam(1e-2),
    )


def test_euclidean_distance_matches_numpy_and_has_finite_gradient_at_zero():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(3, 4, 4, 2)), rng.uniform(size=(3, 4, 4, 2))
    expected = np.mean(np.sqrt(((x - y) ** 2).reshape(3, -1).sum(axis=1)))
    np.testing.assert_allclose(losses.euclidean_distance(x, y), expected, rtol=1e-6)
    np.testing.assert_allclose(losses.squared_error(x, y), np.mean((x - y) ** 2), rtol=1e-6)
    same = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(same)
        loss = losses.euclidean_distance(same, tf.identity(same))
    assert np.all(np.isfinite(tape.gradient(loss, same)))


def test_psnr_and_bpp():
    np.testing.assert_allclose(metrics.psnr([1e-2, 1e-3]), [20.0, 30.0])
    assert metrics.bits_per_pixel(64, (32, 32, 1)) == 64 / 1024


@pytest.mark.parametrize("k, bits", [(4, 16.0), (2, 8.0), (0, 0.0)])
def test_cae_rate_is_exact(k, bits):
    model = _tiny_cae(k)
    images = tf.random.uniform((2, 32, 32, 1))
    code = model.encode(images)
    assert model.rate_bits == bits
    assert code.shape == (2, 2, 2, k)
    assert set(np.unique(code.numpy())) <= {-1.0, 1.0}


def test_cae_at_rate_zero_outputs_one_image_for_every_input():
    model = _tiny_cae(0)
    out = model.reconstruct(tf.random.uniform((3, 32, 32, 1))).numpy()
    assert out.shape == (3, 32, 32, 1)
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    np.testing.assert_allclose(out[0], out[2], atol=1e-6)


def test_cae_train_step_updates_all_three_networks():
    model = _tiny_cae(4)
    images = tf.random.uniform((8, 32, 32, 1), seed=1)
    model(images[:1])
    model.compile()
    before = [v.numpy().copy() for v in model.trainable_variables]
    logs = model.train_on_batch(images, return_dict=True)
    assert np.isfinite(logs["loss"]) and np.isfinite(logs["mse"])
    changed = [not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables)]
    for net in (model.encoder, model.mapping, model.generator):
        names = {v.name for v in net.trainable_variables}
        assert any(c for c, v in zip(changed, model.trainable_variables) if v.name in names), net.name
