"""Search at scale: `python -m vidsim.bench --scale N` (not in CI).

On a synthetic library of N clips shaped like the featurize stage's output (`vidsim.synthetic`):

1. the `train`, `encode` and `evaluate` stages themselves (child processes over the synthetic
   features folder, with the project's params.yaml): wall time and peak memory of each, and the
   held-out metrics `evaluate` writes;
2. loading the index (`Library.load`, unverified: the arrays are memory-mapped);
3. single-query search latency on one thread, p50 and p99 over held-out synthetic queries, for
   every method and modality the index serves (what the app and the CLI call: `query_features`);
4. recall@10 of each space's FAISS search (candidates re-ranked exactly) against an exact scan of
   the same space, on the first `--recall-queries` queries.

`--search-only` repeats steps 2-4 on the index a previous run left (`--recall-queries 0` skips
step 4). Figures print as Markdown tables; the data lives in data/bench/scale-N (delete it
afterwards: a million clips of 4 s take ~28 GB of disk).
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from vidsim import synthetic
from vidsim.config import load_params
from vidsim.io import read_json

log = logging.getLogger(__name__)


def _du(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e9


def prepare(n: int, seconds: int, queries: int, root: Path) -> tuple[synthetic.World, Path, Path]:
    """The synthetic library and query folders (re-used when a previous run made the same)."""
    world = synthetic.World(songs=max(12, n // 100), looks=50, seconds=seconds)
    lib, qdir = root / "library", root / "queries"
    for folder, count, seed, prefix in ((lib, n, 1, "clip"), (qdir, queries, 2, "query")):
        meta = folder / "features.json"
        same = meta.exists() and read_json(meta).get("synthetic") == {**world.__dict__} and \
            len(np.load(folder / "arrays/audio.npy", mmap_mode="r")) == count
        if not same:
            shutil.rmtree(folder, ignore_errors=True)
            t = time.perf_counter()
            synthetic.generate(world, count, seed, folder, prefix)
            print(f"generated {count:,} synthetic clips ({prefix}) of {seconds} s in {time.perf_counter() - t:.0f} s")
    return world, lib, qdir


def _anon_mb(pid: int) -> float:
    """Anonymous resident memory of a process (its own allocations; not the pages of the
    memory-mapped arrays it reads, which the kernel can drop), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _stage(args: list[str], cwd: Path) -> tuple[float, float, float]:
    """Run one pipeline stage as a child process; (wall s, peak resident MB, peak anonymous MB)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=cwd)
    anon = 0.0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        anon = max(anon, _anon_mb(proc.pid))
        time.sleep(0.2)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{args[0]} failed with exit code {proc.returncode}")
    return time.perf_counter() - t, usage.ru_maxrss / 1024, anon


def stages(lib: Path, queries: Path, root: Path, project: Path) -> list[tuple[str, float, float]]:
    """The train, encode and evaluate stages on the synthetic library, with the project's
    params.yaml: [(stage, wall s, peak resident MB, peak anonymous MB)]."""
    params = load_params(project / "params.yaml")
    params["library"]["dir"] = str(lib)
    work = root / "work"
    shutil.rmtree(work, ignore_errors=True)
    (work / "thumbs").mkdir(parents=True)
    (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    index, models, metrics = root / "index", work / "models", work / "metrics"
    shutil.rmtree(index, ignore_errors=True)
    return [
        ("train", *_stage(["vidsim.stages.train", str(lib), str(models), "--metrics", str(metrics / "train.json"),
                           "--plots", str(metrics / "train_loss.csv")], work)),
        ("encode", *_stage(["vidsim.stages.encode", str(lib), str(models), str(index),
                            "--thumbs", str(work / "thumbs")], work)),
        ("evaluate", *_stage(["vidsim.stages.evaluate", str(index), str(models), str(queries),
                              "--metrics", str(metrics / "heldout"), "--loo", str(metrics / "loo.json"),
                              "--weights", str(metrics / "weights.csv")], work)),
    ]


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def latency(lib, queries, warmup: int = 5) -> list[tuple[str, str, float, float, int]]:
    """(method, modality, p50 ms, p99 ms, queries) of `query_features` with k=10 on one thread."""
    rows = []
    for method in lib.methods:
        for modality in lib.modalities_of(method):
            times = []
            for i in range(len(queries.clips)):
                feats = queries.clip(i)
                t = time.perf_counter()
                lib.query_features(feats, modality, k=10, method=method)
                if i >= warmup:
                    times.append(time.perf_counter() - t)
            rows.append((method, modality, _pct(times, 50), _pct(times, 99), len(times)))
    return rows


def recall(lib, queries, count: int, nprobes: tuple[int, ...] = (32, 64, 128)
           ) -> list[tuple[str, int, float, float, float]]:
    """(space, nprobe, recall@10 of its FAISS search + exact re-ranking against an exact scan,
    p50 ms of that search, seconds per exact scan) for each nprobe (the index's own last)."""
    out = []
    for key, space in lib.index.spaces.items():
        if space.ann is None:
            continue
        reps, exact, scan = [], [], []
        for i in range(min(count, len(queries.clips))):
            rep = space.query(queries.clip(i))
            if rep is None:
                continue
            t = time.perf_counter()
            exact.append(set(np.argsort(space.distances_at(rep, np.arange(len(space.rows))), kind="stable")[:10]))
            scan.append(time.perf_counter() - t)
            reps.append(rep)
        default = space.ann.nprobe
        for nprobe in [p for p in nprobes if p != default] + [default]:
            space.ann.set_nprobe(nprobe)
            found, times = [], []
            for rep, want in zip(reps, exact):
                t = time.perf_counter()
                got = space.nearest(rep, 10)[0]
                times.append(time.perf_counter() - t)
                found.append(len(want & set(got.tolist())) / 10)
            out.append((key, nprobe, float(np.mean(found)), _pct(times, 50), float(np.median(scan))))
    return out


def run(n: int, seconds: int = 4, queries: int = 200, recall_queries: int = 50,
        root: Path | None = None, project: Path = Path("."), search_only: bool = False) -> None:
    """The whole benchmark; with `search_only`, steps 2-4 on the index a previous run left (a
    change to the query path needs no new index)."""
    from threadpoolctl import threadpool_limits

    from vidsim.dataset import load_features
    from vidsim.index import built
    from vidsim.search import Library

    root = (root or Path("data/bench") / f"scale-{n}").resolve()
    project = project.resolve()
    print(f"\n## Search at scale: {n:,} synthetic clips of {seconds} s (vidsim.synthetic), {queries} queries")
    lib_dir, q_dir = root / "library", root / "queries"
    if search_only:
        if not built(root / "index"):
            raise SystemExit(f"no index in {root}: run without --search-only first")
    else:
        prepare(n, seconds, queries, root)
        print("\n| stage | wall s | peak resident MB (with mapped files) | peak anonymous MB |\n|---|---|---|---|")
        for name, wall, peak, anon in stages(lib_dir, q_dir, root, project):
            print(f"| {name} | {wall:.0f} | {peak:,.0f} | {anon:,.0f} |")
    print(f"\nfeatures {_du(lib_dir):.1f} GB, index {_du(root / 'index'):.1f} GB on disk")
    for path in sorted((root / "work/metrics/heldout").glob("*.json")):
        print(f"held-out {path.stem}: {read_json(path)}")
    t = time.perf_counter()
    lib = Library.load(root / "index", root / "work/models")
    load_s = time.perf_counter() - t
    factories = {k: type(s.ann.index).__name__ for k, s in lib.index.spaces.items() if s.ann is not None}
    print(f"index load (memory-mapped): {load_s:.2f} s; FAISS: {len(factories)} spaces, "
          f"{sorted(set(factories.values()))}, nprobe {lib.index.manifest['index']['nprobe']}, "
          f"candidates {lib.index.manifest['index']['candidates']}")
    qs = load_features(q_dir)
    import faiss

    faiss.omp_set_num_threads(1)
    with threadpool_limits(1):
        lat = latency(lib, qs)
        rec = recall(lib, qs, recall_queries) if recall_queries > 0 else []
    print("\n| method | modality | p50 ms | p99 ms | queries |\n|---|---|---|---|---|")
    for method, modality, p50, p99, count in lat:
        print(f"| {method} | {modality} | {p50:.2f} | {p99:.2f} | {count} |")
    print("\n| space | nprobe | recall@10 vs exact scan | nearest() p50 ms | exact scan s (median) |\n"
          "|---|---|---|---|---|")
    for key, nprobe, r, ms, s in rec:
        print(f"| {key} | {nprobe} | {r:.3f} | {ms:.2f} | {s:.2f} |")
    print(f"\npeak memory of this process (index loaded, {len(qs.clips)} queries): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
