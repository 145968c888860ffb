#!/usr/bin/env python
"""Training throughput (images/s) of tfdplc objectives on this machine, XLA off and on.

Each case builds the objective of a gin config, feeds random [0, 1] images of the config's shape from an
in-memory, prefetched tf.data pipeline, and times single `train_step` calls (after warm-up); it prints the
median images/s and, where DESIGN.md gives one, the ratio to the papers' PyTorch reference on the same
machine kind.

Example:
  python tools/benchmark.py --steps=10 --cases=cae_64,cae_mnist
"""

import json
import time

# TF must be imported before absl's app.run: imported inside main, Keras functional models fail to build
# ('SymbolicTensor' object has no attribute 'node') on TF 2.14.
import tensorflow as tf  # noqa: F401
from absl import app, flags

flags.DEFINE_list("cases", ["cae_64", "cae_mnist"], "Benchmark cases to run (see CASES).")
flags.DEFINE_integer("steps", 10, "Timed steps per case.")
flags.DEFINE_integer("warmup", 3, "Untimed warm-up steps (tracing/compilation).")
flags.DEFINE_list("xla_modes", ["off", "on"], "XLA settings to time: off, on.")
flags.DEFINE_string("output", None, "Optional JSON file for the measurements.")
FLAGS = flags.FLAGS

# name -> (gin config, extra bindings, batch size, image shape, reference images/s or None)
CASES = {
    "cae_64": ("gin/cae_celeba64.gin", [], 64, (64, 64, 3), None),
    "cae_mnist": ("gin/cae_mnist5k.gin", [], 64, (32, 32, 1), None),
}


def _time_case(name, xla):
    import gin
    import numpy as np

    from tfdplc.train import build_objective
    from tfdplc.train.config import parse_gin

    config, bindings, batch, shape, reference = CASES[name]
    gin.clear_config()
    parse_gin([config], bindings)
    tf.keras.utils.set_random_seed(0)
    images = tf.random.uniform((4 * batch, *shape))
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(batch).repeat().prefetch(tf.data.AUTOTUNE)
    model = build_objective()
    model(images[:1])
    model.compile(jit_compile=xla == "on")
    step = model.make_train_function()
    iterator = iter(dataset)
    for _ in range(FLAGS.warmup):
        logs = step(iterator)
    times = []
    for _ in range(FLAGS.steps):
        start = time.perf_counter()
        logs = step(iterator)
        float(logs["loss"])  # wait for the step to finish
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    result = {
        "case": name,
        "xla": xla,
        "batch": batch,
        "median_step_s": seconds,
        "images_per_s": batch / seconds,
    }
    if reference:
        result["reference_images_per_s"] = reference
        result["ratio_to_reference"] = result["images_per_s"] / reference
    return result


def main(argv):
    del argv
    results = []
    for name in FLAGS.cases:
        if name not in CASES:
            raise app.UsageError(f"Unknown case {name!r}; expected one of {sorted(CASES)}.")
        for xla in FLAGS.xla_modes:
            result = _time_case(name, xla)
            results.append(result)
            ratio = (
                f"  ({result['ratio_to_reference']:.2f}x reference)" if "ratio_to_reference" in result else ""
            )
            print(
                f"{name:12s} xla={xla:3s} batch={result['batch']:4d}  "
                f"{result['images_per_s']:8.1f} images/s  ({result['median_step_s'] * 1e3:.1f} ms/step){ratio}",
                flush=True,
            )
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    app.run(main)
