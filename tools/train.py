#!/usr/bin/env python
"""Trains a gin-configured tfdplc objective.

Example:
  python tools/train.py --gin_config=gin/cae_mnist5k.gin --workdir=/tmp/cae \
      --gin_bindings="train.total_steps = 200"

Run it again with the same --workdir to resume from the last checkpoint. Several workers: set TF_CONFIG
in each worker's environment (the strategy "auto" then picks MultiWorkerMirroredStrategy).
"""

import sys

# TF must be imported before absl's app.run: imported inside main, Keras functional models fail to build
# ('SymbolicTensor' object has no attribute 'node') on TF 2.14.
import tensorflow as tf  # noqa: F401
from absl import app, flags, logging

flags.DEFINE_multi_string("gin_config", [], "gin config files, applied in order.")
flags.DEFINE_multi_string(
    "gin_bindings", [], "gin bindings applied after the files, e.g. 'train.total_steps = 10'."
)
flags.DEFINE_string("workdir", None, "Output folder: checkpoints, logs, configs.", required=True)
flags.DEFINE_string("data_dir", None, "tfds data folder (default: tfds' own).")
flags.DEFINE_integer(
    "num_cpu_devices", 1, "Split the CPU into this many logical devices (for MirroredStrategy tests)."
)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from tfdplc.train import config as gin_config

    gin_config.split_cpu(FLAGS.num_cpu_devices)
    from tfdplc import data
    from tfdplc.train import NonFiniteLossError, train

    try:
        gin_config.parse_gin(FLAGS.gin_config, FLAGS.gin_bindings)
    except (gin_config.GinConfigError, FileNotFoundError) as e:
        logging.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        train(FLAGS.workdir, FLAGS.data_dir)
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except data.DatasetNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    app.run(main)
