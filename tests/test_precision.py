"""Mixed precision (`train.precision`): every objective trains under every policy, with float32 losses.

The policy is set and restored by `tfdplc.train.precision.policy` around each case, so no test leaves a
global policy behind (an autouse fixture checks it).
"""

import os

import gin
import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf

from tfdplc import codec, layers, nets
from tfdplc import train as tr
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.nets.unet import restoration_unet
from tfdplc.objectives import (
    CAE,
    DAL,
    DPLC,
    GC,
    WAE,
    WGANGP,
    PerceptualG1,
    PerceptualG2,
    PerceptualJoint,
    Restoration,
    ShiftCompression,
    ShiftDecomposition,
    WassersteinPP,
)
from tfdplc.train import callbacks, precision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# float32 steps of every objective are the rest of the suite (each objective's own tests).
# The bfloat16 case carries the `bfloat16` marker (tests/conftest.py).
MIXED = (pytest.param("mixed_bfloat16", marks=pytest.mark.bfloat16), "mixed_float16")
COMPUTE_DTYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
M = 8  # latent size of the tiny DCGAN-style networks
LIU = (28, 28, 1)


@pytest.fixture(autouse=True)
def _no_leaked_policy():
    gin.clear_config()
    assert tf.keras.mixed_precision.global_policy().name == "float32"
    yield
    gin.clear_config()
    assert tf.keras.mixed_precision.global_policy().name == "float32", "a test leaked its policy"


def _adam():
    return tf.keras.optimizers.Adam(1e-3, beta_1=0.5)


def _dcgan_images(n=4, seed=0):
    return (tf.random.stateless_uniform((n, 32, 32, 1), [seed, 1]),)


def _liu_pairs(n=4, seed=0):
    clean = tf.random.stateless_uniform((n, *LIU), [seed, 2])
    return (
        tf.clip_by_value(clean + 0.1 * tf.random.stateless_normal(tf.shape(clean), [seed, 3]), 0, 1),
        clean,
    )


def _encoder_e():
    return nets.encoder_E(32, 2, width=4, channels=1)


def _mapping(noise):
    return nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=noise, seed=1)


def _generator():
    return nets.generator_G(32, m=M, width=4, channels=1)


def _critic():
    return nets.critic_f(32, width=4, channels=1)


def _shift(quantizer, **kwargs):
    return ShiftCompression(
        encoder=nets.liu_encoder(3, width=4),
        decoder=nets.liu_decoder(3),
        critic=nets.liu_critic(width=4),
        quantizer=quantizer,
        optimizer=_adam(),
        critic_optimizer=_adam(),
        **kwargs,
    )


# Each case builds its objective (under the policy being tested) and returns it with one training batch.
# The stage-2 objectives get their stage-1 networks as float32 files, as the trainer writes them.
CASES = {
    "cae": lambda files: (
        CAE(_encoder_e(), _mapping(False), _generator(), ScalarQuantizer(gradient="soft_to_hard"), _adam()),
        _dcgan_images(),
    ),
    "wae": lambda files: (
        WAE(nets.encoder_F(32, M, width=4, channels=1), _generator(), _adam(), _adam()),
        _dcgan_images(),
    ),
    "wgan_gp": lambda files: (WGANGP(_generator(), _critic(), _adam(), _adam(), n_critic=2), _dcgan_images()),
    "wasserstein_pp": lambda files: (
        WassersteinPP(
            nets.encoder_F(32, M, width=4, channels=1),
            _generator(),
            _critic(),
            _adam(),
            _adam(),
            _adam(),
            n_critic=2,
        ),
        _dcgan_images(),
    ),
    "dplc": lambda files: (
        DPLC(
            _encoder_e(),
            _mapping(True),
            ScalarQuantizer(gradient="soft_to_hard"),
            _adam(),
            lambda_mmd=10.0,
            generator_path=files["generator"],
            seed=2,
        ),
        _dcgan_images(),
    ),
    "gc": lambda files: (
        GC(
            _encoder_e(),
            _mapping(True),
            _generator(),
            _critic(),
            ScalarQuantizer(),
            _adam(),
            _adam(),
            lambda_wd=0.5,
            n_critic=2,
        ),
        _dcgan_images(),
    ),
    "perceptual_g1": lambda files: (
        PerceptualG1(
            nets.yan_encoder(4, width=4),
            nets.yan_decoder(4, width=4),
            ScalarQuantizer(),
            tf.keras.optimizers.RMSprop(1e-3),
        ),
        _dcgan_images(),
    ),
    "perceptual_g2": lambda files: (
        PerceptualG2(
            nets.yan_generator(4, width=4, seed=1),
            nets.yan_critic(4, width=4),
            ScalarQuantizer(),
            _adam(),
            _adam(),
            encoder_path=files["yan_encoder"],
        ),
        _dcgan_images(),
    ),
    "perceptual_joint": lambda files: (
        PerceptualJoint(
            nets.yan_encoder(4, width=4),
            nets.yan_decoder(4, width=4),
            nets.yan_generator(4, width=4, seed=1),
            nets.yan_critic(4, width=4),
            ScalarQuantizer(),
            tf.keras.optimizers.RMSprop(1e-3),
            _adam(),
            _adam(),
        ),
        _dcgan_images(),
    ),
    "dal": lambda files: (
        DAL(
            nets.yan_encoder(4, width=4),
            nets.yan_decoder(4, width=4),
            nets.yan_critic(1, width=4),
            ScalarQuantizer(),
            _adam(),
            _adam(),
            lambda_adv=1.0,
        ),
        _dcgan_images(),
    ),
    "shift_fixed_rate": lambda files: (_shift(layers.UniversalQuantizer(levels=4, seed=1)), _liu_pairs()),
    "shift_entropy_model": lambda files: (_shift(layers.EntropyBottleneck(), rate_weight=1e-2), _liu_pairs()),
    "shift_baseline": lambda files: (
        _shift(layers.UniversalQuantizer(levels=4, seed=1), restoration_path=files["restoration"]),
        _liu_pairs(),
    ),
    "restoration": lambda files: (
        Restoration(restoration_unet(LIU, width=4), nets.liu_critic(width=4), _adam(), _adam()),
        _liu_pairs(),
    ),
    "shift_decomposition": lambda files: (
        ShiftDecomposition(
            files["shift_workdir"],
            nets.liu_two_branch_decoder(3, name="g1"),
            nets.liu_two_branch_decoder(3, name="g2"),
            _adam(),
            seed=3,
        ),
        _liu_pairs(),
    ),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Stage-1 networks saved as float32 files, as finished stage-1 runs leave them."""
    folder = tmp_path_factory.mktemp("stage1")
    tf.keras.utils.set_random_seed(0)
    paths = {"generator": str(folder / "generator.keras"), "yan_encoder": str(folder / "encoder.keras")}
    _generator().save(paths["generator"])
    nets.yan_encoder(4, width=4).save(paths["yan_encoder"])
    paths["restoration"] = str(folder / "restoration.keras")
    restoration_unet(LIU, width=4).save(paths["restoration"])
    shift = _shift(layers.UniversalQuantizer(levels=4, seed=1))
    shift(_liu_pairs()[0][:1])
    paths["shift_workdir"] = str(folder / "shift")
    tf.io.gfile.makedirs(paths["shift_workdir"])
    shift.save_artifacts(paths["shift_workdir"])
    return paths


def _network_compute_dtypes(model):
    """Compute dtypes of the layers with kernels (convolutions, dense) inside the objective's networks."""
    return {
        layer.compute_dtype
        for layer in model._flatten_layers(include_self=False, recursive=True)  # noqa: SLF001
        if hasattr(layer, "kernel") and not isinstance(layer, precision.FLOAT32_LAYERS)
    }


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("policy", MIXED)
def test_every_objective_takes_a_finite_step_under_every_policy(name, policy, files):
    tf.keras.utils.set_random_seed(0)
    with precision.policy(policy):
        model, batch = CASES[name](files)
        precision.prepare_objective(model, policy)
        model(batch[0][:1])
        model.compile(run_eagerly=True)  # eager: no tracing, a few tenths of a second per case
        logs = model.train_on_batch(*batch, return_dict=True)
    assert logs and all(np.isfinite(value) for value in logs.values()), logs
    trained = _network_compute_dtypes(model)
    # The networks the objective trains compute in the policy's dtype (so do frozen stage-1 files, below).
    assert COMPUTE_DTYPE[policy] in trained, trained
    for layer in model._flatten_layers(include_self=False, recursive=True):  # noqa: SLF001
        if isinstance(layer, precision.FLOAT32_LAYERS):
            assert layer.compute_dtype == "float32", layer.name
    for optimizer in model.optimizers().values():
        scaled = isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        assert scaled == (policy == "mixed_float16")
    assert all(v.dtype == tf.float32 for v in model.variables if v.dtype.is_floating)


@pytest.mark.bfloat16
@pytest.mark.parametrize("name", sorted(n for n in CASES if not n.startswith(("shift", "restoration"))))
def test_the_trainers_image_grids_work_under_mixed_bfloat16(name, files, tmp_path):
    # What tfdplc.train.callbacks.ImageGrid draws at every epoch end, on the mixed-precision model: a DPLC
    # run under mixed_bfloat16 failed there (its bfloat16 encoder output reached the float32 quantizer's
    # `indices`, which Keras does not autocast) after its first epoch, while every training step passed.
    tf.keras.utils.set_random_seed(0)
    with precision.policy("mixed_bfloat16"):
        model, batch = CASES[name](files)
        precision.prepare_objective(model, "mixed_bfloat16")
        model(batch[0][:1])
    grid = callbacks.ImageGrid(batch[0][:2], str(tmp_path), callbacks.StepClock(0, 10, 10), num_decodes=2)
    grid.set_model(model)
    grids = grid.grids()
    assert grids and all(np.all(np.isfinite(image)) for image in grids.values()), sorted(grids)
    if name in ("dplc", "gc"):  # stochastic decoders: the decodes grid runs encode_codes / decode_codes
        assert "decodes" in grids


def _numpy_mmd(prior, encoded):
    """The U-statistic MMD^2 with the IMQ kernel of `tfdplc.losses.mmd_imq`, in float64."""

    def kernel(x, y):
        squared = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
        base = 2.0 * x.shape[1]
        return sum(s * base / (s * base + squared) for s in (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0))

    b = prior.shape[0]

    def off_diagonal(k):
        return (k.sum() - np.trace(k)) / (b * (b - 1))

    return (
        off_diagonal(kernel(prior, prior))
        + off_diagonal(kernel(encoded, encoded))
        - 2 * kernel(prior, encoded).mean()
    )


@pytest.mark.bfloat16
def test_mixed_bfloat16_runs_b_in_bfloat16_but_the_mmd_in_float32(files):
    """B's output is bfloat16 (the policy is applied), the MMD of it is a float32 computation."""
    tf.keras.utils.set_random_seed(0)
    with precision.policy("mixed_bfloat16"):
        model, (images,) = CASES["dplc"](files)
        precision.prepare_objective(model, "mixed_bfloat16")
        images = tf.random.stateless_uniform((16, 32, 32, 1), [4, 4])
        noise = model.sample_noise(16)
        prior = model.sample_prior(16)
        terms = model.compute_losses(images, noise, prior)
        z_hat = model.latents(model.encode(images), noise=noise).numpy()
    assert terms["mmd"].dtype == tf.float32
    # Every z_hat value is a bfloat16 number: B computed in bfloat16.
    np.testing.assert_array_equal(z_hat, z_hat.astype(ml_dtypes.bfloat16).astype(np.float32))
    expected = _numpy_mmd(prior.numpy().astype(np.float64), z_hat.astype(np.float64))
    # A bfloat16 MMD (8-bit mantissa kernel sums) is off by ~1e-2 relative; float32 by ~1e-6.
    np.testing.assert_allclose(float(terms["mmd"]), expected, rtol=1e-4)


def test_float16_gradients_are_loss_scaled_where_they_would_underflow():
    """d loss / dv = 1e-8 passes through float16 (smallest subnormal 6e-8): only loss scaling keeps it."""
    from tfdplc.objectives import Objective

    v = tf.Variable(1.0)
    with tf.GradientTape(persistent=True) as tape:
        a, b = tf.constant(1e-3, tf.float16), tf.constant(1e-5, tf.float16)
        loss = tf.cast(tf.cast(v, tf.float16) * a * b, tf.float32)
    scaled = tf.keras.mixed_precision.LossScaleOptimizer(tf.keras.optimizers.SGD(1.0), initial_scale=2.0**15)
    (gradient,) = Objective.gradients(scaled, tape, loss, [v])
    np.testing.assert_allclose(float(gradient), 1e-8, rtol=1e-2)
    (plain,) = Objective.gradients(tf.keras.optimizers.SGD(1.0), tape, loss, [v])
    assert float(plain) == 0.0  # what an unscaled float16 backward pass gives


def test_bad_precision_is_refused_with_the_accepted_names(tmp_path):
    with pytest.raises(ValueError, match="'float32', 'mixed_bfloat16', 'mixed_float16', got 'bfloat16'"):
        precision.check_precision("bfloat16")
    with pytest.raises(ValueError, match="train.precision"):
        with precision.policy("float64"):
            pass
    tr.config.parse_gin([], ["train.total_steps = 1", "train.precision = 'mixed_bf16'"])
    with pytest.raises(tr.GinConfigError, match="train.precision must be one of .* got 'mixed_bf16'"):
        tr.train(str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


TINY_G1 = [
    "input_pipeline.batch_size = 8",
    "train.steps_per_epoch = 2",
    "train.total_steps = 2",
    "train.eval_steps = 1",
    "train.num_grid_images = 2",
    "train.verbose = 0",
    "WIDTH = 4",
    # A large step so that the tiny decoder's output depends on its code after 2 steps (with N(0, 0.02)
    # weights every code decodes to the same grey image, in any precision).
    "step_decay.learning_rate = 0.05",
]


@pytest.mark.bfloat16
def test_a_mixed_precision_run_writes_float32_checkpoints_artifacts_and_exports(tmp_path, mnist5k_dir):
    workdir = str(tmp_path / "g1")
    config = os.path.join(ROOT, "gin", "perceptual_g1_mnist5k.gin")
    tr.config.parse_gin([config], TINY_G1 + ["train.precision = 'mixed_bfloat16'"])
    tr.train(workdir, mnist5k_dir)
    assert tf.keras.mixed_precision.global_policy().name == "float32"
    latest = tf.train.latest_checkpoint(f"{workdir}/checkpoints")
    dtypes = tf.train.load_checkpoint(latest).get_variable_to_dtype_map()
    assert {dtypes[k] for k in dtypes if k.startswith("model/") and dtypes[k].is_floating} == {tf.float32}
    # The artifacts stage 2 loads are float32 networks (written from a float32 copy of the checkpoint).
    for name in ("encoder.keras", "decoder.keras"):
        network = tf.keras.models.load_model(os.path.join(workdir, name), compile=False)
        assert {layer.compute_dtype for layer in network.layers} == {"float32"}, name

    loaded = codec.load(
        codec.export_model(codec.restore_for_export(workdir), str(tmp_path / "export")).export_dir
    )
    images = np.random.default_rng(0).integers(0, 256, size=(8, 32, 32, 1), dtype=np.uint8)
    containers = loaded.compress(images)
    decoded = loaded.decompress(containers)
    codes = tf.constant(loaded.decompress_codes(containers)[0])

    # The same checkpoint in a float32 objective and in the bfloat16 one training used.
    tr.load_workdir_config(workdir)
    outputs = {}
    for policy in ("float32", "mixed_bfloat16"):
        with precision.policy(policy):
            twin = precision.prepare_objective(tr.build_objective(), policy)
            twin(tf.zeros([1, 32, 32, 1]))
        tf.train.Checkpoint(model=twin).restore(latest).expect_partial()
        floats = twin.decode_codes(codes, tf.zeros([8], tf.int64)).numpy()
        outputs[policy] = np.round(np.clip(floats, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(decoded, outputs["float32"])
    # The bfloat16 decoder gives other pixels: the comparison above tells the two apart.
    assert np.any(outputs["mixed_bfloat16"] != outputs["float32"])


@pytest.mark.parametrize("policy", MIXED)
def test_a_frozen_network_from_a_float32_file_computes_in_the_policys_dtype(policy, files, tmp_path):
    # DPLC's G* is a float32 stage-1 file: under a mixed policy it runs in the policy's dtype like the
    # networks the objective trains (its variables stay float32), and what the objective computes with
    # it stays float32.
    tf.keras.utils.set_random_seed(0)
    with precision.policy(policy):
        model, (images,) = CASES["dplc"](files)
        assert {layer.compute_dtype for layer in model.generator.layers[1:]} == {"float32"}  # as loaded
        precision.prepare_objective(model, policy)  # by default it stays so
        assert {layer.compute_dtype for layer in model.generator.layers[1:]} == {"float32"}
        precision.prepare_objective(model, policy, frozen_in_policy=True)
        model(images[:1])
    computing = [
        layer for layer in model.generator.layers if not isinstance(layer, tf.keras.layers.InputLayer)
    ]
    assert {layer.compute_dtype for layer in computing} == {COMPUTE_DTYPE[policy]}
    assert all(v.dtype == tf.float32 for v in model.generator.variables)
    assert model.decode(model.encode(images[:2])).dtype == tf.float32
    assert (
        isinstance(model.quantizer, precision.FLOAT32_LAYERS) and model.quantizer.compute_dtype == "float32"
    )
    # Its checkpoint restores into a float32 objective, every variable matched, G* included.
    for variable in model.generator.variables + model.encoder.variables:
        variable.assign(variable + 0.5)  # weights the float32 twin does not start with
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    tf.keras.utils.set_random_seed(0)
    twin, _ = CASES["dplc"](files)
    twin(images[:1])
    tf.train.Checkpoint(model=twin).restore(path).assert_existing_objects_matched()
    pairs = zip(
        model.generator.variables + model.encoder.variables, twin.generator.variables + twin.encoder.variables
    )
    for a, b in pairs:
        np.testing.assert_array_equal(a.numpy(), b.numpy())
