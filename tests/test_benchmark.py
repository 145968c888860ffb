"""tools/benchmark.py: ratios only against the PyTorch reference measured on the same CPU model."""

import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location(
        "benchmark_tool", os.path.join(ROOT, "tools", "benchmark.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_matches_the_cpu_model_only(benchmark):
    references = benchmark.CASES["dplc_64"][4]
    assert benchmark.reference_for(references, "AMD EPYC") == ("AMD EPYC", 51.1)
    assert benchmark.reference_for(references, "AMD EPYC 9B14") == ("AMD EPYC", 51.1)
    assert benchmark.reference_for(references, "Intel(R) Xeon(R) CPU @ 2.20GHz") == ("Intel Xeon", 61.5)
    assert benchmark.reference_for(references, "Intel(R) Core(TM) i7-8700") is None
    assert benchmark.reference_for(references, "Intel Xeon Processor (Cascadelake)") == ("Intel Xeon", 61.5)
    assert benchmark.reference_for(references, "Apple M2") is None
    assert benchmark.reference_for(None, "AMD EPYC") is None


def test_every_reference_case_has_both_cpus_of_design_md(benchmark):
    # DESIGN.md "Speed targets": Xeon (2026-11-22) and EPYC (2026-11-30) columns.
    expected = {
        "liu_sr": (162.0, 145.0),
        "yan_mnist": (439.0, 364.0),
        "dplc_64": (61.5, 51.1),
        "dplc_64_b256": (47.1, 43.5),
        "wgan_gp_64": (17.4, 15.8),
    }
    with_reference = {name: case[4] for name, case in benchmark.CASES.items() if case[4]}
    assert set(with_reference) == set(expected)
    for name, (xeon, epyc) in expected.items():
        assert with_reference[name] == {"Intel Xeon": xeon, "AMD EPYC": epyc}


def test_cpu_model_is_a_name(benchmark):
    assert isinstance(benchmark.cpu_model(), str) and benchmark.cpu_model()
