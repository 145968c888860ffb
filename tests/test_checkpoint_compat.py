"""Checkpoints written before the DPLC-family refactor (issue 11) restore into today's objectives.

Trainer checkpoints written before the objectives' random generators (issue 26) resume as well.

`tests/data/checkpoints_pre_issue11/<name>/` holds one `tf.train.Checkpoint(model=objective)` per
objective, written by running this file as a script with the code of commit 9a21ca5 (before losses.py and
the objectives were reorganised):

    git worktree add /tmp/old 9a21ca5 && cp tests/test_checkpoint_compat.py /tmp/old/tests/ &&
    (cd /tmp/old && PYTHONPATH=. python tests/test_checkpoint_compat.py OUT_DIR)

The objects are tiny (width 4, m = 8) and trained for one (eager) step, so that every optimizer slot and tracker
exists. A renamed tracker, optimizer attribute or network breaks the restore (both directions are checked).

`tests/data/checkpoints_pre_shift_seeded_noise/<name>/` holds trainer checkpoints (`training_checkpoint`:
model, step, random generator) of tiny shift objectives (tests/tiny_objectives.py), written by the code of
commit 5a291b3, before the variable-rate bottleneck drew its training noise from the objective's generator:

    mkdir /tmp/old && git archive 5a291b3 tfdplc | tar -x -C /tmp/old && mkdir /tmp/old/tests &&
    cp tests/test_checkpoint_compat.py tests/tiny_objectives.py /tmp/old/tests/ &&
    (cd /tmp/old && PYTHONPATH=. python tests/test_checkpoint_compat.py --shift OUT_DIR)
"""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf
from tiny_objectives import build as build_tiny
from tiny_objectives import image_shape

from tfdplc import nets
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import CAE, DPLC, GC, WAE, WGANGP, WassersteinPP
from tfdplc.train import trainer as tr

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "checkpoints_pre_issue11")
SHIFT_DATA = os.path.join(os.path.dirname(DATA), "checkpoints_pre_shift_seeded_noise")
#: The variable-rate model, whose training noise changed source (same layout: nothing was added).
SHIFT_NAMES = ("shift_vr",)
M = 8


def _quantizer():
    return ScalarQuantizer((-1.0, 1.0), gradient="soft_to_hard")


def _build(name):
    """(objective, batch size) of one tiny objective, built from seed 0."""
    tf.keras.utils.set_random_seed(0)
    adam = tf.keras.optimizers.Adam
    if name == "cae":
        model = CAE(
            nets.encoder_E(32, 2, width=4, channels=1),
            nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=False),
            nets.generator_G(32, m=M, width=4, channels=1),
            _quantizer(),
            adam(1e-3),
        )
        return model, 4
    if name == "wae":
        model = WAE(nets.encoder_F(32, M, width=4, channels=1), nets.generator_G(32, M, width=4, channels=1),
                    adam(1e-3), adam(1e-3))  # fmt: skip
        return model, 4
    if name == "wgan_gp":
        model = WGANGP(nets.generator_G(32, M, width=4, channels=1), nets.critic_f(32, width=4, channels=1),
                       adam(1e-3), adam(1e-3), n_critic=2)  # fmt: skip
        return model, 8
    if name == "wpp":
        model = WassersteinPP(
            nets.encoder_F(32, M, width=4, channels=1), nets.generator_G(32, M, width=4, channels=1),
            nets.critic_f(32, width=4, channels=1), adam(1e-3), adam(1e-3), adam(1e-3), n_critic=2,
        )  # fmt: skip
        return model, 8
    if name == "dplc":
        model = DPLC(
            encoder=nets.encoder_E(32, 2, width=4, channels=1),
            mapping=nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=True, seed=1),
            quantizer=_quantizer(),
            optimizer=adam(1e-3),
            lambda_mmd=10.0,
            generator=nets.generator_G(32, m=M, width=4, channels=1),
            seed=2,
        )
        return model, 4
    if name == "gc":
        model = GC(
            encoder=nets.encoder_E(32, 2, width=4, channels=1),
            mapping=nets.mapping_B(32, 2, m=M, n_blocks=1, width=8, noise=True, seed=1),
            generator=nets.generator_G(32, m=M, width=4, channels=1),
            critic=nets.critic_f(32, width=4, channels=1),
            quantizer=_quantizer(),
            optimizer=adam(1e-3),
            critic_optimizer=adam(1e-3),
            lambda_wd=0.5,
            n_critic=2,
        )
        return model, 8
    raise ValueError(name)


NAMES = ("cae", "wae", "wgan_gp", "wpp", "dplc", "gc")


def _trained(name, seed):
    model, batch = _build(name)
    images = tf.random.stateless_uniform((batch, 32, 32, 1), seed=[seed, 0])
    model(images[:1])
    model.compile()  # as the trainer does: Keras tracks the first optimizer as `optimizer` too
    model.train_step(images)  # eagerly: tracing six graphs would take a minute
    return model


@pytest.mark.parametrize("name", NAMES)
def test_pre_refactor_checkpoint_restores(name):
    model = _trained(name, seed=1)  # every variable, slot and tracker exists, with other values
    before = [v.numpy().copy() for v in model.variables]
    status = tf.train.Checkpoint(model=model).read(os.path.join(DATA, name, "ckpt"))
    status.assert_consumed()  # every value of the old checkpoint found its object ...
    status.assert_existing_objects_matched()  # ... and every object of today's model had a value
    changed = [not np.array_equal(b, v.numpy()) for b, v in zip(before, model.variables)]
    assert sum(changed) > len(changed) // 2  # the restore really replaced the values


def _state(model):
    return model.random_generator.state.numpy().copy()


@pytest.mark.parametrize("name", ["wgan_gp", "dplc"])
def test_trainer_checkpoint_without_the_generator_state_still_resumes(name, tmp_path):
    # Before issue 26 the trainer saved tf.train.Checkpoint(model, step) (CheckpointManager.save); now it
    # adds the objective's random generator beside the model (`training_checkpoint`). DPLC also tracks it
    # in the model, as `_prior`, as it did before.
    old = _trained(name, seed=1)
    old.random_generator.normal([5])  # a state that differs from a fresh objective's
    step = tf.Variable(7, dtype=tf.int64, name="step")
    old_path = tf.train.Checkpoint(model=old, step=step).save(str(tmp_path / "old" / "ckpt"))
    new_path = tr.training_checkpoint(old, step).save(str(tmp_path / "new" / "ckpt"))
    assert tf.train.load_checkpoint(new_path).has_tensor("random/_state_var/.ATTRIBUTES/VARIABLE_VALUE")
    assert not tf.train.load_checkpoint(old_path).has_tensor("random/_state_var/.ATTRIBUTES/VARIABLE_VALUE")

    # The old layout resumes through the trainer's restore (every object of the model matched) ...
    model, fresh_step = _trained(name, seed=2), tf.Variable(0, dtype=tf.int64, name="step")
    fresh = _state(model)
    tr._restore(model, fresh_step, old_path, str(tmp_path), [])
    assert int(fresh_step.numpy()) == 7
    for a, b in zip(old.variables, model.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # ... where the generator keeps the state it was built with: none was saved beside the model. DPLC's,
    # tracked in the model as `_prior`, comes back with the model.
    expected = _state(old) if name == "dplc" else fresh
    np.testing.assert_array_equal(_state(model), expected)
    assert name == "dplc" or not np.array_equal(fresh, _state(old))

    # The new layout restores the generator too, through the trainer ...
    model, fresh_step = _trained(name, seed=2), tf.Variable(0, dtype=tf.int64, name="step")
    tr._restore(model, fresh_step, new_path, str(tmp_path), [])
    np.testing.assert_array_equal(_state(model), _state(old))
    # ... and code that reads only (model, step), as the trainer did before, still reads it.
    other = _trained(name, seed=2)
    tf.train.Checkpoint(model=other, step=tf.Variable(0, dtype=tf.int64)).restore(
        new_path
    ).assert_existing_objects_matched().expect_partial()
    for a, b in zip(old.variables, other.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def _trained_shift(name, seed):
    """A tiny shift objective trained one eager step on (degraded, clean) pairs, and the pairs."""
    tf.keras.utils.set_random_seed(seed)
    model, batch = build_tiny(name)
    pairs = tuple(tf.random.stateless_uniform((batch, *image_shape(name)), seed=[seed, i]) for i in (0, 1))
    model(pairs[0][:1])
    model.compile()
    model.train_step(pairs)
    return model, pairs


@pytest.mark.parametrize("name", SHIFT_NAMES)
def test_shift_checkpoint_from_before_the_seeded_bottleneck_noise_resumes(name):
    model, pairs = _trained_shift(name, seed=1)  # other values everywhere
    step = tf.Variable(0, dtype=tf.int64, name="step")
    before = [v.numpy().copy() for v in model.variables]
    path = os.path.join(SHIFT_DATA, name, "ckpt")
    status = tr.training_checkpoint(model, step).read(path)
    status.assert_consumed()  # the layout did not change: every saved value found its object ...
    status.assert_existing_objects_matched()  # ... and every object had a value
    assert int(step.numpy()) == 1
    saved_state = tf.train.load_checkpoint(path).get_tensor("random/_state_var/.ATTRIBUTES/VARIABLE_VALUE")
    np.testing.assert_array_equal(model.random_generator.state.numpy(), saved_state)
    changed = [not np.array_equal(b, v.numpy()) for b, v in zip(before, model.variables)]
    assert sum(changed) > len(changed) // 2
    # Training goes on from the restored state (the variable-rate noise now from the restored generator).
    restored = [v.numpy().copy() for v in model.trainable_variables]
    model.train_step(pairs)
    assert not np.array_equal(model.random_generator.state.numpy(), saved_state)
    moved = [not np.array_equal(r, v.numpy()) for r, v in zip(restored, model.trainable_variables)]
    assert sum(moved) > len(moved) // 2
    assert all(np.all(np.isfinite(v.numpy())) for v in model.trainable_variables)


def _write(directory):
    for name in NAMES:
        tf.train.Checkpoint(model=_trained(name, seed=0)).write(os.path.join(directory, name, "ckpt"))


def _write_shift(directory):
    for name in SHIFT_NAMES:
        model, _ = _trained_shift(name, seed=0)
        step = tf.Variable(1, dtype=tf.int64, name="step")
        tr.training_checkpoint(model, step).write(os.path.join(directory, name, "ckpt"))


if __name__ == "__main__":
    if sys.argv[1] == "--shift":
        _write_shift(sys.argv[2])
    else:
        _write(sys.argv[1])
