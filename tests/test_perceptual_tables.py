"""results/perceptual/tables.py: the claims of issue 13 computed from seeded records."""

import importlib.util
import json
import os

from event_files import write_events

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLOOR = 0.1068


def _tables():
    spec = importlib.util.spec_from_file_location("perceptual_tables", f"{ROOT}/results/perceptual/tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(lines):
    return [line.split(" | ") for line in lines if line.startswith("| ") and not line.startswith("| bits")]


def test_ratio_is_the_mean_of_per_seed_ratios_and_uninformative_rates_are_not_judged():
    tables = _tables()
    records = [
        # 8 bits: seed ratios 1.5 and 3.0 (mean 2.25, in range); the ratio of the means would be 2.5 (out).
        {"method": "g1", "rate_bits": 8.0, "seed": 0, "mse": 0.02, "fd": 100.0},
        {"method": "g1", "rate_bits": 8.0, "seed": 1, "mse": 0.01, "fd": 100.0},
        {"method": "g2", "rate_bits": 8.0, "seed": 0, "mse": 0.03, "fd": 50.0},
        {"method": "g2", "rate_bits": 8.0, "seed": 1, "mse": 0.03, "fd": 50.0},
        # 2 bits: 2 x MSE(G1) = 0.096 > 0.8 x floor: not informative, its ratio 1.0 is not judged.
        {"method": "g1", "rate_bits": 2.0, "seed": 0, "mse": 0.048, "fd": 500.0},
        {"method": "g2", "rate_bits": 2.0, "seed": 0, "mse": 0.048, "fd": 600.0},
    ]
    lines = tables.ratio_table(records, FLOOR)
    rows = {row[0].strip("| "): row for row in _rows(lines)}
    assert rows["8"][4].startswith("2.25 ± 1.06") and rows["8"][5] == "yes" and rows["8"][6] == "yes"
    assert rows["2"][5] == "no" and rows["2"][6].startswith("-") and rows["2"][9].startswith("no")
    assert "every informative rate: holds (1 of 1 rates)" in lines[-1]
    assert "G2's FD is below G1's at every rate: fails (1 of 2 rates)" in lines[-1]


def test_dal_claim_fails_when_a_lambda_beats_g2_on_both_axes():
    tables = _tables()
    g2 = {"method": "g2", "rate_bits": 16.0, "seed": 0, "mse": 0.05, "fd": 40.0, "kd": 1.0}
    worse = {"method": "dal-0.1", "rate_bits": 16.0, "seed": 0, "mse": 0.03, "fd": 90.0, "kd": 1.0}
    better = {"method": "dal-1", "rate_bits": 16.0, "seed": 0, "mse": 0.04, "fd": 30.0, "kd": 1.0}
    assert "holds (1 of 1 lambdas)" in tables.dal_table([g2, worse])[-1]
    assert "fails (1 of 2 lambdas)" in tables.dal_table([g2, worse, better])[-1]


def test_slider_rows_and_files(tmp_path):
    tables = _tables()
    (tmp_path / "sweeps" / "g1g2-seed0").mkdir(parents=True)
    records = [
        {"method": "g1", "rate_bits": 16.0, "mse": 0.02, "fd": 100.0, "kd": 1.0},
        {"method": "g2", "rate_bits": 16.0, "mse": 0.04, "fd": 40.0, "kd": 1.0},
    ]
    (tmp_path / "sweeps" / "g1g2-seed0" / "results.json").write_text(json.dumps(records))
    (tmp_path / "seed0" / "g2-k16").mkdir(parents=True)
    slider = [
        {"rate_bits": 16.0, "realism": a, "mse": 0.02 + 0.02 * a, "fd": 100 - 60 * a, "pv": a}
        for a in (0, 0.5, 1)
    ]
    (tmp_path / "seed0" / "g2-k16" / "metrics_realism.json").write_text(json.dumps(slider))
    loaded = tables.load_realism(str(tmp_path))
    assert [r["seed"] for r in loaded] == [0, 0, 0]
    rows = _rows(tables.slider_table(tables.results.load_seeded_sweeps(str(tmp_path / "sweeps")), loaded))
    # (1 + a^2) MSE(G1) next to the measured MSE: 0.02, 0.025, 0.04.
    assert [(row[1], row[3], row[4]) for row in rows] == [
        ("0", "0.0200", "0.0200"),
        ("0.5", "0.0300", "0.0250"),
        ("1", "0.0400", "0.0400"),
    ]
    path = tables.tradeoff_plot(
        tables.results.load_seeded_sweeps(str(tmp_path / "sweeps")), loaded, 16.0, str(tmp_path / "t.png")
    )
    assert open(path, "rb").read(4) == b"\x89PNG"


def test_spread_table_splits_the_ratio_into_spread_and_offset_per_seed():
    tables = _tables()
    records = [
        {"method": "g1", "rate_bits": 16.0, "seed": 0, "mse": 0.02},
        {"method": "g1", "rate_bits": 16.0, "seed": 1, "mse": 0.04},
        # seed 0: ratio 2.5 = 1 + 0.5 (PV 0.01 / 0.02) + 1.0; seed 1: a posterior sample, 2 = 1 + 1 + 0.
        {"method": "g2", "rate_bits": 16.0, "seed": 0, "mse": 0.05, "pv": 0.01},
        {"method": "g2", "rate_bits": 16.0, "seed": 1, "mse": 0.08, "pv": 0.04},
        # 8 bits: no PV recorded, so no row.
        {"method": "g1", "rate_bits": 8.0, "seed": 0, "mse": 0.03},
        {"method": "g2", "rate_bits": 8.0, "seed": 0, "mse": 0.06},
    ]
    rows = _rows(tables.spread_table(records))
    assert len(rows) == 1
    bits, seeds, ratio, spread, offset = (cell.strip("| ") for cell in rows[0])
    assert (bits, seeds) == ("16", "2")
    assert ratio.startswith("2.25 ± 0.35")
    assert spread.startswith("0.75 ± 0.35")
    assert offset.startswith("0.50 ± 0.71")


def test_load_realism_reads_only_seed_folders(tmp_path):
    tables = _tables()
    record = [{"rate_bits": 16.0, "realism": 0.0, "mse": 0.02, "fd": 100.0, "pv": 0.0}]
    for folder in ("seed3", "seed2-extended"):
        (tmp_path / folder / "g2-k16").mkdir(parents=True)
        (tmp_path / folder / "g2-k16" / "metrics_realism.json").write_text(json.dumps(record))
    assert [r["seed"] for r in tables.load_realism(str(tmp_path))] == [3]


def test_run_times_per_kind(tmp_path):
    tables = _tables()
    # Training spans of 60 s, 120 s (g2, two seeds) and 600 s (g1); a diagnostic copy is not counted.
    for folder, run, span in (
        ("seed0", "g2-k16", 60.0),
        ("seed1", "g2-k16", 120.0),
        ("seed0", "g1-k16", 600.0),
        ("seed2-extended", "g2-k16", 60.0),
    ):
        log_dir = tmp_path / folder / run / "logs" / "train"
        log_dir.mkdir(parents=True)
        write_events(
            log_dir / "events.out.tfevents.1.host", [1000.0 + step * span / 10 for step in range(11)]
        )
    run_times = tables.load_run_times(str(tmp_path))
    assert sorted((r["run"], r["seed"], round(r["minutes"], 6)) for r in run_times) == [
        ("g1-k16", 0, 10.0),
        ("g2-k16", 0, 1.0),
        ("g2-k16", 1, 2.0),
    ]
    cells = [[cell.strip("| ") for cell in row] for row in _rows(tables.run_time_table(run_times))]
    rows = {row[0]: row[1:] for row in cells if row[0] != "runs"}
    assert rows == {"g1": ["1", "10.0", "0.2"], "g2": ["2", "1.5 ± 0.7 (2)", "0.1"], "all": ["3", "-", "0.2"]}


def test_main_keeps_only_the_chosen_seeds(tmp_path, monkeypatch):
    tables = _tables()
    for seed, ratio in ((0, 2.0), (3, 4.0)):
        folder = tmp_path / "sweeps" / f"g1g2-seed{seed}"
        folder.mkdir(parents=True)
        records = [
            {"method": "g1", "rate_bits": 16.0, "mse": 0.02, "fd": 100.0, "kd": 1.0},
            {"method": "g2", "rate_bits": 16.0, "mse": 0.02 * ratio, "fd": 40.0, "kd": 1.0},
        ]
        (folder / "results.json").write_text(json.dumps(records))
    output = tmp_path / "out"
    output.mkdir()
    argv = ["tables.py", f"--workdirs={tmp_path}", f"--output={output}", "--seeds=0"]
    monkeypatch.setattr("sys.argv", argv)
    tables.main()
    assert {r["seed"] for r in json.loads((output / "results_seeds.json").read_text())} == {0}
    (row,) = [row for row in _rows((output / "tables.md").read_text().splitlines()) if row[0] == "| 16"]
    assert row[1] == "1" and row[4].startswith("2.00")
