#!/usr/bin/env python
"""Real bits of the variable-rate shift models with one range-coded string per image and one for all images.

The per-image strings of `tools/evaluate.py` (`real_bits`) are whole bytes each, so no image costs less than
8 bits however little its code carries. This script measures, for each variable-rate workdir
(gin/shift_sr_mnist5k_vr.gin), the test set's codes coded two ways with the workdir's range-coding tables:

* per image: `UniversalBottleneck.compress` of each code (16 symbols, one string each, tfc's dither for a
  16-symbol unit), as the evaluation does; `estimated` is the entropy model's -log2 p of the same
  quantized codes;
* one string: the N codes stacked into a single coding unit (tfc's universal model with `coding_rank` 2 over
  the (N, 16) codes) and range coded into ONE string; its bits / N are the amortised real bits per image,
  with no per-image byte floor. tfc draws the universal dither per symbol of the coding unit from a fixed
  stateless seed, so the stacked unit's dither differs from the per-image one; its `estimated` bits are
  therefore computed for the same stacked unit (the same dither), and the string is decoded back and
  compared with the quantized codes (`round trip`) so that the measured string is a real code.

Example:
  python results/shift/vr_amortised_bits.py workdirs/shift/vr/seed0/shift-vr-*-k16
"""

import argparse

import gin
import numpy as np
import tensorflow as tf

from tfdplc import data, train
from tfdplc.layers.bottlenecks import UniversalModelWithTables

__all__ = ["count_bits", "measure", "test_codes"]


def test_codes(model, batch_size=100):
    """The scaled codes f(S) * code_scale of the test split in order, shape (N, d), as `compress` codes them.

    Args:
      model: a restored variable-rate `ShiftCompression`.
      batch_size: evaluation batch size.

    Returns:
      A float32 tensor (N, d).
    """
    pipeline = data.input_pipeline(split="test", batch_size=batch_size, shuffle=False, repeat=False)
    pipeline = pipeline.prefetch(1)
    codes = [
        model.encoder(model.source(degraded), training=False) * model.code_scale for degraded, _ in pipeline
    ]
    return tf.concat(codes, axis=0)


def count_bits(bottleneck, codes):
    """Per-image and one-string real and estimated bits per image of `codes` under a prepared bottleneck.

    Args:
      bottleneck: a built `UniversalBottleneck` with range-coding tables (`update_tables()` called) and
        the default coding rank (one coding unit per code vector).
      codes: float tensor (N, d), the scaled codes `compress` codes.

    Returns:
      A dict: `images` (N), `per_image_real` (8 x the mean byte length of the N per-image strings),
      `per_image_estimated` (the entropy model's mean bits of the same codes), `one_string_real` (8 x the
      byte length of one string of all N codes, / N), `one_string_estimated` (the model's bits of that
      stacked unit, / N) and `round_trip_max_abs_error` (that string decoded against the quantized codes).

    Raises:
      ValueError: if `codes` is not one vector per image.
    """
    if codes.shape.rank != 2:
        raise ValueError(
            f"Expected one code vector per image, shape (N, d); got codes of shape {codes.shape}."
        )
    n = int(codes.shape[0])

    strings = bottleneck.compress(codes)  # (N,): the evaluation's per-image strings
    _, per_image_estimate = bottleneck(codes, training=False)

    # One coding unit of all N codes: the same prior and tables, coding rank 2 instead of 1.
    cdf, cdf_offset = bottleneck._checked_tables()  # noqa: SLF001 - the layer's stored tables
    kwargs = bottleneck._model_kwargs()  # noqa: SLF001 - tail mass, noise levels, dtype
    kwargs.pop("coding_rank")
    stacked = UniversalModelWithTables(bottleneck.prior, 2, cdf, cdf_offset, **kwargs)
    one_string = stacked.compress(codes)  # a scalar string
    quantized, one_string_estimate = stacked(codes, training=False)
    decoded = stacked.decompress(one_string, [n])
    round_trip = float(tf.reduce_max(tf.abs(decoded - quantized)))

    per_image_bits = 8.0 * tf.strings.length(strings).numpy().astype(np.float64)
    return {
        "images": n,
        "per_image_real": float(per_image_bits.mean()),
        "per_image_estimated": float(tf.reduce_mean(per_image_estimate)),
        "one_string_real": 8.0 * float(tf.strings.length(one_string)) / n,
        "one_string_estimated": float(one_string_estimate) / n,
        "round_trip_max_abs_error": round_trip,
    }


def measure(workdir):
    """`count_bits` of one variable-rate workdir's test codes (its checkpoint's prior and tables).

    Args:
      workdir: a variable-rate shift-compression workdir with a checkpoint.

    Returns:
      `count_bits`' dict.

    Raises:
      ValueError: if the workdir's objective has a fixed rate or its code is not one vector per image.
    """
    gin.clear_config()
    tf.keras.backend.clear_session()
    train.load_workdir_config(workdir)
    first, _ = next(iter(data.input_pipeline(split="test", batch_size=1, shuffle=False, repeat=False)))
    model = train.restore_objective(workdir, first)
    if model.fixed_rate:
        raise ValueError(f"{workdir!r} has a fixed-rate code: nothing to range code.")
    model.prepare_for_coding()
    try:
        return count_bits(model.quantizer, test_codes(model))
    except ValueError as error:
        raise ValueError(f"{workdir!r}: {error}") from error


def main():
    """Prints one Markdown row per workdir."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("workdirs", nargs="+")
    args = parser.parse_args()
    print(
        "| workdir | images | per image: estimated / real bits | real / est. - 1 | one string: estimated / "
        "real bits per image | real / est. - 1 | one-string round trip max error |"
    )
    print("|---|---|---|---|---|---|---|")
    for workdir in args.workdirs:
        m = measure(workdir)
        print(
            f"| {workdir} | {m['images']} | {m['per_image_estimated']:.2f} / {m['per_image_real']:.2f} | "
            f"{100 * (m['per_image_real'] / m['per_image_estimated'] - 1):+.1f}% | "
            f"{m['one_string_estimated']:.3f} / {m['one_string_real']:.3f} | "
            f"{100 * (m['one_string_real'] / m['one_string_estimated'] - 1):+.1f}% | "
            f"{m['round_trip_max_abs_error']:.1e} |"
        )


if __name__ == "__main__":
    main()
