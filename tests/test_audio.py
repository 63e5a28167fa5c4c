import numpy as np
import pytest

from vidsim.config import AudioConfig
from vidsim.features.audio import audio_analysis, audio_features, feature_names, read_wav


def test_tone_gives_138_named_values(tone):
    signal, rate = tone
    vec, names = audio_features(signal, rate, AudioConfig())
    assert vec.shape == (138,) and vec.dtype == np.float32
    assert len(names) == 138 and names == feature_names()
    assert names[:2] == ["zcr_mean", "energy_mean"] and names[-2:] == ["beat_bpm", "beat_ratio"]
    assert np.isfinite(vec).all()
    feat = dict(zip(names, vec))
    # a sine crosses zero twice a period: 2 * 440 / 44100 per sample
    assert feat["zcr_mean"] == pytest.approx(2 * 440 / rate, rel=0.02)
    # pyAudioAnalysis normalises to peak 1, so a sine's mean energy is 1/2, and steady
    assert feat["energy_mean"] == pytest.approx(0.5, rel=0.01)
    assert feat["energy_std"] < 0.01


def test_numpy_is_left_without_removed_aliases(tone):
    audio_features(*tone, AudioConfig())  # beat extraction uses Inf/NaN inside pyAudioAnalysis
    assert not hasattr(np, "Inf") or np.__version__.startswith("1.")


def test_short_clip_has_finite_features(tone):
    signal, rate = tone
    vec, _ = audio_features(signal[: int(0.3 * rate)], rate, AudioConfig())
    assert vec.shape == (138,) and np.isfinite(vec).all()


def test_too_short_signal_is_refused(tone):
    signal, rate = tone
    with pytest.raises(ValueError, match="audio too short"):
        audio_features(signal[:100], rate, AudioConfig())


def test_read_wav_mixes_stereo_to_mono(tmp_path, tone):
    import scipy.io.wavfile

    signal, rate = tone
    scipy.io.wavfile.write(tmp_path / "s.wav", rate, np.stack([signal, signal], axis=1))
    mono, r = read_wav(tmp_path / "s.wav")
    assert r == rate and mono.shape == signal.shape and mono.dtype == np.int16


def test_log_mel_window_stats_peak_at_the_tone(tone):
    import librosa

    from vidsim.features import mel

    signal, rate = tone
    cfg = AudioConfig()
    _, windows, _ = audio_analysis(signal, rate, cfg)
    rows = mel.window_stats(signal, rate, cfg, len(windows))
    assert rows.shape == (len(windows), 3 * cfg.mel_bands) == (3, 192) and rows.dtype == np.float32
    assert len(mel.names(cfg)) == rows.shape[1]
    means = rows[:, : cfg.mel_bands]
    centres = librosa.mel_frequencies(cfg.mel_bands + 2, fmin=mel.FMIN, fmax=rate / 2)[1:-1]
    loudest = centres[means.argmax(axis=1)]
    assert np.all(np.abs(loudest - 440) < 60)  # the 440 Hz band, in every second
    flux = rows[:, 2 * cfg.mel_bands:]
    assert flux[:, means[0].argmax()].max() < 1.0  # a steady tone barely changes


def test_clip_featurize_audio_rows_are_pyaudioanalysis_and_log_mel(tmp_path, tone):
    import scipy.io.wavfile

    from vidsim import media
    from vidsim.clip import featurize
    from vidsim.config import ExtractConfig

    signal, rate = tone
    scipy.io.wavfile.write(tmp_path / "a.wav", rate, signal)
    info = media.MediaInfo(path=str(tmp_path / "a.wav"), format_name="wav", duration=3.0,
                           has_audio=True, has_video=False)
    feats = featurize(info, tmp_path / "a.wav", encoder=None, audio_cfg=AudioConfig(),
                      extract_cfg=ExtractConfig())
    assert feats.frames is None and feats.audio.shape == (138,)
    assert feats.audio_seconds.shape == (3, 136 + 3 * 64)
    np.testing.assert_allclose(feats.audio_seconds[:, :136].mean(axis=0), feats.audio[:136], rtol=1e-5)
    off = featurize(info, tmp_path / "a.wav", None, AudioConfig(mel_bands=0), ExtractConfig())
    assert off.audio_seconds.shape == (3, 136)


def _music(seconds: float = 4.0, rate: int = 44100) -> np.ndarray:
    """A chord with a beat and some noise: every feature has something to measure."""
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * rate)) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 1760.0))
    beat = (np.sin(2 * np.pi * 2 * t) > 0.9) * rng.normal(0, 1.0, len(t))
    x = 0.2 * chord + 0.3 * beat + 0.02 * rng.normal(size=len(t))
    return (x / np.abs(x).max() * 20000).astype(np.int16)


def test_memoised_chroma_keeps_pyaudioanalysis_values_exactly():
    """The adapter memoises pyAudioAnalysis' chroma set-up; its 138 values and windows stay the same."""
    from pyAudioAnalysis import ShortTermFeatures

    signal, cfg = _music(), AudioConfig()
    memo_vec, memo_windows, _ = audio_analysis(signal, 44100, cfg)
    cached = ShortTermFeatures.chroma_features_init
    assert hasattr(cached, "__wrapped__")
    ShortTermFeatures.chroma_features_init = cached.__wrapped__  # pyAudioAnalysis' own function
    try:
        vec, windows, _ = audio_analysis(signal, 44100, cfg)
    finally:
        ShortTermFeatures.chroma_features_init = cached
    np.testing.assert_array_equal(memo_vec, vec)
    np.testing.assert_array_equal(memo_windows, windows)


@pytest.mark.slow
def test_log_mel_is_librosas():
    """The NumPy log-mel (no librosa import on the query path) equals librosa's melspectrogram."""
    import librosa

    from vidsim.features import mel

    signal, rate = _music(), 44100
    np.testing.assert_allclose(mel.filterbank(rate, mel.N_FFT, 64, mel.FMIN),
                               librosa.filters.mel(sr=rate, n_fft=mel.N_FFT, n_mels=64, fmin=mel.FMIN),
                               atol=1e-7)
    power = librosa.feature.melspectrogram(y=signal.astype(np.float32) / 32768.0, sr=rate, n_fft=mel.N_FFT,
                                           hop_length=mel.HOP, n_mels=64, fmin=mel.FMIN, center=True)
    ref = librosa.power_to_db(power, ref=1.0, top_db=None)
    ours = mel.log_mel(signal, rate, 64)
    assert ours.shape == ref.shape and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=0.02)  # dB
