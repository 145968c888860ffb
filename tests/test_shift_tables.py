"""results/shift/tables.py: the variable-rate runs as one curve, with estimated and real bits; the denoising task."""

import importlib.util
import json
import os
import subprocess
import sys

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
    # Table 6 at 12 bits (cr / ncr), and cr's mean is below ncr's by far more than one sd.
    assert "| 12 | mse | 0.0201 ± 0.0001 (2) | 0.0231 ± 0.0001 (2) | yes | 0.0219 / 0.0230 |" in table
    # Table 11 (denoising, trained at the same time) at 12 bits, and our L2 / e2e - 1 = +10.0%.
    row = next(line for line in table.splitlines() if line.startswith("| 12 | 0.0100"))
    assert "0.0191 / 0.0050 / 0.0002" in row and "0.0243 / 0.0230" in row and "+5.5%" in row
    assert "+10.0%" in row


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
