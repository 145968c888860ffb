"""Keras callbacks of the trainer: step clock, NaN guard, checkpoints, TensorBoard scalars and image grids.

Every callback counts steps on one `StepClock` (the global step: training steps since the run's first
step, across resumes), so checkpoints, summaries and the NaN report all name the same step numbers.
"""

import logging
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

__all__ = [
    "GoodCheckpoint",
    "ImageGrid",
    "KerasTimingFilter",
    "NonFiniteGuard",
    "Scalars",
    "StepClock",
    "StepProgbar",
    "image_grid",
    "spread_images",
]


class StepClock(tf.keras.callbacks.Callback):
    """Counts global steps during `fit` and stops training at `total_steps`.

    The trainer runs Keras epochs of `steps_per_epoch` steps starting at `start_step`; the last epoch is
    cut short at `total_steps` (`stop_training` after that step; Keras still validates and ends the epoch),
    so any total works. Put it first in the callback list: the others read `step` in the same hook.

    Attributes:
      step: training steps done (global, including the steps of earlier runs resumed from).
    """

    _supports_tf_logs = True  # it never reads the logs: no host sync per step

    def __init__(self, start_step: int, total_steps: int, steps_per_epoch: int):
        super().__init__()
        self.start_step = self.step = start_step
        self.total_steps = total_steps
        self.steps_per_epoch = steps_per_epoch
        self._epoch_start = start_step
        self.epoch_steps = min(steps_per_epoch, total_steps - start_step)
        self._original_execution: Optional[int] = None
        self._shortened_end: Optional[int] = None

    def on_epoch_begin(self, epoch, logs=None):  # noqa: D102 - epochs are counted from 0 in each run.
        self._epoch_start = self.start_step + epoch * self.steps_per_epoch
        self.epoch_steps = min(self.steps_per_epoch, self.total_steps - self._epoch_start)

    def on_train_batch_begin(self, batch, logs=None):  # noqa: D102
        # With steps_per_execution > 1 one call runs several steps: shorten the call that would run past
        # total_steps, as Keras itself does for the last call of an epoch (same variable, restored after
        # the call; Keras' `batch` numbers in on_train_batch_end still count the full call).
        execution = getattr(self.model, "_steps_per_execution", None)
        if execution is None:
            return
        first = self._epoch_start + batch
        steps = int(execution.numpy())
        if first + steps > self.total_steps > first:
            self._original_execution = steps
            self._shortened_end = self.total_steps
            execution.assign(self.total_steps - first)

    def on_train_batch_end(self, batch, logs=None):  # noqa: D102 - `batch` is the call's last step.
        if self._shortened_end is not None:
            self.step = self._shortened_end
            self.model._steps_per_execution.assign(self._original_execution)
            self._shortened_end = self._original_execution = None
        else:
            self.step = self._epoch_start + batch + 1
        if self.step >= self.total_steps:
            self.model.stop_training = True


class StepProgbar(tf.keras.callbacks.ProgbarLogger):
    """Keras' progress bar, with the shorter last epoch's own length (not steps_per_epoch) as its target.

    Put it after the `StepClock` it reads.
    """

    def __init__(self, clock: StepClock):
        super().__init__(count_mode="steps")
        self.clock = clock

    def on_epoch_begin(self, epoch, logs=None):  # noqa: D102
        self.target = self.clock.epoch_steps
        super().on_epoch_begin(epoch, logs)


class NonFiniteGuard(tf.keras.callbacks.Callback):
    """Stops training as soon as a logged loss/metric is NaN or infinite.

    Unlike Keras's `TerminateOnNaN`, it records where it happened so that `GoodCheckpoint` does not save
    the broken state and the trainer can report the step and the last good checkpoint.
    """

    def __init__(self, clock: StepClock):
        super().__init__()
        self.clock = clock
        self.bad_step: Optional[int] = None
        self.bad_logs: Optional[dict] = None

    def on_train_batch_end(self, batch, logs=None):  # noqa: D102
        bad = {k: float(v) for k, v in (logs or {}).items() if not np.all(np.isfinite(v))}
        if bad and self.bad_step is None:
            self.bad_step = self.clock.step
            self.bad_logs = bad
            self.model.stop_training = True

    @property
    def triggered(self) -> bool:
        """Whether a non-finite value was seen."""
        return self.bad_step is not None


class GoodCheckpoint(tf.keras.callbacks.Callback):
    """Saves a `tf.train.Checkpoint` at the end of every epoch whose values were all finite.

    The checkpoint holds the model (networks and optimizers) and `step`, the global step, so a restarted
    run resumes at exactly the saved step; checkpoints are numbered by that step (`ckpt-200`). The
    trainer's epochs are checkpoint periods of `steps_per_epoch` steps (the last one possibly shorter),
    not passes over the data.
    """

    def __init__(
        self, manager: tf.train.CheckpointManager, step: tf.Variable, guard: NonFiniteGuard, clock: StepClock
    ):
        super().__init__()
        self.manager = manager
        self.step = step
        self.guard = guard
        self.clock = clock

    def on_epoch_end(self, epoch, logs=None):  # noqa: D102
        if self.guard.triggered:
            return
        self.step.assign(self.clock.step)
        self.manager.save(checkpoint_number=self.clock.step)


class Scalars(tf.keras.callbacks.Callback):
    """TensorBoard scalars against the global step, in the runs `train` and `validation` of `log_dir`.

    - train/<metric>: the mean of every tracker over the last `every_steps` steps (from the trackers'
      running totals and counts, so a value is the exact mean of the window, also across epoch ends);
    - train/epoch_<metric> and validation/epoch_<metric>: the epoch's training mean and the validation
      value at every epoch end (checkpoint), one name per metric, so TensorBoard overlays train and
      validation (`tfdplc.plots.read_epoch_curve` reads these);
    - train/rate_bits and train/bpp at every epoch end, for objectives with a fixed rate.
    """

    _supports_tf_logs = True  # syncs with the device only at logging steps, not every step

    def __init__(
        self,
        log_dir: str,
        clock: StepClock,
        every_steps: int,
        rate_bits: Optional[float] = None,
        pixels: Optional[int] = None,
    ):
        super().__init__()
        self.clock = clock
        self.every_steps = every_steps
        self.rate_bits = rate_bits
        self.pixels = pixels
        self.train_writer = tf.summary.create_file_writer(f"{log_dir}/train")
        self.validation_writer = tf.summary.create_file_writer(f"{log_dir}/validation")
        self._last_logged = clock.step
        self._marks: Dict[str, Tuple[float, float]] = {}  # (total, count) at the last window end
        self._carry: Dict[str, Tuple[float, float]] = {}  # window parts from before an epoch's reset
        self._closed = False

    def _trackers(self):
        return [m for m in self.model.metrics if hasattr(m, "total") and hasattr(m, "count")]

    def on_epoch_begin(self, epoch, logs=None):  # noqa: D102 - Keras has just reset the trackers.
        self._marks = {}
        self._closed = False

    def on_train_batch_end(self, batch, logs=None):  # noqa: D102
        if self.clock.step // self.every_steps > self._last_logged // self.every_steps:
            self._write_window()

    def _write_window(self):
        with self.train_writer.as_default(step=self.clock.step):
            for tracker in self._trackers():
                total, count = float(tracker.total.numpy()), float(tracker.count.numpy())
                mark_total, mark_count = self._marks.get(tracker.name, (0.0, 0.0))
                carry_total, carry_count = self._carry.pop(tracker.name, (0.0, 0.0))
                window_count = count - mark_count + carry_count
                if window_count > 0:
                    tf.summary.scalar(tracker.name, (total - mark_total + carry_total) / window_count)
                self._marks[tracker.name] = (total, count)
        self._last_logged = self.clock.step

    def on_test_begin(self, logs=None):  # noqa: D102 - before validation resets the trackers.
        self._close_epoch()

    def _close_epoch(self):
        """Carries the epoch's steps after the last window into the next window (once per epoch)."""
        if self._closed:
            return
        self._closed = True
        for tracker in self._trackers():
            total, count = float(tracker.total.numpy()), float(tracker.count.numpy())
            mark_total, mark_count = self._marks.get(tracker.name, (0.0, 0.0))
            carry_total, carry_count = self._carry.get(tracker.name, (0.0, 0.0))
            self._carry[tracker.name] = (carry_total + total - mark_total, carry_count + count - mark_count)

    def on_epoch_end(self, epoch, logs=None):  # noqa: D102
        self._close_epoch()
        logs = {k: float(v) for k, v in _numpy_logs(logs or {}).items()}
        with self.train_writer.as_default(step=self.clock.step):
            for name, value in logs.items():
                if not name.startswith("val_"):
                    tf.summary.scalar(f"epoch_{name}", value)
            if self.rate_bits is not None:
                tf.summary.scalar("rate_bits", self.rate_bits)
                if self.pixels:
                    tf.summary.scalar("bpp", self.rate_bits / self.pixels)
        with self.validation_writer.as_default(step=self.clock.step):
            for name, value in logs.items():
                if name.startswith("val_"):
                    tf.summary.scalar(f"epoch_{name[len('val_') :]}", value)
        self.train_writer.flush()
        self.validation_writer.flush()


def _numpy_logs(logs: dict) -> dict:
    """Logs with tensors turned into NumPy values (waits for the device)."""
    return {k: np.asarray(v) for k, v in logs.items()}


class KerasTimingFilter(logging.Filter):
    """Drops Keras' "Callback method `on_train_batch_end` is slow compared to the batch time" warning.

    Keras times the first batches of `fit` from the dispatch of the (asynchronous) step to the end of the
    batch hooks, so whichever callback first waits for the step's results (the progress bar at
    verbose=1, the NaN guard) seems slow: the warning fires on every run with a custom callback and says
    nothing about the callbacks' cost.
    """

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102
        return "is slow compared to the batch time" not in record.getMessage()


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
    """Writes TensorBoard image grids (run `images` of the log folder) at every epoch end.

    Uses only the objectives' public interface, so every objective gets the grids it supports:
      - `originals_vs_reconstructions` (`can_reconstruct`): originals (top) over reconstructions;
      - `samples` (`can_sample`, e.g. the stage-1 generators, DPLC): one row drawn from the same latent
        codes every epoch, so the grids show G's progress;
      - `decodes` (a codec spec with `stochastic_decoder` and no seeded encoder, e.g. DPLC, GC): originals,
        then `num_decodes` rows decoded from the same codes with different noise seeds (DPLC Fig. 1).
    """

    def __init__(
        self, images: tf.Tensor, log_dir: str, clock: StepClock, num_decodes: int = 3, seed: int = 0
    ):
        super().__init__()
        self.images = images
        self.clock = clock
        self.num_decodes = num_decodes
        self.writer = tf.summary.create_file_writer(log_dir)
        self.sample_seed = tf.constant([seed, 0], tf.int32)

    def _stochastic_decoder(self) -> bool:
        spec = getattr(self.model, "codec_spec", None)
        if spec is None or self.num_decodes < 1:
            return False
        spec = spec()
        return spec.stochastic_decoder and not spec.seeded_encoder and spec.code_shape is not None

    def grids(self) -> Dict[str, np.ndarray]:
        """{tag: grid image (H, W, C) in [0, 1]} for the current model."""
        grids = {}
        n = int(self.images.shape[0])
        if getattr(self.model, "can_reconstruct", True):
            reconstructions = self.model.reconstruct(self.images)
            grids["originals_vs_reconstructions"] = image_grid([self.images.numpy(), reconstructions.numpy()])
        if getattr(self.model, "can_sample", False):
            grids["samples"] = image_grid([self.model.sample(n, seed=self.sample_seed).numpy()])
        if self._stochastic_decoder():
            seeds = tf.range(n, dtype=tf.int64)
            codes = self.model.encode_codes(self.images, seeds)
            rows = [self.images.numpy()]
            for draw in range(self.num_decodes):
                rows.append(self.model.decode_codes(codes, seeds + 1000 * (draw + 1)).numpy())
            grids["decodes"] = image_grid(rows)
        return grids

    def on_epoch_end(self, epoch, logs=None):  # noqa: D102
        with self.writer.as_default(step=self.clock.step):
            for tag, grid in self.grids().items():
                tf.summary.image(tag, grid[None])
        self.writer.flush()
