"""Per-clip work shared by the pipeline stages and the query path: extract, then featurize."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import numpy as np

from vidsim import media
from vidsim.config import AudioConfig, EncoderConfig, ExtractConfig
from vidsim.features import audio as audio_features
from vidsim.features import visual

StepCallback = Callable[[str], None]  # told the name of each step as it starts


@dataclasses.dataclass
class ClipFeatures:
    """Everything search needs from one clip; a missing modality is None."""

    audio: np.ndarray | None  # (138,) float32
    frames: np.ndarray | None  # (T, D) float32, one L2-normalised row per sampled second

    @property
    def visual(self) -> np.ndarray | None:
        """(D,) clip mean of the frame embeddings."""
        return None if self.frames is None else self.frames.mean(axis=0).astype(np.float32)

    def vector(self, modality: str) -> np.ndarray | None:
        """The model input for a modality: audio, visual, or both concatenated (early fusion)."""
        if modality == "audio":
            return self.audio
        if modality == "visual":
            return self.visual
        if modality == "audio_visual":
            if self.audio is None or self.frames is None:
                return None
            return np.concatenate([self.audio, self.visual]).astype(np.float32)
        raise ValueError(f"unknown modality {modality!r}; use audio, visual or audio_visual")


@dataclasses.dataclass(frozen=True)
class Encoder:
    """A loaded image encoder with its provenance."""

    model: object
    preprocess: object
    info: visual.EncoderInfo
    batch_size: int = 16
    device: str = "cpu"


def featurize(info: media.MediaInfo, wav_path: str | os.PathLike | None, encoder: Encoder,
              audio_cfg: AudioConfig, extract_cfg: ExtractConfig,
              on_step: StepCallback | None = None) -> ClipFeatures:
    """Audio statistics from the WAV and frame embeddings streamed from the video.

    `on_step` is told "frames" and "features" as each step starts (for progress displays).
    """
    step = on_step or (lambda _: None)
    audio = None
    if wav_path is not None:
        signal, rate = audio_features.read_wav(wav_path)
        try:
            audio, _ = audio_features.audio_features(signal, rate, audio_cfg)
        except ValueError as exc:
            raise media.MediaError(info.path, str(exc)) from None
    frames = None
    if info.has_video:
        step("frames")
        raw = list(media.iter_frames(info, encoder.info.image_size, extract_cfg))
        if not raw:
            raise media.MediaError(info.path, "the video stream has no decodable frame")
        step("features")
        frames = visual.embed_frames(encoder.model, encoder.preprocess, raw, encoder.batch_size,
                                     encoder.device)
    if audio is None and frames is None:
        raise media.MediaError(info.path, "no usable audio or video")
    return ClipFeatures(audio=audio, frames=frames)


def load_encoder(cfg: EncoderConfig) -> Encoder:
    """The configured image encoder (or its recorded fallback), ready for `featurize`."""
    model, preprocess, info = visual.create_encoder_from_config(cfg)
    return Encoder(model, preprocess, info, cfg.batch_size, cfg.device)


def extract_and_featurize(path: str | os.PathLike, workdir: str | os.PathLike, encoder: Encoder,
                          audio_cfg: AudioConfig, extract_cfg: ExtractConfig,
                          on_step: StepCallback | None = None
                          ) -> tuple[media.MediaInfo, ClipFeatures]:
    """The whole per-clip path for one file, with scratch files under `workdir`."""
    if on_step:
        on_step("probe")
    info = media.probe(path, extract_cfg)
    wav = None
    if info.has_audio:
        if on_step:
            on_step("audio")
        wav = Path(workdir) / "audio.wav"
        media.extract_audio(info, wav, extract_cfg)
    return info, featurize(info, wav, encoder, audio_cfg, extract_cfg, on_step)
