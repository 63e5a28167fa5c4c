"""The only module that imports pyAudioAnalysis: 138 clip-level audio statistics.

pyAudioAnalysis takes windows in samples, a (features x windows) layout, and still calls
`numpy.Inf`/`numpy.NaN` (gone in NumPy 2) inside its peak detector. This adapter converts
seconds to samples, feeds int16 mono from a WAV that ffmpeg wrote (never its own MP3/OGG reader,
which uses the removed `np.fromstring`), and gives the peak detector a NumPy with those aliases.

Two things make it faster without changing a value: pyAudioAnalysis rebuilds the same chroma
mapping for every 50 ms frame (two thirds of its time), so that function is memoised; and it
imports matplotlib.pyplot for plots we never draw, so pyplot is loaded only if someone uses it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import threading
import time
import types

import numpy as np
import scipy.io.wavfile

from vidsim.config import AudioConfig


def _lazy_module(name: str) -> None:
    """Register `name` so that it is executed on first attribute access, not on import."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_lazy_module("matplotlib.pyplot")

from pyAudioAnalysis import MidTermFeatures, ShortTermFeatures, utilities  # noqa: E402

BEAT_NAMES: tuple[str, ...] = ("beat_bpm", "beat_ratio")


class _NumpyWithAliases(types.ModuleType):
    """numpy, plus the two aliases pyAudioAnalysis.utilities.peakdet still uses."""

    Inf = np.inf
    NaN = np.nan

    def __getattr__(self, name: str):
        return getattr(np, name)


# Scoped to pyAudioAnalysis' own module: the global numpy is left untouched.
utilities.numpy = _NumpyWithAliases("numpy")


def _read_only(fn):
    """Memoise a function of hashable arguments whose array results must not be modified."""
    cached = functools.lru_cache(maxsize=8)(fn)

    @functools.wraps(fn)
    def wrapper(*args):
        out = cached(*args)
        for a in out:
            a.flags.writeable = False
        return out

    return wrapper


# (num_fft, sampling_rate) -> the same two arrays for every frame of every clip.
if not hasattr(ShortTermFeatures.chroma_features_init, "__wrapped__"):
    ShortTermFeatures.chroma_features_init = _read_only(ShortTermFeatures.chroma_features_init)


def read_wav(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a WAV as mono int16 samples and its rate."""
    rate, signal = scipy.io.wavfile.read(path, mmap=True)  # mapped, not read: an hour is 300 MB
    if signal.ndim == 2:
        signal = signal.mean(axis=1).astype(np.int16)
    return signal, int(rate)


def audio_features(signal: np.ndarray, rate: int, cfg: AudioConfig) -> tuple[np.ndarray, list[str]]:
    """Mid-term feature means over the clip plus beat rate and confidence.

    Args:
        signal: (n,) int16 mono samples.
        rate: sampling rate in Hz.
        cfg: window sizes in seconds.

    Returns:
        (138,) float32 vector and its 138 names (68 short-term features x {mean, std} + 2 beat).
    """
    vec, _, names = audio_analysis(signal, rate, cfg)
    return vec, names


def audio_analysis(signal: np.ndarray, rate: int, cfg: AudioConfig, deadline: float | None = None
                   ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The clip statistics and the per-window (per-second by default) features they average.

    Audio longer than CHUNK_S is analysed a chunk at a time, so memory stays bounded (an hour took
    5.3 GB in one piece), and the work stops with a ValueError once `deadline` (time.monotonic()) passes.

    Returns:
        (138,) float32 clip vector, (T, 136) float32 mid-term features (one row per mid-term
        window), and the 138 names.
    """
    if signal.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {signal.shape}")
    seconds = len(signal) / rate
    if seconds < 4 * cfg.short_window:
        raise ValueError(f"audio too short: {seconds:.2f} s, need at least {4 * cfg.short_window:.2f} s")
    # A clip shorter than one mid-term window is summarised as a single window.
    mid_window = min(cfg.mid_window, seconds)
    args = (round(mid_window * rate), round(min(cfg.mid_step, mid_window) * rate),
            round(cfg.short_window * rate), round(cfg.short_step * rate))
    if _chunkable(args) and len(signal) > CHUNK_S * rate + args[0]:
        mid, short, names = _chunked(signal, rate, *args, deadline)
    else:
        mid, short, names = MidTermFeatures.mid_feature_extraction(signal.astype(np.float64), rate, *args)
    # mid: (136, n_mid), short: (68, n_short)
    windows = np.nan_to_num(mid.T, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    stats = windows.mean(axis=0)
    bpm, ratio = MidTermFeatures.beat_extraction(short, cfg.short_step)
    vec = np.concatenate([stats, [bpm, ratio]]).astype(np.float32)
    vec = np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0)
    return vec, windows, list(names) + list(BEAT_NAMES)


CHUNK_S = 60  # seconds of audio that pyAudioAnalysis analyses at a time
BLOCK = 1 << 20  # samples converted to float64 at a time for the whole signal's mean and peak


class _Skip(threading.local):
    dc_normalize = False


_SKIP = _Skip()
_dc_normalize = ShortTermFeatures.dc_normalize


def _dc_normalize_unless_done(sig_array: np.ndarray) -> np.ndarray:
    """pyAudioAnalysis' own, except inside `_chunked` (this thread only), which normalised the whole
    signal already: per chunk it would use each chunk's mean and peak."""
    return sig_array if _SKIP.dc_normalize else _dc_normalize(sig_array)


ShortTermFeatures.dc_normalize = _dc_normalize_unless_done


def _chunkable(args: tuple[int, int, int, int]) -> bool:
    """Chunks line up with pyAudioAnalysis' windows when mid windows neither overlap nor leave gaps
    and hold a whole number of non-overlapping short windows."""
    mid_window, mid_step, short_window, short_step = args
    return mid_window == mid_step and short_window == short_step and mid_step % short_step == 0


def _chunked(signal: np.ndarray, rate: int, mid_window: int, mid_step: int, short_window: int,
             short_step: int, deadline: float | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """mid_feature_extraction over chunks of CHUNK_S seconds, each led by one extra mid window
    whose features are dropped: every kept short window then has its predecessor (spectral flux
    and deltas depend on it), and the normalisation is the whole signal's, as pyAudioAnalysis does
    it (the same values up to the summation order of the mean)."""
    scale = 2.0 ** 15  # pyAudioAnalysis divides by it; multiplying back is exact (a power of two)
    blocks = range(0, len(signal), BLOCK)
    mean = sum(float(signal[i:i + BLOCK].astype(np.float64).sum()) for i in blocks) / len(signal) / scale
    peak = max(float(np.abs(signal[i:i + BLOCK].astype(np.float64) / scale - mean).max()) for i in blocks) + 1e-10
    step = CHUNK_S * rate // mid_step * mid_step
    mids, shorts, names = [], [], []
    for start in range(0, len(signal), step):
        if deadline is not None and time.monotonic() > deadline:
            raise ValueError("the audio analysis took longer than its time limit")
        lead = mid_step if start else 0
        end = len(signal) if start + step >= len(signal) else start + step
        chunk = (signal[start - lead:end].astype(np.float64) / scale - mean) / peak * scale
        _SKIP.dc_normalize = True
        try:
            mid, short, names = MidTermFeatures.mid_feature_extraction(
                chunk, rate, mid_window, mid_step, short_window, short_step)
        finally:
            _SKIP.dc_normalize = False
        skip = 1 if lead else 0
        mids.append(mid[:, skip:])
        shorts.append(short[:, skip * (mid_step // short_step):])
        if end == len(signal):
            break
    return np.concatenate(mids, axis=1), np.concatenate(shorts, axis=1), names


def feature_names(cfg: AudioConfig | None = None) -> list[str]:
    """The 138 names, in vector order (taken from pyAudioAnalysis itself, on a second of noise)."""
    rate = 8000
    noise = np.random.default_rng(0).integers(-1000, 1000, rate).astype(np.int16)
    return audio_features(noise, rate, cfg or AudioConfig())[1]
