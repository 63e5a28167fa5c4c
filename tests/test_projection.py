import numpy as np

from vidsim.projection import project_2d


def test_2d_latent_is_shown_as_is():
    z = np.random.default_rng(0).normal(size=(10, 2))
    (lib, q), caption = project_2d(z, z[:1])
    np.testing.assert_array_equal(lib, z)
    np.testing.assert_array_equal(q, z[:1])
    assert "latent is 2-D" in caption


def test_higher_latent_uses_pca_and_places_the_query_consistently():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 8)) * np.array([10, 5, 1, 1, 1, 1, 1, 1])
    (lib, q), caption = project_2d(z, z[3:4])
    assert lib.shape == (50, 2) and q.shape == (1, 2)
    np.testing.assert_allclose(q[0], lib[3])  # a library clip used as the query lands on itself
    assert caption.startswith("PCA of the 8-D latent") and "% of the variance" in caption
    assert lib[:, 0].var() > lib[:, 1].var()  # first component carries the most variance


def test_1d_latent_gets_a_zero_axis():
    (lib,), caption = project_2d(np.arange(4.0)[:, None])
    assert lib.shape == (4, 2) and (lib[:, 1] == 0).all() and "1-D" in caption
