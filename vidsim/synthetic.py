"""Synthetic libraries of any size, for measuring search at scale (`python -m vidsim.bench --scale`)
and testing the FAISS tier, shaped like the featurize stage's output.

Structure like a music-video archive: each clip belongs to a song (its audio label) and a look (its
visual label; with `video_look`, many of a song's clips share the song's own look, as the scenes of
one music video do, so audio-visual relevance is common, not a coincidence); its per-second audio
windows and frame embeddings scatter around a clip centre, which scatters around its song's or
look's centre. Audio windows mix units as pyAudioAnalysis' do (a
log-normal scale and an offset per column); frame embeddings are L2-normalised like CLIP's.
Arrays are written chunk by chunk (memory-mapped when a folder is given), so a million clips need
no more memory than one chunk.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim.dataset import Features, feature_files
from vidsim.io import close_array, open_array, write_json, write_table
from vidsim.progress import progress

AUDIO_DIM = 136 + 3 * 64  # pyAudioAnalysis' mid-term features + log-mel mean/std/flux per band
CLIP_AUDIO_DIM = 138
CHUNK = 20000  # clips generated at once


@dataclasses.dataclass(frozen=True)
class World:
    """The centres every clip and query is drawn around (the same for the library and its queries)."""

    songs: int = 1000
    looks: int = 50
    visual_dim: int = 512
    seconds: int = 4  # per clip
    group_spread: float = 1.0  # clip centres around their song's or look's centre
    clip_spread: float = 0.7
    second_spread: float = 0.5
    video_look: float = 0.0  # share of a song's clips showing the song's own look (its video), not a random one
    seed: int = 0

    def centres(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(song centres, look centres, audio column scales, audio column offsets, each song's look)."""
        rng = np.random.default_rng(self.seed)
        song = rng.standard_normal((self.songs, AUDIO_DIM), dtype=np.float32)
        look = rng.standard_normal((self.looks, self.visual_dim), dtype=np.float32)
        scale = np.exp(rng.normal(0.0, 1.5, AUDIO_DIM)).astype(np.float32)  # mixed units
        offset = (rng.normal(0.0, 3.0, AUDIO_DIM) * scale).astype(np.float32)
        return song, look, scale, offset, rng.integers(0, self.looks, self.songs)


def _empty(path: Path | None, shape: tuple[int, ...]) -> np.ndarray:
    return np.empty(shape, np.float32) if path is None else open_array(path, shape)


def generate(world: World, n: int, seed: int, out_dir: str | os.PathLike | None = None,
             prefix: str = "clip") -> Features:
    """n synthetic clips; with `out_dir`, written as a featurize output folder (status.csv,
    features.json and memory-mapped arrays) and returned memory-mapped."""
    song_c, look_c, scale, offset, video = world.centres()
    rng = np.random.default_rng(seed)
    songs = rng.integers(0, world.songs, n)
    looks = rng.integers(0, world.looks, n)
    if world.video_look > 0:  # audio and visual labels correlate, as in music videos
        looks = np.where(rng.random(n) < world.video_look, video[songs], looks)
    t = world.seconds
    files = feature_files(out_dir) if out_dir is not None else None
    audio = _empty(files and files["audio"], (n, CLIP_AUDIO_DIM))
    visual = _empty(files and files["visual"], (n, world.visual_dim))
    seconds = {"audio": _empty(files and files["audio.seconds"], (n * t, AUDIO_DIM)),
               "visual": _empty(files and files["visual.seconds"], (n * t, world.visual_dim))}
    offsets = {m: np.arange(n + 1, dtype=np.int64) * t for m in seconds}
    g, c, s = world.group_spread, world.clip_spread, world.second_spread
    for a in progress(range(0, n, CHUNK), desc=f"synthetic {prefix}s", unit="chunk"):
        b = min(n, a + CHUNK)
        m = b - a
        a_clip = song_c[songs[a:b]] * g + c * rng.standard_normal((m, AUDIO_DIM), dtype=np.float32)
        a_sec = a_clip[:, None, :] + s * rng.standard_normal((m, t, AUDIO_DIM), dtype=np.float32)
        a_sec = a_sec * scale + offset
        v_clip = look_c[looks[a:b]] * g + c * rng.standard_normal((m, world.visual_dim), dtype=np.float32)
        v_sec = v_clip[:, None, :] + s * rng.standard_normal((m, t, world.visual_dim), dtype=np.float32)
        v_sec /= np.linalg.norm(v_sec, axis=-1, keepdims=True)
        seconds["audio"][a * t:b * t] = a_sec.reshape(-1, AUDIO_DIM)
        seconds["visual"][a * t:b * t] = v_sec.reshape(-1, world.visual_dim)
        audio[a:b, :136] = a_sec[:, :, :136].mean(axis=1)
        audio[a:b, 136:] = rng.normal([120.0, 0.5], [20.0, 0.1], (m, 2))
        visual[a:b] = v_sec.mean(axis=1)
    width = len(str(max(n - 1, 1)))
    names = [f"{prefix}-{i:0{width}d}.mp4" for i in range(n)]
    clips = pd.DataFrame({
        "clip": names, "path": [f"/synthetic/{name}" for name in names], "status": "ok", "reason": "",
        "sha256": [f"{seed:08x}{i:056x}" for i in range(n)], "duration": float(t),
        "has_audio": True, "has_video": True,
        "audio_label": [f"song{x}" for x in songs], "visual_label": [f"look{x}" for x in looks]})
    feats = Features(clips, audio, visual, seconds, offsets)
    if out_dir is not None:
        for arr in (audio, visual, *seconds.values()):
            close_array(arr)
        for m, off in offsets.items():
            np.save(files[f"{m}.offsets"], off)
        write_table(clips, Path(out_dir) / "status.csv")
        write_json(Path(out_dir) / "features.json", {
            "encoder": {"model": "synthetic", "pretrained": "none", "weights": "none", "dim": world.visual_dim,
                        "image_size": 224, "has_text": False, "precision": "fp32"},
            "audio": {}, "extract": {}, "synthetic": dataclasses.asdict(world)})
    return feats
