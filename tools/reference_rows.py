#!/usr/bin/env python
"""Reference rows of results/dplc/README.md: what a perfect model and a mean-image decoder score on mnist5k.

Measured on the mnist5k test split (500 digits) at the evaluation's resolution (zero-padded to 32x32, as
the configs train), with the features tools/evaluate.py uses for one-channel data (the shipped digit
classifier, 64-d):
- random training digits: --draws sets of as many training digits as there are test digits, drawn
  without replacement (seeds --seed, --seed + 1, ...), against the test digits: FD / KD, the floor of a
  model whose outputs are real digits (and the MSE of pairing them with the test digits in order, which
  is the code-ignoring realistic decoder's MSE, ~2 Var(X));
- the mean training image repeated: MSE against the test digits (the best rate-0 deterministic decoder
  learned from the training set), FD / KD;
- the mean test image repeated: the MSE floor of any constant output on these test digits.

Example:
  python tools/reference_rows.py [--data_dir=...] [--draws=3]
"""

from tfdplc import quiet

tf = quiet.import_tensorflow()
from absl import app, flags  # noqa: E402

quiet.quiet_logs()

flags.DEFINE_string("data_dir", None, "tfds data folder (mnist5k is built there on first use).")
flags.DEFINE_integer("resolution", 32, "Image size (mnist5k is zero-padded from 28).")
flags.DEFINE_integer("draws", 3, "Sets of random training digits.")
flags.DEFINE_integer("seed", 0, "Seed of the first draw.")
FLAGS = flags.FLAGS


def _images(split):
    import numpy as np

    from tfdplc import data

    dataset = data.load_images("mnist5k", split, data_dir=FLAGS.data_dir, resolution=FLAGS.resolution)
    return np.stack(list(dataset.as_numpy_iterator())).astype(np.float64)


def main(argv):
    del argv
    import numpy as np

    from tfdplc import features, metrics

    train, test = _images("train"), _images("test")
    extractor = features.DigitClassifierFeatures()
    n = len(test)
    print(f"mnist5k at {FLAGS.resolution}x{FLAGS.resolution}: {len(train)} train, {n} test digits; "
          f"features: {extractor.name}")  # fmt: skip
    print("| reference | MSE vs test | FD | KD |")
    print("|---|---|---|---|")
    for draw in range(FLAGS.draws):
        rng = np.random.default_rng(FLAGS.seed + draw)
        sample = train[rng.choice(len(train), size=n, replace=False)]
        distances = metrics.distribution_distances(test, sample, extractor)
        mse = float(np.mean((sample - test) ** 2))
        print(f"| {n} random train digits (seed {FLAGS.seed + draw}) | {mse:.4f} | "
              f"{distances['fd']:.1f} | {distances['kd']:.1f} |")  # fmt: skip
    for name, source in (("train", train), ("test", test)):
        mean = np.repeat(source.mean(axis=0, keepdims=True), n, axis=0)
        mse = float(np.mean((mean - test) ** 2))
        if name == "train":
            distances = metrics.distribution_distances(test, mean, extractor)
            fd, kd = f"{distances['fd']:.1f}", f"{distances['kd']:.1f}"
        else:
            fd = kd = "-"
        print(f"| mean {name} image, repeated | {mse:.4f} | {fd} | {kd} |")
    print(
        f"code-ignoring realistic decoder, 2 Var(X) on the test digits: MSE {metrics.code_ignoring_mse(test):.4f}"
    )
    return 0


if __name__ == "__main__":
    app.run(main)
