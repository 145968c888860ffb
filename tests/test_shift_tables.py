"""results/shift/tables.py: the variable-rate runs as one curve, with estimated and real bits; the denoising task."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tables():
    spec = importlib.util.spec_from_file_location("shift_tables", f"{ROOT}/results/shift/tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variable_rate_sweep_methods_become_one_curve_with_their_rate_weight():
    tables = _tables()
    records = [
        {
            "method": "shift-vr-1e-3",
            "seed": 0,
            "rate_bits": 20.0,
            "real_bits": 20.0,
            "estimated_bits": 16.0,
            "real_vs_estimated_bits": 0.25,
            "mse": 0.03,
            "mse_gt": 0.04,
            "fd": 50.0,
        },
        {
            "method": "shift-vr-1e-2",
            "seed": 0,
            "rate_bits": 8.0,
            "real_bits": 8.0,
            "estimated_bits": 6.0,
            "real_vs_estimated_bits": 1 / 3,
            "mse": 0.05,
            "mse_gt": 0.06,
            "fd": 70.0,
        },
        {"method": "shift-cr", "seed": 0, "rate_bits": 4.0, "mse": 0.05},
    ]
    converted = [tables.as_variable_rate(r) for r in records]
    assert [r["method"] for r in converted] == ["shift-vr", "shift-vr", "shift-cr"]
    assert [r.get("rate_weight") for r in converted] == [1e-3, 1e-2, None]
    assert records[0]["method"] == "shift-vr-1e-3"  # the input record is left as it was
    lines = tables.variable_rate_table(converted)
    rows = [line for line in lines if line.startswith("| 0.0")]
    assert rows == [
        "| 0.001 | 0 | 16.00 | 20.00 | +25.0% | 0.0300 | 0.0400 | 50.0 |",
        "| 0.01 | 0 | 6.00 | 8.00 | +33.3% | 0.0500 | 0.0600 | 70.0 |",
    ]
    assert tables.variable_rate_table(converted[2:]) == []
    assert tables.headline_table(converted) == []  # no cr and ncr at one rate: no headline (the sr_vr task)


def _write_sweep(sweeps, name, records):
    folder = sweeps / name
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(records))


def _end_to_end(method, mse, seed_offset=0.0):
    return {"method": method, "rate_bits": 12.0, "bpp": 12 / 784, "mse": mse + seed_offset, "workdir": "w"}


def test_denoise_task_writes_its_own_files_with_the_denoising_paper_numbers(tmp_path):
    sweeps = tmp_path / "workdirs" / "sweeps"
    for seed, offset in ((0, 0.0), (1, 0.0002)):
        _write_sweep(sweeps, f"shift-cr-seed{seed}", [_end_to_end("shift-cr", 0.020, offset)])
        _write_sweep(sweeps, f"shift-ncr-seed{seed}", [_end_to_end("shift-ncr", 0.023, offset)])
    decomposition = {
        "method": "decomposition-own",
        "rate_bits": 12.0,
        "bpp": 12 / 784,
        "term_a": 0.010,
        "term_b": 0.004,
        "term_c": 0.008,
        "decomposed_loss": 0.022,
        "end_to_end_loss": 0.020,
        "workdir": "w",
    }
    _write_sweep(sweeps, "decomposition-own-seed0", [decomposition])
    output = tmp_path / "results"
    subprocess.run(
        [
            sys.executable,
            f"{ROOT}/results/shift/tables.py",
            f"--sweeps={sweeps}",
            f"--output={output}",
            "--task=denoise",
        ],
        check=True,
        capture_output=True,
    )
    # The denoising files, never the super-resolution ones.
    assert not (output / "tables.md").exists() and not (output / "sr_mnist5k").exists()
    end_to_end = json.loads((output / "denoise_mnist5k" / "results.json").read_text())
    assert sorted((r["method"], r["seed"]) for r in end_to_end) == [
        ("shift-cr", 0),
        ("shift-cr", 1),
        ("shift-ncr", 0),
        ("shift-ncr", 1),
    ]
    (own,) = json.loads((output / "denoise_mnist5k" / "decomposition" / "results.json").read_text())
    assert own["decomposed_loss"] == 0.022
    table = (output / "tables_denoise.md").read_text()
    # Table 6 at 12 bits (cr / ncr); paired by seed, cr - ncr is -0.003 in both seeds (interval of width 0).
    assert (
        "| 12 | mse | 0.0201 ± 0.0001 (2) | 0.0231 ± 0.0001 (2) | -0.0030 ± 0.0000 (2) | [-0.0030, -0.0030] | "
        "yes, cr lower | 0.0219 / 0.0230 |"
    ) in table
    # Our own-targets row at 12 bits: L2 / e2e - 1 = +10.0%, T = (c) = 0.0080, joint optimum -(2/3) T / e2e.
    row = next(line for line in table.splitlines() if line.startswith("| 12 | own targets | 0.0100"))
    assert "| +10.0% | 0.0080 | -26.7% |" in row
    # Table 11 (denoising, trained at the same time) at 12 bits under both readings: T = (c) or 9 (c).
    row = next(line for line in table.splitlines() if line.startswith("| 12 | 0.0191"))
    assert "0.0191 / 0.0050 / 0.0002" in row and "0.0243 / 0.0230" in row and "+5.5%" in row
    assert row.endswith("| 0.0002 | 0.0018 | -5.2% |")


def test_baseline_table_puts_each_method_at_its_rate_next_to_the_restoration_alone():
    tables = _tables()

    def record(method, rate, mse, seed=0):
        return {
            "method": method,
            "rate_bits": rate,
            "seed": seed,
            "mse": mse,
            "mse_gt": mse / 2,
            "fd": 100 * mse,
        }

    records = [
        record("shift-cr", 12.0, 0.02),
        record("shift-cr", 12.0, 0.04, seed=1),
        record("baseline-ncr", 12.0, 0.05),
        record("baseline-cr", 60.0, 0.03),
        record("shift-ncr", 30.0, 0.09),  # no baseline at 30 bits: not in the table
    ]
    lines = tables.baseline_table(records, {"mse": 0.048, "mse_gt": 0.018, "fd": 7.6})
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| bits")]
    assert rows == [
        "| 12 | shift-cr | 0.0300 ± 0.0141 (2) | 0.0150 ± 0.0071 (2) | 3.0 ± 1.4 (2) |",
        "| 12 | baseline-ncr | 0.0500 | 0.0250 | 5.0 |",
        "| 60 | baseline-cr | 0.0300 | 0.0150 | 3.0 |",
    ]
    assert (
        lines[-2] == "The restoration network alone (no rate constraint): mse 0.0480, mse_gt 0.0180, fd 7.6."
    )
    assert tables.baseline_table(records[:1]) == []


# The two-sided 95% Student-t quantiles t_{0.975, df}, from a printed t table (not from scipy).
T_975 = {1: 12.706204736, 2: 4.302652730, 3: 3.182446305}


def _paired_records():
    """cr / ncr runs at 4 and 10 bits where pairing by seed matters, plus unpaired seeds that must be left out.

    4 bits: the seeds' levels differ a lot (0.030, 0.040, 0.050) but cr is below ncr by 0.001-0.002 in each
    seed: paired, the interval lies below 0; unpaired (pooled sds ~0.01) it would not. The records are out of
    seed order, so pairing by position would pair the wrong runs. 10 bits: differences -0.003, -0.001,
    -0.002 (mean -0.002, sd 0.001): the t interval (half-width 4.30 * sd / sqrt(3) = 0.00248) contains 0,
    a normal one (1.96 * sd / sqrt(3) = 0.00113) would not. Seed 3 has a cr run only, seed 4 an ncr run only.
    """
    rows = [
        ("shift-cr", 4, 2, 0.049),
        ("shift-cr", 4, 0, 0.029),
        ("shift-cr", 4, 1, 0.0385),
        ("shift-ncr", 4, 0, 0.030),
        ("shift-ncr", 4, 1, 0.040),
        ("shift-ncr", 4, 2, 0.050),
        ("shift-cr", 4, 3, 0.001),
        ("shift-ncr", 4, 4, 0.100),
        ("shift-cr", 10, 0, 0.021),
        ("shift-cr", 10, 1, 0.024),
        ("shift-cr", 10, 2, 0.023),
        ("shift-ncr", 10, 0, 0.024),
        ("shift-ncr", 10, 1, 0.025),
        ("shift-ncr", 10, 2, 0.025),
    ]
    return [
        {"method": m, "rate_bits": float(b), "seed": s, "mse": v, "mse_gt": 2 * v, "fd": 1000 * v}
        for m, b, s, v in rows
    ]


def test_paired_difference_matches_an_independent_t_interval():
    tables = _tables()
    records = _paired_records()
    for rate, metric, scale in ((4, "mse", 1), (10, "mse", 1), (10, "fd", 1000)):
        cr = [r for r in records if r["method"] == "shift-cr" and r["rate_bits"] == rate]
        ncr = [r for r in records if r["method"] == "shift-ncr" and r["rate_bits"] == rate]
        paired = tables.paired_difference(cr, ncr, metric)
        # Independent: seed-matched differences by dictionary look-up, numpy's ddof=1 sd, the printed quantile.
        cr_by_seed = {r["seed"]: r[metric] for r in cr}
        ncr_by_seed = {r["seed"]: r[metric] for r in ncr}
        seeds = sorted(set(cr_by_seed) & set(ncr_by_seed))
        d = np.array([cr_by_seed[s] - ncr_by_seed[s] for s in seeds])
        half = T_975[len(d) - 1] * d.std(ddof=1) / np.sqrt(len(d))
        assert paired.seeds == (0, 1, 2)
        np.testing.assert_allclose(paired.differences, d, rtol=1e-12)
        # float64 sums of three numbers of size <= 50: relative error ~1e-15; the table's quantile has 9 digits.
        assert paired.mean == pytest.approx(d.mean(), rel=1e-12, abs=1e-15 * scale)
        assert paired.sd == pytest.approx(d.std(ddof=1), rel=1e-12)
        assert paired.low == pytest.approx(d.mean() - half, rel=1e-8)
        assert paired.high == pytest.approx(d.mean() + half, rel=1e-8)
    cr4 = [r for r in records if r["method"] == "shift-cr" and r["rate_bits"] == 4]
    ncr4 = [r for r in records if r["method"] == "shift-ncr" and r["rate_bits"] == 4]
    assert tables.paired_difference(cr4, ncr4, "mse").high < 0  # cr lower in every seed: excludes 0
    cr10 = [r for r in records if r["method"] == "shift-cr" and r["rate_bits"] == 10]
    ncr10 = [r for r in records if r["method"] == "shift-ncr" and r["rate_bits"] == 10]
    assert not tables.paired_difference(cr10, ncr10, "mse").excludes_zero  # t, not normal, quantile
    # One paired seed: no interval; a seed with two runs of one method: refused.
    one = tables.paired_difference(cr4[:1], ncr4, "mse")
    assert one.seeds == (2,) and one.sd == 0 and not one.excludes_zero
    with pytest.raises(ValueError, match="Two shift-cr runs of seed 0"):
        tables.paired_difference(cr4 + [dict(cr4[1])], ncr4, "mse")


def test_headline_counts_rates_whose_paired_interval_excludes_zero():
    tables = _tables()
    lines = tables.headline_table(_paired_records())
    rows = {  # the main table's rows (9 cell borders), not the per-seed ones
        tuple(cell.strip() for cell in line.split("|")[1:3]): line
        for line in lines
        if line.startswith("| ") and line.count("|") == 9
    }
    # 4 bits: differences -0.001, -0.0015, -0.001: mean -0.00117, sd 0.00029, half-width 4.303 * sd / sqrt(3).
    assert "| -0.0012 ± 0.0003 (3) | [-0.0019, -0.0004] | yes, cr lower |" in rows[("4", "mse")]
    assert "| -0.0020 ± 0.0010 (3) | [-0.0045, +0.0005] | no |" in rows[("10", "mse")]
    assert "- mse: the 95% interval of cr - ncr lies below 0 at 1 of the 2 rates" in "\n".join(lines)
    assert "| 4 | mse | 0: -0.0010, 1: -0.0015, 2: -0.0010 |" in lines
