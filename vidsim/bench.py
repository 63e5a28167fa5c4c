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
    AudioConfig,
    ExtractConfig,
    VAEConfig,
    encoder_config,
    from_dict,
    load_params,
)
from vidsim.dataset import stack
from vidsim.demo import DemoConfig, plan, render_clip
from vidsim.extraction import extract_library
from vidsim.featurization import featurize_library
from vidsim.index import Index
from vidsim.modalities import MODALITIES
from vidsim.search import Library
from vidsim.spaces import LatentSpace


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
        features = stack(status, feats, encoder.info.dim)
        t_train = t_encode = 0.0
        for m in MODALITIES:
            _, x = features.matrix(m)
            (model, norm, _), t = _timed(vae.train_vae, x, vae_cfg, 0, False)
            t_train += t
            t_encode += _timed(vae.encode, model, norm, x)[1]
        n = len(ok)
        for name, secs in (("extract", t_extract), ("featurize", t_feat), ("train (3 VAEs)", t_train),
                           ("encode", t_encode)):
            rows.append((name, secs, secs / minutes, 3600 * n / secs if secs > 0.01 else float("nan")))
        query_clip = tmp / "query-30s.mp4"
        demo = from_dict(DemoConfig, {**params["demo"], "clip_seconds": 30.0, "clips_per_pair": 1,
                                      "queries_per_pair": 1})
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
    print("retrieval quality on the held-out queries: `dvc metrics show metrics/heldout` (the evaluate stage)")


def index_load_10k(n: int = 10_000) -> float:
    """Time Index.load on a library of n clips with the original's 2-d latent per modality."""
    rng = np.random.default_rng(0)
    clips = pd.DataFrame({"clip": [f"clip-{i:05d}.mp4" for i in range(n)],
                          "path": [f"/videos/clip-{i:05d}.mp4" for i in range(n)],
                          "sha256": ["0" * 64] * n, "duration": 180.0,
                          "has_audio": True, "has_video": True})
    spaces = {f"original.{m}": LatentSpace(m, np.arange(n), rng.normal(size=(n, 2)).astype(np.float32))
              for m in MODALITIES}
    with tempfile.TemporaryDirectory() as tmp:
        Index(clips, spaces, {}, {"search": {"k": 5}}).save(tmp)
        return statistics.median(_timed(Index.load, tmp)[1] for _ in range(3))


if __name__ == "__main__":
    main()
