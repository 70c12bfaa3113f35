"""Known answers for the permutation tests and bootstrap intervals."""
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from rnn_dyn import bootstrap_ci, mantel_test, separation, separation_test
from rnn_dyn.statistics import comparable, configuration_spread, mantel_r, separation_ci, silhouette


def clusters(rng, n_per=6, k=4, strength=3.0, dim=5):
    """Distances of ``k`` groups of ``n_per`` Gaussian points, centres ``strength`` apart (0: no structure)."""
    centers = rng.normal(size=(k, dim)) * strength
    labels = np.repeat(np.arange(k), n_per)
    X = centers[labels] + rng.normal(size=(len(labels), dim))
    return cdist(X, X), labels


def test_silhouette_matches_scikit_learn():
    rng = np.random.default_rng(0)
    D, _ = clusters(rng, strength=0.5)
    for _ in range(5):
        labels = rng.integers(0, 4, len(D))
        labels[0] = 9  # a group of one scores 0
        assert silhouette(D, labels) == pytest.approx(separation(D, labels))
        assert separation_test(D, labels, n_permutations=9).statistic == pytest.approx(separation(D, labels))


def test_resampled_silhouette_leaves_out_copies():
    D, labels = clusters(np.random.default_rng(1), strength=1.0)
    n = len(D)
    twice = np.repeat(np.arange(n), 2)  # every network twice: the same within- and between-group means
    assert silhouette(D, labels, twice) == pytest.approx(silhouette(D, labels))
    counted = separation(D[np.ix_(twice, twice)] + 1e-12 * (1 - np.eye(2 * n)), labels[twice])
    assert counted > silhouette(D, labels) + 0.05  # what counting the copies' zero distance would do


def test_planted_clusters_are_significant():
    res = separation_test(*clusters(np.random.default_rng(2)), n_permutations=999, seed=0)
    sil, p = res
    assert sil > 0.3 and p == pytest.approx(1 / 1000)
    assert res.n == 24 and res.n_dropped == 0 and res.null.shape == (999,) and res.p_less > 0.99


def test_p_value_counts_the_null_as_specified():
    D, labels = clusters(np.random.default_rng(3), strength=0.3)
    res = separation_test(D, labels, n_permutations=499, seed=4)
    assert res.p_value == pytest.approx((1 + np.sum(res.null >= res.statistic - 1e-12)) / 500)
    assert res.p_less == pytest.approx((1 + np.sum(res.null <= res.statistic + 1e-12)) / 500)
    assert separation_test(D, labels, n_permutations=499, seed=4).p_value == res.p_value  # seeded
    assert np.all(res.null <= 1) and np.all(res.null >= -1)


def test_unstructured_points_are_not_significant():
    ps = np.array([separation_test(*clusters(np.random.default_rng(100 + s), strength=0.0), n_permutations=199,
                                   seed=s).p_value for s in range(40)])
    assert np.mean(ps < 0.05) <= 0.15  # 5% expected; 6 of 40 has probability ~0.05
    assert 0.3 < np.mean(ps < 0.5) < 0.7  # roughly uniform
    assert 0.35 < ps.mean() < 0.65


def test_anti_clustered_points_fall_in_the_lower_tail():
    labels = np.repeat(np.arange(4), 5)
    D = np.where(np.equal.outer(labels, labels), 1.0, 0.5) + np.random.default_rng(5).uniform(0, 0.05, (20, 20))
    D = (D + D.T) / 2
    np.fill_diagonal(D, 0)
    res = separation_test(D, labels)
    assert res.statistic < 0 and res.p_value > 0.99 and res.p_less < 0.01


def test_networks_with_nan_distances_are_dropped():
    D, labels = clusters(np.random.default_rng(6))
    D[[2, 7]] = np.nan
    D[:, [2, 7]] = np.nan
    res = separation_test(D, labels, n_permutations=99)
    keep = comparable(D)
    assert res.n == 22 and res.n_dropped == 2 and not keep[2] and not keep[7]
    assert res.statistic == pytest.approx(separation(D[np.ix_(keep, keep)], labels[keep]))


def test_permutations_are_fast():
    D, labels = clusters(np.random.default_rng(7), n_per=12)  # 48 networks
    separation_test(D, labels, n_permutations=9)
    start = time.perf_counter()
    separation_test(D, labels, n_permutations=999)
    assert time.perf_counter() - start < 1.0


def test_mantel_noisy_copy_and_independent_matrices():
    rng = np.random.default_rng(8)
    A, _ = clusters(rng, strength=1.0)
    B = A + rng.uniform(0, 1.0, A.shape)
    B = (B + B.T) / 2
    np.fill_diagonal(B, 0)
    r, p = mantel_test(A, B)
    i, j = np.triu_indices(len(A), 1)
    assert r == pytest.approx(np.corrcoef(A[i, j], B[i, j])[0, 1]) == pytest.approx(mantel_r(A, B))
    assert r > 0.5 and p == pytest.approx(1 / 1000)
    ps = []
    for s in range(40):
        rng = np.random.default_rng(200 + s)
        ps.append(mantel_test(clusters(rng, strength=0)[0], clusters(rng, strength=0)[0], 199, seed=s).p_value)
    assert np.mean(np.array(ps) < 0.05) <= 0.15 and 0.3 < np.mean(np.array(ps) < 0.5) < 0.7


def test_mantel_drops_nan_networks_and_checks_shapes():
    A, _ = clusters(np.random.default_rng(9))
    B = A.copy()
    B[3] = B[:, 3] = np.nan
    res = mantel_test(A, B, n_permutations=99)
    assert res.n == 23 and res.statistic == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same shape"):
        mantel_test(A, A[:5, :5])


def test_bootstrap_ci_covers_the_true_mean():
    covered = 0
    for s in range(40):
        x = np.random.default_rng(300 + s).normal(1.0, 2.0, 30)
        lo, hi = bootstrap_ci(lambda idx: x[idx].mean(), len(x), n_bootstrap=500, seed=s)
        covered += lo <= 1.0 <= hi
    assert covered >= 34  # 95% nominal: 38 expected


def test_bootstrap_keeps_strata_and_silhouette_ci_covers_the_sample():
    D, labels = clusters(np.random.default_rng(10), strength=2.0)
    seen = []

    def statistic(idx):
        seen.append(np.array_equal(labels[idx], labels))
        return silhouette(D, labels, idx)

    lo, hi = bootstrap_ci(statistic, len(D), n_bootstrap=200, strata=labels)
    assert all(seen) and lo < silhouette(D, labels) < hi and lo > 0
    assert separation_ci(D, labels, n_bootstrap=200) == (lo, hi)
    assert np.isnan(bootstrap_ci(lambda idx: np.nan, 5)).all()


def test_configuration_spread_finds_the_configuration_whose_seeds_disagree():
    rng = np.random.default_rng(3)
    config = np.repeat(["gru/tanh", "lstm/tanh", "ugrnn/tanh", "gru/relu"], 4)
    centers = {"gru/tanh": [0, 0], "lstm/tanh": [3, 0], "ugrnn/tanh": [0, 3], "gru/relu": [9, 9]}
    X = np.array([centers[c] for c in config]) + 0.1 * rng.standard_normal((16, 2))
    X[8:12] = rng.uniform(-6, 6, (4, 2))  # the UGRNNs' seeds land anywhere
    D = cdist(X, X)
    D[0, 1] = D[1, 0] = np.nan  # left out of the means
    rows = {r["config"]: r for r in configuration_spread(D, config)}
    assert rows["ugrnn/tanh"]["ratio"] > 1 > rows["gru/tanh"]["ratio"] and rows["lstm/tanh"]["ratio"] < 0.2
    assert rows["gru/tanh"]["n"] == 4 and np.isfinite(rows["gru/tanh"]["within"])
    other = [j for j in range(16) if config[j] in ("lstm/tanh", "ugrnn/tanh")]
    assert rows["gru/tanh"]["between"] == pytest.approx(D[np.ix_(range(4), other)].mean())
    assert np.isnan(rows["gru/relu"]["between"])  # no other relu cell
    with pytest.raises(ValueError, match="config must hold one 'cell/activation' label per network"):
        configuration_spread(D, ["gru"] * 16)


def test_bad_arguments_are_named():
    D, labels = clusters(np.random.default_rng(11))
    with pytest.raises(ValueError, match="labels must have shape"):
        separation_test(D, labels[:-1])
    with pytest.raises(ValueError, match="distinct labels"):
        separation_test(D, np.zeros(len(D)))
    with pytest.raises(ValueError, match="n_permutations"):
        separation_test(D, labels, n_permutations=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(lambda idx: 0.0, 5, level=1.5)
    with pytest.raises(ValueError, match="method"):
        bootstrap_ci(lambda idx: 0.0, 5, method="bca")


def test_statistics_and_claims_do_not_import_tensorflow():
    code = "import sys, rnn_dyn.claims; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
