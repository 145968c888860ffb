"""results/shift/regime_checks.py (issue 27's two regime checks) and results/shift/vr_amortised_bits.py."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_compression as tfc

from tfdplc.layers.bottlenecks import UniversalBottleneck

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(name):
    spec = importlib.util.spec_from_file_location(name, f"{ROOT}/results/shift/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Table 11's (a) at 4, 10, 20, 30 bits, copied from the paper (liu2022_shift_compression.txt) and not from
# tables.py, so a wrong column or row there fails the test; (b) differs from (a) at every rate, so reading
# the wrong column changes the verdicts below.
TABLE11_A = {4: 0.0355, 10: 0.0223, 20: 0.0136, 30: 0.0122}


def _end_to_end(method, bits, seed, mse):
    return {"method": method, "rate_bits": float(bits), "seed": seed, "mse": mse}


def _falling_records(method, low_values, high_values):
    """`method` at 4 and 30 bits with the given per-seed MSEs, and at 10 / 20 bits with decoys.

    The decoys sit where a check reading the wrong rate would get another verdict: 10 bits below the
    4-bit level by 60%, 20 bits ABOVE the 4-bit level. Records are out of seed and rate order.
    """
    records = [_end_to_end(method, 30, s, v) for s, v in reversed(list(enumerate(high_values)))]
    records += [_end_to_end(method, 10, s, 0.4 * v) for s, v in enumerate(low_values)]
    records += [_end_to_end(method, 4, s, v) for s, v in enumerate(low_values)]
    records += [_end_to_end(method, 20, s, 1.5 * v) for s, v in enumerate(low_values)]
    return records


def test_mse_fall_passes_at_30_percent_and_fails_at_29():
    checks = _script("regime_checks")
    low = [0.09, 0.10, 0.11]  # mean 0.10
    records = _falling_records("shift-ncr", low, [0.060, 0.070, 0.080])  # mean 0.070: exactly -30%
    records += _falling_records("shift-cr", low, [0.061, 0.071, 0.081])  # mean 0.071: -29%
    ncr = checks.mse_fall(records, "shift-ncr")
    # float64 means of three decimals: relative error ~1e-16, so 1e-12 is ample.
    assert ncr.mean_low == pytest.approx(0.10, rel=1e-12)
    assert ncr.mean_high == pytest.approx(0.07, rel=1e-12)
    assert ncr.fall == pytest.approx(0.30, rel=1e-12)
    assert ncr.meets  # exactly 30% counts as ">= 30%", whatever the last bit of 0.07 / 0.1
    assert (ncr.seeds_low, ncr.seeds_high) == (3, 3)
    assert ncr.per_seed == pytest.approx({0: 1 / 3, 1: 0.30, 2: 1 - 0.08 / 0.11}, rel=1e-12)
    cr = checks.mse_fall(records, "shift-cr")
    assert cr.fall == pytest.approx(0.29, rel=1e-12) and not cr.meets
    lines = checks.mse_fall_lines(records)
    assert lines == [
        "- shift-ncr: mean MSE to X 0.1000 (3 seeds) at 4 bits -> 0.0700 (3 seeds) at 30 bits, a fall of 30% "
        "(>= 30%); per seed 0: 33%, 1: 30%, 2: 27%.",
        "- shift-cr: mean MSE to X 0.1000 (3 seeds) at 4 bits -> 0.0710 (3 seeds) at 30 bits, a fall of 29% "
        "(< 30%); per seed 0: 32%, 1: 29%, 2: 26%.",
    ]


def test_mse_fall_means_all_seeds_per_rate_and_pairs_only_seeds_with_both():
    checks = _script("regime_checks")
    records = _falling_records("shift-ncr", [0.04, 0.06], [0.02, 0.03])
    records.append(_end_to_end("shift-ncr", 4, 7, 0.08))  # seed 7 at 4 bits only
    fall = checks.mse_fall(records, "shift-ncr")
    assert fall.mean_low == pytest.approx(0.06, rel=1e-12) and fall.seeds_low == 3
    assert fall.mean_high == pytest.approx(0.025, rel=1e-12) and fall.seeds_high == 2
    assert set(fall.per_seed) == {0, 1}
    assert checks.mse_fall(records, "shift-cr") is None
    assert checks.mse_fall_lines(records)[1] == "- shift-cr: not run at both 4 and 30 bits."
    with pytest.raises(ValueError, match="Two shift-ncr records of seed 0 at 30 bits"):
        checks.mse_fall(records + [_end_to_end("shift-ncr", 30, 0, 0.01)], "shift-ncr")


def _decomposition(method, bits, seed, term_a):
    return {"method": method, "rate_bits": float(bits), "seed": seed, "term_a": term_a}


def test_term_a_within_2x_at_the_bounds():
    checks = _script("regime_checks")
    table11 = _script("tables").PAPER_SR["table11"]
    assert {b: row[0] for b, row in table11.items()} == TABLE11_A
    factors = {4: 0.49, 10: 0.5, 20: 2.0, 30: 2.01}
    # Own targets: one seed per rate at factor x Table 11's (a). Joint: two seeds whose mean is the factor.
    records = [
        _decomposition("decomposition-own", b, 0, f * TABLE11_A[b]) for b, f in reversed(factors.items())
    ]
    for b, f in factors.items():
        records += [
            _decomposition("decomposition-joint", b, 0, (f - 0.1) * TABLE11_A[b]),
            _decomposition("decomposition-joint", b, 1, (f + 0.1) * TABLE11_A[b]),
        ]
    for method, seeds in (("decomposition-own", 1), ("decomposition-joint", 2)):
        verdicts = {}
        for b, f in factors.items():
            check = checks.term_a_ratio(records, method, b, table11)
            assert check.paper == TABLE11_A[b] and check.seeds == seeds
            assert check.ratio == pytest.approx(f, rel=1e-12)  # float64 products and quotients
            verdicts[b] = check.within
        assert verdicts == {4: False, 10: True, 20: True, 30: False}, method
    lines = checks.term_a_lines(records, table11)
    assert lines[:2] == [
        "- own targets, 4 bits: (a) = 0.0174 (1 seed) against Table 11's 0.0355: ratio 0.49, not within 2x.",
        "- own targets, 10 bits: (a) = 0.0112 (1 seed) against Table 11's 0.0223: ratio 0.50, within 2x.",
    ]
    assert lines[-1] == (
        "- joint, 30 bits: (a) = 0.0245 (2 seeds) against Table 11's 0.0122: ratio 2.01, not within 2x."
    )
    assert checks.term_a_ratio(records, "decomposition-own", 16, table11) is None
    with pytest.raises(ValueError, match="Table 11 has no row at 16 bits"):
        checks.term_a_ratio(
            [_decomposition("decomposition-own", 16, 0, 0.01)], "decomposition-own", 16, table11
        )
    assert checks.term_a_lines([], table11) == ["- no decomposition records."]


def test_regime_checks_reads_the_task_folders(tmp_path):
    sr_authors = tmp_path / "sr_authors_mnist5k"
    (sr_authors / "decomposition").mkdir(parents=True)
    end_to_end = _falling_records("shift-ncr", [0.05], [0.02])  # -60%
    (sr_authors / "results.json").write_text(json.dumps(end_to_end))
    own = [_decomposition("decomposition-own", 4, 0, 0.0355 * 1.05)]
    (sr_authors / "decomposition" / "results.json").write_text(json.dumps(own))
    (tmp_path / "sr_mnist5k").mkdir()  # the antialiased task's folder: empty, never read for sr_authors
    out = subprocess.run(
        [
            sys.executable,
            f"{ROOT}/results/shift/regime_checks.py",
            "--task=sr_authors",
            f"--output={tmp_path}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert out == [
        "MSE to X from 4 to 30 bits (sr_authors):",
        "- shift-ncr: mean MSE to X 0.0500 (1 seed) at 4 bits -> 0.0200 (1 seed) at 30 bits, a fall of 60% "
        "(>= 30%); per seed 0: 60%.",
        "- shift-cr: not run at both 4 and 30 bits.",
        "Term (a) against Table 11 (sr_authors):",
        "- own targets, 4 bits: (a) = 0.0373 (1 seed) against Table 11's 0.0355: ratio 1.05, within 2x.",
    ]


def _prepared_bottleneck(init_scale, codes):
    """An untrained `UniversalBottleneck` built on `codes`, with range-coding tables (seeded)."""
    tf.keras.utils.set_random_seed(0)
    layer = UniversalBottleneck(init_scale=init_scale)
    layer(codes)
    layer.update_tables()
    return layer


def _bits_of(layer, quantized):
    """-log2 p of each quantized value under the layer's prior (the noisy density: the bin's mass)."""
    return -np.log2(layer.prior.prob(quantized).numpy().astype(np.float64))


def test_count_bits_against_separately_coded_images_and_the_priors_mass():
    vr = _script("vr_amortised_bits")
    n, d = 40, 3
    codes = tf.random.stateless_normal((n, d), seed=[0, 1]) * 1.5
    layer = _prepared_bottleneck(1.0, codes)
    counted = vr.count_bits(layer, codes)
    assert counted["images"] == n
    # Per image: each image coded on its own (the dither depends only on a unit's shape), 8 bits a byte.
    lengths = [len(layer.compress(codes[i : i + 1]).numpy()[0]) for i in range(n)]
    assert counted["per_image_real"] == 8 * np.mean(lengths)
    # Per-image estimate: the mean over images of the summed -log2 p of the quantized codes. float32 log
    # of probabilities >= ~1e-3 and sums of 3: relative error ~1e-6.
    quantized, _ = layer(codes, training=False)
    assert counted["per_image_estimated"] == pytest.approx(
        _bits_of(layer, quantized).sum(-1).mean(), rel=1e-5
    )
    # One string: tfc's own universal model (no tables) over one (N, d) coding unit gives its dither and
    # quantized values; their -log2 p summed, / N, is the one-string estimate.
    kwargs = dict(num_noise_levels=layer.num_noise_levels, tail_mass=layer.tail_mass)
    stacked, _ = tfc.UniversalBatchedEntropyModel(layer.prior, 2, compression=False, **kwargs)(
        codes, training=False
    )
    assert not np.array_equal(stacked.numpy(), quantized.numpy())  # another dither than per image
    total = _bits_of(layer, stacked).sum()
    assert counted["one_string_estimated"] * n == pytest.approx(total, rel=1e-5)
    # The string's length: the ideal length plus the range coder's termination (at most 4 bytes) and
    # rounding up to whole bytes, and the 12-bit tables' deviation from the prior (< 1% of the bits here,
    # each symbol's mass >= 1e-2).
    real_total = counted["one_string_real"] * n
    assert real_total % 8 == 0
    assert abs(real_total - total) <= 40 + 0.01 * total
    assert counted["round_trip_max_abs_error"] == 0.0
    # Amortised, the per-string overhead (here 2.1 bits per image) is gone.
    assert counted["per_image_real"] - counted["per_image_estimated"] > 1.0
    assert abs(counted["one_string_real"] - counted["one_string_estimated"]) < 0.5


def test_count_bits_one_string_has_no_byte_floor():
    vr = _script("vr_amortised_bits")
    n = 200
    codes = tf.zeros((n, 3))  # a code that carries nothing, under a prior of width 1e-3 around 0
    layer = _prepared_bottleneck(1e-3, codes)
    counted = vr.count_bits(layer, codes)
    assert counted["per_image_estimated"] < 0.01
    assert counted["per_image_real"] == 8.0  # one byte per string, the floor
    # One string for all 200: the estimate is the bins' mass under this stacked unit's dither.
    assert 0 < counted["one_string_real"] < 1.0
    assert abs(counted["one_string_real"] - counted["one_string_estimated"]) * n <= 40
    assert counted["round_trip_max_abs_error"] == 0.0


def test_count_bits_refuses_codes_that_are_not_one_vector_per_image():
    vr = _script("vr_amortised_bits")
    codes = tf.zeros((4, 2, 3))
    layer = _prepared_bottleneck(1.0, codes)
    with pytest.raises(ValueError, match=r"one code vector per image, shape \(N, d\); got codes of shape"):
        vr.count_bits(layer, codes)
