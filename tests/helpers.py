"""Test helpers: tiny clips made by ffmpeg's own test sources, and running installed commands."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import ffmpeg

from vidsim import media

ROOT = Path(__file__).resolve().parents[1]


def lazy_import(name: str) -> ModuleType:
    """The module, imported on first use (importlib's LazyLoader): a test module whose tests are
    mostly slow does not make the fast tier's collection import torch, open_clip and the like."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


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


def run(args: list[str], cwd: Path) -> str:
    """Run a command of the installed environment; fail the test with its output if it fails."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr
