"""Stage `encode`: every method's search space over the library, with fitted probabilities,
into the index the app, the CLI and `evaluate` load."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
from pathlib import Path

from vidsim import methods, vae
from vidsim.config import IndexConfig, SearchConfig, from_dict, load_params
from vidsim.dataset import load_features
from vidsim.index import Index
from vidsim.io import read_json
from vidsim.modalities import MODALITIES
from vidsim.stages import setup_logging

log = logging.getLogger(__name__)
KEEP = ["clip", "path", "sha256", "duration", "has_audio", "has_video", "audio_label", "visual_label"]


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("features", type=Path)
    parser.add_argument("models", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--thumbs", type=Path, required=True, help="the extract stage's thumbnails")
    args = parser.parse_args()
    params = load_params()
    search = from_dict(SearchConfig, params.get("search"))
    index = from_dict(IndexConfig, params.get("index"))
    seed = int(params.get("base", {}).get("seed", 0))
    methods.check(search.method)
    features = load_features(args.features)
    models = {m: vae.load(args.models / f"{m}.safetensors")[:2] for m in MODALITIES
              if (args.models / f"{m}.safetensors").exists()}
    # the library folder: the only place the app serves media files from
    manifest = {**read_json(args.features / "features.json"), "search": dataclasses.asdict(search),
                "index": dataclasses.asdict(index), "library": params["library"]["dir"]}
    spaces = methods.build_spaces(features, models, bool(manifest["encoder"]["has_text"]), index, seed)
    calibrations = methods.calibrate(spaces, features.clips, search.k, (search.expansion, search.expansion_mix),
                                     index.calibration_sample, seed)
    fused = methods.build_fused(spaces, index, seed)
    Index(features.clips[KEEP], spaces, calibrations, manifest, fused).save(args.out)
    log.info("index: %d clips, spaces %s", len(features.clips), ", ".join(spaces))
    shutil.copyfile(args.features / "status.csv", args.out / "status.csv")
    copy_thumbnails(args.thumbs, args.out / "thumbs", set(features.clips["sha256"]))


def copy_thumbnails(src: Path, dst: Path, shas: set[str]) -> None:
    """The index's own copy of one JPEG per clip, for the app's result lists."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    present = {p.stem for p in src.glob("*.jpg")} if src.is_dir() else set()  # one listing, not a stat per clip
    for sha in sorted(shas & present):
        shutil.copyfile(src / f"{sha}.jpg", dst / f"{sha}.jpg")


if __name__ == "__main__":
    main()
