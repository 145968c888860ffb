"""DPLC stage-1 generator objectives: WAE-MMD, WGAN-GP and Wasserstein++ (Algorithm 1)."""

import os

import gin
import numpy as np
import pytest
import tensorflow as tf

from tfdplc import losses, nets
from tfdplc import train as tr
from tfdplc.objectives import WAE, WGANGP, WassersteinPP

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
M = 8
B = 4


@pytest.fixture(autouse=True)
def _clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _images(n, seed=1):
    return tf.random.stateless_uniform((n, 32, 32, 1), seed=[seed, 0])


def _f():
    return nets.encoder_F(32, M, width=4, channels=1)


def _g():
    return nets.generator_G(32, M, width=4, channels=1)


def _critic():
    return nets.critic_f(32, width=4, channels=1)


def _wae(optimizer=lambda: tf.keras.optimizers.Adam(1e-3), seed=0):
    tf.keras.utils.set_random_seed(seed)
    return WAE(_f(), _g(), optimizer(), optimizer(), mmd_weight=100.0)


def _wgan(n_critic=3, seed=0):
    tf.keras.utils.set_random_seed(seed)
    return WGANGP(
        _g(), _critic(), tf.keras.optimizers.Adam(1e-3), tf.keras.optimizers.Adam(1e-3), n_critic=n_critic
    )


def _wpp(gamma=0.5, n_critic=2, gp_weight=10.0, optimizer=lambda: tf.keras.optimizers.Adam(1e-3), seed=0):
    tf.keras.utils.set_random_seed(seed)
    return WassersteinPP(
        _f(), _g(), _critic(), optimizer(), optimizer(), optimizer(),
        gamma=gamma, mmd_weight=100.0, gp_weight=gp_weight, n_critic=n_critic,
    )  # fmt: skip


def _fixed_prior(model, seed=7):
    """Makes the prior draw of `model` deterministic (the same (b, m) codes at every call)."""
    z = tf.random.stateless_normal((B, M), seed=[seed, 1])
    model.sample_prior = lambda batch_size, seed=None: z[:batch_size]
    return z


def _snapshot(net):
    return [v.numpy().copy() for v in net.trainable_variables]


def _restore(net, values):
    for v, value in zip(net.trainable_variables, values):
        v.assign(value)


def _grads(loss_fn, net):
    with tf.GradientTape() as tape:
        loss = loss_fn()
    return [g.numpy() for g in tape.gradient(loss, net.trainable_variables)]


def _assert_sgd_step(before, net, grads, lr):
    """SGD moved every weight of `net` by -lr * grads."""
    for b, v, g in zip(before, net.trainable_variables, grads):
        scale = max(np.abs(g).max(), 1e-8)
        np.testing.assert_allclose((v.numpy() - b) / -lr, g, atol=2e-3 * scale, err_msg=v.name)


def _fit_steps(model, images, steps):
    model(images[:1])
    model.compile()
    return [model.train_on_batch(images, return_dict=True) for _ in range(steps)]


@pytest.mark.parametrize("make, n", [(_wae, B), (_wgan, 3 * B), (_wpp, 2 * B)])
def test_objectives_train_with_finite_changing_losses(make, n):
    model = make()
    logs = _fit_steps(model, _images(n), 4)
    for key in logs[0]:
        values = [step[key] for step in logs]
        assert np.all(np.isfinite(values)), (key, values)
        assert len(set(values)) > 1, (key, values)
    assert model.rate_bits is None and model.can_sample
    assert model.sample(3).shape == (3, 32, 32, 1)
    # A stateless seed gives the same samples twice.
    np.testing.assert_allclose(model.sample(2, seed=[3, 4]), model.sample(2, seed=[3, 4]))


def test_wae_updates_g_on_distortion_and_f_on_distortion_plus_mmd():
    lr = 0.5
    model = _wae(optimizer=lambda: tf.keras.optimizers.SGD(lr))
    x = _images(B)
    z = _fixed_prior(model)
    f_before, g_before = _snapshot(model.encoder), _snapshot(model.generator)
    g_grads = _grads(lambda: losses.euclidean_distance(x, model(x, training=True)), model.generator)
    f_grads = _grads(
        lambda: (
            losses.euclidean_distance(x, model(x, training=True))
            + 100.0 * losses.mmd_imq(z, model.encoder(x, training=True))
        ),
        model.encoder,
    )
    model.train_step(x)
    _assert_sgd_step(g_before, model.generator, g_grads, lr)
    _assert_sgd_step(f_before, model.encoder, f_grads, lr)


def test_wgan_gp_runs_n_critic_updates_per_generator_update():
    model = _wgan(n_critic=3)
    for _ in range(2):
        model.train_step(_images(3 * B))  # eagerly: the graph path is exercised above
    assert int(model.optimizer_critic.iterations) == 6
    assert int(model.optimizer_generator.iterations) == 2
    assert not model.can_reconstruct
    with pytest.raises(NotImplementedError, match="cannot reconstruct"):
        model.reconstruct(_images(1))
    with pytest.raises(ValueError, match="multiple of n_critic"):
        model.train_step(_images(3 * B + 1))


def test_wpp_interpolation_is_one_eta_per_sample_on_the_segment():
    model = _wpp()
    eta = model.sample_eta(64).numpy()
    assert eta.shape == (64, 1) and eta.min() >= 0.0 and eta.max() <= 1.0
    assert len(np.unique(eta)) == 64  # one independent draw per sample
    z, z_bar = np.random.default_rng(0).normal(size=(2, 64, M)).astype(np.float32)
    z_tilde = model.interpolate_latents(tf.constant(z), tf.constant(z_bar), tf.constant(eta)).numpy()
    # Every row lies on the segment [z_bar_i, z_i] at the position eta_i, the same for all m coordinates.
    np.testing.assert_allclose(z_tilde - z_bar, eta * (z - z_bar), atol=1e-5)


def test_wpp_critic_is_trained_on_g_of_interpolated_codes():
    lr = 0.1
    model = _wpp(n_critic=1, gp_weight=0.0, optimizer=lambda: tf.keras.optimizers.SGD(lr))
    x = _images(B)
    z = _fixed_prior(model)
    eta = tf.constant([[0.0], [0.3], [0.7], [1.0]])
    model.sample_eta = lambda batch_size: eta
    z_bar = model.encoder(x, training=True)

    def critic_grads(codes):
        fake = model.generator(codes, training=True)
        return _grads(lambda: losses.critic_loss(model.critic(x), model.critic(fake)), model.critic)

    expected = critic_grads(eta * z + (1.0 - eta) * z_bar)
    on_prior = critic_grads(z)
    before = _snapshot(model.critic)
    model.train_step(x)
    _assert_sgd_step(before, model.critic, expected, lr)
    # The check tells the two apart: training f on G(z) would have moved it differently.
    assert not all(np.allclose(a, b, atol=1e-6) for a, b in zip(expected, on_prior))


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0])
def test_wpp_generator_and_encoder_updates_follow_algorithm_1_lines_18_19(gamma):
    lr = 0.5
    model = _wpp(gamma=gamma, n_critic=2, optimizer=lambda: tf.keras.optimizers.SGD(lr))
    images = _images(2 * B)
    z = _fixed_prior(model)
    x = images[B:]  # the G/F step uses the last critic mini-batch
    f_before, g_before = _snapshot(model.encoder), _snapshot(model.generator)
    model.train_step(images)
    # Gradients at the pre-step G and F, with the critic as the critic steps left it (Algorithm 1 order).
    f_after, g_after = _snapshot(model.encoder), _snapshot(model.generator)
    _restore(model.encoder, f_before)
    _restore(model.generator, g_before)

    def distortion():
        return losses.euclidean_distance(x, model(x, training=True))

    def wgan():
        return -tf.reduce_mean(model.critic(model(x, training=True)))

    def mmd():
        return losses.mmd_imq(z, model.encoder(x, training=True))

    g_distortion, g_wgan = _grads(distortion, model.generator), _grads(wgan, model.generator)
    f_wae = _grads(lambda: distortion() + 100.0 * mmd(), model.encoder)
    _restore(model.encoder, f_after)
    _restore(model.generator, g_after)
    if gamma == 0.0:
        g_expected = g_distortion  # pure WAE distortion gradient
    elif gamma == 1.0:
        g_expected = g_wgan  # pure WGAN generator gradient
    else:
        g_expected = [(1 - gamma) * a + gamma * b for a, b in zip(g_distortion, g_wgan)]
    _assert_sgd_step(g_before, model.generator, g_expected, lr)
    # F never sees the critic: its step is (1 - gamma) times the WAE gradient (zero at gamma = 1).
    _assert_sgd_step(f_before, model.encoder, [(1 - gamma) * g for g in f_wae], lr)
    assert float(model.optimizer_critic.iterations) == 2


@pytest.mark.parametrize("make, files", [(_wpp, {"generator", "encoder"}), (_wgan, {"generator"})])
def test_save_artifacts_writes_loadable_networks(tmp_path, make, files):
    model = make()
    x = _images(2)
    model(x[:1])
    model.save_artifacts(str(tmp_path))
    assert {p.removesuffix(".keras") for p in os.listdir(tmp_path)} == files
    generator = tf.keras.models.load_model(tmp_path / "generator.keras")
    z = tf.random.stateless_normal((3, M), seed=[5, 5])
    np.testing.assert_allclose(generator(z, training=False), model.generator(z, training=False), atol=1e-6)
    if "encoder" in files:
        encoder = tf.keras.models.load_model(tmp_path / "encoder.keras")
        np.testing.assert_allclose(encoder(x, training=False), model.encoder(x, training=False), atol=1e-6)


def test_trainer_writes_generator_and_a_sample_grid_for_wgan_gp(tmp_path, mnist5k_dir):
    tr.config.parse_gin(
        [f"{ROOT}/gin/wgan_gp_mnist5k.gin"],
        [
            "M = 8",
            "generator_G.width = 4",
            "critic_f.width = 4",
            "input_pipeline.batch_size = 10",
            "train.total_steps = 2",
            "train.steps_per_epoch = 2",
            "train.eval_steps = 1",
            "train.num_grid_images = 3",
            "train.verbose = 0",
        ],
    )
    history = tr.train(str(tmp_path), mnist5k_dir)
    assert np.isfinite(history["critic_loss"]).all()
    generator = tf.keras.models.load_model(tmp_path / "generator.keras")
    assert generator.output_shape == (None, 32, 32, 1)
    assert not (tmp_path / "encoder.keras").exists()
    events = [
        os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "logs" / "images") for f in fs if "events" in f
    ]
    tags = {
        v.tag for e in events for event in tf.compat.v1.train.summary_iterator(e) for v in event.summary.value
    }
    assert tags == {"samples"}


def test_critic_update_loss_and_step_match_numpy_with_gradient_penalty():
    # A linear critic f(x) = w . x + c has input gradient w at every point, so L_f = mean f(fake) -
    # mean f(real) + lambda_GP (||w|| - 1)^2 and its gradient are known in closed form whatever nu is.
    from tfdplc.objectives.wgan_gp import critic_update

    rng = np.random.default_rng(0)
    real, fake = rng.uniform(size=(2, 3, 4, 4, 1)).astype(np.float32)
    critic = tf.keras.Sequential([tf.keras.layers.Flatten(), tf.keras.layers.Dense(1)])
    critic.build((None, 4, 4, 1))
    w0 = (rng.normal(size=(16, 1)) * 0.5).astype(np.float32)  # ||w0|| ~ 2: the penalty is far from 0
    critic.layers[1].kernel.assign(w0)
    lr, gp_weight = 0.1, 10.0
    loss, wasserstein, penalty = critic_update(
        critic, tf.keras.optimizers.SGD(lr), real, fake, gp_weight, lambda x: x
    )
    flat_real, flat_fake = real.reshape(3, -1), fake.reshape(3, -1)
    norm = np.linalg.norm(w0)
    expected_w = (flat_fake.mean(0) - flat_real.mean(0)) @ w0[:, 0]
    np.testing.assert_allclose(penalty, (norm - 1.0) ** 2, rtol=1e-4)
    np.testing.assert_allclose(wasserstein, -expected_w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(loss, expected_w + gp_weight * (norm - 1.0) ** 2, rtol=1e-4)
    grad_w = (flat_fake.mean(0) - flat_real.mean(0))[:, None] + gp_weight * 2.0 * (norm - 1.0) * w0 / norm
    np.testing.assert_allclose(critic.layers[1].kernel.numpy(), w0 - lr * grad_w, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("objective", ["wgan_gp", "wpp"])
def test_critic_steps_use_the_configured_gradient_penalty(objective):
    # A stand-in penalty of constant value 7: the tracked penalty and the critic loss must show it.
    calls = []

    def penalty(critic, real, fake):
        calls.append(real.shape[0])
        return tf.constant(7.0)

    tf.keras.utils.set_random_seed(0)
    if objective == "wgan_gp":
        model = WGANGP(_g(), _critic(), tf.keras.optimizers.Adam(1e-3), tf.keras.optimizers.Adam(1e-3),
                       n_critic=2, gradient_penalty=penalty)  # fmt: skip
    else:
        model = WassersteinPP(_f(), _g(), _critic(), *(tf.keras.optimizers.Adam(1e-3) for _ in range(3)),
                              n_critic=2, gradient_penalty=penalty)  # fmt: skip
    model.train_step(_images(2 * B))  # eagerly: the graph loop would call the Python function once
    assert calls == [B, B]
    assert float(model.penalty_tracker.result()) == pytest.approx(7.0)
    loss = float(model.critic_loss_tracker.result())
    assert loss == pytest.approx(-float(model.wasserstein_tracker.result()) + 10.0 * 7.0, rel=1e-5)


@pytest.mark.parametrize("n_critic", [1, 3])
def test_repeat_critic_updates_runs_each_index_once_in_order(n_critic):
    from tfdplc.objectives.wgan_gp import repeat_critic_updates

    # In a traced step (a graph loop for n_critic > 1) and eagerly: every index 0 .. n_critic - 1, in order.
    seen = tf.Variable(tf.zeros([4], tf.int32))
    count = tf.Variable(0)

    def update(t):
        seen.scatter_nd_update([[count]], [t + 1])
        count.assign_add(1)

    tf.function(lambda: repeat_critic_updates(n_critic, update))()
    expected = list(range(1, n_critic + 1)) + [0] * (4 - n_critic)
    assert seen.numpy().tolist() == expected and int(count) == n_critic
    eager = []
    repeat_critic_updates(n_critic, lambda t: eager.append(int(t)))
    assert eager == list(range(n_critic))
