"""Shared pytest fixtures."""

import os

import pytest

from tfdplc import cpu

# The suite runs on the kernels the binaries choose (oneDNN where tfdplc measured it faster), chosen before
# any test module imports TensorFlow; the user's TF_ENABLE_ONEDNN_OPTS wins, which is how .ci/run also
# runs the numerically sensitive files on TensorFlow's other kernels (Eigen).
cpu.prefer_onednn()


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "bfloat16: computes in bfloat16 on the CPU; tools/test.sh runs these on TensorFlow's Eigen kernels when "
        "ONEDNN_MAX_CPU_ISA emulates an AVX2-only CPU on an AVX-512 one (tfdplc.cpu.bf16_blocked_by_isa_cap)",
    )


@pytest.fixture(scope="session")
def mnist5k_dir(tmp_path_factory):
    """A tfds data_dir with mnist5k built, shared by every pytest-xdist worker of the session."""
    from tfdplc import data

    root = tmp_path_factory.getbasetemp()
    shared = (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / "tfds_mnist5k"
    data.load_images("mnist5k", "test", data_dir=str(shared))
    return str(shared)
