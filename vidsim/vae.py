"""The original's VAE (input -> hidden -> latent), its training loop and its checkpoint format."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vidsim.config import VAEConfig
from vidsim.io import atomic_path
from vidsim.progress import progress as show_progress
from vidsim.spaces import Normaliser

log = logging.getLogger(__name__)

class VAE(nn.Module):
    """A one-hidden-layer Gaussian VAE; `encode` gives the latent mean used for search."""

    def __init__(self, n_in: int, hidden: int, latent: int):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, n_in))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.enc(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec(z), mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.mu(self.enc(x))


def vae_loss(x, recon, mu, logvar, beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample summed squared error and KL divergence, averaged over the batch."""
    rec = ((recon - x) ** 2).sum(dim=1).mean()
    kl = (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1)).mean()
    return rec, beta * kl


def train_vae(x: np.ndarray, cfg: VAEConfig, seed: int, progress: bool = True
              ) -> tuple[VAE, Normaliser, list[dict[str, float]]]:
    """Train one VAE on raw feature rows.

    Args:
        x: (N, D) float32 features of the library clips.

    Returns:
        the model (eval mode), its normaliser, and per-epoch mean losses.
    """
    if len(x) < 2:
        raise ValueError(f"need at least 2 clips to train, got {len(x)}")
    if len(x) > cfg.max_clips:  # a uniform sample: the time and memory of training stay bounded
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), cfg.max_clips, replace=False))]
    epochs = min(cfg.epochs, max(1, cfg.max_steps // -(-len(x) // cfg.batch_size)))
    if epochs < cfg.epochs:
        log.info("%d clips: %d epochs of %d within %d steps", len(x), epochs, cfg.epochs, cfg.max_steps)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    norm = Normaliser.fit(x)
    data = torch.from_numpy(norm(x))
    model = VAE(x.shape[1], cfg.hidden, cfg.latent)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history = []
    for epoch in show_progress(range(epochs), desc="train", unit="epoch") if progress else range(epochs):
        model.train()
        perm = torch.randperm(len(data), generator=gen)
        sums = np.zeros(2)
        for start in range(0, len(data), cfg.batch_size):
            batch = data[perm[start:start + cfg.batch_size]]
            recon, mu, logvar = model(batch)
            rec, kl = vae_loss(batch, recon, mu, logvar, cfg.beta)
            opt.zero_grad()
            (rec + kl).backward()
            opt.step()
            sums += np.array([rec.item(), kl.item()]) * len(batch)
        rec_m, kl_m = sums / len(data)
        history.append({"epoch": epoch, "loss": rec_m + kl_m, "reconstruction": rec_m, "kl": kl_m})
    return model.eval(), norm, history


@torch.inference_mode()
def encode(model: VAE, norm: Normaliser, x: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Latent means, (N, latent) float32, for raw feature rows (N, D), `chunk` rows at a time."""
    x = np.atleast_2d(x)
    parts = [model.encode(torch.from_numpy(norm(x[a:a + chunk]))).numpy().astype(np.float32)
             for a in range(0, len(x), chunk)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def save(path: str | os.PathLike, model: VAE, norm: Normaliser, meta: dict) -> None:
    """Weights and normaliser as safetensors; architecture and provenance in its metadata."""
    tensors = {f"model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    tensors["norm.mean"] = torch.from_numpy(norm.mean)
    tensors["norm.std"] = torch.from_numpy(norm.std)
    n_in, hidden = model.enc[0].in_features, model.enc[0].out_features
    header = {"n_in": n_in, "hidden": hidden, "latent": model.mu.out_features, **meta}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"vidsim": json.dumps(header)})


MAX_WEIGHTS = 50_000_000  # entries of the largest layer a checkpoint may claim (200 MB of float32)


def _shapes(n_in: int, hidden: int, latent: int) -> dict[str, torch.Size]:
    """The tensors a checkpoint of this size holds, without allocating a model (meta device)."""
    with torch.device("meta"):
        model = VAE(n_in, hidden, latent)
    out = {f"model.{k}": v.shape for k, v in model.state_dict().items()}
    return {**out, "norm.mean": torch.Size([n_in]), "norm.std": torch.Size([n_in])}


def load(path: str | os.PathLike) -> tuple[VAE, Normaliser, dict]:
    """Load a checkpoint written by `save` (no pickle involved)."""
    from safetensors import safe_open

    with safe_open(str(path), "pt") as fh:
        header = json.loads(fh.metadata()["vidsim"])
        shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    n_in, hidden, latent = (int(header[k]) for k in ("n_in", "hidden", "latent"))
    expected = {k: tuple(v) for k, v in _shapes(n_in, hidden, latent).items()}
    # Checked from the file's header, before anything is allocated: a crafted header cannot make
    # the loader build a model of any size.
    if shapes != expected or n_in * hidden > MAX_WEIGHTS:
        raise ValueError(f"{Path(path).name}: tensors do not match a {n_in} -> {hidden} -> {latent} VAE")
    tensors = load_file(str(path))
    model = VAE(n_in, hidden, latent)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    norm = Normaliser(tensors["norm.mean"].numpy(), tensors["norm.std"].numpy())
    return model.eval(), norm, header
