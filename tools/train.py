#!/usr/bin/env python
"""Trains a gin-configured tfdplc objective.

Example:
  python tools/train.py --gin_config=gin/cae_mnist5k.gin --workdir=/tmp/cae \
      --gin_bindings="train.total_steps = 200"

Mixed precision (float32 variables, checkpoints and exports; see tfdplc.train.precision):
  python tools/train.py --gin_config=gin/cae_mnist5k.gin --workdir=/tmp/cae_bf16 \
      --gin_bindings="train.precision = 'mixed_bfloat16'"     # or 'mixed_float16' (loss scaling) on GPUs

Run it again with the same --workdir to resume from the last checkpoint (with the same config: a changed
parameter is refused unless --allow_config_change names it; train.total_steps and the other run
parameters may change). Several workers: set TF_CONFIG in each worker's environment (the strategy "auto"
then picks MultiWorkerMirroredStrategy). TensorBoard: `tensorboard --logdir WORKDIR/logs`.

Everything is checked before the workdir is written. Exit status: 0 done, 2 bad config / binding / config
change / checkpoint that does not fit (one line on stderr; the traceback with --verbosity=1), 3 a loss
became NaN or infinite (the last good checkpoint stays), 4 dataset not found.
"""

import sys

from tfdplc import quiet

# TF must be imported before absl's app.run: imported inside main, Keras functional models fail to build
# ('SymbolicTensor' object has no attribute 'node') on TF 2.14.
tf = quiet.import_tensorflow()
from absl import app, flags, logging  # noqa: E402

quiet.quiet_logs()

flags.DEFINE_multi_string("gin_config", [], "gin config files, applied in order.")
flags.DEFINE_multi_string(
    "gin_bindings", [], "gin bindings applied after the files, e.g. 'train.total_steps = 10'."
)
flags.DEFINE_string("workdir", None, "Output folder: checkpoints, logs, configs.", required=True)
flags.DEFINE_string("data_dir", None, "tfds data folder (default: tfds' own).")
flags.DEFINE_list(
    "allow_config_change",
    [],
    "Parameters a resumed run may change from the workdir's config.gin, e.g. step_decay.boundaries.",
)
flags.DEFINE_integer(
    "num_cpu_devices", 1, "Split the CPU into this many logical devices (for MirroredStrategy tests)."
)
FLAGS = flags.FLAGS


def _fail(message: str, status: int) -> int:
    """Prints one line (and, with --verbosity=1 or more, the traceback) and returns the exit status."""
    if FLAGS.verbosity >= 1:
        logging.exception("Traceback of the error below:")
    print(f"error: {message}", file=sys.stderr)
    return status


def main(argv):
    del argv
    from tfdplc.train import config as gin_config

    gin_config.split_cpu(FLAGS.num_cpu_devices)
    from tfdplc import data
    from tfdplc.train import NonFiniteLossError, checks, train

    try:
        gin_config.parse_gin(FLAGS.gin_config, FLAGS.gin_bindings)
        train(FLAGS.workdir, FLAGS.data_dir, allow_config_change=FLAGS.allow_config_change)
    except checks.GinConfigError as e:
        return _fail(checks.explain_error(e, FLAGS.gin_bindings), 2)
    except NonFiniteLossError as e:
        return _fail(str(e), 3)
    except data.DatasetNotFoundError as e:
        return _fail(checks.reason_of_error(e), 4)
    except FileNotFoundError as e:  # a missing --gin_config file
        return _fail(str(e), 2)
    return 0


if __name__ == "__main__":
    app.run(main)
