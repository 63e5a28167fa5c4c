"""Benchmark: index the library again (in a scratch folder) and time each stage, then time queries.

Run after `make demo`: `python -m vidsim.bench` (or `make bench`). Prints seconds per minute of
video and clips per hour per stage, and the median latency of a 30 s query clip.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim import vae
from vidsim.clip import load_encoder
from vidsim.config import (
    MODALITIES,
    AudioConfig,
    ExtractConfig,
    VAEConfig,
    encoder_config,
    from_dict,
    load_params,
)
from vidsim.dataset import modality_matrix
from vidsim.demo import DemoConfig, plan, render_clip
from vidsim.index import Index
from vidsim.search import Library
from vidsim.stages.extract import extract_library
from vidsim.stages.featurize import featurize_library, stack


def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=5, help="query repetitions (median)")
    args = parser.parse_args()
    params = load_params()
    library = Path(params["library"]["dir"])
    extract_cfg = from_dict(ExtractConfig, params.get("extract"))
    audio_cfg = from_dict(AudioConfig, params["featurize"].get("audio"))
    vae_cfg = from_dict(VAEConfig, params["train"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="vidsim-bench-") as tmp:
        tmp = Path(tmp)
        status, t_extract = _timed(extract_library, library, tmp / "extracted", extract_cfg)
        ok = status[status["status"] == "ok"]
        minutes = ok["duration"].astype(float).sum() / 60
        encoder, t_load = _timed(load_encoder, encoder_config(params["featurize"].get("encoder")))
        (status, feats), t_feat = _timed(featurize_library, status, tmp / "extracted",
                                         tmp / "features", encoder, audio_cfg, extract_cfg)
        arrays = stack(status, feats, encoder.info.dim)
        t_train = t_encode = 0.0
        for m in MODALITIES:
            _, x = modality_matrix(arrays, m)
            (model, norm, _), t = _timed(vae.train_vae, x, vae_cfg, 0, False)
            t_train += t
            t_encode += _timed(vae.encode, model, norm, x)[1]
        n = len(ok)
        for name, secs in (("extract", t_extract), ("featurize", t_feat), ("train (3 VAEs)", t_train),
                           ("encode", t_encode)):
            rows.append((name, secs, secs / minutes, 3600 * n / secs if secs > 0.01 else float("nan")))
        query_clip = tmp / "query-30s.mp4"
        demo = from_dict(DemoConfig, {**params["demo"], "clip_seconds": 30.0, "queries_per_track": 1})
        _, queries = plan(Path("data/sources"), demo)
        row = {**queries.iloc[0].to_dict(), "offset_s": demo.start_s}  # 30 s inside every track
        render_clip(row, query_clip, demo)
        lib = Library.load()
        _ = lib.encoder  # loaded once per process, as the app does
        latencies = {m: [] for m in ("featurize", *lib.modalities)}
        for _ in range(args.queries):
            feats_q, t = _timed(lib.featurize, query_clip)
            latencies["featurize"].append(t)
            for m in lib.modalities:
                latencies[m].append(_timed(lib.query_features, feats_q, m)[1])
    print(f"library: {n} clips, {minutes:.1f} min of video; encoder {encoder.info.model} "
          f"({encoder.info.dim}-d, loaded in {t_load:.1f} s); {vae_cfg.epochs} epochs")
    print(f"{'stage':<16}{'seconds':>10}{'s / min video':>16}{'clips / hour':>14}")
    for name, secs, per_min, per_hour in rows:
        print(f"{name:<16}{secs:>10.1f}{per_min:>16.2f}{per_hour:>14.0f}")
    med = {k: statistics.median(v) for k, v in latencies.items()}
    print(f"query, 30 s clip (median of {args.queries}): extract + featurize {med['featurize']:.2f} s; "
          + ", ".join(f"{m} search {1000 * med[m]:.1f} ms" for m in lib.modalities))
    print(f"query total (all three modalities): {med['featurize'] + sum(med[m] for m in lib.modalities):.2f} s")
    print(f"library load (index + 3 VAEs): {statistics.median(_timed(Library.load)[1] for _ in range(3)):.3f} s")
    print(f"index load, synthetic 10,000-clip library: {index_load_10k():.3f} s (median of 3)")
    held_out(lib, Path("data/demo/queries"))


def held_out(lib: Library, folder: Path) -> None:
    """Top-1/top-5 label agreement for the demo's query clips: excerpts the library never saw."""
    labels_path = folder / "labels.csv"
    if not labels_path.exists():
        return
    labels = pd.read_csv(labels_path, keep_default_na=False)
    keys = {"audio": ["audio_label"], "visual": ["visual_label"],
            "audio_visual": ["audio_label", "visual_label"]}
    by_clip = lib.index.clips.set_index("clip")
    hits = {m: [0, 0] for m in lib.modalities}
    for row in labels.itertuples(index=False):
        feats = lib.featurize(folder / row.file)
        for m in lib.modalities:
            want = tuple(getattr(row, k) for k in keys[m])
            got = [tuple(by_clip.loc[h.clip, keys[m]]) for h in lib.query_features(feats, m, 5).hits]
            hits[m][0] += got[0] == want
            hits[m][1] += want in got
    n = len(labels)
    print(f"held-out demo queries ({n}): " + "; ".join(
        f"{m} top-1 {h1}/{n}, top-5 {h5}/{n}" for m, (h1, h5) in hits.items()))


def index_load_10k(n: int = 10_000) -> float:
    """Time Index.load on a library of n clips with a 2-d latent per modality."""
    rng = np.random.default_rng(0)
    clips = pd.DataFrame({"clip": [f"clip-{i:05d}.mp4" for i in range(n)],
                          "path": [f"/videos/clip-{i:05d}.mp4" for i in range(n)],
                          "sha256": ["0" * 64] * n, "duration": 180.0,
                          "has_audio": True, "has_video": True})
    rows = {m: np.arange(n) for m in MODALITIES}
    latents = {m: rng.normal(size=(n, 2)).astype(np.float32) for m in MODALITIES}
    with tempfile.TemporaryDirectory() as tmp:
        Index(clips, rows, latents, dict.fromkeys(MODALITIES, 1.0), {"search": {"k": 5}}).save(tmp)
        return statistics.median(_timed(Index.load, tmp)[1] for _ in range(3))


if __name__ == "__main__":
    main()
