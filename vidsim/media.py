"""The one module that runs ffmpeg and ffprobe: probe, decode audio to WAV, stream frames.

Every child gets `-nostdin`, only the `file` protocol, a wall-clock timeout that kills its whole
process group, and the input as a `file:` URL so that a name can never be read as an option,
a pattern or another protocol.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import ffmpeg
import numpy as np

log = logging.getLogger(__name__)

# Containers we decode, judged by ffprobe's format_name (never by the file name). Playlist and
# pattern demuxers (hls, concat, dash, image2, ...) are absent on purpose: they read other files.
ALLOWED_FORMATS: tuple[str, ...] = (
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpeg", "mpegts",
    "flv", "asf", "ogg", "wav", "mp3",
)


class MediaError(Exception):
    """A file that cannot be used, with the reason in words."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{Path(path).name}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    """What ffprobe says about a file."""

    path: str
    format_name: str
    duration: float  # seconds
    has_audio: bool
    has_video: bool
    width: int = 0
    height: int = 0


def tool(name: str) -> str:
    """Path of `ffmpeg` or `ffprobe`, with a clear error when the project's install step was skipped."""
    override = os.environ.get(f"VIDSIM_{name.upper()}")
    found = override or shutil.which(name)
    if not found:
        raise RuntimeError(
            f"{name} not found on PATH. Install it with `make install` (Debian package 'ffmpeg') "
            f"or set VIDSIM_{name.upper()} to its path."
        )
    return found


def _url(path: str | os.PathLike) -> str:
    return "file:" + str(Path(path).resolve())


def _allowed_demuxer(format_name: str) -> str | None:
    """The demuxer to force for a probed format, or None when the format is not accepted."""
    names = format_name.split(",")
    return names[0] if all(n in ALLOWED_FORMATS for n in names) else None


def run(args: Sequence[str], timeout: float, path: str | os.PathLike, stdout=None) -> bytes:
    """Run an ffmpeg/ffprobe command without a shell; kill its process group on timeout.

    Returns captured stdout (empty when `stdout` is a file object).
    """
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            list(args), stdin=subprocess.DEVNULL, stdout=stdout or subprocess.PIPE, stderr=err,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise MediaError(path, f"ffmpeg took longer than the {timeout:.0f} s limit") from None
        if proc.returncode != 0:
            err.seek(0)
            raise MediaError(path, _last_error(err.read()))
        return out or b""


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _last_error(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return "ffmpeg failed: " + (lines[-1][:300] if lines else "no message")


def probe(path: str | os.PathLike, timeout: float = 30.0, max_duration: float | None = None
          ) -> MediaInfo:
    """Read container and stream facts; raise MediaError for anything we cannot decode."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file")
    args = [
        tool("ffprobe"), "-v", "error", "-protocol_whitelist", "file",
        "-probesize", "20000000", "-analyzeduration", "20000000",
        "-show_format", "-show_streams", "-of", "json", _url(path),
    ]
    try:
        raw = run(args, timeout, path)
    except MediaError as exc:
        raise MediaError(path, "not a readable video (" + exc.reason.removeprefix("ffmpeg failed: ") + ")") from None
    info = json.loads(raw or b"{}")
    fmt = info.get("format", {})
    format_name = fmt.get("format_name", "")
    if not _allowed_demuxer(format_name):
        raise MediaError(path, f"container format '{format_name or 'unknown'}' is not accepted")
    streams = info.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video"
             and not s.get("disposition", {}).get("attached_pic")]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not video and not audio:
        raise MediaError(path, "no audio or video stream")
    duration = _float(fmt.get("duration")) or max(
        (_float(s.get("duration")) for s in video + audio), default=0.0)
    if duration <= 0:
        raise MediaError(path, "unknown or zero duration")
    if max_duration is not None and duration > max_duration:
        raise MediaError(path, f"{duration:.0f} s is over the {max_duration:.0f} s duration limit")
    return MediaInfo(
        path=str(path), format_name=format_name, duration=duration,
        has_audio=bool(audio), has_video=bool(video),
        width=int(video[0].get("width", 0)) if video else 0,
        height=int(video[0].get("height", 0)) if video else 0,
    )


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _input(info: MediaInfo) -> ffmpeg.nodes.FilterableStream:
    return ffmpeg.input(_url(info.path), f=_allowed_demuxer(info.format_name),
                        protocol_whitelist="file")


def _compile(stream) -> list[str]:
    return [tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error",
            *ffmpeg.compile(stream, cmd=[])]


def extract_audio(info: MediaInfo, wav_path: str | os.PathLike, sample_rate: int = 44100,
                  timeout: float = 300.0) -> None:
    """Decode the first audio stream to a mono 16-bit WAV (what pyAudioAnalysis expects)."""
    if not info.has_audio:
        raise MediaError(info.path, "no audio stream")
    wav_path = Path(wav_path)
    tmp = wav_path.with_name(wav_path.name + ".part")
    stream = ffmpeg.output(
        _input(info).audio, "file:" + str(tmp.resolve()), f="wav", acodec="pcm_s16le",
        ac=1, ar=sample_rate, t=f"{info.duration + 1:.3f}", map_metadata=-1,
    ).overwrite_output()
    try:
        run(_compile(stream), timeout, info.path)
        os.replace(tmp, wav_path)
    finally:
        tmp.unlink(missing_ok=True)


def iter_frames(info: MediaInfo, size: int, frame_rate: float = 1.0,
                timeout: float = 300.0) -> Iterator[np.ndarray]:
    """Yield RGB frames sampled at `frame_rate`, resized (short side) and centre-cropped to size.

    Frames are streamed through a pipe, never written to disk. Yields (size, size, 3) uint8.
    """
    if not info.has_video:
        raise MediaError(info.path, "no video stream")
    video = (
        _input(info).video
        .filter("fps", fps=frame_rate)
        .filter("scale", size, size, force_original_aspect_ratio="increase", flags="bicubic")
        .filter("crop", size, size)
    )
    stream = ffmpeg.output(video, "pipe:", f="rawvideo", pix_fmt="rgb24",
                           t=f"{info.duration + 1:.3f}")
    frame_bytes = size * size * 3
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(_compile(stream), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, start_new_session=True)
        timer = threading.Timer(timeout, _kill, args=(proc,))
        timer.start()
        try:
            while True:
                buf = proc.stdout.read(frame_bytes)
                if len(buf) < frame_bytes:
                    break
                yield np.frombuffer(buf, np.uint8).reshape(size, size, 3)
            proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                _kill(proc)
            proc.stdout.close()
        if proc.returncode != 0:
            err.seek(0)
            if proc.returncode < 0:
                raise MediaError(info.path, f"ffmpeg took longer than the {timeout:.0f} s limit")
            raise MediaError(info.path, _last_error(err.read()))


def thumbnail(info: MediaInfo, jpg_path: str | os.PathLike, width: int = 320,
              timeout: float = 60.0) -> None:
    """Write one JPEG frame from a second into the clip (or its middle, if shorter)."""
    if not info.has_video:
        raise MediaError(info.path, "no video stream")
    jpg_path = Path(jpg_path)
    tmp = jpg_path.with_name(jpg_path.name + ".part")
    at = min(1.0, info.duration / 2)
    stream = ffmpeg.output(
        ffmpeg.input(_url(info.path), f=_allowed_demuxer(info.format_name), ss=f"{at:.3f}",
                     protocol_whitelist="file").video.filter("scale", width, -2),
        "file:" + str(tmp.resolve()), f="mjpeg", vframes=1, q=4,
    ).overwrite_output()
    try:
        run(_compile(stream), timeout, info.path)
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise MediaError(info.path, "no frame to make a thumbnail from")
        os.replace(tmp, jpg_path)
    finally:
        tmp.unlink(missing_ok=True)


def run_graph(stream, timeout: float, label: str | os.PathLike) -> None:
    """Run an ffmpeg-python graph built elsewhere (the demo builder), under the same rules."""
    run(_compile(stream), timeout, label)
