#!/usr/bin/env python
"""Runs gin configs over a list of rates, evaluates every point, and plots rate-distortion-perception.

Each method is `NAME:CONFIG.gin`; each rate is a value of the config's gin macro `K` (code channels; the
configs document how K maps to bits). For every (method, K) the sweep trains into
`WORKDIR_ROOT/NAME-kK` (resuming if it already holds checkpoints), runs tools/evaluate.py there, and
collects the records into `OUTPUT/results.json` (default workdirs/sweep/results, untracked; records of
points this call does not run, left by earlier calls, are kept); then it writes the plots `OUTPUT/rate_mse.png`,
`OUTPUT/rate_fd.png`, `OUTPUT/rate_pv.png` (one line per method, as DPLC Figure 3) and, when the
evaluations saved stochastic decodes, `OUTPUT/decodes.png` (as DPLC Figure 1: one test image, several
decodes per rate, per method).

Bindings may use `{k}` and `{root}` (the workdir root), e.g. to point DPLC's lambda(R) scaling at the
CAE run of the same rate:
  --bindings="dplc-wpp:scaled_lambda.metrics = '{root}/cae-k{k}/metrics.json'"

Example (CPU scale):
  python tools/sweep.py --methods=cae:gin/cae_mnist5k.gin --ks=0,1,2,4,8 --output=results/cae

Optional, for experiments such as the perceptual decoder of Yan et al. 2021 (results/perceptual/reproduce.sh):
  --method_ks=NAME:K1,K2   rates of one method instead of --ks (e.g. the DAL baseline at 4 bits only);
  --epoch_curves=mse       stores each run's per-epoch train and validation values of these metrics (from
                           its TensorBoard logs) in its record under "epoch_curves";
  --perceptual=G1,G2       names of the MSE-decoder and perceptual-decoder methods: also writes
                           perceptual_rate_mse.png (MSE of G1, G2, 2 x G1 against bits, Yan Fig. 2),
                           epoch_mse.png (per-epoch test MSE, Fig. 3), reconstructions.png (per rate,
                           originals and every method's reconstructions, Figs. 4-5), rate_kd.png, and
                           compare_kR.png for every rate R where other methods ran too (Fig. 5).
"""

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time

from tfdplc import quiet

# TF must be imported before absl's app.run (see tools/train.py).
tf = quiet.import_tensorflow()
from absl import app, flags  # noqa: E402

from tfdplc.train import config as train_config  # noqa: E402

flags.DEFINE_list("methods", None, "NAME:CONFIG.gin pairs, run in this order.", required=True)
flags.DEFINE_list("ks", ["0", "1", "2", "4", "8"], "Values of the gin macro K (the rate).")
flags.DEFINE_multi_string("bindings", [], "NAME:BINDING, applied to that method's runs ({k}, {root}).")
flags.DEFINE_multi_string("common_bindings", [], "Bindings applied to every run ({k}, {root}).")
flags.DEFINE_string("workdir_root", "workdirs/sweep", "Folder of the per-run workdirs.")
flags.DEFINE_string(
    "output",
    "workdirs/sweep/results",
    "Folder for results.json and the plots (results/<experiment> holds the committed ones: pass it explicitly).",
)
flags.DEFINE_string("data_dir", None, "tfds data folder.")
flags.DEFINE_list("evaluate_args", [], "Extra flags for tools/evaluate.py, e.g. --pv_codes=64.")
flags.DEFINE_boolean("plot_only", False, "Only re-plot OUTPUT/results.json.")
flags.DEFINE_multi_string("method_ks", [], "NAME:K1,K2,...: rates (K values) of that method instead of --ks.")
flags.DEFINE_list("epoch_curves", [], "Metrics whose per-epoch train/validation values go into each record.")
flags.DEFINE_list("perceptual", [], "G1,G2: method names for the perceptual-decoder plots (Yan et al. 2021).")
FLAGS = flags.FLAGS

POINT_RECORD = "sweep_point.json"  # in each finished point's workdir: its request and record

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class StepFailed(RuntimeError):
    """A train or evaluate run of the sweep failed; `status` is its exit code."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _run(args):
    print("[sweep] " + shlex.join(["python", *args]), flush=True)  # copy-pastable, quoted bindings
    start = time.time()
    result = subprocess.run([sys.executable, *args], cwd=ROOT)
    if result.returncode:
        raise StepFailed(
            result.returncode, f"{args[0]} failed with exit code {result.returncode} (its error is above)"
        )
    return time.time() - start


def _expand(text, k):
    return text.replace("{k}", str(k)).replace("{root}", FLAGS.workdir_root)


def _binding_lines(path):
    """A config file's lines without blank and comment-only lines (what the hashes cover)."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip() for line in f if line.strip() and not line.lstrip().startswith("#")]


def _config_sha256(config):
    """The SHA-256 of the config's bindings: its lines without blank and comment-only lines.

    An edited binding makes another request (the point is retrained); an edited comment does not. The files
    it includes are covered by `_includes_sha256`.
    """
    return hashlib.sha256("\n".join(_binding_lines(os.path.join(ROOT, config))).encode("utf-8")).hexdigest()


_INCLUDE = re.compile(r"""^include\s+['"](.+)['"]\s*$""")


def _included_path(include, including):
    """Where tools/train.py finds `include` (tfdplc.train.config.parse_gin's order), or None."""
    for root in [ROOT, *train_config.include_roots(including)]:  # tools run with ROOT as the cwd
        path = os.path.join(root, include)
        if os.path.exists(path):
            return path
    return None


def _includes_sha256(config):
    """The SHA-256 of the binding lines of every file `config` includes, recursively; None without includes.

    A separate request key, so that points of configs without includes keep the hashes they were recorded with.
    """
    parts, seen = [], set()

    def visit(path):
        for line in _binding_lines(path):
            match = _INCLUDE.match(line)
            if not match:
                continue
            included = _included_path(match.group(1), path)
            parts.append(f"include {match.group(1)}")
            if included is None or included in seen:
                parts.append("(not found)" if included is None else "(seen)")
                continue
            seen.add(included)
            lines = _binding_lines(included)
            parts.extend(lines)
            visit(included)

    visit(os.path.join(ROOT, config))
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest() if parts else None


def _same_request(done, request):
    """Whether a recorded point answers `request`; records older than a hash match without it, with a warning."""
    for key, what in (("config_sha256", "config text"), ("includes_sha256", "included configs")):
        if key in request and key not in done:
            print(f"[sweep] warning: this point was recorded before {key}; its {what} are not checked")
            done = dict(done, **{key: request[key]})
    return done == request


def run_point(name, config, k):
    """Trains and evaluates one (method, K); returns its metrics record."""
    workdir = os.path.join(FLAGS.workdir_root, f"{name}-k{k}")
    own = [b.split(":", 1)[1] for b in FLAGS.bindings if b.split(":", 1)[0] == name]
    bindings = [f"K = {k}"] + [_expand(b, k) for b in FLAGS.common_bindings + own]
    data = [f"--data_dir={FLAGS.data_dir}"] if FLAGS.data_dir else []
    # A point finished by an earlier call with the same config (path and bindings in it), bindings and
    # evaluation flags is reused as it is, so a resumed sweep keeps the wall times measured when it ran.
    done_path = os.path.join(ROOT, workdir, POINT_RECORD)
    request = {
        "config": config,
        "config_sha256": _config_sha256(config),
        "bindings": bindings,
        "data": data,
        "evaluate_args": list(FLAGS.evaluate_args),
    }
    includes = _includes_sha256(config)
    if includes:  # configs without includes keep the request they were recorded with
        request["includes_sha256"] = includes
    if os.path.exists(done_path):
        with open(done_path) as f:
            done = json.load(f)
        if _same_request(done.get("request", {}), request):
            print(f"[sweep] {workdir}: finished earlier with the same request, record reused")
            return done["record"]
    train_s = _run(
        ["tools/train.py", f"--gin_config={config}", f"--workdir={workdir}", *data]
        + [f"--gin_bindings={b}" for b in bindings]
    )
    eval_s = _run(["tools/evaluate.py", f"--workdir={workdir}", *data, *FLAGS.evaluate_args])
    with open(os.path.join(ROOT, workdir, "metrics.json")) as f:
        (record,) = json.load(f)
    record.update(method=name, k=int(k), config=config, train_wall_s=train_s, eval_wall_s=eval_s)
    if FLAGS.epoch_curves:
        from tfdplc import plots

        logs = os.path.join(ROOT, workdir, "logs")
        record["epoch_curves"] = {
            f"{split}_{metric}": plots.read_epoch_curve(os.path.join(logs, split), metric)
            for split in ("train", "validation")
            for metric in FLAGS.epoch_curves
        }
    with open(done_path, "w") as f:
        json.dump({"request": request, "record": record}, f, indent=2)
    return record


def _method_ks(names):
    """--method_ks as {name: [k, ...]}, checked against the method names."""
    rates = {}
    for item in FLAGS.method_ks:
        name, _, ks = item.partition(":")
        if not ks or name not in names:
            raise app.UsageError(
                f"--method_ks entries are NAME:K1,K2 with NAME one of {names}, got {item!r}."
            )
        rates[name] = [k.strip() for k in ks.split(",") if k.strip()]
    return rates


def _perceptual_plots(records):
    """The Yan et al. figures, for --perceptual=G1,G2."""
    from tfdplc import plots

    if len(FLAGS.perceptual) != 2:
        raise app.UsageError(f"--perceptual takes two method names G1,G2, got {FLAGS.perceptual}.")
    g1, g2 = FLAGS.perceptual
    out = FLAGS.output
    written = [
        plots.perceptual_rate_plot(records, os.path.join(out, "perceptual_rate_mse.png"), g1, g2),
        plots.epoch_curve_plot(records, os.path.join(out, "epoch_mse.png"), g1, g2),
    ]
    methods = list(dict.fromkeys(r["method"] for r in records))
    written.append(plots.reconstruction_grid(records, os.path.join(out, "reconstructions.png"), methods))
    written += plots.rate_plots(records, out, metrics=("kd",))
    others = sorted({r["rate_bits"] for r in records if r["method"] not in (g1, g2) and "rate_bits" in r})
    for rate in others:
        written.append(plots.comparison_plot(records, os.path.join(out, f"compare_k{rate:g}.png"), rate))
    return [path for path in written if path]


def _earlier_records(results_path, rates):
    """The records of an existing OUTPUT/results.json for points this call does not run.

    So a sweep run again on a subset of its points (other rates or methods, into the same output) keeps
    the rest; a point this call runs replaces its old record.
    """
    if not os.path.exists(results_path):
        return []
    planned = {
        (item.split(":", 1)[0], int(k))
        for item in FLAGS.methods
        for k in rates.get(item.split(":", 1)[0], FLAGS.ks)
    }
    try:
        with open(results_path) as f:
            earlier = json.load(f)
    except json.JSONDecodeError as e:
        raise app.UsageError(
            f"{results_path} is not a records file ({e}): move it away (or pass another --output) and run again."
        ) from e
    kept = [r for r in earlier if (r.get("method"), r.get("k")) not in planned]
    if kept:
        print(f"[sweep] keeps {len(kept)} record(s) of earlier calls in {results_path} (points not run now)")
    return kept


def main(argv):
    del argv
    from tfdplc import plots

    os.makedirs(FLAGS.output, exist_ok=True)
    results_path = os.path.join(FLAGS.output, "results.json")
    if not FLAGS.plot_only:
        rates = _method_ks([item.split(":", 1)[0] for item in FLAGS.methods])
        records = _earlier_records(results_path, rates)
        for item in FLAGS.methods:
            if ":" not in item:
                raise app.UsageError(f"--methods entries are NAME:CONFIG.gin, got {item!r}.")
            name, config = item.split(":", 1)
            for k in rates.get(name, FLAGS.ks):
                try:
                    records.append(run_point(name, config, k))
                except StepFailed as e:
                    print(f"[sweep] error: {e}; the records so far are in {results_path}", file=sys.stderr)
                    return e.status
                with open(results_path, "w") as f:  # after every point: a stopped sweep keeps its data
                    json.dump(records, f, indent=2)
    with open(results_path) as f:
        records = json.load(f)
    for path in plots.rate_plots(records, FLAGS.output):
        print(f"[sweep] wrote {path}")
    grid = plots.decode_grid(records, os.path.join(FLAGS.output, "decodes.png"))
    if grid:
        print(f"[sweep] wrote {grid}")
    if FLAGS.perceptual:
        for path in _perceptual_plots(records):
            print(f"[sweep] wrote {path}")
    return 0


if __name__ == "__main__":
    app.run(main)
