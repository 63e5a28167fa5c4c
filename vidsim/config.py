"""Typed, frozen views of the `params.yaml` sections; library code never reads the file itself."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    """How ffmpeg turns a video into a mono WAV and frames, and the limits on what it accepts."""

    sample_rate: int = 44100  # Hz, mono
    frame_rate: float = 1.0  # frames sampled per second of video
    timeout_s: float = 300.0  # wall clock for one ffmpeg child (its process group is killed)
    probe_timeout_s: float = 30.0
    max_duration_s: float = 3600.0  # longer inputs are refused; decoding also stops there
    max_file_mb: float = 4096.0
    max_pixels: int = 4096 * 2160  # per frame, checked on the probe and enforced by the decoder
    max_fps: float = 240.0
    max_decode_gpix: float = 500.0  # width x height x fps x seconds, in billions: bounds decoding work
    max_streams: int = 16
    max_memory_mb: int = 2048  # address-space limit of each ffmpeg child (prlimit)
    extensions: tuple[str, ...] = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg")
    workers: int = 0  # clips that extract and featurize work on at once (0: one per CPU core)

    @property
    def pool_size(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    """Audio analysis: pyAudioAnalysis windows, in seconds, and the log-mel bands per window."""

    mid_window: float = 1.0
    mid_step: float = 1.0
    short_window: float = 0.05
    short_step: float = 0.05
    mel_bands: int = 64  # log-mel bands added to each window's features (0: pyAudioAnalysis only)


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """Which image encoder embeds the frames (see vidsim.encoder)."""

    model: str = "ViT-B-32"
    pretrained: str = "openai"  # open_clip tag, local checkpoint path, or "package" for the fallback
    fallback_model: str = "efficientnet-lite0"  # used, and recorded, when `model` has no weights here
    fallback_pretrained: str = "package"
    batch_size: int = 16
    device: str = "cpu"
    precision: str = "auto"  # fp32 | int8 (matrix products) | auto: int8 where the CPU has VNNI


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """The original's VAE: input -> hidden -> latent, reconstruction + KL."""

    hidden: int = 64
    latent: int = 2
    epochs: int = 1000
    lr: float = 1e-3
    batch_size: int = 32
    beta: float = 1.0  # weight of the KL term
    max_clips: int = 20000  # a larger library trains on a uniform sample of this many clips
    max_steps: int = 5000  # optimiser steps at most: fewer epochs when an epoch has many batches


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """What the app and the CLI serve by default (every method is built and evaluated)."""

    k: int = 5
    method: str = "vidsim"  # "vidsim", "original" (the study's configuration) or "raw" (baseline)
    weights: dict = dataclasses.field(default_factory=lambda: {"audio": 0.5, "visual": 0.5})  # late fusion
    expansion: int = 2  # vidsim: query expansion with the top n hits (0: off)
    expansion_mix: float = 0.5  # share of the expanded distance in the final one
    max_query_s: float = 600.0  # longer query clips are refused
    max_query_gpix: float = 20.0  # decoding budget of one query (gigapixels; 720p30 for 600 s is 17)
    query_timeout_s: float = 60.0  # wall clock of each ffmpeg child of a query
    # a hit is the same footage (a near duplicate) when its matched span covers most of the shorter
    # video with at least this aligned similarity (vidsim.excerpts), per modality
    same_footage: dict = dataclasses.field(
        default_factory=lambda: {"audio": 0.45, "visual": 0.45, "audio_visual": 0.3})


@dataclasses.dataclass(frozen=True)
class IndexConfig:
    """How search spaces are indexed (see vidsim.ann): small ones are searched by brute force,
    larger ones through a FAISS index whose candidates are re-ranked exactly."""

    exact_max: int = 50000  # spaces of up to this many clips are searched exactly
    factory: str = "auto"  # FAISS index_factory string above exact_max; auto: IVF<~4 sqrt N>,SQ8
    nprobe: int = 64  # IVF lists visited per query (HNSW: efSearch)
    candidates: int = 400  # clips per query re-ranked with exact distances
    fused_candidates: int = 150  # late fusion: clips its FusedIndex proposes, scored in every modality
    # IVF lists the FusedIndex visits: it only proposes clips that are then scored exactly (at a
    # million clips 32 kept precision@10 and cost 0.8 ms less than 64 per audio-visual query)
    fused_nprobe: int = 32
    # ... over its vectors projected by PCA to this many dimensions (0: all): at a million clips
    # 256 of the 840 halved an audio-visual query's time and proposed as good candidates
    fused_dims: int = 256
    # per-second spaces also get an index over every second: each query second's `segment_hits`
    # nearest library seconds vote for their clips, and the `segment_candidates` clips with most
    # votes join the candidates (an excerpt of a long video, whose mean second is not the excerpt's)
    segment_candidates: int = 100  # 0: no per-second index
    segment_hits: int = 32
    segment_nprobe: int = 8  # of its sqrt(S) / 2 lists (`ann.vote_factory`)
    train_sample: int = 160000  # vectors the FAISS quantiser is trained on (FAISS asks 39 per list)
    # an inverted file's lists are found and filled in this many of its vectors' top principal
    # directions where that at least halves their width (`quantiser.Coarse`; 0: all): at a million
    # clips 128 of 256-656 columns halved k-means and assignments (bfloat16 products), or more
    # (FAISS' float32 ones, on CPUs without bfloat16)
    coarse_dims: int = 128
    calibration_sample: int = 5000  # larger spaces: each calibration query meets its nearest + this many


def from_dict(cls: type[T], section: dict[str, Any] | None) -> T:
    """Build a config dataclass, refusing keys it does not know (typos fail loudly)."""
    section = dict(section or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(section) - set(fields))
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
    for name, value in section.items():
        if isinstance(value, list):
            section[name] = tuple(value)
    return cls(**section)


def load_params(path: str | os.PathLike = "params.yaml") -> dict[str, Any]:
    """Read params.yaml once, at a stage's edge."""
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def encoder_config(section: dict[str, Any] | None) -> EncoderConfig:
    """EncoderConfig with the VIDSIM_CLIP_MODEL / VIDSIM_CLIP_PRETRAINED overrides applied."""
    cfg = from_dict(EncoderConfig, section)
    overrides = {
        "model": os.environ.get("VIDSIM_CLIP_MODEL"),
        "pretrained": os.environ.get("VIDSIM_CLIP_PRETRAINED"),
    }
    return dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v})

