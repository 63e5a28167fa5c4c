import numpy as np
import pytest

from vidsim import media
from vidsim.config import ExtractConfig
from vidsim.features.audio import read_wav


@pytest.mark.slow
def test_probe_reads_streams_and_duration(clips):
    info = media.probe(clips["av5"])
    assert info.has_audio and info.has_video
    assert info.duration == pytest.approx(5.0, abs=0.1)
    assert (info.width, info.height) == (160, 120)
    assert "mp4" in info.format_name


@pytest.mark.slow
def test_one_frame_per_second(clips):
    info = media.probe(clips["av5"])
    frames = list(media.iter_frames(info, size=64))
    assert len(frames) == 5
    assert frames[0].shape == (64, 64, 3) and frames[0].dtype == np.uint8
    assert not np.array_equal(frames[0], frames[-1])  # testsrc2 moves


@pytest.mark.slow
def test_audio_is_mono_44k_int16(clips, tmp_path):
    info = media.probe(clips["av5"])
    media.extract_audio(info, tmp_path / "a.wav")
    signal, rate = read_wav(tmp_path / "a.wav")
    assert rate == 44100 and signal.dtype == np.int16 and signal.ndim == 1
    assert len(signal) / rate == pytest.approx(5.0, abs=0.1)
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.slow
def test_missing_streams_are_reported(clips):
    a = media.probe(clips["audio_only"])
    v = media.probe(clips["video_only"])
    assert (a.has_audio, a.has_video) == (True, False)
    assert (v.has_audio, v.has_video) == (False, True)
    with pytest.raises(media.MediaError, match="no video stream"):
        list(media.iter_frames(a, 32))


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (np.random.default_rng(0).bytes(4096), "not a readable video"),
    (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" * 50, "not a readable video|not accepted"),
])
@pytest.mark.slow
def test_bad_files_get_a_named_error(tmp_path, content, reason):
    bad = tmp_path / "bad clip.mp4"
    bad.write_bytes(content)
    with pytest.raises(media.MediaError, match=reason) as err:
        media.probe(bad)
    assert str(err.value).startswith("bad clip.mp4: ")


@pytest.mark.slow
def test_playlist_formats_are_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("canary")
    playlist = tmp_path / "clip.mp4"
    playlist.write_text(f"ffconcat version 1.0\nfile '{secret}'\n")
    with pytest.raises(media.MediaError, match="not accepted|not a readable video"):
        media.probe(playlist)


@pytest.mark.slow
def test_duration_limit(clips):
    with pytest.raises(media.MediaError, match="over the 2 s duration limit"):
        media.probe(clips["av5"], ExtractConfig(max_duration_s=2))


@pytest.mark.slow
@pytest.mark.parametrize("fps", [25, 30000 / 1001])
def test_each_sampled_frame_is_within_half_a_second_of_its_mark(tmp_path, fps):
    """1 fps sampling keeps one frame per second, each shown within 0.5 s of second k."""
    import ffmpeg

    # every frame is a little brighter than the one before: brightness tells the frame's time
    src = ffmpeg.input(f"color=c=black:s=64x64:r={fps}:d=10", f="lavfi").filter("geq", lum="20*T", cb=128, cr=128)
    path = tmp_path / "clock.mp4"
    media.run_graph(ffmpeg.output(src, str(path), vcodec="libx264", preset="ultrafast", qp=0, g=250, bf=3,
                                  pix_fmt="yuv420p").overwrite_output(), 60, path)
    info = media.probe(path)
    every = np.array([f.astype(float).mean() for f in media.iter_frames(info, 32, ExtractConfig(frame_rate=fps))])
    assert len(every) == round(10 * fps)
    sampled = np.array([f.astype(float).mean() for f in media.iter_frames(info, size=32)])
    assert len(sampled) == 10
    shown_at = np.array([np.abs(every - b).argmin() / fps for b in sampled])  # seconds
    assert np.all(np.abs(shown_at - np.arange(10)) <= 0.5), shown_at


@pytest.mark.slow
def test_thumbnail_is_a_representative_frame_not_the_first(tmp_path):
    """A clip that opens on 2 s of black: its thumbnail is a frame of what fills the rest."""
    import subprocess

    from PIL import Image

    clip = tmp_path / "opens-black.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=black:s=160x90:d=2:r=10",
                    "-f", "lavfi", "-i", "testsrc=s=160x90:d=8:r=10", "-filter_complex",
                    "[0][1]concat=n=2:v=1:a=0", "-pix_fmt", "yuv420p", str(clip)], check=True)
    media.thumbnail(media.probe(clip), tmp_path / "thumb.jpg")
    picture = np.asarray(Image.open(tmp_path / "thumb.jpg").convert("L"))
    assert picture.shape == (180, 320)
    assert picture.std() > 30, picture.std()  # testsrc's colour bars, not black
