"""What CPU this is, and the TensorFlow kernel choice that is fastest on it.

`lscpu`'s "Model name" reads "AMD EPYC" for CPUs of different generations (Zen 3 with AVX2 only, Zen 4 with
AVX-512 and bfloat16), and TensorFlow's speed differs 2-4x between them. A CPU is therefore identified here
by vendor, family, model and the instruction sets TensorFlow's kernels care about (`CpuIdentity`), and
speed references are only compared between CPUs of the same identity.

oneDNN: TF 2.14 turns its oneDNN kernels on by default only on x86 CPUs with AVX512-VNNI, AVX512-BF16,
AVX-VNNI or AMX; elsewhere (e.g. AVX2-only CPUs) it runs its Eigen kernels, which measured 1.75-2.4x
slower on the benchmark's training steps of an AMD EPYC Zen 3 (docs/performance.md). `prefer_onednn`
turns oneDNN on for every x86-64 Linux CPU unless the user chose (`TF_ENABLE_ONEDNN_OPTS` set): the
binaries, the test suite and `tfdplc.quiet.import_tensorflow` call it before TensorFlow is imported; it has
no effect once TensorFlow is loaded. This module imports nothing heavy (no TensorFlow).
"""

import dataclasses
import functools
import os
import platform
import sys
import warnings
from typing import Dict, FrozenSet, Optional

__all__ = [
    "ISA_FEATURES",
    "ONEDNN_DEFAULT_FEATURES",
    "ONEDNN_ISA_CAPS_WITHOUT_BF16",
    "CpuIdentity",
    "bf16_blocked_by_isa_cap",
    "cpu_identity",
    "fma_peak_gflops",
    "onednn_enabled",
    "prefer_onednn",
    "warn_if_bf16_emulated",
]

#: /proc/cpuinfo flags that change which kernels TensorFlow/oneDNN run (the identity keeps only these).
ISA_FEATURES = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
)

#: Any of these makes TF 2.14 enable oneDNN by default on x86 Linux (tensorflow/core/util/util.cc).
ONEDNN_DEFAULT_FEATURES = frozenset({"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile"})

#: ONEDNN_MAX_CPU_ISA values below AVX-512, where oneDNN cannot build the bfloat16 primitives TF asks for.
ONEDNN_ISA_CAPS_WITHOUT_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI"})

#: Known (vendor, family, model) -> generation, for readable output. Unknown CPUs keep their numbers.
_GENERATIONS = {
    ("AuthenticAMD", 25, 1): "AMD Zen 3 (EPYC Milan)",
    ("AuthenticAMD", 25, 17): "AMD Zen 4 (EPYC Genoa)",
}


@dataclasses.dataclass(frozen=True)
class CpuIdentity:
    """A CPU as far as TensorFlow's speed is concerned.

    Attributes:
      vendor: "AuthenticAMD", "GenuineIntel", ... ("" where unknown, e.g. not Linux).
      family: CPU family number (-1 where unknown).
      model: CPU model number (-1 where unknown).
      model_name: the marketing name ("AMD EPYC"), for display only: it does not identify a generation.
      features: the `ISA_FEATURES` flags this CPU has.
      mhz: the clock /proc/cpuinfo reports (the nominal or current one; None where unknown).
      machine: `platform.machine()` ("x86_64", "aarch64", ...).
    """

    vendor: str
    family: int
    model: int
    model_name: str
    features: FrozenSet[str]
    mhz: Optional[float] = None
    machine: str = ""

    @property
    def key(self) -> str:
        """Compact identity used to match speed references: "vendor/family/model/features"."""
        return f"{self.vendor}/{self.family}/{self.model}/{'+'.join(sorted(self.features))}"

    @property
    def generation(self) -> str:
        """A readable name ("AMD Zen 4 (EPYC Genoa)"), or "<model name> family F model M" if unknown."""
        known = _GENERATIONS.get((self.vendor, self.family, self.model))
        return known or f"{self.model_name or 'unknown CPU'} family {self.family} model {self.model}"

    @property
    def has_bf16(self) -> bool:
        """Whether the CPU has bfloat16 arithmetic instructions (AVX512-BF16 or AMX-BF16)."""
        return bool(self.features & {"avx512_bf16", "amx_bf16"})

    def describe(self) -> str:
        """One line: generation, vendor/family/model and the ISA features that matter."""
        features = ", ".join(f for f in ISA_FEATURES if f in self.features) or "none of the listed"
        return (
            f"{self.generation} [{self.vendor or '?'} family {self.family} model {self.model}; "
            f"ISA: {features}]"
        )

    def as_dict(self) -> Dict[str, object]:
        """JSON-ready fields, for results files."""
        return {
            "cpu_vendor": self.vendor,
            "cpu_family": self.family,
            "cpu_model": self.model,
            "cpu_model_name": self.model_name,
            "cpu_generation": self.generation,
            "cpu_features": sorted(self.features),
            "cpu_key": self.key,
        }


def parse_cpuinfo(text: str, machine: str = "x86_64") -> CpuIdentity:
    """The identity of the first processor described in /proc/cpuinfo's `text`.

    Args:
      text: contents of /proc/cpuinfo.
      machine: `platform.machine()` of that system.

    Returns:
      A `CpuIdentity` (fields missing from `text` are left unknown).
    """
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor's block is enough: they are alike
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name.strip().lower(), value.strip())

    def number(name: str) -> int:
        try:
            return int(fields.get(name, "-1"))
        except ValueError:
            return -1

    try:
        mhz = float(fields["cpu mhz"])
    except (KeyError, ValueError):
        mhz = None
    flags = set(fields.get("flags", "").split())
    return CpuIdentity(
        vendor=fields.get("vendor_id", ""),
        family=number("cpu family"),
        model=number("model"),
        model_name=fields.get("model name", ""),
        features=frozenset(f for f in ISA_FEATURES if f in flags),
        mhz=mhz,
        machine=machine,
    )


@functools.lru_cache(maxsize=1)
def cpu_identity() -> CpuIdentity:
    """This machine's `CpuIdentity` (from /proc/cpuinfo on Linux; mostly unknown fields elsewhere)."""
    machine = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return parse_cpuinfo(f.read(), machine)
    except OSError:
        return CpuIdentity("", -1, -1, platform.processor(), frozenset(), None, machine)


def onednn_enabled() -> Optional[bool]:
    """Whether the loaded TensorFlow runs its oneDNN kernels (None if TensorFlow is not imported yet)."""
    if "tensorflow" not in sys.modules:
        return None
    from tensorflow.python.util import _pywrap_util_port  # the flag TF itself consults

    return bool(_pywrap_util_port.IsMklEnabled())


def prefer_onednn(identity: Optional[CpuIdentity] = None) -> str:
    """Sets TF_ENABLE_ONEDNN_OPTS=1 on x86-64 Linux unless the user set it; call before importing TF.

    Args:
      identity: the CPU (default: `cpu_identity()`).

    Returns:
      Why the setting is what it is (for benchmark and log output).
    """
    identity = identity or cpu_identity()
    user = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if user is not None:
        return f"TF_ENABLE_ONEDNN_OPTS={user} (set by the user)"
    if "tensorflow" in sys.modules:
        return "TensorFlow was imported before tfdplc could choose: TF's own default"
    if identity.machine not in ("x86_64", "AMD64") or not sys.platform.startswith("linux"):
        return f"TF's own default ({identity.machine or 'unknown machine'}: not measured here)"
    if identity.features & ONEDNN_DEFAULT_FEATURES:
        why = "on by TF's default on this CPU"
    else:
        why = "set by tfdplc: TF 2.14 leaves oneDNN off on this CPU, and its Eigen kernels were slower"
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
    return f"TF_ENABLE_ONEDNN_OPTS=1 ({why})"


def fma_peak_gflops(identity: Optional[CpuIdentity] = None, cores: Optional[int] = None) -> Optional[dict]:
    """The CPU's float32 FMA peak: cores x FMA pipes x float32 lanes x 2 FLOP x clock.

    Two FMA pipes per core is what the x86 server cores measured here have (AMD Zen 3 and Zen 4: two
    256-bit FMA pipes, AVX-512 executed as two halves; Intel Xeon since Skylake-SP: two 512-bit FMA units
    on most SKUs, one on some). The clock is /proc/cpuinfo's, which on a virtual machine is usually the
    nominal one; turbo clocks make the true peak higher.

    Args:
      identity: the CPU (default: `cpu_identity()`).
      cores: cores used (default: `os.sched_getaffinity` or `os.cpu_count`).

    Returns:
      {"gflops", "cores", "flop_per_cycle_per_core", "ghz", "how"} or None if the clock or ISA is unknown.
    """
    identity = identity or cpu_identity()
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if not identity.mhz or "fma" not in identity.features:
        return None
    lanes = 16 if identity.vendor == "GenuineIntel" and "avx512f" in identity.features else 8
    flop_per_cycle = 2 * lanes * 2  # 2 pipes x lanes x (multiply + add)
    ghz = identity.mhz / 1000.0
    return {
        "gflops": cores * flop_per_cycle * ghz,
        "cores": cores,
        "flop_per_cycle_per_core": flop_per_cycle,
        "ghz": ghz,
        "how": f"{cores} cores x 2 FMA pipes x {lanes} float32 lanes x 2 FLOP x {ghz:.2f} GHz (/proc/cpuinfo)",
    }


@functools.lru_cache(maxsize=1)
def warn_if_bf16_emulated(identity: Optional[CpuIdentity] = None) -> bool:
    """Warns (once per process) when bfloat16 math would be emulated on this CPU; returns whether it is.

    Args:
      identity: the CPU (default: `cpu_identity()`).
    """
    identity = identity or cpu_identity()
    if identity.machine not in ("x86_64", "AMD64") or identity.has_bf16:
        return False
    warnings.warn(
        f"train.precision = 'mixed_bfloat16' on a CPU without bfloat16 instructions ({identity.describe()}): "
        "TensorFlow emulates bfloat16 there, which is slower than float32 (README, 'Performance'); "
        "use 'float32' on this CPU.",
        RuntimeWarning,
        stacklevel=2,
    )
    return True


def _onednn_will_run(identity: CpuIdentity) -> bool:
    """Whether TensorFlow runs (or, once imported through tfdplc, will run) its oneDNN kernels."""
    loaded = onednn_enabled()
    if loaded is not None:
        return loaded
    user = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if user is not None:
        return user.strip().lower() in ("1", "true")
    # Unset: `prefer_onednn` turns it on for x86-64 Linux before tfdplc imports TensorFlow.
    return identity.machine in ("x86_64", "AMD64") and sys.platform.startswith("linux")


def bf16_blocked_by_isa_cap(identity: Optional[CpuIdentity] = None) -> Optional[str]:
    """Why bfloat16 math cannot run here, or None: oneDNN capped below AVX-512 on a CPU that has it.

    TF 2.14 hands bfloat16 ops to oneDNN whenever the CPU reports AVX512F (`IsBF16SupportedByOneDNNOnThisCPU`
    in tensorflow/core/graph/mkl_graph_util.h reads CPUID, not oneDNN's setting). With `ONEDNN_MAX_CPU_ISA`
    capped at AVX2 or lower -- the way docs/performance.md emulates an AVX2-only CPU -- oneDNN then cannot
    build those primitives: TF fails with "could not create a primitive descriptor" or crashes (measured on
    an AMD Zen 4). A real AVX2-only CPU never takes that path (TF keeps its Eigen bfloat16 kernels there).

    Args:
      identity: the CPU (default: `cpu_identity()`).

    Returns:
      A sentence naming the cause and the two ways out, or None where bfloat16 can run.
    """
    identity = identity or cpu_identity()
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if "avx512f" not in identity.features or cap not in ONEDNN_ISA_CAPS_WITHOUT_BF16:
        return None
    if not _onednn_will_run(identity):
        return None
    return (
        f"ONEDNN_MAX_CPU_ISA={cap} caps oneDNN below AVX-512 on a CPU with AVX-512 ({identity.describe()}): "
        "TensorFlow 2.14 still routes bfloat16 ops to oneDNN there, which cannot build them at that cap. "
        "Unset ONEDNN_MAX_CPU_ISA, or set TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's Eigen bfloat16 kernels, the "
        "path a CPU without AVX-512 takes)."
    )
