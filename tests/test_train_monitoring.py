"""The trainer's step clock, TensorBoard scalars and image grids; quiet start-up; setup_env.sh; lazy import."""

import os
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.util import event_pb2

import tfdplc
from tfdplc import train as tr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


class _Squares(tf.keras.Model):
    """Logs n^2 at its n-th training step and -1 at every validation step."""

    def __init__(self):
        super().__init__()
        self.n = tf.Variable(0.0, trainable=False)
        self.w = tf.Variable(1.0)
        self.tracker = tf.keras.metrics.Mean("value")

    @property
    def metrics(self):
        return [self.tracker]

    def train_step(self, data):
        self.n.assign_add(1.0)
        self.tracker.update_state(self.n**2)
        return {"value": self.tracker.result()}

    def test_step(self, data):
        self.tracker.update_state(-1.0)
        return {"value": self.tracker.result()}


def _scalars(log_dir):
    """{tag: {step: value}} of every event file in log_dir."""
    found = {}
    for name in sorted(tf.io.gfile.listdir(log_dir)):
        for raw in tf.data.TFRecordDataset(os.path.join(log_dir, name)):
            event = event_pb2.Event.FromString(raw.numpy())
            for value in event.summary.value:
                found.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return found


def _fit(model, start, total, steps_per_epoch, callbacks=(), execution=1, verbose=0):
    model.compile(optimizer="sgd", steps_per_execution=execution)
    clock = tr.StepClock(start, total, steps_per_epoch)
    data = tf.data.Dataset.from_tensors(0.0).repeat()
    model.fit(
        data,
        epochs=-(-(total - start) // steps_per_epoch),
        steps_per_epoch=steps_per_epoch,
        validation_data=tf.data.Dataset.from_tensors(0.0).repeat(2),
        callbacks=[clock, *[make(clock) for make in callbacks]],
        verbose=verbose,
    )
    return clock


def test_scalars_are_window_means_against_the_global_step(tmp_path):
    logs = str(tmp_path)
    _fit(
        _Squares(),
        0,
        16,
        7,
        [lambda clock: tr.Scalars(logs, clock, every_steps=3, rate_bits=16.0, pixels=64)],
    )
    squares = np.arange(1, 17) ** 2.0
    train, validation = _scalars(f"{logs}/train"), _scalars(f"{logs}/validation")
    # Windows of 3 steps, also across the epoch ends at 7 and 14 (where Keras resets the trackers and
    # validation reuses them).
    expected = {s: squares[s - 3 : s].mean() for s in (3, 6, 9, 12, 15)}
    assert train["value"].keys() == expected.keys()
    np.testing.assert_allclose([train["value"][s] for s in expected], list(expected.values()), rtol=1e-6)
    # Epoch means (7, 7 and 2 steps: the last epoch stops at total_steps) and validation, one name each.
    epoch_means = {7: squares[:7].mean(), 14: squares[7:14].mean(), 16: squares[14:].mean()}
    assert train["epoch_value"] == pytest.approx(epoch_means)
    assert validation == {"epoch_value": {7: -1.0, 14: -1.0, 16: -1.0}}
    assert train["rate_bits"] == {7: 16.0, 14: 16.0, 16: 16.0} and train["bpp"][16] == 0.25


def test_step_clock_stops_at_total_steps_with_several_steps_per_execution(capsys):
    model = _Squares()
    # Epochs of 4 steps from step 3: to 7, to 11, then 2 steps in a call of 3.
    clock = _fit(model, 3, 13, 4, [tr.callbacks.StepProgbar], execution=3, verbose=2)
    assert clock.step == 13 and float(model.n.numpy()) == 10.0
    assert int(model._steps_per_execution.numpy()) == 3  # restored after the shortened call
    # The progress bar counts the last epoch's own 2 steps.
    assert [line.split(" - ")[0] for line in capsys.readouterr().out.splitlines() if " - " in line] == [
        "4/4",
        "4/4",
        "2/2",
    ]


def _dplc_grid(tmp_path, objective_gin, extra=()):
    bindings = ["train.num_grid_images = 3", *extra]
    if "dplc" in objective_gin:
        generator = tfdplc.nets.generator_G(32, 32, width=4, channels=1)
        # Larger weights than at initialisation, so that G's images depend visibly on z.
        generator.set_weights([5.0 * w for w in generator.get_weights()])
        generator.save(str(tmp_path / "g.keras"))
        bindings += [f"GENERATOR_PATH = '{tmp_path / 'g.keras'}'", "mapping_B.width = 8"]
    tr.config.parse_gin([f"{ROOT}/gin/{objective_gin}"], bindings)
    model = tr.build_objective()
    images = tf.random.stateless_uniform((3, 32, 32, 1), seed=(1, 2))
    model(images)
    grid = tr.ImageGrid(images, str(tmp_path / "images"), tr.StepClock(0, 1, 1), num_decodes=3)
    grid.set_model(model)
    return grid.grids()


def test_image_grids_follow_what_the_objective_can_do(tmp_path):
    grids = _dplc_grid(tmp_path, "dplc_mnist5k.gin")
    assert sorted(grids) == ["decodes", "originals_vs_reconstructions", "samples"]
    decodes = grids["decodes"]
    assert decodes.shape == (4 * 34, 3 * 34, 1)  # originals and 3 decodes of the same codes
    rows = [decodes[34 * r : 34 * (r + 1)] for r in range(4)]
    # B's noise differs between the rows (each draw has its own seeds; at initialisation B's output
    # depends only weakly on its noise, hence the small threshold; the same seeds give 0).
    assert np.abs(rows[1] - rows[2]).max() > 1e-3 and np.abs(rows[2] - rows[3]).max() > 1e-3
    gin.clear_config()
    assert sorted(_dplc_grid(tmp_path, "cae_mnist5k.gin")) == ["originals_vs_reconstructions"]
    gin.clear_config()
    assert sorted(_dplc_grid(tmp_path, "wgan_gp_mnist5k.gin")) == ["samples"]


def _python(code, env=None):
    env = dict(os.environ, **(env or {}))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)


def test_import_tensorflow_quietly_drops_only_the_known_lines():
    quiet = _python(
        "from tfdplc import quiet; quiet.import_tensorflow(); import sys; print('ok', file=sys.stderr)"
    )
    assert quiet.returncode == 0 and quiet.stderr.strip().endswith("ok"), quiet.stderr
    assert "Unable to register" not in quiet.stderr and "TensorRT" not in quiet.stderr


def test_import_tfdplc_is_lazy_and_submodules_still_work():
    result = _python(
        "import sys, tfdplc\n"
        "assert 'tensorflow' not in sys.modules, 'import tfdplc imported TensorFlow'\n"
        "tfdplc.layers.ScalarQuantizer\n"
        "assert 'tfdplc.layers' in sys.modules and 'tensorflow_datasets' not in sys.modules\n"
        "from tfdplc import nets\n"
        "print(sorted(set(tfdplc.__all__) - set(dir(tfdplc))))\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def _bash(script, cwd=ROOT):
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_setup_env_is_safe_to_source_and_keeps_the_callers_options(tmp_path):
    # Sourced into an interactive-like shell: no errexit left behind, the shell survives a failure.
    result = _bash('source tools/setup_env.sh >/dev/null; false; echo still-alive; echo "opts=$-"')
    assert result.returncode == 0 and "still-alive" in result.stdout, result.stderr
    assert "e" not in result.stdout.split("opts=")[1].strip()
    # Sourced by a script under `set -euo pipefail` (tools/test.sh): the options stay, failures still stop.
    result = _bash("set -euo pipefail; source tools/setup_env.sh >/dev/null; false; echo not-reached")
    assert result.returncode != 0 and "not-reached" not in result.stdout
    # A failing setup (here: no setup.py next to it) returns non-zero without closing the shell...
    os.makedirs(tmp_path / "tools")
    os.makedirs(tmp_path / ".venv" / "bin")
    os.symlink(sys.executable, tmp_path / ".venv" / "bin" / "python")
    with open(f"{ROOT}/tools/setup_env.sh") as src, open(tmp_path / "tools" / "setup_env.sh", "w") as dst:
        dst.write(src.read())
    result = _bash("source tools/setup_env.sh 2>/dev/null; echo status=$?; echo alive", cwd=tmp_path)
    assert "status=1" in result.stdout and "alive" in result.stdout
    # ...and stops a `set -e` script that sources it.
    result = _bash("set -e; source tools/setup_env.sh 2>/dev/null; echo not-reached", cwd=tmp_path)
    assert result.returncode != 0 and "not-reached" not in result.stdout
