"""OpenBLAS' kernels chosen from the CPU's flags: the one faiss-cpu bundles takes a CPU newer than it
for a generic SSE3 core, and FAISS' k-means and adds ran several times slower for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from vidsim import cpu

AVX512 = cpu.AVX512_FLAGS | cpu.AVX2_FLAGS | {"sse3"}


@pytest.mark.parametrize(("flags", "core"), [
    (AVX512, "SKYLAKEX"),
    (cpu.AVX2_FLAGS | {"sse3", "avx"}, "HASWELL"),
    ({"avx2", "sse3"}, None),  # no FMA: OpenBLAS' Haswell kernels need it
    (frozenset(), None),  # unknown (not Linux): OpenBLAS detects it itself
])
def test_the_core_type_follows_the_instruction_sets(flags, core):
    assert cpu.openblas_core(frozenset(flags)) == core


def test_the_core_type_is_set_only_while_a_library_loads(monkeypatch):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    with cpu.openblas_core_env(AVX512) as core:
        assert core == os.environ["OPENBLAS_CORETYPE"] == "SKYLAKEX"
    assert "OPENBLAS_CORETYPE" not in os.environ
    with cpu.openblas_core_env(frozenset()) as core:
        assert core is None and "OPENBLAS_CORETYPE" not in os.environ


def test_a_users_own_core_type_is_left_alone(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    with cpu.openblas_core_env(AVX512) as core:
        assert core == os.environ["OPENBLAS_CORETYPE"] == "Haswell"
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell"


def test_faiss_openblas_runs_the_kernels_of_this_cpu():
    """In a fresh process (OpenBLAS reads the core type once, when it loads): FAISS' own OpenBLAS
    reports the core `openblas_core` names, and the variable is gone afterwards."""
    expected = cpu.openblas_core(cpu.cpu_flags())
    if expected is None or "OPENBLAS_CORETYPE" in os.environ:
        pytest.skip("no AVX2/AVX-512 core to name here, or one set by the user")
    code = ("import json, os; from threadpoolctl import threadpool_info; from vidsim import ann; ann.load_faiss();"
            "print(json.dumps([[i.get('filepath', ''), i.get('architecture', '')] for i in threadpool_info()"
            " if i.get('internal_api') == 'openblas'] + [os.environ.get('OPENBLAS_CORETYPE')]))")
    out = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                    text=True).stdout.splitlines()[-1])
    *libs, leftover = out
    faiss_blas = [arch for path, arch in libs if "faiss" in path]
    assert faiss_blas and faiss_blas[0].upper() == expected
    assert leftover is None
