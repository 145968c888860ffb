"""The gin-configured trainer: objective + data + strategy -> workdir.

A workdir holds:
  config.gin             the full gin config the run was started with (used to rebuild the model),
  operative_config.gin   the parameters that were actually used,
  checkpoints/           `tf.train.Checkpoint`s of the objective (networks + optimizers), the global
                         step and the objective's random generator (`training_checkpoint`), named by
                         that step (ckpt-200),
  logs/                  TensorBoard scalars (runs train and validation) and image grids (run images),
  and what the objective's `save_artifacts` writes at the end of a successful run (stage-1 generator
  objectives: generator.keras and, with an encoder, encoder.keras).
"""

import contextlib
import os
import shutil
import tempfile
from typing import Callable, List, Optional, Sequence

import gin
import tensorflow as tf
from absl import logging

from tfdplc import data
from tfdplc.objectives.base import RANDOM_CHECKPOINT_KEY
from tfdplc.train import callbacks as cb
from tfdplc.train import checks
from tfdplc.train import precision as mixed_precision
from tfdplc.train.checks import GinConfigError
from tfdplc.train.ratio_curve import GradientRatioCurve, measurement_batches
from tfdplc.train.strategy import STRATEGIES, is_chief, make_strategy

__all__ = [
    "CheckpointMismatchError",
    "ConfigChangeError",
    "NonFiniteLossError",
    "RUN_PARAMETERS",
    "train",
    "training_checkpoint",
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


#: Parameters a resumed run may change without --allow_config_change: how long and how it runs, not what
#: it trains.
RUN_PARAMETERS = (
    "train.total_steps",
    "train.verbose",
    "train.eval_steps",
    "train.keep_checkpoints",
    "train.log_every_steps",
    "train.num_grid_images",
    "train.num_grid_decodes",
    "train.steps_per_execution",
    "train.strategy",
    "train.gradient_ratio_every",
    "train.gradient_ratio_batches",
    "train.gradient_ratio_seed",
)


class ConfigChangeError(GinConfigError):
    """A resumed run's config differs from the one its workdir was trained with."""


class CheckpointMismatchError(GinConfigError):
    """The workdir's checkpoint does not fit the objective the current config builds."""


@contextlib.contextmanager
def _config_errors():
    """Turns errors raised inside gin-configured calls into `GinConfigError`s naming the configurable.

    gin appends "In call to configurable 'X'" to every error passing through a configurable; a
    ValueError / TypeError / OSError carrying that note comes from a bound value (a wrong type, an
    unknown option, a missing file), so the binaries report it in one line instead of a traceback.
    Missing datasets (`data.DatasetNotFoundError`) keep their own type.
    """
    try:
        yield
    except data.DatasetNotFoundError:
        raise
    except (ValueError, TypeError, OSError) as e:
        configurable = checks.configurable_of_error(e)
        if configurable is None or isinstance(e, GinConfigError):
            raise
        raise GinConfigError(checks.reason_of_error(e), configurable=configurable) from e


@gin.configurable(module="tfdplc.train", denylist=["workdir", "data_dir", "allow_config_change"])
def train(
    workdir: str,
    data_dir: Optional[str] = None,
    *,
    total_steps: int = gin.REQUIRED,
    steps_per_epoch: int = 100,
    log_every_steps: int = 50,
    strategy: str = "auto",
    train_split: str = "train",
    eval_split: str = "test",
    eval_steps: Optional[int] = 8,
    jit_compile: bool = False,
    precision: str = "float32",
    steps_per_execution: int = 1,
    keep_checkpoints: int = 3,
    num_grid_images: int = 8,
    num_grid_decodes: int = 3,
    replay_data_on_resume: bool = True,
    seed: int = 0,
    verbose: int = 1,
    gradient_ratio_every: int = 0,
    gradient_ratio_batches: int = 2,
    gradient_ratio_seed: int = 1,
    allow_config_change: Sequence[str] = (),
) -> dict:
    """Trains the gin-bound objective with Keras `fit` under a distribution strategy.

    Everything is checked before anything is written: the arguments' types, the objective and the data
    pipeline are built, and a resumed run's config is compared with the workdir's `config.gin` and its
    checkpoint restored; a failure leaves the workdir as it was (or not created).

    Resumes from the latest checkpoint in `workdir` if there is one. Checkpoints are written every
    `steps_per_epoch` steps and at `total_steps` (any total works: the last period is shorter), only
    while every logged value is finite: a NaN/Inf stops training and raises `NonFiniteLossError`, leaving
    the last good checkpoint.

    Args:
      workdir: output folder (created if missing).
      data_dir: tfds data folder (None: tfds' default).
      total_steps: number of training steps (objective `train_step` calls) in all.
      steps_per_epoch: steps between checkpoints, validation and image summaries.
      log_every_steps: steps between the training scalars written to TensorBoard (window means).
      strategy: distribution strategy name, see `make_strategy`.
      train_split: tfds split for training.
      eval_split: tfds split for the validation loss at every epoch end.
      eval_steps: validation batches per epoch (None: the whole split).
      jit_compile: XLA-compile the train step.
      precision: "float32", "mixed_bfloat16" or "mixed_float16" (Keras mixed-precision policy, with loss
        scaling for float16; see `tfdplc.train.precision` for what stays float32). The policy holds for
        the models built and trained here and is restored on return; checkpoints hold float32 variables,
        and the objective's artifacts (e.g. generator.keras) are written from a float32 copy of the last
        checkpoint, so exports and later stages are float32 whatever the training precision.
      steps_per_execution: train steps per `tf.function` call (fewer Python round trips).
      keep_checkpoints: how many checkpoints to keep.
      num_grid_images: images in the TensorBoard grids (reconstructions, samples, decodes).
      num_grid_decodes: decodes per code in the TensorBoard grid of stochastic decoders.
      replay_data_on_resume: a resumed run reads (without training on) the batches the earlier runs used,
        so it sees the same data as an uninterrupted run and ends with the same weights when the
        objective is deterministic (about 4 ms per skipped mnist5k batch on a 2-core CPU; for large
        decoded data sets this costs minutes: set False to start the data afresh instead).
      seed: seeds TF's global generator and the input pipeline's shuffling.
      verbose: Keras progress-bar verbosity on the chief.
      gradient_ratio_every: measure the objective's gradient balance (`tfdplc.calibration`) at the run's
        first step, every this many steps and at the last step into logs/gradient_ratios.jsonl and
        TensorBoard (`tfdplc.train.ratio_curve`); 0 (the default) is off. It does not change the training
        run; it needs one replica.
      gradient_ratio_batches: batches each measurement averages over.
      gradient_ratio_seed: the seed of the measurement's fixed batches and random inputs.
      allow_config_change: parameters ("step_decay.boundaries") a resumed run may change besides
        `RUN_PARAMETERS` (not a gin parameter: tools/train.py --allow_config_change).

    Returns:
      The Keras history dict of the epochs run now (empty if the run was already complete).

    Raises:
      NonFiniteLossError: if a loss became NaN or infinite.
      GinConfigError: on a bad value (naming its configurable), on a config change of a resumed run
        (`ConfigChangeError`) or a checkpoint that does not fit the objective (`CheckpointMismatchError`).
    """
    arguments = dict(locals())
    del arguments["workdir"], arguments["data_dir"]
    checks.check_argument_types("train", train, arguments)
    try:
        mixed_precision.check_precision(precision)
    except ValueError as e:
        raise GinConfigError(str(e), configurable="train") from e
    if strategy not in STRATEGIES:
        raise GinConfigError(
            f"train.strategy must be one of {STRATEGIES}, got {strategy!r}.", configurable="train"
        )
    for name in (
        "total_steps",
        "steps_per_epoch",
        "log_every_steps",
        "steps_per_execution",
        "keep_checkpoints",
        "gradient_ratio_batches",
    ):
        if arguments[name] <= 0:
            raise GinConfigError(f"train.{name} must be > 0, got {arguments[name]}.", configurable="train")
    if gradient_ratio_every < 0:
        raise GinConfigError(
            f"train.gradient_ratio_every must be >= 0, got {gradient_ratio_every}.", configurable="train"
        )
    # The policy holds while the models are built and trained, and is restored on return (or error).
    with mixed_precision.policy(precision):
        # The strategy comes first: MultiWorkerMirroredStrategy must be created before TF's context starts.
        with _config_errors():
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

        with _config_errors():
            train_ds = data.input_pipeline(split=train_split, data_dir=data_dir, seed=seed)
            eval_ds = data.input_pipeline(
                split=eval_split, data_dir=data_dir, shuffle=False, repeat=False, drop_remainder=False
            )
            if eval_steps:
                eval_ds = eval_ds.take(eval_steps)
            grid_images = cb.spread_images(eval_ds, num_grid_images)
            with dist.scope():
                model = mixed_precision.prepare_objective(build_objective(), precision)
                model(_first_image(grid_images))
                model.compile(jit_compile=jit_compile, steps_per_execution=steps_per_execution)
                step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            ratio_batches = _ratio_batches(
                model, dist, gradient_ratio_every, gradient_ratio_batches, gradient_ratio_seed, train_split,
                data_dir,
            )  # fmt: skip
        manager = tf.train.CheckpointManager(
            training_checkpoint(model, step),
            os.path.join(outdir, CHECKPOINT_DIR),
            max_to_keep=keep_checkpoints,
        )
        restored = None
        if manager.latest_checkpoint:
            restored = _restore(model, step, manager.latest_checkpoint, workdir, list(allow_config_change))
            logging.info("Resuming from %s (step %d).", manager.latest_checkpoint, int(step.numpy()))
        start_step = int(step.numpy())

        # Everything checked: from here on the run writes into the workdir.
        tf.io.gfile.makedirs(outdir)
        if chief:
            _write_text(os.path.join(workdir, CONFIG_FILE), gin.config_str())
        if start_step >= total_steps:
            logging.info("Training already complete at step %d.", start_step)
            if restored is not None:
                restored.expect_partial()  # the optimizers' slots are never built: no "could not be found" noise
            # Rewrites the artifacts in case the run that finished training stopped before writing them.
            _save_artifacts(_float32(model, precision, dist, manager, grid_images), outdir, chief)
            if not chief:
                shutil.rmtree(outdir, ignore_errors=True)
            return {}

        if start_step and replay_data_on_resume:
            train_ds = train_ds.skip(start_step)
        options = tf.data.Options()
        # tfds pipelines are sharded by data, not by file: each worker sees every file.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_ds, eval_ds = train_ds.with_options(options), eval_ds.with_options(options)

        clock = cb.StepClock(start_step, total_steps, steps_per_epoch)
        guard = cb.NonFiniteGuard(clock)
        images = grid_images[0] if isinstance(grid_images, tuple) else grid_images
        callbacks = [
            clock,
            *([cb.StepProgbar(clock)] if verbose and chief else []),  # Keras adds its own otherwise (silent)
            guard,
            cb.Scalars(
                os.path.join(outdir, LOG_DIR),
                clock,
                log_every_steps,
                rate_bits=_rate_bits(model),
                pixels=int(images.shape[1]) * int(images.shape[2]),
            ),
        ]
        if ratio_batches is not None:
            callbacks.append(
                GradientRatioCurve(
                    ratio_batches,
                    os.path.join(outdir, LOG_DIR),
                    clock,
                    gradient_ratio_every,
                    gradient_ratio_seed,
                    guard,
                )
            )
        # Every worker renders the grid: reading synced-on-read variables (BatchNorm statistics) outside a
        # replica context is a collective op under MultiWorkerMirroredStrategy. Non-chiefs write to scratch.
        if not isinstance(grid_images, tuple):
            callbacks.append(
                cb.ImageGrid(grid_images, os.path.join(outdir, LOG_DIR, "images"), clock, num_grid_decodes)
            )
        # Last: the grid draws from stochastic decoders' noise generators, whose state is checkpointed; saved
        # before it, a resumed run would miss those draws and continue on another noise stream.
        callbacks.append(cb.GoodCheckpoint(manager, step, guard, clock))
        timing_filter = cb.KerasTimingFilter()
        tf.get_logger().addFilter(timing_filter)
        try:
            history = model.fit(
                train_ds,
                epochs=-(-(total_steps - start_step) // steps_per_epoch),
                steps_per_epoch=steps_per_epoch,
                validation_data=eval_ds,
                callbacks=callbacks,
                verbose=verbose if chief else 0,
            )
        finally:
            tf.get_logger().removeFilter(timing_filter)
        if chief:
            _write_text(os.path.join(workdir, OPERATIVE_CONFIG_FILE), gin.operative_config_str())
        if not guard.triggered:
            _save_artifacts(_float32(model, precision, dist, manager, grid_images), outdir, chief)
        if not chief:
            shutil.rmtree(outdir, ignore_errors=True)
        if guard.triggered:
            raise NonFiniteLossError(
                f"Training stopped at step {guard.bad_step}: non-finite values {guard.bad_logs}. "
                f"The last good checkpoint is {manager.latest_checkpoint or 'none (no epoch finished)'}."
            )
        return history.history


def _ratio_batches(model, dist, every, count, seed, split, data_dir) -> Optional[List[tf.Tensor]]:
    """The fixed batches of the gradient-ratio curve (`ratio_curve.measurement_batches`), None when off.

    Raises:
      GinConfigError: for an objective without a gradient balance, paired (degraded, clean) data or more
        than one replica (the measurement runs outside the replicas).
    """
    if not every:
        return None
    from tfdplc import calibration

    if not isinstance(model, calibration.MEASURABLE):
        raise GinConfigError(
            f"train.gradient_ratio_every: no gradient balance is defined for {type(model).__name__} "
            f"(tfdplc.calibration.gradient_ratios measures {', '.join(c.__name__ for c in calibration.MEASURABLE)}).",
            configurable="train",
        )
    if dist.num_replicas_in_sync > 1:
        raise GinConfigError(
            f"train.gradient_ratio_every needs one replica, the run has {dist.num_replicas_in_sync}: measure "
            "afterwards from the checkpoints (tools/diagnose.py --ratio_curve_workdir, --ratio_curve_source).",
            configurable="train",
        )
    try:
        return measurement_batches(count, seed, split=split, data_dir=data_dir)
    except ValueError as e:
        raise GinConfigError(f"train.gradient_ratio_every: {e}", configurable="train") from e


def _first_image(grid_images):
    """A batch of one input (images, or the first of an (inputs, targets) pair) to build a model."""
    return grid_images[:1] if not isinstance(grid_images, tuple) else grid_images[0][:1]


def _random_objects(model) -> dict:
    """{RANDOM_CHECKPOINT_KEY: the objective's random generator}, or {} for a model without one."""
    generator = getattr(model, "random_generator", None)
    return {} if generator is None else {RANDOM_CHECKPOINT_KEY: generator}


def training_checkpoint(model: tf.keras.Model, step: tf.Variable) -> tf.train.Checkpoint:
    """What the trainer checkpoints: the objective, the step and the objective's random generator.

    The generator (`Objective.random_generator`: penalty weights, latents, shuffles) is saved beside the
    model, not inside it, so the model's checkpoint layout is that of checkpoints written before it
    existed (issue 26); `train` restores it when the checkpoint holds it.

    Args:
      model: the objective.
      step: the global step variable.

    Returns:
      A `tf.train.Checkpoint` with `model`, `step` and, where the objective has one, `random`.
    """
    return tf.train.Checkpoint(model=model, step=step, **_random_objects(model))


def _float32(model, precision: str, dist, manager, grid_images) -> tf.keras.Model:
    """The trained objective with float32 layers: `model` itself, or a float32 copy of the last checkpoint.

    Under a mixed policy the objective is rebuilt under float32 and the latest checkpoint (float32
    variables) restored into it, so the artifacts written from it (e.g. generator.keras, which DPLC stage 2
    and exports load) are float32 networks holding exactly the trained weights.
    """
    if precision == "float32":
        return model
    with mixed_precision.policy("float32"), dist.scope():
        copy = build_objective()
        copy(_first_image(grid_images))
    tf.train.Checkpoint(model=copy).restore(manager.latest_checkpoint).expect_partial()
    return copy


def _rate_bits(model: tf.keras.Model) -> Optional[float]:
    try:
        rate = model.rate_bits
    except Exception:  # noqa: BLE001 - a rate that needs more than the built model is not logged
        return None
    return None if rate is None else float(rate)


def _restore(model, step, checkpoint: str, workdir: str, allowed: List[str]):
    """Compares the config with the workdir's, then restores `checkpoint` into `model` and `step`.

    Returns:
      The restore status (deferred: optimizer slots are restored when the optimizers build them).

    Raises:
      ConfigChangeError: listing the changed parameters not in `RUN_PARAMETERS` or `allowed`.
      CheckpointMismatchError: if the checkpoint's variables do not fit the model.
    """
    saved_path = os.path.join(workdir, CONFIG_FILE)
    saved_spe = None
    if tf.io.gfile.exists(saved_path):
        with tf.io.gfile.GFile(saved_path) as f:
            saved = f.read()
        changes = checks.config_changes(saved, gin.config_str(), ignore=RUN_PARAMETERS + tuple(allowed))
        if changes:
            listed = "; ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in changes)
            raise ConfigChangeError(
                f"Cannot resume {workdir!r} with a different config: {listed}. Use another --workdir, or "
                f"pass --allow_config_change={','.join(key for key, _, _ in changes)} to resume anyway."
            )
        saved_spe = checks.ConfigText(saved).resolved_parameters().get("train.steps_per_epoch")
    reader = tf.train.load_checkpoint(checkpoint)
    # Checkpoints written before the step counter hold the number of finished epochs instead (or, written
    # by hand, neither: restarted at step 0).
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    objects = dict(model=model)
    if reader.has_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"):
        objects["step"] = step
    elif reader.has_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"):
        objects["epoch"] = epoch
    # Checkpoints written before issue 26 hold no generator state: the generator then starts from its seed
    # (the run continues on other random draws than an uninterrupted run would have made).
    for key, generator in _random_objects(model).items():
        if reader.has_tensor(f"{key}/_state_var/.ATTRIBUTES/VARIABLE_VALUE"):
            objects[key] = generator
        else:
            logging.warning(
                "%s holds no state of the objective's random generator (written before issue 26): it "
                "restarts from its seed, so the resumed run is not the one it continues.",
                checkpoint,
            )
    try:
        status = tf.train.Checkpoint(**objects).restore(checkpoint)
        status.assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as e:
        raise CheckpointMismatchError(
            f"Cannot resume from {checkpoint}: it does not fit the objective of this config "
            f"({checks.reason_of_error(e)[:300]}). The workdir is unchanged."
        ) from e
    if "epoch" in objects:
        step.assign(int(epoch.numpy()) * int(saved_spe or 0))
    return status


def _save_artifacts(model: tf.keras.Model, outdir: str, chief: bool) -> None:
    """Calls the objective's `save_artifacts` hook (e.g. a stage-1 G* as `generator.keras`).

    Every worker calls it: under MultiWorkerMirroredStrategy, reading synced-on-read variables (BatchNorm
    statistics) is a collective op, so the non-chief workers write the same files into their scratch
    folder, which is removed afterwards. Only the chief's copy lands in the workdir, and the chief names
    the files written (objectives without artifacts write none, and nothing is said).
    """
    save = getattr(model, "save_artifacts", None)
    if save is None:
        return
    before = _listing(outdir)
    save(outdir)
    written = sorted(name for name, stamp in _listing(outdir).items() if before.get(name) != stamp)
    if chief and written:
        logging.info("Wrote the objective's artifacts %s into %s.", ", ".join(written), outdir)


def _listing(folder: str) -> dict:
    """{file name: (size, modification time)} of the files directly in `folder`."""
    listing = {}
    for name in tf.io.gfile.listdir(folder):
        path = os.path.join(folder, name)
        if not tf.io.gfile.isdir(path):
            stat = tf.io.gfile.stat(path)
            listing[name] = (stat.length, stat.mtime_nsec)
    return listing


def load_workdir_config(workdir: str) -> None:
    """Replaces the current gin config with the one a workdir was trained with.

    Raises:
      FileNotFoundError: if the workdir has no config.
    """
    config = os.path.join(workdir, CONFIG_FILE)
    if not tf.io.gfile.exists(config):
        raise FileNotFoundError(f"{workdir!r} is not a tfdplc workdir: {CONFIG_FILE} is missing.")
    import tfdplc

    tfdplc.register_configurables()
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
