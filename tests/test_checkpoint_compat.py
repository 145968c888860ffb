"""Checkpoints written before the DPLC-family refactor (issue 11) restore into today's objectives.

`tests/data/checkpoints_pre_issue11/<name>/` holds one `tf.train.Checkpoint(model=objective)` per
objective, written by running this file as a script with the code of commit 9a21ca5 (before losses.py and
the objectives were reorganised):

    git worktree add /tmp/old 9a21ca5 && cp tests/test_checkpoint_compat.py /tmp/old/tests/ &&
    (cd /tmp/old && PYTHONPATH=. python tests/test_checkpoint_compat.py OUT_DIR)

The objects are tiny (width 4, m = 8) and trained for one (eager) step, so that every optimizer slot and tracker
exists. A renamed tracker, optimizer attribute or network breaks the restore (both directions are checked).
"""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfdplc import nets
from tfdplc.layers.quantizers import ScalarQuantizer
from tfdplc.objectives import CAE, DPLC, GC, WAE, WGANGP, WassersteinPP

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "checkpoints_pre_issue11")
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


def _write(directory):
    for name in NAMES:
        tf.train.Checkpoint(model=_trained(name, seed=0)).write(os.path.join(directory, name, "ckpt"))


if __name__ == "__main__":
    _write(sys.argv[1])
