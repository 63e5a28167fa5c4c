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
from vidsim.features import mel, visual
from vidsim.modalities import ClipFeatures

StepCallback = Callable[[str], None]  # told the name of each step as it starts


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
    audio = audio_seconds = None
    if wav_path is not None:
        signal, rate = audio_features.read_wav(wav_path)
        try:
            audio, audio_seconds, _ = audio_features.audio_analysis(signal, rate, audio_cfg)
            if audio_cfg.mel_bands:
                mel_rows = mel.window_stats(signal, rate, audio_cfg, len(audio_seconds))
                audio_seconds = np.concatenate([audio_seconds, mel_rows], axis=1)
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
    return ClipFeatures(audio=audio, frames=frames, audio_seconds=audio_seconds)


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
