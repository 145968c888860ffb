"""The rate sweep tool and its plots."""

import json
import os
import pathlib
import shlex
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import app
from inprocess_tools import load_tool

from tfdplc import plots

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_rate_plots_and_decode_grid_from_records(tmp_path):
    decodes = tmp_path / "d.npz"
    np.savez(decodes, original=np.zeros((8, 8, 1)), decodes=np.ones((3, 8, 8, 1)))
    records = [
        {
            "method": m,
            "bpp": b,
            "mse": 0.1 / (1 + b),
            "pv": 0.01 * (m == "dplc"),
            "decodes_file": str(decodes),
        }
        for m in ("dplc", "gc")
        for b in (0.0, 0.5, 1.0)
    ]
    written = plots.rate_plots(records, str(tmp_path))
    assert sorted(os.path.basename(p) for p in written) == ["rate_mse.png", "rate_pv.png"]  # no "fd" key
    assert plots.decode_grid(records, str(tmp_path / "grid.png")) == str(tmp_path / "grid.png")
    assert plots.decode_grid([{"method": "cae", "bpp": 0.0}], str(tmp_path / "none.png")) is None
    for name in ("rate_mse.png", "rate_pv.png", "grid.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_sweep_trains_and_evaluates_a_point(tmp_path, mnist5k_dir):
    tiny = [
        "train.total_steps = 7",  # no multiple of the 5 steps per epoch
        "train.steps_per_epoch = 5",
        "train.verbose = 0",
        "train.eval_steps = 1",
    ]
    result = subprocess.run(
        [
            sys.executable,
            "tools/sweep.py",
            "--methods=cae:gin/cae_mnist5k.gin",
            "--ks=2",
            f"--workdir_root={tmp_path / 'runs'}",
            f"--output={tmp_path / 'out'}",
            f"--data_dir={mnist5k_dir}",
            "--evaluate_args=--num_decodes=2,--pv_codes=8,--pv_decodes=2",
            *[f"--common_bindings={b}" for b in tiny],
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Echoed commands are shell-quoted: they can be copied into a shell as they are.
    (echoed,) = [line[len("[sweep] ") :] for line in result.stdout.splitlines() if "tools/train.py" in line]
    assert "'--gin_bindings=K = 2'" in echoed
    assert shlex.split(echoed)[1:] == [
        "tools/train.py",
        "--gin_config=gin/cae_mnist5k.gin",
        f"--workdir={tmp_path / 'runs'}/cae-k2",
        f"--data_dir={mnist5k_dir}",
        "--gin_bindings=K = 2",
        *[f"--gin_bindings={b}" for b in tiny],
    ]
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["method"], r["k"], r["rate_bits"]) for r in records] == [("cae", 2, 8.0)]
    (record,) = records
    # tools/evaluate.py's record of the trained point: the whole test split, bpp and PSNR consistent.
    assert 0 < record["mse"] < 1 and record["num_images"] == 500 and record["bpp"] == 8.0 / 32**2
    np.testing.assert_allclose(record["psnr_of_mean_mse"], 10 * np.log10(1 / record["mse"]), rtol=1e-6)
    assert record["real_bits"] == 8.0 and np.isfinite(record["fd"])
    png = tf.io.decode_png(tf.io.read_file(str(tmp_path / "runs" / "cae-k2" / "reconstructions.png")))
    assert png.shape[0] == 2 * 34 and png.shape[1] == 16 * 34  # test images over reconstructions
    assert np.load(records[0]["decodes_file"])["decodes"].shape == (2, 32, 32, 1)
    for name in ("rate_mse.png", "decodes.png"):
        assert (tmp_path / "out" / name).exists()


def _fake_run(runs, wall_s):
    """Stands in for sweep's train / evaluate subprocesses: logs each tool, evaluate writes mse = len(runs)."""

    def run(args):
        runs.append(args[0])
        workdir = next(a for a in args if a.startswith("--workdir=")).split("=", 1)[1]
        os.makedirs(workdir, exist_ok=True)
        if args[0] == "tools/evaluate.py":
            pathlib.Path(workdir, "metrics.json").write_text(json.dumps([{"mse": len(runs)}]))
        return wall_s

    return run


def test_a_point_is_reused_only_for_the_same_request_and_config_text(tmp_path, monkeypatch):
    sweep = load_tool("sweep")
    config = tmp_path / "m.gin"
    config.write_text("K = 0\n")
    sweep.FLAGS(["sweep.py", f"--methods=m:{config}", f"--workdir_root={tmp_path}", f"--output={tmp_path}"])
    runs = []
    monkeypatch.setattr(sweep, "_run", _fake_run(runs, 1.5))
    try:
        first = sweep.run_point("m", str(config), 2)
        assert runs == ["tools/train.py", "tools/evaluate.py"] and first["train_wall_s"] == 1.5
        # The same request: reused as recorded, nothing runs (a resumed sweep keeps its wall times).
        assert sweep.run_point("m", str(config), 2) == first and len(runs) == 2
        # Another binding, then the same path with an edited binding in it: each runs again...
        sweep.FLAGS.common_bindings = ["train.seed = 1"]
        assert sweep.run_point("m", str(config), 2)["mse"] == 4
        config.write_text("K = 1\n")
        assert sweep.run_point("m", str(config), 2)["mse"] == 6
        # ...but edited comments and blank lines do not change the request.
        config.write_text("# why K is 1\n\nK = 1  \n")
        assert sweep.run_point("m", str(config), 2)["mse"] == 6 and len(runs) == 6
        # A record written before config hashes is matched on the rest of its request, with a warning.
        point = tmp_path / "m-k2" / sweep.POINT_RECORD
        done = json.loads(point.read_text())
        del done["request"]["config_sha256"]
        point.write_text(json.dumps(done))
        assert sweep.run_point("m", str(config), 2)["mse"] == 6 and len(runs) == 6
    finally:
        sweep.FLAGS.unparse_flags()


def test_an_edited_included_config_makes_another_request(tmp_path, monkeypatch):
    sweep = load_tool("sweep")
    (tmp_path / "gin").mkdir()
    base, config = tmp_path / "gin" / "base.gin", tmp_path / "gin" / "top.gin"
    base.write_text("train.total_steps = 5\n")
    config.write_text("include 'gin/base.gin'\nK = 0\n")
    sweep.FLAGS(["sweep.py", f"--methods=m:{config}", f"--workdir_root={tmp_path}", f"--output={tmp_path}"])
    runs = []
    monkeypatch.setattr(sweep, "_run", _fake_run(runs, 1.0))
    try:
        assert sweep.run_point("m", str(config), 2)["mse"] == 2
        base.write_text("# a comment\ntrain.total_steps = 5\n")  # comments do not count
        assert sweep.run_point("m", str(config), 2)["mse"] == 2 and len(runs) == 2
        base.write_text("train.total_steps = 6\n")  # the including file is unchanged, its include is not
        assert sweep.run_point("m", str(config), 2)["mse"] == 4
        # A record from before includes were hashed matches on the rest, with a warning.
        point = tmp_path / "m-k2" / sweep.POINT_RECORD
        done = json.loads(point.read_text())
        del done["request"]["includes_sha256"]
        point.write_text(json.dumps(done))
        base.write_text("train.total_steps = 7\n")
        assert sweep.run_point("m", str(config), 2)["mse"] == 4 and len(runs) == 4
    finally:
        sweep.FLAGS.unparse_flags()


def test_a_sweep_on_a_subset_keeps_the_other_points_of_its_output(tmp_path, monkeypatch):
    sweep = load_tool("sweep")
    config = tmp_path / "m.gin"
    config.write_text("K = 0\n")
    earlier = [
        {"method": "m", "k": 1, "mse": 0.1, "bpp": 0.1},
        {"method": "m", "k": 2, "mse": 0.2, "bpp": 0.2},
        {"method": "other", "k": 2, "mse": 0.3, "bpp": 0.2},
    ]
    (tmp_path / "results.json").write_text(json.dumps(earlier))
    monkeypatch.setattr(
        sweep, "run_point", lambda name, config, k: {"method": name, "k": int(k), "mse": 0.5, "bpp": 0.2}
    )
    sweep.FLAGS(
        [
            "sweep.py",
            f"--methods=m:{config}",
            "--ks=2,4",
            f"--workdir_root={tmp_path}",
            f"--output={tmp_path}",
        ]
    )
    try:
        assert sweep.main([]) == 0
    finally:
        sweep.FLAGS.unparse_flags()
    records = json.loads((tmp_path / "results.json").read_text())
    # A damaged records file is named, and left as it is, before anything runs.
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text('[{"method": "m", "k"')
    sweep.FLAGS(["sweep.py", f"--methods=m:{config}", "--ks=2", f"--output={tmp_path / 'bad'}"])
    try:
        with pytest.raises(app.UsageError, match="bad/results.json is not a records file"):
            sweep.main([])
    finally:
        sweep.FLAGS.unparse_flags()
    assert (tmp_path / "bad" / "results.json").read_text() == '[{"method": "m", "k"'
    # (m, 1) and (other, 2) were not run: kept; (m, 2) was run again: replaced, not duplicated; (m, 4) added.
    assert sorted((r["method"], r["k"], r["mse"]) for r in records) == [
        ("m", 1, 0.1),
        ("m", 2, 0.5),
        ("m", 4, 0.5),
        ("other", 2, 0.3),
    ]
