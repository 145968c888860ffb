#!/usr/bin/env python
"""Paper-scale smoke run: every paper-scale gin config through the binaries on tfds mock data.

Each paper-scale config (CelebA / LSUN bedrooms 64x64, SVHN, MNIST: DPLC stage 1 (WAE, WGAN-GP,
Wasserstein++), stage 2 (DPLC), GC, CAE, the perceptual decoder (G1, G2, the joint loop, DAL), shift compression,
restoration, decomposition and the separate baseline) is trained for a few steps with tools/train.py on
`tfds.testing.mock_data` (random examples of the data set's real features: the same decoding, cropping and
resizing as the real data), then evaluated with tools/evaluate.py, exported with tools/export.py and, where
the objective has a codec, taken through a tools/codec.py compress / decompress round trip (a generator
only: `codec.py sample`). Stage-2 configs read what the stage-1 smoke runs wrote (G*, E, R, the end-to-end
codec, the CAE metrics for lambda(R)), as a real run chain would. Two helper runs of a config with one
binding changed, the reference-rate CAE of lambda(R) (K = 128 / 256) and the decomposition's source without
common randomness, are trained and evaluated but not exported (their export repeats their config's).

Only gin bindings shrink the runs: steps, batch sizes (n_critic * b with b = 2), network widths and the
evaluation's sizes. The data shapes, latent sizes, rates and code paths are the configs' own.

The binaries run in-process, one child process per stage (TensorFlow imports once per stage, not once per
call): `python tools/smoke.py --child=tools/train.py --calls=FILE` loads the tool as a module and calls its
`main` once per argv in FILE, each with freshly parsed flags, a cleared gin config and a cleared Keras
session, inside `tfds.testing.mock_data`.

Example:
  python tools/smoke.py                          # everything, in a temporary folder (removed after)
  python tools/smoke.py --only=lsun --keep --workdir=/tmp/smoke   # runs whose name matches; a stage-2
                                                                  # run needs its stage-1 runs there too

Exit status: 0 every call succeeded, 1 otherwise (each failing call is named with its exit status or
error).
"""

import contextlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Bindings every run gets: a few steps, small evaluation, quiet.
COMMON = [
    "train.total_steps = 2",
    "train.steps_per_epoch = 2",
    "train.eval_steps = 1",
    "train.verbose = 0",
    "train.num_grid_images = 2",
    "train.keep_checkpoints = 1",
]
DCGAN = ["encoder_E.width = 4", "encoder_F.width = 4", "generator_G.width = 4", "critic_f.width = 4"]
MAPPING = ["mapping_B.width = 8"]
YAN = ["WIDTH = 4", "yan_critic.width = 4"]
LIU = ["liu_encoder.width = 4", "liu_critic.width = 4"]


def _batch(n):
    return [f"input_pipeline.batch_size = {n}"]


def plan(smoke_dir):
    """The runs in dependency order: name -> (config, bindings, has codec, can compress, stage).

    Stage 1 runs need nothing; their CAE runs are evaluated before stage 2 reads their metrics.json.
    """

    def at(name, *parts):
        return os.path.join(smoke_dir, name, *parts)

    runs = {}
    for data in ("celeba64", "lsun64"):
        reference_k = 128 if data == "celeba64" else 256  # 0.5 bpp (CelebA) / 1.0 bpp (LSUN), Table 3
        cae_metrics = [
            f"CAE_METRICS = '{at(f'cae_{data}', 'metrics.json')}'",
            f"CAE_REFERENCE_METRICS = '{at(f'cae_{data}_k{reference_k}', 'metrics.json')}'",
        ]
        runs.update(
            {
                f"wae_{data}": (f"wae_{data}.gin", DCGAN + _batch(4), True, False, 1),
                f"wgan_gp_{data}": (f"wgan_gp_{data}.gin", DCGAN + _batch(10), True, False, 1),
                f"wpp_{data}": (f"wpp_{data}.gin", DCGAN + _batch(10), True, False, 1),
                f"cae_{data}": (f"cae_{data}.gin", DCGAN + MAPPING + _batch(4), True, True, 1),
                # The reference CAE of lambda(R): trained and evaluated (its metrics.json is read by stage 2);
                # its export would repeat cae_{data}'s.
                f"cae_{data}_k{reference_k}": (
                    f"cae_{data}.gin",
                    DCGAN + MAPPING + _batch(4) + [f"K = {reference_k}"],
                    False,
                    False,
                    1,
                ),
                f"dplc_{data}": (
                    f"dplc_{data}.gin",
                    DCGAN
                    + MAPPING
                    + _batch(4)
                    + cae_metrics
                    + [f"GENERATOR_PATH = '{at(f'wpp_{data}', 'generator.keras')}'"],
                    True,
                    True,
                    2,
                ),
                f"gc_{data}": (f"gc_{data}.gin", DCGAN + MAPPING + _batch(10) + cae_metrics, True, True, 2),
            }
        )
    runs.update(
        {
            "perceptual_g1_mnist": ("perceptual_g1_mnist.gin", YAN + _batch(4), True, True, 1),
            "dal_mnist": ("dal_mnist.gin", YAN + _batch(4), True, True, 1),
            "perceptual_joint_mnist": (
                "perceptual_joint_mnist.gin",
                YAN + _batch(4) + ["yan_generator.width = 4", "PerceptualJoint.pretrain_steps = 1"],
                True,
                True,
                1,
            ),
            "perceptual_g2_mnist": (
                "perceptual_g2_mnist.gin",
                # One pre-training step of J, then an adversarial step: both code paths run.
                YAN[1:]
                + _batch(4)
                + [
                    "yan_generator.width = 4",
                    "PerceptualG2.pretrain_steps = 1",
                    f"ENCODER_PATH = '{at('perceptual_g1_mnist', 'encoder.keras')}'",
                ],
                True,
                True,
                2,
            ),
        }
    )
    for task, data in (("sr", "mnist"), ("denoise", "svhn")):
        end_to_end = f"shift_{task}_{data}" if task == "sr" else f"shift_denoise_{data}"
        runs.update(
            {
                end_to_end: (f"{end_to_end}.gin", LIU + _batch(4), True, True, 1),
                # The decomposition's source (no common randomness, as the paper's); trained and evaluated,
                # not exported (tests/test_codec_objectives covers the independent-dither codec).
                f"{end_to_end}_ncr": (
                    f"{end_to_end}.gin",
                    LIU + _batch(4) + ["COMMON_RANDOMNESS = False"],
                    False,
                    False,
                    1,
                ),
                f"shift_restoration_{task}_{data}": (
                    f"shift_restoration_{task}_{data}.gin",
                    LIU + _batch(4) + ["restoration_unet.width = 4"],
                    False,
                    False,
                    1,
                ),
                f"shift_decomposition_{task}_{data}": (
                    f"shift_decomposition_{task}_{data}.gin",
                    _batch(4) + [f"SOURCE = '{at(f'{end_to_end}_ncr')}'"],
                    False,
                    False,
                    2,
                ),
                f"shift_baseline_{task}_{data}": (
                    f"shift_baseline_{task}_{data}.gin",
                    LIU
                    + _batch(4)
                    + [f"RESTORATION = '{at(f'shift_restoration_{task}_{data}', 'restoration.keras')}'"],
                    True,
                    True,
                    2,
                ),
            }
        )
    return runs


def _train_call(smoke_dir, name, config, bindings):
    args = [
        f"--gin_config={os.path.join(ROOT, 'gin', config)}",
        f"--workdir={os.path.join(smoke_dir, name)}",
    ]
    return args + [f"--gin_bindings={b}" for b in COMMON + bindings]


def _evaluate_call(smoke_dir, name):
    return [
        f"--workdir={os.path.join(smoke_dir, name)}",
        "--batch_size=8",
        "--grid_images=2",
        "--pv_codes=2",
        "--pv_decodes=2",
        "--num_decodes=2",
    ]


def _export_call(smoke_dir, name):
    return [f"--workdir={os.path.join(smoke_dir, name)}"]


def _child(tool, calls_file):
    """Runs `tool`'s main once per argv of `calls_file` inside tfds mock data; returns the failures."""
    import importlib.util

    # As the tools do: TF before absl's app machinery (see tools/train.py).
    from tfdplc import quiet

    tf = quiet.import_tensorflow()
    import gin
    import tensorflow_datasets as tfds
    from absl import flags, logging

    with open(calls_file) as f:
        calls = json.load(f)
    spec = importlib.util.spec_from_file_location("smoke_tool", os.path.join(ROOT, tool))
    module = importlib.util.module_from_spec(spec)
    sys.argv = [tool]
    spec.loader.exec_module(module)
    failures = []
    tf.get_logger().setLevel("ERROR")
    logging.set_verbosity(logging.ERROR)
    warnings.simplefilter("ignore")
    log_path = os.path.join(os.path.dirname(calls_file), f"{os.path.basename(tool)}.log")
    with (
        open(log_path, "a") as log,
        tfds.testing.mock_data(num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE),
    ):
        for argv in calls:
            flags.FLAGS.unparse_flags()
            gin.clear_config()
            tf.keras.backend.clear_session()
            start = time.time()
            try:
                with contextlib.redirect_stdout(log):  # the tools' reports (metrics JSON, file lists)
                    if argv[0] == "--write_pngs":  # a codec round trip needs inputs of the export's shape
                        status = _write_pngs(*argv[1:])
                    else:
                        status = module.main(flags.FLAGS([tool, *argv])) or 0
            except SystemExit as e:
                status = e.code
            except Exception as e:  # noqa: BLE001 - reported, then the next call runs
                status = f"{type(e).__name__}: {' '.join(str(e).split())[:400]}"
            what = " ".join(a for a in argv if a.startswith("--workdir") or not a.startswith("--"))
            result = "ok" if status == 0 else f"FAILED ({status})"
            print(f"[smoke] {tool} {what}: {result} in {time.time() - start:.1f} s", flush=True)
            if status != 0:
                failures.append((argv, status))
    return failures


def _write_pngs(export_dir, folder, count):
    """Writes `count` random PNGs of the export's image shape (codec.json) into `folder`."""
    import numpy as np
    import tensorflow as tf

    with open(os.path.join(export_dir, "codec.json")) as f:
        shape = json.load(f)["spec"]["image_shape"]
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(int(count)):
        image = rng.integers(0, 256, size=shape, dtype=np.uint8)
        tf.io.write_file(os.path.join(folder, f"image{i}.png"), tf.io.encode_png(image))
    return 0


def _children_cpu_s():
    """User + system CPU seconds of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_child(smoke_dir, tool, calls, label):
    if not calls:
        return True
    calls_file = os.path.join(smoke_dir, f"calls_{label}.json")
    with open(calls_file, "w") as f:
        json.dump(calls, f)
    start, cpu = time.time(), _children_cpu_s()
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), f"--child={tool}", f"--calls={calls_file}"],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    # CPU seconds as well as wall time: the wall time of a loaded machine says little.
    print(
        f"[smoke] stage {label}: {len(calls)} calls in {time.time() - start:.0f} s "
        f"({_children_cpu_s() - cpu:.0f} CPU s)",
        flush=True,
    )
    return result.returncode == 0


def main(argv):
    """Runs the smoke stages (or, with --child, one stage's calls); returns the exit status."""
    options = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    flags_ = {arg[2:] for arg in argv if arg.startswith("--") and "=" not in arg}
    unknown = set(options) - {"child", "calls", "workdir", "only"} | flags_ - {"keep"}
    if unknown:
        print(
            f"usage: python tools/smoke.py [--workdir=DIR] [--only=REGEX] [--keep] (unknown: {sorted(unknown)})"
        )
        return 2
    if "child" in options:
        failures = _child(options["child"], options["calls"])
        return 1 if failures else 0

    smoke_dir = options.get("workdir") or tempfile.mkdtemp(prefix="tfdplc_smoke_")
    os.makedirs(smoke_dir, exist_ok=True)
    runs = plan(smoke_dir)
    if "only" in options:
        runs = {name: run for name, run in runs.items() if re.search(options["only"], name)}
    start, cpu = time.time(), _children_cpu_s()
    ok = True
    stage1 = [n for n, r in runs.items() if r[4] == 1]
    stage2 = [n for n, r in runs.items() if r[4] == 2]
    cae = [n for n in stage1 if n.startswith("cae_")]
    ok &= _run_child(
        smoke_dir, "tools/train.py", [_train_call(smoke_dir, n, *runs[n][:2]) for n in stage1], "train-1"
    )
    ok &= _run_child(
        smoke_dir, "tools/evaluate.py", [_evaluate_call(smoke_dir, n) for n in cae], "evaluate-cae"
    )
    ok &= _run_child(
        smoke_dir, "tools/train.py", [_train_call(smoke_dir, n, *runs[n][:2]) for n in stage2], "train-2"
    )
    others = [n for n in runs if n not in cae]
    ok &= _run_child(
        smoke_dir, "tools/evaluate.py", [_evaluate_call(smoke_dir, n) for n in others], "evaluate"
    )
    exported = [n for n, r in runs.items() if r[2]]
    ok &= _run_child(smoke_dir, "tools/export.py", [_export_call(smoke_dir, n) for n in exported], "export")
    codec_calls = []
    for name in exported:
        export = os.path.join(smoke_dir, name, "export")
        if runs[name][3]:
            pngs, files, decoded = (os.path.join(smoke_dir, name, d) for d in ("png", "dplc", "decoded"))
            codec_calls += [
                ["--write_pngs", export, pngs, "3"],
                ["compress", f"--model={export}", pngs, f"--output={files}"],
                ["decompress", f"--model={export}", files, f"--output={decoded}"],
            ]
        else:
            codec_calls.append(
                [
                    "sample",
                    f"--model={export}",
                    "--num=2",
                    f"--output={os.path.join(smoke_dir, name, 'samples')}",
                ]
            )
    ok &= _run_child(smoke_dir, "tools/codec.py", codec_calls, "codec")
    for name in exported:
        if runs[name][3]:
            count = (
                len(os.listdir(os.path.join(smoke_dir, name, "decoded")))
                if os.path.isdir(os.path.join(smoke_dir, name, "decoded"))
                else 0
            )
            if count != 3:
                print(f"[smoke] {name}: {count} decoded images, expected 3", flush=True)
                ok = False
    print(
        f"[smoke] {len(runs)} runs, {'all ok' if ok else 'FAILURES above'} in {time.time() - start:.0f} s "
        f"({_children_cpu_s() - cpu:.0f} CPU s)",
        flush=True,
    )
    if "keep" not in flags_ and "workdir" not in options:
        shutil.rmtree(smoke_dir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
