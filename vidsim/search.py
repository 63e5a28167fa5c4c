"""The one entry point for search: load the pipeline's artifacts once, then query by video file,
by library clip ("more like this"), or by features. Used by the CLI, the app, `evaluate` and the
tests, so the query path is the batch path."""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from vidsim import encoder as encoders
from vidsim import excerpts, methods
from vidsim.clip import ClipFeatures, StepCallback, extract_and_featurize
from vidsim.config import AudioConfig, ExtractConfig, SearchConfig, from_dict
from vidsim.index import Index, built
from vidsim.integrity import IntegrityError, verify_outputs
from vidsim.io import file_sha256, read_status
from vidsim.modalities import MODALITIES, SINGLE, check, parse_weights
from vidsim.scores import ps_softmax2
from vidsim.spaces import LatentSpace

log = logging.getLogger(__name__)

DEFAULT_INDEX = Path("data/index")
DEFAULT_MODELS = Path("data/models")
SCORES = ("calibrated", "softmax2")
RERANK = 10  # hits whose matched spans are checked for the same footage as the query (at least k)


class NotBuilt(FileNotFoundError):
    """The pipeline has not produced the artifacts yet."""


class UnknownClip(KeyError):
    """A clip name the library does not hold (its message prints as written, not as a repr)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# which status column says a clip has a modality, and what to say when it has not
HAS_COLUMN = {"audio": "has_audio", "visual": "has_video"}
LACKS = {"audio": "no sound", "visual": "no picture"}


@dataclasses.dataclass(frozen=True)
class Hit:
    rank: int  # 1-based
    clip: str
    path: str
    probability: float  # probability of similarity, 0..1 (fused: see methods.fuse)
    distance: float | None  # in the method's space; None for a late-fused hit
    scores: dict[str, float]  # modality -> its probability for this hit (late fusion: each share)
    match: excerpts.Match | None = None  # where its seconds line up with the query's (None: a text query)
    same_footage: bool = False  # the match covers most of the shorter video, closely (a near duplicate)
    missing: tuple[str, ...] = ()  # modalities of `scores` the clip lacks: fused with their prior

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["match"] = None if self.match is None else self.match.to_dict()
        out["missing"] = list(self.missing)
        return out

    def score_text(self, sep: str = " · ") -> str:
        """Each modality's probability, or what the clip lacks ("audio: no sound"): a clip without
        a modality is fused with that modality's prior, which is no similarity to show."""
        return sep.join(f"{m.replace('_', '-')}: {LACKS[m]}" if m in self.missing
                        else f"{m.replace('_', '-')} {100 * p:.0f}%" for m, p in self.scores.items())


@dataclasses.dataclass
class QueryResult:
    modality: str
    method: str
    hits: list[Hit]
    place: Callable[[], np.ndarray | None] | None = dataclasses.field(default=None, repr=False)
    weights: dict[str, float] = dataclasses.field(default_factory=dict)  # late fusion only

    @cached_property
    def latent(self) -> np.ndarray | None:
        """(L,) the query in the original's latent space, for the plots. Computed when first asked
        for: it needs the original's VAE, and so torch, which a CLI query otherwise never loads."""
        return self.place() if self.place is not None else None

    def to_dict(self) -> dict:
        return {"modality": self.modality, "method": self.method, "weights": self.weights,
                "hits": [h.to_dict() for h in self.hits]}


@dataclasses.dataclass(frozen=True)
class _Query:
    """What a query is: new features, or a library clip (its row in the index)."""

    feats: ClipFeatures | None = None
    row: int | None = None
    exclude: frozenset[int] = frozenset()  # index rows never returned
    text: np.ndarray | None = None  # (D,) a text query's embedding, L2-normalised


class Library:
    """A built library: index (every method's spaces), the original's VAEs, and the settings its
    features were made with."""

    def __init__(self, index: Index, index_dir: Path = DEFAULT_INDEX):
        self.index = index
        self.index_dir = Path(index_dir)
        m = index.manifest
        self.audio_cfg = from_dict(AudioConfig, m["audio"])
        self.extract_cfg = from_dict(ExtractConfig, m["extract"])
        self.encoder_info = encoders.EncoderInfo(**m["encoder"])
        self.search_cfg = from_dict(SearchConfig, m["search"])
        self.default_k = self.search_cfg.k
        self.default_method = self.search_cfg.method
        self.default_weights = parse_weights(self.search_cfg.weights, {})
        self.expansion = (self.search_cfg.expansion, self.search_cfg.expansion_mix)
        self._columns: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, index_dir: str | os.PathLike = DEFAULT_INDEX,
             models_dir: str | os.PathLike = DEFAULT_MODELS,
             verify_root: str | os.PathLike | None = None) -> Library:
        """Load the index and the original's models.

        Args:
            verify_root: a DVC project root; when given, both folders must match its dvc.lock
                (IntegrityError otherwise), so a tampered file is never loaded.
        """
        index_dir, models_dir = Path(index_dir), Path(models_dir)
        if not built(index_dir):
            raise NotBuilt(f"no index in {index_dir}: run `dvc repro` (or `make demo`) first")
        if verify_root is not None:
            verify_outputs(verify_root, [index_dir, models_dir])
        try:
            index = Index.load(index_dir)
        except (ValueError, KeyError, OSError, TypeError, RuntimeError) as exc:  # e.g. a pickled array, FAISS
            raise IntegrityError(f"{index_dir} is not a readable index ({type(exc).__name__}): "
                                 "rebuild it with `dvc repro`") from None
        for space in index.spaces.values():
            if isinstance(space, LatentSpace):  # the original's VAEs load (with torch) on first use
                if not (models_dir / f"{space.modality}.safetensors").exists():
                    raise NotBuilt(f"model {models_dir / space.modality}.safetensors is missing: run `dvc repro`")
                space.loader = functools.partial(load_model, models_dir, space.modality)
        return cls(index, index_dir)

    def warm_up(self) -> threading.Thread | None:
        """Read a large index's per-second FAISS indexes and map its arrays into this process in a
        background thread (`Index.read_second_indexes`, `Index.page_in`), so a long-lived server's
        queries stop paying for either; None for a small index (its arrays are in memory)."""
        if not self.index.mapped():
            return None

        def warm() -> None:
            self.index.read_second_indexes()
            self.index.page_in()

        thread = threading.Thread(target=warm, name="vidsim-page-in", daemon=True)
        thread.start()
        return thread

    @classmethod
    def open(cls, index_dir: str | os.PathLike = DEFAULT_INDEX, models_dir: str | os.PathLike = DEFAULT_MODELS,
             project: str | os.PathLike = ".", unverified: bool = False) -> Library:
        """Load for serving (the CLI, the app): the artifacts must match `project`'s dvc.lock, and a
        missing dvc.lock is refused too, unless the user asks for `unverified` loading.

        Raises:
            NotBuilt: no index yet. IntegrityError: unchecked or not matching dvc.lock.
        """
        if unverified:
            log.warning("loading %s and %s without checking them against dvc.lock", index_dir, models_dir)
            return cls.load(index_dir, models_dir)
        if not (Path(project) / "dvc.lock").exists():
            if not built(index_dir):
                raise NotBuilt(f"no index in {index_dir}: run `dvc repro` (or `make demo`) first")
            raise IntegrityError(
                f"no dvc.lock in {Path(project).resolve()} to check {index_dir} and {models_dir} against: "
                "run from the project that built them, or load them unchecked with --unverified "
                "(VIDSIM_UNVERIFIED=1 for the app)")
        return cls.load(index_dir, models_dir, verify_root=project)

    # --- what the library offers ---------------------------------------------------------------

    @property
    def methods(self) -> list[str]:
        return [m for m in methods.METHODS if any(k.startswith(m + ".") for k in self.index.spaces)]

    def modalities_of(self, method: str | None = None) -> list[str]:
        method = methods.check(method or self.default_method)
        have = {k.split(".", 1)[1] for k in self.index.spaces if k.startswith(method + ".")}
        if methods.late_fused(method) and set(SINGLE) <= have:
            have.add(methods.FUSED)
        return [m for m in MODALITIES if m in have]

    @property
    def modalities(self) -> list[str]:
        return self.modalities_of()

    @cached_property
    def encoder(self) -> encoders.Encoder:
        """The image encoder the library was built with (loaded on first use)."""
        return encoders.load_info(self.encoder_info)

    @cached_property
    def text_model(self):
        """The open_clip model in torch, for text queries only (loaded on first use)."""
        from vidsim.features import visual  # noqa: PLC0415 - torch and open_clip only for text

        return visual.create_encoder(self.encoder_info.model, self.encoder_info.pretrained)[0]

    def featurize(self, path: str | os.PathLike, on_step: StepCallback | None = None) -> ClipFeatures:
        """Extract and featurize one video exactly as the pipeline does, in a private temp dir.

        Raises:
            MediaError: the file is not a usable video (the message names the file and why).
        """
        ex, q = self.extract_cfg, self.search_cfg
        cfg = dataclasses.replace(ex, max_duration_s=min(ex.max_duration_s, q.max_query_s),
                                  max_decode_gpix=min(ex.max_decode_gpix, q.max_query_gpix),
                                  timeout_s=min(ex.timeout_s, q.query_timeout_s))
        with tempfile.TemporaryDirectory(prefix="vidsim-query-") as tmp:
            _, feats = extract_and_featurize(path, tmp, self.encoder, self.audio_cfg, cfg, on_step)
        return feats

    # --- queries ---------------------------------------------------------------------------------

    def query(self, path: str | os.PathLike, modality: str = "audio_visual", k: int | None = None,
              score: str | None = None, method: str | None = None, weights: str | dict | None = None,
              exclude_duplicates: bool = False, text: str | None = None) -> QueryResult:
        """The k library clips most similar to a video file.

        Args:
            exclude_duplicates: leave out library clips with the same bytes (sha256) as the file.
            text: a description that joins the audio-visual late fusion (weight `text`).
        """
        check(modality)
        q = self._query(sha256=file_sha256(path), exclude_self=exclude_duplicates, text=text)  # text checked first
        return self._search(dataclasses.replace(q, feats=self.featurize(path)), modality, k, score, method, weights)

    def query_features(self, feats: ClipFeatures, modality: str, k: int | None = None,
                       score: str | None = None, method: str | None = None,
                       weights: str | dict | None = None) -> QueryResult:
        return self._search(_Query(feats=feats), modality, k, score, method, weights)

    def query_clip(self, clip: str, modality: str = "audio_visual", k: int | None = None,
                   score: str | None = None, method: str | None = None, weights: str | dict | None = None,
                   exclude_self: bool = False, text: str | None = None) -> QueryResult:
        """More like this: a library clip as the query.

        Args:
            exclude_self: leave out the clip itself and its exact duplicates (same sha256);
                otherwise it is its own first hit.
            text: a description that joins the audio-visual late fusion (weight `text`).
        """
        q = self._query(clip=clip, exclude_self=exclude_self, text=text)
        return self._search(q, modality, k, score, method, weights)

    def search_all(self, feats: ClipFeatures | None = None, clip: str | None = None, k: int | None = None,
                   score: str | None = None, method: str | None = None, weights: str | dict | None = None,
                   exclude_self: bool = False, text: str | None = None, sha256: str | None = None
                   ) -> dict[str, QueryResult | str]:
        """Results for every modality of the method (the app's columns), plus a `text` column for a
        text query; a modality the query lacks gets a message instead.

        A text given with a clip also joins the audio-visual late fusion (weight `text`, by
        default the mean of the other weights). With `exclude_self`, the library clip given (or
        the clips whose bytes hash to `sha256`, an upload's) are left out."""
        method = methods.check(method or self.default_method)
        q = self._query(feats=feats, clip=clip, sha256=sha256, exclude_self=exclude_self, text=text)
        out: dict[str, QueryResult | str] = {}
        if q.feats is not None or q.row is not None:
            for m in self.modalities_of(method):
                try:
                    out[m] = self._search(q, m, k, score, method, weights)
                except ValueError as exc:
                    out[m] = str(exc)
        if q.text is not None:
            out["text"] = self._text_search(q, k)
        return out

    def duplicates(self, modality: str = "audio_visual", k: int = 5, method: str | None = None
                   ) -> list[tuple[str, str, excerpts.Match]]:
        """The library's near-duplicate pairs: every clip as a query against the others, whose hits
        are the same footage (`search.same_footage`) in the modality, or for audio_visual in both
        sound and picture (a clip that only shows the same photo under other music is not a copy).
        Each pair once, in library order, with the span of the first clip's search."""
        from vidsim.progress import progress  # noqa: PLC0415

        check(modality)
        found: dict[frozenset, tuple[str, str, excerpts.Match]] | None = None
        for m in (SINGLE if modality == methods.FUSED else (modality,)):
            if m not in self.modalities_of(method):
                continue
            pairs: dict[frozenset, tuple[str, str, excerpts.Match]] = {}
            for clip in progress(self.column("clip"), desc=f"near duplicates ({m})", unit="clip"):
                try:
                    hits = self.query_clip(str(clip), m, k, method=method, exclude_self=True).hits
                except ValueError:  # the clip lacks the modality
                    continue
                for hit in hits:
                    pair = frozenset((str(clip), hit.clip))
                    if hit.same_footage and hit.match is not None and pair not in pairs:
                        pairs[pair] = (str(clip), hit.clip, hit.match)
            found = pairs if found is None else {key: v for key, v in found.items() if key in pairs}
        return list((found or {}).values())

    def query_text(self, text: str, k: int | None = None) -> QueryResult:
        """The k library clips whose frames best match a text (needs a CLIP text tower)."""
        return self._text_search(_Query(text=self.embed_text(text)), k)

    @property
    def has_text(self) -> bool:
        return self.encoder_info.has_text and methods.TEXT_SPACE in self.index.spaces

    def embed_text(self, text: str) -> np.ndarray:
        """(D,) the text's embedding; ValueError when this library cannot take text queries."""
        if not text or not text.strip():
            raise ValueError("the text query is empty")
        if not self.has_text:
            raise ValueError(f"text queries need an encoder with a CLIP text tower; this library was built "
                             f"with {self.encoder_info.model} ({self.encoder_info.weights}), image-only")
        from vidsim.features import visual  # noqa: PLC0415

        return visual.embed_text(self.text_model, self.encoder_info.model, text.strip())

    def _text_probabilities(self, t: np.ndarray, rows: np.ndarray | None = None, want: int = 1
                            ) -> tuple[np.ndarray, np.ndarray]:
        """How well each clip's best frame fits the text, relative to the best clip:
        exp(T * (cos - best cos)) with CLIP's temperature T, 1 for the best match, 0 without video.

        Returns:
            (rows, probabilities): the `rows` asked for, else every clip (a small library) or the
            text's `want` FAISS candidates (a large one).
        """
        from vidsim.features import visual  # noqa: PLC0415

        space = self.index.spaces[methods.TEXT_SPACE]
        scale = visual.logit_scale(self.text_model)
        q = t[None, :]
        if space.ann is None:
            sims = space.similarities(q)
            p = np.zeros(len(self.index.clips))
            p[space.rows] = np.exp(scale * (sims - sims.max()))
            return (np.arange(len(p)), p) if rows is None else (rows, p[rows])
        pos, d = space.nearest(q, max(want, 1))
        best = 1.0 - float(d[0])
        if rows is None:
            return space.rows[pos], np.exp(scale * ((1.0 - d) - best))
        at, found = space.positions(rows)
        sims = np.full(len(rows), -np.inf)
        sims[found] = 1.0 - space.distances_at(q, at[found])
        return rows, np.exp(scale * (sims - best))

    def _text_search(self, q: _Query, k: int | None) -> QueryResult:
        k = self._k(k)
        rows, p = self._text_probabilities(q.text, want=k + len(q.exclude))
        keep = ~np.isin(rows, list(q.exclude))
        rows, p = rows[keep], p[keep]
        order = np.argsort(-p, kind="stable")[:k]
        return QueryResult("text", "vidsim", self._hits(rows[order], p[order], None,
                                                        [{"text": float(p[i])} for i in order]), None)

    @property
    def scans_whole(self) -> bool:
        """Whether every space is scanned whole (no FAISS index), so a query can rank every clip."""
        return all(space.ann is None for space in self.index.spaces.values())

    def rank_all(self, feats: ClipFeatures, modality: str, method: str | None = None,
                 weights: str | dict | None = None, score: str | None = None, depth: int | None = None
                 ) -> QueryResult:
        """Every library clip ranked, or the first `depth` (for evaluation)."""
        return self._search(_Query(feats=feats), modality, depth or len(self.index.clips), score, method, weights,
                            matches=False)

    def rank_clip(self, clip: str, modality: str, method: str | None = None,
                  weights: str | dict | None = None, depth: int | None = None) -> QueryResult:
        """Every other library clip (or the first `depth`) ranked against a library clip
        (leave-one-out evaluation)."""
        row = self.row_of(clip)
        return self._search(_Query(row=row, exclude=frozenset({row})), modality,
                            depth or len(self.index.clips), None, method, weights, matches=False)

    # --- internals -------------------------------------------------------------------------------

    def _query(self, feats: ClipFeatures | None = None, clip: str | None = None, sha256: str | None = None,
               exclude_self: bool = False, text: str | None = None) -> _Query:
        """A query from new features or a library clip (whose own hash is used), plus an optional text.

        With `exclude_self`, every library clip with the query's bytes (sha256) is left out."""
        row = None
        if clip is not None:
            row = self.row_of(clip)
            sha256 = self.index.clips["sha256"].iloc[row]
        exclude = self.rows_with_sha(sha256) if exclude_self and sha256 else frozenset()
        return _Query(feats=feats, row=row, exclude=exclude, text=self.embed_text(text) if text else None)

    def _k(self, k: int | None) -> int:
        k = self.default_k if k is None else k
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        return k

    @cached_property
    def _names(self) -> pd.Index:
        """Clip name -> row, hashed once (a million clips: no scan per lookup)."""
        return pd.Index(self.column("clip"))

    def row_of(self, clip: str) -> int:
        rows = self.rows_of([clip])
        if rows[0] < 0:
            raise UnknownClip(f"{clip!r} is not in the library")
        return int(rows[0])

    def rows_of(self, clips: list[str]) -> np.ndarray:
        """(len(clips),) index rows of clip names (the first of duplicates), -1 for unknown ones."""
        names = self._names
        if names.is_unique:
            return names.get_indexer(clips)
        return np.array([int(np.flatnonzero(names == c)[0]) if c in names else -1 for c in clips])

    def rows_with_sha(self, sha: str) -> frozenset[int]:
        rows = self._shas.get_indexer_for([sha])
        return frozenset(int(r) for r in rows if r >= 0)

    @cached_property
    def _shas(self) -> pd.Index:
        return pd.Index(self.column("sha256"))

    def column(self, name: str) -> np.ndarray:
        """A column of the clips table as a NumPy array, made once: picking a query's hits from
        it takes microseconds where the table's own (Arrow) take costs ~10 ms at a million rows."""
        if name not in self._columns:
            self._columns[name] = self.index.clips[name].to_numpy(dtype=object)
        return self._columns[name]

    def _represent(self, q: _Query, space) -> np.ndarray | None:
        if q.feats is not None:
            return space.query(q.feats)
        if q.row is None:
            return None
        pos = np.flatnonzero(space.rows == q.row)
        return space.member(int(pos[0])) if len(pos) else None

    def _missing(self, q: _Query, modality: str) -> ValueError:
        if q.feats is None and q.row is None:
            return ValueError(f"a text query has no {modality.replace('_', '-')} features")
        if q.feats is not None:
            lacks = "audio" if q.feats.audio is None else "video"
            return ValueError(f"the query has no {lacks} stream, so it cannot be searched by {modality}")
        clip = self.index.clips["clip"].iloc[q.row]
        return ValueError(f"{clip} has no {modality.replace('_', '-')} features")

    def _distances(self, q: _Query, method: str, modality: str, want: int
                   ) -> tuple[np.ndarray, np.ndarray, methods.QueryDistances]:
        """(index rows, distances, the scoring) in one space: every clip of a small space, at
        least `want` candidates of a large one; ValueError when the query lacks the modality."""
        space = self.index.space(method, modality)
        rep = self._represent(q, space)
        if rep is None:
            raise self._missing(q, modality)
        skip = np.isin(space.rows, list(q.exclude)) if q.exclude else None
        scored = methods.QueryDistances(space, rep, methods.expansion_for(method, *self.expansion), skip, want)
        pos, dist = scored.candidates()
        return space.rows[pos], dist, scored

    def _search(self, q: _Query, modality: str, k: int | None, score: str | None, method: str | None,
                weights: str | dict | None, matches: bool = True) -> QueryResult:
        """The k best hits; with `matches`, each with where it matches the query (evaluation,
        which ranks every clip, leaves that out)."""
        method = methods.check(method or self.default_method)
        check(modality)
        if modality not in self.modalities_of(method):
            raise ValueError(f"no {modality} index for method {method}; "
                             f"available: {', '.join(self.modalities_of(method))}")
        k = self._k(k)
        score = score or methods.DEFAULT_SCORE[method]
        if score not in SCORES:
            raise ValueError(f"unknown score {score!r}; use one of {', '.join(SCORES)}")
        latent = functools.partial(self._latent, q, modality)
        if modality == methods.FUSED and methods.late_fused(method):
            return self._fused(q, method, k, weights, latent, matches)
        pool = max(k, RERANK) if matches else k
        rows, dist, scored = self._distances(q, method, modality, pool + len(q.exclude))
        keep = ~np.isin(rows, list(q.exclude))
        rows, dist = rows[keep], dist[keep]
        order = np.argsort(dist, kind="stable")[:pool]
        rows, dist = rows[order], dist[order]
        spans = None
        if matches:
            spans = self._matches(q, modality, rows, self.default_weights, {modality: scored})
            first = self._footage_first(modality, spans)[:k]
            rows, dist, spans = rows[first], dist[first], [spans[i] for i in first]
        if score == "softmax2":
            probs = ps_softmax2(dist)
        else:
            probs = self.index.calibrations[f"{method}.{modality}"](dist)
        return QueryResult(modality, method, self._hits(rows, probs, dist, [{modality: float(p)} for p in probs],
                                                        spans, modality), latent)

    def _footage_first(self, modality: str, spans: list[excerpts.Match | None]) -> np.ndarray:
        """The order of a ranked pool of hits with the same footage as the query first (closest
        match first), then the others as ranked: whatever else a clip shares with the query, the one the
        query was cut from (or a copy of it) is the most similar."""
        threshold = self.search_cfg.same_footage.get(modality)
        same = [i for i, m in enumerate(spans) if threshold is not None and excerpts.same_footage(m, threshold)]
        # the query itself (or a bit-identical copy: similarity 1) first, then the clearest footage
        same.sort(key=lambda i: (spans[i].similarity < excerpts.EXACT, -spans[i].score))
        return np.array(same + [i for i in range(len(spans)) if i not in same], dtype=np.int64)

    def _fused(self, q: _Query, method: str, k: int, weights: str | dict | None,
               latent: Callable[[], np.ndarray | None], matches: bool = True) -> QueryResult:
        w = parse_weights(weights, self.default_weights)
        n = len(self.index.clips)
        rep = {}
        for m in SINGLE:
            space = self.index.spaces.get(f"{method}.{m}")
            rep[m] = self._represent(q, space) if space is not None else None
        want = (max(k, RERANK) if matches else k) + len(q.exclude)
        text = q.text is not None and self.has_text
        text_rows = None
        if text and self.index.spaces[methods.TEXT_SPACE].ann is not None:
            text_rows = self._text_probabilities(q.text, want=want)[0]
        rows, probs, scored = methods.single_probabilities(
            self.index.spaces, self.index.calibrations, n, method, rep, w,
            methods.expansion_for(method, *self.expansion), q.exclude, want, text_rows,
            self.index.fused.get(method))
        if text:
            w = {**w, "text": w.get("text", float(np.mean(list(w.values()))))}
            probs["text"] = self._text_probabilities(q.text, rows)[1]
        if not probs:
            raise self._missing(q, methods.FUSED)
        fused = methods.fuse(probs, w)
        excluded = np.isin(rows, list(q.exclude))
        fused[excluded] = -1.0
        order = np.argsort(-fused, kind="stable")[:min(max(k, RERANK) if matches else k, int((~excluded).sum()))]
        spans = None
        if matches:  # also each modality's own best: the footage may be clear in one (a muffled copy's picture)
            own = [i for p in probs.values() for i in np.argsort(-p, kind="stable")[:RERANK] if not excluded[i]]
            order = np.array(list(dict.fromkeys([*order.tolist(), *own])), dtype=np.int64)
            spans = self._matches(q, methods.FUSED, rows[order], w, scored)
            first = self._footage_first(methods.FUSED, spans)[:k]
            order, spans = order[first], [spans[i] for i in first]
        scores = [{m: float(p[i]) for m, p in probs.items()} for i in order]
        used = {m: v for m, v in w.items() if m in probs}
        total = sum(used.values())
        return QueryResult(methods.FUSED, method, self._hits(rows[order], fused[order], None, scores, spans,
                                                             methods.FUSED), latent,
                           {m: round(v / total, 4) for m, v in used.items()})

    def _hits(self, rows: np.ndarray, probs: np.ndarray, dist: np.ndarray | None,
              scores: list[dict[str, float]], spans: list[excerpts.Match | None] | None = None,
              modality: str = "") -> list[Hit]:
        names, paths = self.column("clip")[rows], self.column("path")[rows]
        has = {m: self.column(column)[rows] for m, column in HAS_COLUMN.items() if column in self.index.clips}
        spans = spans or [None] * len(rows)
        threshold = self.search_cfg.same_footage.get(modality)
        return [Hit(rank=r + 1, clip=c, path=p, probability=float(pr),
                    distance=None if dist is None else float(dist[r]), scores=s, match=m,
                    same_footage=threshold is not None and excerpts.same_footage(m, threshold),
                    missing=tuple(x for x in s if x in has and not has[x][r]))
                for r, (c, p, pr, s, m) in enumerate(zip(names, paths, probs, scores, spans))]

    def _matches(self, q: _Query, modality: str, rows: np.ndarray, weights: dict[str, float],
                 scored: dict[str, methods.QueryDistances] | None = None) -> list[excerpts.Match | None]:
        """Where each hit's seconds line up with the query's (`vidsim.excerpts`), from the default
        method's per-second rows whichever method ranked the hits; the modalities of a fused search
        vote together with their weights. None for a hit (or a query) without per-second rows.

        Args:
            scored: modality -> the search's own scoring, which holds the query's similarities
                with its candidates' seconds already (`QueryDistances.similarities`)."""
        steps = {"audio": self.audio_cfg.mid_step, "visual": 1.0 / self.extract_cfg.frame_rate}
        parts = {}
        for m in (SINGLE if modality == methods.FUSED else (modality,)):
            space = self.index.spaces.get(f"vidsim.{m}")
            rep = self._represent(q, space) if space is not None else None
            if rep is not None and (modality != methods.FUSED or weights.get(m, 0) > 0):
                parts[m] = (space, rep)
        if len({steps[m] for m in parts}) > 1:  # seconds sampled at other rates do not line up: the heavier one
            heavy = max(parts, key=lambda m: weights.get(m, 0))
            parts = {heavy: parts[heavy]}
        sims: dict[str, list[np.ndarray | None]] = {}
        for m, (space, rep) in parts.items():
            pos, found = space.positions(rows)
            known = (scored or {}).get(m)
            got = iter(known.similarities(pos[found]) if known is not None and known.space is space else
                       [excerpts.similarities(rep, x) for x in space.members(pos[found])])
            sims[m] = [next(got) if f else None for f in found]
        combined = [excerpts.combine({m: s[i] for m, s in sims.items() if s[i] is not None},
                                     weights if modality == methods.FUSED else {modality: 1.0})
                    for i in range(len(rows))]
        step = steps[next(iter(parts))] if parts else 1.0
        aligned = iter(excerpts.align_many([x for x in combined if x is not None], step))
        return [None if x is None else next(aligned) for x in combined]

    def _latent(self, q: _Query, modality: str) -> np.ndarray | None:
        """The query in the original's latent space of the modality (for the plots), if it has one."""
        key = f"original.{modality}"
        if key not in self.index.spaces:
            return None
        return self._represent(q, self.index.spaces[key])

    # --- library browsing --------------------------------------------------------------------------

    def clip_info(self, clip: str) -> pd.Series:
        """The index row of a library clip (path, sha256, labels, ...)."""
        return self.index.clips.iloc[self.row_of(clip)]

    def playable(self, path: str | os.PathLike) -> Path | None:
        """The real path of `path` if it is a media file inside the indexed library folder, else None:
        the app serves nothing else, whatever clips.csv says."""
        root = self.index.manifest.get("library")
        try:
            real = Path(path).resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not root or not real.is_relative_to(Path(root).resolve()) or not real.is_file():
            return None
        return real if real.suffix.lower() in self.extract_cfg.extensions else None

    def thumbnail(self, clip: str) -> Path | None:
        """A JPEG frame of a library clip, when it has video."""
        path = self.index_dir / "thumbs" / f"{self.clip_info(clip)['sha256']}.jpg"
        return path if path.exists() else None

    def points(self, modality: str, limit: int | None = None, keep: list[str] | tuple[str, ...] = (),
               seed: int = 0) -> pd.DataFrame:
        """The library in the original's latent space of a modality: clip, labels, and z0..z{L-1}.

        Args:
            limit: at most this many clips, a uniform sample (a plot of a million points would
                stall the browser), always with the clips named in `keep` (e.g. the hits).
        """
        space = self.index.space("original", modality)
        pos = np.arange(len(space.rows))
        if limit is not None and len(pos) > limit:
            pos = np.random.default_rng(seed).choice(len(pos), limit, replace=False)
            rows = self.rows_of(list(keep))
            wanted, found = space.positions(rows[rows >= 0])
            pos = np.unique(np.concatenate([pos, wanted[found]]))
        clips = self.index.clips.iloc[space.rows[pos]].reset_index(drop=True)
        z = np.asarray(space.latents[pos])
        coords = pd.DataFrame(z, columns=[f"z{i}" for i in range(z.shape[1])])
        return pd.concat([clips[["clip", "path", "audio_label", "visual_label"]], coords], axis=1)

    def find_clips(self, text: str, limit: int = 200) -> list[str]:
        """Up to `limit` clip names containing `text` (case-insensitive), in library order: the
        app's picker for libraries too large for one list."""
        names = self.index.clips["clip"]
        hits = names[names.str.contains(text.strip(), case=False, regex=False)] if text.strip() else names
        return hits.head(limit).tolist()

    def status(self) -> pd.DataFrame:
        """The per-file status table of the run that built this index (file, ok/error, reason);
        read once (a million rows take a second)."""
        return self._status

    @cached_property
    def _status(self) -> pd.DataFrame:
        path = self.index_dir / "status.csv"
        return read_status(path) if path.exists() else pd.DataFrame()


def load_model(models_dir: Path, modality: str):
    """The original's VAE of a modality and its normaliser, refusing anything that is not a
    readable checkpoint."""
    from vidsim import vae  # noqa: PLC0415 - torch only for the original's method

    path = models_dir / f"{modality}.safetensors"
    if not path.exists():
        raise NotBuilt(f"model {path} is missing: run `dvc repro`")
    try:
        model, norm, _ = vae.load(path)
    except Exception as exc:  # safetensors raises its own kinds; nothing is unpickled
        raise IntegrityError(f"{path} is not a readable model ({type(exc).__name__}): "
                             "rebuild it with `dvc repro`") from None
    return model, norm
