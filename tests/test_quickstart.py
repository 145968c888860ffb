"""tools/quickstart.sh: the training it runs is exactly its two gin files, scaled by its overrides.

The script is run with `python` replaced by a bash function (exported functions take precedence over PATH
in the child shell) that records each call's arguments and stops the script at the first call that is not
tools/train.py, so nothing is trained and the test takes seconds.
"""

import os
import re
import subprocess

import gin
import pytest

from tfdplc import train as tr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "quickstart.sh")
# Records "$@" of each call, one argument a line, into $QS_LOG.N; any call but tools/train.py stops the script.
_PROBE = 'python() { printf "%s\\n" "$@" > "$QS_LOG.$((++QS_N))"; [[ "$1" == tools/train.py ]] || exit 42; }'


@pytest.fixture(autouse=True)
def _clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _run(tmp_path, **env):
    """Runs the quickstart with `python` recorded; returns (exit status, stderr, the train.py calls' args)."""
    log = tmp_path / "call"
    environment = {**os.environ, "WORKDIR": str(tmp_path / "qs"), "QS_LOG": str(log), "QS_N": "0", **env}
    for name in ("STAGE1_STEPS", "WPP_STEPS", "DPLC_STEPS", "K", "SEED", "DECODES"):
        if name not in env:
            environment.pop(name, None)
    done = subprocess.run(
        ["bash", "-c", f"{_PROBE}; export -f python; bash {SCRIPT}"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    calls = []
    for n in range(1, 10):
        path = tmp_path / f"call.{n}"
        if path.exists():
            calls.append(path.read_text().splitlines())
    return done.returncode, done.stderr, [c[1:] for c in calls if c[0] == "tools/train.py"]


def _parse(args):
    """Parses a train.py call's --gin_config / --gin_bindings as tools/train.py does; returns the workdir."""
    configs = [os.path.join(ROOT, a.split("=", 1)[1]) for a in args if a.startswith("--gin_config=")]
    bindings = [a.split("=", 1)[1] for a in args if a.startswith("--gin_bindings=")]
    # Includes in the gin files are relative to the repository root.
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        gin.clear_config()
        tr.config.parse_gin(configs, bindings)
    finally:
        os.chdir(cwd)
    (workdir,) = [a.split("=", 1)[1] for a in args if a.startswith("--workdir=")]
    return workdir


def _settings(stage):
    names = ["train.total_steps", "step_decay.boundaries", "train.seed"]
    if stage == 2:
        names += ["encoder_E.k", "mapping_B.k", "mapping_B.seed", "DPLC.seed", "DPLC.generator_path"]
    values = {}
    for name in names:
        value = gin.query_parameter(name)
        # Resolve macros (%STEPS, %SEED, ...): a reference whose scoped selector is "NAME/gin.macro".
        while isinstance(value, gin.config.ConfigurableReference):
            value = gin.query_parameter("%" + value.scoped_selector.split("/")[0])
        values[name] = value
    return values


def _gin_file_alone(path, **macros):
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        gin.clear_config()
        tr.config.parse_gin([os.path.join(ROOT, path)], [f"{k} = {v!r}" for k, v in macros.items()])
    finally:
        os.chdir(cwd)


def test_default_run_is_the_gin_files(tmp_path):
    rc, stderr, (stage1, stage2) = _run(tmp_path)
    assert rc != 0 and "error" not in stderr  # stopped at the (recorded) export call
    assert any(a == "--gin_config=gin/quickstart_wae_mnist5k.gin" for a in stage1)
    assert any(a == "--gin_config=gin/quickstart_dplc_mnist5k.gin" for a in stage2)
    workdir1 = _parse(stage1)
    got1 = _settings(1)
    workdir2 = _parse(stage2)
    got2 = _settings(2)
    assert workdir1 == str(tmp_path / "qs" / "stage1") and workdir2 == str(tmp_path / "qs" / "dplc")
    assert got2["DPLC.generator_path"] == os.path.join(workdir1, "generator.keras")
    # tools/train.py with the gin file alone trains the same run (but for where G* is read from).
    _gin_file_alone("gin/quickstart_wae_mnist5k.gin")
    assert _settings(1) == got1
    _gin_file_alone("gin/quickstart_dplc_mnist5k.gin", GENERATOR_PATH=got2["DPLC.generator_path"])
    assert _settings(2) == got2
    assert got2["encoder_E.k"] == got2["mapping_B.k"] == 2  # 8 bits per digit


def test_default_generator_path_is_where_quickstart_writes_g():
    script = open(SCRIPT).read()
    (workdir,) = re.findall(r'^WORKDIR="\$\{WORKDIR:-([^}]*)\}"$', script, re.M)
    assert 'STAGE1="$WORKDIR/stage1"' in script
    _gin_file_alone("gin/quickstart_dplc_mnist5k.gin")
    assert gin.query_parameter("%GENERATOR_PATH") == f"{workdir}/stage1/generator.keras"


@pytest.mark.parametrize("steps_variable", ["STAGE1_STEPS", "WPP_STEPS"])
def test_step_overrides_move_the_decays_to_the_configs_fractions(tmp_path, steps_variable):
    rc, _, (stage1, stage2) = _run(tmp_path, **{steps_variable: "300"}, DPLC_STEPS="500", K="3", SEED="7")
    assert rc != 0
    _parse(stage1)
    # gin/wae_mnist5k.gin decays at 1600 and 2800 of 3000 steps; gin/dplc_mnist5k.gin at 54% and 93%.
    assert _settings(1) == {"train.total_steps": 300, "step_decay.boundaries": (160, 280), "train.seed": 7}
    _parse(stage2)
    got = _settings(2)
    assert got["train.total_steps"] == 500 and got["step_decay.boundaries"] == (270, 465)
    assert got["encoder_E.k"] == got["mapping_B.k"] == 3
    assert got["train.seed"] == got["mapping_B.seed"] == got["DPLC.seed"] == 7


@pytest.mark.parametrize(
    "env", [{"DPLC_STEPS": "0"}, {"STAGE1_STEPS": "-5"}, {"WPP_STEPS": "many"}, {"K": "two"}, {"SEED": "1.5"}]
)
def test_bad_overrides_stop_before_training(tmp_path, env):
    rc, stderr, calls = _run(tmp_path, **env)
    assert rc == 2 and stderr.startswith("error: ") and calls == []
    assert not (tmp_path / "qs").exists()
