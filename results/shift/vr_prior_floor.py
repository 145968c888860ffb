#!/usr/bin/env python
"""What the trained variable-rate prior charges for codes that carry no information (issue 12's VR puzzle).

For each variable-rate workdir (gin/shift_sr_mnist5k_vr.gin), restores the objective and evaluates its
entropy model (`ShiftCompression.quantizer`, the tfc universal entropy model with a learned
`NoisyDeepFactorized` prior) in evaluation mode on three batches of 64 codes, already multiplied by the
code scale: all zeros (one constant code: zero information), uniform in [-0.5, 0.5] and uniform in [-4, 4].
A prior that had adapted to a rate weight would charge the constant code close to 0 bits; a prior still at
its initial width (init_scale 10) charges about log2(10) = 3.3 bits per symbol whatever the code.

Example:
  python results/shift/vr_prior_floor.py /work/runs/shift/seed0/shift-vr-*-k16
"""

import argparse

import gin
import tensorflow as tf

from tfdplc import train

PROBES = {
    "constant 0": lambda shape: tf.zeros(shape),
    "uniform [-0.5, 0.5]": lambda shape: tf.random.stateless_uniform(shape, (0, 1), -0.5, 0.5),
    "uniform [-4, 4]": lambda shape: tf.random.stateless_uniform(shape, (0, 2), -4.0, 4.0),
}


def prior_bits(workdir, trained=True, batch=64):
    """{probe name: mean estimated bits per image} of the workdir's entropy model.

    Args:
      workdir: a variable-rate shift-compression workdir.
      trained: restore the workdir's checkpoint (True) or keep the freshly built, initial prior (False).
      batch: codes per probe.

    Returns:
      The mean estimated bits per image of each probe in PROBES.
    """
    gin.clear_config()
    train.load_workdir_config(workdir)
    images = tf.zeros((1, 28, 28, 1))  # the super-resolution configs' 28x28 mnist5k digits
    if trained:
        model = train.restore_objective(workdir, images)
    else:
        model = train.build_objective()
        model(images)
    latent_dim = model.encoder.output_shape[-1]
    bits = {}
    for name, probe in PROBES.items():
        _, per_image = model.quantizer(probe((batch, 1, 1, latent_dim)), training=False)
        bits[name] = float(tf.reduce_mean(per_image))
    return bits


def main():
    """Prints one Markdown row per workdir."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("workdirs", nargs="+")
    args = parser.parse_args()
    print("| workdir | " + " | ".join(f"bits, {name}" for name in PROBES) + " |")
    print("|---|" + "---|" * len(PROBES))
    rows = [(f"{args.workdirs[0]} (at initialization)", prior_bits(args.workdirs[0], trained=False))]
    rows += [(workdir, prior_bits(workdir)) for workdir in args.workdirs]
    for label, bits in rows:
        print(f"| {label} | " + " | ".join(f"{bits[name]:.2f}" for name in PROBES) + " |")


if __name__ == "__main__":
    main()
