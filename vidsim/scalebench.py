"""Search at scale: `python -m vidsim.bench --scale N` (not in CI).

On a synthetic library of N clips shaped like the featurize stage's output (`vidsim.synthetic`):

1. the `train`, `encode` and `evaluate` stages themselves (child processes over the synthetic
   features folder, with the project's params.yaml): wall time and peak memory of each, and the
   held-out metrics `evaluate` writes;
2. loading the index (`Library.load`, unverified: the arrays are memory-mapped);
3. single-query search latency on one thread, p50 and p99 over held-out synthetic queries, for
   every method and modality the index serves (what the app and the CLI call: `query_features`),
   with the pages as the stages left them (cold) and again after reading the whole index into the
   page cache and mapping its arrays (warm: a server's steady state, `Library.warm_up`; at a
   million clips the features and the index do not both fit in 24 GB);
4. recall@10 of each space's FAISS search (candidates re-ranked exactly) against an exact scan of
   the same space, on the first `--recall-queries` queries; and of the audio-visual search
   (`FusedIndex` candidates) against an exact late-fusion scan (`exact_fused`), beside the union of
   both modalities' own candidates;
5. audio-visual search with the FusedIndex against the union of both modalities' candidates, the
   same queries alternating (`fused_vs_union`); excerpt search: the first half of library clips
   (with noise) as queries, with the per-second indexes and without them (`excerpt_search`).

`--search-only` repeats steps 2-5 on the index a previous run left (`--recall-queries 0` skips
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
import pandas as pd
import yaml

from vidsim import synthetic
from vidsim.config import load_params
from vidsim.io import read_json

log = logging.getLogger(__name__)


def _du(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e9


def prepare(n: int, seconds: int, queries: int, root: Path) -> tuple[synthetic.World, Path, Path]:
    """The synthetic library and query folders (re-used when a previous run made the same)."""
    world = synthetic.World(songs=max(12, n // 100), looks=50, seconds=seconds, video_look=0.5)
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
        ("evaluate", *_stage(["vidsim.stages.evaluate", str(index), str(models), str(metrics / "loo.json")], work)),
        ("heldout", *_stage(["vidsim.stages.heldout", "queries", str(queries), str(_labels_csv(queries, work)),
                             str(index), str(models), "--metrics", str(metrics / "queries"),
                             "--sweep", str(metrics / "queries_by_weight.csv")], work)),
    ]


def _labels_csv(queries: Path, work: Path) -> Path:
    """The synthetic queries' labels as a held-out set's labels.csv (file, audio_label, visual_label)."""
    clips = pd.read_csv(queries / "status.csv", keep_default_na=False)
    path = work / "queries_labels.csv"
    clips.rename(columns={"clip": "file"})[["file", "audio_label", "visual_label"]].to_csv(path, index=False)
    return path


def table_load(path: Path, repeats: int = 5) -> tuple[float, float]:
    """The index's clip table read as `Library.load` reads it (`io.read_table`, Arrow's CSV reader)
    and by pandas' own reader (the reference), alternating; prints and returns the medians, s."""
    from vidsim.io import read_table

    ours, naive = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        read_table(path)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        pd.read_csv(path, keep_default_na=False, dtype=str)
        naive.append(time.perf_counter() - t)
    a, b = float(np.median(ours)), float(np.median(naive))
    print(f"clip table ({path.stat().st_size / 1e6:.0f} MB): read_table {a:.2f} s, pandas read_csv {b:.2f} s "
          f"(median of {repeats}, alternating; {b / a:.1f}x)")
    return a, b


def read_files(folder: Path, block: int = 16 << 20) -> tuple[float, float]:
    """Read every file under `folder` once, so its pages sit in the page cache; (GB read, seconds)."""
    t, total = time.perf_counter(), 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb", buffering=0) as fh:
            while chunk := fh.read(block):
                total += len(chunk)
    return total / 1e9, time.perf_counter() - t


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


def exact_fused(lib, feats, method: str = "vidsim") -> np.ndarray:
    """(10,) index rows of the late-fused top 10 by an exact scan: every clip scored in every
    modality with the method's query expansion (hits from the whole space), calibrated, fused with
    the library's default weights; the naive reference the FusedIndex's candidates are judged by."""
    from vidsim import methods  # noqa: PLC0415

    expansion = methods.expansion_for(method, *lib.expansion)
    probs = {}
    for m in ("audio", "visual"):
        space, cal = lib.index.spaces[f"{method}.{m}"], lib.index.calibrations[f"{method}.{m}"]
        rep = space.query(feats)
        every = np.arange(len(space.rows))
        d = space.distances_at(rep, every)
        if expansion is not None:
            top = np.argsort(d, kind="stable")[:expansion.n]
            d1 = space.distances_many([space.member(int(j)) for j in top], every).mean(axis=0)
            d = np.where(d <= methods.EXACT, 0.0, (1 - expansion.mix) * d + expansion.mix * d1)
        probs[m] = np.full(len(lib.index.clips), cal.prior)
        probs[m][space.rows] = cal(d)
    fused = methods.fuse(probs, lib.default_weights)
    return np.argsort(-fused, kind="stable")[:10]


def fused_recall(lib, queries, count: int, method: str = "vidsim") -> tuple[dict[str, tuple[float, float]], float]:
    """The audio-visual search against `exact_fused` over the first `count` queries: for the
    FusedIndex's candidates, the union of both modalities' own candidates (the path before it) and
    the exact scan itself, (recall@10 against the exact top 10, precision@10: the share of hits with
    the query's song and look); and the seconds per exact scan. Precision says whether what differs
    matters: many clips share song and look, and their order hangs on the query expansion's hits."""
    rows = {c: i for i, c in enumerate(lib.column("clip"))}
    labels = lib.index.clips[["audio_label", "visual_label"]].to_numpy()
    fused = lib.index.fused.pop(method)
    found: dict[str, list[tuple[float, float]]] = {"FusedIndex": [], "union": [], "exact scan": []}
    scan = []
    try:
        for i in range(min(count, len(queries.clips))):
            feats = queries.clip(i)
            want = queries.clips.iloc[i][["audio_label", "visual_label"]].to_numpy()
            t = time.perf_counter()
            top = exact_fused(lib, feats, method)
            scan.append(time.perf_counter() - t)
            got = {"exact scan": top}
            for label in ("union", "FusedIndex"):
                lib.index.fused.pop(method, None)
                if label == "FusedIndex":
                    lib.index.fused[method] = fused
                hits = lib.query_features(feats, "audio_visual", k=10, method=method).hits
                got[label] = np.array([rows[h.clip] for h in hits])
            for label, r in got.items():
                found[label].append((len(set(top.tolist()) & set(r.tolist())) / 10,
                                     float((labels[r] == want).all(axis=1).mean())))
    finally:
        lib.index.fused[method] = fused
    return {k: tuple(np.mean(v, axis=0)) for k, v in found.items()}, float(np.median(scan))


def fused_vs_union(lib, queries, method: str = "vidsim", passes: int = 2) -> dict[str, tuple[float, float]]:
    """Audio-visual search with the method's FusedIndex proposing the candidates and without it
    (the union of both modalities' own candidates: the naive reference), alternating per query,
    over `passes` passes of which the last is timed: {path: (p50 ms, p99 ms)}."""
    fused = lib.index.fused[method]
    times: dict[str, list[float]] = {"FusedIndex": [], "union": []}
    try:
        for p in range(passes):
            for i in range(len(queries.clips)):
                feats = queries.clip(i)
                for label in (("FusedIndex", "union") if i % 2 else ("union", "FusedIndex")):
                    if label == "FusedIndex":
                        lib.index.fused[method] = fused
                    else:
                        lib.index.fused.pop(method, None)
                    t = time.perf_counter()
                    lib.query_features(feats, "audio_visual", k=10, method=method)
                    if p == passes - 1:
                        times[label].append(time.perf_counter() - t)
    finally:
        lib.index.fused[method] = fused
    return {label: (_pct(v, 50), _pct(v, 99)) for label, v in times.items()}


def conversion_paths(lib, queries, modality: str = "visual") -> dict[str, tuple[float, float]]:
    """vidsim `modality` search with a large space's float16 rows converted by torch
    (`spaces.to_float32`), by NumPy's own cast (the naive reference) and by FAISS' fp16 scalar
    quantiser (the path before), alternating per query: {path: (p50 ms, p99 ms)}."""
    from vidsim import spaces  # noqa: PLC0415
    from vidsim.ann import load_faiss  # noqa: PLC0415

    faiss = load_faiss()

    def faiss_decode(x: np.ndarray) -> np.ndarray:
        if x.dtype != np.float16 or x.ndim != 2:
            return np.asarray(x, np.float32)
        sq = faiss.ScalarQuantizer(x.shape[1], faiss.ScalarQuantizer.QT_fp16)
        return sq.decode(np.ascontiguousarray(x).view(np.uint8))

    ours = spaces.to_float32
    paths = {"torch": ours, "NumPy astype": lambda x: np.asarray(x, np.float32), "FAISS decoder": faiss_decode}
    times: dict[str, list[float]] = {label: [] for label in paths}
    try:
        for i in range(len(queries.clips)):
            feats = queries.clip(i)
            for label in np.roll(list(paths), i):  # each path first in turn
                spaces.to_float32 = paths[label]
                t = time.perf_counter()
                lib.query_features(feats, modality, k=10, method="vidsim")
                times[label].append(time.perf_counter() - t)
    finally:
        spaces.to_float32 = ours
    return {label: (_pct(v, 50), _pct(v, 99)) for label, v in times.items()}


def excerpt_search(lib, library, count: int, seconds: int = 2, seed: int = 0
                   ) -> list[tuple[str, str, float, float, float, float]]:
    """Excerpts of library clips as queries: the first `seconds` of each of `count` random library
    clips, every second perturbed (noise of a fifth of each column's spread, as a re-encoding
    would), searched with the per-second indexes and without them, alternating per query.

    Returns [(modality, path, source Recall@1, Recall@10, p50 ms, p99 ms)], path "seconds" or
    "summaries only" (the per-second indexes set aside: the naive reference)."""
    from vidsim.modalities import ClipFeatures

    rng = np.random.default_rng(seed)
    picks = rng.choice(len(library.clips), count, replace=False)
    spread = {m: np.asarray(library.seconds[m][:20000], np.float32).std(axis=0) for m in ("audio", "visual")}
    segment = {m: lib.index.spaces[f"vidsim.{m}"] for m in ("audio", "visual")}
    kept = {m: space.second_ann for m, space in segment.items()}
    names = lib.column("clip")
    found: dict[tuple[str, str], list[tuple[bool, bool, float]]] = {}
    try:
        for i in picks:
            clip = library.clip(int(i))
            part = {m: np.asarray(x[:seconds], np.float32) for m, x in
                    (("audio", clip.audio_seconds), ("visual", clip.frames))}
            part = {m: x + 0.2 * spread[m] * rng.standard_normal(x.shape, dtype=np.float32) for m, x in part.items()}
            feats = ClipFeatures(audio=clip.audio, frames=part["visual"], audio_seconds=part["audio"])
            for path in ("seconds", "summaries only"):
                for m, space in segment.items():
                    space.second_ann = kept[m] if path == "seconds" else None
                for modality in ("audio", "visual", "audio_visual"):
                    t = time.perf_counter()
                    hits = lib.query_features(feats, modality, k=10, method="vidsim").hits
                    ms = time.perf_counter() - t
                    source = str(names[i])
                    found.setdefault((modality, path), []).append(
                        (bool(hits) and hits[0].clip == source, any(h.clip == source for h in hits), ms))
    finally:
        for m, space in segment.items():
            space.second_ann = kept[m]
    return [(modality, path, float(np.mean([a for a, _, _ in v])), float(np.mean([b for _, b, _ in v])),
             _pct([t for _, _, t in v], 50), _pct([t for _, _, t in v], 99)) for (modality, path), v in found.items()]


def run(n: int, seconds: int = 4, queries: int = 200, recall_queries: int = 50,
        root: Path | None = None, project: Path = Path("."), search_only: bool = False) -> None:
    """The whole benchmark; with `search_only`, steps 2-4 on the index a previous run left (a
    change to the query path needs no new index)."""
    from threadpoolctl import threadpool_limits

    from vidsim.ann import load_faiss
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
    for path in sorted((root / "work/metrics/queries").glob("*.json")):
        print(f"held-out {path.stem}: {read_json(path)}")
    t = time.perf_counter()
    lib = Library.load(root / "index", root / "work/models")
    load_s = time.perf_counter() - t
    factories = {k: type(s.ann.index).__name__ for k, s in lib.index.spaces.items() if s.ann is not None}
    print(f"index load (memory-mapped): {load_s:.2f} s; FAISS: {len(factories)} spaces, "
          f"{sorted(set(factories.values()))}, nprobe {lib.index.manifest['index']['nprobe']}, "
          f"candidates {lib.index.manifest['index']['candidates']}; FusedIndex nprobe "
          f"{', '.join(str(f.ann.nprobe) for f in lib.index.fused.values()) or '-'}, PCA to "
          f"{lib.index.manifest['index'].get('fused_dims', 0) or '-'} dimensions")
    table_load(root / "index" / "clips.csv")
    qs = load_features(q_dir)
    import torch  # float16 rows are converted by torch (`spaces.to_float32`): one thread too

    load_faiss().omp_set_num_threads(1)
    torch.set_num_threads(1)
    with threadpool_limits(1):
        lat = latency(lib, qs)
        gb, secs = read_files(root / "index")  # a server's steady state: its index in the page cache,
        t = time.perf_counter()
        mapped = lib.index.page_in() / 1e9  # and its arrays mapped (what `Library.warm_up` does)
        map_s = time.perf_counter() - t
        warm = {(m, mod): (p50, p99) for m, mod, p50, p99, _ in latency(lib, qs)}
        rec = recall(lib, qs, recall_queries) if recall_queries > 0 else []
        fused = fused_recall(lib, qs, recall_queries) if recall_queries > 0 and "vidsim" in lib.index.fused else None
        paths = fused_vs_union(lib, qs) if "vidsim" in lib.index.fused else {}
        converts = conversion_paths(lib, qs) if lib.index.spaces["vidsim.visual"].ann is not None else {}
        has_seconds = lib.index.spaces["vidsim.visual"].second_ann is not None
        parts = excerpt_search(lib, load_features(lib_dir), min(queries, 100), seconds // 2) \
            if has_seconds and seconds > 1 else []
    print(f"\n(warm: after reading the index's {gb:.1f} GB into the page cache, {secs:.0f} s, and mapping its "
          f"arrays' {mapped:.1f} GB into the process (`Index.page_in`), {map_s:.0f} s; cold: the pages as "
          "the stages left them)\n\n| method | modality | p50 ms cold | p99 ms cold | p50 ms warm | p99 ms warm | "
          "queries |\n|---|---|---|---|---|---|---|")
    for method, modality, p50, p99, count in lat:
        w50, w99 = warm[method, modality]
        print(f"| {method} | {modality} | {p50:.2f} | {p99:.2f} | {w50:.2f} | {w99:.2f} | {count} |")
    print("\n| space | nprobe | recall@10 vs exact scan | nearest() p50 ms | exact scan s (median) |\n"
          "|---|---|---|---|---|")
    for key, nprobe, r, ms, s in rec:
        print(f"| {key} | {nprobe} | {r:.3f} | {ms:.2f} | {s:.2f} |")
    if fused is not None:
        print(f"\n| vidsim audio_visual, {recall_queries} queries | recall@10 vs exact late fusion | precision@10 |"
              "\n|---|---|---|")
        for label, (r, p) in fused[0].items():
            print(f"| {label} | {r:.3f} | {p:.3f} |")
        print(f"\n(FusedIndex: {lib.index.fused['vidsim'].ann.candidates} candidates; union: "
              f"{lib.index.manifest['index']['candidates']} per modality; exact scan {fused[1]:.0f} s per query)")
    if paths:
        f, u = paths["FusedIndex"], paths["union"]
        print(f"\nvidsim audio_visual, the same {len(qs.clips)} queries alternating (second pass): FusedIndex "
              f"{f[0]:.2f} ms p50 / {f[1]:.2f} p99, union of both modalities' candidates {u[0]:.2f} / {u[1]:.2f}: "
              f"{u[0] / f[0]:.2f}x")
    if converts:
        t, n, f = converts["torch"], converts["NumPy astype"], converts["FAISS decoder"]
        print(f"\nvidsim visual, the same {len(qs.clips)} queries alternating, float16 rows converted by torch "
              f"{t[0]:.2f} ms p50 / {t[1]:.2f} p99, by NumPy's cast {n[0]:.2f} / {n[1]:.2f} ({n[0] / t[0]:.2f}x), by "
              f"FAISS' fp16 decoder {f[0]:.2f} / {f[1]:.2f} ({f[0] / t[0]:.2f}x)")
    if parts:
        print(f"\n| excerpts: the first {seconds // 2} s of {min(queries, 100)} library clips, with noise | path | "
              "source R@1 | R@10 | p50 ms | p99 ms |\n|---|---|---|---|---|---|")
        for modality, path, r1, r10, p50, p99 in parts:
            print(f"| vidsim {modality} | {path} | {r1:.3f} | {r10:.3f} | {p50:.2f} | {p99:.2f} |")
    print(f"\npeak memory of this process (index loaded, {len(qs.clips)} queries): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
