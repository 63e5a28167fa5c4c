"""Per-clip work shared by the pipeline stages and the query path: extract, then featurize.

The two halves of a clip run side by side so both cores stay busy: a worker thread reads frames
from ffmpeg (decoding in its own process) and embeds them in batches as they arrive (ONNX Runtime
releases the GIL), while the calling thread decodes the sound and computes its statistics.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from vidsim import media
from vidsim.config import AudioConfig, ExtractConfig
from vidsim.encoder import Encoder
from vidsim.features import audio as audio_features
from vidsim.features import mel
from vidsim.modalities import ClipFeatures

StepCallback = Callable[[str], None]  # told the name of each step as it starts
T = TypeVar("T")


def featurize(info: media.MediaInfo, wav_path: str | os.PathLike | None, encoder: Encoder,
              audio_cfg: AudioConfig, extract_cfg: ExtractConfig,
              on_step: StepCallback | None = None) -> ClipFeatures:
    """Audio statistics from an extracted WAV and frame embeddings streamed from the video.

    `on_step` is told "audio", "frames" and "features" as each step starts (for progress displays),
    always from the calling thread.
    """
    wav = (lambda: Path(wav_path)) if wav_path is not None else None
    return _featurize(info, wav, encoder, audio_cfg, extract_cfg, on_step or (lambda _: None))


def extract_and_featurize(path: str | os.PathLike, workdir: str | os.PathLike, encoder: Encoder,
                          audio_cfg: AudioConfig, extract_cfg: ExtractConfig,
                          on_step: StepCallback | None = None
                          ) -> tuple[media.MediaInfo, ClipFeatures]:
    """The whole per-clip path for one file, with scratch files under `workdir`."""
    step = on_step or (lambda _: None)
    step("probe")
    info = media.probe(path, extract_cfg)

    def wav() -> Path:
        out = Path(workdir) / "audio.wav"
        media.extract_audio(info, out, extract_cfg)
        return out

    return info, _featurize(info, wav if info.has_audio else None, encoder, audio_cfg, extract_cfg, step)


def _featurize(info: media.MediaInfo, wav: Callable[[], Path] | None, encoder: Encoder,
               audio_cfg: AudioConfig, extract_cfg: ExtractConfig, step: StepCallback) -> ClipFeatures:
    stop = threading.Event()
    with ThreadPoolExecutor(1, thread_name_prefix="vidsim-frames") as pool:
        video = pool.submit(embed_video, info, encoder, extract_cfg, stop) if info.has_video else None
        try:
            audio = audio_seconds = None
            if wav is not None:
                step("audio")
                audio, audio_seconds = audio_rows(wav(), audio_cfg, info.path, extract_cfg.timeout_s)
            frames = None
            if video is not None:
                step("frames")
                frames = video.result()
        finally:
            stop.set()  # on an error here, the frame worker stops and kills its ffmpeg
    step("features")
    if audio is None and frames is None:
        raise media.MediaError(info.path, "no usable audio or video")
    return ClipFeatures(audio=audio, frames=frames, audio_seconds=audio_seconds)


def audio_rows(wav: Path, audio_cfg: AudioConfig, label: str | os.PathLike, timeout_s: float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The clip's 138 statistics and its per-window rows (pyAudioAnalysis, then log-mel), within
    `timeout_s` of wall clock (the limit an ffmpeg child gets)."""
    signal, rate = audio_features.read_wav(wav)
    deadline = time.monotonic() + timeout_s if timeout_s else None
    try:
        audio, seconds, _ = audio_features.audio_analysis(signal, rate, audio_cfg, deadline)
        if audio_cfg.mel_bands:
            seconds = np.concatenate([seconds, mel.window_stats(signal, rate, audio_cfg, len(seconds))], axis=1)
    except ValueError as exc:
        raise media.MediaError(label, str(exc)) from None
    return audio, seconds


def embed_video(info: media.MediaInfo, encoder: Encoder, extract_cfg: ExtractConfig,
                stop: threading.Event | None = None) -> np.ndarray:
    """(T, D) embeddings of the frames sampled at extract_cfg.frame_rate, embedded batch by batch
    while ffmpeg goes on decoding."""
    stop = stop or threading.Event()
    out, batch = [], []
    for frame in prefetch(media.iter_frames(info, encoder.info.image_size, extract_cfg),
                          2 * encoder.batch_size, stop):
        batch.append(frame)
        if len(batch) == encoder.batch_size:
            out.append(encoder.embed(np.stack(batch)))
            batch = []
    if stop.is_set():
        raise media.MediaError(info.path, "stopped")
    if batch:
        out.append(encoder.embed(np.stack(batch)))
    if not out:
        raise media.MediaError(info.path, "the video stream has no decodable frame")
    return np.concatenate(out)


def prefetch(items: Iterable[T], size: int, stop: threading.Event) -> Iterator[T]:
    """Iterate `items` on a background thread, up to `size` ahead of the consumer; its errors are
    raised here. Setting `stop`, or leaving the loop, ends the producer and closes its iterator."""
    q: queue.Queue = queue.Queue(maxsize=size)
    ended = threading.Event()
    done = object()

    def put(entry: tuple) -> bool:
        while not (ended.is_set() or stop.is_set()):
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = iter(items)
        try:
            for item in it:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put((done, exc))
        finally:
            close = getattr(it, "close", None)
            if close:
                close()

    thread = threading.Thread(target=produce, name="vidsim-decode", daemon=True)
    thread.start()
    try:
        while not stop.is_set():
            try:
                item, exc = q.get(timeout=0.1)
            except queue.Empty:
                continue
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        ended.set()
        thread.join()
