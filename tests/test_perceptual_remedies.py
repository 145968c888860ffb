"""Remedies for G2's stall on the code-ignoring plateau (Yan et al. 2021, issue 26): the critic pre-training
budget in pairs, the warm start of G2 from G1, the projection critic, and the stall verdicts of
results/perceptual/convergence.py."""

import importlib.util
import json
import os

import gin
import numpy as np
import pytest
import tensorflow as tf

from tfdplc import nets, results
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import PerceptualG1, PerceptualG2
from tfdplc.objectives.perceptual import (
    AUTHORS_PRETRAIN_PAIRS,
    DECODER_FILE,
    g1_shaped_generator,
    load_mse_decoder,
    pretrain_step_count,
    warm_start_from_g1,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
D = 4
WIDTH = 4
U = np.finfo(np.float32).eps / 2  # unit roundoff of float32


def _images(n, seed=3):
    return tf.random.stateless_uniform((n, 32, 32, 1), seed=[seed, 0])


def _snapshot(variables):
    return [v.numpy().copy() for v in variables]


def _sensitive(model, factor=20.0):
    """Scales the kernels: with N(0, 0.02) weights a tiny network's output barely depends on its input."""
    for layer in model.submodules:
        if isinstance(layer, tf.keras.layers.Layer) and hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * factor)
    return model


def _moved_batchnorm(model, seed):
    """Moving statistics away from 0 / 1, so copying them (or not) shows in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.submodules:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 0.1, layer.moving_mean.shape).astype(np.float32))
            layer.moving_variance.assign(
                rng.uniform(0.5, 1.5, layer.moving_variance.shape).astype(np.float32)
            )
    return model


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """A saved stage-1 run (E and G1 of width WIDTH) with non-trivial weights and BatchNorm statistics."""
    directory = tmp_path_factory.mktemp("stage1")
    tf.keras.utils.set_random_seed(0)
    g1 = PerceptualG1(
        encoder=_moved_batchnorm(_sensitive(nets.yan_encoder(D, width=WIDTH)), 1),
        decoder=_moved_batchnorm(_sensitive(nets.yan_decoder(D, width=WIDTH), 30.0), 2),
        quantizer=ScalarQuantizer((-1.0, 1.0), gradient="straight_through"),
        optimizer=tf.keras.optimizers.RMSprop(1e-3),
    )
    g1.save_artifacts(str(directory))
    return directory


@pytest.fixture(autouse=True)
def _clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _g2(stage1, generator=None, critic=None, seed=0, **kwargs):
    tf.keras.utils.set_random_seed(seed)
    generator = generator or (lambda: _sensitive(nets.yan_generator(D, width=WIDTH, seed=seed + 1)))
    critic = critic or (lambda: _sensitive(nets.yan_critic(D, width=WIDTH), 5.0))
    return PerceptualG2(
        generator=generator(),
        critic=critic(),
        quantizer=ScalarQuantizer((-1.0, 1.0)),
        generator_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        critic_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        encoder_path=str(stage1 / "encoder.keras"),
        **kwargs,
    )


# ------------------------------------------------------------------------------------------------------
# The critic pre-training budget in matched/shuffled pairs.


def test_pretrain_step_count_is_the_pairs_over_the_pairs_of_one_step_rounded_up():
    # The authors' epoch: 469 updates of 128 pairs; at b = 64 that is 938 steps, at n_critic 5 188 steps.
    assert AUTHORS_PRETRAIN_PAIRS == 60032
    assert pretrain_step_count(AUTHORS_PRETRAIN_PAIRS, 1, 128) == 469
    assert pretrain_step_count(AUTHORS_PRETRAIN_PAIRS, 1, 64) == 938
    assert pretrain_step_count(AUTHORS_PRETRAIN_PAIRS, 5, 64) == 188  # 187.6: whole steps
    assert pretrain_step_count(16, 2, 4) == 2 and pretrain_step_count(17, 2, 4) == 3
    assert pretrain_step_count(20, 2, 4, replicas=2) == 2  # each replica updates on its own b pairs
    assert pretrain_step_count(0, 3, 8) == 0
    as_tensor = pretrain_step_count(tf.constant(20, tf.int64), 2, tf.constant(4, tf.int64))
    assert as_tensor.dtype == tf.int64 and int(as_tensor) == 3


def test_pretraining_in_pairs_lasts_the_steps_that_see_the_budget(stage1):
    # b = 4 images per critic update, n_critic = 2: a step sees 8 pairs, so 20 pairs take 3 steps (24
    # pairs). Counting b pairs per step (off by n_critic) would give 5 steps, counting updates as steps 2.
    model = _g2(stage1, n_critic=2, pretrain_pairs=20)
    model(_images(1))
    model.compile(run_eagerly=True)
    g2_before = _snapshot(model.generator.variables)
    phases = []
    for step in range(5):
        phases.append(bool(model.in_pretraining(4)))
        model.train_on_batch(_images(8, seed=step), return_dict=True)
        if step == 2:  # the last pre-training step: G2 untouched so far, 3 x 2 critic updates made
            assert int(model.optimizer_critic.iterations) == 6
            assert int(model.optimizer_generator.iterations) == 0
            for before, v in zip(g2_before, model.generator.variables):
                np.testing.assert_array_equal(v.numpy(), before, err_msg=v.name)
    assert phases == [True, True, True, False, False]
    assert int(model.optimizer_generator.iterations) == 2
    assert int(model.optimizer_critic.iterations) == 10


def test_pretraining_in_pairs_is_validated(stage1):
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="pretrain_pairs"):
            _g2(stage1, pretrain_pairs=bad)
    with pytest.raises(ValueError, match="not both"):
        _g2(stage1, pretrain_steps=1, pretrain_pairs=64)
    with pytest.raises(ValueError, match="batch"):
        _g2(stage1, pretrain_pairs=64).in_pretraining()
    # A zero pair budget is no pre-training, whatever the batch.
    model = _g2(stage1, pretrain_pairs=0)
    assert not model.pretrains() and not bool(model.in_pretraining(4))


def test_checkpoints_of_the_current_layout_restore_into_the_new_options(stage1, tmp_path):
    # A G2 as configured before the pair budget (pretrain_steps, yan_critic), trained and checkpointed as
    # the trainer does, restores exactly into a G2 with the pair budget: no option adds a variable.
    old = _g2(stage1, pretrain_steps=1, seed=0)
    old(_images(1))
    old.compile(run_eagerly=True)
    for step in range(2):
        old.train_on_batch(_images(4, seed=step))
    path = tf.train.Checkpoint(model=old).save(str(tmp_path / "ckpt"))
    new = _g2(stage1, pretrain_pairs=4, seed=7)
    new(_images(1))
    tf.train.Checkpoint(model=new).restore(path).assert_existing_objects_matched()
    # The checkpoint's keys are exactly those the new objective writes (nothing dropped or added).
    old_keys = {name for name, _ in tf.train.list_variables(path)}
    new_path = tf.train.Checkpoint(model=new).save(str(tmp_path / "new"))
    assert {name for name, _ in tf.train.list_variables(new_path)} == old_keys
    for a, b in zip(old.variables, new.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    for a, b in zip(old.optimizer_critic.variables, new.optimizer_critic.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not bool(new.in_pretraining(4))  # 2 steps done, the 4-pair budget was one step
    # yan_critic's weights, in the order its checkpoint holds them, as before the image branch was shared
    # with the projection critic.
    w = WIDTH
    shapes = [tuple(v.shape) for v in nets.yan_critic(D, width=w).weights]
    assert shapes == [
        (4, 4, 1, w), (w,), (4, 4, w, 2 * w), (2 * w,), (4, 4, 2 * w, 4 * w), (4 * w,),
        (4, 4, 4 * w, 8 * w), (8 * w,), (D, 8 * w), (8 * w,), (16 * w, 4 * w), (4 * w,), (4 * w, 1), (1,),
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------------------
# Warm start of G2 from G1 (not in the paper).


def test_warm_start_copies_g1_and_keeps_the_noise_rows_of_the_initializer(stage1):
    g1 = load_mse_decoder(str(stage1 / DECODER_FILE), D)
    tf.keras.utils.set_random_seed(5)
    g2 = g1_shaped_generator(D, width=WIDTH, seed=3)
    before = _snapshot(g2.trunk.weights)
    warm_start_from_g1(g2, g1)
    assert len(g2.trunk.weights) == len(g1.weights)
    first = g2.trunk.weights[0]
    assert tuple(first.shape) == (1, 1, WIDTH, 100)  # Conv2DTranspose: (h, w, out, in); in = [code, noise]
    np.testing.assert_array_equal(first.numpy()[..., :D], g1.weights[0].numpy())
    np.testing.assert_array_equal(first.numpy()[..., D:], before[0][..., D:])
    assert np.std(before[0][..., D:]) > 0.01  # the initializer's N(0, 0.02) draws, not zeros
    for mine, theirs in zip(g2.trunk.weights[1:], g1.weights[1:]):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.name)
    # With zero noise (inference-mode batch norm) G2 computes G1. They differ only in the rounding of the
    # first layer's sums, which hold D nonzero terms either way: at most (D - 1) u relative there,
    # carried through four layers to outputs in [0, 1]; atol 1e-6 is about 5 ulp of 1.
    code = tf.sign(tf.random.stateless_normal((8, D), seed=[1, 1]))
    g1_out = g1(code, training=False).numpy()
    zero = g2(code, noise=tf.zeros((8, 100 - D)), training=False).numpy()
    np.testing.assert_allclose(zero, g1_out, rtol=0, atol=1e-6)
    assert g1_out.std() > 0.05  # G1's output depends on the code: the comparison is not vacuous
    # The noise reaches the output through the kept rows.
    assert np.abs(g2(code, training=False).numpy() - g1_out).max() > 1e-3


def test_warm_start_option_changes_only_g2(stage1, tmp_path):
    def generator():
        return g1_shaped_generator(D, width=WIDTH, seed=1)

    cold = _g2(stage1, generator=generator, seed=0)
    warm = _g2(stage1, generator=generator, seed=0, warm_start=True)
    g1 = load_mse_decoder(str(stage1 / DECODER_FILE), D)
    for mine, theirs in zip(warm.generator.trunk.weights[1:], g1.weights[1:]):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.name)
    # The noise rows are those the cold G2 of the same seed drew; the critic is unchanged.
    np.testing.assert_array_equal(
        warm.generator.trunk.weights[0].numpy()[..., D:], cold.generator.trunk.weights[0].numpy()[..., D:]
    )
    for a, b in zip(warm.critic.weights, cold.critic.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(
        warm.generator.trunk.weights[0].numpy(), cold.generator.trunk.weights[0].numpy()
    )
    # G1 is not attached: the checkpoint holds no copy of it.
    assert warm.mse_decoder is None
    warm(_images(1))
    cold(_images(1))
    keys = [
        {name for name, _ in tf.train.list_variables(tf.train.Checkpoint(model=m).save(str(tmp_path / n)))}
        for m, n in ((warm, "warm"), (cold, "cold"))
    ]
    assert keys[0] == keys[1]


def test_warm_start_refuses_what_it_cannot_copy(stage1):
    with pytest.raises(ValueError, match="g1_shaped_generator"):  # the authors' G2: no shared layers
        _g2(stage1, warm_start=True)
    with pytest.raises(ValueError, match="g1_shaped_generator.width"):  # G1 has width WIDTH
        _g2(stage1, generator=lambda: g1_shaped_generator(D, width=2 * WIDTH), warm_start=True)
    with pytest.raises(FileNotFoundError, match="decoder"):
        _g2(
            stage1,
            generator=lambda: g1_shaped_generator(D, width=WIDTH),
            warm_start=True,
            mse_decoder_path=str(stage1 / "missing.keras"),
        )
    with pytest.raises(ValueError, match="noise_dim"):
        g1_shaped_generator(100)


def test_warm_start_config_builds_a_warm_g2(stage1):
    from tfdplc import train as tr

    tr.config.parse_gin(
        [f"{ROOT}/gin/perceptual_g2_warm_mnist5k.gin"],
        [f"ENCODER_PATH = '{stage1 / 'encoder.keras'}'", f"g1_shaped_generator.width = {WIDTH}"],
    )
    model = tr.build_objective()
    g1 = load_mse_decoder(str(stage1 / DECODER_FILE), D)
    np.testing.assert_array_equal(model.generator.trunk.weights[0].numpy()[..., :D], g1.weights[0].numpy())
    assert model.pretrain_pairs == AUTHORS_PRETRAIN_PAIRS


def test_the_warm_start_lives_in_nets_under_its_old_names():
    from tfdplc.nets import warm_start

    assert g1_shaped_generator is nets.g1_shaped_generator is warm_start.g1_shaped_generator
    assert warm_start_from_g1 is nets.warm_start_from_g1 is warm_start.warm_start_from_g1
    # The gin name configs and existing workdirs' config.gin files use.
    gin.parse_config("tfdplc.objectives.g1_shaped_generator.width = 2")
    model = gin.get_configurable("tfdplc.objectives.g1_shaped_generator")(D)
    # yan_decoder's first layer: a 1x1 transposed convolution, kernel (1, 1, width, d + noise_dim).
    assert tuple(model.trunk.weights[0].shape) == (1, 1, 2, 100)


# ------------------------------------------------------------------------------------------------------
# The projection critic (Miyato & Koyama 2018; not in the paper).


def _conv(x, kernel, bias, stride, padding):
    """NumPy Conv2D (NHWC, kernel (k, k, in, out)) with TF's "same" / "valid" padding."""
    k = kernel.shape[0]
    if padding == "same":
        out = -(-x.shape[1] // stride)
        total = max((out - 1) * stride + k - x.shape[1], 0)
        x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (total // 2, total - total // 2), (0, 0)))
    else:
        out = (x.shape[1] - k) // stride + 1
    y = np.zeros((x.shape[0], out, out, kernel.shape[-1]))
    for p in range(k):
        for q in range(k):
            patch = x[:, p : p + stride * out : stride, q : q + stride * out : stride, :]
            y += np.einsum("bijc,co->bijo", patch, kernel[p, q])
    return y + bias


def _leaky(x):
    return np.where(x > 0, x, 0.2 * x)


def _projection_weights(critic):
    """The projection critic's weights by role: four (kernel, bias) convolutions, phi, psi, V."""
    convs = [layer for layer in critic.layers if isinstance(layer, tf.keras.layers.Conv2D)]
    phi, psi = critic.get_layer("phi"), critic.get_layer("psi")
    by_role = [w for layer in convs for w in (layer.kernel, layer.bias)]
    by_role += [phi.kernel, phi.bias, psi.kernel, psi.bias, critic.get_layer("embed").kernel]
    return [w.numpy() for w in by_role]


def _projection_numpy(weights, images, code, absolute=False):
    """J(x, c) = psi(phi(x)) + <V c, phi(x)> in float64 (weights as `_projection_weights` orders them).

    With `absolute`, the same sums over |w| and |x| with identity activations.
    """
    f = np.abs if absolute else (lambda a: a)
    act = f if absolute else _leaky
    w = [f(np.asarray(v, np.float64)) for v in weights]
    x = f(np.asarray(images, np.float64))
    for i, stride in enumerate((2, 2, 2)):
        x = act(_conv(x, w[2 * i], w[2 * i + 1], stride, "same"))
    x = act(_conv(x, w[6], w[7], 1, "valid")).reshape(len(x), -1)
    phi = act(x @ w[8] + w[9])
    unconditional = phi @ w[10] + w[11]
    embedded = f(np.asarray(code, np.float64)) @ w[12]
    return unconditional[:, 0] + np.sum(embedded * phi, axis=1)


def _projection_critic(d=3, width=2, seed=0):
    tf.keras.utils.set_random_seed(seed)
    critic = nets.yan_projection_critic(d, width=width)
    rng = np.random.default_rng(seed)
    # O(1) scores (N(0, 0.02) weights would make every score about 0). The image branch, shared with
    # yan_critic, gets non-negative weights: on images in [0, 1] its sums then have no cancellation, so
    # the float32 error bound below is tight; phi, psi and V get signed weights (leaky ReLU's negative
    # side and the sign of the code are exercised).
    for layer in critic.layers:
        for v in layer.weights:
            fan_in = int(np.prod(v.shape[:-1])) if len(v.shape) > 1 else 16
            if isinstance(layer, tf.keras.layers.Conv2D):
                v.assign(rng.uniform(0, 2 / fan_in, v.shape).astype(np.float32))
            else:
                v.assign(rng.normal(0, 1 / np.sqrt(fan_in), v.shape).astype(np.float32))
    return critic


def test_projection_critic_equals_an_independent_numpy_computation():
    critic = _projection_critic()
    weights = _projection_weights(critic)
    assert len(weights) == len(critic.weights) == 13
    assert [w.shape for w in weights][8:] == [(16, 8), (8,), (8, 1), (1,), (3, 8)]
    images = _images(3, seed=11).numpy()
    code = np.array([[1, -1, 1], [-1, -1, 1], [1, 1, -1]], np.float32)
    scores = critic([images, code]).numpy()[:, 0]
    expected = _projection_numpy(weights, images, code)
    # Float32 forward error: a sum of n terms errs by at most about n u sum |w| |x|, and the errors of the
    # layers add up (leaky ReLU is 1-Lipschitz) to at most (sum of the fan-ins) u times the network
    # evaluated on |weights| and |inputs| with identity activations. Fan-ins, each + 1 for the bias: 16,
    # 32, 64, 128 (convolutions), 16 (phi), 8 (psi), 3 (V), then the 8-term inner product and the final
    # addition: 283 in all, so 300 u.
    bound = 300 * U * _projection_numpy(weights, images, code, absolute=True)
    assert np.all(np.abs(scores - expected) <= bound), (scores, expected, bound)
    assert np.all(bound < 1e-3 * np.abs(expected).max())  # the bound is tight enough to mean something


def test_projection_critic_depends_on_the_code_through_the_inner_product():
    critic = _projection_critic()
    images = np.repeat(_images(1, seed=4).numpy(), 2, axis=0)
    codes = np.array([[1, -1, 1], [-1, 1, 1]], np.float32)
    scores = critic([images, codes]).numpy()[:, 0]
    embed = critic.get_layer("embed").kernel.numpy().astype(np.float64)
    phi_model = tf.keras.Model(critic.inputs[0], critic.get_layer("phi").output)
    phi = _leaky(phi_model(images[:1]).numpy().astype(np.float64))[0]
    # Same image, two codes: the scores differ by exactly <V (c1 - c2), phi(x)>.
    expected = (codes[0] - codes[1]) @ embed @ phi
    assert abs(expected) > 0.1
    np.testing.assert_allclose(scores[0] - scores[1], expected, rtol=1e-4)
    with pytest.raises(ValueError, match="d must be"):
        nets.yan_projection_critic(0)


def test_projection_critic_trains_in_g2(stage1):
    model = _g2(
        stage1,
        critic=lambda: _sensitive(nets.yan_projection_critic(D, width=WIDTH), 5.0),
        pretrain_pairs=4,
    )
    model(_images(1))
    model.compile(run_eagerly=True)
    embed = model.critic.get_layer("embed").kernel
    before = embed.numpy().copy()
    pretraining = model.train_on_batch(_images(4, seed=1), return_dict=True)
    assert np.isfinite(pretraining["pretrain_critic_loss"])
    assert not np.allclose(embed.numpy(), before)  # matched vs shuffled codes train the embedding
    adversarial = model.train_on_batch(_images(4, seed=2), return_dict=True)
    assert np.isfinite(adversarial["generator_loss"]) and int(model.optimizer_generator.iterations) == 1


def test_projection_config_builds():
    from tfdplc import train as tr

    tr.config.parse_gin(
        [f"{ROOT}/gin/perceptual_g2_projection_mnist5k.gin"], ["ENCODER_PATH = 'unused/encoder.keras'"]
    )
    model = tr.build_objective()
    assert model.critic.name == "yan_projection_critic"
    assert model.critic.get_layer("embed").kernel.shape == (4, 64)  # K = 4 bits, 4 x width 16


# ------------------------------------------------------------------------------------------------------
# results/perceptual/convergence.py: the stall rule applied to G2's curves.


@pytest.fixture(scope="module")
def convergence():
    path = os.path.join(ROOT, "results", "perceptual", "convergence.py")
    spec = importlib.util.spec_from_file_location("perceptual_convergence", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convergence_stall_fields_follow_detect_stall(convergence):
    floor = 0.1
    # Down to 0.07, up onto the plateau (0.095), then down and out of it at epoch 5 (step 350).
    curve = [0.07, 0.095, 0.099, 0.085, 0.060, 0.055]
    fields = convergence.stall_fields(curve, floor)
    assert fields == {
        "stalled": False,
        "stall_ratio": pytest.approx(0.55),
        "reached_plateau": True,
        "left_plateau_step": 350,
    }
    stuck = convergence.stall_fields(curve[:3], floor)
    assert stuck["stalled"] and stuck["left_plateau_step"] is None
    # From a record's last value alone: the verdict, no curve-dependent fields. 0.081 is within 20% of
    # the floor (0.08-0.12), 0.079 is not.
    records = [
        {"rate_bits": 8.0, "seed": s, "epochs": 120, "last_test_mse": m}
        for s, m in enumerate((0.081, 0.079, 0.121, 0.05))
    ]
    marked = convergence.with_stalls(records, floor)
    assert [r["stalled"] for r in marked] == [True, False, False, False]
    assert marked[0]["reached_plateau"] is None and marked[0]["stall_band"] == results.STALL_BAND
    table = convergence.stall_table(marked)
    assert table[2].startswith("| 8 | 4 | 1 | 0 |")


def test_committed_convergence_records_carry_the_stall_rule(convergence):
    # results/perceptual/convergence.json was rewritten by `convergence.py --records`: its verdicts are
    # the rule's on its own last values and floor.json's floor.
    with open(os.path.join(ROOT, "results", "perceptual", "convergence.json")) as f:
        records = json.load(f)
    floor = convergence.read_floor()
    for r in records:
        assert r["stalled"] == results.detect_stall([1], [r["last_test_mse"]], floor).stalled, r
