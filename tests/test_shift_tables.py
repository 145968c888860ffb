"""results/shift/tables.py: the variable-rate runs as one curve, with estimated and real bits."""

import importlib.util
import os

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
