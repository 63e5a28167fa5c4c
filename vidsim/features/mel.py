"""Log-mel spectrogram statistics per analysis window.

pyAudioAnalysis describes each second with 34 short-term features (13 MFCCs, chroma, spectral
shape) and their spread; a 64-band log-mel spectrum keeps the timbre detail the 13 MFCCs fold
away, which is what tells apart tracks of one style (measured in README, "What moved the figures").

The spectrogram is librosa's `melspectrogram` (Slaney mel scale and normalisation, periodic Hann
window, centred zero-padded frames) written out in NumPy and computed in blocks: importing librosa
costs about 1.1 s (numba) on every cold `vidsim query`, and librosa holds the whole linear
spectrogram in memory (2.5 GB for an hour of audio). tests/test_audio.py checks it against
librosa itself.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from vidsim.config import AudioConfig

N_FFT = 2048  # samples per spectrum frame (46 ms at 44.1 kHz)
HOP = 512  # samples between frames
FMIN = 30.0  # Hz: below this, music videos hold rumble, not music
BLOCK = 2048  # spectrum frames per block (16 MB of spectrum at a time)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    log_part = 15.0 + np.log(np.maximum(f, 1000.0) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, f * 3.0 / 200.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), m * 200.0 / 3.0)


@functools.cache
def filterbank(rate: int, n_fft: int, bands: int, fmin: float) -> np.ndarray:
    """(bands, n_fft // 2 + 1) float32 triangular filters, area-normalised (Slaney), up to rate / 2."""
    fft_hz = np.linspace(0, rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(rate / 2), bands + 2))
    ramps = edges[:, None] - fft_hz[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    weights.flags.writeable = False
    return weights.astype(np.float32)


def log_mel(signal: np.ndarray, rate: int, bands: int) -> np.ndarray:
    """(bands, frames) float32 log-mel power in dB (ref 1, floor 1e-10), one frame per HOP samples.

    Args:
        signal: (n,) int16 mono samples.
    """
    padded = np.pad(signal, N_FFT // 2)  # int16: samples become float32 a block at a time
    frames = sliding_window_view(padded, N_FFT)[::HOP]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    fb = filterbank(rate, N_FFT, bands, FMIN)
    out = np.empty((bands, len(frames)), np.float32)
    for start in range(0, len(frames), BLOCK):
        block = frames[start:start + BLOCK].astype(np.float32) / 32768.0
        spec = scipy.fft.rfft(block * window, axis=1)  # float32 in, complex64 out
        out[:, start:start + BLOCK] = fb @ (spec.real ** 2 + spec.imag ** 2).T.astype(np.float32)
    return 10.0 * np.log10(np.maximum(out, 1e-10))


def window_stats(signal: np.ndarray, rate: int, cfg: AudioConfig, n_windows: int) -> np.ndarray:
    """Mean, standard deviation and mean absolute change (flux) of each log-mel band in each of
    the `n_windows` mid-term windows (cfg.mid_window long, every cfg.mid_step seconds).

    Args:
        signal: (n,) int16 mono samples.

    Returns:
        (n_windows, 3 * cfg.mel_bands) float32.
    """
    logmel = log_mel(signal, rate, cfg.mel_bands)  # (bands, frames)
    times = np.arange(logmel.shape[1]) * HOP / rate  # centre of each frame, seconds
    window = min(cfg.mid_window, len(signal) / rate)
    rows = []
    for i in range(n_windows):
        start = i * cfg.mid_step
        block = logmel[:, (times >= start) & (times < start + window)]
        if block.shape[1] == 0:
            block = logmel
        flux = np.abs(np.diff(block, axis=1)).mean(axis=1) if block.shape[1] > 1 else np.zeros(len(block))
        rows.append(np.concatenate([block.mean(axis=1), block.std(axis=1), flux]))
    return np.asarray(rows, np.float32).reshape(n_windows, 3 * cfg.mel_bands)


def names(cfg: AudioConfig) -> list[str]:
    """Column names of `window_stats`, in order."""
    return [f"mel{b:02d}_{stat}" for stat in ("mean", "std", "flux") for b in range(cfg.mel_bands)]
