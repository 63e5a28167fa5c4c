import numpy as np
import pytest

from vidsim.scores import knn, neighbour_scale, ps_kernel, ps_softmax2


def test_softmax2_matches_the_original_formula():
    d = np.array([0.0, 1.0, 2.0])
    inner = np.exp(d) / np.exp(d).sum()  # [0.0900, 0.2447, 0.6652]
    outer = np.exp(1 - inner) / np.exp(1 - inner).sum()
    ps = ps_softmax2(d)
    np.testing.assert_allclose(ps, outer)
    np.testing.assert_allclose(ps, [0.4133, 0.3541, 0.2325], atol=1e-4)
    assert ps.sum() == pytest.approx(1.0)


def test_softmax2_barely_separates_near_and_far():
    # the reason for a better default: a 100x farther hit keeps most of its score
    ps = ps_softmax2(np.array([0.01, 0.02, 0.03, 0.04, 1.0]))
    assert ps.max() / ps.min() < 2


def test_kernel_is_one_at_zero_and_decreasing():
    p = ps_kernel(np.array([0.0, 1.0, 2.0, 10.0]), scale=1.0)
    np.testing.assert_allclose(p[:2], [1.0, np.exp(-0.5)])
    assert np.all(np.diff(p) < 0) and p[-1] < 1e-6


def test_knn_ranks_itself_first_and_can_exclude():
    z = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.0, 0.5]])
    idx, d = knn(z, z[0], 3)
    assert idx.tolist() == [0, 3, 1] and d.tolist() == [0.0, 0.5, 1.0]
    idx, _ = knn(z, z[0], 10, exclude=0)
    assert idx.tolist() == [3, 1, 2]


def test_neighbour_scale_is_median_kth_distance():
    z = np.arange(10, dtype=float)[:, None]  # points on a line, spacing 1
    assert neighbour_scale(z, k=1) == 1.0
    assert neighbour_scale(z, k=2) == 1.0  # interior points have two neighbours at 1
