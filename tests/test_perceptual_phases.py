"""G2's critic pre-training phase decided in Python, one traced step per phase (issue 26).

`PerceptualG2.make_train_function` replaces the `tf.cond` between critic pre-training and the adversarial
step, whose optimizer updates a multi-replica strategy cannot hold in a cond (merge_call). Pinned here: on
one replica it runs the steps the `tf.cond` ran, in the same order, with the same draws (bit for bit with
Grappler off, see `_grappler_off`); a call of several steps is split at the boundary; a resumed trainer run
crossing or starting past the boundary equals the uninterrupted run; and under MirroredStrategy on two
logical CPUs the trainer (tools/train.py) pre-trains the critic only, then trains G2.
"""

import os
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf
from stopped_runs import killed_after

from tfdplc import nets
from tfdplc import train as tr
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import PerceptualG2
from tfdplc.objectives.perceptual import _per_replica_batch
from tfdplc.objectives.wgan_gp import split_critic_batches

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
D = 4
WIDTH = 4
N_CRITIC = 2
B = 4  # images per critic update
STEPS = 4
PRETRAIN = 2  # pre-training steps: steps 1-2 pre-train J, steps 3-4 are adversarial


def _sensitive(model, factor):
    """Scales the kernels: with N(0, 0.02) weights a tiny network's output barely depends on its input."""
    for layer in model.submodules:
        if isinstance(layer, tf.keras.layers.Layer) and hasattr(layer, "kernel"):
            layer.kernel.assign(layer.kernel * factor)
    return model


def _g2(pretrain_steps=PRETRAIN, pretrain_pairs=0):
    """A tiny G2 with its own (sensitive) E, built and compiled the same way on every call."""
    tf.keras.utils.set_random_seed(0)
    model = PerceptualG2(
        generator=_sensitive(nets.yan_generator(D, width=WIDTH, seed=1), 20.0),
        critic=_sensitive(nets.yan_critic(D, width=WIDTH), 5.0),
        quantizer=ScalarQuantizer((-1.0, 1.0)),
        generator_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        critic_optimizer=tf.keras.optimizers.RMSprop(1e-3),
        encoder=_sensitive(nets.yan_encoder(D, width=WIDTH), 20.0),
        n_critic=N_CRITIC,
        pretrain_steps=pretrain_steps,
        pretrain_pairs=pretrain_pairs,
    )
    model(tf.zeros((1, 32, 32, 1)))
    return model


def _batches():
    return [tf.random.stateless_uniform((N_CRITIC * B, 32, 32, 1), seed=[i, 27]) for i in range(STEPS)]


def _weights(model):
    """Every variable of the model and of both optimizers (slots, step counts), in creation order.

    Keyed by position: Keras names the layers of each new model apart (conv2d_4, conv2d_13, ...).
    """
    variables = model.variables + model.optimizer_critic.variables + model.optimizer_generator.variables
    return {i: v.numpy() for i, v in enumerate(variables)}


def _logs(model):
    return {m.name: float(m.result()) for m in model.metrics}


@pytest.fixture
def _grappler_off():
    """Runs traced functions as traced: Grappler rewrites (fusions) depend on the whole graph.

    The `tf.cond` graph holds both phases' ops, and Grappler fuses some ops there differently than in one
    phase's graph, which changes the float rounding of a step (measured: about 1e-7 relative in the
    weights after 4 steps, as much as the old `tf.cond` code itself changes between steps_per_execution 1
    and 3). The steps, their order and their draws are what these tests compare, so they turn it off.
    """
    before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    yield
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


@pytest.fixture(autouse=True)
def _clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _fit(model, steps_per_execution=1, steps_per_epoch=1):
    """Keras fit over the fixed batches, one epoch of `steps_per_epoch` steps per call of `fit`'s loop.

    Returns:
      The logs of every epoch (with one step per epoch: each step's own values, the trackers reset).
    """
    model.compile(steps_per_execution=steps_per_execution)
    dataset = tf.data.Dataset.from_tensor_slices(tf.stack(_batches())).repeat()
    history = model.fit(dataset, epochs=STEPS // steps_per_epoch, steps_per_epoch=steps_per_epoch, verbose=0)
    return [{k: v[i] for k, v in history.history.items()} for i in range(STEPS // steps_per_epoch)]


def test_fit_runs_the_steps_of_the_tf_cond_and_of_hand_driven_phases(_grappler_off):
    fitted = _g2()
    fit_logs = _fit(fitted)

    # Before: the step's tf.cond on the critic optimizer's step count (the path a hand-written loop takes).
    cond = _g2()
    cond.compile()
    step = tf.function(cond.train_step)
    cond_logs = []
    for images in _batches():
        cond.reset_metrics()
        step(images)
        cond_logs.append(_logs(cond))

    # By hand: PRETRAIN pre-training steps, then adversarial steps, each traced on its own.
    hand = _g2()
    hand.compile()

    def phase_step(run_phase):
        def run(images):
            run_phase(
                split_critic_batches(images, N_CRITIC), split_critic_batches(hand.encode(images), N_CRITIC)
            )

        return tf.function(run)

    pretrain, adversarial = phase_step(hand._pretrain_step), phase_step(hand._adversarial_step)
    hand_logs = []
    for i, images in enumerate(_batches()):
        hand.reset_metrics()
        (pretrain if i < PRETRAIN else adversarial)(images)
        hand_logs.append(_logs(hand))

    assert [log["pretrain_critic_loss"] != 0 for log in fit_logs] == [True, True, False, False]
    assert [log["generator_loss"] != 0 for log in fit_logs] == [False, False, True, True]
    assert fit_logs == cond_logs == hand_logs  # every per-step loss, bit for bit
    weights = _weights(fitted)
    for other in (cond, hand):
        others = _weights(other)
        for name, value in weights.items():
            np.testing.assert_array_equal(value, others[name], err_msg=str(name))
    assert int(fitted.optimizer_critic.iterations) == STEPS * N_CRITIC
    assert int(fitted.optimizer_generator.iterations) == STEPS - PRETRAIN


def test_a_call_of_several_steps_is_split_at_the_end_of_pretraining():
    # One call of 3 steps from step 1 crosses the boundary after step 2: 2 pre-training steps, then 1
    # adversarial one, as 3 calls of one step run them. Unsplit, the call would pre-train 3 steps. Both
    # runs trace the same two phase steps (in a loop or not), so Grappler treats them alike: bit for bit.
    stepwise = _g2()
    _fit(stepwise, steps_per_execution=1, steps_per_epoch=STEPS)
    split = _g2()
    _fit(split, steps_per_execution=3, steps_per_epoch=STEPS)  # calls of 3 then 1 step
    assert int(split.optimizer_generator.iterations) == STEPS - PRETRAIN
    assert int(split._steps_per_execution) == 3  # restored after the split
    expected = _weights(stepwise)
    for name, value in _weights(split).items():
        np.testing.assert_array_equal(value, expected[name], err_msg=str(name))


def test_the_pair_budget_reads_the_per_replica_batch_of_the_iterator():
    spec = tf.data.Dataset.from_tensors(tf.zeros([8, 32, 32, 1])).repeat()
    assert _per_replica_batch(iter(spec)) == 8
    assert _per_replica_batch(iter(spec.map(lambda x: (x,)))) == 8
    assert _per_replica_batch(iter(tf.data.Dataset.range(10).batch(4))) is None  # a partial last batch
    model = _g2(pretrain_steps=0, pretrain_pairs=17)  # 2 x 4 pairs per step: 3 steps
    assert model.pretraining_end(4) == 3 and model.pretraining_end(None) is None
    assert _g2().pretraining_end() == PRETRAIN


def test_an_unknown_batch_size_leaves_the_phase_to_the_tf_cond():
    # pretrain_pairs = 8 at b = 4, n_critic = 2: one pre-training step. Batches of unknown size (no
    # drop_remainder) give no static b, so the step's tf.cond decides (one replica).
    model = _g2(pretrain_steps=0, pretrain_pairs=8)
    model.compile()
    images = tf.concat(_batches()[:2], axis=0)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(N_CRITIC * B).repeat()
    history = model.fit(dataset, epochs=2, steps_per_epoch=1, verbose=0).history
    assert [v != 0 for v in history["pretrain_critic_loss"]] == [True, False]
    assert int(model.optimizer_generator.iterations) == 1


# The trainer's path: tools/train.py's config at tiny size, a stage-1 E saved first. Stops fall on epoch
# ends (every 2 steps), as in an uninterrupted run: an epoch end draws G2's noise (validation, image grid).
TRAINER_STEPS = 6
TRAINER_PRETRAIN = 3


def _bindings(encoder_path, total, steps_per_execution=1):
    return [
        "K = 2",
        f"ENCODER_PATH = '{encoder_path}'",
        "yan_generator.width = 4",
        "yan_critic.width = 4",
        "input_pipeline.batch_size = 8",
        "PerceptualG2.pretrain_pairs = 24",  # 8 pairs per step: steps 1-3 pre-train J
        f"train.total_steps = {total}",
        "train.steps_per_epoch = 2",
        f"train.steps_per_execution = {steps_per_execution}",
        "train.eval_steps = 1",
        "train.num_grid_images = 2",
        "train.verbose = 0",
    ]


@pytest.fixture(scope="module")
def encoder_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("stage1") / "encoder.keras")
    tf.keras.utils.set_random_seed(0)
    _sensitive(nets.yan_encoder(2, width=4), 20.0).save(path)
    return path


def _values(workdir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))
    names = [n for n in reader.get_variable_to_shape_map() if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    return {n: reader.get_tensor(n) for n in names}


def _train(workdir, data_dir, encoder_path, total, steps_per_execution=1):
    gin.clear_config()
    tr.config.parse_gin(
        [f"{ROOT}/gin/perceptual_g2_mnist5k.gin"], _bindings(encoder_path, total, steps_per_execution)
    )
    tr.train(str(workdir), data_dir)
    return _values(str(workdir))


@pytest.fixture(scope="module")
def straight(tmp_path_factory, mnist5k_dir, encoder_path):
    """The uninterrupted trainer run (3 pre-training steps, 3 adversarial ones): its workdir, with
    ckpt-2, ckpt-4 and ckpt-6, and the values of its last checkpoint."""
    workdir = tmp_path_factory.mktemp("straight")
    return {"workdir": workdir, "values": _train(workdir, mnist5k_dir, encoder_path, TRAINER_STEPS)}


def _check_resumed(straight, resumed):
    iterations = "model/optimizer_generator/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
    assert straight[iterations] == TRAINER_STEPS - TRAINER_PRETRAIN
    assert straight.keys() == resumed.keys() and len(straight) > 40
    differing = [n for n in straight if not np.array_equal(straight[n], resumed[n])]
    # save_counter counts one process's saves (each resumed run made its own), not training state.
    assert differing == ["save_counter/.ATTRIBUTES/VARIABLE_VALUE"], differing


def test_a_trainer_run_resumed_inside_pretraining_crosses_the_boundary_as_the_straight_run(
    straight, tmp_path, mnist5k_dir, encoder_path
):
    # Killed after step 2 (the straight run's ckpt-2 is a 2-step run's, tests/stopped_runs.py); the resumed
    # run's first call (steps 3-4) is split after its first step.
    workdir = killed_after(straight["workdir"], 2, copy_to=tmp_path)
    resumed = _train(workdir, mnist5k_dir, encoder_path, TRAINER_STEPS, steps_per_execution=2)
    _check_resumed(straight["values"], resumed)


def test_a_trainer_run_resumed_past_the_boundary_continues_adversarially(
    straight, tmp_path, mnist5k_dir, encoder_path
):
    workdir = killed_after(straight["workdir"], 4, copy_to=tmp_path)
    _check_resumed(straight["values"], _train(workdir, mnist5k_dir, encoder_path, TRAINER_STEPS))


def test_pretraining_trains_under_mirrored_strategy_in_graph_mode(tmp_path, encoder_path):
    # tools/train.py with 2 logical CPUs and train.strategy = 'mirrored' (Keras fit traces the step). A
    # tf.cond between the phases failed here: each optimizer update is a merge_call across replicas.
    # 16 images = 8 per replica, n_critic 1: 16 pairs per step, so 32 pairs are steps 1-2.
    bindings = _bindings(encoder_path, 3)[:4] + [
        "input_pipeline.batch_size = 16",
        "PerceptualG2.pretrain_pairs = 32",
        "train.strategy = 'mirrored'",
        "train.total_steps = 3",
        "train.steps_per_epoch = 1",
        "train.keep_checkpoints = 3",
        "train.eval_steps = 1",
        "train.num_grid_images = 2",
        "train.verbose = 0",
    ]
    result = subprocess.run(
        [
            sys.executable,
            "tools/train.py",
            f"--workdir={tmp_path}",
            "--num_cpu_devices=2",
            "--gin_config=gin/perceptual_g2_mnist5k.gin",
            *[f"--gin_bindings={b}" for b in bindings],
        ],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Strategy MirroredStrategy with 2 replicas" in result.stderr
    steps = [tf.train.load_checkpoint(str(tmp_path / "checkpoints" / f"ckpt-{s}")) for s in (1, 2, 3)]

    def changed(part, a, b):
        names = [
            n
            for n in steps[a].get_variable_to_shape_map()
            if n.startswith(f"model/{part}/") and "/kernel/" in n
        ]
        assert names, part
        return [n for n in names if not np.array_equal(steps[a].get_tensor(n), steps[b].get_tensor(n))]

    assert changed("critic", 0, 1) and not changed("generator", 0, 1)  # step 2 pre-trains J only
    assert changed("generator", 1, 2)  # step 3 trains G2
    iterations = "model/optimizer_{}/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
    assert [int(s.get_tensor(iterations.format("generator"))) for s in steps] == [0, 0, 1]
    assert [int(s.get_tensor(iterations.format("critic"))) for s in steps] == [1, 2, 3]


# A fresh interpreter (logical devices must be set before TensorFlow starts): a hand-written traced loop
# under two replicas has no pinned phase, and the tf.cond it would need cannot hold the updates.
UNPINNED_UNDER_MIRRORED = f"""
import sys
import tensorflow as tf
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from tfdplc.train import config
config.split_cpu(2)
import test_perceptual_phases as t

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = t._g2()
    model.compile()
images = tf.data.Dataset.from_tensors(t._batches()[0]).repeat()
batch = next(iter(strategy.experimental_distribute_dataset(images)))
try:
    tf.function(lambda x: strategy.run(model.train_step, args=(x,)))(batch)
except ValueError as e:
    print("ERROR", e)
"""


def test_a_step_traced_by_hand_under_two_replicas_is_refused_clearly():
    result = subprocess.run(
        [sys.executable, "-c", UNPINNED_UNDER_MIRRORED],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "PerceptualG2: a traced step under 2 replicas" in result.stdout, result.stdout[-2000:]
    assert "make_train_function" in result.stdout
