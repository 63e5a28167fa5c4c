import numpy as np

from vidsim import vae
from vidsim.config import VAEConfig


def _data(n=60, d=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, (3, d))
    return (centres[np.arange(n) % 3] + rng.normal(0, 0.5, (n, d))).astype(np.float32)


def test_loss_decreases_and_is_reproducible():
    x = _data()
    cfg = VAEConfig(hidden=16, latent=2, epochs=150, batch_size=16)
    _, _, h1 = vae.train_vae(x, cfg, seed=1, progress=False)
    _, _, h2 = vae.train_vae(x, cfg, seed=1, progress=False)
    first, last = h1[0]["loss"], np.mean([h["loss"] for h in h1[-10:]])
    assert last < 0.5 * first
    assert h1[-1]["loss"] == h2[-1]["loss"]  # fixed seed, same run


def test_latent_separates_clusters():
    x = _data()
    model, norm, _ = vae.train_vae(x, VAEConfig(hidden=16, latent=2, epochs=300), 0, progress=False)
    z = vae.encode(model, norm, x)
    assert z.shape == (60, 2)
    labels = np.arange(60) % 3
    d = np.linalg.norm(z[:, None] - z[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(axis=1)] == labels).mean() > 0.9


def test_checkpoint_roundtrip_is_safetensors(tmp_path):
    x = _data()
    model, norm, _ = vae.train_vae(x, VAEConfig(hidden=8, latent=2, epochs=5), 0, progress=False)
    vae.save(tmp_path / "m.safetensors", model, norm, {"modality": "audio"})
    loaded, lnorm, header = vae.load(tmp_path / "m.safetensors")
    assert header["modality"] == "audio" and header["n_in"] == 20
    np.testing.assert_array_equal(vae.encode(model, norm, x), vae.encode(loaded, lnorm, x))
    assert (tmp_path / "m.safetensors").read_bytes()[8:9] == b"{"  # a safetensors JSON header


def test_normaliser_handles_constant_columns():
    x = np.ones((5, 3), np.float32)
    x[:, 0] = np.arange(5)
    n = vae.Normaliser.fit(x)
    out = n(x)
    assert np.isfinite(out).all() and abs(out[:, 0].mean()) < 1e-6
