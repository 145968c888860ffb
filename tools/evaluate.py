#!/usr/bin/env python
"""Evaluates a trained workdir on a test split: rate, MSE, PSNR, distribution distances and PV.

Writes `metrics.json` (a one-record list in the results format of the project: method, rate_bits, bpp,
mse, psnr; fd/kd between test images and reconstructions, sample_fd/sample_kd for objectives that can
sample, on --features; pv, the conditional pixel variance of DPLC Section 5, for objectives with
encode/decode) and `reconstructions.png` (originals on the top row, reconstructions below) into the
workdir unless --output / --grid say otherwise.

Example:
  python tools/evaluate.py --workdir=/tmp/cae
"""

import json
import os
import sys

import numpy as np

# TF must be imported before absl's app.run: imported inside main, Keras functional models fail to build
# ('SymbolicTensor' object has no attribute 'node') on TF 2.14.
import tensorflow as tf  # noqa: F401
from absl import app, flags

flags.DEFINE_string("workdir", None, "A training workdir.", required=True)
flags.DEFINE_string("data_dir", None, "tfds data folder (default: tfds' own).")
flags.DEFINE_string("split", "test", "tfds split to evaluate on.")
flags.DEFINE_integer("batch_size", 100, "Evaluation batch size.")
flags.DEFINE_string("output", None, "JSON output (default: WORKDIR/metrics.json).")
flags.DEFINE_string("grid", None, "PNG grid output (default: WORKDIR/reconstructions.png).")
flags.DEFINE_integer("grid_images", 16, "Number of test images in the PNG grid.")
flags.DEFINE_enum(
    "features",
    "auto",
    ["auto", "digits", "inception", "none"],
    "Features for Fréchet/kernel distances: the shipped digit classifier, InceptionV3 pool features "
    "(needs --inception_weights), none; auto = digits for 1-channel images, inception if weights are given.",
)
flags.DEFINE_string("inception_weights", None, "Local InceptionV3 (no top) weights file for --features.")
flags.DEFINE_integer("pv_codes", 256, "Test codes for the conditional pixel variance (DPLC Section 5).")
flags.DEFINE_integer("pv_decodes", 100, "Decodes per code for PV.")
flags.DEFINE_integer("num_decodes", 6, "Stochastic decodes of one test image saved to WORKDIR/decodes.npz.")
FLAGS = flags.FLAGS


def main(argv):
    del argv

    from tfdplc import data, metrics
    from tfdplc.train import image_grid, load_workdir_config, restore_objective, spread_images

    try:
        load_workdir_config(FLAGS.workdir)
        dataset = data.input_pipeline(
            split=FLAGS.split,
            batch_size=FLAGS.batch_size,
            data_dir=FLAGS.data_dir,
            shuffle=False,
            repeat=False,
            drop_remainder=False,
            degradation=None,
        )
        first = next(iter(dataset))
        model = restore_objective(FLAGS.workdir, first)
    except (OSError, data.DatasetNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    record = {"method": model.name, "workdir": os.path.abspath(FLAGS.workdir), "split": FLAGS.split}
    try:
        features = _feature_extractor(first.shape[-1])
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    test_images = np.concatenate([batch.numpy() for batch in dataset])
    if model.rate_bits is not None:  # stage-1 generators have no code, hence no rate
        record["rate_bits"] = model.rate_bits
        record["bpp"] = metrics.bits_per_pixel(model.rate_bits, first.shape[1:])
    if model.can_reconstruct:
        record.update(metrics.reconstruction_metrics(model, dataset))
        if features is not None:
            reconstructions = np.concatenate([model.reconstruct(batch).numpy() for batch in dataset])
            record.update(metrics.distribution_distances(test_images, reconstructions, features))
    if model.can_sample and features is not None:
        samples = np.concatenate([model.sample(len(b)).numpy() for b in np.array_split(test_images, 10)])
        distances = metrics.distribution_distances(test_images, samples, features)
        record.update({f"sample_{key}": value for key, value in distances.items() if key != "fd_features"})
    if hasattr(model, "encode") and hasattr(model, "decode") and FLAGS.pv_codes:
        pv_images = test_images[np.linspace(0, len(test_images) - 1, FLAGS.pv_codes).round().astype(int)]
        # noise_dim=None: each decode draws fresh noise from the decoder's own (seeded) noise layer.
        record["pv"] = metrics.objective_pixel_variance(model, pv_images, None, num_decodes=FLAGS.pv_decodes)
        record.update(pv_codes=FLAGS.pv_codes, pv_decodes=FLAGS.pv_decodes)
    originals = spread_images(dataset, FLAGS.grid_images)
    if model.can_reconstruct:
        grid = image_grid([originals.numpy(), model.reconstruct(originals).numpy()])
    else:
        grid = image_grid([originals.numpy(), model.sample(len(originals)).numpy()])
    grid_path = FLAGS.grid or os.path.join(FLAGS.workdir, "reconstructions.png")
    tf.io.write_file(grid_path, tf.io.encode_png(tf.cast(tf.round(grid * 255.0), tf.uint8)))
    if FLAGS.num_decodes and hasattr(model, "encode") and hasattr(model, "decode"):
        record["decodes_file"] = _save_decodes(model, originals[:1], FLAGS.num_decodes)
    output = FLAGS.output or os.path.join(FLAGS.workdir, "metrics.json")
    with tf.io.gfile.GFile(output, "w") as f:
        json.dump([record], f, indent=2)
    print(json.dumps(record, indent=2))
    return 0


def _feature_extractor(channels):
    """The --features network, or None."""
    from tfdplc import features

    choice = FLAGS.features
    if choice == "auto":
        choice = "digits" if channels == 1 else ("inception" if FLAGS.inception_weights else "none")
    if choice == "digits":
        return features.DigitClassifierFeatures()
    if choice == "inception":
        return features.InceptionFeatures(FLAGS.inception_weights)
    return None


def _save_decodes(model, image, count):
    """Encodes one image once and decodes it `count` times (fresh decoder noise each time)."""
    code = model.encode(image)
    decodes = np.concatenate([model.decode(code).numpy() for _ in range(count)])
    path = os.path.abspath(os.path.join(FLAGS.workdir, "decodes.npz"))
    np.savez_compressed(path, original=image[0].numpy(), decodes=decodes)
    return path


if __name__ == "__main__":
    app.run(main)
