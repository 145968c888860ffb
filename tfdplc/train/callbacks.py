"""Keras callbacks of the trainer: NaN guard, checkpoints that keep the last good state, image grids."""

from typing import Optional

import numpy as np
import tensorflow as tf

__all__ = ["NonFiniteGuard", "GoodCheckpoint", "ImageGrid", "image_grid", "spread_images"]


class NonFiniteGuard(tf.keras.callbacks.Callback):
    """Stops training as soon as a logged loss/metric is NaN or infinite.

    Unlike Keras's `TerminateOnNaN`, it records where it happened so that `GoodCheckpoint` does not save
    the broken state and the trainer can report the step and the last good checkpoint.
    """

    def __init__(self, steps_per_epoch: int):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.bad_step: Optional[int] = None
        self.bad_logs: Optional[dict] = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):  # noqa: D102
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):  # noqa: D102
        bad = {k: float(v) for k, v in (logs or {}).items() if not np.all(np.isfinite(v))}
        if bad and self.bad_step is None:
            self.bad_step = self._epoch * self.steps_per_epoch + batch + 1
            self.bad_logs = bad
            self.model.stop_training = True

    @property
    def triggered(self) -> bool:
        """Whether a non-finite value was seen."""
        return self.bad_step is not None


class GoodCheckpoint(tf.keras.callbacks.Callback):
    """Saves a `tf.train.Checkpoint` at the end of every epoch whose values were all finite.

    The checkpoint holds the model (networks and optimizers) and `epoch`, the number of finished epochs,
    so a restarted run resumes at exactly the saved step (the trainer's epochs are checkpoint periods of
    `steps_per_epoch` steps, not passes over the data).
    """

    def __init__(self, manager: tf.train.CheckpointManager, epoch: tf.Variable, guard: NonFiniteGuard):
        super().__init__()
        self.manager = manager
        self.epoch = epoch
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):  # noqa: D102
        if self.guard.triggered:
            return
        self.epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)


def image_grid(rows: "list[np.ndarray]") -> np.ndarray:
    """Stacks equally long batches of images into one grid image, one batch per row.

    Args:
      rows: list of arrays (N, H, W, C) with values in [0, 1].

    Returns:
      A (len(rows) * H, N * W, C) float array with a 1-pixel white border between images.
    """
    padded = [np.pad(np.asarray(r), ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=1.0) for r in rows]
    lines = [np.concatenate(list(r), axis=1) for r in padded]
    return np.clip(np.concatenate(lines, axis=0), 0.0, 1.0)


def spread_images(dataset: tf.data.Dataset, count: int, pool: int = 1000):
    """Picks `count` evenly spaced examples among the first `pool` of a batched dataset.

    Test splits are often stored sorted (mnist5k's test split is ordered by class), so the first images
    would all show the same digit.

    Args:
      dataset: a finite or infinite dataset of batches, or of tuples of batches.
      count: how many examples to return.
      pool: how many leading examples to choose from.

    Returns:
      A batch (count, ...) or a tuple of such batches, following the dataset's structure.
    """
    examples = list(dataset.unbatch().take(pool).as_numpy_iterator())
    picks = np.linspace(0, len(examples) - 1, num=min(count, len(examples))).round().astype(int)
    chosen = [examples[i] for i in picks]
    if isinstance(chosen[0], tuple):
        return tuple(tf.constant(np.stack(parts)) for parts in zip(*chosen))
    return tf.constant(np.stack(chosen))


class ImageGrid(tf.keras.callbacks.Callback):
    """Writes a TensorBoard image grid every epoch.

    Objectives that can reconstruct (`can_reconstruct`, the default) get originals (top) over
    reconstructions (bottom); the others (a pure generator such as WGAN-GP) get one row of samples
    `model.sample(n, seed)` drawn from the same latent codes every epoch, so the grids show G's progress.
    """

    def __init__(self, images: tf.Tensor, log_dir: str, sample_seed: int = 0):
        super().__init__()
        self.images = images
        self.writer = tf.summary.create_file_writer(log_dir)
        self.sample_seed = tf.constant([sample_seed, 0], tf.int32)

    def on_epoch_end(self, epoch, logs=None):  # noqa: D102
        if getattr(self.model, "can_reconstruct", True):
            reconstructions = self.model.reconstruct(self.images)
            grid = image_grid([self.images.numpy(), reconstructions.numpy()])
            tag = "originals_vs_reconstructions"
        else:
            samples = self.model.sample(int(self.images.shape[0]), seed=self.sample_seed)
            grid = image_grid([samples.numpy()])
            tag = "samples"
        step = (epoch + 1) * self.params.get("steps", 1)
        with self.writer.as_default():
            tf.summary.image(tag, grid[None], step=step)
        self.writer.flush()
