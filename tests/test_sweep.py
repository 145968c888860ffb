"""The rate sweep tool and its plots."""

import json
import os
import pathlib
import shlex
import subprocess
import sys

import numpy as np

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


def test_sweep_trains_evaluates_and_reuses_only_unchanged_points(tmp_path, mnist5k_dir):
    tiny = [
        "train.total_steps = 7",  # no multiple of the 5 steps per epoch
        "train.steps_per_epoch = 5",
        "train.verbose = 0",
        "train.eval_steps = 1",
    ]
    config = tmp_path / "cae.gin"  # a copy, edited below
    config.write_text((pathlib.Path(ROOT) / "gin" / "cae_mnist5k.gin").read_text())

    def sweep():
        return subprocess.run(
            [
                sys.executable,
                "tools/sweep.py",
                f"--methods=cae:{config}",
                "--ks=2",
                f"--workdir_root={tmp_path / 'runs'}",
                f"--output={tmp_path / 'out'}",
                f"--data_dir={mnist5k_dir}",
                "--evaluate_args=--num_decodes=2",
                *[f"--common_bindings={b}" for b in tiny],
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=400,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )

    result = sweep()
    assert result.returncode == 0, result.stderr[-3000:]
    # Echoed commands are shell-quoted: they can be copied into a shell as they are.
    (echoed,) = [line[len("[sweep] ") :] for line in result.stdout.splitlines() if "tools/train.py" in line]
    assert "'--gin_bindings=K = 2'" in echoed
    assert shlex.split(echoed)[1:] == [
        "tools/train.py",
        f"--gin_config={config}",
        f"--workdir={tmp_path / 'runs'}/cae-k2",
        f"--data_dir={mnist5k_dir}",
        "--gin_bindings=K = 2",
        *[f"--gin_bindings={b}" for b in tiny],
    ]
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [(r["method"], r["k"], r["rate_bits"]) for r in records] == [("cae", 2, 8.0)]
    assert 0 < records[0]["mse"] < 1 and records[0]["num_images"] == 500
    assert np.load(records[0]["decodes_file"])["decodes"].shape == (2, 32, 32, 1)
    for name in ("rate_mse.png", "decodes.png"):
        assert (tmp_path / "out" / name).exists()

    # Run again with the same request: the point is reused as recorded (nothing trains or evaluates),
    # so the wall times of the first run survive a resumed sweep.
    again = sweep()
    assert again.returncode == 0, again.stderr[-3000:]
    assert "tools/train.py" not in again.stdout and "tools/evaluate.py" not in again.stdout
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == records

    # The same path with edited text is another request: the point runs again (train.py resumes the
    # finished run, evaluate.py re-measures), so a changed constant can never reuse an old record.
    config.write_text(config.read_text() + "\n# edited\n")
    edited = sweep()
    assert edited.returncode == 0, edited.stderr[-3000:]
    assert "tools/train.py" in edited.stdout and "tools/evaluate.py" in edited.stdout
