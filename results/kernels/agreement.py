#!/usr/bin/env python
"""Short training runs of every objective under TensorFlow's oneDNN and Eigen kernels (issue 30, item 4).

For each objective (`OBJECTIVES`), trains a short run of its mnist5k config with each seed under
`TF_ENABLE_ONEDNN_OPTS=1` (oneDNN) and `=0` (Eigen), one fresh process per run: TensorFlow reads the
variable when it loads. Each run records the last validation metrics of its workdir (the whole 500-digit
test split), whether the child's TensorFlow really ran oneDNN (`tfdplc.cpu.onednn_enabled`) and a SHA-256
of its final checkpoint's tensors, so that bit-identical runs (a vacuous comparison) would show.

Objectives that need an earlier stage (DPLC stage 2: a stage-1 G*; perceptual G2: E of G1; the shift
decomposition: an end-to-end run without common randomness) get it from one prerequisite run
(`PREREQUISITES`), trained once under oneDNN with seed 0 and shared by both kernel settings: the comparison
covers the stage trained here, not the prerequisite.

Resumable: `--output` (a JSON list) is rewritten after every finished run, and a run already recorded with
exit status 0 is skipped. A workdir left by an interrupted run is deleted and the run starts again.
`--summarize` prints the table of results/kernels/README.md from `--output` and applies its criterion.

Runs use `nice -n 19` and one intra-op and one inter-op thread (the machine is shared); the wall times
recorded are under whatever load there was (`load_before`, `load_after`) and are not speed figures.

Example:
  python results/kernels/agreement.py --objectives=cae,wae
  python results/kernels/agreement.py --summarize
"""

import argparse
import dataclasses
import datetime
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from typing import List, Optional, Sequence, Tuple

__all__ = [
    "KERNELS",
    "OBJECTIVES",
    "PREREQUISITES",
    "RunSpec",
    "compare",
    "main",
    "summarize",
]

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

#: Kernel setting name -> TF_ENABLE_ONEDNN_OPTS.
KERNELS = {"onednn": "1", "eigen": "0"}

#: The agreement bound, in pooled seed sds (README "Criterion").
BOUND_SDS = 2.0


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """A short run of one gin config.

    Attributes:
      name: key in the results.
      gin: config file, relative to the code root.
      steps: `train.total_steps` (validation runs once, at the end: `train.steps_per_epoch = steps`).
      batch_size: `input_pipeline.batch_size` (images per train step, critic mini-batches included).
      metrics: validation metrics compared (first: MSE where the objective reports one).
      bindings: further gin bindings.
      needs: name of the `PREREQUISITES` run this one loads.
      needs_binding: binding for the prerequisite, formatted with its workdir as `{workdir}`.
    """

    name: str
    gin: str
    steps: int
    batch_size: int
    metrics: Tuple[str, ...]
    bindings: Tuple[str, ...] = ()
    needs: Optional[str] = None
    needs_binding: Optional[str] = None


# The learning-rate boundaries of the configs lie beyond these step counts, so every short run is the
# first `steps` steps of its config's own schedule (constant learning rates). Steps and batches are sized
# for about a minute per run on a 2-core CPU loaded by other trainings (load 6-8) at nice 19 (the
# perceptual G1 runs, 150 steps, took 90-150 s there).
#: Short runs of earlier stages, trained once (oneDNN, seed 0) and loaded by both kernel settings.
PREREQUISITES = {
    "wae_gstar": RunSpec("wae_gstar", "gin/wae_mnist5k.gin", 150, 64, ("mse",)),
    # G2 loads E of the perceptual_g1 objective run below (oneDNN, seed 0): the same run, not a new one.
    "perceptual_g1": RunSpec("perceptual_g1", "gin/perceptual_g1_mnist5k.gin", 150, 64, ("mse",)),
    "shift_ncr_source": RunSpec(
        "shift_ncr_source", "gin/shift_sr_mnist5k.gin", 100, 64, ("mse",), ("COMMON_RANDOMNESS = False",)
    ),
}

#: In the order they run: the cheapest first. Critic objectives take n_critic = 5 mini-batches of b = 16
#: per step (batch 80).
OBJECTIVES = (
    PREREQUISITES["perceptual_g1"],
    RunSpec("cae", "gin/cae_mnist5k.gin", 60, 64, ("mse", "loss")),
    RunSpec("wae", "gin/wae_mnist5k.gin", 60, 64, ("mse", "loss")),
    RunSpec(
        "dplc_stage2",
        "gin/dplc_mnist5k.gin",
        60,
        64,
        ("mse", "loss"),
        needs="wae_gstar",
        needs_binding="GENERATOR_PATH = '{workdir}/generator.keras'",
    ),
    RunSpec(
        "perceptual_g2",
        "gin/perceptual_g2_mnist5k.gin",
        60,
        64,
        ("mse", "wasserstein"),
        # The config's budget is in pairs since 1fb2f4d; these runs pre-train for 20 steps (as at a98a37e).
        ("PerceptualG2.pretrain_pairs = 0", "PerceptualG2.pretrain_steps = 20"),
        needs="perceptual_g1",
        needs_binding="ENCODER_PATH = '{workdir}/encoder.keras'",
    ),
    RunSpec("dal", "gin/dal_mnist5k.gin", 60, 64, ("mse", "loss")),
    RunSpec("shift_ncr", "gin/shift_sr_mnist5k.gin", 40, 64, ("mse", "loss"), ("COMMON_RANDOMNESS = False",)),
    RunSpec(
        "shift_decomposition",
        "gin/shift_decomposition_sr_mnist5k.gin",
        40,
        32,
        ("decomposed_loss", "loss"),
        needs="shift_ncr_source",
        needs_binding="SOURCE = '{workdir}'",
    ),
    RunSpec("wgan_gp", "gin/wgan_gp_mnist5k.gin", 20, 80, ("wasserstein", "generator_loss")),
    RunSpec("gc", "gin/gc_mnist5k.gin", 20, 80, ("mse", "loss")),
    RunSpec("wasserstein_pp", "gin/wpp_mnist5k.gin", 20, 80, ("mse", "loss")),
)


def _done(records: List[dict], spec: RunSpec, kernel: str, seed: int) -> Optional[dict]:
    """The successful record of this run with this spec's steps and batch, or None."""
    for record in records:
        same = record["steps"] == spec.steps and record["batch_size"] == spec.batch_size
        if _key(record) == (spec.name, kernel, seed) and record.get("returncode") == 0 and same:
            return record
    return None


def _bindings(spec: RunSpec, seed: int, prerequisite_workdir: Optional[str]) -> List[str]:
    """The gin bindings of one run."""
    bindings = [
        f"train.total_steps = {spec.steps}",
        f"train.steps_per_epoch = {spec.steps}",
        f"input_pipeline.batch_size = {spec.batch_size}",
        "train.eval_steps = None",  # the whole test split, whatever the batch size
        f"train.seed = {seed}",
        "train.verbose = 2",
        *spec.bindings,
    ]
    if spec.needs:
        bindings.append(spec.needs_binding.format(workdir=prerequisite_workdir))
    return bindings


def _load(path: str) -> List[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _save(path: str, records: List[dict]) -> None:
    """Atomic rewrite: an interrupted write never leaves half a file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(records, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def _key(record: dict) -> Tuple[str, str, int]:
    return record["objective"], record["kernel"], int(record["seed"])


def _run_one(
    spec: RunSpec, kernel: str, seed: int, args: argparse.Namespace, prerequisite_workdir: Optional[str]
) -> dict:
    """Trains one run in a fresh, niced, single-threaded process and returns its record."""
    workdir = os.path.join(args.workdir_root, spec.name, f"{kernel}-seed{seed}")
    if os.path.exists(workdir):  # an interrupted run: start it again rather than resume a mixed one
        shutil.rmtree(workdir)
    os.makedirs(os.path.dirname(workdir), exist_ok=True)
    status = f"{workdir}.status.json"
    bindings = _bindings(spec, seed, prerequisite_workdir)
    env = dict(os.environ)
    env.update(
        TF_ENABLE_ONEDNN_OPTS=KERNELS[kernel],
        TF_NUM_INTRAOP_THREADS="1",
        TF_NUM_INTEROP_THREADS="1",
        PYTHONPATH=args.code_root,
    )
    command = ["nice", "-n", "19", sys.executable, os.path.abspath(__file__), "--child", status]
    command += ["--", os.path.join(args.code_root, "tools", "train.py"), f"--gin_config={spec.gin}"]
    command += [f"--workdir={workdir}", *[f"--gin_bindings={b}" for b in bindings]]
    command_metrics = ",".join(spec.metrics)
    env["KERNELS_AGREEMENT_METRICS"] = command_metrics
    load_before = os.getloadavg()
    start = time.time()
    with open(f"{workdir}.log", "w", encoding="utf-8") as log:
        returncode = subprocess.call(command, cwd=args.code_root, env=env, stdout=log, stderr=log)
    record = {
        "objective": spec.name,
        "kernel": kernel,
        "seed": seed,
        "TF_ENABLE_ONEDNN_OPTS": KERNELS[kernel],
        "gin": spec.gin,
        "steps": spec.steps,
        "batch_size": spec.batch_size,
        "bindings": bindings,
        "returncode": returncode,
        "wall_s_under_load": round(time.time() - start, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "code_commit": args.code_commit,
        "workdir": workdir,
    }
    if os.path.exists(status):
        with open(status, encoding="utf-8") as f:
            record.update(json.load(f))
    if returncode == 0 and record.get("onednn_enabled") is not (kernel == "onednn"):
        raise RuntimeError(f"{spec.name} {kernel} seed {seed}: the child ran {record.get('onednn_enabled')}.")
    return record


def _child(status: str, train_args: Sequence[str]) -> int:
    """Runs tools/train.py in this process, then writes what the run ended with to `status`.

    Records whether this process's TensorFlow runs oneDNN, the workdir's last validation metrics and a
    digest of the final checkpoint's tensors.
    """
    import runpy

    from tfdplc import quiet

    tf = quiet.import_tensorflow()  # before absl's app.run, as tools/train.py needs
    import numpy as np

    from tfdplc import cpu, plots

    identity = cpu.cpu_identity()
    result = {
        "onednn_enabled": cpu.onednn_enabled(),
        "tensorflow": tf.__version__,
        "cpu": identity.describe(),
        "TF_NUM_INTRAOP_THREADS": os.environ.get("TF_NUM_INTRAOP_THREADS"),
        "TF_NUM_INTEROP_THREADS": os.environ.get("TF_NUM_INTEROP_THREADS"),
    }
    sys.argv = list(train_args)
    code = 0
    try:
        runpy.run_path(train_args[0], run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    if code == 0:
        workdir = next(a.split("=", 1)[1] for a in train_args if a.startswith("--workdir="))
        validation = os.path.join(workdir, "logs", "validation")
        result["metrics"] = {
            m: plots.read_epoch_curve(validation, m)[-1]
            for m in os.environ["KERNELS_AGREEMENT_METRICS"].split(",")
        }
        reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))
        digest = hashlib.sha256()
        for name in sorted(reader.get_variable_to_shape_map()):
            if name == "_CHECKPOINTABLE_OBJECT_GRAPH":  # a serialized proto, not a tensor
                continue
            digest.update(name.encode())
            digest.update(np.asarray(reader.get_tensor(name)).tobytes())
        result["weights_sha256"] = digest.hexdigest()
    with open(status, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return code


def _mean_sd(values: Sequence[float]) -> Tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def compare(onednn: Sequence[float], eigen: Sequence[float], bound_sds: float = BOUND_SDS) -> dict:
    """The README's criterion for one metric: do the two settings' means lie within the seed spread?

    Args:
      onednn: one value per seed under oneDNN.
      eigen: one value per seed under Eigen, in the same seed order.
      bound_sds: the bound on |mean difference|, in pooled seed sds.

    Returns:
      Means, sds, pooled sd, the difference in pooled sds, paired differences, seed ranges and the verdict
      ("agree", "differ", or "no spread" where both sds are 0).

    Raises:
      ValueError: if the two lists differ in length or hold fewer than 2 values.
    """
    if len(onednn) != len(eigen) or len(onednn) < 2:
        raise ValueError(f"Need two equal lists of >= 2 values, got {len(onednn)} and {len(eigen)}.")
    m1, s1 = _mean_sd(onednn)
    m2, s2 = _mean_sd(eigen)
    pooled = math.sqrt((s1**2 + s2**2) / 2)
    ratio = abs(m1 - m2) / pooled if pooled > 0 else math.inf
    verdict = "no spread" if pooled == 0 else ("agree" if ratio <= bound_sds else "differ")
    return {
        "onednn_mean": m1,
        "onednn_sd": s1,
        "eigen_mean": m2,
        "eigen_sd": s2,
        "pooled_sd": pooled,
        "diff_in_pooled_sds": ratio,
        "paired_diffs": [a - b for a, b in zip(onednn, eigen)],
        "onednn_range": max(onednn) - min(onednn),
        "eigen_range": max(eigen) - min(eigen),
        "verdict": verdict,
    }


def summarize(records: List[dict], seeds: Sequence[int]) -> Tuple[List[dict], str]:
    """Applies `compare` to every objective and metric with all seeds under both settings.

    Returns:
      (rows for summary.json, a Markdown table).
    """
    rows, lines = (
        [],
        [
            "| objective | steps x batch | metric | oneDNN mean ± sd | Eigen mean ± sd | paired diffs "
            "(oneDNN - Eigen), seeds " + ", ".join(map(str, seeds)) + " | mean diff / pooled sd | bit-identical "
            "(weights / metric) | verdict |",
            "|---|---|---|---|---|---|---|---|---|",
        ],
    )
    for spec in OBJECTIVES:
        runs = {k: [_done(records, spec, k, s) for s in seeds] for k in KERNELS}
        if not all(all(runs[k]) for k in KERNELS):
            n = sum(r is not None for k in KERNELS for r in runs[k])
            lines.append(
                f"| {spec.name} | {spec.steps} x {spec.batch_size} | – | {n} of {2 * len(seeds)} "
                "runs done | | | | | not run |"
            )
            continue
        same_weights = sum(a["weights_sha256"] == b["weights_sha256"] for a, b in zip(*runs.values()))
        for metric in spec.metrics:
            values = {k: [r["metrics"][metric] for r in runs[k]] for k in KERNELS}
            row = compare(values["onednn"], values["eigen"])
            same_metric = sum(a == b for a, b in zip(values["onednn"], values["eigen"]))
            row.update(
                objective=spec.name,
                metric=metric,
                steps=spec.steps,
                batch_size=spec.batch_size,
                seeds=list(seeds),
                onednn=values["onednn"],
                eigen=values["eigen"],
                bit_identical_weights=same_weights,
                bit_identical_metric=same_metric,
            )
            rows.append(row)
            diffs = ", ".join(f"{d:+.3g}" for d in row["paired_diffs"])
            lines.append(
                f"| {spec.name} | {spec.steps} x {spec.batch_size} | {metric} | "
                f"{row['onednn_mean']:.4g} ± {row['onednn_sd']:.2g} | {row['eigen_mean']:.4g} ± "
                f"{row['eigen_sd']:.2g} | {diffs} | {row['diff_in_pooled_sds']:.2f} | "
                f"{same_weights} / {same_metric} of {len(seeds)} | {row['verdict']} |"
            )
    return rows, "\n".join(lines)


def _ensure_prerequisite(name: str, records: List[dict], args: argparse.Namespace) -> str:
    """Trains the prerequisite once (oneDNN, seed 0) unless recorded; returns its workdir."""
    spec = PREREQUISITES[name]
    done = _done(records, spec, "onednn", 0)
    if done:
        return done["workdir"]
    print(f"[agreement] prerequisite {name}", flush=True)
    record = _run_one(spec, "onednn", 0, args, None)
    records[:] = [r for r in records if _key(r) != _key(record)] + [record]
    _save(args.output, records)
    if record["returncode"] != 0:
        raise RuntimeError(
            f"Prerequisite {name} failed (exit {record['returncode']}): {record['workdir']}.log"
        )
    return record["workdir"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the missing runs (or, with --summarize, prints the table); returns the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", default=os.path.join(HERE, "runs.json"), help="JSON list of run records.")
    parser.add_argument("--workdir_root", default=os.path.join(REPO, "workdirs", "kernels"))
    parser.add_argument(
        "--code_root",
        default=REPO,
        help="Where tools/train.py, gin/ and the tfdplc package come from (e.g. a `git archive` of a commit).",
    )
    parser.add_argument("--code_commit", default=None, help="The commit --code_root holds (recorded).")
    parser.add_argument("--objectives", default=",".join(s.name for s in OBJECTIVES))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--kernels", default=",".join(KERNELS))
    parser.add_argument("--summarize", action="store_true", help="Print the table; write summary.json.")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("train_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.train_args)

    seeds = [int(s) for s in args.seeds.split(",")]
    records = _load(args.output)
    if args.summarize:
        rows, table = summarize(records, seeds)
        _save(os.path.join(os.path.dirname(args.output), "summary.json"), rows)
        print(table)
        return 0

    specs = {s.name: s for s in OBJECTIVES}
    names = args.objectives.split(",")
    kernels = args.kernels.split(",")
    unknown = [n for n in names if n not in specs] + [k for k in kernels if k not in KERNELS]
    if unknown:
        parser.error(
            f"unknown objectives or kernels {unknown}; objectives: {list(specs)}, kernels: {list(KERNELS)}"
        )
    args.code_root = os.path.abspath(args.code_root)
    if args.code_commit is None:
        try:
            args.code_commit = subprocess.check_output(
                ["git", "-C", args.code_root, "rev-parse", "HEAD"], text=True
            ).strip()
        except (OSError, subprocess.CalledProcessError):
            args.code_commit = "unknown"
    for name in names:
        spec = specs[name]
        prerequisite = _ensure_prerequisite(spec.needs, records, args) if spec.needs else None
        for seed in seeds:
            for kernel in kernels:  # alternating, so that a partial sweep stays balanced
                key = (spec.name, kernel, seed)
                if _done(records, spec, kernel, seed):
                    continue
                print(f"[agreement] {spec.name} {kernel} seed {seed}", flush=True)
                record = _run_one(spec, kernel, seed, args, prerequisite)
                records = [r for r in records if _key(r) != key] + [record]
                _save(args.output, records)
                print(f"[agreement]   exit {record['returncode']}: {record.get('metrics')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
