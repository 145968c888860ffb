"""DPLC stage 2 (eq. 8), the GC baseline (eq. 3) and the lambda(R) scaling of Table 3 / App. B."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfdplc import losses, nets
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import DPLC, GC, read_mse, scaled_lambda

M = 8


def _sensitive(generator):
    """Scales G's kernels: with N(0, 0.02) weights a tiny G outputs a near-constant 0.5 image."""
    for layer in generator.layers:
        if hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * 20.0)
    return generator


def _saved_generator(tmp_path, seed=0):
    """A tiny stage-1 generator G* with non-trivial BatchNorm statistics, saved as stage 1 would."""
    tf.keras.utils.set_random_seed(seed)
    generator = nets.generator_G(32, m=M, width=4, channels=1)
    _sensitive(generator)
    for layer in generator.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):  # statistics off their initial 0 / 1
            layer.moving_mean.assign(tf.random.normal(layer.moving_mean.shape, stddev=0.1))
            layer.moving_variance.assign(tf.random.uniform(layer.moving_variance.shape, 0.5, 1.5))
    path = tmp_path / "generator.keras"
    generator.save(path)
    return str(path)


def _tiny_dplc(generator_path, k=2, lambda_mmd=10.0, seed=0):
    tf.keras.utils.set_random_seed(seed)
    return DPLC(
        encoder=nets.encoder_E(32, k, width=4, channels=1),
        mapping=nets.mapping_B(32, k, m=M, n_blocks=1, width=8, noise=True, seed=seed + 1),
        quantizer=ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard"),
        optimizer=tf.keras.optimizers.Adam(1e-2, beta_1=0.5),
        lambda_mmd=lambda_mmd,
        generator_path=generator_path,
        seed=seed + 2,
    )


def _tiny_gc(k=2, n_critic=3, critic_lr=1e-3, lambda_wd=0.5, seed=0):
    tf.keras.utils.set_random_seed(seed)
    return GC(
        encoder=nets.encoder_E(32, k, width=4, channels=1),
        mapping=nets.mapping_B(32, k, m=M, n_blocks=1, width=8, noise=True, seed=seed + 1),
        generator=nets.generator_G(32, m=M, width=4, channels=1),
        critic=nets.critic_f(32, width=4, channels=1),
        quantizer=ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard"),
        optimizer=tf.keras.optimizers.Adam(1e-3, beta_1=0.5),
        critic_optimizer=tf.keras.optimizers.Adam(critic_lr, beta_1=0.5),
        lambda_wd=lambda_wd,
        n_critic=n_critic,
    )


def _images(n, seed=3):
    return tf.random.stateless_uniform((n, 32, 32, 1), seed=[seed, 0])


def _snapshot(variables):
    return {v.name: v.numpy().copy() for v in variables}


@pytest.fixture(scope="module")
def generator_path(tmp_path_factory):
    return _saved_generator(tmp_path_factory.mktemp("stage1"))


# ------------------------------------------------------------------------------------------------------
# DPLC stage 2.


def test_stage2_leaves_every_variable_of_g_star_unchanged(generator_path):
    model = _tiny_dplc(generator_path)
    images = _images(8)
    model(images[:1])
    model.compile()
    g_before = _snapshot(model.generator.variables)
    assert any("moving_mean" in name for name in g_before)  # BatchNorm statistics are compared too
    eb_vars = model.encoder.trainable_variables + model.mapping.trainable_variables
    eb_before = _snapshot(eb_vars)
    assert not model.generator.trainable
    assert not {v.ref() for v in model.generator.variables} & {v.ref() for v in model.trainable_variables}
    for step in range(3):
        logs = model.train_on_batch(_images(8, seed=step), return_dict=True)
        assert all(np.isfinite(v) for v in logs.values())
    for v in model.generator.variables:
        np.testing.assert_array_equal(v.numpy(), g_before[v.name], err_msg=v.name)
    changed = {v.name for v in eb_vars if not np.allclose(v.numpy(), eb_before[v.name])}
    assert any(v.name in changed for v in model.encoder.trainable_variables)
    assert any(v.name in changed for v in model.mapping.trainable_variables)
    # B's BatchNorm statistics do move (it is trained), so "unchanged" above is not vacuous.
    b_stats = [v for v in model.mapping.non_trainable_variables if "moving" in v.name]
    assert b_stats and any(
        not np.allclose(v.numpy(), 0.0) and not np.allclose(v.numpy(), 1.0) for v in b_stats
    )


def test_stage2_loss_is_distortion_plus_lambda_mmd(generator_path):
    model = _tiny_dplc(generator_path, lambda_mmd=7.5)
    images = _images(6)
    model(images[:1])
    model.compile(run_eagerly=True)  # the same train_step; graph mode is exercised by the test above
    noise_state = model.mapping.noise_layer._generator.state.numpy().copy()
    prior_state = model._prior.state.numpy().copy()
    # Expected value from the same draws, computed independently of compute_losses.
    noise, prior = model.sample_noise(6), model.sample_prior(6)
    code = model.quantizer(model.encoder(images, training=True), training=True)
    z_hat = model.mapping.trunk(tf.concat([code, tf.reshape(noise, (6, 2, 2, M // 4))], -1), training=True)
    expected_d = losses.euclidean_distance(images, model.generator(z_hat, training=False))
    expected_mmd = losses.mmd_imq(prior, z_hat)
    model.mapping.noise_layer._generator.state.assign(noise_state)
    model._prior.state.assign(prior_state)
    logs = model.train_on_batch(images, return_dict=True)
    np.testing.assert_allclose(logs["distortion"], expected_d, rtol=1e-5)
    np.testing.assert_allclose(logs["mmd"], expected_mmd, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(logs["loss"], expected_d + 7.5 * expected_mmd, rtol=1e-5)
    assert abs(float(expected_mmd)) > 1e-4  # the MMD term actually contributes


@pytest.mark.parametrize("batch_statistics", [True, False])
def test_stage2_batch_statistics_couple_the_images_of_a_batch_or_not(generator_path, batch_statistics):
    model = _tiny_dplc(generator_path)
    model.batch_statistics = batch_statistics
    images = _images(6)
    model(images[:1])
    noise, prior = model.sample_noise(6), model.sample_prior(6)
    together = model.compute_losses(images, noise, prior, training=True)["reconstructions"].numpy()
    alone = model.compute_losses(images[:2], noise[:2], prior[:2], training=True)["reconstructions"].numpy()
    # With batch statistics an image's z depends on the rest of its batch; without, only on itself.
    gap = np.abs(together[:2] - alone).max()
    assert (gap > 1e-3) if batch_statistics else (gap < 1e-5), gap
    # Training updates the BatchNorm statistics of E and B only when they run in training mode, and the
    # quantizer keeps its soft-to-hard training gradient either way (E's weights move).
    stats = [
        v for net in (model.encoder, model.mapping) for v in net.non_trainable_variables if "moving" in v.name
    ]
    before = _snapshot(stats + model.encoder.trainable_variables)
    model.compile()
    model.train_on_batch(images, return_dict=True)
    moved = {v.name for v in stats if not np.allclose(v.numpy(), before[v.name])}
    assert bool(moved) == batch_statistics
    assert any(not np.allclose(v.numpy(), before[v.name]) for v in model.encoder.trainable_variables)


@pytest.mark.parametrize("k, bits", [(2, 8.0), (3, 12.0), (0, 0.0)])
def test_stage2_rate_bits_exact(generator_path, k, bits):
    model = _tiny_dplc(generator_path, k=k)
    code = model.encode(_images(2))
    assert model.rate_bits == bits
    assert code.shape == (2, 2, 2, k)
    assert set(np.unique(code.numpy())) <= {-1.0, 1.0}


def test_stage2_rate_zero_is_a_pure_generator(generator_path):
    model = _tiny_dplc(generator_path, k=0)
    images = _images(4)
    model(images[:1])
    model.compile(run_eagerly=True)
    assert model.rate_bits == 0.0
    assert model.encode(images).shape == (4, 2, 2, 0)
    logs = model.train_on_batch(images, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    first, second = model.reconstruct(images).numpy(), model.reconstruct(images).numpy()
    assert first.shape == (4, 32, 32, 1)
    assert np.abs(first - second).max() > 1e-4  # fresh noise, different images from the same (empty) code
    # With the input noise fixed, the output no longer depends on the image (no bits).
    noise = tf.repeat(model.sample_noise(1), 4, axis=0)
    fixed = model.decode(model.encode(images), noise=noise).numpy()
    np.testing.assert_allclose(fixed[0], fixed[3], atol=1e-6)


def test_stage2_decode_with_explicit_noise_is_reproducible(generator_path):
    model = _tiny_dplc(generator_path, k=2)
    code = model.encode(_images(3))
    noise = model.sample_noise(3)
    a, b = model.decode(code, noise=noise).numpy(), model.decode(code, noise=noise).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - model.decode(code, noise=model.sample_noise(3)).numpy()).max() > 1e-5
    samples = model.sample(5)
    assert samples.shape == (5, 32, 32, 1)
    np.testing.assert_array_equal(model.sample(2, seed=[1, 2]), model.sample(2, seed=[1, 2]))


def test_stage2_accepts_a_model_and_validates(generator_path, tmp_path):
    generator = tf.keras.models.load_model(generator_path, compile=False)
    args = dict(
        encoder=nets.encoder_E(32, 1, width=4, channels=1),
        quantizer=ScalarQuantizer(),
        optimizer=tf.keras.optimizers.Adam(),
        lambda_mmd=1.0,
    )
    model = DPLC(mapping=nets.mapping_B(32, 1, m=M, n_blocks=0, width=8), generator=generator, **args)
    assert not model.generator.trainable and model.latent_dim == M
    with pytest.raises(ValueError, match="exactly one"):
        DPLC(mapping=nets.mapping_B(32, 1, m=M, n_blocks=0, width=8), **args)
    with pytest.raises(FileNotFoundError, match="stage-1 generator"):
        DPLC(
            mapping=nets.mapping_B(32, 1, m=M, n_blocks=0, width=8),
            generator_path=str(tmp_path / "x"),
            **args,
        )
    with pytest.raises(ValueError, match="stochastic"):
        DPLC(
            mapping=nets.mapping_B(32, 1, m=M, n_blocks=0, width=8, noise=False), generator=generator, **args
        )
    with pytest.raises(ValueError, match="mapping_B.m"):
        DPLC(mapping=nets.mapping_B(32, 1, m=2 * M, n_blocks=0, width=8), generator=generator, **args)


# ------------------------------------------------------------------------------------------------------
# lambda(R).


def _metrics_file(path, mse, bpp):
    path.write_text(json.dumps([{"method": "cae", "mse": mse, "bpp": bpp, "rate_bits": bpp * 4096}]))
    return str(path)


def test_scaled_lambda_from_values_and_metrics_files(tmp_path):
    assert scaled_lambda(150.0) == 150.0
    np.testing.assert_allclose(scaled_lambda(150.0, mse=0.02, reference_mse=0.01), 300.0)
    current = _metrics_file(tmp_path / "k8.json", 0.03, 0.03125)
    reference = _metrics_file(tmp_path / "k128.json", 0.012, 0.5)
    np.testing.assert_allclose(
        scaled_lambda(150.0, metrics=current, reference_metrics=reference, reference_bpp=0.5), 375.0
    )
    np.testing.assert_allclose(scaled_lambda(2.5e-5, mse=0.006, reference_metrics=reference), 1.25e-5)
    assert read_mse(current) == 0.03


def test_scaled_lambda_clear_errors(tmp_path):
    reference = _metrics_file(tmp_path / "ref.json", 0.01, 0.5)
    with pytest.raises(FileNotFoundError, match="tools/evaluate.py"):
        scaled_lambda(1.0, metrics=str(tmp_path / "missing.json"), reference_metrics=reference)
    with pytest.raises(ValueError, match="reference_mse / reference_metrics is missing"):
        scaled_lambda(1.0, mse=0.1)
    with pytest.raises(ValueError, match="not both"):
        scaled_lambda(1.0, mse=0.1, metrics=reference, reference_mse=0.1)
    with pytest.raises(ValueError, match="reference rate is 1.0 bpp"):
        scaled_lambda(1.0, mse=0.1, reference_metrics=reference, reference_bpp=1.0)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_mse(str(bad))
    bad.write_text(json.dumps([{"mse": 0.1}, {"mse": 0.2}]))
    with pytest.raises(ValueError, match="exactly one record"):
        read_mse(str(bad))
    bad.write_text(json.dumps([{"psnr": 20.0}]))
    with pytest.raises(ValueError, match="no 'mse'"):
        read_mse(str(bad))
    bad.write_text(json.dumps([{"mse": -1.0}]))
    with pytest.raises(ValueError, match="positive"):
        read_mse(str(bad))
    with pytest.raises(ValueError, match="positive"):
        scaled_lambda(1.0, mse=0.0, reference_mse=0.1)


# ------------------------------------------------------------------------------------------------------
# GC baseline.


def test_gc_runs_n_critic_updates_per_step():
    model = _tiny_gc(n_critic=3)
    images = _images(12)
    model(images[:1])
    model.compile()
    critic_before = _snapshot(model.critic.trainable_variables)
    ae_vars = model.encoder.trainable_variables + model.mapping.trainable_variables
    ae_vars += model.generator.trainable_variables
    ae_before = _snapshot(ae_vars)
    for step in range(2):
        logs = model.train_on_batch(_images(12, seed=step), return_dict=True)
        assert all(np.isfinite(v) for v in logs.values())
    assert int(model.optimizer_critic.iterations) == 2 * 3
    assert int(model.optimizer_ae.iterations) == 2
    assert all(
        not np.allclose(v.numpy(), critic_before[v.name]) for v in model.critic.trainable_variables[:1]
    )
    for net in (model.encoder, model.mapping, model.generator):
        assert any(not np.allclose(v.numpy(), ae_before[v.name]) for v in net.trainable_variables), net.name
    with pytest.raises(ValueError, match="multiple of n_critic"):
        model._split(_images(10))


def test_gc_loss_is_distortion_plus_lambda_generator_term():
    # Critic learning rate 0: the critic steps leave f unchanged, so the generator-step loss can be
    # recomputed exactly from the weights before the step and the same noise draws.
    model = _tiny_gc(n_critic=2, critic_lr=0.0, lambda_wd=0.25)
    images = _images(8)
    model(images[:1])
    model.compile(run_eagerly=True)  # graph mode is exercised by the test above
    state = model.mapping.noise_layer._generator.state.numpy().copy()
    for _ in range(2):  # the critic steps' draws
        model.sample_noise(4)
    last = images[4:]
    terms = model.generator_losses(last, noise=model.sample_noise(4), training=True)
    expected_d = losses.euclidean_distance(last, terms["reconstructions"])
    expected_g = -tf.reduce_mean(model.critic(terms["reconstructions"]))
    model.mapping.noise_layer._generator.state.assign(state)
    logs = model.train_on_batch(images, return_dict=True)
    np.testing.assert_allclose(logs["distortion"], expected_d, rtol=1e-5)
    np.testing.assert_allclose(logs["generator_loss"], expected_g, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(logs["loss"], expected_d + 0.25 * expected_g, rtol=1e-5)
    assert abs(float(expected_g)) > 0


def test_gc_rate_and_stochastic_decoder():
    model = _tiny_gc(k=0)
    _sensitive(model.generator)
    images = _images(3)
    assert model.rate_bits == 0.0
    a, b = model.reconstruct(images).numpy(), model.reconstruct(images).numpy()
    assert np.abs(a - b).max() > 1e-5
    code = model.encode(images)
    noise = model.sample_noise(3)
    np.testing.assert_array_equal(model.decode(code, noise=noise), model.decode(code, noise=noise))
    assert _tiny_gc(k=3).rate_bits == 12.0
    with pytest.raises(ValueError, match="noise"):
        GC(
            encoder=nets.encoder_E(32, 1, width=4, channels=1),
            mapping=nets.mapping_B(32, 1, m=M, n_blocks=0, width=8, noise=False),
            generator=nets.generator_G(32, m=M, width=4, channels=1),
            critic=nets.critic_f(32, width=4, channels=1),
            quantizer=ScalarQuantizer(),
            optimizer=tf.keras.optimizers.Adam(),
            critic_optimizer=tf.keras.optimizers.Adam(),
            lambda_wd=1.0,
        )


def test_gc_critic_step_matches_numpy_with_gradient_penalty():
    # A linear critic f(x) = w . x + c: its input gradient is w everywhere, so the critic loss
    # mean f(fake) - mean f(real) + lambda_GP (||w|| - 1)^2 and its gradient are closed-form whatever nu is.
    tf.keras.utils.set_random_seed(0)
    critic = tf.keras.Sequential([tf.keras.layers.Flatten(), tf.keras.layers.Dense(1)])
    critic.build((None, 32, 32, 1))
    w0 = np.random.default_rng(1).normal(scale=0.1, size=(1024, 1)).astype(np.float32)  # ||w0|| ~ 3.2
    critic.layers[1].kernel.assign(w0)
    lr, gp_weight = 0.01, 10.0
    model = GC(
        encoder=nets.encoder_E(32, 2, width=4, channels=1),
        mapping=nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=True, seed=1),
        generator=_sensitive(nets.generator_G(32, m=M, width=4, channels=1)),
        critic=critic,
        quantizer=ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard"),
        optimizer=tf.keras.optimizers.Adam(1e-3),
        critic_optimizer=tf.keras.optimizers.SGD(lr),
        lambda_wd=1.0,
        n_critic=1,
        gp_weight=gp_weight,
    )
    real = _images(4)
    state = model.mapping.noise_layer._generator.state.numpy().copy()
    fake = model(real, training=True).numpy()  # the same noise draw as the critic step's below
    model.mapping.noise_layer._generator.state.assign(state)
    model.critic_step(real)
    norm = np.linalg.norm(w0)
    difference = fake.reshape(4, -1).mean(0) - real.numpy().reshape(4, -1).mean(0)
    grad_w = difference[:, None] + gp_weight * 2.0 * (norm - 1.0) * w0 / norm
    np.testing.assert_allclose(critic.layers[1].kernel.numpy(), w0 - lr * grad_w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.gp_tracker.result(), (norm - 1.0) ** 2, rtol=1e-4)
    np.testing.assert_allclose(
        model.critic_loss_tracker.result(), difference @ w0[:, 0], rtol=1e-3, atol=1e-6
    )


def test_gc_uses_the_configured_distortion_and_gradient_penalty():
    calls = []

    def penalty(critic, real, fake):
        calls.append(real.shape[0])
        return tf.constant(7.0)

    tf.keras.utils.set_random_seed(0)
    model = GC(
        encoder=nets.encoder_E(32, 2, width=4, channels=1),
        mapping=nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=True, seed=1),
        generator=nets.generator_G(32, m=M, width=4, channels=1),
        critic=nets.critic_f(32, width=4, channels=1),
        quantizer=ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard"),
        optimizer=tf.keras.optimizers.Adam(0.0),  # E, B, G unchanged: the distortion can be recomputed
        critic_optimizer=tf.keras.optimizers.Adam(1e-3),
        lambda_wd=0.5,
        n_critic=2,
        distortion=losses.batch_rmse_pm1,
        gradient_penalty=penalty,
    )
    images = _images(8)
    state = model.mapping.noise_layer._generator.state.numpy().copy()
    model.train_step(images)  # eagerly: the graph loop would call the Python function once
    assert calls == [4, 4]
    assert float(model.gp_tracker.result()) == pytest.approx(7.0)
    # The distortion logged is the authors'-code one of the E/B/G step's reconstructions.
    model.mapping.noise_layer._generator.state.assign(state)
    for _ in range(2):  # the critic steps' noise draws
        model.sample_noise(4)
    np.testing.assert_allclose(
        model.distortion_tracker.result(), losses.batch_rmse_pm1(images[4:], model(images[4:], training=True))
    )


# Issue 25: E and B without batch statistics, GC's lambda in its gradient, and the budget bookkeeping.


def _stage2_nets(normalization, k=2, seed=0):
    tf.keras.utils.set_random_seed(seed)
    encoder = nets.encoder_E(32, k, width=4, channels=1, normalization=normalization)
    mapping = nets.mapping_B(32, k, m=M, n_blocks=1, width=8, noise=True, seed=1, normalization=normalization)
    return encoder, mapping


@pytest.mark.parametrize("normalization", ["layer", "group", "none", "batch"])
def test_per_example_normalization_makes_e_and_b_batch_independent(normalization):
    encoder, mapping = _stage2_nets(normalization)
    images = _images(5)
    noise = mapping.noise_layer.sample(5)
    quantizer = ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard")

    def z(index, training):
        code = quantizer(encoder(images[index], training=training), training=training)
        return mapping(code, noise=noise[index], training=training).numpy()

    unquantized_gap = np.abs(
        encoder(images, training=True).numpy()[:1] - encoder(images[:1], training=True).numpy()
    ).max()
    batch_gap = np.abs(z(slice(0, 5), True)[:1] - z(slice(0, 1), True)).max()
    mode_gap = np.abs(z(slice(0, 5), True) - z(slice(0, 5), False)).max()
    if normalization == "batch":  # the paper's: an image's code and z depend on its batch, and on the mode
        assert unquantized_gap > 1e-3 and batch_gap > 1e-3 and mode_gap > 1e-3
        return
    # float32 reductions over a batch of 1 or 5 differ by rounding only (outputs are O(1)).
    assert unquantized_gap < 1e-5 and batch_gap < 1e-5 and mode_gap < 1e-5
    norms = [type(layer) for net in (encoder, mapping.trunk) for layer in net.layers]
    assert tf.keras.layers.BatchNormalization not in norms
    with pytest.raises(ValueError, match="normalization must be one of"):
        nets.encoder_E(32, 2, normalization="instance")
    with pytest.raises(ValueError, match="normalization must be one of"):
        nets.mapping_B(32, 2, m=M, n_blocks=1, normalization="BatchNorm")


def _encoder_mapping_layout(encoder, mapping, directory):
    """{checkpoint key: shape} of E and B saved as a DPLC objective's `encoder` and `mapping`."""
    holder = tf.Module()
    holder.encoder, holder.mapping = encoder, mapping
    path = tf.train.Checkpoint(model=holder).write(str(directory / "ckpt"))
    return _layout(path)


def _layout(path):
    return {
        key: tuple(shape)
        for key, shape in tf.train.list_variables(path)
        if key.startswith(("model/encoder/", "model/mapping/")) and "OPTIMIZER_SLOT" not in key
    }


def test_default_normalization_keeps_the_checkpoint_layout_of_e_and_b(tmp_path):
    # The DPLC checkpoint written by the code of commit 9a21ca5 (tests/test_checkpoint_compat.py) with
    # these nets: the default and "batch" must still build exactly its variables, names and shapes.
    stored = _layout(
        os.path.join(os.path.dirname(__file__), "data", "checkpoints_pre_issue11", "dplc", "ckpt")
    )
    assert len(stored) == 37
    default = _encoder_mapping_layout(
        nets.encoder_E(32, 2, width=4, channels=1),
        nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=True, seed=1),
        tmp_path / "default",
    )
    assert default == stored
    assert _encoder_mapping_layout(*_stage2_nets("batch"), tmp_path / "batch") == stored
    # The per-example variant has no moving statistics (and B's last layer gains a bias).
    layer = _encoder_mapping_layout(*_stage2_nets("layer"), tmp_path / "layer")
    assert not any("moving" in key for key in layer)


def test_gin_configs_of_stage2_build_batch_norm_by_default_and_layer_norm_when_deployed(tmp_path):
    import gin

    from tfdplc import train as tr

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    gin.add_config_file_search_path(root)  # the deployed config's `include` from any working directory
    nets.generator_G(32, 32, width=16, channels=1).save(str(tmp_path / "generator.keras"))
    bindings = [f"GENERATOR_PATH = '{tmp_path / 'generator.keras'}'"]
    kinds = {}
    for config in ("gin/dplc_mnist5k.gin", "gin/dplc_deployed_mnist5k.gin"):
        gin.clear_config()
        tr.config.parse_gin([os.path.join(root, config)], bindings)
        model = tr.build_objective()
        kinds[config] = {
            type(layer).__name__ for net in (model.encoder, model.mapping.trunk) for layer in net.layers
        }
    gin.clear_config()
    assert "BatchNormalization" in kinds["gin/dplc_mnist5k.gin"]
    assert "LayerNormalization" not in kinds["gin/dplc_mnist5k.gin"]
    assert "BatchNormalization" not in kinds["gin/dplc_deployed_mnist5k.gin"]
    assert "LayerNormalization" in kinds["gin/dplc_deployed_mnist5k.gin"]


def test_gc_update_of_e_b_g_follows_distortion_plus_lambda_times_the_generator_term():
    # SGD on E, B, G and a critic with learning rate 0: the step's update is -lr * (grad d + lambda grad g),
    # recomputed here term by term from the same noise draws. A lambda dropped from the loss (or from the
    # gradient only) moves the update by (1 - lambda) grad g, far outside the tolerance.
    lam, lr = 0.25, 1e-2
    tf.keras.utils.set_random_seed(0)
    model = GC(
        encoder=nets.encoder_E(32, 2, width=4, channels=1),
        mapping=nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=True, seed=1),
        generator=_sensitive(nets.generator_G(32, m=M, width=4, channels=1)),
        critic=nets.critic_f(32, width=4, channels=1),
        quantizer=ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard"),
        optimizer=tf.keras.optimizers.SGD(lr),
        critic_optimizer=tf.keras.optimizers.SGD(0.0),
        lambda_wd=lam,
        n_critic=1,
    )
    images = _images(4)
    model(images[:1])
    for layer in model.critic.layers:  # a critic whose pull is comparable to the distortion's
        if hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * 30.0)
    variables = (
        model.encoder.trainable_variables
        + model.mapping.trainable_variables
        + model.generator.trainable_variables
    )
    before = [v.numpy().copy() for v in variables]
    state = model.mapping.noise_layer._generator.state.numpy().copy()
    model.sample_noise(4)  # the critic step's draw
    noise = model.sample_noise(4)  # the E/B/G step's draw
    with tf.GradientTape(persistent=True) as tape:
        terms = model.generator_losses(images, noise=noise, training=True)
    grad_d = tape.gradient(terms["distortion"], variables)
    grad_g = tape.gradient(terms["generator_loss"], variables)
    flat = lambda gs: np.concatenate([g.numpy().ravel() for g in gs])  # noqa: E731
    grad_d, grad_g = flat(grad_d), flat(grad_g)
    for v, value in zip(variables, before):  # the tape's forward pass moved no weight, only BN statistics
        np.testing.assert_array_equal(v.numpy(), value)
    model.mapping.noise_layer._generator.state.assign(state)
    model.train_step(images)  # eagerly
    step = np.concatenate([(b - v.numpy()).ravel() for b, v in zip(before, variables)]) / lr
    expected = grad_d + lam * grad_g
    # SGD's float32 update of O(0.1) weights by lr * grad: rounding ~1e-8 / lr = 1e-6 per entry.
    tolerance = 1e-3 * np.abs(expected).max()
    np.testing.assert_allclose(step, expected, atol=tolerance)
    assert np.abs((1.0 - lam) * grad_g).max() > 20 * tolerance  # a dropped lambda would fail


def _results_dplc_script(name):
    """The module of results/dplc/NAME.py (a script folder, not a package)."""
    import importlib.util

    path = os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "dplc", f"{name}.py"
    )
    spec = importlib.util.spec_from_file_location(f"dplc_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tables():
    return _results_dplc_script("tables")


def _config(path, objective, steps, batch, extra=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"build_objective.objective = @tfdplc.objectives.{objective}\n"
        f"train.total_steps = {steps}\ninput_pipeline.batch_size = {batch}\n{extra}"
    )
    return str(path)


def test_training_budget_counts_the_images_of_generator_updates(tmp_path):
    tables = _tables()
    gc = tables.training_budget([_config(tmp_path / "gc.gin", "GC", 100, 48, "GC.n_critic = 4\n")])
    assert gc == {"objective": "GC", "steps": 100, "batch": 12, "n_critic": 4, "images": 1200}
    default = tables.training_budget([_config(tmp_path / "wpp.gin", "WassersteinPP", 10, 40)])
    assert default["n_critic"] == 5 and default["images"] == 10 * 8  # the class default n_critic
    cae = tables.training_budget([_config(tmp_path / "cae.gin", "CAE", 30, 16)], ["train.total_steps = 31"])
    assert cae["images"] == 31 * 16 and cae["n_critic"] is None
    with pytest.raises(ValueError, match="not a multiple of n_critic"):
        tables.training_budget([_config(tmp_path / "bad.gin", "GC", 10, 42)])
    # The shipped configs: GC on the W++ budget sees W++'s generator images (App. B), the old GC 3.7x fewer.
    wpp = tables.training_budget(["gin/wpp_mnist5k.gin"])["images"]
    assert wpp == 1830 * 64
    assert tables.training_budget(["gin/gc_wpp_budget_mnist5k.gin"])["images"] == wpp
    assert tables.training_budget(["gin/gc_mnist5k.gin"])["images"] == 1000 * 32


def test_record_budget_reads_each_runs_config_and_dplc_its_stage1_generator(tmp_path):
    tables = _tables()
    workdirs = tmp_path / "workdirs"
    _config(
        workdirs / "seed1" / "wpp_mnist5k" / "config.gin",
        "WassersteinPP",
        10,
        20,
        "WassersteinPP.n_critic = 5\n",
    )
    _config(workdirs / "seed1" / "dplc-wpp-k2" / "config.gin", "DPLC", 7, 6)
    dplc = {
        "method": "dplc-wpp",
        "workdir": "seed1/dplc-wpp-k2",
        "config": "gin/dplc_mnist5k.gin",
        "k": 2,
        "seed": 1,
    }
    budget = tables.record_budget(dplc, str(workdirs))
    assert budget["generator_images"] == 10 * 4  # G* of seed 1, stage 1
    assert budget["encoder_images"] == 7 * 6  # stage 2
    assert budget["budget_source"].startswith("workdir config.gin")
    # Without the workdir, the record's config (with its K) stands in, and the source says so.
    gone = tables.record_budget(dict(dplc, seed=2), str(tmp_path / "none"))
    assert gone["encoder_images"] == 3000 * 64 and gone["generator_images"] == 1830 * 64
    assert "not recorded" in gone["budget_source"]
    stage1 = {"generator": "wgan_gp", "workdir": "seed0/wgan_gp_mnist5k", "seed": 0}
    wgan = tables.record_budget(stage1, str(tmp_path / "none"))
    assert wgan["generator_images"] == 1000 * 32 and wgan["encoder_images"] is None
    gc = {
        "method": "gc",
        "workdir": "seed0/gc-k0",
        "config": "gin/gc_wpp_budget_mnist5k.gin",
        "k": 0,
        "seed": 0,
    }
    row = dict(gc, rate_bits=0.0, mse=0.07, **tables.record_budget(gc, str(tmp_path / "none")))
    table = "\n".join(tables.sweep_table([row]))
    assert "| gc | 0 | 0.0000 | 117k | 117k |" in table


def _gc_budget():
    return _results_dplc_script("gc_budget")


@pytest.mark.parametrize(
    "gc_pv, gc_fd, pv_verdict, fd_verdict",
    [(0.25, 150.0, "holds", "holds"), (0.25 - 2**-10, 150.0 + 2**-4, "fails", "fails")],
)
def test_gc_budget_verdicts_sit_at_the_planned_thresholds(gc_pv, gc_fd, pv_verdict, fd_verdict):
    # DPLC's 0-bit PV averages 0.5 over two seeds and the G*'s sample FD 100: the thresholds are PV 0.25
    # (0.5x) and FD 150 (1.5x), all exact in binary, so a GC mean on each threshold, or just past it, tells
    # >= from > and <= from <.
    gc_budget = _gc_budget()
    dplc = [{"pv": 0.25}, {"pv": 0.75}]
    gc0 = [{"pv": gc_pv - 0.125, "fd": gc_fd - 8}, {"pv": gc_pv + 0.125, "fd": gc_fd + 8}]
    gc8 = [{"pv": 0.05}, {"pv": 0.05}]  # exactly 0.1x DPLC's 0-bit PV: not "below a tenth"
    stage1 = [{"generator": "wpp", "sample_fd": 96.0}, {"generator": "wpp", "sample_fd": 104.0}]
    stage1.append({"generator": "wae", "sample_fd": 1.0})  # another G* must not enter the mean
    lines = gc_budget.claims({0: gc0, 8: gc8}, {("dplc-wpp", 0): dplc}, stage1)
    assert len(lines) == 3
    assert f"PV at 0 bits >= 0.5x DPLC-W++'s — {pv_verdict}" in lines[0]
    assert f"sample FD — {fd_verdict}" in lines[1]
    assert "PV at 8 bits is about 0" in lines[2] and "— fails" in lines[2]
    lines = gc_budget.claims({8: [{"pv": 0.05 - 2**-20}]}, {("dplc-wpp", 0): dplc}, stage1)
    assert len(lines) == 1 and "— holds" in lines[0]
