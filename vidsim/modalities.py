"""The one place that knows the modalities: their names, labels, and how a clip's features become
each modality's model input. The query path and the batch path both call these functions."""

from __future__ import annotations

import dataclasses

import numpy as np

# Searchable modalities; audio_visual is the fused one (early fusion for the original method,
# late fusion of the two single modalities for the default one).
MODALITIES: tuple[str, ...] = ("audio", "visual", "audio_visual")
SINGLE: tuple[str, ...] = ("audio", "visual")
TITLES = {"audio": "Audio only", "audio_visual": "Audio-visual", "visual": "Visual only", "text": "Text"}
# Which labels must agree for a hit to count as relevant, per modality.
RELEVANCE: dict[str, tuple[str, ...]] = {
    "audio": ("audio_label",), "visual": ("visual_label",), "audio_visual": ("audio_label", "visual_label")}


def check(modality: str) -> str:
    """The modality, or a ValueError that lists the valid ones."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; use one of {', '.join(MODALITIES)}")
    return modality


def clip_input(audio: np.ndarray | None, visual: np.ndarray | None, modality: str) -> np.ndarray | None:
    """A modality's clip-level model input (the original's): audio statistics, the mean frame
    embedding, or both concatenated (early fusion).

    Works on one clip ((138,), (D,)) or a batch ((N, 138), (N, D)); None when a part is missing.
    """
    check(modality)
    if modality == "audio":
        return audio
    if modality == "visual":
        return visual
    if audio is None or visual is None:
        return None
    return np.concatenate([audio, visual], axis=-1, dtype=np.float32)  # one copy (1M clips: 2.6 GB)


def segment_input(audio_seconds: np.ndarray | None, frames: np.ndarray | None,
                  modality: str) -> np.ndarray | None:
    """A single modality's per-second rows: (T, 136 + 3 x mel bands) audio windows or (T, D) frame
    embeddings."""
    if modality not in SINGLE:
        raise ValueError(f"{modality!r} has no per-second rows; use one of {', '.join(SINGLE)}")
    rows = audio_seconds if modality == "audio" else frames
    return None if rows is None or len(rows) == 0 else rows


def parse_weights(text: str | dict[str, float] | None, default: dict[str, float]) -> dict[str, float]:
    """Late-fusion weights from "audio=0.6,visual=0.4" (or a dict), normalised to sum to 1
    (`text` is the weight of a text query, when one is given).

    Raises:
        ValueError: an unknown modality, a negative or non-numeric weight, or all weights zero.
    """
    if text is None or text == "":
        raw = dict(default)
    elif isinstance(text, dict):
        raw = dict(text)
    else:
        raw = {}
        for part in text.split(","):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep:
                raise ValueError(f"weight {part.strip()!r} is not of the form modality=number")
            try:
                raw[name] = float(value)
            except ValueError:
                raise ValueError(f"weight for {name!r} is not a number: {value.strip()!r}") from None
    known = (*SINGLE, "text")
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ValueError(f"unknown weight {', '.join(unknown)}; use {', '.join(known)}")
    if any(not np.isfinite(w) or w < 0 for w in raw.values()):
        raise ValueError("weights must be finite and not negative")
    total = sum(raw.values())
    if total <= 0:
        raise ValueError("at least one weight must be above zero")
    return {m: w / total for m, w in raw.items()}  # a zero stays: it says "leave this out"


@dataclasses.dataclass
class ClipFeatures:
    """Everything search needs from one clip; a missing modality is None."""

    audio: np.ndarray | None  # (138,) float32 clip statistics
    frames: np.ndarray | None  # (T, D) float32, one L2-normalised row per sampled second
    audio_seconds: np.ndarray | None = None  # (T, 136 + 192) float32, one row per mid-term window

    @property
    def visual(self) -> np.ndarray | None:
        """(D,) clip mean of the frame embeddings."""
        return None if self.frames is None else self.frames.mean(axis=0).astype(np.float32)

    def vector(self, modality: str) -> np.ndarray | None:
        """The clip-level model input of a modality (see `clip_input`)."""
        return clip_input(self.audio, self.visual, modality)

    def segments(self, modality: str) -> np.ndarray | None:
        """The per-second rows of a single modality (see `segment_input`)."""
        return segment_input(self.audio_seconds, self.frames, modality)
