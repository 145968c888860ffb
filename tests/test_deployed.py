"""tfdplc.deployed: DPLC's distribution constraint in the codec's mode, against independent computations."""

import numpy as np
import pytest
import tensorflow as tf

from tfdplc import batch_norm, deployed, losses, nets
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


def _moving_statistics(model):
    return {
        id(v)
        for layer in batch_norm.batch_norm_layers([model.encoder, model.mapping])
        for v in (layer.moving_mean, layer.moving_variance)
    }


def test_recalibration_gives_the_deployed_codes_their_population_statistics():
    model = _tiny_dplc()
    last = model.mapping.trunk.layers[-1]  # B's final "fc-m, bn": its output is z itself
    assert isinstance(last, tf.keras.layers.BatchNormalization)
    rng = np.random.default_rng(9)
    last.gamma.assign(rng.uniform(0.5, 2.0, M).astype(np.float32))
    last.beta.assign(rng.normal(0.0, 1.0, M).astype(np.float32))
    images, seed = _images(10), 6
    z_before = deployed.deployed_latents(model, images, seed)
    moving = _moving_statistics(model)
    before = {id(v): v.numpy().copy() for v in model.variables}
    records = deployed.recalibrate_batch_norm(model, images, batch_size=4, seed=seed)  # batches 4, 4, 2
    assert len(records) == len(moving) // 2 == 6  # E's 3 c4s2b, B's residual block (2) and fc-m, bn
    for v in model.variables:  # G*, the quantizer, every weight and generator state: untouched
        assert (not np.array_equal(before[id(v)], v.numpy())) == (id(v) in moving), v.name
    # Independent route: each image alone through the codec's path (batch of one, tf.function), the
    # same per-image noise seeds. With every upstream layer at its population statistics, the last bn's
    # input over these images has mean moving_mean and biased variance moving_variance, so z has mean
    # beta and variance gamma^2 v / (v + eps) exactly. Float32 of O(1) values: 1e-4. Statistics of the
    # wrong mode (B or E in training mode), of other noise, or unbiased (x 10/9) miss by far more.
    z = deployed.deployed_latents(model, images, seed)
    v = last.moving_variance.numpy().astype(np.float64)
    np.testing.assert_allclose(z.mean(axis=0), last.beta.numpy(), atol=1e-4)
    expected_variance = last.gamma.numpy().astype(np.float64) ** 2 * v / (v + last.epsilon)
    np.testing.assert_allclose(z.astype(np.float64).var(axis=0), expected_variance, rtol=1e-3)
    assert np.abs(z - z_before).max() > 1e-2  # the deployed codes changed
    with pytest.raises(ValueError, match="batch_size"):
        deployed.recalibrate_batch_norm(model, images, batch_size=0)


def _checkpointed(model, directory, step):
    from tfdplc.train.trainer import training_checkpoint

    model.optimizer_eb.build(model.encoder.trainable_variables + model.mapping.trainable_variables)
    counter = tf.Variable(step, dtype=tf.int64)
    return tf.train.CheckpointManager(training_checkpoint(model, counter), directory, max_to_keep=3).save(
        checkpoint_number=step
    )


def test_recalibrate_workdir_writes_the_latest_checkpoint_and_keeps_the_source(tmp_path):
    images = _images(8)
    trained = _tiny_dplc()
    source = _checkpointed(trained, str(tmp_path / "run" / "checkpoints"), 7)
    model = _tiny_dplc(seed=1)  # other initial values: everything must come from the checkpoint
    record = deployed.recalibrate_workdir(model, str(tmp_path / "run"), images, batch_size=3, seed=2)
    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert latest.endswith("bn_recalibrated-7") and record["checkpoint"] == latest
    assert record["source_checkpoint"] == source and record["step"] == 7 and record["num_images"] == 8
    assert tf.io.gfile.exists(source + ".index")  # in place, the source stays
    assert (tmp_path / "run" / deployed.RECALIBRATION_FILE).exists()
    restored = _tiny_dplc(seed=3)
    restored.optimizer_eb.build(restored.encoder.trainable_variables + restored.mapping.trainable_variables)
    tf.train.Checkpoint(model=restored).restore(latest).assert_existing_objects_matched()
    moving = _moving_statistics(trained)
    for t, m, r in zip(trained.variables, model.variables, restored.variables):
        np.testing.assert_array_equal(r.numpy(), m.numpy())  # what was recalibrated is what was saved
        if id(t) not in moving:
            np.testing.assert_array_equal(r.numpy(), t.numpy())  # weights and optimizer state as trained
    reference = _tiny_dplc(seed=4)
    tf.train.Checkpoint(model=reference).restore(source).expect_partial()
    deployed.recalibrate_batch_norm(reference, images, batch_size=8, seed=2)
    for layer_r, layer_m in zip(
        *(batch_norm.batch_norm_layers([x.encoder, x.mapping]) for x in (reference, model))
    ):
        np.testing.assert_allclose(
            layer_m.moving_variance.numpy(), layer_r.moving_variance.numpy(), rtol=1e-5
        )
    # Into another folder: the source workdir is left as it was; a second write there is refused.
    other = deployed.recalibrate_workdir(
        _tiny_dplc(seed=5), str(tmp_path / "run"), images, str(tmp_path / "copy")
    )
    assert other["source_checkpoint"] == latest
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")) == latest
    with pytest.raises(FileExistsError):
        deployed.recalibrate_workdir(_tiny_dplc(), str(tmp_path / "run"), images, str(tmp_path / "copy"))
    with pytest.raises(FileNotFoundError):
        deployed.recalibrate_workdir(_tiny_dplc(), str(tmp_path / "none"), images)


def test_dplc_option_refuses_networks_without_batch_norm():
    tf.keras.utils.set_random_seed(0)
    with pytest.raises(ValueError, match="recalibrate_batch_norm needs batch norm"):
        DPLC(
            encoder=nets.encoder_E(32, 2, width=4, channels=1, normalization="layer"),
            mapping=nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=True, normalization="layer"),
            quantizer=ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard"),
            optimizer=tf.keras.optimizers.Adam(1e-3),
            lambda_mmd=1.0,
            generator=nets.generator_G(32, m=M, width=4, channels=1),
            recalibrate_batch_norm=True,
        )


def test_stage2_gin_option_recalibrates_at_the_end_of_training(tmp_path, mnist5k_dir):
    import json
    import os

    import gin

    from tfdplc import train as tr

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tf.keras.utils.set_random_seed(0)
    nets.generator_G(32, m=M, width=4, channels=1).save(str(tmp_path / "generator.keras"))
    workdir = str(tmp_path / "dplc")
    bindings = [
        f"GENERATOR_PATH = '{tmp_path / 'generator.keras'}'",
        f"M = {M}",
        "K = 2",
        "encoder_E.width = 4",
        "mapping_B.width = 8",
        "input_pipeline.batch_size = 8",
        f"input_pipeline.data_dir = '{mnist5k_dir}'",  # the recalibration reads the data through gin
        "train.steps_per_epoch = 2",
        "train.total_steps = 2",
        "train.eval_steps = 1",
        "train.num_grid_images = 2",
        "train.verbose = 0",
        "train.train_split = 'train[:40]'",  # the recalibration's split too: a fast test
        "DPLC.recalibrate_batch_norm = True",
    ]
    try:
        gin.clear_config()
        tr.config.parse_gin([os.path.join(root, "gin", "dplc_mnist5k.gin")], bindings)
        tr.train(workdir, mnist5k_dir)
        stamp = os.stat(os.path.join(workdir, deployed.RECALIBRATION_FILE)).st_mtime_ns
        latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
        model = tr.restore_objective(workdir, _images(1))  # what evaluate / export / diagnose load
        model.save_artifacts(workdir)  # a restarted, finished run: the recalibration is not redone
    finally:
        gin.clear_config()
    assert os.path.basename(latest) == "bn_recalibrated-2"
    assert os.stat(os.path.join(workdir, deployed.RECALIBRATION_FILE)).st_mtime_ns == stamp
    with open(os.path.join(workdir, deployed.RECALIBRATION_FILE)) as f:
        record = json.load(f)
    assert record["num_images"] == 40 and record["split"] == "train[:40]" and record["num_layers"] == 6
    assert record["source_checkpoint"].endswith("ckpt-2")
    reader = tf.train.load_checkpoint(latest)
    saved = {name for name in reader.get_variable_to_shape_map() if "moving_variance" in name}
    assert len(saved) >= 6
    last = model.mapping.trunk.layers[-1]
    assert not np.allclose(last.moving_variance.numpy(), 1.0)  # not Keras' initial statistics
