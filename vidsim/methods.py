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

from vidsim import calibration, excerpts
from vidsim.config import IndexConfig
from vidsim.dataset import Features
from vidsim.modalities import MODALITIES, RELEVANCE, SINGLE
from vidsim.progress import progress
from vidsim.spaces import LatentSpace, Normaliser, SegmentSpace, Space, VectorSpace, add_index

if TYPE_CHECKING:
    from vidsim.fusedindex import FusedIndex
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
FAR_ROWS = 2048  # calibration: query rows (seconds) scored against the far clips in one product


def check(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    return method


def late_fused(method: str) -> bool:
    """Whether the method's audio-visual ranking fuses the single modalities (no space of its own)."""
    return method == "vidsim"


def build_spaces(features: Features, models: dict[str, tuple[VAE, Normaliser]], text: bool = False,
                 index: IndexConfig | None = None, seed: int = 0) -> dict[str, Space]:
    """Every method's spaces over the library's features ("<method>.<modality>" keys), each with a
    FAISS index when it holds more than `index.exact_max` clips.

    With `text` (the encoder has a CLIP text tower), `vidsim.text` keeps the frame embeddings in
    the encoder's own space, where text queries are compared with them."""
    from vidsim import ann  # noqa: PLC0415

    index = index or IndexConfig()
    spaces: dict[str, Space] = {}
    for modality in MODALITIES:
        rows, x = features.matrix(modality)
        if len(rows) == 0:
            continue
        spaces[f"raw.{modality}"] = VectorSpace.build(modality, rows, x, compact=ann.needs_index(len(rows), index))
        if modality in models:
            from vidsim import vae  # noqa: PLC0415 - torch only where the original's VAEs are used

            model, norm = models[modality]
            spaces[f"original.{modality}"] = LatentSpace(modality, rows, vae.encode(model, norm, x), model, norm)
        del x
    for modality in SINGLE:
        rows, offsets, seconds = features.segment_rows(modality)
        if len(rows):
            # audio windows mix units (energies, Hz, ratios): standardise; embeddings only need centring
            space = SegmentSpace.build(modality, rows, offsets, seconds, standardise=modality == "audio",
                                       compact=ann.needs_index(len(rows), index))
            spaces[f"vidsim.{modality}"] = space
            if modality == "visual" and text:
                spaces[TEXT_SPACE] = dataclasses.replace(
                    space, center=np.zeros_like(space.center), scale=np.ones_like(space.scale))
    # text queries are one vector, not seconds: the text space needs no per-second index
    return {key: add_index(space, index, seed, key, seconds=key != TEXT_SPACE) for key, space in spaces.items()}


def build_fused(spaces: dict[str, Space], index: IndexConfig | None = None, seed: int = 0) -> dict[str, FusedIndex]:
    """method -> the `FusedIndex` that proposes its late fusion's candidates, for every late-fused
    method whose single-modality spaces all have a FAISS index (small ones are scanned whole)."""
    from vidsim.fusedindex import FusedIndex  # noqa: PLC0415

    out = {}
    for method in METHODS:
        parts = {m: spaces.get(f"{method}.{m}") for m in SINGLE}
        if late_fused(method) and all(s is not None and s.ann is not None for s in parts.values()):
            out[method] = FusedIndex.build(parts, index or IndexConfig(), seed, f"{method}.{FUSED}")
    return out


def label_codes(clips: pd.DataFrame, modality: str) -> np.ndarray | None:
    """(N,) int64 per clip, equal where two clips share the modality's labels, -1 where a clip
    lacks one; None when the table has no such labels. Made once per space: comparing codes is
    vectorised where joining label strings per pair of clips is not."""
    keys = list(RELEVANCE[modality])
    if any(k not in clips for k in keys):
        return None
    sub = clips[keys].fillna("").astype(str)
    codes = sub.groupby(keys, sort=False).ngroup().to_numpy().astype(np.int64)
    codes[~(sub != "").all(axis=1).to_numpy()] = -1
    return codes


def relevance(codes: np.ndarray | None, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """(len(a), len(b)) bool: clip rows a[i] and b[j] share labels (`label_codes`); None without
    labels (fewer than two labelled clips among them)."""
    if codes is None or (codes[np.union1d(a, b)] >= 0).sum() < 2:
        return None
    ca, cb = codes[a], codes[b]
    return (ca[:, None] == cb[None, :]) & (ca >= 0)[:, None]


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
    return mixed_distance(d0, d1, expansion.mix)


def expansion_for(method: str, n: int, mix: float) -> Expansion | None:
    """Query expansion is part of the default method only; the original and raw stay as they were."""
    return Expansion(n, mix) if method == "vidsim" and n > 0 else None


def mixed_distance(d0: np.ndarray, d1: np.ndarray, mix: float) -> np.ndarray:
    """Query expansion's distance: the query's own d0 mixed with its expansion hits' mean d1; a
    clip the query matches exactly (itself, a copy) stays at 0."""
    return np.where(d0 <= EXACT, 0.0, (1.0 - mix) * d0 + mix * d1)


class QueryDistances:
    """A query's distances to the clips of one space, with the method's query expansion.

    A small space is scanned whole (`expanded_distances`). A space with a FAISS index takes the
    index's candidates for the query, picks the expansion hits among them and scores every
    candidate against the query and those hits in one pass; `at` gives the exact expanded
    distance to any other clip too, so fusion can score a clip another modality proposed."""

    def __init__(self, space: Space, rep: np.ndarray, expansion: Expansion | None = None,
                 skip: np.ndarray | None = None, want: int = 0, positions: np.ndarray | None = None):
        """
        Args:
            skip: (M,) bool, clips that may not be used for the expansion (the query itself).
            want: at least this many candidates (large spaces).
            positions: a large space's candidates chosen elsewhere (ascending; e.g. a `FusedIndex`'s),
                instead of its own index's.
        """
        self.space, self.rep = space, rep
        self.full: np.ndarray | None = None
        self.sims: np.ndarray | None = None  # (R, Tq) a large per-second space's, with its candidates' seconds
        self.extra: list[np.ndarray] = []
        self.mix = expansion.mix if expansion is not None and expansion.n > 0 and expansion.mix > 0 else 0.0
        if space.ann is None:
            self.full = expanded_distances(space, rep, expansion, skip)
            self.positions = np.arange(len(space.rows))
            return
        self.positions = positions if positions is not None else \
            space.candidates(rep, want + (0 if skip is None else int(skip.sum())))
        # the candidates, read once for the query, its expansion and the hits' matched spans
        self.block = space.block(self.positions)
        self.sims = space.block_similarities(rep, self.block)  # the hits' matched spans reuse them
        d0 = space.block_distances([rep], self.block)[0] if self.sims is None else \
            space.block_scores(self.sims, self.block)
        self.known = d0
        if self.mix > 0:
            order = np.argsort(d0, kind="stable")
            if skip is not None:
                order = order[~skip[self.positions[order]]]
            self.extra = space.block_members(self.block, order[:expansion.n])
            if self.extra:
                d1 = space.block_distances(self.extra, self.block).mean(axis=0)
                self.known = self._mixed(d0, d1)

    def _mixed(self, d0: np.ndarray, d1: np.ndarray) -> np.ndarray:
        return mixed_distance(d0, d1, self.mix)

    def at(self, pos: np.ndarray) -> np.ndarray:
        """(P,) exact expanded distances to the clips at these positions of the space."""
        if self.full is not None:
            return self.full[pos]
        if len(pos) == len(self.positions) and np.array_equal(pos, self.positions):
            return self.known
        # the candidates' distances are known (positions are sorted); score only the others
        i = np.minimum(np.searchsorted(self.positions, pos), len(self.positions) - 1)
        known = self.positions[i] == pos
        out = np.empty(len(pos), np.float64)
        out[known] = self.known[i[known]]
        if not known.all():
            d = self.space.distances_many([self.rep, *self.extra], pos[~known])
            out[~known] = self._mixed(d[0], d[1:].mean(axis=0)) if self.extra else d[0]
        return out

    def similarities(self, pos: np.ndarray) -> list[np.ndarray]:
        """(Tq, Tc) cosines of the query's seconds with those of each clip at these positions of a
        per-second space (`excerpts.similarities`, for matched spans): a large space's candidates'
        from the scoring's own product (reading a hit's seconds again from the memory-mapped file
        costs as much as aligning it), any other clip's from its stored seconds."""
        out: list[np.ndarray] = [np.empty((len(self.rep), 0), np.float32)] * len(pos)
        rest = np.arange(len(pos))
        if self.sims is not None:
            i = np.minimum(np.searchsorted(self.positions, pos), len(self.positions) - 1)
            known = self.positions[i] == pos
            for j, s in zip(np.flatnonzero(known), self.space.block_spans(self.sims, self.block, i[known])):
                out[j] = s
            rest = np.flatnonzero(~known)
        for j, rows in zip(rest, self.space.members(pos[rest]) if len(rest) else []):
            out[j] = excerpts.similarities(self.rep, rows)
        return out

    def ranked(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions, distances) of a large space's candidates, nearest first."""
        order = np.argsort(self.known, kind="stable")
        return self.positions[order], self.known[order]

    def candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions, distances) of every clip of a small space, or of a large space's candidates."""
        return self.positions, self.at(self.positions)


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


def sampled_distances(space: Space, codes: np.ndarray | None, sample: int, expansion: Expansion | None = None,
                      queries: int = LOO_SAMPLE, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Leave-one-out pairs of a space too large to compare every pair, as a stratified sample:
    each of `queries` library clips (evenly spread) against its nearest clips (the space's
    candidates, where nearly all of its relevant ones lie; weight 1) and `sample` of the other
    clips drawn uniformly (each standing for (M - 1 - nearest) / sample clips). The weighted pairs
    have the distances and relevance of all M - 1 pairs in expectation, which a uniform sample of
    clips would lose: in a million clips, a label 100 clips share has no pair among 5,000 drawn.

    The uniform part is one draw for every query (less each query's own nearest clips and itself),
    so a space with a FAISS index reads those clips once and scores them against every query and
    its expansion hits in one product (`_far_distances`), where a draw per query read 5,000 clips
    from the memory-mapped file 300 times (most of calibrating a million clips).

    Args:
        codes: the library's `label_codes` for the space's modality.

    Returns (distances (Q, C), relevant (Q, C) or None without labels, weights (Q, C)); rows are
    padded with inf distances and zero weights."""
    m = len(space.rows)
    rng = np.random.default_rng(seed)
    near = space.ann.candidates if space.ann is not None else IndexConfig.candidates
    picks = np.unique(np.linspace(0, m - 1, min(queries, m)).round().astype(int))
    draw = rng.choice(m, min(m, sample + near + 1), replace=False)  # random order: the first `sample` not taken
    nearest, others, far, deferred = [], [], [], []
    for j in picks:
        skip = np.zeros(m, bool)
        skip[j] = True
        qd = QueryDistances(space, space.member(int(j)), expansion, skip, want=near)
        if qd.full is not None:
            d_all = np.where(skip, np.inf, qd.full)
            pos = np.argsort(d_all, kind="stable")[:near]
        else:
            pos = qd.ranked()[0]
            pos = pos[pos != j][:near]
        cols = np.sort(draw[~np.isin(draw, np.append(pos, j))][:sample])
        nearest.append((pos, qd.at(pos)))
        others.append(cols)
        if qd.full is not None:
            far.append(qd.full[cols])
        else:
            deferred.append((qd.rep, qd.extra, qd.mix))
    if deferred:  # a space with a FAISS index: the drawn clips read once, for every query
        drawn = np.unique(np.concatenate(others))
        far = [d[np.searchsorted(drawn, cols)] for d, cols in zip(_far_distances(space, deferred, drawn), others)]
    out_d, out_rel, out_w = [], [], []
    for j, (pos, d_near), cols, d_far in zip(picks, nearest, others, far):
        out_d.append(np.concatenate([d_near, d_far]))
        out_w.append(np.concatenate([np.ones(len(pos)), np.full(len(cols), (m - len(pos) - 1) / max(len(cols), 1))]))
        rel = relevance(codes, space.rows[[j]], space.rows[np.concatenate([pos, cols])])
        out_rel.append(None if rel is None else rel[0])
    width = max(len(d) for d in out_d)

    def pad(rows: list[np.ndarray], fill) -> np.ndarray:
        return np.stack([np.pad(r, (0, width - len(r)), constant_values=fill) for r in rows])

    labelled = all(r is not None for r in out_rel)
    return pad(out_d, np.inf), pad(out_rel, False) if labelled else None, pad(out_w, 0.0)


def _far_distances(space: Space, queried: list[tuple[np.ndarray, list[np.ndarray], float]], drawn: np.ndarray
                   ) -> list[np.ndarray]:
    """Each query's exact expanded distances to the clips at `drawn` (positions, ascending), every
    query and its expansion hits scored against the drawn clips read once.

    Args:
        queried: (query rows, expansion hits' rows, expansion mix) per query."""
    vectors = [v for rep, extra, _ in queried for v in (rep, *extra)]
    groups, start, rows = [], 0, 0  # of about FAR_ROWS query rows (seconds): each product stays small
    for i, v in enumerate(vectors):
        rows += len(np.atleast_2d(v))
        if rows >= FAR_ROWS or i == len(vectors) - 1:
            groups.append((start, i + 1))
            start, rows = i + 1, 0
    d = np.concatenate([space.distances_many(vectors[a:b], drawn) for a, b in groups])
    out, row = [], 0
    for _, extra, mix in queried:
        d0, row = d[row], row + 1
        if extra:
            d0, row = mixed_distance(d0, d[row:row + len(extra)].mean(axis=0), mix), row + len(extra)
        out.append(d0.astype(np.float64))
    return out


def calibrate(spaces: dict[str, Space], clips: pd.DataFrame, k: int, expansion: tuple[int, float] = (0, 0.0),
              sample: int = IndexConfig.calibration_sample, seed: int = 0) -> dict[str, calibration.Calibration]:
    """A calibration per space, fitted on the library's leave-one-out distances (and labels),
    with the query expansion (n, mix) the method searches with: every pair of the sampled queries
    in a space of up to `sample` clips, a stratified sample of them beyond (`sampled_distances`).

    Late fusion gets none of its own: the product of calibrated probabilities measured better
    on the held-out queries (Brier 0.174) than a logistic fitted on the library's leave-one-out
    fused scores (0.187), whose neighbours are closer than a new clip's."""
    out = {}
    for key, space in progress(spaces.items(), desc="calibrating", unit="space"):
        if key == TEXT_SPACE:
            continue  # text has its own scale: CLIP's temperature (see search.Library)
        if len(space.rows) < 2:
            out[key] = calibration.Calibration("kernel")
            continue
        expand = expansion_for(key.split(".")[0], *expansion)
        codes = label_codes(clips, space.modality)
        if len(space.rows) <= sample:
            picks, d = loo_distances(space, expansion=expand)
            out[key] = calibration.fit(d, relevance(codes, space.rows[picks], space.rows), k)
        else:
            d, rel, w = sampled_distances(space, codes, sample, expand, seed=seed)
            out[key] = calibration.fit(d, rel, k, w)
        log.info("%s: %s probabilities", key, out[key].kind)
    return out


def single_probabilities(spaces: dict[str, Space], cals: dict[str, calibration.Calibration], n: int,
                         method: str, rep: dict[str, np.ndarray | None], weights: dict[str, float],
                         expansion: Expansion | None = None, skip_rows: frozenset[int] = frozenset(),
                         want: int = 0, extra_rows: np.ndarray | None = None, fused: FusedIndex | None = None
                         ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, QueryDistances]]:
    """Each weighted single modality's calibrated probability (the modality's prior where a clip
    lacks it); a modality the query lacks (rep None) is left out.

    Args:
        fused: the method's `FusedIndex`, which proposes the candidates of a large library in one
            search when the query has every modality it holds (and no `extra_rows`).

    Returns:
        (rows (R,), modality -> (R,) probabilities, modality -> its `QueryDistances`): every one of
        the n clips when the spaces are scanned whole, else the union of the modalities' candidates
        (and of `extra_rows`, e.g. a text query's), each scored exactly in every modality.
    """
    used = {m: spaces[f"{method}.{m}"] for m in SINGLE
            if weights.get(m, 0) > 0 and rep.get(m) is not None and f"{method}.{m}" in spaces}
    proposed = None
    if fused is not None and extra_rows is None and set(used) == set(fused.modalities) and \
            all(space.ann is not None for space in used.values()):
        vector = fused.vector({m: space.summary(rep[m]) for m, space in used.items()}, weights,
                              {m: cals[f"{method}.{m}"] for m in used})
        proposed = fused.candidates(vector, want + len(skip_rows))
        for m, space in used.items():  # an excerpt's seconds find the long video its mean does not
            if isinstance(space, SegmentSpace) and len(rep[m]) < space.longest:
                proposed = np.union1d(proposed, space.rows[space.voted(rep[m])])
    dists = {}
    for m, space in used.items():
        skip = np.isin(space.rows, list(skip_rows)) if skip_rows else None
        pos = None
        if proposed is not None:
            pos, found = space.positions(proposed)
            pos = pos[found]
        dists[m] = QueryDistances(space, rep[m], expansion, skip, want, pos)
    if all(q.full is not None for q in dists.values()):
        rows = np.arange(n)
    else:
        found = [q.space.rows[q.positions] for q in dists.values()]
        rows = np.unique(np.concatenate(found + ([] if extra_rows is None else [extra_rows])))
    out = {}
    for m, q in dists.items():
        cal = cals[f"{method}.{m}"]
        p = np.full(len(rows), cal.prior)
        pos, found = q.space.positions(rows)
        p[found] = cal(q.at(pos[found]))
        out[m] = p
    return rows, out, dists


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
