"""Shared fixtures: tiny clips made by ffmpeg's own test sources, in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import ffmpeg
import numpy as np
import pytest

from vidsim import media


def make_clip(path: Path, seconds: float, audio: bool = True, video: bool = True,
              freq: int = 440, size: str = "160x120", rate: int = 25) -> Path:
    """Write an H.264/AAC MP4 with a test pattern and/or a tone."""
    streams, opts = [], {}
    if video:
        streams.append(ffmpeg.input(f"testsrc2=size={size}:rate={rate}:duration={seconds}", f="lavfi"))
        opts.update(vcodec="libx264", preset="ultrafast", pix_fmt="yuv420p")
    if audio:
        streams.append(ffmpeg.input(f"sine=frequency={freq}:sample_rate=44100:duration={seconds}",
                                    f="lavfi"))
        opts.update(acodec="aac")
    media.run_graph(ffmpeg.output(*streams, str(path), t=seconds, **opts).overwrite_output(), 60, path)
    return path


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "av5": make_clip(d / "av5.mp4", 5),
        "audio_only": make_clip(d / "audio_only.mp4", 3, video=False),
        "video_only": make_clip(d / "video_only.mp4", 3, audio=False),
    }


@pytest.fixture
def tone() -> tuple[np.ndarray, int]:
    """3 s of a 440 Hz sine at half scale, int16 mono 44.1 kHz."""
    rate = 44100
    t = np.arange(3 * rate) / rate
    return (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), rate
