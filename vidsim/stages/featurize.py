"""Stage `featurize`: 138 audio statistics and per-second frame embeddings for every clip.

Features are cached per content hash and per feature settings (encoder, windows), so adding one
video to the library featurizes only that video.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from vidsim import media
from vidsim.clip import ClipFeatures, Encoder, featurize, load_encoder
from vidsim.config import AudioConfig, ExtractConfig, encoder_config, from_dict, load_params
from vidsim.features.audio import feature_names
from vidsim.io import atomic_path, read_status, write_json
from vidsim.stages import setup_logging

log = logging.getLogger(__name__)


def fingerprint(encoder: Encoder, audio_cfg: AudioConfig, extract_cfg: ExtractConfig) -> str:
    """Everything a cached feature file depends on besides the video's bytes."""
    return json.dumps({"encoder": encoder.info.fingerprint, "audio": dataclasses.asdict(audio_cfg),
                       "rate": extract_cfg.sample_rate, "fps": extract_cfg.frame_rate}, sort_keys=True)


def load_cached(path: Path, fp: str) -> ClipFeatures | None:
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as npz:
        if str(npz["fingerprint"]) != fp:
            return None
        return ClipFeatures(audio=npz["audio"] if npz["audio"].size else None,
                            frames=npz["frames"] if npz["frames"].size else None)


def save_cached(path: Path, fp: str, feats: ClipFeatures) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, fingerprint=np.array(fp),
                 audio=feats.audio if feats.audio is not None else np.zeros(0, np.float32),
                 frames=feats.frames if feats.frames is not None else np.zeros((0, 0), np.float32))


def featurize_library(status: pd.DataFrame, extracted: Path, cache: Path, encoder: Encoder,
                      audio_cfg: AudioConfig, extract_cfg: ExtractConfig
                      ) -> tuple[pd.DataFrame, dict[str, ClipFeatures]]:
    """Features per ok clip (cached by sha256); failures are written back into the status table."""
    cache.mkdir(parents=True, exist_ok=True)
    fp = fingerprint(encoder, audio_cfg, extract_cfg)
    status = status.copy()
    feats: dict[str, ClipFeatures] = {}
    counts = {"new": 0, "cached": 0, "failed": 0}
    ok = status.index[status["status"] == "ok"]
    for i in tqdm(ok, desc="featurize", unit="clip"):
        row = status.loc[i]
        sha = row["sha256"]
        if sha in feats:
            counts["cached"] += 1
            continue
        cached = load_cached(cache / f"{sha}.npz", fp)
        if cached is not None:
            feats[sha] = cached
            counts["cached"] += 1
            continue
        info = media.MediaInfo(path=row["path"], format_name=row.get("format_name") or "",
                               duration=float(row["duration"]), has_audio=bool(row["has_audio"]),
                               has_video=bool(row["has_video"]))
        try:
            wav = extracted / "cache" / f"{sha}.wav" if info.has_audio else None
            feats[sha] = featurize(info, wav, encoder, audio_cfg, extract_cfg)
        except media.MediaError as exc:
            status.loc[i, ["status", "reason"]] = ["error", exc.reason]
            counts["failed"] += 1
            log.warning("%s: %s", row["clip"], exc.reason)
            continue
        save_cached(cache / f"{sha}.npz", fp, feats[sha])
        counts["new"] += 1
    keep = {f"{s}.npz" for s in feats}
    for p in cache.glob("*.npz"):
        if p.name not in keep:
            p.unlink()
    log.info("featurize: %(new)d new, %(cached)d cached, %(failed)d failed", counts)
    return status, feats


def stack(status: pd.DataFrame, feats: dict[str, ClipFeatures], dim: int) -> dict[str, np.ndarray]:
    """(N, 138) audio and (N, D) visual matrices over the ok clips; NaN rows for a missing modality."""
    ok = status[status["status"] == "ok"]
    audio = np.full((len(ok), 138), np.nan, np.float32)
    visual = np.full((len(ok), dim), np.nan, np.float32)
    for j, sha in enumerate(ok["sha256"]):
        f = feats[sha]
        if f.audio is not None:
            audio[j] = f.audio
        if f.frames is not None:
            visual[j] = f.visual
    return {"audio": audio, "visual": visual}


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("extracted", type=Path, help="the extract stage's folder")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    params = load_params()
    section = params["featurize"]
    audio_cfg = from_dict(AudioConfig, section.get("audio"))
    extract_cfg = from_dict(ExtractConfig, params.get("extract"))
    encoder = load_encoder(encoder_config(section.get("encoder")))
    status = read_status(args.extracted / "status.csv")
    status, feats = featurize_library(status, args.extracted, args.out / "cache", encoder,
                                      audio_cfg, extract_cfg)
    arrays = stack(status, feats, encoder.info.dim)
    with atomic_path(args.out / "features.npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    with atomic_path(args.out / "status.csv") as tmp:
        status.to_csv(tmp, index=False)
    write_json(args.out / "features.json", {
        "encoder": dataclasses.asdict(encoder.info),
        "audio": dataclasses.asdict(audio_cfg), "audio_names": feature_names(),
        "extract": dataclasses.asdict(extract_cfg),
        "clips": int((status["status"] == "ok").sum()),
    })


if __name__ == "__main__":
    main()
