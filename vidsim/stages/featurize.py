"""Stage `featurize`: audio statistics and per-second windows, per-second frame embeddings.

Runs for the library and for the held-out query folder (see dvc.yaml); cached per content hash.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from vidsim.config import AudioConfig, ExtractConfig, encoder_config, from_dict, load_params
from vidsim.dataset import stack
from vidsim.encoder import load_from_config
from vidsim.features.audio import feature_names
from vidsim.featurization import ENGINES, featurize_library
from vidsim.io import read_status, write_json, write_table
from vidsim.stages import setup_logging


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("extracted", type=Path, help="the extract stage's folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--engine", choices=ENGINES, help="overrides featurize.engine (local or ray)")
    args = parser.parse_args()
    params = load_params()
    section = params["featurize"]
    engine = args.engine or section.get("engine", "local")
    audio_cfg = from_dict(AudioConfig, section.get("audio"))
    extract_cfg = from_dict(ExtractConfig, params.get("extract"))
    encoder = load_from_config(encoder_config(section.get("encoder")))
    status = read_status(args.extracted / "status.csv")
    status, feats = featurize_library(status, args.extracted, args.out / "cache", encoder,
                                      audio_cfg, extract_cfg, engine)
    stack(status, feats, encoder.info.dim, args.out)  # written clip by clip into args.out/arrays
    write_table(status, args.out / "status.csv")
    write_json(args.out / "features.json", {
        "encoder": dataclasses.asdict(encoder.info),
        "audio": dataclasses.asdict(audio_cfg), "audio_names": feature_names(),
        "extract": dataclasses.asdict(extract_cfg),
        "clips": int((status["status"] == "ok").sum()),
    })


if __name__ == "__main__":
    main()
