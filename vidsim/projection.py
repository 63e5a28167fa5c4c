"""2-D views of a latent space for plots: the latent itself when it is 2-D, else a PCA."""

from __future__ import annotations

import numpy as np


def project_2d(library: np.ndarray, *others: np.ndarray) -> tuple[list[np.ndarray], str]:
    """Project library latents (N, L) and any other points (M, L) onto the same 2-D plane.

    Returns:
        [library (N, 2), *others (M, 2)] and a caption saying which projection was used.
    """
    n, dim = library.shape
    if dim == 2:
        return [library, *others], "latent dimensions 1 and 2 (the latent is 2-D)"
    if dim == 1:
        pad = lambda a: np.column_stack([a[:, 0], np.zeros(len(a))])  # noqa: E731
        return [pad(library), *map(pad, others)], "the 1-D latent (y is 0)"
    mean = library.mean(axis=0)
    _, s, vt = np.linalg.svd(library - mean, full_matrices=False)
    axes = vt[:2].T  # (L, 2)
    share = float((s[:2] ** 2).sum() / max((s**2).sum(), 1e-12))
    proj = [(a - mean) @ axes for a in (library, *others)]
    return proj, f"PCA of the {dim}-D latent: first two components ({share:.0%} of the variance)"
