"""Trainer, strategies, schedules, NaN guard, resume and the binaries' error handling."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Optional, Sequence

import gin
import numpy as np
import pytest
import tensorflow as tf

import tfdplc
from tfdplc import train as tr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CAE = [
    f"{ROOT}/gin/cae_mnist5k.gin",
]
# Small, fast settings for the CPU tests (bindings apply after the gin file).
TINY_BINDINGS = [
    "input_pipeline.batch_size = 16",
    "train.steps_per_epoch = 5",
    "train.total_steps = 10",
    "train.eval_steps = 1",
    "train.num_grid_images = 4",
    "train.verbose = 0",
]


@pytest.fixture(autouse=True)
def _clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _run_tool(args, env=None, timeout=240):
    env = dict(os.environ, **(env or {}), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _bindings_args(bindings):
    return [f"--gin_bindings={b}" for b in bindings]


def test_step_decay_matches_paper_schedule():
    schedule = tr.step_decay(1e-3, boundaries=(22000, 38000), factor=0.4)
    np.testing.assert_allclose(
        [float(schedule(s)) for s in (0, 22000, 22001, 38001)], [1e-3, 1e-3, 4e-4, 1.6e-4], rtol=1e-6
    )
    assert tr.step_decay(1e-4) == 1e-4
    with pytest.raises(ValueError, match="increasing"):
        tr.step_decay(1e-3, boundaries=(10, 5))


def test_make_strategy_names():
    assert isinstance(tr.make_strategy("default"), tf.distribute.Strategy)
    assert isinstance(tr.make_strategy("mirrored"), tf.distribute.MirroredStrategy)
    with pytest.raises(ValueError, match="Unknown strategy"):
        tr.make_strategy("tpu_pod")


def test_parse_gin_reports_the_bad_binding():
    with pytest.raises(tr.config.GinConfigError, match="no_such_parameter"):
        tr.config.parse_gin(bindings=["train.no_such_parameter = 3"])
    with pytest.raises(FileNotFoundError):
        tr.config.parse_gin(config_files=["/nonexistent.gin"])


def test_a_configs_include_resolves_from_any_working_directory(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "gin").mkdir(parents=True)
    (project / "gin" / "base.gin").write_text("train.total_steps = 7\ntrain.seed = 3\n")
    (project / "gin" / "top.gin").write_text("include 'gin/base.gin'\ntrain.seed = 5\n")
    monkeypatch.chdir(tmp_path)  # not the project: gin alone would look for ./gin/base.gin here
    tr.config.parse_gin([str(project / "gin" / "top.gin")])
    assert tr.config.bound_value("train.total_steps") == 7
    assert tr.config.bound_value("train.seed") == 5  # the including file's later binding wins
    # The working directory keeps priority, as in gin: a ./gin/base.gin here shadows the project's.
    gin.clear_config()
    (tmp_path / "gin").mkdir()
    (tmp_path / "gin" / "base.gin").write_text("train.total_steps = 9\n")
    tr.config.parse_gin([str(project / "gin" / "top.gin")])
    assert tr.config.bound_value("train.total_steps") == 9


def test_a_config_outside_a_gin_folder_includes_the_shipped_configs(tmp_path):
    # A fresh process: gin's search path is global, and another test may already have added the root.
    (tmp_path / "mine.gin").write_text("include 'gin/cae_mnist5k.gin'\ntrain.total_steps = 11\n")
    code = (
        "from tfdplc import train as tr\n"
        f"tr.config.parse_gin([{str(tmp_path / 'mine.gin')!r}])\n"
        "print(tr.config.bound_value('train.total_steps'), tr.config.bound_value('input_pipeline.name'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-2:] == ["11", "mnist5k"]


@pytest.mark.parametrize("path", sorted(p for p in os.listdir(f"{ROOT}/gin") if p.endswith(".gin")))
def test_every_gin_file_parses_and_builds_its_objective(path, tmp_path):
    text = open(f"{ROOT}/gin/{path}").read()
    bindings = []
    if "GENERATOR_PATH" in text:
        # Stage-2 configs load G* from a stage-1 run: stand in with an untrained G* of the config's shape.
        tr.config.parse_gin([f"{ROOT}/gin/{path}"])
        resolution, channels, m = (
            gin.query_parameter(f"%{name}") for name in ("RESOLUTION", "CHANNELS", "M")
        )
        gin.clear_config()
        generator = tfdplc.nets.generator_G(resolution, m, width=4, channels=channels)
        generator.save(str(tmp_path / "generator.keras"))
        bindings.append(f"GENERATOR_PATH = '{tmp_path / 'generator.keras'}'")
    if "warm_start = True" in text:
        # G2 warm-started from G1 reads G1's decoder beside ENCODER_PATH when built: stand in with an
        # untrained G1 of the config's code size and generator width.
        tr.config.parse_gin([f"{ROOT}/gin/{path}"])
        d, width = gin.query_parameter("%K"), gin.query_parameter("g1_shaped_generator.width")
        gin.clear_config()
        tfdplc.nets.yan_encoder(d, width=4).save(str(tmp_path / "encoder.keras"))
        tfdplc.nets.yan_decoder(d, width=width).save(str(tmp_path / "decoder.keras"))
        bindings.append(f"ENCODER_PATH = '{tmp_path / 'encoder.keras'}'")
    if "CAE_METRICS" in text:  # lambda(R) from CAE runs that a test machine does not have
        bindings += ["CAE_METRICS = None", "CAE_REFERENCE_METRICS = None"]
    tr.config.parse_gin([f"{ROOT}/gin/{path}"], bindings)
    model = tr.build_objective()
    assert isinstance(model, tfdplc.objectives.Objective)
    assert model.optimizers()


def test_cae_short_run_loss_goes_down(tmp_path, mnist5k_dir):
    tr.config.parse_gin(TINY_CAE, TINY_BINDINGS + ["train.total_steps = 60", "train.steps_per_epoch = 20"])
    history = tr.train(str(tmp_path), mnist5k_dir)
    assert history["loss"][-1] < 0.8 * history["loss"][0], history["loss"]
    assert history["val_mse"][-1] < history["val_mse"][0]
    for name in ("config.gin", "operative_config.gin"):
        assert (tmp_path / name).read_text().strip()
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-60")
    assert any(name.startswith("events") for _, _, files in os.walk(tmp_path / "logs") for name in files)
    # tools/evaluate.py on a trained CAE (record fields, PSNR, the grid): tests/test_sweep.py runs it.


def test_evaluate_rejects_a_folder_that_is_not_a_workdir(tmp_path):
    result = _run_tool(["tools/evaluate.py", f"--workdir={tmp_path}"])
    assert result.returncode == 2
    assert "is not a tfdplc workdir" in result.stderr


@gin.configurable
class _NaNAfterCAE(tfdplc.objectives.CAE):
    """A CAE whose loss becomes NaN from the `nan_step`-th training step on (to test the guard)."""

    def __init__(self, nan_step=7, **kwargs):
        super().__init__(**kwargs)
        self.nan_step = nan_step
        self.steps_seen = tf.Variable(0, trainable=False)

    def train_step(self, images):
        logs = super().train_step(images)
        self.steps_seen.assign_add(1)
        # 0 * nan is nan, so select rather than multiply.
        self.loss_tracker.update_state(tf.where(self.steps_seen >= self.nan_step, np.nan, 0.0))
        return {m.name: m.result() for m in self.metrics} | {"raw": logs["loss"]}


def test_nan_stops_training_and_keeps_last_good_checkpoint(tmp_path, mnist5k_dir):
    tr.config.parse_gin(TINY_CAE, TINY_BINDINGS + ["train.total_steps = 20"])
    gin.bind_parameter("build_objective.objective", _NaNAfterCAE)
    for binding in [b for b in gin.config_str().splitlines() if b.startswith("CAE.")]:
        gin.parse_config(binding.replace("CAE.", "_NaNAfterCAE.", 1))
    with pytest.raises(tr.NonFiniteLossError, match="step 7.*ckpt-5"):
        tr.train(str(tmp_path), mnist5k_dir)
    latest = tf.train.latest_checkpoint(str(tmp_path / "checkpoints"))
    assert latest.endswith("ckpt-5")
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.all(np.isfinite(value)), name


def test_bad_gin_binding_gives_clear_error(tmp_path):
    result = _run_tool(
        [
            "tools/train.py",
            f"--workdir={tmp_path}",
            "--gin_config=gin/cae_mnist5k.gin",
            "--gin_bindings=CAE.no_such_thing = 1",
        ]
    )
    assert result.returncode == 2
    assert "Bad gin binding 'CAE.no_such_thing = 1'" in result.stderr


@pytest.mark.parametrize(
    "binding, reason, verbosity",
    [
        # A string where gin cannot check the type: refused before anything is built or written.
        ("train.total_steps = '200'", "train.total_steps must be an int, got '200' (str).", 0),
        # A macro whose value fails where a configurable uses it; the traceback only with --verbosity=1.
        ("K = 2.5", "k must be an integer >= 0, got 2.5.", 1),
    ],
)
def test_bad_binding_value_is_one_line_exit_2_and_writes_nothing(tmp_path, binding, reason, verbosity):
    workdir = tmp_path / "w"
    result = _run_tool(
        [
            "tools/train.py",
            f"--workdir={workdir}",
            f"--verbosity={verbosity}",
            "--gin_config=gin/cae_mnist5k.gin",
            f"--gin_bindings={binding}",
        ]
    )
    assert result.returncode == 2, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: Bad gin binding {binding!r}: {reason}"], result.stderr[-3000:]
    assert ("Traceback" in result.stderr) == (verbosity == 1)
    assert not workdir.exists()


def _build_error(bindings, config=TINY_CAE):
    tr.config.parse_gin(config, bindings)
    with pytest.raises(tr.GinConfigError) as info:
        with tr.trainer._config_errors():
            tr.build_objective()
    return tr.checks.explain_error(info.value, bindings)


def test_errors_of_bound_values_name_the_binding_at_fault():
    assert _build_error(["K = 2.5"]) == "Bad gin binding 'K = 2.5': k must be an integer >= 0, got 2.5."
    gin.clear_config()
    binding = 'ScalarQuantizer.gradient = "soft-to-hard"'
    assert _build_error([binding]).startswith(
        f"Bad gin binding {binding!r}: ScalarQuantizer: gradient must be"
    )
    gin.clear_config()
    # The last binding of the failing configurable is the one at fault (as in gin: the last one wins).
    assert _build_error(["K = 3", "encoder_E.width = 8", "K = 2.5"]).startswith("Bad gin binding 'K = 2.5'")
    gin.clear_config()
    # No binding of the user's at fault: the configurable is named instead.
    message = _build_error(["input_pipeline.batch_size = 8"], [f"{ROOT}/gin/dplc_mnist5k.gin"])
    assert message.startswith("Bad gin config (in DPLC): No stage-1 generator at")
    # A parameter bound to a macro names the macro to set.
    assert "(DPLC.generator_path is %GENERATOR_PATH in this config: bind GENERATOR_PATH = ...)" in message


def test_misspelled_macro_is_refused():
    with pytest.raises(
        tr.GinConfigError, match=r"Bad gin binding 'k = 8': the macro k is not used .*did you mean K"
    ):
        tr.config.parse_gin(TINY_CAE, ["k = 8"])


def test_argument_types_are_checked_against_annotations():
    def f(a: int, b: float, c: Optional[int], d: Sequence[str], e: bool):
        pass

    tr.checks.check_argument_types("f", f, dict(a=1, b=2, c=None, d=["x"], e=True))
    for name, value, expected in [
        ("a", True, "an int"),  # a bool is not an int
        ("a", 1.0, "an int"),
        ("b", "2", "a number"),
        ("c", "3", "an int or None"),
        ("d", "xy", "a list of a string"),
        ("e", 1, "True or False"),
    ]:
        with pytest.raises(tr.GinConfigError, match=f"f.{name} must be {expected}, got"):
            tr.checks.check_argument_types("f", f, {name: value})


def _files(folder):
    return {
        os.path.relpath(os.path.join(d, n), folder): open(os.path.join(d, n), "rb").read()
        for d, _, names in os.walk(folder)
        for n in names
    }


@pytest.fixture(scope="module")
def finished_5_steps(tmp_path_factory, mnist5k_dir):
    """A finished 5-step (one-epoch) tiny CAE workdir; the tests that resume it work on copies."""
    workdir = tmp_path_factory.mktemp("finished") / "w"
    gin.clear_config()
    tr.config.parse_gin(TINY_CAE, TINY_BINDINGS + ["train.total_steps = 5"])
    tr.train(str(workdir), mnist5k_dir)
    gin.clear_config()
    return workdir


def _copy(workdir, to):
    # The checkpoint state names its files relative to the folder: the copy resumes as the original.
    shutil.copytree(workdir, to, dirs_exist_ok=True)


def test_failed_resume_leaves_the_workdir_as_it_was(finished_5_steps, tmp_path, mnist5k_dir):
    _copy(finished_5_steps, tmp_path)
    before = _files(tmp_path)
    assert "config.gin" in before and "checkpoints/ckpt-5.index" in before

    gin.clear_config()
    tr.config.parse_gin(TINY_CAE, TINY_BINDINGS + ["K = 2"])
    with pytest.raises(tr.ConfigChangeError, match=r"encoder_E.k: 4 -> 2; mapping_B.k: 4 -> 2") as info:
        tr.train(str(tmp_path), mnist5k_dir)
    assert "--allow_config_change=encoder_E.k,mapping_B.k " in str(info.value), str(info.value)
    assert _files(tmp_path) == before
    # Allowed, the change still cannot restore K = 4 weights into a K = 2 model: refused, nothing written.
    with pytest.raises(tr.CheckpointMismatchError, match="does not fit the objective"):
        tr.train(str(tmp_path), mnist5k_dir, allow_config_change=["encoder_E.k", "mapping_B.k"])
    assert _files(tmp_path) == before

    # A run parameter (the total) may change: the run resumes and extends.
    gin.clear_config()
    tr.config.parse_gin(TINY_CAE, TINY_BINDINGS + ["train.total_steps = 7"])
    tr.train(str(tmp_path), mnist5k_dir)
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-7")


def test_allowing_one_changed_parameter_still_refuses_the_other(finished_5_steps, tmp_path, mnist5k_dir):
    # Two independent parameters change; --allow_config_change names one. The other must still be refused
    # (a resume check that let every change through once any name is allowed would pass the test above).
    _copy(finished_5_steps, tmp_path)
    before = _files(tmp_path)

    gin.clear_config()
    tr.config.parse_gin(TINY_CAE, TINY_BINDINGS + ["encoder_E.width = 8", "generator_G.width = 8"])
    with pytest.raises(tr.ConfigChangeError) as info:
        tr.train(str(tmp_path), mnist5k_dir, allow_config_change=["encoder_E.width"])
    message = str(info.value)
    assert "generator_G.width: 16 -> 8" in message, message
    assert "--allow_config_change=generator_G.width " in message, message
    assert "encoder_E.width" not in message, message
    assert _files(tmp_path) == before


def test_checkpoint_of_the_epoch_format_resumes_at_its_step(tmp_path, mnist5k_dir):
    # Workdirs trained before checkpoints held the global step count finished epochs instead.
    tr.config.parse_gin(TINY_CAE, TINY_BINDINGS + ["train.total_steps = 7"])
    model = tr.build_objective()
    model(tf.zeros((1, 32, 32, 1)))
    os.makedirs(tmp_path / "checkpoints")
    (tmp_path / "config.gin").write_text(gin.config_str())
    epoch = tf.Variable(1, dtype=tf.int64)
    tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, epoch=epoch), str(tmp_path / "checkpoints"), 3
    ).save(1)
    tr.train(str(tmp_path), mnist5k_dir)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "checkpoints")))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 7
    # Epoch 1 of 5 steps was done: 2 steps ran now (Adam's step count says so).
    iterations = [
        n for n in reader.get_variable_to_shape_map() if n.endswith("_iterations/.ATTRIBUTES/VARIABLE_VALUE")
    ]
    assert [int(reader.get_tensor(n)) for n in iterations] == [2]


def test_bad_value_on_a_fresh_run_creates_no_workdir(tmp_path, mnist5k_dir):
    tr.config.parse_gin(TINY_CAE, TINY_BINDINGS + ["K = 2.5"])
    with pytest.raises(tr.GinConfigError):
        tr.train(str(tmp_path / "w"), mnist5k_dir)
    assert not (tmp_path / "w").exists()


def _weights(workdir):
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name.startswith("model/") and "OPTIMIZER_SLOT" not in name
    }


def test_any_total_steps_and_resume_is_exact(tmp_path, mnist5k_dir):
    def run(workdir, total):
        gin.clear_config()
        tr.config.parse_gin(TINY_CAE, TINY_BINDINGS + [f"train.total_steps = {total}"])
        tr.train(str(workdir), mnist5k_dir)

    run(tmp_path / "once", 12)  # 12 is no multiple of the 5 steps per epoch: epochs of 5, 5 and 2 steps
    names = sorted(os.listdir(tmp_path / "once" / "checkpoints"))
    assert [n for n in names if n.endswith(".index")] == ["ckpt-10.index", "ckpt-12.index", "ckpt-5.index"]
    run(tmp_path / "twice", 7)  # stops between two checkpoint periods...
    run(tmp_path / "twice", 12)  # ...and resumes there (epochs of 5 steps from step 7)
    once, twice = _weights(tmp_path / "once"), _weights(tmp_path / "twice")
    assert once.keys() == twice.keys() and len(once) > 10
    for name in once:
        np.testing.assert_allclose(twice[name], once[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_rerunning_a_finished_run_is_quiet(finished_5_steps, tmp_path, mnist5k_dir):
    _copy(finished_5_steps, tmp_path)
    result = _run_tool(
        [
            "tools/train.py",
            f"--workdir={tmp_path}",
            f"--data_dir={mnist5k_dir}",
            "--gin_config=gin/cae_mnist5k.gin",
            *_bindings_args(TINY_BINDINGS + ["train.total_steps = 5"]),
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Training already complete at step 5" in result.stderr
    # Before: 152 "Value in checkpoint could not be found" warnings (the optimizer's unbuilt slots),
    # the CUDA plugin lines, tfds' notes, and "Wrote the objective's artifacts" for a CAE that has none.
    for noise in ("could not be found", "Unable to register", "Wrote the objective", "dataset_info.py"):
        assert noise not in result.stderr, result.stderr[-3000:]
    assert len(result.stderr.splitlines()) <= 4, result.stderr


def test_missing_dataset_gives_clear_error(tmp_path):
    result = _run_tool(
        [
            "tools/train.py",
            f"--workdir={tmp_path / 'w'}",
            f"--data_dir={tmp_path / 'empty'}",
            "--gin_config=gin/cae_mnist5k.gin",
            "--gin_bindings=input_pipeline.name = 'celeb_a'",
        ],
        timeout=120,
    )
    assert result.returncode == 4, result.stderr[-2000:]
    assert "celeb_a" in result.stderr and "tfds build" in result.stderr


def test_mirrored_strategy_on_two_logical_cpus(tmp_path, mnist5k_dir):
    result = _run_tool(
        [
            "tools/train.py",
            f"--workdir={tmp_path}",
            f"--data_dir={mnist5k_dir}",
            "--num_cpu_devices=2",
            "--gin_config=gin/cae_mnist5k.gin",
            # 3 steps: shorter than one epoch (5), as the --gin_bindings help's total_steps example.
            *_bindings_args(TINY_BINDINGS + ["train.strategy = 'mirrored'", "train.total_steps = 3"]),
        ]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Strategy MirroredStrategy with 2 replicas" in result.stderr
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-3")


# A fresh interpreter (logical devices must be set before TensorFlow starts): a tiny WGAN-GP step traced
# by Keras fit (graph mode) under MirroredStrategy on two logical CPUs, with 2 critic updates per step.
MIRRORED_CRITIC_LOOP = """
import tensorflow as tf
from tfdplc import nets
from tfdplc.objectives import WGANGP
from tfdplc.train import config

config.split_cpu(2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = WGANGP(
        generator=nets.generator_G(32, m=4, width=2, channels=1),
        critic=nets.critic_f(32, width=2, channels=1),
        generator_optimizer=tf.keras.optimizers.Adam(1e-3),
        critic_optimizer=tf.keras.optimizers.Adam(1e-3),
        n_critic=2,
    )
    model.compile()
images = tf.data.Dataset.from_tensors(tf.random.stateless_uniform([8, 32, 32, 1], (1, 2))).repeat()
model.fit(images, steps_per_epoch=1, epochs=1, verbose=0)
print("iterations", model.optimizer_generator.iterations.numpy(), model.optimizer_critic.iterations.numpy())
"""


def test_a_critic_loop_trains_in_graph_mode_on_two_replicas():
    # Each critic update aggregates its gradients across replicas (a merge_call), which a tf.while_loop in
    # the traced step cannot hold: repeat_critic_updates unrolls the updates there.
    result = _run_tool(["-c", MIRRORED_CRITIC_LOOP])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-3:] == ["iterations", "1", "2"]  # each critic update applied once


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_mirrored_two_local_workers(tmp_path, mnist5k_dir):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CPP_MIN_LOG_LEVEL="2",
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "tools/train.py",
                    f"--workdir={tmp_path}",
                    f"--data_dir={mnist5k_dir}",
                    "--gin_config=gin/cae_mnist5k.gin",
                    *_bindings_args(TINY_BINDINGS),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    for _, err in outputs:
        # TF names its MultiWorkerMirroredStrategy class CollectiveAllReduceStrategy.
        assert "Strategy CollectiveAllReduceStrategy with 2 replicas" in err
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-10")


def test_resume_after_kill_continues_from_saved_step(tmp_path, mnist5k_dir):
    def args(total_steps):
        return [
            "tools/train.py",
            f"--workdir={tmp_path}",
            f"--data_dir={mnist5k_dir}",
            "--gin_config=gin/cae_mnist5k.gin",
            *_bindings_args(TINY_BINDINGS + [f"train.total_steps = {total_steps}"]),
        ]

    proc = subprocess.Popen(
        [sys.executable, *args(100000)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    deadline = time.time() + 180
    try:
        while not tf.train.latest_checkpoint(str(tmp_path / "checkpoints")):
            assert time.time() < deadline and proc.poll() is None, "no checkpoint appeared"
            time.sleep(0.5)
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = int(tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).rsplit("-", 1)[1])
    final_step = killed_at + 7  # one full epoch of 5 steps and a shorter one of 2
    # The killed run's config said total_steps = 100000: a changed total is allowed on resume.
    result = _run_tool(args(final_step))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in result.stderr and f"(step {killed_at})" in result.stderr
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith(f"ckpt-{final_step}")
