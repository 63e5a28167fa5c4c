"""The built-in demo library: "music videos" (a slow pan over photos under a music excerpt).

Sources are free-licensed Debian packages (music from `singularity-music` and
`wesnoth-1.16-music`, photos from `mate-backgrounds`), fetched with `apt-get download`; where apt
is not available a generated fallback (synthesised tracks, drawn pictures) takes their place.
Every clip gets an audio label (its track) and a visual label (its photo theme) that vary
independently, so audio-only and audio-visual search disagree in a checkable way.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import ffmpeg
import numpy as np
import pandas as pd
import scipy.io.wavfile
from PIL import Image

from vidsim import media
from vidsim.io import atomic_path
from vidsim.progress import progress

log = logging.getLogger(__name__)

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png")
MUSIC_EXTENSIONS = (".ogg", ".wav", ".mp3", ".flac")


@dataclasses.dataclass(frozen=True)
class SourcesConfig:
    """Where the demo's raw material comes from."""

    packages: tuple[str, ...] = ("singularity-music", "wesnoth-1.16-music", "mate-backgrounds")
    # one glob per music source; each source's tracks go to music/<n>/ and the demo picks evenly
    music_globs: tuple[str, ...] = ("usr/share/games/singularity/music/*.ogg",
                                    "usr/share/games/wesnoth/1.16/data/core/music/*.ogg")
    photo_glob: str = "usr/share/backgrounds/mate/*/*"  # the folder name is the visual label
    generated: bool = False  # skip apt and use the generated fallback
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Shape of the generated library and of its held-out query set."""

    tracks: int = 6  # audio labels
    themes: tuple[str, ...] = ("nature", "abstract", "desktop")  # visual labels
    clips_per_pair: int = 4  # library clips for each (track, theme)
    queries_per_pair: int = 2  # held-out query clips for each (track, theme)
    query_photo_share: float = 0.34  # share of each theme's photos kept out of the library
    clip_seconds: float = 12.0
    gap_seconds: float = 1.0  # between consecutive excerpts of a track
    width: int = 480
    height: int = 270
    fps: int = 15
    start_s: float = 15.0  # skip intros
    # Excerpt search: longer "music videos", excerpts of them as queries, near duplicates
    videos: int = 4  # library videos, each on a track of its own and a theme's photos in turn
    video_seconds: tuple[float, float] = (90.0, 180.0)  # their lengths are drawn in this range
    photo_seconds: float = 12.0  # a video's pan over one photo
    outside_videos: int = 2  # videos kept out of the library: their excerpts are the distractors
    excerpts_per_video: int = 5  # excerpt queries cut from each video (library and outside)
    excerpt_seconds: tuple[float, float] = (8.0, 20.0)
    reuploads: int = 2  # library clips that are a re-encoded cut of a library video's end
    reupload_seconds: float = 20.0
    seed: int = 0


# How each excerpt query is re-encoded, in turn: what a phone recording or a re-upload changes
TRANSFORMS: tuple[str, ...] = ("resolution", "bitrate", "brightness", "volume")


# ----------------------------------------------------------------------------------------------
# sources


def fetch_sources(out_dir: Path, cfg: SourcesConfig) -> str:
    """Fill out_dir/music and out_dir/photos/<theme>; returns "debian" or "generated"."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "music").mkdir(parents=True)
    (out_dir / "photos").mkdir()
    if not cfg.generated:
        try:
            _fetch_debian(out_dir, cfg)
            return "debian"
        except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
            log.warning("Debian sources unavailable (%s); generating the fallback library", exc)
            shutil.rmtree(out_dir)
            (out_dir / "music").mkdir(parents=True)
            (out_dir / "photos").mkdir()
    generate_sources(out_dir, cfg.seed)
    return "generated"


def _fetch_debian(out_dir: Path, cfg: SourcesConfig) -> None:
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise RuntimeError("apt-get/dpkg-deb not found")
    credits = ["# Demo sources\n"]
    with tempfile.TemporaryDirectory() as tmp:
        for pkg in progress(cfg.packages, desc="apt-get download", unit="pkg"):
            subprocess.run(["apt-get", "download", pkg], cwd=tmp, check=True, capture_output=True,
                           timeout=1800)
        root = Path(tmp) / "root"
        for deb in sorted(Path(tmp).glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=600)
            credits.append(f"- {deb.name}")
        for pkg in cfg.packages:
            copyright_file = root / "usr/share/doc" / pkg / "copyright"
            if copyright_file.exists():
                shutil.copy(copyright_file, out_dir / f"COPYRIGHT.{pkg}")
        music = [sorted(p for p in root.glob(g) if p.suffix.lower() in MUSIC_EXTENSIONS) for g in cfg.music_globs]
        photos = sorted(p for p in root.glob(cfg.photo_glob) if p.suffix.lower() in PHOTO_EXTENSIONS)
        if not all(music) or not photos:
            raise RuntimeError("the packages held no music or no photos")
        for n, tracks in enumerate(music, 1):
            (out_dir / "music" / str(n)).mkdir()
            for p in tracks:
                shutil.copy(p, out_dir / "music" / str(n) / p.name)
        seen = set()
        for p in photos:
            # The same picture at several resolutions (Elephants_3840x2160.jpg): keep one.
            base = re.sub(r"_\d+x\d+$", "", p.stem)
            if (p.parent.name, base) in seen:
                continue
            seen.add((p.parent.name, base))
            picture = flatten(Image.open(p))
            if np.asarray(picture).std() < 10:
                log.info("skipping %s: a flat picture once its transparency is filled", p.name)
                continue
            (out_dir / "photos" / p.parent.name).mkdir(exist_ok=True)
            picture.save(out_dir / "photos" / p.parent.name / f"{p.stem}.jpg", quality=92)
    (out_dir / "SOURCES.md").write_text("\n".join(credits) + "\n", encoding="utf-8")


def flatten(picture: Image.Image, background: tuple[int, int, int] = (70, 80, 95)) -> Image.Image:
    """RGB picture; transparent parts (wallpaper overlays meant for a desktop colour) on slate."""
    rgba = picture.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, background + (255,))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def generate_sources(out_dir: Path, seed: int = 0, tracks: int = 6, track_seconds: float = 260.0,
                     themes: tuple[str, ...] = ("nature", "abstract", "desktop"),
                     photos_per_theme: int = 6, rate: int = 22050) -> None:
    """The fallback: synthesised tracks (own tempo, key and timbre) and drawn pictures per theme."""
    rng = np.random.default_rng(seed)
    (out_dir / "music").mkdir(parents=True, exist_ok=True)
    for i in range(tracks):
        wav = synth_track(rng, track_seconds, rate, style=i)
        (out_dir / "music" / "1").mkdir(exist_ok=True)
        scipy.io.wavfile.write(out_dir / "music" / "1" / f"generated-track-{i + 1:02d}.wav", rate, wav)
    for t, theme in enumerate(themes):
        folder = out_dir / "photos" / theme
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(photos_per_theme):
            Image.fromarray(draw_picture(rng, t)).save(folder / f"{theme}-{j + 1:02d}.png")
    (out_dir / "SOURCES.md").write_text("# Demo sources\n\n- generated by vidsim.demo\n",
                                        encoding="utf-8")


def synth_track(rng: np.random.Generator, seconds: float, rate: int, style: int) -> np.ndarray:
    """A few minutes of 'music': a chord progression with its own tempo, timbre and drums."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    bpm = 70 + 17 * style
    root = 110.0 * 2 ** (style * 5 / 12 % 1)
    harmonics = 1 + style % 4
    beat = 60.0 / bpm
    chord_idx = (t // (4 * beat)).astype(int) % 4
    steps = np.array([0, 5, 7, 3])[chord_idx]
    x = np.zeros(n)
    for interval in (0, 4 if style % 2 else 3, 7):
        f = root * 2 ** ((steps + interval) / 12)
        phase = 2 * np.pi * np.cumsum(f) / rate
        for h in range(1, harmonics + 1):
            x += np.sin(h * phase) / h
    env = np.exp(-((t % beat) / (0.15 + 0.05 * style)))
    noise = rng.standard_normal(n) * env * (0.2 + 0.1 * (style % 3))
    y = x / np.abs(x).max() * (0.6 + 0.4 * env) + noise
    return (y / np.abs(y).max() * 0.8 * 32767).astype(np.int16)


def draw_picture(rng: np.random.Generator, theme: int, w: int = 960, h: int = 540) -> np.ndarray:
    """A picture whose look depends on its theme: soft blobs, stripes, or blocks."""
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    base = rng.uniform(0, 1, 3)
    if theme % 3 == 0:
        img = np.zeros((h, w, 3))
        for _ in range(6):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 0.6), rng.uniform(0.05, 0.2)
            img += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / r**2)[..., None] * rng.uniform(0, 1, 3)
        img = img / img.max() * 0.7 + base * 0.3
    elif theme % 3 == 1:
        freq, angle = rng.uniform(10, 40), rng.uniform(0, np.pi)
        s = np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)))[..., None]
        img = 0.5 + 0.5 * s * (base - 0.5) * 2
    else:
        cells = rng.uniform(0, 1, (6, 10, 3))
        img = cells[(yy * 10).astype(int) % 6, (xx * 10).astype(int) % 10]
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# library


def plan(sources: Path, cfg: DemoConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decide every library clip and held-out query clip: source excerpt, photos and labels.

    A query never shares audio or pictures with the library: each track is cut into consecutive
    excerpts, every few of which (interleaved, so queries come from all parts of the song) are
    kept for queries, and each theme's photos are split into a library pool and a query pool.

    Returns (library plan, query plan); deterministic for given sources and config.
    """
    rng = np.random.default_rng(cfg.seed)
    n_lib = cfg.clips_per_pair * len(cfg.themes)
    n_query = cfg.queries_per_pair * len(cfg.themes)
    stride = cfg.clip_seconds + cfg.gap_seconds
    needed = cfg.start_s + (n_lib + n_query) * stride
    folders = sorted(p for p in (sources / "music").iterdir() if p.is_dir())
    picked = []
    for n, folder in enumerate(folders):  # an even share of the tracks from each music source
        share = cfg.tracks // len(folders) + (n < cfg.tracks % len(folders))
        music = sorted(p for p in folder.iterdir() if p.suffix.lower() in MUSIC_EXTENSIONS)
        long_enough = [p for p in music if media.probe(p).duration >= needed]
        if len(long_enough) < share:
            raise RuntimeError(f"{folder} has {len(long_enough)} tracks of at least {needed:.0f} s, need {share}")
        picked += [long_enough[i] for i in np.linspace(0, len(long_enough) - 1, share).round().astype(int)]
    lib_photos, query_photos = {}, {}
    for theme in cfg.themes:
        found = sorted(p for p in (sources / "photos" / theme).glob("*")
                       if p.suffix.lower() in PHOTO_EXTENSIONS)
        n_held = max(1, round(len(found) * cfg.query_photo_share)) if cfg.queries_per_pair else 0
        if len(found) - n_held < 1:
            raise RuntimeError(f"theme {theme!r} in {sources / 'photos'} has {len(found)} photos, "
                               f"need at least {n_held + 1}")
        held = set(np.linspace(0, len(found) - 1, n_held).round().astype(int)) if n_held else set()
        lib_photos[theme] = [p for i, p in enumerate(found) if i not in held]
        query_photos[theme] = [p for i, p in enumerate(found) if i in held]
    # Excerpt slots of a track, in time order: every `every`-th one is a query slot. Themes take
    # turns along the track, so no theme owns one part of a song.
    every = (n_lib + n_query) / max(n_query, 1)
    query_slots = {int(every * (j + 1)) - 1 for j in range(n_query)}
    lib, queries = [], []
    for track in picked:
        label = _slug(track.stem)
        lib_offsets = [cfg.start_s + s * stride for s in range(n_lib + n_query) if s not in query_slots]
        query_offsets = [cfg.start_s + s * stride for s in sorted(query_slots)]
        for i, theme in enumerate(cfg.themes):
            for rep in range(cfg.clips_per_pair):
                lib.append(_clip_row(f"{label}--{theme}-{rep + 1}", track, label, theme,
                                     lib_offsets[rep * len(cfg.themes) + i], lib_photos[theme], rng))
            for rep in range(cfg.queries_per_pair):
                queries.append(_clip_row(f"query-{label}--{theme}-{rep + 1}", track, label, theme,
                                         query_offsets[rep * len(cfg.themes) + i], query_photos[theme],
                                         rng))
    return pd.DataFrame(lib), pd.DataFrame(queries)


def plan_videos(sources: Path, cfg: DemoConfig, used: set[Path], lib_photos: dict[str, list[Path]],
                outside_photos: dict[str, list[Path]]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Decide the longer videos, the library's re-uploads and the excerpt queries.

    Every video has a track no other clip uses; library videos show library photos, outside
    videos (never indexed: their excerpts are the distractors) the held-out query photos. A
    re-upload is the last `reupload_seconds` of a library video; excerpts are cut before that, so
    each true excerpt has one source.

    Returns (videos, with an `in_library` column; re-uploads; excerpts); deterministic."""
    rng = np.random.default_rng(cfg.seed + 1)
    n = cfg.videos + cfg.outside_videos
    if n == 0:
        return pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    lengths = np.round(rng.uniform(*cfg.video_seconds, n))
    music = sorted(p for folder in sorted((sources / "music").iterdir()) if folder.is_dir()
                   for p in folder.iterdir() if p.suffix.lower() in MUSIC_EXTENSIONS and p not in used)
    free = [p for p in music if media.probe(p).duration >= cfg.start_s + max(lengths)]
    if len(free) < n:
        raise RuntimeError(f"{sources / 'music'} has {len(free)} unused tracks of at least "
                           f"{cfg.start_s + max(lengths):.0f} s, need {n} for the demo's videos")
    tracks = [free[i] for i in np.linspace(0, len(free) - 1, n).round().astype(int)]
    videos, reuploads, excerpts = [], [], []
    for v, (track, seconds) in enumerate(zip(tracks, lengths)):
        inside = v < cfg.videos
        theme = cfg.themes[v % len(cfg.themes)]
        pool = (lib_photos if inside else outside_photos)[theme]
        count = max(1, int(np.ceil(seconds / cfg.photo_seconds)))
        order = np.concatenate([rng.permutation(len(pool)) for _ in range(-(-count // len(pool)))])[:count]
        label = _slug(track.stem)
        name = f"video-{label}.mp4" if inside else f"outside-{label}.mp4"
        videos.append({"file": name, "audio_label": label, "visual_label": theme, "source_audio": track.name,
                       "offset_s": cfg.start_s, "seconds": float(seconds), "in_library": inside,
                       "photos": ";".join(pool[i].name for i in order),
                       "_track": track, "_photos": [pool[i] for i in order]})
        cut = seconds - (cfg.reupload_seconds if inside and v < cfg.reuploads else 0.0)
        if inside and v < cfg.reuploads:
            reuploads.append({"file": f"reupload-{label}.mp4", "audio_label": label, "visual_label": theme,
                              "source": name, "source_start": float(cut), "seconds": cfg.reupload_seconds})
        for _ in range(cfg.excerpts_per_video):
            length = float(np.round(rng.uniform(*cfg.excerpt_seconds), 1))
            start = float(np.round(rng.uniform(0.0, max(cut - length, 0.0)), 1))
            excerpts.append({"source": name if inside else "", "video": name, "source_start": start,
                             "seconds": min(length, cut), "audio_label": label, "visual_label": theme})
    excerpts = pd.DataFrame(excerpts).sample(frac=1.0, random_state=cfg.seed).reset_index(drop=True)
    excerpts.insert(0, "file", [f"excerpt-{i + 1:02d}.mp4" for i in range(len(excerpts))])
    excerpts["transform"] = [TRANSFORMS[i % len(TRANSFORMS)] for i in range(len(excerpts))]
    return pd.DataFrame(videos), pd.DataFrame(reuploads), excerpts


def _clip_row(name, track, audio_label, theme, offset, photos, rng) -> dict:
    n_photos = int(rng.integers(1, min(3, len(photos)) + 1))
    chosen = rng.choice(len(photos), size=n_photos, replace=False)
    return {"file": f"{name}.mp4", "audio_label": audio_label, "visual_label": theme,
            "source_audio": track.name, "offset_s": round(offset, 3),
            "photos": ";".join(photos[i].name for i in sorted(chosen)),
            "_track": track, "_photos": [photos[i] for i in sorted(chosen)]}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def render_clip(row: dict, out: Path, cfg: DemoConfig, timeout: float = 300.0) -> None:
    """Encode one H.264/AAC MP4: a pan across each photo in turn under the music excerpt (of
    `cfg.clip_seconds`, or the row's own `seconds`)."""
    dur = float(row.get("seconds", cfg.clip_seconds))
    seg = dur / len(row["_photos"])
    w, h = cfg.width, cfg.height
    segments = []
    for i, photo in enumerate(row["_photos"]):
        # ffmpeg-python merges equal inputs into one node: a photo shown again (a longer video) gets
        # an input of its own through an option that changes nothing in the picture
        again = {"thread_queue_size": 64 + i} if photo in row["_photos"][:i] else {}
        v = (ffmpeg.input("file:" + str(photo.resolve()), f="image2", pattern_type="none",
                          loop=1, t=f"{seg:.3f}", framerate=cfg.fps, **again)
             .filter("scale", int(w * 1.3), int(h * 1.3), force_original_aspect_ratio="increase")
             .filter("crop", w, h, x=f"(in_w-{w})*t/{seg:.3f}", y=f"(in_h-{h})/2")
             .filter("setsar", 1)
             .filter("format", "yuv420p"))
        segments.append(v)
    video = ffmpeg.concat(*segments, v=1, a=0) if len(segments) > 1 else segments[0]
    audio = (ffmpeg.input("file:" + str(row["_track"].resolve()), ss=f"{row['offset_s']:.3f}",
                          t=f"{dur:.3f}")
             .filter("afade", t="in", d=0.5).filter("afade", t="out", st=dur - 0.5, d=0.5))
    _encode(video, audio, out, cfg.fps, dur, timeout)


def _encode(video, audio, out: Path, fps: int, seconds: float, timeout: float, crf: int = 28,
            audio_bitrate: str = "96k") -> None:
    with atomic_path(out) as tmp:
        stream = ffmpeg.output(
            video, audio, "file:" + str(tmp), f="mp4", vcodec="libx264", preset="veryfast", crf=crf,
            r=fps, acodec="aac", audio_bitrate=audio_bitrate, ac=2, ar=44100, t=f"{seconds:.3f}",
            movflags="+faststart", map_metadata=-1, fflags="+bitexact", flags="+bitexact",
            threads=1,  # one encoder thread: the same bytes on every run (all 183 demo files, 2026-11-29)
        ).overwrite_output()
        media.run_graph(stream, timeout, out)


def cut(video: Path, out: Path, start: float, seconds: float, transform: str, cfg: DemoConfig,
        timeout: float = 300.0) -> None:
    """Re-encode `seconds` of a video from `start`, changed the way `transform` says: another
    resolution (two thirds), a low bitrate, brighter and more contrasted, or quieter."""
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}; use one of {', '.join(TRANSFORMS)}")
    source = ffmpeg.input("file:" + str(video.resolve()), ss=f"{start:.3f}", t=f"{seconds:.3f}")
    v, a = source.video, source.audio
    crf, bitrate = 28, "96k"
    if transform == "resolution":
        v = v.filter("scale", 2 * round(cfg.width / 3), 2 * round(cfg.height / 3))
    elif transform == "bitrate":
        crf, bitrate = 40, "32k"
    elif transform == "brightness":
        v = v.filter("eq", brightness=0.12, contrast=1.15)
    else:
        a = a.filter("volume", 0.4)
    _encode(v, a, out, cfg.fps, seconds, timeout, crf, bitrate)


def build_library(sources: Path, library_dir: Path, queries_dir: Path, cfg: DemoConfig,
                  excerpts_dir: Path | None = None) -> pd.DataFrame:
    """Render the library and query clips and write their labels.csv files; with `excerpts_dir`,
    also the longer videos (into the library), their re-uploads and the excerpt queries, whose
    labels.csv says each one's source video (empty for a distractor), where in it it starts, and
    how it was re-encoded."""
    lib, queries = plan(sources, cfg)
    for folder, table in ((library_dir, lib), (queries_dir, queries)):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for row in progress(table.to_dict("records"), desc=f"render {folder.name}", unit="clip"):
            render_clip(row, folder / row["file"], cfg)
    if excerpts_dir is not None:
        lib = pd.concat([lib, *_build_excerpts(sources, library_dir, excerpts_dir, cfg, lib, queries)],
                        ignore_index=True)
    for folder, table in ((library_dir, lib), (queries_dir, queries)):
        with atomic_path(folder / "labels.csv") as tmp:
            table.drop(columns=["_track", "_photos", "in_library"], errors="ignore").to_csv(tmp, index=False)
    return lib


def _build_excerpts(sources: Path, library_dir: Path, excerpts_dir: Path, cfg: DemoConfig, lib: pd.DataFrame,
                    queries: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Render the videos, cut the re-uploads and excerpts; returns the library's new rows."""
    photos: dict[str, dict[str, list[Path]]] = {"lib": {}, "query": {}}
    for key, table in (("lib", lib), ("query", queries)):
        for theme in cfg.themes:
            chosen = {p for row in table[table["visual_label"] == theme]["_photos"] for p in row}
            photos[key][theme] = sorted(chosen)
    used = set(lib["_track"]) | set(queries["_track"])
    videos, reuploads, excerpts = plan_videos(sources, cfg, used, photos["lib"], photos["query"])
    if excerpts_dir.exists():
        shutil.rmtree(excerpts_dir)
    excerpts_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="vidsim-demo-") as tmp:
        where = {}
        for row in progress(videos.to_dict("records"), desc="render videos", unit="video"):
            where[row["file"]] = (library_dir if row["in_library"] else Path(tmp)) / row["file"]
            render_clip(row, where[row["file"]], cfg)
        for row in reuploads.to_dict("records"):
            cut(where[row["source"]], library_dir / row["file"], row["source_start"], row["seconds"],
                "resolution", cfg)
        for row in progress(excerpts.to_dict("records"), desc="cut excerpts", unit="excerpt"):
            cut(where[row["video"]], excerpts_dir / row["file"], row["source_start"], row["seconds"],
                row["transform"], cfg)
    with atomic_path(excerpts_dir / "labels.csv") as tmp:
        excerpts.drop(columns=["video"]).to_csv(tmp, index=False)
    return videos[videos["in_library"]], reuploads
