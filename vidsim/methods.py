"""The search methods vidsim builds, side by side, so that every change is measured against both
the original study and a model-free baseline (`search.method` in params.yaml picks the one served):

- `vidsim` (default): per-second audio windows and frame embeddings compared second by second
  (`SegmentSpace`), and audio-visual by late fusion of the two with user weights.
- `original`: the study's configuration: a 2-D VAE latent per modality, early fusion for
  audio-visual, Euclidean k-NN, PS = softmax(1 - softmax(d)).
- `raw`: the baseline: standardised clip features, Euclidean k-NN, no model.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from vidsim import calibration
from vidsim.dataset import Features
from vidsim.modalities import MODALITIES, RELEVANCE, SINGLE
from vidsim.spaces import LatentSpace, Normaliser, SegmentSpace, Space, VectorSpace

if TYPE_CHECKING:
    from vidsim.vae import VAE

log = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("vidsim", "original", "raw")
DEFAULT_SCORE = {"vidsim": "calibrated", "original": "softmax2", "raw": "calibrated"}
DESCRIPTIONS = {
    "vidsim": "per-second matching, late fusion",
    "original": "2-D VAE latent, early fusion, softmax2 (the original study)",
    "raw": "standardised features, no model (baseline)",
}
FUSED = "audio_visual"
TEXT_SPACE = "vidsim.text"  # frame embeddings in the encoder's space, for text queries
LOO_SAMPLE = 300  # library clips used as leave-one-out queries when fitting calibrations
EXACT = 1e-5  # a distance this small is an exact match (float rounding of 0)


def check(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    return method


def late_fused(method: str) -> bool:
    """Whether the method's audio-visual ranking fuses the single modalities (no space of its own)."""
    return method == "vidsim"


def build_spaces(features: Features, models: dict[str, tuple[VAE, Normaliser]],
                 text: bool = False) -> dict[str, Space]:
    """Every method's spaces over the library's features ("<method>.<modality>" keys).

    With `text` (the encoder has a CLIP text tower), `vidsim.text` keeps the frame embeddings in
    the encoder's own space, where text queries are compared with them."""
    spaces: dict[str, Space] = {}
    for modality in MODALITIES:
        rows, x = features.matrix(modality)
        if len(rows) == 0:
            continue
        spaces[f"raw.{modality}"] = VectorSpace.build(modality, rows, x)
        if modality in models:
            from vidsim import vae  # noqa: PLC0415 - torch only where the original's VAEs are used

            model, norm = models[modality]
            spaces[f"original.{modality}"] = LatentSpace(modality, rows, vae.encode(model, norm, x), model, norm)
    for modality in SINGLE:
        rows, offsets, seconds = features.segment_rows(modality)
        if len(rows):
            # audio windows mix units (energies, Hz, ratios): standardise; embeddings only need centring
            spaces[f"vidsim.{modality}"] = SegmentSpace.build(modality, rows, offsets, seconds,
                                                              standardise=modality == "audio")
            if modality == "visual" and text:
                spaces[TEXT_SPACE] = SegmentSpace.build("text", rows, offsets, seconds, standardise=False,
                                                        centre=False)
    return spaces


def relevance(clips: pd.DataFrame, a: np.ndarray, b: np.ndarray, modality: str) -> np.ndarray | None:
    """(len(a), len(b)) bool: clip rows a[i] and b[j] share the modality's labels; None without labels."""
    keys = list(RELEVANCE[modality])
    if any(k not in clips for k in keys):
        return None
    labels = clips[keys].fillna("").astype(str).agg("\x1f".join, axis=1).to_numpy()
    known = (clips[keys].fillna("").astype(str) != "").all(axis=1).to_numpy()
    if known.sum() < 2:
        return None
    return (labels[a][:, None] == labels[b][None, :]) & known[a][:, None] & known[b][None, :]


@dataclasses.dataclass(frozen=True)
class Expansion:
    """Average query expansion settings (`search.expansion`, `search.expansion_mix`)."""

    n: int = 2
    mix: float = 0.5


def expanded_distances(space: Space, rep: np.ndarray, expansion: Expansion | None,
                       skip: np.ndarray | None = None) -> np.ndarray:
    """Distances from a query to every clip of the space, with average query expansion: the
    distance is mixed with the mean distance from the query's `n` nearest clips (their own rows
    as queries), so clips that sound or look like the query's best matches (other parts of the
    same song, other photos of the same theme) move up together.

    Args:
        skip: (M,) bool, clips that may not be used for the expansion (the query itself).
    """
    d0 = space.distances(rep)
    if expansion is None or expansion.n <= 0 or expansion.mix <= 0:
        return d0
    order = np.argsort(np.where(skip, np.inf, d0) if skip is not None else d0, kind="stable")
    top = order[:min(expansion.n, len(order) - (0 if skip is None else int(skip.sum())))]
    if len(top) == 0:
        return d0
    d1 = np.mean([space.distances(space.member(int(j))) for j in top], axis=0)
    mixed = (1.0 - expansion.mix) * d0 + expansion.mix * d1
    # a clip that matches every query second exactly (the query itself, a copy) stays first
    return np.where(d0 <= EXACT, 0.0, mixed)


def expansion_for(method: str, n: int, mix: float) -> Expansion | None:
    """Query expansion is part of the default method only; the original and raw stay as they were."""
    return Expansion(n, mix) if method == "vidsim" and n > 0 else None


def loo_distances(space: Space, sample: int = LOO_SAMPLE, expansion: Expansion | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Distances from up to `sample` library clips (evenly spread) to every clip of the space,
    each leaving itself out (of the result and of the expansion).

    Returns (positions (Q,) into the space's rows, distances (Q, M) with inf on each clip itself).
    """
    m = len(space.rows)
    picks = np.unique(np.linspace(0, m - 1, min(sample, m)).round().astype(int))
    rows = []
    for j in picks:
        skip = np.zeros(m, bool)
        skip[j] = True
        rows.append(expanded_distances(space, space.member(j), expansion, skip))
    d = np.stack(rows).astype(np.float64)
    d[np.arange(len(picks)), picks] = np.inf
    return picks, d


def calibrate(spaces: dict[str, Space], clips: pd.DataFrame, k: int, expansion: tuple[int, float] = (0, 0.0)
              ) -> dict[str, calibration.Calibration]:
    """A calibration per space, fitted on the library's leave-one-out distances (and labels),
    with the query expansion (n, mix) the method searches with.

    Late fusion gets none of its own: the product of calibrated probabilities measured better
    on the held-out queries (Brier 0.174) than a logistic fitted on the library's leave-one-out
    fused scores (0.187), whose neighbours are closer than a new clip's."""
    out = {}
    for key, space in spaces.items():
        if key == TEXT_SPACE:
            continue  # text has its own scale: CLIP's temperature (see search.Library)
        if len(space.rows) < 2:
            out[key] = calibration.Calibration("kernel")
            continue
        picks, d = loo_distances(space, expansion=expansion_for(key.split(".")[0], *expansion))
        rel = relevance(clips, space.rows[picks], space.rows, space.modality)
        out[key] = calibration.fit(d, rel, k)
        log.info("%s: %s probabilities", key, out[key].kind)
    return out


def single_probabilities(spaces: dict[str, Space], cals: dict[str, calibration.Calibration], n: int,
                         method: str, rep: dict[str, np.ndarray | None], weights: dict[str, float],
                         expansion: Expansion | None = None, skip_rows: frozenset[int] = frozenset()
                         ) -> dict[str, np.ndarray]:
    """Each weighted single modality's calibrated probability for all n clips (the modality's
    prior where a clip lacks it); a modality the query lacks (rep None) is left out."""
    out = {}
    for m in SINGLE:
        key = f"{method}.{m}"
        if weights.get(m, 0) <= 0 or rep.get(m) is None or key not in spaces:
            continue
        cal, space = cals[key], spaces[key]
        skip = np.isin(space.rows, list(skip_rows)) if skip_rows else None
        p = np.full(n, cal.prior)
        p[space.rows] = cal(expanded_distances(space, rep[m], expansion, skip))
        out[m] = p
    return out


def fuse(probabilities: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Late fusion: the weighted geometric mean of the modalities' probabilities, raised to the
    number of modalities fused.

    With equal weights this is the product of the probabilities, i.e. the chance that a hit is
    relevant in every modality if the modalities are independent; a larger weight makes that
    modality count more. Rank-equivalent to sum_m w_m log p_m.

    Args:
        probabilities: modality -> (N,) probabilities over the same N clips.
        weights: modality -> weight (normalised here over the modalities given).
    """
    used = {m: w for m, w in weights.items() if m in probabilities and w > 0}
    if not used:
        raise ValueError("no modality to fuse: the query has none of the weighted modalities")
    total = sum(used.values())
    log_p = sum(w / total * np.log(np.clip(probabilities[m], 1e-12, 1.0)) for m, w in used.items())
    return np.exp(len(used) * log_p)
