"""Where a hit matches the query: the seconds of the query and of the clip that line up.

A clip's per-second rows (audio windows, frame embeddings) are compared with the query's: the
similarity of every query second with every clip second. Footage the two share shows as a
diagonal: query second t matches clip second t + offset for one offset over the shared stretch.
Each offset is scored by summing, over the query's seconds, the best similarity within a second of
its diagonal (a Hough vote over `clip second - query second`, as audio fingerprinting and
segment-level copy detection do), normalised by the shorter of the two, so a query longer than
the clip (the clip inside it) scores like one inside the clip. The best offset's seconds that
match give the span; its score (how far the aligned similarity rises above the two videos' mean
similarity: a song's other verses or a theme's other photos are alike everywhere, the same
footage only on its diagonal) and how much of the shorter one the span covers decide whether the
hit is the same footage. Several modalities vote together with their weights: the
same footage lines up at the same offset in sound and picture.
"""

from __future__ import annotations

import dataclasses

import numpy as np

BAND = 1  # seconds either side of a diagonal that still count as on it (sampling jitter)
MATCH_SHARE = 0.5  # a second is part of the span when its similarity is at least this share of the best one
MIN_SIMILARITY = 0.2  # ... and at least this (centred cosines: unrelated seconds sit around 0)
IDENTICAL = 0.9  # an aligned similarity this high is the same footage even where nothing stands out
EXACT = 0.999  # ... and this high, the very same frames and sound (the query itself, a bit-identical copy)
# (a still picture or a steady sound is alike at every offset, so its score stays low)


@dataclasses.dataclass(frozen=True)
class Match:
    """The matched span of a hit, in seconds from the start of each video."""

    query_start: float
    clip_start: float
    seconds: float
    score: float  # mean aligned similarity over the shorter video's seconds, less the two's mean similarity
    coverage: float  # share of the shorter video's seconds inside the span
    similarity: float = 0.0  # the mean aligned similarity itself

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 3) for k, v in dataclasses.asdict(self).items()}

    def describe(self) -> str:
        """"matches 0:12-0:27 of the query at 1:23-1:38"."""
        return (f"matches {clock(self.query_start)}-{clock(self.query_start + self.seconds)} of the query "
                f"at {clock(self.clip_start)}-{clock(self.clip_start + self.seconds)}")


def clock(seconds: float) -> str:
    """m:ss (h:mm:ss from an hour), rounded to the second."""
    total = int(round(max(seconds, 0.0)))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def similarities(query: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """(Tq, Tc) cosine of every query second with every clip second (rows already L2-normalised)."""
    return np.asarray(query, np.float32) @ np.asarray(clip, np.float32).T


def combine(sims: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray | None:
    """One similarity matrix from several modalities', weighted (normalised over those given),
    cropped to the seconds every modality has (audio windows and frames can differ by one)."""
    used = {m: w for m, w in weights.items() if m in sims and w > 0}
    if not used:
        return None
    tq = min(sims[m].shape[0] for m in used)
    tc = min(sims[m].shape[1] for m in used)
    total = sum(used.values())
    return sum(w / total * sims[m][:tq, :tc] for m, w in used.items())


def align(sims: np.ndarray, step: float = 1.0) -> Match | None:
    """The best-supported offset between a query and a clip and the span that matches there.

    Args:
        sims: (Tq, Tc) similarities of the query's seconds (rows) with the clip's (columns).
        step: seconds per row (1 / the frame rate the seconds were sampled at).

    Returns None when either side has no seconds."""
    return align_many([sims], step)[0]


def align_many(sims: list[np.ndarray], step: float = 1.0) -> list[Match | None]:
    """`align` for several clips against one query at once (a query's hits), in one pass over a
    (clips, query seconds, offsets) array: per clip it costs microseconds, not a Python loop's ~0.1 ms."""
    out: list[Match | None] = [None] * len(sims)
    keep = [i for i, x in enumerate(sims) if x.shape[0] and x.shape[1]]
    if not keep:
        return out
    tq = sims[keep[0]].shape[0]
    if any(sims[i].shape[0] != tq for i in keep):  # a hit without one modality: fewer query seconds
        for length in {sims[i].shape[0] for i in keep}:
            group = [i for i in keep if sims[i].shape[0] == length]
            for i, m in zip(group, align_many([sims[i] for i in group], step)):
                out[i] = m
        return out
    tc = np.array([sims[i].shape[1] for i in keep])
    width = int(tc.max())
    n_off = tq + width - 1  # offsets -(tq - 1) .. width - 1: clip second - query second
    pad = tq - 1 + BAND
    padded = np.full((len(keep), tq, 2 * pad + width), -np.inf, np.float32)
    for j, i in enumerate(keep):
        padded[j, :, pad:pad + tc[j]] = sims[i]
    # diagonals[k, t, j] = padded[k, t, t + j]: clip second t + j - pad for query second t
    s0, s1, s2 = padded.strides
    diagonals = np.lib.stride_tricks.as_strided(padded, (len(keep), tq, n_off + 2 * BAND), (s0, s1 + s2, s2),
                                                writeable=False)
    on = diagonals[:, :, BAND:BAND + n_off]  # (K, Tq, O) on each offset's own diagonal
    valid = np.isfinite(on)
    band = np.lib.stride_tricks.sliding_window_view(diagonals, 2 * BAND + 1, axis=2).max(axis=3)
    aligned = np.where(valid, np.maximum(band, 0.0), 0.0)  # a negative match counts nothing
    shorter = np.minimum(tq, tc)[:, None]
    score = aligned.sum(axis=1) / shorter  # (K, O)
    # what any second of the clip shares with any of the query (a song's timbre, a theme's colours):
    # the same footage stands out above it, a clip that is merely alike does not
    background = np.array([np.maximum(sims[i], 0.0).mean() for i in keep])
    exact = np.where(valid, np.maximum(on, 0.0), 0.0).sum(axis=1) / shorter
    rows = np.arange(len(keep))
    best = score.argmax(axis=1)
    # within the band of the winner, the offset whose own diagonal matches best
    near = np.clip(best[:, None] + np.arange(-BAND, BAND + 1)[None, :], 0, n_off - 1)
    best = near[rows, exact[rows[:, None], near].argmax(axis=1)]
    a = aligned[rows, :, best]  # (K, Tq) each query second's match at the chosen offset
    floor = np.maximum(MATCH_SHARE * a.max(axis=1), MIN_SIMILARITY)[:, None]
    matched = valid[rows, :, best] & (a >= floor)
    first = matched.argmax(axis=1)
    last = tq - 1 - matched[:, ::-1].argmax(axis=1)
    offsets = best - (tq - 1) + _refine(exact, best)
    for j, i in enumerate(keep):
        if not matched[j].any():
            out[i] = Match(0.0, float(max(offsets[j], 0.0)) * step, 0.0, float(score[j, best[j]] - background[j]), 0.0,
                           float(score[j, best[j]]))
            continue
        length = int(last[j] - first[j] + 1)
        query_start = float(first[j]) * step
        out[i] = Match(query_start=query_start, clip_start=float(max(query_start + offsets[j] * step, 0.0)),
                       seconds=length * step, score=float(score[j, best[j]] - background[j]),
                       coverage=length / int(shorter[j, 0]), similarity=float(score[j, best[j]]))
    return out


def _refine(curves: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Sub-second shift of each curve's peak from a parabola through it and its neighbours (within
    +-0.5; 0 at an edge or on a flat top): an excerpt rarely starts on a whole second."""
    rows = np.arange(len(peaks))
    inner = (peaks > 0) & (peaks < curves.shape[1] - 1)
    left = curves[rows, np.maximum(peaks - 1, 0)]
    mid = curves[rows, peaks]
    right = curves[rows, np.minimum(peaks + 1, curves.shape[1] - 1)]
    denom = left - 2 * mid + right
    ok = inner & (denom < 0)
    shift = np.where(ok, 0.5 * (left - right) / np.where(ok, denom, -1.0), 0.0)
    return np.clip(shift, -0.5, 0.5)


def same_footage(match: Match | None, threshold: float, coverage: float = 0.8) -> bool:
    """A near duplicate: the span covers most of the shorter video, and its seconds stand out by
    `threshold` above what the two share anywhere, or match nearly exactly."""
    return match is not None and match.coverage >= coverage and \
        (match.score >= threshold or match.similarity >= IDENTICAL)
