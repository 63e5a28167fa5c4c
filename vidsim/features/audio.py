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
    rate, signal = scipy.io.wavfile.read(path)
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


def audio_analysis(signal: np.ndarray, rate: int, cfg: AudioConfig
                   ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The clip statistics and the per-window (per-second by default) features they average.

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
    x = signal.astype(np.float64)
    mid, short, names = MidTermFeatures.mid_feature_extraction(
        x, rate,
        round(mid_window * rate), round(min(cfg.mid_step, mid_window) * rate),
        round(cfg.short_window * rate), round(cfg.short_step * rate),
    )
    # mid: (136, n_mid), short: (68, n_short)
    windows = np.nan_to_num(mid.T, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    stats = windows.mean(axis=0)
    bpm, ratio = MidTermFeatures.beat_extraction(short, cfg.short_step)
    vec = np.concatenate([stats, [bpm, ratio]]).astype(np.float32)
    vec = np.nan_to_num(vec, nan=0.0, posinf=0.0, neginf=0.0)
    return vec, windows, list(names) + list(BEAT_NAMES)


def feature_names(cfg: AudioConfig | None = None) -> list[str]:
    """The 138 names, in vector order (taken from pyAudioAnalysis itself, on a second of noise)."""
    rate = 8000
    noise = np.random.default_rng(0).integers(-1000, 1000, rate).astype(np.int16)
    return audio_features(noise, rate, cfg or AudioConfig())[1]
