#!/usr/bin/env python
"""Re-estimates the batch-norm moving statistics of a trained DPLC stage-2 workdir (issue 25).

Sets every BatchNormalization moving mean / variance of E and B to the population statistics of the
training images in the deployed pipeline (inference mode, layer by layer: `tfdplc.deployed.
recalibrate_batch_norm`), leaves every trainable weight as it is, and saves the result as
checkpoints/bn_recalibrated-STEP, the latest checkpoint of the output workdir: tools/evaluate.py,
tools/export.py, the codec and tools/diagnose.py --deployed_workdir then use the recalibrated model.
Not in the paper (the authors' code never uses moving statistics); why it is needed:
`tfdplc.batch_norm`. Stage 2 can do the same at its end with `DPLC.recalibrate_batch_norm = True`.

  python tools/recalibrate.py --workdir=W                        # in place: W's old checkpoint stays
  python tools/recalibrate.py --workdir=W --output_workdir=W-bn  # W unchanged; W-bn gets config + ckpt

Writes OUTPUT/bn_recalibration.json (source checkpoint, images, per-layer changes, wall time) and prints
it. Exit codes: 0 done; 2 not a DPLC workdir, no checkpoint, no batch norm in E and B, an output folder
that already holds checkpoints, or a data set that cannot be read.
"""

import json
import sys

# TF must be imported before absl's app.run (see tools/train.py).
from tfdplc import quiet  # noqa: E402

tf = quiet.import_tensorflow()
from absl import app, flags  # noqa: E402

quiet.quiet_logs()

flags.DEFINE_string("workdir", None, "A trained DPLC stage-2 workdir.", required=True)
flags.DEFINE_string("output_workdir", None, "Write here instead of in place (must hold no checkpoint).")
flags.DEFINE_string("split", "train", "Split whose images give the statistics.")
flags.DEFINE_string("data_dir", None, "tfds data folder (default: tfds' own).")
flags.DEFINE_integer("batch_size", 256, "Images per forward pass (the statistics do not depend on it).")
flags.DEFINE_integer("seed", 0, "Seed of B's per-image noise seeds.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import numpy as np

    from tfdplc import data, deployed
    from tfdplc.train import build_objective, load_workdir_config

    if FLAGS.batch_size < 1:
        print(f"error: --batch_size must be >= 1, got {FLAGS.batch_size}.", file=sys.stderr)
        return 2
    try:
        load_workdir_config(FLAGS.workdir)
        dataset = data.input_pipeline(
            split=FLAGS.split, batch_size=FLAGS.batch_size, data_dir=FLAGS.data_dir, shuffle=False,
            repeat=False, drop_remainder=False, degradation=None,
        )  # fmt: skip
        images = np.concatenate([batch.numpy() for batch in dataset])
        model = build_objective()
    except (OSError, data.DatasetNotFoundError) as e:  # FileNotFoundError is an OSError
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not all(hasattr(model, a) for a in ("encoder", "mapping", "latents", "optimizer_eb")):
        print(
            f"error: {FLAGS.workdir!r} holds a {type(model).__name__}, not a DPLC stage-2 model.",
            file=sys.stderr,
        )
        return 2
    model(images[:1])
    try:
        record = deployed.recalibrate_workdir(
            model, FLAGS.workdir, images, FLAGS.output_workdir, FLAGS.batch_size, FLAGS.seed,
            metadata={"split": FLAGS.split},
        )  # fmt: skip
    except (OSError, ValueError) as e:  # FileNotFoundError and FileExistsError are OSErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    app.run(main)
