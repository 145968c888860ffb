"""tools/smoke.py: the paper-scale smoke run covers every paper-scale config and shrinks only sizes."""

import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the smoke run may bind: steps, batch sizes, widths, evaluation sizes, and the paths / macros that
# chain a stage-2 run to the stage-1 runs (and the reference CAE's rate, the ncr source).
ALLOWED = re.compile(
    r"^(train\.(total_steps|steps_per_epoch|eval_steps|verbose|num_grid_images|keep_checkpoints)"
    r"|input_pipeline\.batch_size|[\w.]*width|WIDTH|K|COMMON_RANDOMNESS|Perceptual(G2|Joint)\.pretrain_steps"
    r"|GENERATOR_PATH|ENCODER_PATH|SOURCE|RESTORATION|CAE_METRICS|CAE_REFERENCE_METRICS) = "
)


@pytest.fixture(scope="module")
def smoke():
    spec = importlib.util.spec_from_file_location("smoke_tool", os.path.join(ROOT, "tools", "smoke.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_paper_scale_config_is_in_the_smoke_run(smoke, tmp_path):
    paper_scale = {
        name for name in os.listdir(os.path.join(ROOT, "gin")) if not name.endswith("_mnist5k.gin")
    }
    paper_scale -= {"shift_sr_mnist5k_vr.gin"}
    planned = {config for config, *_ in smoke.plan(str(tmp_path)).values()}
    assert planned == paper_scale


def test_the_smoke_run_binds_only_sizes_steps_and_chain_paths(smoke, tmp_path):
    runs = smoke.plan(str(tmp_path))
    for name, (_config, bindings, *_rest) in runs.items():
        for binding in smoke.COMMON + bindings:
            assert ALLOWED.match(binding), (name, binding)
            if binding.startswith("K = "):  # only the reference CAE at Table 3's reference rate
                assert name in ("cae_celeba64_k128", "cae_lsun64_k256"), name
            if binding.startswith("COMMON_RANDOMNESS"):  # the decomposition's source
                assert name.endswith("_ncr"), name
    # A stage-2 run reads only files that an earlier stage's run of the smoke writes.
    for name, (_config, bindings, _, _, stage) in runs.items():
        for binding in bindings:
            for path in re.findall(r"'([^']+)'", binding):
                source = os.path.relpath(path, str(tmp_path)).split(os.sep)[0]
                assert source in runs and runs[source][4] < stage, (name, path)
