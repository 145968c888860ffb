"""tfdplc.cpu: CPU identity from /proc/cpuinfo, the oneDNN choice, the FMA peak and the bf16 warning."""

import os
import subprocess
import sys
import warnings

import pytest

from tfdplc import cpu

# Two processors' worth of /proc/cpuinfo as the Zen 3 machine of 2026-12-07 prints it (flags shortened).
ZEN3_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
cpu MHz\t\t: 2450.000
flags\t\t: fpu sse sse2 avx avx2 fma bmi2 sha_ni

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 85
flags\t\t: avx512f
"""
ZEN4_FLAGS = "fpu avx avx2 fma avx512f avx512dq avx512_vnni avx512_bf16 avx512_vbmi2"


def _cpuinfo(vendor="AuthenticAMD", family=25, model=17, flags=ZEN4_FLAGS, mhz="2600.000"):
    return (
        f"vendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: AMD EPYC\n"
        + (f"cpu MHz\t\t: {mhz}\n" if mhz else "")
        + f"flags\t\t: {flags}\n"
    )


def test_identity_is_read_from_the_first_processor_only():
    identity = cpu.parse_cpuinfo(ZEN3_CPUINFO)
    assert (identity.vendor, identity.family, identity.model) == ("AuthenticAMD", 25, 1)
    assert identity.features == {"avx", "avx2", "fma"}  # sse, bmi2...: not kernel-relevant, dropped
    assert identity.mhz == 2450.0 and identity.model_name == "AMD EPYC"
    assert identity.generation == "AMD Zen 3 (EPYC Milan)" and not identity.has_bf16
    assert identity.key == "AuthenticAMD/25/1/avx+avx2+fma"
    assert "family 25 model 1" in identity.describe() and "avx2, fma" in identity.describe()


def test_two_epycs_of_the_same_name_have_different_identities():
    zen3, zen4 = cpu.parse_cpuinfo(ZEN3_CPUINFO), cpu.parse_cpuinfo(_cpuinfo())
    assert zen3.model_name == zen4.model_name and zen3.key != zen4.key
    assert zen4.generation == "AMD Zen 4 (EPYC Genoa)" and zen4.has_bf16
    assert zen4.features == {"avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"}
    unknown = cpu.parse_cpuinfo(_cpuinfo(family=26, model=2))
    assert unknown.generation == "AMD EPYC family 26 model 2"
    as_dict = zen4.as_dict()
    assert as_dict["cpu_family"] == 25 and as_dict["cpu_model"] == 17 and as_dict["cpu_key"] == zen4.key


def test_garbled_cpuinfo_leaves_fields_unknown():
    identity = cpu.parse_cpuinfo("cpu family\t: x\nflags\t\t:\n")
    assert (identity.vendor, identity.family, identity.model, identity.mhz) == ("", -1, -1, None)
    assert identity.features == frozenset() and cpu.fma_peak_gflops(identity, cores=2) is None


def test_fma_peak_is_cores_pipes_lanes_and_clock():
    # The Zen 3 of issue 30: 2 cores x 32 FLOP/cycle x 2.45 GHz = 156.8 GFLOP/s.
    peak = cpu.fma_peak_gflops(cpu.parse_cpuinfo(ZEN3_CPUINFO), cores=2)
    assert peak["gflops"] == pytest.approx(2 * 32 * 2.45) and peak["flop_per_cycle_per_core"] == 32
    # AMD executes AVX-512 on 256-bit pipes: the same 32 FLOP/cycle; an Intel AVX-512 core has 64.
    assert cpu.fma_peak_gflops(cpu.parse_cpuinfo(_cpuinfo()), cores=1)["flop_per_cycle_per_core"] == 32
    xeon = cpu.parse_cpuinfo(_cpuinfo("GenuineIntel", 6, 85, "avx avx2 fma avx512f", "2200.0"))
    assert cpu.fma_peak_gflops(xeon, cores=2)["gflops"] == pytest.approx(2 * 64 * 2.2)
    assert cpu.fma_peak_gflops(cpu.parse_cpuinfo(_cpuinfo(mhz=None)), cores=2) is None


def _prefer_onednn_in_fresh_process(env_value, cpuinfo):
    """Runs prefer_onednn for `cpuinfo` in a process that has not imported TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if env_value is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = env_value
    code = (
        "import os, sys; from tfdplc import cpu\n"
        f"why = cpu.prefer_onednn(cpu.parse_cpuinfo({cpuinfo!r}))\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), '|', why)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    value, why = out.stdout.strip().split(" | ")
    return value, why


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the choice is made on Linux only")
def test_prefer_onednn_turns_it_on_where_tf_leaves_it_off_and_the_user_wins():
    value, why = _prefer_onednn_in_fresh_process(None, ZEN3_CPUINFO)
    assert value == "1" and "TF 2.14 leaves oneDNN off" in why
    value, why = _prefer_onednn_in_fresh_process(None, _cpuinfo())
    assert value == "1" and "TF's default" in why
    for user in ("0", "1"):
        value, why = _prefer_onednn_in_fresh_process(user, ZEN3_CPUINFO)
        assert value == user and "set by the user" in why
    aarch64 = ZEN3_CPUINFO  # same text, another machine: left to TF
    code = f"from tfdplc import cpu; import dataclasses; print(cpu.prefer_onednn(dataclasses.replace(cpu.parse_cpuinfo({aarch64!r}), machine='aarch64')))"
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "aarch64" in out.stdout


def test_prefer_onednn_is_too_late_once_tensorflow_is_loaded(monkeypatch):
    import tensorflow  # noqa: F401

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    assert "imported before" in cpu.prefer_onednn(cpu.parse_cpuinfo(ZEN3_CPUINFO))
    assert "TF_ENABLE_ONEDNN_OPTS" not in os.environ
    assert cpu.onednn_enabled() in (True, False)


def test_bf16_warning_only_without_bf16_instructions():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cpu.warn_if_bf16_emulated(cpu.parse_cpuinfo(ZEN3_CPUINFO)) is True
        assert cpu.warn_if_bf16_emulated(cpu.parse_cpuinfo(_cpuinfo())) is False
        amx = cpu.parse_cpuinfo(_cpuinfo("GenuineIntel", 6, 143, "avx avx2 fma avx512f amx_bf16 amx_tile"))
        assert cpu.warn_if_bf16_emulated(amx) is False
    assert len(caught) == 1 and "without bfloat16 instructions" in str(caught[0].message)
    assert "family 25 model 1" in str(caught[0].message)


@pytest.mark.parametrize(
    "cap, kernels, tf_loaded, blocked",
    [
        ("AVX2", "1", False, True),  # the emulation of docs/performance.md, oneDNN chosen by the user
        ("avx2", None, False, True),  # unset: prefer_onednn turns oneDNN on before TF loads; case-insensitive
        ("SSE41", "true", False, True),
        ("AVX2", "0", False, False),  # Eigen runs bfloat16 itself
        ("AVX2", None, True, True),  # TF already loaded: its own flag decides
        ("AVX512_CORE", "1", False, False),  # a cap at AVX-512 still builds bfloat16 primitives
        ("", "1", False, False),
    ],
)
def test_bf16_is_blocked_only_by_an_isa_cap_below_avx512_with_onednn_on(
    cap, kernels, tf_loaded, blocked, monkeypatch
):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    if kernels is None:
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    else:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", kernels)
    monkeypatch.setattr(cpu, "onednn_enabled", lambda: True if tf_loaded else None)
    zen4 = cpu.parse_cpuinfo(_cpuinfo())
    reason = cpu.bf16_blocked_by_isa_cap(zen4)
    assert (reason is not None) is blocked
    if blocked:
        assert f"ONEDNN_MAX_CPU_ISA={cap.upper()}" in reason and "family 25 model 17" in reason
    # A CPU without AVX-512 never hands bfloat16 to oneDNN, whatever the cap.
    assert cpu.bf16_blocked_by_isa_cap(cpu.parse_cpuinfo(ZEN3_CPUINFO)) is None


def test_loaded_tensorflow_with_onednn_off_is_not_blocked(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")  # the environment says on, the loaded TF says off
    monkeypatch.setattr(cpu, "onednn_enabled", lambda: False)
    assert cpu.bf16_blocked_by_isa_cap(cpu.parse_cpuinfo(_cpuinfo())) is None


def test_mixed_bfloat16_policy_refuses_a_blocked_cpu_and_keeps_the_policy(monkeypatch):
    import tensorflow as tf

    from tfdplc.train import precision

    monkeypatch.setattr(cpu, "bf16_blocked_by_isa_cap", lambda: "ONEDNN_MAX_CPU_ISA=AVX2 caps oneDNN")
    before = tf.keras.mixed_precision.global_policy().name
    with pytest.raises(RuntimeError, match="'mixed_bfloat16' cannot run here: ONEDNN_MAX_CPU_ISA=AVX2"):
        with precision.policy("mixed_bfloat16"):
            pass
    assert tf.keras.mixed_precision.global_policy().name == before
    with precision.policy("float32"):  # other precisions do not ask
        assert tf.keras.mixed_precision.global_policy().name == "float32"
