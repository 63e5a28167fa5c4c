"""Stage `encode`: latent means of every clip per modality, into the index the app and CLI load."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
from pathlib import Path

from vidsim import vae
from vidsim.config import MODALITIES, SearchConfig, from_dict, load_params
from vidsim.dataset import load_features, modality_matrix
from vidsim.index import Index
from vidsim.io import read_json
from vidsim.scores import neighbour_scale
from vidsim.stages import setup_logging

log = logging.getLogger(__name__)


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("features", type=Path)
    parser.add_argument("models", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--thumbs", type=Path, required=True, help="the extract stage's thumbnails")
    args = parser.parse_args()
    search = from_dict(SearchConfig, load_params().get("search"))
    clips, arrays = load_features(args.features)
    rows, latents, scales = {}, {}, {}
    for modality in MODALITIES:
        path = args.models / f"{modality}.safetensors"
        if not path.exists():
            continue
        model, norm, _ = vae.load(path)
        rows[modality], x = modality_matrix(arrays, modality)
        latents[modality] = vae.encode(model, norm, x)
        scales[modality] = neighbour_scale(latents[modality], search.k)
        log.info("%s: %d clips in a %d-d latent space", modality, *latents[modality].shape)
    manifest = {**read_json(args.features / "features.json"),
                "search": dataclasses.asdict(search)}
    keep = ["clip", "path", "sha256", "duration", "has_audio", "has_video", "audio_label", "visual_label"]
    Index(clips[keep], rows, latents, scales, manifest).save(args.out)
    shutil.copyfile(args.features / "status.csv", args.out / "status.csv")
    copy_thumbnails(args.thumbs, args.out / "thumbs", set(clips["sha256"]))


def copy_thumbnails(src: Path, dst: Path, shas: set[str]) -> None:
    """The index's own copy of one JPEG per clip, for the app's result lists."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for sha in shas:
        if (src / f"{sha}.jpg").exists():
            shutil.copyfile(src / f"{sha}.jpg", dst / f"{sha}.jpg")


if __name__ == "__main__":
    main()
