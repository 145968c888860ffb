"""The gradient-ratio curve over a run (issue 25 item 1): tfdplc.train.ratio_curve and tools/diagnose.py.

- The callback leaves training bit-identical (WAE, Wasserstein++, DPLC stage 2, GC: every tensor of the
  trainer's checkpoint, including optimizer slots and random-generator states), with a control that the
  weights move. Checked by hand: measuring without the stateless seed (the objective's and B's generators
  advance) or without putting back the batch-norm statistics fails it.
- A logged point equals an independent computation from the checkpoint of its step (the distortion's
  gradient in closed form, the critic's per-image input gradients): a mutant that logs the MMD ratio, or
  gamma's weights swapped (gamma = 0.2 here), or the point of another step, fails.
- The curve read afterwards from the checkpoints equals the logged one.
- tools/diagnose.py: missing or empty log -> exit 2 with a clear error; a real log -> table and PNG.
"""

import json
import os

import gin
import numpy as np
import pytest
import tensorflow as tf
from inprocess_tools import load_tool
from stopped_runs import killed_after
from tiny_objectives import M, build

from tfdplc import calibration, data, losses
from tfdplc import train as tr
from tfdplc.train import ratio_curve
from tfdplc.train.callbacks import StepClock
from tfdplc.train.trainer import build_objective, load_workdir_config, training_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 3
GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"  # holds the layers' names, which differ between two builds


@pytest.fixture(autouse=True)
def _clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _state(model, step, path):
    """Every tensor of the trainer's checkpoint (networks, optimizer slots, trackers, generator states)."""
    saved = training_checkpoint(model, step).write(path)
    reader = tf.train.load_checkpoint(saved)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map() if name != GRAPH}


def _train_eagerly(name, log_dir, tmp_path):
    """STEPS train steps on fixed batches through the Keras callback hooks; the curve every step if log_dir."""
    tf.keras.utils.set_random_seed(5)
    model, batch = build(name)
    model(tf.zeros((1, 32, 32, 1)))
    model.compile()
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    initial = _state(model, step, str(tmp_path / f"{name}-initial"))
    batches = [tf.random.stateless_uniform((batch, 32, 32, 1), seed=[i, 25]) for i in range(STEPS)]
    clock = StepClock(0, STEPS, STEPS)
    callbacks = [clock]
    if log_dir:
        measured = [tf.random.stateless_uniform((batch, 32, 32, 1), seed=[9, i]) for i in range(2)]
        callbacks.append(ratio_curve.GradientRatioCurve(measured, log_dir, clock, every_steps=1, seed=7))
    for callback in callbacks:
        callback.set_model(model)
        callback.on_train_begin()
    for i in range(STEPS):
        model.train_step(batches[i])
        step.assign_add(1)
        for callback in callbacks:
            callback.on_train_batch_end(i)
    return initial, _state(model, step, str(tmp_path / f"{name}-{bool(log_dir)}"))


@pytest.mark.parametrize("name", ["wae", "wpp", "dplc", "gc"])
def test_the_curve_leaves_training_bit_identical(name, tmp_path):
    initial, without = _train_eagerly(name, None, tmp_path)
    _, with_curve = _train_eagerly(name, str(tmp_path / "logs"), tmp_path)
    assert without.keys() == with_curve.keys()
    for key in without:
        np.testing.assert_array_equal(with_curve[key], without[key], err_msg=key)
    moved = [k for k in initial if "kernel" in k and not np.array_equal(initial[k], without[k])]
    assert moved, "control: training moved no kernel"
    records = ratio_curve.read_curve(str(tmp_path / "logs" / ratio_curve.LOG_FILE))
    assert [r["step"] for r in records] == list(range(STEPS + 1))
    keys = {"wae": {"mmd_ratio"}, "dplc": {"mmd_ratio"}, "gc": {"adversarial_ratio", "critic_grad"}}
    for record in records:
        for key in keys.get(name, {"mmd_ratio", "adversarial_ratio", "critic_grad"}):
            assert np.isfinite(record[key]) and record[key] > 0, (key, record)
    # Successive points differ: each measures the weights of its own step.
    values = {tuple(r[k] for k in calibration.CURVE_KEYS if k in r) for r in records}
    assert len(values) == len(records)


# The trainer's path: a tiny Wasserstein++ through tools/train.py's gin config.

TINY_WPP = [
    "encoder_F.width = 4", "generator_G.width = 4", "critic_f.width = 4", "M = 8", "N_CRITIC = 2",
    "input_pipeline.batch_size = 8", "WassersteinPP.gamma = 0.2", "train.total_steps = 4",
    "train.steps_per_epoch = 2", "train.keep_checkpoints = 5", "train.eval_steps = 1",
    "train.num_grid_images = 2", "train.verbose = 0",
]  # fmt: skip


def _train_wpp(workdir, data_dir, bindings=()):
    gin.clear_config()
    tr.config.parse_gin([f"{ROOT}/gin/wpp_mnist5k.gin"], TINY_WPP + list(bindings))
    tr.train(str(workdir), data_dir)
    gin.clear_config()


@pytest.fixture(scope="module")
def wpp_workdir(tmp_path_factory, mnist5k_dir):
    """A 4-step tiny W++ run with the curve every 2 steps (2 batches of 8, seed 1: the defaults)."""
    workdir = tmp_path_factory.mktemp("ratio") / "wpp"
    _train_wpp(workdir, mnist5k_dir, ["train.gradient_ratio_every = 2"])
    return workdir


@pytest.fixture(scope="module")
def plain_workdir(tmp_path_factory, mnist5k_dir):
    """The same 4-step run without the curve (checkpoints at steps 2 and 4)."""
    workdir = tmp_path_factory.mktemp("ratio") / "plain"
    _train_wpp(workdir, mnist5k_dir)
    return workdir


def _independent_point(workdir, data_dir, checkpoint, seed=1, count=2):
    """The curve's values at a checkpoint, computed without tfdplc.calibration.

    W++ (gamma = 0.2, n_critic = 2, b = 4): on the last mini-batch x of each measured batch, x^ = G(F(x)).
    The authors'-code distortion L = sqrt(mean(4 (x - x^)^2)) has gradient 4 (x^ - x) / (N L) w.r.t. x^
    (N = b D), and gamma * (-1/b sum_i f(x^_i)) has gradient -gamma grad f(x^_i) / b. The MMD ratio is
    lambda_MMD ||grad_z MMD(z_prior, z)|| / ||grad_z L(x, G(z))|| at z = F(x), z_prior drawn from the
    measurement's documented stateless seed.
    """
    load_workdir_config(str(workdir))
    batches = ratio_curve.measurement_batches(count, seed, data_dir=data_dir)
    model = build_objective()
    model(batches[0][:1])
    tf.train.Checkpoint(model=model).restore(str(workdir / "checkpoints" / checkpoint)).expect_partial()
    adversarial, mmd_ratios, critic_grads = [], [], []
    for i, images in enumerate(batches):
        real = images[4:]
        z = model.encoder(real, training=True)
        decoded = model.generator(z, training=True)
        diff = (decoded - real).numpy().astype(np.float64)
        n = diff.size
        rmse = np.sqrt(np.mean(4 * diff**2))
        distortion_grad = 4 * np.linalg.norm(diff) / (n * rmse)
        with tf.GradientTape() as tape:
            tape.watch(decoded)
            scores = tf.reduce_sum(model.critic(decoded, training=True))
        per_image = np.linalg.norm(tape.gradient(scores, decoded).numpy().reshape(4, -1), axis=1)
        adversarial.append(0.2 * np.sqrt(np.sum(per_image**2)) / 4 / (0.8 * distortion_grad))
        critic_grads.append(per_image.mean())
        prior_seed = tf.random.experimental.stateless_split((seed, i), 2)[0]
        prior = tf.random.stateless_normal((4, M), seed=prior_seed)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(z)
            mmd = losses.mmd_imq(prior, z)
            distortion = losses.batch_rmse_pm1(real, model.generator(z, training=True))
        mmd_ratios.append(
            100.0 * np.linalg.norm(tape.gradient(mmd, z)) / np.linalg.norm(tape.gradient(distortion, z))
        )
    gin.clear_config()
    return {
        "adversarial_ratio": np.mean(adversarial),
        "mmd_ratio": np.mean(mmd_ratios),
        "critic_grad": np.mean(critic_grads),
    }


def test_a_logged_point_equals_an_independent_computation_at_its_step(wpp_workdir, mnist5k_dir):
    records = ratio_curve.read_curve(str(wpp_workdir / "logs" / ratio_curve.LOG_FILE))
    assert [r["step"] for r in records] == [0, 2, 4]
    point = records[1]
    assert point["objective"] == "WassersteinPP" and point["weights"]["gamma"] == pytest.approx(0.2)
    assert point["batches"] == 2 and point["batch_size"] == 8 and point["seed"] == 1
    expected = _independent_point(wpp_workdir, mnist5k_dir, "ckpt-2")
    # float32 sums over b D = 4096 pixels and through the networks' forward passes: ~1e-6 relative; the
    # measured values differ from step to step by far more (the last assertion).
    for key, value in expected.items():
        assert point[key] == pytest.approx(value, rel=1e-4), key
    assert records[2]["adversarial_ratio"] != pytest.approx(expected["adversarial_ratio"], rel=1e-2)


def test_the_trainer_curve_leaves_the_run_bit_identical(wpp_workdir, plain_workdir):
    assert not (plain_workdir / "logs" / ratio_curve.LOG_FILE).exists()
    for checkpoint in ("ckpt-2", "ckpt-4"):
        with_curve = tf.train.load_checkpoint(str(wpp_workdir / "checkpoints" / checkpoint))
        plain = tf.train.load_checkpoint(str(plain_workdir / "checkpoints" / checkpoint))
        names = plain.get_variable_to_shape_map()
        assert names == with_curve.get_variable_to_shape_map()
        for name in set(names) - {GRAPH}:
            np.testing.assert_array_equal(with_curve.get_tensor(name), plain.get_tensor(name), err_msg=name)


def test_the_curve_from_checkpoints_equals_the_logged_curve(wpp_workdir, mnist5k_dir):
    logged = {r["step"]: r for r in ratio_curve.read_curve(str(wpp_workdir / "logs" / ratio_curve.LOG_FILE))}
    tf.random.set_seed(1234)  # as in a fresh process: another global seed than the training run's 0
    after = ratio_curve.curve_from_checkpoints(str(wpp_workdir), count=2, seed=1, data_dir=mnist5k_dir)
    assert [(r["step"], r["checkpoint"]) for r in after] == [(2, "ckpt-2"), (4, "ckpt-4")]
    for record in after:
        for key in ("adversarial_ratio", "mmd_ratio", "critic_grad", "distortion", "mmd"):
            # The same ops on the same weights and batches; the trainer ran them under its strategy scope.
            assert record[key] == pytest.approx(logged[record["step"]][key], rel=1e-5), key


def test_the_measured_batches_are_a_seeded_sample_of_the_split_whatever_the_global_seed(mnist5k_dir):
    tr.config.parse_gin([f"{ROOT}/gin/wpp_mnist5k.gin"], ["input_pipeline.batch_size = 40"])
    tf.random.set_seed(0)
    first = ratio_curve.measurement_batches(3, seed=4, data_dir=mnist5k_dir)
    tf.random.set_seed(99)
    again = ratio_curve.measurement_batches(3, seed=4, data_dir=mnist5k_dir)
    other = ratio_curve.measurement_batches(3, seed=5, data_dir=mnist5k_dir)
    assert len(first) == 3 and all(b.shape == (40, 32, 32, 1) for b in first)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    split = data.load_images("mnist5k", "train", data_dir=mnist5k_dir, resolution=32)
    index = {x.numpy().tobytes(): i for i, x in enumerate(split)}
    drawn = [index[image.tobytes()] for b in first for image in b.numpy()]  # KeyError: not a split image
    assert len(set(drawn)) == 120
    # Spread over the class-sorted split (450 digits per class), not its first digits.
    assert len({i // 450 for i in drawn}) == 10 and max(drawn) > 4000
    assert set(drawn) != {index[image.tobytes()] for b in other for image in b.numpy()}
    with pytest.raises(ValueError, match="fewer than 3 batches of 40"):
        ratio_curve.measurement_batches(3, seed=4, data_dir=mnist5k_dir, pool=100)


def test_diagnose_prints_the_curve_and_refuses_a_missing_or_empty_log(wpp_workdir, tmp_path, capsys):
    diagnose = load_tool("diagnose")
    (tmp_path / "empty" / "logs").mkdir(parents=True)
    (tmp_path / "empty" / "logs" / ratio_curve.LOG_FILE).write_text("")
    png = tmp_path / "curve.png"
    try:
        for workdir in (tmp_path / "missing", tmp_path / "empty"):
            diagnose.FLAGS(["diagnose.py", f"--ratio_curve_workdir={workdir}"])
            assert diagnose.main([]) == 2
            assert "tools/diagnose.py --ratio_curve_source=checkpoints" in capsys.readouterr().err
        diagnose.FLAGS(["diagnose.py", f"--ratio_curve_workdir={wpp_workdir}", f"--output={png}"])
        assert diagnose.main([]) == 0
    finally:
        diagnose.FLAGS.unparse_flags()
    out = capsys.readouterr().out
    records = ratio_curve.read_curve(str(wpp_workdir / "logs" / ratio_curve.LOG_FILE))
    rows = [line for line in out.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [int(row.split("|")[1]) for row in rows] == [0, 2, 4]
    assert f"{records[1]['adversarial_ratio']:.3g}" in rows[1] and "gamma = 0.2" in out
    assert png.stat().st_size > 1000


def test_a_resumed_run_drops_the_records_after_its_checkpoint_and_measures_where_it_starts(
    plain_workdir, tmp_path, mnist5k_dir
):
    # The run without the curve, killed after ckpt-2 (the 4-step run's first checkpoint is that of a
    # 2-step run: the same steps, then the same epoch end).
    workdir = killed_after(plain_workdir, 2, copy_to=tmp_path / "resumed")
    path = workdir / "logs" / ratio_curve.LOG_FILE
    path.write_text(json.dumps({"step": 3, "mmd_ratio": -1.0}) + "\n")  # as if logged, then lost in a crash
    _train_wpp(workdir, mnist5k_dir, ["train.gradient_ratio_every = 2"])  # resumed at 2 with the curve
    records = ratio_curve.read_curve(str(path))
    assert [r["step"] for r in records] == [2, 4] and records[0]["mmd_ratio"] > 0


def test_the_trainer_refuses_a_curve_it_cannot_measure(tmp_path, mnist5k_dir):
    from tfdplc.train.checks import GinConfigError

    tr.config.parse_gin([f"{ROOT}/gin/shift_sr_mnist5k.gin"], ["train.gradient_ratio_every = 10"])
    with pytest.raises(GinConfigError, match="no gradient balance is defined for"):
        tr.train(str(tmp_path / "w"), mnist5k_dir)
    assert not (tmp_path / "w").exists()


def test_read_curve_names_a_bad_line(tmp_path):
    path = tmp_path / "curve.jsonl"
    path.write_text(json.dumps({"step": 0, "mmd_ratio": 1.0}) + "\nnot json\n")
    with pytest.raises(ValueError, match="curve.jsonl:2 is not a gradient-ratio record"):
        ratio_curve.read_curve(str(path))
