"""Slow manifolds: hand-built maps whose slow manifolds are known, and the result object."""
import numpy as np
import pytest
import tensorflow as tf

from rnn_dyn.fixed_points import FixedPoints, find_fixed_points
from rnn_dyn.slow_points import SlowManifolds, find_slow_manifolds, local_dimension


def three_lines(h, x):
    """a drifts by 1e-4 a step; b is bistable (±1) with an unstable 0: three slow lines b = -1, 0, 1."""
    a, b = h[:, 0], h[:, 1]
    return tf.stack([a + 1e-4, b + 0.1 * (b - b ** 3)], axis=-1)


def line_attractor(h, x):
    """Every point of the line b = c = 0 is a fixed point (eigenvalues 1, 0.5, 0.2)."""
    return tf.stack([h[:, 0], 0.5 * h[:, 1], 0.2 * h[:, 2]], axis=-1)


@pytest.fixture(scope="module")
def lines():
    starts = np.random.default_rng(0).uniform(-1.2, 1.2, (256, 2))
    return find_fixed_points(three_lines, [0.0], starts)


def test_three_slow_lines_are_three_1d_manifolds(lines):
    assert set(lines.kind) == {"slow"} and len(lines) > 30  # q = 5e-9 everywhere on them: no root
    manifolds = lines.slow_manifolds()
    assert isinstance(manifolds, SlowManifolds) and len(manifolds) == 3
    assert manifolds.dimension.tolist() == [1, 1, 1] and manifolds.counts().tolist() == [3]
    np.testing.assert_allclose(np.sort(manifolds.center[:, 1]), [-1, 0, 1], atol=1e-6)
    assert np.all(manifolds.extent > 1.5)  # they run along a, across the starts' range [-1.2, 1.2]
    assert manifolds.n_slow.sum() == len(lines) and np.all(manifolds.label >= 0)
    for k in range(3):  # every point labelled k lies on manifold k's line
        b = lines.hstar[manifolds.label == k, 1]
        assert np.ptp(b) < 1e-6 and abs(b.mean() - manifolds.center[k, 1]) < 1e-6
    assert "network 0: three 1-D slow manifolds" in manifolds.summary()


def test_a_tight_eigenvalue_tolerance_or_link_changes_the_answer(lines):
    assert lines.slow_manifolds(tol_eig=0.5).dimension.tolist() == [2, 2, 2]  # 0.8 and 1.1 too
    assert len(lines.slow_manifolds(link=1e-3)) > 3  # no two neighbours that close: split up


def test_a_line_of_fixed_points_is_a_1d_manifold_of_fixed_points():
    starts = np.random.default_rng(1).uniform(-1, 1, (64, 3))
    fps = find_fixed_points(line_attractor, [0.0], starts, merge_radius=0.05)
    assert set(fps.kind) == {"fixed"} and len(fps) > 10
    manifolds = find_slow_manifolds(fps)
    assert len(manifolds) == 1 and manifolds.dimension.tolist() == [1]
    assert manifolds.n_fixed.tolist() == [len(fps)] and manifolds.n_slow.tolist() == [0]
    assert manifolds.describe(0) == "one 1-D slow manifold"


def test_isolated_fixed_points_make_no_manifold():
    fps = find_fixed_points(lambda h, x: 0.5 * h + 0.1, [0.0], np.zeros((4, 2)) + np.arange(4)[:, None])
    manifolds = fps.slow_manifolds()
    assert len(manifolds) == 0 and manifolds.label.tolist() == [-1]
    assert manifolds.describe(0) == "no slow manifold" and "no slow manifold" in manifolds.summary()


def test_local_dimension_counts_eigenvalues_near_one():
    lam = np.array([[1.0, 0.99 + 0.02j, 0.9, -1.0], [1.2, 0.5, 0.0, 0.96]])
    assert local_dimension(lam).tolist() == [2, 1]
    assert local_dimension(lam, tol_eig=0.2).tolist() == [3, 2]


def test_errors_name_the_argument(lines):
    with pytest.raises(TypeError, match="fps must be a FixedPoints"):
        find_slow_manifolds(lines.hstar)
    with pytest.raises(ValueError, match="link must be > 0"):
        find_slow_manifolds(lines, link=0.0)
    assert isinstance(lines, FixedPoints)
