#!/usr/bin/env python
"""How fast the variable-rate model's learned prior fits fixed codes, by its start and its optimizer.

The prior (tfdplc.layers.UniversalBottleneck, tfc's NoisyDeepFactorized, 16 symbols as in
gin/shift_sr_mnist5k_vr.gin) is trained ALONE to minimise the estimated bits of fixed codes: the rate term
of the end-to-end loss with f frozen. Under Adam the rate weight cancels out of the prior's update (its only
gradient is the rate term's), so the weight is left out. Two code sets, already multiplied by the code
scale: a constant 0 (zero information; the best prior charges 0 bits) and codes uniform on [-4, 4] per
symbol (about 3 bits per symbol for a well-fitted prior: the differential entropy of U(-4, 4) + U(-1/2,
1/2) is log2(8) + 0.07). Each configuration's estimated bits per image after 0, 100, 300 and 1000 Adam steps
(batch 64, beta_1 0.5, as the configs). Example (about 2 min on the 2-core CPU):

  python results/shift/vr_prior_fit.py
"""

import tensorflow as tf

from tfdplc import layers

SYMBOLS = 16
CHECKPOINTS = (0, 100, 300, 1000)
CONFIGS = (  # (label, init_scale, learning rate of the prior's Adam)
    ("init_scale 10, lr 5e-4 (the VR config until issue 27)", 10.0, 5e-4),
    ("init_scale 1, lr 5e-4", 1.0, 5e-4),
    ("init_scale 10, lr 1e-2 (own optimizer)", 10.0, 1e-2),
    ("init_scale 1, lr 1e-2 (own optimizer)", 1.0, 1e-2),
)
CODES = {
    "constant 0": lambda step: tf.zeros((64, SYMBOLS)),
    "uniform [-4, 4]": lambda step: tf.random.stateless_uniform((64, SYMBOLS), (7, step), -4.0, 4.0),
}


def fit(init_scale, learning_rate, codes, seed=0):
    """Estimated bits per image of `codes` after each step count in CHECKPOINTS."""
    tf.random.set_seed(seed)  # tfc's training noise comes from the global seed
    bottleneck = layers.UniversalBottleneck(init_scale=init_scale)
    bottleneck(codes(0), training=False)
    optimizer = tf.keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(bottleneck(batch, training=True)[1])
        optimizer.apply_gradients(
            zip(tape.gradient(loss, bottleneck.trainable_variables), bottleneck.trainable_variables)
        )

    bits = {}
    for i in range(CHECKPOINTS[-1] + 1):
        if i in CHECKPOINTS:
            bits[i] = float(tf.reduce_mean(bottleneck(codes(10**6), training=False)[1]))
        if i < CHECKPOINTS[-1]:
            step(codes(i))
    return bits


def main():
    """Prints one Markdown row per (configuration, code set)."""
    print("| prior | codes | " + " | ".join(f"bits after {n} steps" for n in CHECKPOINTS) + " |")
    print("|---|---|" + "---|" * len(CHECKPOINTS))
    for label, init_scale, learning_rate in CONFIGS:
        for name, codes in CODES.items():
            bits = fit(init_scale, learning_rate, codes)
            print(f"| {label} | {name} | " + " | ".join(f"{bits[n]:.1f}" for n in CHECKPOINTS) + " |")


if __name__ == "__main__":
    main()
