#!/usr/bin/env python
"""Prints the gradient balance of a DPLC-family config: each regularizer's pull against the distortion's.

For a WAE, Wasserstein++, DPLC stage-2 or GC config (CAE and WGAN-GP print what applies to them), it
builds the objective as tools/train.py would, then prints, at initialization and after --steps training
steps, the ratios of `tfdplc.calibration.gradient_ratios` (adversarial term vs distortion w.r.t. the
decoded images, MMD vs distortion w.r.t. the codes, the critic's input-gradient norm), averaged over
--measure_batches batches.

Example (the issue-11 calibration; --convention overrides the config's distortion and penalty):
  python tools/diagnose.py --gin_config=gin/gc_mnist5k.gin --gin_bindings="K = 0" --steps=100 \
      --convention=paper_text

What it stands in for, and says so in its output:
- a data set that is not prepared (celeb_a, lsun): uniform random images of the config's shape;
- a stage-1 generator file (DPLC.generator_path) that does not exist: an untrained G* of the config's
  shape (generator_G with mapping_B.m and encoder_E.width);
- CAE metrics files (scaled_lambda.metrics / reference_metrics) that do not exist: lambda(R) = its base,
  i.e. the value at the reference rate.
Nothing is written to disk in this mode. Exit status: 0 done, 2 bad config or binding.

--deployed_workdir=WORKDIR (a trained DPLC stage-2 workdir; --gin_config is not used) checks the
distribution constraint in the mode the codec runs (`tfdplc.deployed.deployed_check`): the MMD of B(E(x))
against prior samples with every test image encoded and mapped alone in inference mode, next to the sd of
the same estimator between two prior batches of the same size (the null band), the PV next to the pixel
variance of G*(z) samples, and the authors' batch-statistics mode (labelled as not what the codec
produces). It writes one JSON record to --output (default WORKDIR/deployed.json) and prints it:
  python tools/diagnose.py --deployed_workdir=workdirs/quickstart/dplc
It checks the workdir's latest checkpoint (the record's "checkpoint"): after tools/recalibrate.py (E's and
B's batch-norm statistics re-estimated on the training split) that is bn_recalibrated-STEP.

--ratio_curve_workdir=WORKDIR prints the gradient ratios as a curve over the whole run
(`tfdplc.train.ratio_curve`) and plots it (--output, default WORKDIR/logs/gradient_ratios.png):
- from WORKDIR/logs/gradient_ratios.jsonl, written during training with `train.gradient_ratio_every = N`:
    python tools/diagnose.py --ratio_curve_workdir=workdirs/dplc/seed0/wpp_mnist5k
- --ratio_curve_source=checkpoints: measured now on each checkpoint the run kept (`train.keep_checkpoints`),
  on the batches and seed the callback would have used (the workdir's train.gradient_ratio_batches /
  gradient_ratio_seed, or their defaults; --measure_batches overrides the count), written to
  WORKDIR/logs/gradient_ratios_checkpoints.jsonl (and ..._checkpoints.png), for runs trained without it.
Exit status 2 on a missing or empty log, or a workdir without checkpoints.
"""

import inspect
import os
import sys

from tfdplc import quiet

tf = quiet.import_tensorflow()
from absl import app, flags  # noqa: E402

quiet.quiet_logs()

flags.DEFINE_multi_string("gin_config", [], "gin config files, applied in order.")
flags.DEFINE_multi_string("gin_bindings", [], "gin bindings applied after the files.")
flags.DEFINE_integer("steps", 0, "Training steps between the two measurements (0: initialization only).")
flags.DEFINE_integer("measure_batches", 2, "Batches each measurement averages over.")
flags.DEFINE_enum(
    "convention",
    "as_configured",
    ["as_configured", "paper_text", "authors_code"],
    "Scale convention of the distortion and gradient penalty (tfdplc.losses.CONVENTIONS).",
)
flags.DEFINE_string("data_dir", None, "tfds data folder (default: tfds' own).")
flags.DEFINE_integer("seed", 0, "Seed of TF's global generator and the input pipeline.")
flags.DEFINE_string("deployed_workdir", None, "A trained DPLC workdir: run the deployed-mode check on it.")
flags.DEFINE_integer("deployed_images", 0, "Test images whose codes give the MMDs (0: the whole split).")
flags.DEFINE_integer("pv_codes", 256, "Test images whose codes give the PVs (0: no PV).")
flags.DEFINE_integer("pv_decodes", 100, "Decodes per code for the PVs.")
flags.DEFINE_integer("null_repetitions", 100, "Pairs of prior batches for the MMD's null band.")
flags.DEFINE_integer("authors_batch_size", 256, "Batch of the authors' mode (0: skip it).")
flags.DEFINE_string("split", "test", "Split of the deployed-mode check.")
flags.DEFINE_string(
    "output",
    None,
    "JSON of the deployed-mode check (default WORKDIR/deployed.json); PNG of the ratio curve (default "
    "WORKDIR/logs/gradient_ratios[_checkpoints].png).",
)
flags.DEFINE_string(
    "ratio_curve_workdir", None, "A training workdir: print and plot its gradient-ratio curve."
)
flags.DEFINE_enum(
    "ratio_curve_source",
    "log",
    ["log", "checkpoints"],
    "log: the curve logged during training; checkpoints: measure it now on the kept checkpoints.",
)
FLAGS = flags.FLAGS

_CHANNELS = {"mnist5k": 1, "mnist": 1, "svhn_cropped": 3, "celeb_a": 3, "lsun/bedroom": 3}


def _value(name):
    """A bound parameter with macros resolved; None when unbound (`tfdplc.train.config.bound_value`)."""
    from tfdplc.train.config import bound_value

    return bound_value(name)


def _stand_in_bindings(objective_name):
    """Bindings that replace missing files by stand-ins, and the notes that say so."""
    bindings, notes = [], []
    if objective_name == "DPLC":
        path = _value("DPLC.generator_path")
        if path is not None and not os.path.exists(path):
            bindings += [
                "DPLC.generator_path = None",
                "DPLC.generator = @stand_in/tfdplc.nets.generator_G()",
                f"stand_in/generator_G.resolution = {_value('encoder_E.resolution')}",
                f"stand_in/generator_G.m = {_value('mapping_B.m')}",
                f"stand_in/generator_G.width = {_value('encoder_E.width')}",
                f"stand_in/generator_G.channels = {_value('encoder_E.channels')}",
            ]
            notes.append(f"G* {path!r} does not exist: an UNTRAINED stand-in G* of the same shape is used")
    for parameter in ("scaled_lambda.metrics", "scaled_lambda.reference_metrics"):
        path = _value(parameter)
        if isinstance(path, str) and not os.path.exists(path):
            bindings += ["scaled_lambda.metrics = None", "scaled_lambda.reference_metrics = None"]
            notes.append(
                f"{path!r} does not exist: lambda(R) = scaled_lambda.base (the reference-rate value)"
            )
            break
    return bindings, notes


def _convention_bindings(objective_class, convention):
    from tfdplc import losses

    if convention == "as_configured":
        return []
    distortion, penalty = losses.CONVENTIONS[convention]
    parameters = inspect.signature(objective_class.__init__).parameters
    name = objective_class.__name__
    bindings = []
    if "distortion" in parameters:
        bindings.append(f"{name}.distortion = @tfdplc.losses.{distortion.__name__}")
    if "gradient_penalty" in parameters:
        bindings.append(f"{name}.gradient_penalty = @tfdplc.losses.{penalty.__name__}")
    return bindings


def _batches(notes):
    """An iterator of training batches: the config's data set, or random images of its shape."""
    from tfdplc import data

    try:
        dataset = data.input_pipeline(split="train", data_dir=FLAGS.data_dir, seed=FLAGS.seed)
        return iter(dataset), _value("input_pipeline.name")
    except data.DatasetNotFoundError:
        name = _value("input_pipeline.name")
        resolution = _value("input_pipeline.resolution")
        shape = (_value("input_pipeline.batch_size"), resolution, resolution, _CHANNELS[name])
        notes.append(f"data set {name!r} is not prepared: uniform random images of shape {shape}")

        def random_batches():
            generator = tf.random.Generator.from_seed(FLAGS.seed)
            while True:
                yield generator.uniform(shape)

        return random_batches(), f"random {shape}"


def _format(step, ratios):
    keys = ("distortion", "adversarial_ratio", "mmd_ratio", "critic_grad")
    cells = [f"{ratios[k]:.3g}" if k in ratios else "-" for k in keys]
    return f"| {step} | " + " | ".join(cells) + " |"


def _spread(images, count):
    """`count` evenly spaced images of the split (all of them when count is 0 or larger than the split)."""
    import numpy as np

    if not count or count >= len(images):
        return images
    return images[np.linspace(0, len(images) - 1, count).round().astype(int)]


def _main_deployed(workdir):
    """The deployed-mode check of one DPLC workdir (module docstring); exit status 0 or 2."""
    import json

    import numpy as np

    from tfdplc import data, deployed
    from tfdplc.train import load_workdir_config, restore_objective

    for name in ("deployed_images", "pv_codes", "authors_batch_size"):
        if FLAGS[name].value < 0:
            print(f"error: --{name} must be >= 0, got {FLAGS[name].value}.", file=sys.stderr)
            return 2
    try:
        load_workdir_config(workdir)
        dataset = data.input_pipeline(
            split=FLAGS.split, batch_size=256, data_dir=FLAGS.data_dir, shuffle=False, repeat=False,
            drop_remainder=False, degradation=None,
        )  # fmt: skip
        images = np.concatenate([batch.numpy() for batch in dataset])
        model = restore_objective(workdir, images[:1])
    except (OSError, data.DatasetNotFoundError) as e:  # FileNotFoundError is an OSError
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not all(hasattr(model, a) for a in ("latents", "latent_dim", "generator", "mapping")):
        print(
            f"error: {workdir!r} holds a {type(model).__name__}, not a DPLC stage-2 model.", file=sys.stderr
        )
        return 2
    try:
        record = deployed.deployed_check(
            model,
            _spread(images, FLAGS.deployed_images),
            pv_images=_spread(images, FLAGS.pv_codes) if FLAGS.pv_codes else None,
            pv_decodes=FLAGS.pv_decodes,
            null_repetitions=FLAGS.null_repetitions,
            seed=FLAGS.seed,
            authors_batch_size=FLAGS.authors_batch_size or None,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    record = {
        "method": model.name,
        "workdir": os.path.abspath(workdir),
        "split": FLAGS.split,
        "checkpoint": os.path.basename(latest),
        "train_seed": _value("train.seed"),
        **record,
    }
    output = FLAGS.output or os.path.join(workdir, "deployed.json")
    with open(output, "w") as f:
        json.dump(record, f, indent=2)
    print(json.dumps(record, indent=2))
    print(f"[diagnose] wrote {output}")
    return 0


def _ratio_curve_records(workdir):
    """The curve's records and the file they are in (measured now from the checkpoints if asked to)."""
    import json

    from tfdplc import data
    from tfdplc.train import ratio_curve

    logs = os.path.join(workdir, "logs")
    hint = (
        f"measure the checkpoints it kept instead: tools/diagnose.py --ratio_curve_source=checkpoints "
        f"--ratio_curve_workdir={workdir}"
    )
    if FLAGS.ratio_curve_source == "log":
        path = os.path.join(logs, ratio_curve.LOG_FILE)
        if not os.path.exists(path):
            raise ValueError(f"{path} does not exist (trained without train.gradient_ratio_every); {hint}")
        records = ratio_curve.read_curve(path)
        if not records:
            raise ValueError(f"{path} holds no measurement; {hint}")
        return records, path
    try:
        from tfdplc.train import load_workdir_config

        load_workdir_config(workdir)
        count = (
            FLAGS.measure_batches
            if FLAGS["measure_batches"].present
            else _value("train.gradient_ratio_batches")
        )
        seed = _value("train.gradient_ratio_seed")
        records = ratio_curve.curve_from_checkpoints(
            workdir, count=count or 2, seed=1 if seed is None else seed, data_dir=FLAGS.data_dir
        )
    except (OSError, TypeError, data.DatasetNotFoundError) as e:
        raise ValueError(str(e)) from e
    path = os.path.join(logs, ratio_curve.CHECKPOINT_LOG_FILE)
    os.makedirs(logs, exist_ok=True)
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    return records, path


def _plot_ratio_curve(records, path):
    from tfdplc import plots

    panels = [
        (key, label)
        for key, label in (
            ("adversarial_ratio", "adversarial / distortion"),
            ("mmd_ratio", "MMD / distortion"),
            ("critic_grad", "critic |grad f(x^)|"),
        )
        if any(key in r for r in records)
    ]
    fig, axes = plots.plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.8), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        points = [(r["step"], r[key]) for r in records if key in r]
        ax.plot(*zip(*points), marker=".")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    last = records[-1]
    weights = ", ".join(f"{k} {v:g}" for k, v in last.get("weights", {}).items())
    fig.suptitle(f"{last.get('objective', '')} ({weights})", fontsize=9)
    return plots.save_figure(fig, path)


def _main_ratio_curve(workdir):
    """Prints and plots the gradient-ratio curve of one workdir (module docstring); exit status 0 or 2."""
    try:
        records, source = _ratio_curve_records(workdir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    last = records[-1]
    weights = ", ".join(f"{k} = {v:.4g}" for k, v in last.get("weights", {}).items())
    print(f"workdir: {workdir}; objective: {last.get('objective', '-')}; weights: {weights or '-'}")
    print(
        f"source: {source}; {last.get('batches', '?')} batches of {last.get('batch_size', '?')} images, "
        f"seed {last.get('seed', '?')}"
    )
    print("| step | distortion | adversarial / distortion | MMD / distortion | critic |grad f(x^)| |")
    print("|---|---|---|---|---|")
    for record in records:
        print(_format(record["step"], record))
    default = os.path.splitext(source)[0] + ".png"
    print(f"[diagnose] wrote {_plot_ratio_curve(records, FLAGS.output or default)}")
    return 0


def main(argv):
    del argv
    if FLAGS.deployed_workdir:
        return _main_deployed(FLAGS.deployed_workdir)
    if FLAGS.ratio_curve_workdir:
        return _main_ratio_curve(FLAGS.ratio_curve_workdir)

    from tfdplc import calibration
    from tfdplc.train import build_objective, checks
    from tfdplc.train import config as gin_config

    try:
        gin_config.parse_gin(FLAGS.gin_config, FLAGS.gin_bindings)
        objective_class = _value("build_objective.objective").configurable.wrapped
        extra, notes = _stand_in_bindings(objective_class.__name__)
        extra += _convention_bindings(objective_class, FLAGS.convention)
        gin_config.parse_gin((), extra)
    except (checks.GinConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    tf.keras.utils.set_random_seed(FLAGS.seed)
    batches, source = _batches(notes)
    model = build_objective()
    first = next(batches)
    model(first[:1])
    model.compile()

    def measure():
        results = [calibration.gradient_ratios(model, next(batches)) for _ in range(FLAGS.measure_batches)]
        return {k: sum(r[k] for r in results) / len(results) for k in results[0]}

    rows = [_format(0, measure())]
    for _ in range(FLAGS.steps):
        model.train_on_batch(next(batches))
    if FLAGS.steps:
        rows.append(_format(FLAGS.steps, measure()))

    distortion = getattr(model, "distortion", None)
    penalty = getattr(model, "gradient_penalty", None)
    print(f"config: {' '.join(FLAGS.gin_config)} {' '.join(repr(b) for b in FLAGS.gin_bindings)}")
    print(f"objective: {objective_class.__name__}; convention: {FLAGS.convention}", end="")
    print(
        f" (distortion {getattr(distortion, '__name__', '-')}, penalty {getattr(penalty, '__name__', '-')})"
    )
    weights = ", ".join(f"{k} = {v:.4g}" for k, v in calibration.regularizer_weights(model).items())
    print(f"weights: {weights or '-'}; data: {source}; batch {first.shape[0]}; seed {FLAGS.seed}")
    for note in notes:
        print(f"STAND-IN: {note}")
    print("| step | distortion | adversarial / distortion | MMD / distortion | critic |grad f(x^)| |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    app.run(main)
