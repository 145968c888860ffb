"""Exact resume (issue 26): a stopped and resumed run equals the uninterrupted run, bit for bit.

For every objective, a tiny model trains N = 4 steps on fixed batches straight through (A), writing the
trainer's checkpoint (`tfdplc.train.training_checkpoint`: model, step, the objective's random generator)
after step 2. A new objective built under ANOTHER global seed (C: other initial weights, another global
op-seed stream, another generator seed) restores that checkpoint and trains steps 3-4. Every tensor of
the two final checkpoints (weights, optimizer slots, trackers, generator states) must be equal.

Controls make the test pin behaviour: the weights move, and for the objectives that draw from their
generator, resuming C again from the same checkpoint without the generator's state ends elsewhere. A
penalty, latent or shuffle drawn from TF's global generator instead of the objective's fails the equality
(C runs under another global seed and restarts the global streams), as checked by hand with a mutant
`losses._interpolates` that ignores its seed.

These runs call `train_step` eagerly (no tracing: seconds per objective). The trainer's own path (Keras
fit in graph mode, the CheckpointManager, the trainer's restore) is checked end to end on WGAN-GP. The
runs are repeated under MirroredStrategy on two logical CPUs (in a fresh interpreter: logical devices must
be set before TF starts) for one objective per way of drawing, where the replicas must also draw
different numbers.
"""

import json
import os
import re
import subprocess
import sys
import textwrap

import gin
import numpy as np
import pytest
import tensorflow as tf
from tiny_objectives import build, image_shape, paired, write_shift_source

from tfdplc import train as tr
from tfdplc.objectives.perceptual import random_permutation
from tfdplc.train.trainer import training_checkpoint

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))
STEPS, STOP = 4, 2
#: Objectives whose training steps draw from `random_generator` (the control checks it matters). DPLC
#: draws from it too, but also tracks it in the model (`_prior`), so a model-only restore restores it.
#: The shift objectives draw their critics' penalty weights (and the variable-rate bottleneck its noise)
#: from it; the fixed-rate quantizer's dithers (U1, and U2 without common randomness) come from the
#: quantizer's generator and the decomposition's dithers from its own generator, both tracked in the model.
DRAWS = ("wae", "wgan_gp", "wpp", "gc", "dal", "g2", "joint", "shift_cr", "shift_ncr", "shift_vr",
         "restoration")  # fmt: skip
NAMES = ("cae", "dplc", "decomposition") + DRAWS
# Under MirroredStrategy (eager: about 10 CPU seconds per objective) one objective per way of drawing: the
# penalty's nu and the prior in the critic loop (WGAN-GP), the generator tracked in the model too (DPLC),
# the pre-training's shuffles and a tf.cond between the phases (G2). The others draw through the same
# `Objective.random_generator` / `next_seed` as these.
# Shift without common randomness: a quantizer generator tracked in the model, per replica, beside the
# objective's (the critic's penalty).
MIRRORED_NAMES = ("wgan_gp", "dplc", "g2", "shift_ncr")


def _batches(name, batch):
    """STEPS fixed batches: images, or (degraded, clean) pairs of distinct images."""

    def images(i, stream):
        return tf.random.stateless_uniform((batch, *image_shape(name)), seed=[i, stream])

    if paired(name):
        return [(images(i, 26), images(i, 27)) for i in range(STEPS)]
    return [images(i, 26) for i in range(STEPS)]


def _started(name, seed, strategy, **build_args):
    """A new objective (built under global seed `seed`), compiled, and its step counter."""
    with strategy.scope():
        tf.keras.utils.set_random_seed(seed)
        model, batch = build(name, **build_args)
        model(tf.zeros((1, *image_shape(name))))
        model.compile()
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    return model, step, _batches(name, batch)


def _train(model, step, batches, steps, strategy, eager):
    """Runs `train_step` on batches[i] for i in `steps` (split over the replicas), eagerly or traced."""

    def run(batch):
        return strategy.run(model.train_step, args=(batch,))

    run = run if eager else tf.function(run)
    for i in steps:
        batch = next(iter(strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(batches[i]))))
        run(batch)
        step.assign_add(1)


def _values(path):
    reader = tf.train.load_checkpoint(path)
    names = [n for n in reader.get_variable_to_shape_map() if n != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    return {n: reader.get_tensor(n) for n in names}


def _differing(a, b):
    """{name: largest relative difference} of the tensors of two checkpoints that are not bit for bit equal.

    A name in only one of them counts as differing by infinity.
    """
    differing = {n: float("inf") for n in a.keys() ^ b.keys()}
    for n in a.keys() & b.keys():
        if not np.array_equal(a[n], b[n]):
            x, y = np.asarray(a[n], np.float64), np.asarray(b[n], np.float64)
            # Norm-wise: relative to the tensor's largest magnitude (an entry near 0 has no relative scale).
            differing[n] = float(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), np.finfo(np.float32).tiny))
    return differing


def resume_case(name, directory, strategy=None, eager=True, control=True, **build_args):
    """Runs A (straight), C (stopped and resumed) and the no-generator control; returns what they show.

    Args:
      name: the objective (NAMES).
      directory: a scratch folder for the checkpoints.
      strategy: the distribution strategy (default: the default strategy).
      eager: run the train steps eagerly (faster for these tiny models) or as a tf.function.
      control: also run the control.
      **build_args: passed to `build`.

    Returns:
      A dict: "differing" ({tensor: largest norm-wise relative difference} where C's end differs from A's),
      "moved" (tensors that changed between the stop and A's end), "tensors" (the names compared) and,
      with `control`, "control" (tensors where a resume without the generator's state differs from A's end).
    """
    strategy = strategy or tf.distribute.get_strategy()
    directory = str(directory)
    model, step, batches = _started(name, 0, strategy, **build_args)
    _train(model, step, batches, range(STOP), strategy, eager)
    stop = training_checkpoint(model, step).write(os.path.join(directory, "stop", "ckpt"))
    _train(model, step, batches, range(STOP, STEPS), strategy, eager)
    straight = _values(training_checkpoint(model, step).write(os.path.join(directory, "straight", "ckpt")))

    resumed, step, batches = _started(name, 123, strategy, **build_args)
    training_checkpoint(resumed, step).read(stop).assert_existing_objects_matched()
    _train(resumed, step, batches, range(STOP, STEPS), strategy, eager)
    ended = _values(training_checkpoint(resumed, step).write(os.path.join(directory, "resumed", "ckpt")))

    result = {
        "differing": _differing(straight, ended),
        "moved": sorted(_differing(_values(stop), straight)),
        "tensors": sorted(straight),
    }
    if control:
        # The same objects resumed once more from the stop, without the generator's state (it stays where
        # step 4 left it), as a checkpoint that does not hold it would.
        tf.train.Checkpoint(model=resumed, step=step).read(stop).assert_existing_objects_matched()
        _train(resumed, step, batches, range(STOP, STEPS), strategy, eager)
        path = training_checkpoint(resumed, step).write(os.path.join(directory, "control", "ckpt"))
        result["control"] = sorted(_differing(straight, _values(path)))
    return result


# Sync-on-read variables (BatchNorm moving statistics, the trackers' sums): each replica holds its own
# value, and a checkpoint stores only their mean (statistics) or sum (trackers), which a restore hands back
# to every replica. Under MirroredStrategy a resume therefore changes their float rounding, never the
# training steps (no objective here reads moving statistics of a network it trains). Bound: the aggregate
# passes through at most 4 roundings per step (the save's and the restore's mean or split, the momentum
# update's multiply and add on each replica), each within 1 ulp of the tensor's largest entry, over the 2
# resumed steps: 8 ulp, taken twice.
SYNC_ON_READ = re.compile(r"/(moving_mean|moving_variance)/|_tracker/(total|count)/")
SYNC_ON_READ_TOLERANCE = 16 * float(np.finfo(np.float32).eps)


def _check(name, result, mirrored=False):
    tensors = result["tensors"]
    assert len(tensors) > 20 and "random/_state_var/.ATTRIBUTES/VARIABLE_VALUE" in tensors, tensors
    differing = result["differing"]
    if mirrored:
        aggregates = {n: d for n, d in differing.items() if SYNC_ON_READ.search(n)}
        assert max(aggregates.values(), default=0.0) <= SYNC_ON_READ_TOLERANCE, aggregates
        differing = {n: d for n, d in differing.items() if n not in aggregates}
    assert differing == {}, differing  # the resumed run is the straight run, bit for bit ...
    assert len(result["moved"]) > len(tensors) // 3, result["moved"]  # ... and both trained
    if "control" not in result:
        return
    # Without the generator's state the resume goes elsewhere: the draws come from the generator.
    control = [n for n in result["control"] if not (mirrored and SYNC_ON_READ.search(n))]
    if name in DRAWS:
        assert any("kernel" in n for n in control), control
    else:
        assert control == [], control


@pytest.fixture(scope="module")
def shift_source(tmp_path_factory):
    """A finished tiny fixed-rate shift run without common randomness, the decomposition's source."""
    directory = tmp_path_factory.mktemp("shift_source")
    tf.keras.utils.set_random_seed(7)
    write_shift_source(directory)
    return directory


@pytest.mark.parametrize("name", NAMES)
def test_stop_and_resume_equals_the_straight_run(name, tmp_path, request):
    build_args = (
        {"source_workdir": request.getfixturevalue("shift_source")} if name == "decomposition" else {}
    )
    _check(name, resume_case(name, tmp_path, **build_args))


def test_trainer_resume_in_graph_mode_equals_the_straight_run(tmp_path, mnist5k_dir):
    # The whole path: Keras fit in graph mode, the critic loop as a tf.while_loop, the CheckpointManager,
    # the trainer's restore. WGAN-GP's only randomness is the objective's (the penalty's nu and every z).
    def run(workdir, total):
        gin.clear_config()
        tr.config.parse_gin(
            [os.path.join(REPO_ROOT, "gin", "wgan_gp_mnist5k.gin")],
            [
                "N_CRITIC = 2",
                "generator_G.width = 4",
                "critic_f.width = 4",
                "input_pipeline.batch_size = 8",
                "train.steps_per_epoch = 2",
                f"train.total_steps = {total}",
                "train.eval_steps = 1",
                "train.num_grid_images = 2",
                "train.verbose = 0",
            ],
        )
        tr.train(str(workdir), mnist5k_dir)
        return _values(tf.train.latest_checkpoint(str(workdir / "checkpoints")))

    try:
        straight = run(tmp_path / "straight", 4)
        run(tmp_path / "resumed", 2)
        resumed = run(tmp_path / "resumed", 4)
    finally:
        gin.clear_config()
    assert "random/_state_var/.ATTRIBUTES/VARIABLE_VALUE" in straight
    # save_counter counts one process's saves (the resumed process made one), not training state.
    assert _differing(straight, resumed) == {"save_counter/.ATTRIBUTES/VARIABLE_VALUE": 0.5}
    assert len(straight) > 40


def test_pretraining_shuffle_is_a_permutation_fixed_by_its_seed():
    draws = [random_permutation(tf.constant(64), tf.constant([s, 0], tf.int64)).numpy() for s in (0, 0, 1)]
    assert sorted(draws[0].tolist()) == list(range(64))
    np.testing.assert_array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0], draws[2])
    # Over 2000 seeds, where element 0 lands is uniform over 8 slots (chi-square, 7 dof: p = 0.001 at 24.3).
    counts = np.bincount(
        [int(np.argmax(random_permutation(tf.constant(8), tf.constant([s, 1], tf.int64)).numpy() == 0))
         for s in range(2000)],
        minlength=8,
    )  # fmt: skip
    assert ((counts - 250.0) ** 2 / 250.0).sum() < 24.3, counts


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys, tempfile
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, {tests!r})
    import test_resume

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {{"replicas": strategy.num_replicas_in_sync}}
    for name in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as directory:
            results[name] = test_resume.resume_case(name, directory, strategy, control=False)
    model, _, _ = test_resume._started("wgan_gp", 0, strategy)
    seeds = strategy.experimental_local_results(tf.function(lambda: strategy.run(model.next_seed))())
    results["replica_seeds"] = [s.numpy().tolist() for s in seeds]
    print("RESULT" + json.dumps(results))
    """
).format(tests=TESTS)


@pytest.fixture(scope="module")
def mirrored_results():
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, *MIRRORED_NAMES],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT") :])


@pytest.mark.parametrize("name", MIRRORED_NAMES)
def test_stop_and_resume_equals_the_straight_run_under_mirrored_strategy(name, mirrored_results):
    assert mirrored_results["replicas"] == 2
    _check(name, mirrored_results[name], mirrored=True)


def test_replicas_draw_different_numbers(mirrored_results):
    first, second = mirrored_results["replica_seeds"]
    assert first != second
