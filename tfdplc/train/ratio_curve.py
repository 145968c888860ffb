"""The gradient balance of `tfdplc.calibration` as a curve over a whole training run (issue 25 item 1).

An adversary "acts" only if its pull on the generator is a non-negligible fraction of the distortion's over
the whole run (DESIGN.md, "Scales"): with the per-pixel penalty the critic's input gradient keeps growing,
so a ratio measured over the first steps says little about step 1000. Two ways to get the curve:

- during training, `train.gradient_ratio_every = N` (gin; 0, the default, is off): `GradientRatioCurve`
  measures `calibration.measure_gradient_ratios` at step 0 and every N steps (and at the last step) and
  appends one JSON line per measurement to WORKDIR/logs/gradient_ratios.jsonl, plus TensorBoard scalars
  in the run logs/gradient_ratios;
- after the fact, `curve_from_checkpoints`: the same measurement on each checkpoint a workdir kept
  (`train.keep_checkpoints`, 3 by default: set it high enough before the run to read a curve this way).

Both measure on the same fixed batches (`measurement_batches`: `gradient_ratio_batches` batches of
training images drawn with `gradient_ratio_seed`, apart from the training run's batches and independent of
TF's global seed) with the same stateless seeds, so they agree at a checkpointed step. Measuring changes
nothing of the run: no random generator advances and the batch-norm statistics the forward passes update
are put back (`measure_gradient_ratios`), so a run with the callback ends with the same weights, bit for
bit.
"""

import json
import os
import re
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from tfdplc import calibration, data

__all__ = [
    "CHECKPOINT_LOG_FILE",
    "GradientRatioCurve",
    "LOG_FILE",
    "POOL",
    "TENSORBOARD_RUN",
    "checkpoint_steps",
    "curve_from_checkpoints",
    "measurement_batches",
    "measurement_record",
    "read_curve",
]

#: The curve written during training, in WORKDIR/logs.
LOG_FILE = "gradient_ratios.jsonl"
#: The curve measured afterwards from the kept checkpoints, in WORKDIR/logs.
CHECKPOINT_LOG_FILE = "gradient_ratios_checkpoints.jsonl"
#: The TensorBoard run (a folder of WORKDIR/logs) of the curve's scalars.
TENSORBOARD_RUN = "gradient_ratios"

#: Leading images of the training split the measured batches are drawn from (`measurement_batches`).
POOL = 10000

_TRAINING_CHECKPOINT = re.compile(r"^ckpt-(\d+)$")


def measurement_batches(
    count: int, seed: int, split: str = "train", data_dir: Optional[str] = None, pool: int = POOL
) -> List[tf.Tensor]:
    """The fixed batches the curve is measured on: `count` batches drawn from the training split.

    The images are a uniform sample without replacement (reservoir sampling with NumPy's generator of
    `seed`) of the first `pool` images of the split read in stored order, in a random order, cut into
    batches of the gin-bound `input_pipeline.batch_size`. Nothing depends on TF's global seed (a shuffled
    tf.data pipeline would: its seeds pair with the global one), so the trainer and a later process that
    measures the checkpoints draw the same batches.

    Args:
      count: number of batches (>= 1).
      seed: the draw's seed.
      split: the tfds split (the run's `train.train_split`).
      data_dir: tfds data folder.
      pool: how many leading images of the split to draw from (mnist5k's 4,500 training digits, stored
        sorted by class, are all in the default pool).

    Returns:
      `count` image batches as `train_step` receives them.

    Raises:
      ValueError: if `count` < 1, the pool holds fewer than `count` batches, or the pipeline yields
        (degraded, clean) pairs (no balance is defined for the restoration objectives).
      data.DatasetNotFoundError: if the data set is not prepared.
    """
    if count < 1:
        raise ValueError(f"measurement_batches needs count >= 1, got {count}.")
    dataset = data.input_pipeline(
        split=split, data_dir=data_dir, shuffle=False, repeat=False, drop_remainder=False
    )
    rng = np.random.default_rng(seed)
    reservoir, seen, batch_size = [], 0, None
    for batch in dataset:
        if isinstance(batch, tuple):
            raise ValueError(
                "the gradient ratio curve is defined for image batches, not (degraded, clean) pairs."
            )
        batch_size = batch_size or int(batch.shape[0])
        for image in batch.numpy():
            if seen >= pool:
                break
            # Algorithm R: after i images each is in the reservoir with probability needed / i.
            if seen < count * batch_size:
                reservoir.append(image)
            else:
                slot = rng.integers(0, seen + 1)
                if slot < count * batch_size:
                    reservoir[slot] = image
            seen += 1
        if seen >= pool:
            break
    if batch_size is None or len(reservoir) < count * batch_size:
        raise ValueError(
            f"measurement_batches: the first {pool} images of split {split!r} hold {seen}, fewer than "
            f"{count} batches of {batch_size}."
        )
    images = np.stack(reservoir)[rng.permutation(len(reservoir))]
    return [tf.constant(part) for part in np.split(images, count)]


def measurement_record(model: tf.keras.Model, step: int, batches, seed: int) -> Dict:
    """One point of the curve: `measure_gradient_ratios` at the model's current weights, with its context.

    Returns:
      {"step", the values of `calibration.gradient_ratios` (batch means), "objective", "weights" (the
      objective's constants, `calibration.regularizer_weights`), "batches", "batch_size", "seed"}.
    """
    values = calibration.measure_gradient_ratios(model, batches, seed)
    return {
        "step": int(step),
        **values,
        "objective": type(model).__name__,
        "weights": calibration.regularizer_weights(model),
        "batches": len(batches),
        "batch_size": int(batches[0].shape[0]),
        "seed": int(seed),
    }


def read_curve(path: str) -> List[Dict]:
    """The records of a curve file, one per line, in step order.

    Raises:
      FileNotFoundError: if `path` does not exist.
      ValueError: if a line is not a JSON record with a "step".
    """
    records = []
    with tf.io.gfile.GFile(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                int(record["step"])
            except (ValueError, TypeError, KeyError) as e:
                raise ValueError(f"{path}:{number} is not a gradient-ratio record ({e}).") from e
            records.append(record)
    return sorted(records, key=lambda r: r["step"])


def _append(path: str, record: Dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


class GradientRatioCurve(tf.keras.callbacks.Callback):
    """Measures the gradient balance every `every_steps` training steps (see the module docstring).

    Measures at the run's first step (0, or the step a resumed run starts at, unless the file has it), at
    the first step end on or past every multiple of `every_steps` (with `train.steps_per_execution` > 1 a
    call runs several steps: the step written is the one reached), and at the last step, never after a
    non-finite loss. A resumed run first drops the records after its checkpoint's step from the file (the
    run repeats those steps, with the same weights under exact resume), so a run trained without the curve
    can be resumed with it (`train.gradient_ratio_every` is a run parameter). Put it after the `StepClock`
    and the `NonFiniteGuard` it reads.
    """

    def __init__(
        self,
        batches: List[tf.Tensor],
        log_dir: str,
        clock,
        every_steps: int,
        seed: int,
        guard=None,
    ):
        """Initialises the callback and trims the curve file of a resumed run.

        Args:
          batches: the fixed batches (`measurement_batches`).
          log_dir: the workdir's logs folder (created if missing).
          clock: the trainer's `StepClock`.
          every_steps: steps between two measurements (> 0).
          seed: the measurement's seed (`calibration.measure_gradient_ratios`).
          guard: the trainer's `NonFiniteGuard` (optional).

        Raises:
          ValueError: if `every_steps` < 1 or `batches` is empty.
        """
        super().__init__()
        if every_steps < 1 or not batches:
            raise ValueError("GradientRatioCurve needs every_steps >= 1 and at least one batch.")
        self.batches = batches
        self.clock = clock
        self.every_steps = every_steps
        self.seed = seed
        self.guard = guard
        tf.io.gfile.makedirs(log_dir)
        self.path = os.path.join(log_dir, LOG_FILE)
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, TENSORBOARD_RUN))
        self._last = clock.step
        kept = []
        if os.path.exists(self.path):
            kept = [r for r in read_curve(self.path) if r["step"] <= clock.step]
            with open(self.path, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in kept)
        self._logged = {r["step"] for r in kept}

    def measure(self) -> Dict:
        """Measures at the clock's step, appends the record and writes the scalars; returns the record."""
        record = measurement_record(self.model, self.clock.step, self.batches, self.seed)
        _append(self.path, record)
        with self.writer.as_default(step=self.clock.step):
            for key in calibration.CURVE_KEYS:
                if key in record:
                    tf.summary.scalar(key, record[key])
        self.writer.flush()
        self._last = self.clock.step
        return record

    def on_train_begin(self, logs=None):  # noqa: D102 - a fresh run's step 0, or where a run resumes.
        if self.clock.step not in self._logged:
            self.measure()

    def on_train_batch_end(self, batch, logs=None):  # noqa: D102
        if self.guard is not None and self.guard.triggered:
            return
        step = self.clock.step
        crossed = step // self.every_steps > self._last // self.every_steps
        if crossed or (step >= self.clock.total_steps and step > self._last):
            self.measure()


def checkpoint_steps(workdir: str) -> List[tuple]:
    """(step, path) of every training checkpoint (ckpt-STEP) a workdir holds, in step order.

    Checkpoints of other names (tools/recalibrate.py's bn_recalibrated-STEP: the same trainable weights)
    are left out.
    """
    state = tf.train.get_checkpoint_state(os.path.join(workdir, "checkpoints"))
    paths = list(state.all_model_checkpoint_paths) if state else []
    steps = []
    for path in paths:
        match = _TRAINING_CHECKPOINT.match(os.path.basename(path))
        if match and tf.io.gfile.exists(path + ".index"):
            steps.append((int(match.group(1)), path))
    return sorted(steps)


def curve_from_checkpoints(workdir: str, count: int, seed: int, data_dir: Optional[str] = None) -> List[Dict]:
    """The curve measured on each training checkpoint of a workdir, after the fact.

    Rebuilds the workdir's objective from its config.gin (this replaces the current gin config), restores
    each checkpoint of `checkpoint_steps` and measures it on `measurement_batches(count, seed)` of the
    run's training split, so a point equals the one `GradientRatioCurve` logged at that step with the
    same `count` and `seed`.

    Args:
      workdir: a training workdir.
      count: batches per measurement.
      seed: the measurement's seed.
      data_dir: tfds data folder.

    Returns:
      One `measurement_record` per checkpoint, with its "checkpoint" name, in step order.

    Raises:
      FileNotFoundError: if the workdir has no config or no training checkpoint.
      TypeError: if its objective is not one `calibration.gradient_ratios` measures.
    """
    from tfdplc.train.config import bound_value
    from tfdplc.train.trainer import build_objective, load_workdir_config

    load_workdir_config(workdir)
    steps = checkpoint_steps(workdir)
    if not steps:
        raise FileNotFoundError(
            f"No training checkpoint (ckpt-STEP) in {os.path.join(workdir, 'checkpoints')!r}."
        )
    split = bound_value("train.train_split") or "train"
    batches = measurement_batches(count, seed, split=split, data_dir=data_dir)
    model = build_objective()
    if not isinstance(model, calibration.MEASURABLE):
        raise TypeError(f"{workdir!r} holds a {type(model).__name__}: no gradient balance is defined for it.")
    model(batches[0][:1])
    records = []
    for step, path in steps:
        tf.train.Checkpoint(model=model).restore(path).expect_partial()
        records.append(
            {**measurement_record(model, step, batches, seed), "checkpoint": os.path.basename(path)}
        )
    return records
