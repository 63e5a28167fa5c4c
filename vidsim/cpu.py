"""What this CPU can run, for the libraries that pick their kernels from it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})  # int8 dot products (the encoder's int8)
AVX512_FLAGS = frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"})  # OpenBLAS' SkylakeX kernels
AVX2_FLAGS = frozenset({"avx2", "fma"})  # its Haswell kernels
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # bfloat16 dot products (`vidsim.quantiser`)


def cpu_flags() -> frozenset[str]:
    """The CPU's instruction-set flags (Linux), empty where unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU multiplies bfloat16 natively (elsewhere PyTorch converts, slower than float32)."""
    return bool(BF16_FLAGS & (cpu_flags() if flags is None else flags))


def openblas_core(flags: frozenset[str]) -> str | None:
    """The OpenBLAS core type whose kernels these flags run, or None to leave OpenBLAS to detect it.

    An OpenBLAS older than the CPU does not know its model and falls back to a generic SSE3 core
    ("Prescott"): the one faiss-cpu 1.15 bundles (0.3.15) does so on a 5th-generation Xeon, where
    FAISS' k-means and adds (matrix products) ran 5-6x slower than with the AVX-512 kernels."""
    if AVX512_FLAGS <= flags:
        return "SKYLAKEX"
    if AVX2_FLAGS <= flags:
        return "HASWELL"
    return None


@contextlib.contextmanager
def openblas_core_env(flags: frozenset[str] | None = None) -> Iterator[str | None]:
    """While a library that bundles OpenBLAS loads: OPENBLAS_CORETYPE set to `openblas_core`
    (OpenBLAS reads it once, when it loads), then unset again so that libraries loaded later
    detect their own. A user's own OPENBLAS_CORETYPE is left alone."""
    core = None if "OPENBLAS_CORETYPE" in os.environ else openblas_core(cpu_flags() if flags is None else flags)
    if core is None:
        yield os.environ.get("OPENBLAS_CORETYPE")
        return
    os.environ["OPENBLAS_CORETYPE"] = core
    try:
        yield core
    finally:
        os.environ.pop("OPENBLAS_CORETYPE", None)
