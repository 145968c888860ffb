"""CPU time of one training step of the quickstart's two objectives (results/quickstart/README.md, "Time").

Each objective is built from its gin file as tools/benchmark.py builds its cases (random [0, 1] batches of 64,
XLA off), warmed up for 20 steps, then timed as 5 runs of 40 steps; prints one JSON line with the median
process CPU time and wall time per step, the oneDNN ISA cap (ONEDNN_MAX_CPU_ISA) and the load. Run from the
repository root, once per setting:

  ONEDNN_MAX_CPU_ISA=AVX2 python results/quickstart/steptime.py WORKDIR/stage1/generator.keras
  python results/quickstart/steptime.py WORKDIR/stage1/generator.keras
"""

import importlib.util
import json
import os
import sys
import time

import numpy as np

__all__ = ["time_steps"]

CASES = (
    ("wae_b64", "gin/quickstart_wae_mnist5k.gin", []),
    ("dplc_k2_b64", "gin/quickstart_dplc_mnist5k.gin", ["GENERATOR_PATH = '{generator}'"]),
)


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("benchmark_tool", os.path.join("tools", "benchmark.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_steps(step, iterator, warmup: int = 20, runs: int = 5, steps: int = 40) -> dict:
    """Times a Keras train function.

    Args:
      step: the objective's train function.
      iterator: its batch iterator.
      warmup: untimed steps first.
      runs: timed runs.
      steps: steps per run.

    Returns:
      {"cpu_ms_per_step_median", "cpu_ms_all", "wall_ms_per_step_median", "wall_ms_all"}.
    """
    for _ in range(warmup):
        float(next(iter(step(iterator).values())))
    cpu_ms, wall_ms = [], []
    for _ in range(runs):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        for _ in range(steps):
            logs = step(iterator)
        float(next(iter(logs.values())))  # wait for the last step
        cpu_ms.append(1e3 * (time.process_time() - cpu_start) / steps)
        wall_ms.append(1e3 * (time.perf_counter() - wall_start) / steps)
    return {
        "cpu_ms_per_step_median": float(np.median(cpu_ms)),
        "cpu_ms_all": [round(x, 1) for x in cpu_ms],
        "wall_ms_per_step_median": float(np.median(wall_ms)),
        "wall_ms_all": [round(x, 1) for x in wall_ms],
    }


def main(generator: str) -> None:
    if not os.path.exists(generator):
        raise SystemExit(f"error: no stage-1 generator at {generator!r} (run tools/quickstart.sh first)")
    benchmark = _benchmark_module()
    from absl import flags

    flags.FLAGS(["steptime", "--cases="])
    from tfdplc import cpu

    record = {
        "onednn": cpu.onednn_enabled(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        **cpu.cpu_identity().as_dict(),
        "load_before": os.getloadavg(),
    }
    for name, config, bindings in CASES:
        bindings = [b.format(generator=generator) for b in bindings]
        _, step, iterator = benchmark.build_case(config, bindings, 64, (32, 32, 1), False, "off", "/tmp")
        record[name] = time_steps(step, iterator)
    record["load_after"] = os.getloadavg()
    print(json.dumps(record))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
