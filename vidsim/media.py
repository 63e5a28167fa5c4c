"""The one module that runs ffmpeg and ffprobe: probe, decode audio to WAV, stream frames.

Media files are untrusted. Every child runs without a shell, with `-nostdin`, only the `file`
protocol, an allow-list of container formats (playlist and pattern demuxers such as hls, dash,
concat and image2 can make ffmpeg read other files), the input as a descriptor vidsim opened,
`file:/dev/fd/N` (a name is never read as an option, a pattern or another protocol), a memory limit
(prlimit) and a wall-clock timeout that kills its whole process group. Probing refuses files over
the limits, decoding work included; decoding forces the demuxer the probe found, reads the chosen
streams only and stops at the probed duration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np

from vidsim.config import ExtractConfig

log = logging.getLogger(__name__)

# Demuxers we accept, judged on the content (ffprobe's format_name), never on the file name.
ALLOWED_FORMATS: tuple[str, ...] = (
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpeg", "mpegts",
    "flv", "asf", "ogg", "wav", "mp3",
)
FORMAT_WHITELIST = ",".join(ALLOWED_FORMATS)
DEFAULT = ExtractConfig()


class MediaError(Exception):
    """A file that cannot be used, with the reason in words."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{Path(path).name}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):  # travels between processes (Ray workers) with both fields
        return (type(self), (self.path, self.reason))


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
    fps: float = 0.0
    audio_stream: int = -1  # the stream decoded for sound: the default audio track, else the first
    video_stream: int = -1  # the first video stream that is not cover art; -1: the first video


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


@contextlib.contextmanager
def _source(path: str | os.PathLike) -> Iterator[tuple[str, int]]:
    """Open the file here and hand ffmpeg `file:/dev/fd/N`, an inherited descriptor of it.

    A name is never parsed by ffmpeg (nor by ffmpeg-python, which cannot hash a name that is not
    UTF-8), and ffmpeg reads the very file opened here even if the name is swapped for a link or
    another file meanwhile. Yields (url, fd); the fd goes to the child through `pass_fds`.
    """
    try:  # non-blocking: a name swapped for a FIFO cannot hang the open
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise MediaError(path, f"cannot open: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MediaError(path, "not a regular file")
        os.set_blocking(fd, True)
        yield f"file:/dev/fd/{fd}", fd
    finally:
        os.close(fd)


def _allowed_demuxer(format_name: str) -> str | None:
    """The demuxer to force for a probed format, or None when the format is not accepted."""
    names = format_name.split(",")
    return names[0] if format_name and all(n in ALLOWED_FORMATS for n in names) else None


def _limited(args: Sequence[str], cfg: ExtractConfig) -> list[str]:
    """Wrap a command in prlimit (memory and CPU time), safe to use from a threaded server."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        log.warning("prlimit not found: ffmpeg runs without a memory limit")
        return list(args)
    memory = int(cfg.max_memory_mb) * 1024 * 1024
    cpu = int(max(cfg.timeout_s, cfg.probe_timeout_s) * 4)
    return [prlimit, f"--as={memory}", f"--cpu={cpu}", "--", *args]


def run(args: Sequence[str], timeout: float, path: str | os.PathLike, fds: Sequence[int] = ()) -> bytes:
    """Run an ffmpeg/ffprobe command; kill its process group on timeout. Returns its stdout.

    `fds` are descriptors the child inherits (see `_source`)."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
            start_new_session=True, pass_fds=tuple(fds),
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise MediaError(path, f"ffmpeg took longer than the {timeout:.0f} s limit") from None
        except BaseException:
            _kill(proc)
            raise
        if proc.returncode != 0:
            err.seek(0)
            raise MediaError(path, _describe_failure(proc.returncode, err.read(), path))
        return out or b""


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _describe_failure(returncode: int, stderr: bytes, path: str | os.PathLike) -> str:
    """ffmpeg's own words, without its log prefixes or our server-side paths."""
    text = stderr.decode("utf-8", "replace")
    if "Format not on whitelist" in text:
        demuxer = text.split("[", 1)[-1].split(" @", 1)[0] if "[" in text else "unknown"
        return f"container format '{demuxer}' is not accepted"
    if returncode in (-signal.SIGKILL, -signal.SIGXCPU) or "Cannot allocate memory" in text:
        return "ffmpeg went over its memory or CPU limit"
    lines = []
    for line in text.splitlines():
        line = re.sub(r"\[[^\]]* @ 0x[0-9a-f]+\] ", "", line.strip())  # "[SWR @ 0x55...] ": heap addresses
        line = re.sub(r"file:/dev/fd/\d+: ", "", line).replace(str(path), Path(path).name)
        if line and line not in lines:
            lines.append(line)
    return "ffmpeg failed: " + ("; ".join(lines)[:300] if lines else f"exit status {returncode}")


def probe(path: str | os.PathLike, cfg: ExtractConfig = DEFAULT) -> MediaInfo:
    """Read container and stream facts and apply the limits; raise MediaError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(path, "empty file")
    check_size(path, size, cfg)
    try:
        with _source(path) as (url, fd):
            args = [
                tool("ffprobe"), "-v", "error", "-protocol_whitelist", "file",
                "-format_whitelist", FORMAT_WHITELIST,
                "-probesize", "20000000", "-analyzeduration", "20000000",
                "-show_format", "-show_streams", "-of", "json", url,
            ]
            raw = run(_limited(args, cfg), cfg.probe_timeout_s, path, (fd,))
    except MediaError as exc:
        if "not accepted" in exc.reason or "limit" in exc.reason:
            raise
        raise MediaError(path, "not a readable video (" + exc.reason.removeprefix("ffmpeg failed: ") + ")") from None
    info = json.loads(raw or b"{}")
    fmt = info.get("format", {})
    format_name = fmt.get("format_name", "")
    if not _allowed_demuxer(format_name):
        raise MediaError(path, f"container format '{format_name or 'unknown'}' is not accepted")
    streams = info.get("streams", [])
    if len(streams) > cfg.max_streams:
        raise MediaError(path, f"{len(streams)} streams is over the {cfg.max_streams} stream limit")
    video = [s for s in streams if s.get("codec_type") == "video"
             and not s.get("disposition", {}).get("attached_pic")]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not video and not audio:
        raise MediaError(path, "no audio or video stream")
    duration = _float(fmt.get("duration")) or max(
        (_float(s.get("duration")) for s in video + audio), default=0.0)
    if duration <= 0:
        raise MediaError(path, "unknown or zero duration")
    if duration > cfg.max_duration_s:
        raise MediaError(path, f"{duration:.0f} s is over the {cfg.max_duration_s:.0f} s duration limit")
    width = int(video[0].get("width", 0)) if video else 0
    height = int(video[0].get("height", 0)) if video else 0
    if width * height > cfg.max_pixels:
        raise MediaError(path, f"frame size {width}x{height} is over the {cfg.max_pixels} pixel limit")
    fps = _rate(video[0].get("avg_frame_rate")) or _rate(video[0].get("r_frame_rate")) if video else 0.0
    if fps > cfg.max_fps:
        raise MediaError(path, f"frame rate {fps:.0f} fps is over the {cfg.max_fps:.0f} fps limit")
    if video:  # the work, not each dimension alone: every frame is decoded, sampled or not
        claimed = max(fps, _rate(video[0].get("r_frame_rate")))
        work = decode_gigapixels(width, height, claimed, duration)
        if work > cfg.max_decode_gpix:
            raise MediaError(path, f"decoding it means {work:,.0f} gigapixels ({width}x{height} at {claimed:.0f} fps "
                                   f"for {duration:.0f} s), over the {cfg.max_decode_gpix:,.0f} gigapixel budget")
    default_audio = [s for s in audio if s.get("disposition", {}).get("default")]
    return MediaInfo(path=str(path), format_name=format_name, duration=duration,
                     has_audio=bool(audio), has_video=bool(video), width=width, height=height, fps=fps,
                     audio_stream=int((default_audio or audio)[0].get("index", -1)) if audio else -1,
                     video_stream=int(video[0].get("index", -1)) if video else -1)


def check_size(path: str | os.PathLike, size: int, cfg: ExtractConfig = DEFAULT) -> None:
    """MediaError when a file of `size` bytes is over the file size limit."""
    if size > cfg.max_file_mb * 1024 * 1024:
        raise MediaError(path, f"{size / 2**20:.0f} MB is over the {cfg.max_file_mb:.0f} MB file size limit")


def decode_gigapixels(width: int, height: int, fps: float, seconds: float) -> float:
    """Pixels a decoder produces for the whole stream, in billions (about 3 s of one core each)."""
    return width * height * fps * seconds / 1e9


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _rate(value) -> float:
    try:
        return float(Fraction(str(value)))
    except (ValueError, ZeroDivisionError):
        return 0.0


def _input(info: MediaInfo, url: str, cfg: ExtractConfig, **kwargs) -> ffmpeg.nodes.FilterableStream:
    demuxer = _allowed_demuxer(info.format_name)
    if demuxer is None:
        raise MediaError(info.path, f"container format '{info.format_name or 'unknown'}' is not accepted")
    return ffmpeg.input(url, f=demuxer, protocol_whitelist="file",
                        format_whitelist=FORMAT_WHITELIST, max_pixels=cfg.max_pixels, **kwargs)


def _stream(source, index: int, kind: str):
    """One stream of an input: by its probed index, else the first of its kind ("a" or "v")."""
    return source[str(index)] if index >= 0 else source[f"{kind}:0"]


def _compile(stream, cfg: ExtractConfig) -> list[str]:
    return _limited([tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error",
                     *ffmpeg.compile(stream, cmd=[])], cfg)


def _until(info: MediaInfo) -> str:
    # headers can lie: never decode past the probed duration (plus a little slack)
    return f"{info.duration + 1:.3f}"


def extract_audio(info: MediaInfo, wav_path: str | os.PathLike, cfg: ExtractConfig = DEFAULT) -> None:
    """Decode the first audio stream to a mono 16-bit WAV at cfg.sample_rate."""
    if not info.has_audio:
        raise MediaError(info.path, "no audio stream")
    wav_path = Path(wav_path)
    tmp = wav_path.with_name(wav_path.name + ".part")
    try:
        with _source(info.path) as (url, fd):
            stream = ffmpeg.output(
                _stream(_input(info, url, cfg), info.audio_stream, "a"), "file:" + str(tmp.resolve()),
                f="wav", acodec="pcm_s16le", ac=1, ar=cfg.sample_rate, t=_until(info), map_metadata=-1,
            ).overwrite_output()
            run(_compile(stream, cfg), cfg.timeout_s, info.path, (fd,))
        os.replace(tmp, wav_path)
    finally:
        tmp.unlink(missing_ok=True)


def iter_frames(info: MediaInfo, size: int, cfg: ExtractConfig = DEFAULT) -> Iterator[np.ndarray]:
    """Yield RGB frames sampled at cfg.frame_rate, resized (short side) and centre-cropped.

    Frames are streamed through a pipe, never written to disk; rotation metadata is applied.
    Yields (size, size, 3) uint8.
    """
    if not info.has_video:
        raise MediaError(info.path, "no video stream")
    # a clip shorter than one sampling period still gives one frame
    rate = max(cfg.frame_rate, 1.0 / max(info.duration, 1e-3))
    with _source(info.path) as (url, fd):
        yield from _frames(info, url, fd, rate, size, cfg)


def _frames(info: MediaInfo, url: str, fd: int, rate: float, size: int, cfg: ExtractConfig
            ) -> Iterator[np.ndarray]:
    video = (
        _stream(_input(info, url, cfg), info.video_stream, "v")
        .filter("fps", fps=f"{rate:.6f}")
        .filter("scale", size, size, force_original_aspect_ratio="increase", flags="bicubic")
        .filter("crop", size, size)
    )
    stream = ffmpeg.output(video, "pipe:", f="rawvideo", pix_fmt="rgb24", t=_until(info))
    frame_bytes = size * size * 3
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(_compile(stream, cfg), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err, start_new_session=True, pass_fds=(fd,))
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            _kill(proc)

        timer = threading.Timer(cfg.timeout_s, expire)
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
        if timed_out.is_set():
            raise MediaError(info.path, f"ffmpeg took longer than the {cfg.timeout_s:.0f} s limit")
        if proc.returncode != 0:
            err.seek(0)
            raise MediaError(info.path, _describe_failure(proc.returncode, err.read(), info.path))


def thumbnail(info: MediaInfo, jpg_path: str | os.PathLike, cfg: ExtractConfig = DEFAULT,
              width: int = 320, stretch_s: float = 20.0, candidates: int = 10) -> None:
    """Write the clip's most representative frame as a JPEG: of `candidates` frames spread over
    the middle `stretch_s` seconds (the whole of a shorter clip), the one closest to their average
    colour histogram (ffmpeg's `thumbnail` filter), not a fade-in, a title card or a flat first
    frame. The decoding it costs is bounded by the stretch, whatever the clip's length."""
    if not info.has_video:
        raise MediaError(info.path, "no video stream")
    jpg_path = Path(jpg_path)
    tmp = jpg_path.with_name(jpg_path.name + ".part")
    span = min(stretch_s, info.duration) if info.duration > 0 else stretch_s
    at = max(0.0, info.duration / 2 - span / 2)
    try:
        with _source(info.path) as (url, fd):
            video = (_stream(_input(info, url, cfg, ss=f"{at:.3f}", t=f"{span:.3f}"), info.video_stream, "v")
                     .filter("fps", f"{candidates / span:.6f}")
                     .filter("thumbnail", candidates)
                     .filter("scale", width, -2))
            stream = ffmpeg.output(video, "file:" + str(tmp.resolve()), f="mjpeg", vframes=1, q=4).overwrite_output()
            run(_compile(stream, cfg), cfg.probe_timeout_s, info.path, (fd,))
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise MediaError(info.path, "no frame to make a thumbnail from")
        os.replace(tmp, jpg_path)
    finally:
        tmp.unlink(missing_ok=True)


def run_graph(stream, timeout: float, label: str | os.PathLike, cfg: ExtractConfig = DEFAULT) -> None:
    """Run an ffmpeg-python graph built elsewhere (the demo builder), under the same rules."""
    run(_compile(stream, cfg), timeout, label)
