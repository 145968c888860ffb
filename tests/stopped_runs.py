"""Turns a finished trainer workdir into the workdir of a run killed after one of its checkpoints.

A test that resumes a stopped run can copy a straight run's workdir and roll it back instead of training
the stopped run itself: a run stopped at step S (an epoch end) writes the checkpoint that the straight run
writes at S, as both run the same steps and the same epoch end before saving (checked, every tensor equal,
for the tiny W++ of test_ratio_curve at step 2, the tiny G2 of test_perceptual_phases at steps 2 and 4,
and test_perceptual's G2 at step 1).
"""

import pathlib
import shutil

import tensorflow as tf

__all__ = ["killed_after"]


def killed_after(workdir, step: int, copy_to=None) -> pathlib.Path:
    """Makes ckpt-STEP a workdir's latest checkpoint, as if its run was killed before writing the next one.

    Args:
      workdir: a trainer workdir holding ckpt-STEP.
      step: the step of the checkpoint to keep as the latest.
      copy_to: if given, the workdir is copied there first and the copy is rolled back.

    Returns:
      The rolled-back workdir.

    Raises:
      FileNotFoundError: if the workdir holds no ckpt-STEP.
      RuntimeError: if TensorFlow does not read ckpt-STEP as the latest checkpoint afterwards.
    """
    if copy_to is not None:
        shutil.copytree(workdir, copy_to, dirs_exist_ok=True)
        workdir = copy_to
    checkpoints = pathlib.Path(workdir) / "checkpoints"
    if not (checkpoints / f"ckpt-{step}.index").exists():
        raise FileNotFoundError(f"{checkpoints} holds no ckpt-{step}.")
    kept = [f"ckpt-{s}" for s in range(1, step + 1) if (checkpoints / f"ckpt-{s}.index").exists()]
    for path in checkpoints.glob("ckpt-*"):
        if path.name.split(".")[0] not in kept:
            path.unlink()
    # Relative names, as tf.train.CheckpointManager writes them: the state holds in a copied folder too.
    tf.compat.v1.train.update_checkpoint_state(str(checkpoints), kept[-1], all_model_checkpoint_paths=kept)
    if tf.train.latest_checkpoint(str(checkpoints)) != str(checkpoints / f"ckpt-{step}"):
        raise RuntimeError(f"{checkpoints}: the rolled-back state does not name ckpt-{step}.")
    return pathlib.Path(workdir)
