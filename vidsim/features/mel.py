"""Log-mel spectrogram statistics per analysis window (the only module that imports librosa).

pyAudioAnalysis describes each second with 34 short-term features (13 MFCCs, chroma, spectral
shape) and their spread; a 64-band log-mel spectrum keeps the timbre detail the 13 MFCCs fold
away, which is what tells apart tracks of one style (measured in README, "What moved the figures").
librosa compiles some of its helpers with numba on first use in a process (about 1.5 s here).
"""

from __future__ import annotations

import numpy as np

from vidsim.config import AudioConfig

N_FFT = 2048  # samples per spectrum frame (46 ms at 44.1 kHz)
HOP = 512  # samples between frames
FMIN = 30.0  # Hz: below this, music videos hold rumble, not music


def window_stats(signal: np.ndarray, rate: int, cfg: AudioConfig, n_windows: int) -> np.ndarray:
    """Mean, standard deviation and mean absolute change (flux) of each log-mel band in each of
    the `n_windows` mid-term windows (cfg.mid_window long, every cfg.mid_step seconds).

    Args:
        signal: (n,) int16 mono samples.

    Returns:
        (n_windows, 3 * cfg.mel_bands) float32.
    """
    import librosa  # imported here: its import and numba warm-up are paid only when features are made

    y = signal.astype(np.float32) / 32768.0
    power = librosa.feature.melspectrogram(y=y, sr=rate, n_fft=N_FFT, hop_length=HOP, n_mels=cfg.mel_bands,
                                           fmin=FMIN, center=True)
    logmel = librosa.power_to_db(power, ref=1.0, top_db=None).astype(np.float32)  # (bands, frames)
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
