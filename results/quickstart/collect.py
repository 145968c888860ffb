"""Collects the quickstart runs' metrics into results/quickstart/results.json (one record per run).

Each run is NAME=DIR[:STAGE1_METRICS]: DIR holds the DPLC evaluation (DIR/metrics.json from
tools/quickstart.sh, or DIR/s2_metrics.json from a stage-2 probe); the optional STAGE1_METRICS is the
tools/evaluate.py record of the run's G*, whose reconstruction and sample FD are added as `g_mse`, `g_fd`,
`g_sample_fd`. The settings of each run (what differs from gin/quickstart_*.gin) are given with --setting.

Example:
  python results/quickstart/collect.py \
      --run=final-seed0=/work/runs/quickstart/final_seed0 --setting="final-seed0=defaults, SEED=0" \
      --output=results/quickstart/results.json
"""

import json
import os
import re

from absl import app, flags

flags.DEFINE_multi_string("run", [], "NAME=DIR[:STAGE1_METRICS] of one run.")
flags.DEFINE_multi_string("setting", [], "NAME=what this run sets (stage-1 / stage-2 settings, seed).")
flags.DEFINE_string("method", "dplc-wae", "The records' method (every quickstart run has a WAE G*).")
flags.DEFINE_string("output", "results/quickstart/results.json", "The JSON list written.")
FLAGS = flags.FLAGS

__all__ = ["collect"]

# Keys kept from tools/evaluate.py's record (DESIGN.md's names) and from quickstart.sh's `files` block.
_KEYS = ("rate_bits", "bpp", "real_bits", "real_rate_rel_diff", "codes_bit_exact", "decoded_exact")
_KEYS += ("mse", "psnr", "fd", "kd", "fd_features", "pv", "sample_fd", "num_images")


def collect(run: str, setting: str, method: str = "dplc-wae") -> dict:
    """Returns one run's record.

    Args:
      run: NAME=DIR[:STAGE1_METRICS].
      setting: a description of the run's settings.
      method: the record's `method` (tools/evaluate.py writes the objective's name, "dplc").

    Returns:
      A results record with `run`, `setting`, `seed` (from the DPLC workdir's config) and the metric keys.

    Raises:
      ValueError: on a run without NAME=DIR.
      FileNotFoundError: if no metrics file is in DIR.
    """
    if "=" not in run:
        raise ValueError(f"--run must be NAME=DIR[:STAGE1_METRICS], got {run!r}")
    name, rest = run.split("=", 1)
    folder, _, stage1 = rest.partition(":")
    # tools/quickstart.sh writes metrics.json beside its dplc workdir; the probes s2_metrics.json beside s2.
    found = [
        (f, w)
        for f, w in (("metrics.json", "dplc"), ("s2_metrics.json", "s2"))
        if os.path.exists(os.path.join(folder, f))
    ]
    if not found:
        raise FileNotFoundError(f"no metrics.json or s2_metrics.json in {folder}")
    path, workdir = os.path.join(folder, found[0][0]), found[0][1]
    with open(path) as f:
        (source,) = json.load(f)
    record = {"run": name, "setting": setting, "method": method}
    record.update({k: source[k] for k in _KEYS if k in source})
    if "files" in source:
        record["files"] = source["files"]
    config = os.path.join(folder, workdir, "config.gin")
    seed = 0  # train.seed's default
    if os.path.exists(config):
        text = open(config).read()
        # The quickstart's config binds train.seed = %SEED; a probe's binds it directly or not at all.
        found = re.search(r"^SEED = (\d+)$", text, re.M) or re.search(r"^train\.seed = (\d+)$", text, re.M)
        if found:
            seed = int(found.group(1))
    record["seed"] = seed
    if stage1:
        with open(stage1) as f:
            (g,) = json.load(f)
        record.update(g_mse=g["mse"], g_fd=g["fd"], g_sample_fd=g.get("sample_fd"))
    return record


def main(argv):
    del argv
    settings = dict(s.split("=", 1) for s in FLAGS.setting)
    records = [collect(run, settings.get(run.split("=", 1)[0], ""), FLAGS.method) for run in FLAGS.run]
    with open(FLAGS.output, "w") as f:
        json.dump(records, f, indent=2)
        f.write("\n")
    print(f"wrote {len(records)} records to {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
