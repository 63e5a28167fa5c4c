import numpy as np
import pytest

from vidsim.scores import ps_kernel, ps_softmax2


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
