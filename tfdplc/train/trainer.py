"""The gin-configured trainer: objective + data + strategy -> workdir.

A workdir holds:
  config.gin             the full gin config the run was started with (used to rebuild the model),
  operative_config.gin   the parameters that were actually used,
  checkpoints/           `tf.train.Checkpoint`s of the objective (networks + optimizers) and the epoch,
  logs/                  TensorBoard scalars (train and validation) and image grids,
  and what the objective's `save_artifacts` writes at the end of a successful run (stage-1 generator
  objectives: generator.keras and, with an encoder, encoder.keras).
"""

import os
import shutil
import tempfile
from typing import Callable, Optional

import gin
import tensorflow as tf
from absl import logging

from tfdplc import data
from tfdplc.train import callbacks as cb
from tfdplc.train.strategy import is_chief, make_strategy

__all__ = [
    "NonFiniteLossError",
    "train",
    "build_objective",
    "restore_objective",
    "load_workdir_config",
    "CONFIG_FILE",
]

CONFIG_FILE = "config.gin"
OPERATIVE_CONFIG_FILE = "operative_config.gin"
CHECKPOINT_DIR = "checkpoints"
LOG_DIR = "logs"


class NonFiniteLossError(FloatingPointError):
    """Raised when a loss became NaN/Inf; the workdir keeps the last good checkpoint."""


@gin.configurable(module="tfdplc.train")
def build_objective(objective: Callable[[], tf.keras.Model] = gin.REQUIRED) -> tf.keras.Model:
    """Builds the training objective bound in gin (e.g. `build_objective.objective = @CAE`).

    Args:
      objective: a gin-configured objective class or factory; gin supplies its networks and optimizers.

    Returns:
      The (unbuilt) objective model.
    """
    return objective()


@gin.configurable(module="tfdplc.train", denylist=["workdir", "data_dir"])
def train(
    workdir: str,
    data_dir: Optional[str] = None,
    *,
    total_steps: int = gin.REQUIRED,
    steps_per_epoch: int = 100,
    strategy: str = "auto",
    train_split: str = "train",
    eval_split: str = "test",
    eval_steps: Optional[int] = 8,
    jit_compile: bool = False,
    steps_per_execution: int = 1,
    keep_checkpoints: int = 3,
    num_grid_images: int = 8,
    seed: int = 0,
    verbose: int = 1,
) -> dict:
    """Trains the gin-bound objective with Keras `fit` under a distribution strategy.

    Resumes from the latest checkpoint in `workdir` if there is one. Checkpoints are written every
    `steps_per_epoch` steps (one Keras "epoch" is one checkpoint period), only while every logged value
    is finite: a NaN/Inf stops training and raises `NonFiniteLossError`, leaving the last good checkpoint.

    Args:
      workdir: output folder (created if missing).
      data_dir: tfds data folder (None: tfds' default).
      total_steps: number of training steps (objective `train_step` calls) in all.
      steps_per_epoch: steps between checkpoints, validation and image summaries.
      strategy: distribution strategy name, see `make_strategy`.
      train_split: tfds split for training.
      eval_split: tfds split for the validation loss at every epoch end.
      eval_steps: validation batches per epoch (None: the whole split).
      jit_compile: XLA-compile the train step.
      steps_per_execution: train steps per `tf.function` call (fewer Python round trips).
      keep_checkpoints: how many checkpoints to keep.
      num_grid_images: images in the TensorBoard grid of originals vs. reconstructions.
      seed: seeds TF's global generator and the input pipeline's shuffling.
      verbose: Keras progress-bar verbosity on the chief.

    Returns:
      The Keras history dict of the epochs run now (empty if the run was already complete).

    Raises:
      NonFiniteLossError: if a loss became NaN or infinite.
      ValueError: on inconsistent step counts.
    """
    if total_steps <= 0 or steps_per_epoch <= 0:
        raise ValueError(f"total_steps ({total_steps}) and steps_per_epoch ({steps_per_epoch}) must be > 0.")
    if total_steps % steps_per_epoch:
        raise ValueError(
            f"total_steps ({total_steps}) must be a multiple of steps_per_epoch ({steps_per_epoch}): "
            "checkpoints are written at epoch ends and a resumed run restarts there."
        )
    # The strategy comes first: MultiWorkerMirroredStrategy must be created before TF's context starts.
    dist = make_strategy(strategy)
    tf.keras.utils.set_random_seed(seed)
    logging.info("Strategy %s with %d replicas.", type(dist).__name__, dist.num_replicas_in_sync)
    chief = is_chief(dist)
    if jit_compile and dist.num_replicas_in_sync > 1 and not tf.config.list_logical_devices("GPU"):
        # TF 2.14 cannot XLA-compile a step whose variables are mirrored over logical CPU devices
        # ("Trying to access resource ... located in device CPU:1 from device CPU:0").
        logging.warning("XLA is off: it does not support variables mirrored over several CPU devices.")
        jit_compile = False
    # Non-chief workers take part in collective saves but write to a scratch folder.
    outdir = workdir if chief else tempfile.mkdtemp(prefix="tfdplc_worker_")
    tf.io.gfile.makedirs(outdir)
    if chief:
        _write_text(os.path.join(workdir, CONFIG_FILE), gin.config_str())

    train_ds = data.input_pipeline(split=train_split, data_dir=data_dir, seed=seed)
    eval_ds = data.input_pipeline(
        split=eval_split, data_dir=data_dir, shuffle=False, repeat=False, drop_remainder=False
    )
    if eval_steps:
        eval_ds = eval_ds.take(eval_steps)
    options = tf.data.Options()
    # tfds pipelines are sharded by data, not by file: each worker sees every file.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    train_ds, eval_ds = train_ds.with_options(options), eval_ds.with_options(options)
    grid_images = cb.spread_images(eval_ds, num_grid_images)

    with dist.scope():
        model = build_objective()
        model(grid_images[:1] if not isinstance(grid_images, tuple) else grid_images[0][:1])
        model.compile(jit_compile=jit_compile, steps_per_execution=steps_per_execution)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        checkpoint = tf.train.Checkpoint(model=model, epoch=epoch)
    manager = tf.train.CheckpointManager(
        checkpoint, os.path.join(outdir, CHECKPOINT_DIR), max_to_keep=keep_checkpoints
    )
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        logging.info("Resuming from %s (epoch %d).", manager.latest_checkpoint, int(epoch.numpy()))
    initial_epoch = int(epoch.numpy())
    epochs = total_steps // steps_per_epoch
    if initial_epoch >= epochs:
        logging.info("Training already complete at step %d.", initial_epoch * steps_per_epoch)
        # Rewrites the artifacts in case the run that finished training stopped before writing them.
        _save_artifacts(model, outdir, chief)
        if not chief:
            shutil.rmtree(outdir, ignore_errors=True)
        return {}

    guard = cb.NonFiniteGuard(steps_per_epoch)
    callbacks = [
        guard,
        cb.GoodCheckpoint(manager, epoch, guard),
        tf.keras.callbacks.TensorBoard(os.path.join(outdir, LOG_DIR), update_freq="epoch"),
    ]
    # Every worker renders the grid: reading synced-on-read variables (BatchNorm statistics) outside a
    # replica context is a collective op under MultiWorkerMirroredStrategy. Non-chiefs write to scratch.
    if not isinstance(grid_images, tuple):
        callbacks.append(cb.ImageGrid(grid_images, os.path.join(outdir, LOG_DIR, "images")))
    history = model.fit(
        train_ds,
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        validation_data=eval_ds,
        callbacks=callbacks,
        verbose=verbose if chief else 0,
    )
    if chief:
        _write_text(os.path.join(workdir, OPERATIVE_CONFIG_FILE), gin.operative_config_str())
    if not guard.triggered:
        _save_artifacts(model, outdir, chief)
    if not chief:
        shutil.rmtree(outdir, ignore_errors=True)
    if guard.triggered:
        raise NonFiniteLossError(
            f"Training stopped at step {guard.bad_step}: non-finite values {guard.bad_logs}. "
            f"The last good checkpoint is {manager.latest_checkpoint or 'none (no epoch finished)'}."
        )
    return history.history


def _save_artifacts(model: tf.keras.Model, outdir: str, chief: bool) -> None:
    """Calls the objective's `save_artifacts` hook (e.g. a stage-1 G* as `generator.keras`).

    Every worker calls it: under MultiWorkerMirroredStrategy, reading synced-on-read variables (BatchNorm
    statistics) is a collective op, so the non-chief workers write the same files into their scratch
    folder, which is removed afterwards. Only the chief's copy lands in the workdir.
    """
    save = getattr(model, "save_artifacts", None)
    if save is not None:
        save(outdir)
        if chief:
            logging.info("Wrote the objective's artifacts into %s.", outdir)


def load_workdir_config(workdir: str) -> None:
    """Replaces the current gin config with the one a workdir was trained with.

    Raises:
      FileNotFoundError: if the workdir has no config.
    """
    config = os.path.join(workdir, CONFIG_FILE)
    if not tf.io.gfile.exists(config):
        raise FileNotFoundError(f"{workdir!r} is not a tfdplc workdir: {CONFIG_FILE} is missing.")
    gin.clear_config()
    gin.parse_config_file(config)


def restore_objective(workdir: str, images: tf.Tensor) -> tf.keras.Model:
    """Builds the objective of the current gin config and restores the workdir's latest checkpoint.

    Call `load_workdir_config(workdir)` first.

    Args:
      workdir: a training workdir.
      images: a batch used to build the model's variables before restoring.

    Returns:
      The objective with trained weights.

    Raises:
      FileNotFoundError: if the workdir has no checkpoint.
    """
    latest = tf.train.latest_checkpoint(os.path.join(workdir, CHECKPOINT_DIR))
    if latest is None:
        raise FileNotFoundError(f"No checkpoint in {os.path.join(workdir, CHECKPOINT_DIR)!r}.")
    model = build_objective()
    model(images[:1])
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return model


def _write_text(path: str, text: str) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(text)
