"""The perceptual decoder of Yan et al. 2021 (stage 1: E, G1 on MSE; stage 2: G2 vs. J(x, code)) and DAL."""

import json
import os

import gin
import numpy as np
import pytest
import tensorflow as tf
from inprocess_tools import load_tool
from stopped_runs import killed_after

import tfdplc
from tfdplc import data, losses, metrics, nets, plots
from tfdplc import train as tr
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import DAL, PerceptualG1, PerceptualG2
from tfdplc.objectives.perceptual import (
    DECODER_FILE,
    code_vector,
    conditional_critic,
    load_encoder,
    pretrain_critic_update,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
D = 4
WIDTH = 4


def _images(n, seed=3):
    return tf.random.stateless_uniform((n, 32, 32, 1), seed=[seed, 0])


def _snapshot(variables):
    return {v.name: v.numpy().copy() for v in variables}


def _changed(variables, before):
    return {v.name for v in variables if not np.allclose(v.numpy(), before[v.name])}


def _sensitive(model, factor=20.0):
    """Scales the kernels: with N(0, 0.02) weights a tiny network's output barely depends on its input."""
    for layer in model.submodules:
        if isinstance(layer, tf.keras.layers.Layer) and hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * factor)
    return model


def _tiny_g1(d=D, seed=0, lr=1e-3):
    tf.keras.utils.set_random_seed(seed)
    return PerceptualG1(
        encoder=_sensitive(nets.yan_encoder(d, width=WIDTH)),
        decoder=nets.yan_decoder(d, width=WIDTH),
        quantizer=ScalarQuantizer((-1.0, 1.0), gradient="straight_through"),
        optimizer=tf.keras.optimizers.RMSprop(lr),
    )


def _saved_encoder(directory, d=D, seed=0):
    """A stage-1 E with BatchNorm statistics away from their initial 0 / 1, saved as stage 1 saves it."""
    model = _tiny_g1(d, seed)
    for layer in model.encoder.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.moving_mean.assign(tf.random.normal(layer.moving_mean.shape, stddev=0.1))
            layer.moving_variance.assign(tf.random.uniform(layer.moving_variance.shape, 0.5, 1.5))
    model.save_artifacts(str(directory))
    return str(directory / "encoder.keras")


def _tiny_g2(encoder_path=None, encoder=None, d=D, pretrain_steps=0, n_critic=1, critic_lr=1e-3, seed=0):
    tf.keras.utils.set_random_seed(seed)
    return PerceptualG2(
        generator=_sensitive(nets.yan_generator(d, width=WIDTH, seed=seed + 1)),
        critic=_sensitive(nets.yan_critic(d, width=WIDTH), 5.0),
        quantizer=ScalarQuantizer((-1.0, 1.0)),
        generator_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        critic_optimizer=tf.keras.optimizers.RMSprop(critic_lr),
        encoder_path=encoder_path,
        encoder=encoder,
        n_critic=n_critic,
        pretrain_steps=pretrain_steps,
    )


def _tiny_dal(lambda_adv=5.0, n_critic=2, critic_lr=1e-3, critic=None, seed=0):
    tf.keras.utils.set_random_seed(seed)
    return DAL(
        encoder=_sensitive(nets.yan_encoder(D, width=WIDTH)),
        decoder=nets.yan_decoder(D, width=WIDTH),
        critic=critic if critic is not None else _sensitive(nets.yan_critic(1, width=WIDTH), 5.0),
        quantizer=ScalarQuantizer((-1.0, 1.0)),
        optimizer=tf.keras.optimizers.RMSprop(1e-3),
        critic_optimizer=tf.keras.optimizers.RMSprop(critic_lr),
        lambda_adv=lambda_adv,
        n_critic=n_critic,
    )


@pytest.fixture(scope="module")
def encoder_path(tmp_path_factory):
    return _saved_encoder(tmp_path_factory.mktemp("stage1"))


@pytest.fixture(autouse=True)
def _clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


# ------------------------------------------------------------------------------------------------------
# Stage 1: E and G1 on MSE (eq. 26).


def test_g1_loss_is_mse_with_a_binary_straight_through_code():
    model = _tiny_g1()
    images = _images(8)
    model(images[:1])
    model.compile()
    # Training-mode outputs depend on the weights and the batch only, so this is the step's own loss.
    expected = losses.squared_error(images, model(images, training=True))
    encoder_before = _snapshot(model.encoder.trainable_variables)
    logs = model.train_on_batch(images, return_dict=True)
    np.testing.assert_allclose(logs["mse"], expected, rtol=1e-5)
    # The straight-through gradient reaches E through the quantizer.
    assert _changed(model.encoder.trainable_variables, encoder_before)
    code = model.encode(images).numpy()
    assert code.shape == (8, D) and set(np.unique(code)) <= {-1.0, 1.0}
    assert model.rate_bits == float(D)


def test_g1_mse_goes_down_on_a_fixed_batch():
    model = _tiny_g1(lr=1e-2)
    # Four binary patterns, four copies each: learnable, unlike i.i.d. uniform pixels.
    images = tf.tile(tf.cast(_images(4) > 0.5, tf.float32), [4, 1, 1, 1])
    model(images[:1])
    model.compile()
    first = model.train_on_batch(images, return_dict=True)["mse"]
    for _ in range(20):
        last = model.train_on_batch(images, return_dict=True)["mse"]
    assert last < 0.8 * first


def test_g1_saves_encoder_and_decoder_for_stage_2(tmp_path):
    model = _tiny_g1()
    images = _images(4)
    model.save_artifacts(str(tmp_path))
    encoder = load_encoder(str(tmp_path / "encoder.keras"))
    decoder = tf.keras.models.load_model(str(tmp_path / DECODER_FILE), compile=False)
    np.testing.assert_allclose(encoder(images), model.encoder(images), atol=1e-6)
    code = model.encode(images)
    np.testing.assert_allclose(decoder(code), model.decode(code), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="perceptual_g1"):
        load_encoder(str(tmp_path / "missing.keras"))


def test_g1_rejects_mismatched_code_lengths():
    with pytest.raises(ValueError, match="yan_decoder.d"):
        PerceptualG1(
            encoder=nets.yan_encoder(3, width=WIDTH),
            decoder=nets.yan_decoder(4, width=WIDTH),
            quantizer=ScalarQuantizer(),
            optimizer=tf.keras.optimizers.RMSprop(),
        )


# ------------------------------------------------------------------------------------------------------
# Stage 2: G2 against the conditional critic, E frozen.


def test_stage2_leaves_e_unchanged_including_batchnorm_statistics(encoder_path):
    model = _tiny_g2(encoder_path, pretrain_steps=1)
    images = _images(8)
    model(images[:1])
    model.compile()  # graph mode: the tf.cond of pre-training and both branches run below
    e_before = _snapshot(model.encoder.variables)
    assert any("moving_mean" in name for name in e_before)  # BatchNorm statistics are compared too
    assert not model.encoder.trainable
    assert not {v.ref() for v in model.encoder.variables} & {v.ref() for v in model.trainable_variables}
    g2_before = _snapshot(model.generator.variables)
    critic_before = _snapshot(model.critic.trainable_variables)
    for step in range(3):
        logs = model.train_on_batch(_images(8, seed=step), return_dict=True)
        assert all(np.isfinite(v) for v in logs.values())
    for v in model.encoder.variables:
        np.testing.assert_array_equal(v.numpy(), e_before[v.name], err_msg=v.name)
    assert _changed(model.critic.trainable_variables, critic_before)
    assert _changed(model.generator.trainable_variables, g2_before)
    # G2's own BatchNorm statistics do move (it is trained in training mode): "unchanged" is not vacuous.
    assert _changed([v for v in model.generator.variables if "moving" in v.name], g2_before)
    # encode() is E in inference mode followed by the quantizer.
    expected = ScalarQuantizer()(model.encoder(images, training=False))
    np.testing.assert_array_equal(model.encode(images), expected)


def test_stage2_critic_is_conditioned_on_the_code(encoder_path):
    model = _tiny_g2(encoder_path)
    images = _images(6)
    code = model.encode(images)
    scores = model.critic([images, code]).numpy()
    flipped = model.critic([images, -code]).numpy()
    assert np.abs(scores - flipped).max() > 1e-6
    wrapped = conditional_critic(model.critic, code)
    np.testing.assert_array_equal(wrapped(images), scores)
    assert wrapped.trainable_variables == model.critic.trainable_variables


def test_stage2_output_changes_with_the_noise(encoder_path):
    model = _tiny_g2(encoder_path)
    code = model.encode(_images(3))
    noise = model.sample_noise(3)
    assert noise.shape == (3, 100 - D)
    a, b = model.decode(code, noise=noise).numpy(), model.decode(code, noise=noise).numpy()
    np.testing.assert_array_equal(a, b)
    other = model.decode(code, noise=model.sample_noise(3)).numpy()
    assert np.abs(a - other).max() > 1e-4
    first, second = model.reconstruct(_images(3)).numpy(), model.reconstruct(_images(3)).numpy()
    assert first.shape == (3, 32, 32, 1) and np.abs(first - second).max() > 1e-4
    assert model.rate_bits == float(D)


def test_realism_slider_blends_the_mse_and_perceptual_decoders(encoder_path):
    model = _tiny_g2(encoder_path)  # G1 comes from decoder.keras beside encoder.keras (the default path)
    seeds = tf.constant([5, 6, 7], tf.int64)
    codes = model.encode_codes(_images(3), seeds)
    g1 = tf.keras.models.load_model(os.path.join(os.path.dirname(encoder_path), DECODER_FILE), compile=False)
    mse_decode = g1(model.quantizer.dequantize(code_vector(codes))).numpy()
    perceptual = model.decode_codes(codes, seeds).numpy()
    assert np.abs(mse_decode - perceptual).min() > 1e-4  # the two decoders differ at every pixel
    np.testing.assert_array_equal(model.decode_codes_realism(codes, seeds, 0.0), mse_decode)
    np.testing.assert_array_equal(model.decode_codes_realism(codes, seeds, 1), perceptual)
    blend = model.decode_codes_realism(codes, seeds, tf.constant(0.25, tf.float64))
    np.testing.assert_allclose(blend, 0.75 * mse_decode + 0.25 * perceptual, atol=1e-6)
    for bad in (-0.1, 1.5, float("nan"), "0.5", True, None):
        with pytest.raises(ValueError, match="realism"):
            model.decode_codes_realism(codes, seeds, bad)
    for bad in (1.5, -1e-3, float("nan")):
        with pytest.raises(tf.errors.InvalidArgumentError, match="realism"):
            model.decode_codes_realism(codes, seeds, tf.constant(bad))
    with pytest.raises(ValueError, match="scalar"):
        model.decode_codes_realism(codes, seeds, tf.constant([0.5, 0.5]))
    # Without a stage-1 path there is no G1 to blend with; a G1 of another code length is refused.
    with pytest.raises(ValueError, match="mse_decoder_path"):
        _tiny_g2(encoder=load_encoder(encoder_path)).decode_codes_realism(codes, seeds, 0.5)
    other = _tiny_g1(d=D + 1)
    other.decoder.save(os.path.join(os.path.dirname(encoder_path), "other_decoder.keras"))
    wrong = PerceptualG2(
        generator=nets.yan_generator(D, width=WIDTH),
        critic=nets.yan_critic(D, width=WIDTH),
        quantizer=ScalarQuantizer((-1.0, 1.0)),
        generator_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        critic_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        encoder_path=encoder_path,
        mse_decoder_path=os.path.join(os.path.dirname(encoder_path), "other_decoder.keras"),
    )
    with pytest.raises(ValueError, match="d=5"):
        wrong.decode_codes_realism(codes, seeds, 0.5)


def test_stage2_generator_loss_is_the_critic_on_fakes_without_distortion(encoder_path):
    # Critic learning rate 0: its update leaves J unchanged, so G2's loss can be recomputed from the same
    # weights and noise draws. The first draw of the step feeds the critic update, the second G2's update.
    model = _tiny_g2(encoder_path, critic_lr=0.0)
    images = _images(8)
    model(images[:1])
    model.compile(run_eagerly=True)
    state = model.generator.noise_layer._generator.state.numpy().copy()
    model.sample_noise(8)
    code = model.encode(images)
    fakes = model.generator(code, noise=model.sample_noise(8), training=True)
    expected = -tf.reduce_mean(model.critic([fakes, code]))
    model.generator.noise_layer._generator.state.assign(state)
    logs = model.train_on_batch(images, return_dict=True)
    np.testing.assert_allclose(logs["generator_loss"], expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(logs["mse"], losses.squared_error(images, fakes), rtol=1e-5)
    assert abs(float(expected)) > 1e-3


@pytest.mark.parametrize("pretrain_steps", [0, 1])
def test_stage2_each_update_gets_the_code_of_its_own_mini_batch(encoder_path, pretrain_steps):
    # E runs once per step on all n_critic mini-batches; critic update t must still see the codes of
    # mini-batch t, and G2's update (and the pre-training MSE) those of the last one.
    model = _tiny_g2(encoder_path, n_critic=3, pretrain_steps=pretrain_steps)
    images = _images(12)
    model(images[:1])
    model.compile(run_eagerly=True)  # eager: tf.while_loop runs the body in Python, so the spies see it
    seen = []
    critic_iteration, decode = model._critic_iteration, model.decode
    model._critic_iteration = lambda real, code, pretraining: (
        seen.append(("critic", real, code)),
        critic_iteration(real, code, pretraining),
    )
    model.decode = lambda code, noise=None, training=False: (
        seen.append(("decode", None, code)),
        decode(code, noise=noise, training=training),
    )[1]
    model.train_on_batch(images, return_dict=True)
    critic = [(real, code) for kind, real, code in seen if kind == "critic"]
    assert len(critic) == 3
    for t, (real, code) in enumerate(critic):
        np.testing.assert_array_equal(real, images[4 * t : 4 * (t + 1)])
        np.testing.assert_array_equal(code, model.encode(images[4 * t : 4 * (t + 1)]))
    last = model.encode(images[8:])
    assert not np.array_equal(last, model.encode(images[:4]))  # the mini-batches' codes differ
    final = [code for kind, _, code in seen if kind == "decode"][-1]  # G2's update / the pre-training MSE
    np.testing.assert_array_equal(final, last)


def test_stage2_pretraining_trains_only_the_critic_first(encoder_path):
    model = _tiny_g2(encoder_path, pretrain_steps=2, n_critic=2)
    model(_images(1))
    model.compile(
        run_eagerly=True
    )  # graph mode: test_stage2_leaves_e_unchanged_including_batchnorm_statistics
    g2_before = _snapshot(model.generator.variables)
    for step in range(2):
        assert bool(model.in_pretraining())
        logs = model.train_on_batch(_images(8, seed=step), return_dict=True)
        assert np.isfinite(logs["pretrain_critic_loss"]) and logs["pretrain_critic_loss"] != 0
        assert 0 < logs["mse"] < 1  # the untrained G2's MSE, so the per-epoch curve stays defined
    assert int(model.optimizer_critic.iterations) == 2 * 2
    assert int(model.optimizer_generator.iterations) == 0
    assert not _changed(model.generator.variables, g2_before)
    assert not bool(model.in_pretraining())
    model.train_on_batch(_images(8, seed=5), return_dict=True)
    assert int(model.optimizer_critic.iterations) == 3 * 2
    assert int(model.optimizer_generator.iterations) == 1
    assert _changed(model.generator.trainable_variables, g2_before)


def test_pretraining_teaches_the_critic_to_prefer_matched_codes():
    tf.keras.utils.set_random_seed(0)
    critic = _sensitive(nets.yan_critic(D, width=WIDTH), factor=5.0)
    optimizer = tf.keras.optimizers.RMSprop(1e-2)
    # Images that depend on their codes, so a critic can tell matched pairs from shuffled ones.
    code = tf.sign(tf.random.stateless_normal((16, D), seed=[1, 2]))
    basis = tf.random.stateless_normal((D, 32, 32, 1), seed=[3, 4])
    images = tf.sigmoid(tf.einsum("bd,dhwc->bhwc", code, basis))
    permutation = tf.roll(tf.range(16), 1, axis=0)  # every pair mismatched

    def gap():
        mismatched = critic([images, tf.gather(code, permutation)])
        return float(tf.reduce_mean(critic([images, code])) - tf.reduce_mean(mismatched))

    start = gap()
    for _ in range(20):
        pretrain_critic_update(critic, optimizer, images, code, 10.0, lambda x: x, permutation=permutation)
    assert abs(start) < 0.01 and gap() > 0.1


def test_pretrain_loss_and_per_sample_image_gradient_penalty():
    # J(x, c) = <w, x> + <v, c>: its image gradient is w for every code, so the penalty is (||w|| - 1)^2.
    images_in = tf.keras.Input((32, 32, 1))
    code_in = tf.keras.Input((D,))
    image_dense = tf.keras.layers.Dense(1)
    score = tf.keras.layers.Add()(
        [image_dense(tf.keras.layers.Flatten()(images_in)), tf.keras.layers.Dense(1)(code_in)]
    )
    critic = tf.keras.Model([images_in, code_in], score)
    images = _images(6)
    code = tf.sign(tf.random.stateless_normal((6, D), seed=[4, 5]))
    permutation = tf.constant([1, 2, 3, 4, 5, 0])
    w = image_dense.kernel.numpy()
    expected_penalty = (np.linalg.norm(w) - 1.0) ** 2
    expected_w = np.mean(critic([images, code])) - np.mean(critic([images, tf.gather(code, permutation)]))
    loss, wasserstein, penalty = pretrain_critic_update(
        critic, tf.keras.optimizers.SGD(0.0), images, code, 10.0, lambda x: x, permutation=permutation
    )
    np.testing.assert_allclose(penalty, expected_penalty, rtol=1e-4)
    np.testing.assert_allclose(wasserstein, expected_w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(loss, -expected_w + 10.0 * expected_penalty, rtol=1e-4)


def test_stage2_validates_its_networks(encoder_path, tmp_path):
    encoder = load_encoder(encoder_path)
    common = dict(
        quantizer=ScalarQuantizer(),
        generator_optimizer=tf.keras.optimizers.RMSprop(),
        critic_optimizer=tf.keras.optimizers.RMSprop(),
    )
    good = dict(generator=nets.yan_generator(D, width=WIDTH), critic=nets.yan_critic(D, width=WIDTH))
    with pytest.raises(ValueError, match="exactly one"):
        PerceptualG2(**good, **common)
    with pytest.raises(ValueError, match="exactly one"):
        PerceptualG2(**good, **common, encoder=encoder, encoder_path=encoder_path)
    # From a path, E is loaded at the first use: the objective builds before stage 1 has run.
    lazy = PerceptualG2(**good, **common, encoder_path=str(tmp_path / "none.keras"))
    assert lazy.encoder is None and lazy.rate_bits == float(D)
    with pytest.raises(FileNotFoundError, match="encoder.keras"):
        lazy(_images(1))
    mismatched = PerceptualG2(
        generator=nets.yan_generator(3, width=WIDTH),
        critic=nets.yan_critic(3, width=WIDTH),
        encoder_path=encoder_path,
        **common,
    )
    with pytest.raises(ValueError, match="stage-1 E emits d=4"):
        mismatched.encode(_images(1))
    with pytest.raises(ValueError, match="stage-1 E emits d=4"):
        PerceptualG2(
            generator=nets.yan_generator(3, width=WIDTH), critic=good["critic"], encoder=encoder, **common
        )
    with pytest.raises(ValueError, match="yan_critic.d = 4"):
        PerceptualG2(
            generator=good["generator"], critic=nets.yan_critic(2, width=WIDTH), encoder=encoder, **common
        )
    with pytest.raises(ValueError, match="noise"):
        PerceptualG2(
            generator=nets.yan_decoder(D, width=WIDTH), critic=good["critic"], encoder=encoder, **common
        )
    with pytest.raises(ValueError, match="pretrain_steps"):
        PerceptualG2(**good, **common, encoder=encoder, pretrain_steps=-1)
    with pytest.raises(ValueError, match="n_critic"):
        PerceptualG2(**good, **common, encoder=encoder, n_critic=0)


# ------------------------------------------------------------------------------------------------------
# DAL: E and G on MSE + lambda * adversarial.


def test_dal_loss_is_mse_plus_lambda_adversarial():
    # Critic learning rate 0: J is unchanged by its updates; the E/G step uses the last mini-batch.
    model = _tiny_dal(lambda_adv=5.0, n_critic=2, critic_lr=0.0)
    images = _images(8)
    model(images[:1])
    model.compile(run_eagerly=True)
    last = images[4:]
    reconstructions = model(last, training=True)
    expected_mse = losses.squared_error(last, reconstructions)
    zero_code = tf.zeros((4, 1))
    expected_adv = -tf.reduce_mean(model.critic([reconstructions, zero_code]))
    logs = model.train_on_batch(images, return_dict=True)
    np.testing.assert_allclose(logs["mse"], expected_mse, rtol=1e-5)
    np.testing.assert_allclose(logs["generator_loss"], expected_adv, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(logs["loss"], expected_mse + 5.0 * expected_adv, rtol=1e-4)
    assert abs(float(expected_adv)) > 1e-3  # the adversarial term contributes


def test_dal_trains_e_g_and_critic_with_n_critic_updates():
    model = _tiny_dal(n_critic=2)
    model(_images(1))
    model.compile()
    before = _snapshot(model.trainable_variables)
    for step in range(2):
        logs = model.train_on_batch(_images(8, seed=step), return_dict=True)
        assert all(np.isfinite(v) for v in logs.values())
    assert int(model.optimizer_critic.iterations) == 2 * 2
    assert int(model.optimizer_ae.iterations) == 2
    for net in (model.encoder, model.decoder, model.critic):
        assert _changed(net.trainable_variables, before), net.name
    assert model.rate_bits == float(D)
    code = model.encode(_images(3))
    np.testing.assert_array_equal(model.decode(code), model.decode(code))  # deterministic decoder


def test_dal_accepts_a_one_input_critic_and_validates():
    images_in = tf.keras.Input((32, 32, 1))
    one_input = tf.keras.Model(images_in, tf.keras.layers.Dense(1)(tf.keras.layers.Flatten()(images_in)))
    model = _tiny_dal(critic=one_input, n_critic=1)
    model(_images(1))
    model.compile(run_eagerly=True)
    assert np.isfinite(model.train_on_batch(_images(4), return_dict=True)["loss"])
    with pytest.raises(ValueError, match="yan_critic"):
        _tiny_dal(critic=nets.yan_critic(0, width=WIDTH))
    with pytest.raises(ValueError, match="lambda_adv"):
        _tiny_dal(lambda_adv=-1.0)
    with pytest.raises(ValueError, match="yan_decoder.d"):
        DAL(
            encoder=nets.yan_encoder(3, width=WIDTH),
            decoder=nets.yan_decoder(4, width=WIDTH),
            critic=nets.yan_critic(1, width=WIDTH),
            quantizer=ScalarQuantizer(),
            optimizer=tf.keras.optimizers.RMSprop(),
            critic_optimizer=tf.keras.optimizers.RMSprop(),
            lambda_adv=1.0,
        )


# ------------------------------------------------------------------------------------------------------
# Configs: the paper-scale ones build; the CPU-scale ones train end to end (tiny bindings).

TINY = [
    "K = 2",
    "input_pipeline.batch_size = 8",
    "train.total_steps = 2",
    "train.steps_per_epoch = 1",
    "train.eval_steps = 1",
    "train.num_grid_images = 2",
    "train.verbose = 0",
]


@pytest.mark.parametrize("scale", ["mnist", "mnist5k"])
def test_configs_build_their_objectives(scale, tmp_path):
    encoder = nets.yan_encoder(4, width=64)
    encoder.save(str(tmp_path / "encoder.keras"))
    for name, cls in (("perceptual_g1", PerceptualG1), ("perceptual_g2", PerceptualG2), ("dal", DAL)):
        gin.clear_config()
        bindings = [f"ENCODER_PATH = '{tmp_path / 'encoder.keras'}'"] if name == "perceptual_g2" else []
        tr.config.parse_gin([f"{ROOT}/gin/{name}_{scale}.gin"], bindings)
        model = tr.build_objective()
        assert isinstance(model, cls) and model.rate_bits == 4.0
        assert gin.query_parameter("input_pipeline.name") == scale


def test_mnist5k_stages_train_restore_and_log_epoch_curves(tmp_path, mnist5k_dir):
    """Stage 1 then stage 2 from the configs (tiny), as tools/sweep.py chains them, and what evaluate uses."""
    tr.config.parse_gin([f"{ROOT}/gin/perceptual_g1_mnist5k.gin"], TINY + ["WIDTH = 4"])
    g1_history = tr.train(str(tmp_path / "g1"), mnist5k_dir)
    assert (tmp_path / "g1" / "encoder.keras").exists() and (tmp_path / "g1" / DECODER_FILE).exists()
    gin.clear_config()
    g2_bindings = TINY + [
        f"ENCODER_PATH = '{tmp_path / 'g1' / 'encoder.keras'}'",
        "yan_generator.width = 4",
        "yan_critic.width = 4",
        "PerceptualG2.pretrain_pairs = 8",  # the config's budget in pairs: one step of batch 8
    ]
    tr.config.parse_gin([f"{ROOT}/gin/perceptual_g2_mnist5k.gin"], g2_bindings)
    g2_history = tr.train(str(tmp_path / "g2"), mnist5k_dir)
    # Epoch curves as tools/sweep.py --epoch_curves=mse reads them from the TensorBoard logs.
    for name, history in (("g1", g1_history), ("g2", g2_history)):
        curve = plots.read_epoch_curve(str(tmp_path / name / "logs" / "validation"), "mse")
        np.testing.assert_allclose(curve, history["val_mse"], rtol=1e-6)
        assert len(curve) == 2 and all(0 < v < 1 for v in curve)
    with pytest.raises(ValueError, match="epoch_mse"):
        plots.read_epoch_curve(str(tmp_path / "g1" / "logs" / "validation"), "no_such_metric")
    # Killed after step 1 (the run above's ckpt-1 is a 1-step run's, tests/stopped_runs.py) and resumed,
    # G2's noise generator continues the stream of the run above: the epoch-end grid draws from it before
    # the checkpoint is saved, not after (then lost on a resume).
    killed_after(tmp_path / "g2", 1, copy_to=tmp_path / "g2_resumed")
    tr.train(str(tmp_path / "g2_resumed"), mnist5k_dir)
    state = "model/generator/noise_layer/_generator/_state_var/.ATTRIBUTES/VARIABLE_VALUE"
    once, resumed = (
        tf.train.load_checkpoint(str(tmp_path / name / "checkpoints" / "ckpt-2")).get_tensor(state)
        for name in ("g2", "g2_resumed")
    )
    np.testing.assert_array_equal(resumed, once)
    # Restored as tools/evaluate.py restores them, with what it computes.
    images = _images(4)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(2)
    restored = {}
    for name, cls in (("g1", PerceptualG1), ("g2", PerceptualG2)):
        tr.load_workdir_config(str(tmp_path / name))
        restored[name] = model = tr.restore_objective(str(tmp_path / name), images)
        assert isinstance(model, cls) and model.rate_bits == 2.0
        record = metrics.reconstruction_metrics(model, dataset)
        assert record["num_images"] == 4 and 0 < record["mse"] < 1
    assert metrics.objective_pixel_variance(restored["g1"], images, None, num_decodes=2) == 0.0
    assert metrics.objective_pixel_variance(restored["g2"], images, None, num_decodes=2) > 0.0
    # Stage 2 holds the stage-1 E's weights.
    g1_encoder = load_encoder(str(tmp_path / "g1" / "encoder.keras"))
    for a, b in zip(restored["g2"].encoder.variables, g1_encoder.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # tools/evaluate.py --realism end to end (tfdplc.metrics.realism_curve, tested on a noise-sensitive G2 in
    # test_perceptual_slider): checked against G1 and G2 run here and blended in NumPy.
    # G1's kernels scaled up first: after 2 steps G1 and G2 both decode to about 0.5 everywhere.
    g1_file = str(tmp_path / "g1" / DECODER_FILE)
    g1_decoder = _sensitive(tf.keras.models.load_model(g1_file, compile=False))
    g1_decoder.save(g1_file)
    evaluate = load_tool("evaluate")
    output = tmp_path / "slider.json"
    try:
        evaluate.FLAGS(
            [
                "evaluate.py",
                f"--workdir={tmp_path / 'g2'}",
                f"--data_dir={mnist5k_dir}",
                "--realism=0,0.5,1",
                f"--output={output}",
                "--pv_codes=8",
                "--pv_decodes=3",
            ]
        )
        assert evaluate.main([]) == 0
        evaluate.FLAGS.realism = ["0.5", "1.5"]
        assert evaluate.main([]) == 2  # a weight outside [0, 1], refused before anything is read
        evaluate.FLAGS.realism = ["0"]
        evaluate.FLAGS.workdir = [str(tmp_path / "g1")]
        assert evaluate.main([]) == 2  # stage 1 has no perceptual decoder to blend
    finally:
        evaluate.FLAGS.unparse_flags()
    records = json.loads(output.read_text())
    assert [r["realism"] for r in records] == [0.0, 0.5, 1.0]
    split = data.load_images("mnist5k", "test", data_dir=mnist5k_dir, resolution=32)
    test_images = np.stack(list(split.as_numpy_iterator()))
    g2_model = restored["g2"]
    code = g2_model.encode(test_images)
    g1_out = g1_decoder(code, training=False).numpy()
    g2_out = g2_model.decode(
        code, noise=g2_model.codec_noise(tf.range(len(test_images), dtype=tf.int64))
    ).numpy()
    assert np.abs(g1_out - g2_out).mean() > 0.01
    for record, alpha in zip(records, (0.0, 0.5, 1.0)):
        blend = (1 - alpha) * g1_out + alpha * g2_out
        np.testing.assert_allclose(record["mse"], np.mean((test_images - blend) ** 2), rtol=1e-4)
        assert record["rate_bits"] == 2.0 and np.isfinite(record["fd"])
    assert records[0]["pv"] == 0.0 and records[2]["pv"] > records[1]["pv"] > 0.0
    assert (tmp_path / "g2" / "reconstructions_realism.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "g2" / "metrics.json").exists()  # the standard record is left alone


# ------------------------------------------------------------------------------------------------------
# The Yan et al. figures (tfdplc.plots) and tools/sweep.py --perceptual.


def _records(tmp_path):
    """Records as tools/sweep.py writes them: G1 / G2 at three rates, DAL at 4 bits, with their grids."""
    records = []
    for method, rates in (("g1", (2, 4, 8)), ("g2", (2, 4, 8)), ("dal-1", (4,))):
        for rate in rates:
            workdir = tmp_path / f"{method}-k{rate}"
            workdir.mkdir()
            originals = np.full((3, 32, 32, 1), 0.2, np.float32)
            grid = tfdplc.train.image_grid([originals, originals + 0.01 * rate])
            tf.io.write_file(
                str(workdir / "reconstructions.png"),
                tf.io.encode_png(tf.cast(tf.round(grid * 255), tf.uint8)),
            )
            mse = 0.1 / rate * (2 if method == "g2" else 1)
            records.append(
                {
                    "method": method,
                    "rate_bits": float(rate),
                    "bpp": rate / 1024,
                    "mse": mse,
                    "fd": 10.0 / rate,
                    "kd": 0.1 / rate,
                    "workdir": str(workdir),
                    "epoch_curves": {"validation_mse": [3 * mse, 2 * mse, mse]},
                }
            )
    return records


def test_perceptual_plots_from_records(tmp_path):
    records = _records(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    paths = [
        plots.perceptual_rate_plot(records, str(out / "rate.png")),
        plots.epoch_curve_plot(records, str(out / "epochs.png")),
        plots.reconstruction_grid(records, str(out / "grid.png"), ["g1", "g2", "dal-1"]),
        plots.comparison_plot(records, str(out / "compare.png"), 4.0),
    ]
    for path in paths:
        assert path and open(path, "rb").read(4) == b"\x89PNG"
    originals, reconstructions = plots._grid_halves(str(tmp_path / "g1-k8" / "reconstructions.png"))
    assert originals.shape == reconstructions.shape == (34, 3 * 34)
    np.testing.assert_allclose(reconstructions[5, 5] - originals[5, 5], 0.08, atol=1 / 255)
    assert plots.perceptual_rate_plot(records, str(out / "x.png"), g1="none", g2="none") is None
    assert plots.epoch_curve_plot([{"method": "g1", "rate_bits": 2.0}], str(out / "x.png")) is None
    assert plots.comparison_plot(records, str(out / "x.png"), 2.0, metrics=("psnr",)) is None


def test_sweep_perceptual_plot_only(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(json.dumps(_records(tmp_path)))
    sweep = load_tool("sweep")  # in this process: its plots need no training
    try:
        sweep.FLAGS(
            [
                "sweep.py",
                "--methods=g1:gin/perceptual_g1_mnist5k.gin",
                f"--output={out}",
                "--plot_only",
                "--perceptual=g1,g2",
            ]
        )
        assert sweep.main([]) == 0
    finally:
        sweep.FLAGS.unparse_flags()
    for name in (
        "perceptual_rate_mse.png",
        "epoch_mse.png",
        "reconstructions.png",
        "rate_kd.png",
        "compare_k4.png",
    ):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    assert not (out / "compare_k2.png").exists()  # only G1 and G2 at 2 bits
