"""tools/evaluate.py's real-bitstream rate: files written and read back for a CAE and a DPLC workdir."""

import json
import os
import subprocess
import sys

import gin
import numpy as np
import pytest

import tfdplc
from tfdplc import train as tr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "K = 2",
    "input_pipeline.batch_size = 16",
    "train.steps_per_epoch = 3",
    "train.total_steps = 3",
    "train.eval_steps = 1",
    "train.num_grid_images = 4",
    "train.verbose = 0",
]


@pytest.fixture(autouse=True)
def _clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _train(workdir, config, bindings, data_dir):
    tr.config.parse_gin([f"{ROOT}/gin/{config}"], TINY + bindings)
    tr.train(str(workdir), data_dir)
    gin.clear_config()


def test_evaluate_measures_the_real_rate_of_two_workdirs(tmp_path, mnist5k_dir):
    tfdplc.nets.generator_G(32, 32, width=4, channels=1).save(str(tmp_path / "generator.keras"))
    _train(tmp_path / "cae", "cae_mnist5k.gin", [], mnist5k_dir)
    _train(
        tmp_path / "dplc",
        "dplc_mnist5k.gin",
        [f"GENERATOR_PATH = '{tmp_path / 'generator.keras'}'", "generator_G.width = 4"],
        mnist5k_dir,
    )
    output = tmp_path / "rd.json"
    result = subprocess.run(
        [
            sys.executable,
            "tools/evaluate.py",
            f"--workdir={tmp_path / 'cae'}",
            f"--workdir={tmp_path / 'dplc'}",
            f"--data_dir={mnist5k_dir}",
            f"--output={output}",
            "--features=none",
            "--pv_codes=4",
            "--pv_decodes=3",
            "--num_decodes=0",
            "--seed=7",
        ],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = {r["method"]: r for r in json.loads(output.read_text())}
    assert sorted(records) == ["cae", "dplc"]
    for name, record in records.items():
        # K = 2 channels at 2x2 with 2 levels: 8 bits estimated; the packed payload is exactly 1 byte.
        assert record["rate_bits"] == 8.0 and record["real_bits"] == 8.0, name
        assert record["real_bits_min"] == record["real_bits_max"] == 8.0
        assert record["real_rate_rel_diff"] == 0.0
        assert record["real_bpp"] == record["bpp"] == 8.0 / 32**2
        # Format version 2: 8 bytes of header and checksum, plus DPLC's seed varint (seeds 7..506: one byte
        # below 128, two above); the CAE stores no seed.
        seed_bytes = np.mean([1 if s < 128 else 2 for s in range(7, 507)]) if name == "dplc" else 0
        assert record["file_bytes"] == pytest.approx(1 + 8 + seed_bytes)
        assert record["overhead_bits"] == pytest.approx(8 * (8 + seed_bytes))
        assert record["file_bpp"] == pytest.approx((1 + 8 + seed_bytes) * 8 / 32**2)
        # One archive of the 500 images: magic+version+tag (5), N = 500 (a 2-byte varint), DPLC's seed 7
        # (1 byte), 500 x 8 bits back to back, the 4-byte check; the three rates side by side.
        archive_bytes = 5 + 2 + (1 if name == "dplc" else 0) + 500 + 4
        assert record["archive_bytes"] == archive_bytes and record["archive_matches_files"]
        assert record["archive_bpp"] == pytest.approx(8 * archive_bytes / 500 / 32**2)
        assert record["payload_bpp"] == record["real_bpp"] < record["archive_bpp"] < record["file_bpp"]
        assert record["codes_bit_exact"] and record["decoded_exact"] and record["decoded_max_abs_error"] == 0
        assert record["inputs_8bit"] and record["codec_images"] == record["num_images"] == 500
        assert record["compress_images_per_s"] > 0 and record["decompress_images_per_s"] > 0
        # Each workdir keeps its own one-record metrics file.
        (own,) = json.loads((tmp_path / name / "metrics.json").read_text())
        assert own["real_bits"] == record["real_bits"]
    assert records["cae"]["decoded_reference"] == records["dplc"]["decoded_reference"] == "codec_decode"
    assert records["cae"]["model_reference"] == "reconstruct"
    assert records["dplc"]["model_reference"] == "decode_codes"
    # Float kernels of eager Keras and the graph may round a boundary pixel differently: one level at most.
    assert records["cae"]["model_max_abs_error"] <= 1 and records["dplc"]["model_max_abs_error"] <= 1
    # stdout shows the first workdir's metrics.json as it is: a one-record list.
    printed, _ = json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("[") :])
    assert printed == json.loads((tmp_path / "cae" / "metrics.json").read_text())
    assert records["cae"]["pv"] == 0.0 and records["dplc"]["pv"] > 0.0
    png = tmp_path / "rd.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_refuses_several_workdirs_without_output(tmp_path):
    result = subprocess.run(
        [sys.executable, "tools/evaluate.py", f"--workdir={tmp_path}", f"--workdir={tmp_path}"],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--output" in result.stderr


def test_rate_distortion_perception_plot_skips_missing_metrics(tmp_path):
    from tfdplc import plots

    records = [
        {"method": "a", "bpp": 0.1, "real_bpp": 0.12, "mse": 0.02},
        {"method": "a", "bpp": 0.0, "real_bpp": 0.0, "mse": 0.05},
    ]
    path = plots.rate_distortion_perception_plot(records, str(tmp_path / "rd.png"))
    assert path and np.fromfile(path, np.uint8)[:4].tobytes() == b"\x89PNG"
    assert plots.rate_distortion_perception_plot(records, str(tmp_path / "none.png"), ["fd"]) is None
    assert not (tmp_path / "none.png").exists()
