"""Stage `train`: the original's VAE per modality on the library's clip features; loss curves."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from vidsim import vae
from vidsim.config import VAEConfig, from_dict, load_params
from vidsim.dataset import load_features
from vidsim.io import atomic_path, write_json
from vidsim.modalities import MODALITIES
from vidsim.stages import setup_logging

log = logging.getLogger(__name__)


def main() -> None:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("features", type=Path)
    parser.add_argument("models", type=Path)
    parser.add_argument("--metrics", type=Path, required=True, help="final losses (JSON)")
    parser.add_argument("--plots", type=Path, required=True, help="loss per epoch (CSV)")
    args = parser.parse_args()
    params = load_params()
    cfg = from_dict(VAEConfig, params["train"])
    seed = int(params["base"]["seed"])
    features = load_features(args.features)
    curves, finals = {}, {}
    for modality in MODALITIES:
        rows, x = features.matrix(modality)
        if len(rows) < 2:
            log.warning("%s: %d clips with this modality, no model trained", modality, len(rows))
            continue
        log.info("%s: training on %d clips x %d features", modality, *x.shape)
        model, norm, history = vae.train_vae(x, cfg, seed)
        vae.save(args.models / f"{modality}.safetensors", model, norm,
                 {"modality": modality, "clips": len(rows), "seed": seed})
        curves[modality] = [h["loss"] for h in history]
        finals[modality] = {k: round(history[-1][k], 4) for k in ("loss", "reconstruction", "kl")}
        log.info("%s: final loss %.3f", modality, history[-1]["loss"])
    for stale in args.models.glob("*.safetensors"):
        if stale.stem not in finals:
            stale.unlink()
    write_json(args.metrics, finals)
    with atomic_path(args.plots) as tmp:
        table = pd.DataFrame({m: pd.Series(c) for m, c in curves.items()})  # fewer epochs on a large library
        table.insert(0, "epoch", range(len(table)))
        table.round(4).to_csv(tmp, index=False)


if __name__ == "__main__":
    main()
