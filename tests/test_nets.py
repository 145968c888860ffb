"""Tests of the networks of the three papers (tfdplc.nets), at CPU scale (width 8, tiny m)."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from tfdplc import nets
from tfdplc.layers.noise import NoiseInput, WithNoiseInput

WIDTH = 8
M = 16  # divisible by the code map's h*w at both resolutions (16 and 4)
BATCH = 3


@pytest.fixture(autouse=True)
def _seed():
    tf.keras.utils.set_random_seed(0)


def _images(resolution, channels=3, batch=BATCH):
    return tf.random.uniform((batch, resolution, resolution, channels))


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, tf.keras.Model):
            yield from _all_layers(layer)


def _filters(model, layer_type):
    return [layer.filters for layer in _all_layers(model) if type(layer) is layer_type]


def _has_batch_norm(model):
    return any(isinstance(layer, tf.keras.layers.BatchNormalization) for layer in _all_layers(model))


# ------------------------------------------------------------------------------------------- DPLC (dcgan)


@pytest.mark.parametrize("resolution", [32, 64])
def test_encoder_F_maps_images_to_m(resolution):
    model = nets.encoder_F(resolution, M, width=WIDTH)
    assert model(_images(resolution)).shape == (BATCH, M)
    assert _filters(model, tf.keras.layers.Conv2D) == [8, 16, 32, 64]  # 64-128-256-512 scaled by 8/64
    assert isinstance(model.layers[-1], tf.keras.layers.BatchNormalization)  # fc-m, bn


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_generator_G_outputs_images_in_unit_range(resolution, channels):
    model = nets.generator_G(resolution, M, width=WIDTH, channels=channels)
    images = model(5.0 * tf.random.normal((BATCH, M))).numpy()
    assert images.shape == (BATCH, resolution, resolution, channels)
    assert images.min() >= 0.0 and images.max() <= 1.0
    # t4s2b-512, -256, -128, -64, -64 scaled; resolution 32 drops the last upsampling stage.
    expected = [64, 32, 16, 8, 8] if resolution == 64 else [64, 32, 16, 8]
    assert _filters(model, tf.keras.layers.Conv2DTranspose) == expected


@pytest.mark.parametrize("resolution", [32, 64])
def test_critic_f_scores_without_batch_norm(resolution):
    model = nets.critic_f(resolution, width=WIDTH)
    assert model(_images(resolution)).shape == (BATCH, 1)
    assert not _has_batch_norm(model)
    assert any(isinstance(layer, tf.keras.layers.LayerNormalization) for layer in model.layers)
    expected = [8, 8, 16, 32, 64] if resolution == 64 else [8, 16, 32, 64]
    assert _filters(model, tf.keras.layers.Conv2D) == expected


def test_critic_f_scores_each_example_independently():
    # What the gradient penalty relies on: one example's score does not depend on the rest of the batch.
    model = nets.critic_f(32, width=WIDTH)
    images = _images(32, batch=4)
    np.testing.assert_allclose(model(images)[:1], model(images[:1]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("resolution, side", [(32, 2), (64, 4)])
@pytest.mark.parametrize("k", [0, 3])
def test_encoder_E_code_map_shape(resolution, side, k):
    model = nets.encoder_E(resolution, k, width=WIDTH, channels=1)
    code = model(_images(resolution, channels=1))
    assert code.shape == (BATCH, side, side, k)
    assert model.output_shape == (None, side, side, k)
    if k == 0:
        assert not model.weights  # nothing to learn at rate 0
    else:
        assert _filters(model, tf.keras.layers.Conv2D) == [8, 16, 32, 64, k]


@pytest.mark.parametrize("resolution, side", [(32, 2), (64, 4)])
@pytest.mark.parametrize("k", [0, 2])
def test_mapping_B_with_noise(resolution, side, k):
    model = nets.mapping_B(resolution, k, M, n_blocks=2, width=16, seed=1)
    assert isinstance(model, WithNoiseInput)
    code = tf.sign(tf.random.normal((BATCH, side, side, k)))
    first, second = model(code), model(code)
    assert first.shape == (BATCH, M)
    assert model.output_shape == (None, M)
    assert not np.allclose(first, second)  # stochastic: fresh noise per call
    noise = tf.random.uniform((BATCH, M))
    np.testing.assert_allclose(model(code, noise=noise), model(code, noise=noise), rtol=1e-6)
    assert not np.allclose(model(code, noise=noise), model(code, noise=1.0 - noise))
    # c3s1 then two residual blocks of two convs each, all with `width` filters.
    assert _filters(model, tf.keras.layers.Conv2D) == [16] * 5
    assert sum(isinstance(layer, tf.keras.layers.Add) for layer in _all_layers(model)) == 2


def test_mapping_B_runs_in_xla_compiled_functions():
    model = nets.mapping_B(32, 2, M, 1, width=16, seed=4)
    run = tf.function(lambda code: model(code, training=False), jit_compile=True)
    code = tf.ones((2, 2, 2, 2))
    first, second = run(code), run(code)
    assert first.shape == (2, M)
    assert not np.allclose(first, second)


def test_mapping_B_noise_seed_makes_decodes_reproducible():
    code = tf.ones((2, 4, 4, 2))
    first = nets.mapping_B(64, 2, M, 1, width=16, seed=7)
    tf.keras.utils.set_random_seed(0)
    second = nets.mapping_B(64, 2, M, 1, width=16, seed=7)
    second.set_weights(first.get_weights())
    np.testing.assert_allclose(first(code), second(code), rtol=1e-6)


@pytest.mark.parametrize("resolution, side", [(32, 2), (64, 4)])
def test_mapping_B_without_noise_is_deterministic(resolution, side):
    model = nets.mapping_B(resolution, 2, M, n_blocks=1, width=16, noise=False)
    assert not any(isinstance(layer, NoiseInput) for layer in _all_layers(model))
    code = tf.sign(tf.random.normal((BATCH, side, side, 2)))
    np.testing.assert_array_equal(model(code), model(code))
    assert model.output_shape == (None, M)


def test_deterministic_mapping_at_rate_zero_is_a_learned_constant():
    model = nets.mapping_B(64, 0, M, 1, noise=False)
    z = model(tf.zeros((3, 4, 4, 0)))
    assert z.shape == (3, M)
    assert len(model.trainable_variables) == 1
    np.testing.assert_array_equal(z[0], z[2])


def test_dplc_constructors_reject_bad_arguments():
    with pytest.raises(ValueError, match="resolution"):
        nets.encoder_F(128, M)
    with pytest.raises(ValueError, match="channels"):
        nets.generator_G(64, M, channels=2)
    with pytest.raises(ValueError, match="k must be"):
        nets.encoder_E(64, -1)
    with pytest.raises(ValueError, match="divisible"):
        nets.mapping_B(64, 2, 10, 1)
    with pytest.raises(ValueError, match="width"):
        nets.critic_f(64, width=0)


def test_dplc_pipeline_is_trainable_end_to_end():
    encoder = nets.encoder_E(32, 2, width=WIDTH)
    mapping = nets.mapping_B(32, 2, M, 1, width=16, seed=0)
    generator = nets.generator_G(32, M, width=WIDTH)
    images = _images(32)
    variables = encoder.trainable_variables + mapping.trainable_variables + generator.trainable_variables
    optimizer = tf.keras.optimizers.Adam(1e-2)

    def step():
        with tf.GradientTape() as tape:
            noise = tf.zeros((BATCH, M))  # fixed noise: the loss is a deterministic function of the weights
            loss = tf.reduce_mean(
                tf.square(generator(mapping(encoder(images), noise=noise), training=True) - images)
            )
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss, gradients

    loss, gradients = step()
    assert all(g is not None and np.all(np.isfinite(g)) for g in gradients)
    losses = [float(loss)] + [float(step()[0]) for _ in range(5)]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("file_name", ["saved_model", "mapping.keras"])
def test_mapping_B_saves_and_reloads(tmp_path, file_name):
    model = nets.mapping_B(64, 2, M, 0, width=16, seed=3)
    code = tf.ones((2, 4, 4, 2))
    model(code)
    path = str(tmp_path / file_name)
    model.save(path)
    reloaded = tf.keras.models.load_model(path)
    noise = tf.random.uniform((2, M))
    np.testing.assert_allclose(reloaded(code, noise=noise), model(code, noise=noise), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reloaded(code), model(code), rtol=1e-5, atol=1e-6)  # generator state saved


def test_generator_G_saves_and_reloads_in_keras_format(tmp_path):
    model = nets.generator_G(32, M, width=WIDTH)
    path = str(tmp_path / "g.keras")
    model.save(path)
    z = tf.random.normal((2, M))
    np.testing.assert_allclose(tf.keras.models.load_model(path)(z), model(z), rtol=1e-5, atol=1e-6)


def test_constructors_are_gin_configurable():
    try:
        gin.parse_config(["tfdplc.nets.mapping_B.width = 8", "tfdplc.nets.liu_critic.width = 4"])
        assert _filters(nets.mapping_B(64, 1, M, 0), tf.keras.layers.Conv2D) == [8]
        assert _filters(nets.liu_critic(), tf.keras.layers.Conv2D) == [4, 8, 16]
    finally:
        gin.clear_config()


# -------------------------------------------------------------------------------------------- Liu et al.

LIU_SHAPES = {"super_resolution": (28, 28, 1), "denoising": (32, 32, 3)}


@pytest.mark.parametrize("task", ["super_resolution", "denoising"])
def test_liu_networks_shapes_and_ranges(task):
    shape = LIU_SHAPES[task]
    images = tf.random.uniform((BATCH,) + shape)
    code = nets.liu_encoder(4, task)(images).numpy()
    assert code.shape == (BATCH, 4)
    assert np.all(np.abs(code) < 1.0)  # tanh, before the quantizer
    for decoder in (nets.liu_decoder(4, task), nets.liu_two_branch_decoder(4, task, name="decoder_2")):
        outputs = decoder(code).numpy()
        assert outputs.shape == (BATCH,) + shape
        assert outputs.min() >= 0.0 and outputs.max() <= 1.0
    critic = nets.liu_critic(task)
    assert critic(images).shape == (BATCH, 1)
    assert not _has_batch_norm(critic)
    assert _filters(critic, tf.keras.layers.Conv2D) == [64, 128, 256]


@pytest.mark.parametrize("task, widths", [("super_resolution", [32, 64]), ("denoising", [64, 128, 256])])
def test_liu_encoder_widths_follow_the_reference(task, widths):
    assert _filters(nets.liu_encoder(2, task), tf.keras.layers.Conv2D) == widths


def _layer_before_output(model):
    return model.layers[-2]


@pytest.mark.parametrize("task", ["super_resolution", "denoising"])
def test_liu_last_layer_batch_norm_only_in_end_to_end_decoder(task):
    # Tables 12/14: ConvT, BatchNorm, Sigmoid. Tables 13/15: ConvT, Sigmoid.
    assert isinstance(_layer_before_output(nets.liu_decoder(4, task)), tf.keras.layers.BatchNormalization)
    assert isinstance(
        _layer_before_output(nets.liu_decoder(4, task, last_batch_norm=False)),
        tf.keras.layers.Conv2DTranspose,
    )
    assert isinstance(
        _layer_before_output(nets.liu_two_branch_decoder(4, task)), tf.keras.layers.Conv2DTranspose
    )


def test_liu_two_branch_denoising_decoder_has_three_residual_blocks():
    model = nets.liu_two_branch_decoder(4, "denoising")
    assert sum(isinstance(layer, tf.keras.layers.Add) for layer in model.layers) == 3
    assert _filters(model, tf.keras.layers.Conv2DTranspose) == [64, 108, 128, 3]
    # BatchNorm only in the two linear layers (Table 15).
    assert sum(isinstance(layer, tf.keras.layers.BatchNormalization) for layer in model.layers) == 2


def test_liu_rejects_unknown_task():
    with pytest.raises(ValueError, match="task"):
        nets.liu_encoder(4, "inpainting")


# -------------------------------------------------------------------------------------------- Yan et al.


def test_yan_encoder_and_decoder_shapes():
    images = tf.random.uniform((BATCH, 32, 32, 1))
    code = nets.yan_encoder(6, width=WIDTH)(images).numpy()
    assert code.shape == (BATCH, 6)
    assert np.all(np.abs(code) < 1.0)
    outputs = nets.yan_decoder(6, width=WIDTH)(np.sign(code)).numpy()
    assert outputs.shape == (BATCH, 32, 32, 1)
    assert outputs.min() >= 0.0 and outputs.max() <= 1.0


@pytest.mark.parametrize("d", [0, 4])
def test_yan_generator_takes_code_and_gaussian_noise(d):
    model = nets.yan_generator(d, width=WIDTH, seed=2)
    assert model.noise_layer.m == 100 - d and model.noise_layer.distribution == "normal"
    code = tf.sign(tf.random.normal((BATCH, d)))
    first = model(code).numpy()
    assert first.shape == (BATCH, 32, 32, 1)
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert not np.allclose(first, model(code))
    noise = tf.random.normal((BATCH, 100 - d))
    np.testing.assert_allclose(model(code, noise=noise), model(code, noise=noise), rtol=1e-6)


def test_yan_generator_noise_dim_and_errors():
    assert nets.yan_generator(8, width=WIDTH, noise_dim=10).noise_layer.m == 10
    with pytest.raises(ValueError, match="d < 100"):
        nets.yan_generator(100)


def test_yan_critic_is_conditioned_on_the_code():
    critic = nets.yan_critic(4, width=WIDTH)
    images = tf.random.uniform((BATCH, 32, 32, 1))
    code = tf.sign(tf.random.normal((BATCH, 4)))
    scores = critic([images, code])
    assert scores.shape == (BATCH, 1)
    assert not np.allclose(scores, critic([images, -code]))  # same x, different code
    assert not np.allclose(scores, critic([1.0 - images, code]))  # same code, different x
    assert not _has_batch_norm(critic)


def test_yan_unconditional_critic_for_rate_zero():
    critic = nets.yan_critic(0, width=WIDTH)
    assert critic([tf.random.uniform((2, 32, 32, 1)), tf.zeros((2, 0))]).shape == (2, 1)
