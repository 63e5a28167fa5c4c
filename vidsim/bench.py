"""Benchmark: how fast one clip is indexed, against a naive script, and how fast queries answer.

Run after `make demo`: `python -m vidsim.bench` (or `make bench`). It prints

1. one 3-minute 1280x720 30 fps H.264/AAC clip (~4 Mb/s, rendered once from the demo's sources
   into data/bench/) through vidsim's per-clip path and through the naive reference path below,
   each in a fresh process (the one-time model load reported apart), alternating the two, median
   of `--repeats`, for ViT-B-32 (random init: the same work as the real weights) and for
   EfficientNet-Lite0: wall and CPU seconds, peak memory, real-time factor, ratio to naive;
2. the demo library's extract and featurize stages in a scratch folder: clips per hour;
3. `vidsim query` on a 12 s clip from the shell (cold, median of 3) and the app's search of it
   with the library loaded (warm, median of 5); and the longest excerpt query of at most 20 s
   (of a library video) from file to the app's three result lists with their matched spans (warm,
   median of 7).

With `--scale N`, it measures search on N synthetic clips instead (`vidsim.scalebench`).

Timings live here, never in a test: this machine is noisy, so compare figures from one run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ffmpeg
import numpy as np

from vidsim import media

CLIP_SECONDS = 180.0
ENCODERS = (("ViT-B-32", "random"), ("efficientnet-lite0", "package"))
BENCH_DIR = Path("data/bench")


def render_clip(sources: Path, out: Path, seconds: float = CLIP_SECONDS) -> Path:
    """A 720p30 "music video" at ~4 Mb/s: a pan over nine demo photos with film grain (without
    grain a pan compresses to 0.6 Mb/s and decodes faster than real videos) under one track."""
    if out.exists():
        return out
    photos = sorted((sources / "photos").glob("*/*.jpg"))[:9]
    tracks = sorted((sources / "music").glob("*/*.ogg"), key=lambda p: -media.probe(p).duration)
    if not photos or not tracks:
        raise SystemExit(f"no demo sources in {sources}: run `dvc repro sources` (or `make demo`) first")
    w, h, fps, seg = 1280, 720, 30, seconds / len(photos)
    parts = [ffmpeg.input("file:" + str(p.resolve()), f="image2", pattern_type="none", loop=1,
                          t=f"{seg:.3f}", framerate=fps)
             .filter("scale", int(w * 1.3), int(h * 1.3), force_original_aspect_ratio="increase")
             .filter("crop", w, h, x=f"(in_w-{w})*t/{seg:.3f}", y=f"(in_h-{h})/2")
             .filter("setsar", 1).filter("format", "yuv420p").filter("noise", alls=10, allf="t")
             for p in photos]
    audio = ffmpeg.input("file:" + str(tracks[0].resolve()), ss="20", t=f"{seconds}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part.mp4")
    stream = ffmpeg.output(ffmpeg.concat(*parts, v=1, a=0), audio, "file:" + str(tmp.resolve()),
                           vcodec="libx264", preset="veryfast", video_bitrate="4M", maxrate="5M",
                           bufsize="8M", r=fps, acodec="aac", audio_bitrate="128k", ac=2, ar=44100,
                           t=f"{seconds}", movflags="+faststart").overwrite_output()
    logging.getLogger(__name__).warning("rendering the %.0f s benchmark clip once (about 2 min): %s",
                                        seconds, out)
    media.run_graph(stream, 900, out)
    tmp.rename(out)
    return out


# --- the two per-clip paths, each run in a fresh process by `--worker` -----------------------------

def naive_path(clip: Path, model, preprocess) -> tuple[np.ndarray, np.ndarray]:
    """The straightforward script: ffmpeg writes a WAV and 1 fps JPEGs, pyAudioAnalysis computes the
    statistics, PIL reads each JPEG and the encoder embeds it alone (batch 1, torch fp32)."""
    import torch
    from PIL import Image
    from pyAudioAnalysis import MidTermFeatures
    from scipy.io import wavfile

    np.Inf, np.NaN = np.inf, np.nan  # what pyAudioAnalysis 0.3.14 still needs on NumPy 2
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clip), "-vn", "-ac", "1",
                        "-ar", "44100", f"{tmp}/audio.wav"], check=True)
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(clip), "-vf", "fps=1",
                        f"{tmp}/%05d.jpg"], check=True)
        rate, signal = wavfile.read(f"{tmp}/audio.wav")
        mid, short, _ = MidTermFeatures.mid_feature_extraction(
            signal.astype(np.float64), rate, rate, rate, round(0.05 * rate), round(0.05 * rate))
        stats = np.concatenate([mid.mean(axis=1), MidTermFeatures.beat_extraction(short, 0.05)])
        with torch.inference_mode():
            frames = [model.encode_image(preprocess(Image.open(p).convert("RGB"))[None])[0].numpy()
                      for p in sorted(Path(tmp).glob("*.jpg"))]
    return stats, np.stack(frames)


def _worker(path: str, clip: Path, model_name: str, pretrained: str) -> dict:
    """Load the encoder (timed apart), then run one path on the clip; resource use of the path only."""
    t = time.perf_counter()
    if path == "naive":
        from vidsim.features import visual

        model, preprocess, _ = visual.create_encoder(model_name, pretrained)
        run = lambda: naive_path(clip, model, preprocess)  # noqa: E731
    else:
        from vidsim import encoder as encoders
        from vidsim.clip import extract_and_featurize
        from vidsim.config import AudioConfig, ExtractConfig

        enc = encoders.load(model_name, pretrained)
        scratch = tempfile.mkdtemp(prefix="vidsim-bench-")
        run = lambda: extract_and_featurize(clip, scratch, enc, AudioConfig(), ExtractConfig())  # noqa: E731
    load = time.perf_counter() - t
    before = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    t = time.perf_counter()
    run()
    wall = time.perf_counter() - t
    after = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(a.ru_utime + a.ru_stime - b.ru_utime - b.ru_stime for a, b in zip(after, before))
    peak_mb = (after[0].ru_maxrss + after[1].ru_maxrss) / 1024  # this process + its largest child
    return {"wall": wall, "cpu": cpu, "peak_mb": peak_mb, "load": load}


def _run_worker(path: str, clip: Path, model: str, pretrained: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "vidsim.bench", "--worker", path, "--clip", str(clip),
                          "--model", model, "--pretrained", pretrained],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{path} path failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def per_clip(clip: Path, repeats: int, encoders: tuple[tuple[str, str], ...]) -> None:
    from vidsim import encoder as encoder_module

    duration = media.probe(clip).duration
    print(f"\n## One clip: {clip.name}, {duration:.0f} s, 1280x720 30 fps, "
          f"{clip.stat().st_size * 8 / duration / 1e6:.1f} Mb/s (median of {repeats}, alternating)")
    print(f"{'encoder':<20}{'path':<8}{'wall s':>8}{'CPU s':>8}{'peak MB':>9}{'x real time':>13}"
          f"{'naive/vidsim':>14}{'load s':>8}")
    for model, pretrained in encoders:
        encoder_module.load(model, pretrained)  # export once, outside the timings
        runs: dict[str, list[dict]] = {"vidsim": [], "naive": []}
        for r in range(repeats):
            for path in (("vidsim", "naive") if r % 2 == 0 else ("naive", "vidsim")):
                runs[path].append(_run_worker(path, clip, model, pretrained))
        med = {p: {k: statistics.median(x[k] for x in v) for k in v[0]} for p, v in runs.items()}
        for path in ("vidsim", "naive"):
            m = med[path]
            ratio = med["naive"]["wall"] / m["wall"]
            print(f"{model:<20}{path:<8}{m['wall']:>8.1f}{m['cpu']:>8.1f}{m['peak_mb']:>9.0f}"
                  f"{duration / m['wall']:>13.1f}{ratio:>14.2f}{m['load']:>8.1f}")


# --- the demo library and queries -----------------------------------------------------------------

def library_throughput(params: dict) -> None:
    from vidsim import encoder as encoders
    from vidsim.config import AudioConfig, ExtractConfig, encoder_config, from_dict
    from vidsim.extraction import extract_library
    from vidsim.featurization import featurize_library

    library = Path(params["library"]["dir"])
    extract_cfg = from_dict(ExtractConfig, params.get("extract"))
    audio_cfg = from_dict(AudioConfig, params["featurize"].get("audio"))
    enc = encoders.load_from_config(encoder_config(params["featurize"].get("encoder")))
    engines = ["local"] + (["ray"] if importlib.util.find_spec("ray") else [])
    feat: dict[str, list[float]] = {e: [] for e in engines}
    with tempfile.TemporaryDirectory(prefix="vidsim-bench-") as tmp:
        t = time.perf_counter()
        status = extract_library(library, Path(tmp) / "extracted", extract_cfg)
        t_extract = time.perf_counter() - t
        for rep in range(2 if len(engines) > 1 else 1):  # alternating, each from an empty cache
            for engine in engines:
                t = time.perf_counter()
                done, _ = featurize_library(status, Path(tmp) / "extracted", Path(tmp) / f"features-{engine}-{rep}",
                                            enc, audio_cfg, extract_cfg, engine)
                feat[engine].append(time.perf_counter() - t)
    ok = done[done["status"] == "ok"]
    n, minutes = len(ok), ok["duration"].astype(float).sum() / 60
    t_feat = statistics.median(feat["local"])
    print(f"\n## Demo library: {n} clips, {minutes:.1f} min of video, {enc.info.model} "
          f"({enc.info.precision}), {extract_cfg.pool_size} workers")
    print(f"{'stage':<22}{'seconds':>9}{'clips / hour':>14}{'x real time':>13}")
    rows = [("extract", t_extract), ("featurize (local)", t_feat), ("both (local)", t_extract + t_feat)]
    if "ray" in feat:  # Ray's start (a local cluster) is part of what a stage run pays
        rows.append(("featurize (Ray, local)", statistics.median(feat["ray"])))
    for name, secs in rows:
        print(f"{name:<22}{secs:>9.1f}{3600 * n / secs:>14.0f}{60 * minutes / secs:>13.1f}")
    if "ray" in feat:
        print("featurize runs, alternating: " + "; ".join(f"{e} " + ", ".join(f"{x:.1f}" for x in v)
                                                         for e, v in feat.items()) + " s")


def query_latency(query: Path, excerpt: Path | None = None) -> None:
    from vidsim.search import Library

    cold = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "vidsim"), "query", str(query)],
                       capture_output=True, check=True)
        cold.append(time.perf_counter() - t)
    lib = Library.load(verify_root=".")
    lib.query(query)  # the app loads the library and the encoder once
    warm = []
    for _ in range(5):
        t = time.perf_counter()
        lib.query(query)
        warm.append(time.perf_counter() - t)
    seconds = media.probe(query).duration
    print(f"\n## Query: {query.name} ({seconds:.0f} s), audio-visual, default method")
    print(f"`vidsim query` from the shell (cold), median of 3: {statistics.median(cold):.2f} s")
    print(f"search with the library loaded (the app, warm), median of 5: {statistics.median(warm):.2f} s")
    if excerpt is not None:
        excerpt_latency(lib, excerpt)


def longest_excerpt(folder: str | None, limit: float = 20.0) -> Path | None:
    """The longest excerpt query of at most `limit` seconds cut from a library clip (its
    labels.csv names a source), if the folder has one."""
    import pandas as pd

    if not folder or not (Path(folder) / "labels.csv").is_file():
        return None
    labels = pd.read_csv(Path(folder) / "labels.csv", keep_default_na=False)
    true = labels[(labels["source"] != "") & (labels["seconds"] <= limit)]
    return None if true.empty else Path(folder) / true.loc[true["seconds"].idxmax(), "file"]


def excerpt_latency(lib, excerpt: Path, repeats: int = 7) -> None:
    """An excerpt query with the library loaded: decode and features, then the three result lists
    the app shows (audio, visual, audio-visual, each hit with its matched span)."""
    features, search = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        feats = lib.featurize(excerpt)
        t1 = time.perf_counter()
        results = lib.search_all(feats=feats)
        t2 = time.perf_counter()
        features.append(t1 - t)
        search.append(t2 - t1)
    top = results["audio_visual"].hits[0]
    total = [a + b for a, b in zip(features, search)]
    print(f"\n## Excerpt query: {excerpt.name} ({media.probe(excerpt).duration:.0f} s), with the library loaded")
    print(f"medians of {repeats}: {statistics.median(total):.2f} s from file to three result lists "
          f"(decode and features {statistics.median(features):.2f} s, search and spans "
          f"{1000 * statistics.median(search):.0f} ms); first hit {top.clip}, "
          f"{top.match.describe() if top.match else 'no span'}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each per-clip path (median)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["clip", "library", "query"],
                        help="parts to leave out")
    parser.add_argument("--scale", type=int, help="instead: search at scale on N synthetic clips (vidsim.scalebench)")
    parser.add_argument("--seconds", type=int, default=4, help="--scale: seconds per synthetic clip")
    parser.add_argument("--queries", type=int, default=200, help="--scale: held-out synthetic queries")
    parser.add_argument("--recall-queries", type=int, default=50, help="--scale: queries scanned exactly")
    parser.add_argument("--search-only", action="store_true",
                        help="--scale: measure search on the index a previous run built (no stages)")
    parser.add_argument("--worker", choices=["vidsim", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--clip", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--pretrained", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.clip, args.model, args.pretrained)))
        return
    if args.scale:
        from vidsim import scalebench

        print(f"# vidsim benchmark, {time.strftime('%Y-%m-%d')}, {_machine()}")
        scalebench.run(args.scale, args.seconds, args.queries, args.recall_queries, search_only=args.search_only)
        return
    from vidsim.config import load_params

    params = load_params()
    print(f"# vidsim benchmark, {time.strftime('%Y-%m-%d')}, {_machine()}")
    if "clip" not in args.skip:
        per_clip(render_clip(Path("data/sources"), BENCH_DIR / "clip-180s-720p.mp4"), args.repeats, ENCODERS)
    if "library" not in args.skip:
        library_throughput(params)
    if "query" not in args.skip:
        sets = params.get("evaluation") or {}
        queries = sorted(Path(sets["queries"]).glob("*.mp4")) if "queries" in sets else []
        if not queries:
            raise SystemExit("no held-out query clips (params.yaml evaluation.queries): run `make demo` first")
        query_latency(queries[0], longest_excerpt(sets.get("excerpts")))


def _machine() -> str:
    import os
    import platform

    from vidsim.cpu import VNNI_FLAGS, cpu_flags

    vnni = "VNNI" if cpu_flags() & VNNI_FLAGS else "no VNNI"
    return f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, {vnni}"


if __name__ == "__main__":
    main()
