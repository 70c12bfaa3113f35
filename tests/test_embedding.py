"""Tests of rnn_dyn.embedding: MDS maps and silhouette separation on distance matrices."""
import numpy as np
import pytest

from rnn_dyn.embedding import check_distances, embed, separation
from rnn_dyn.similarity import pairwise_distances


def euclidean(points):
    return np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))


@pytest.fixture
def clusters():
    g = np.random.default_rng(0)
    points = np.vstack([g.normal(0, 0.1, (8, 3)), g.normal(5, 0.1, (8, 3))])
    return euclidean(points), np.repeat(["a", "b"], 8)


def test_two_clusters_are_separated_and_preserved(clusters):
    D, labels = clusters
    assert separation(D, labels) > 0.9
    E = embed(D)
    assert E.shape == (16, 2)
    assert separation(euclidean(E), labels) > 0.9
    # metric MDS keeps the between-cluster distance
    gap = np.linalg.norm(E[:8].mean(0) - E[8:].mean(0))
    assert gap == pytest.approx(np.linalg.norm(np.full(3, 5.0)), rel=0.1)


def test_embed_is_seeded_and_sized(clusters):
    D, _ = clusters
    np.testing.assert_array_equal(embed(D, seed=3), embed(D, seed=3))
    assert embed(D, n_components=3).shape == (16, 3)


def test_separation_of_labellings(clusters):
    D, labels = clusters
    mixed = np.tile(["x", "y"], 8)
    scores = separation(D, {"cluster": labels, "mixed": mixed})
    assert set(scores) == {"cluster", "mixed"}
    assert scores["cluster"] > 0.9 and scores["mixed"] < 0.1


def test_networks_from_two_families_separate():
    g = np.random.default_rng(1)
    latents = [g.standard_normal((150, 3)) for _ in range(2)]
    reps = [latents[i % 2] @ g.standard_normal((3, 10)) + 0.3 * g.standard_normal((150, 10))
            for i in range(8)]
    D = pairwise_distances(reps, metric="svcca", k=3)
    labels = np.arange(8) % 2
    assert separation(D, labels) > 0.5
    assert separation(euclidean(embed(D)), labels) > 0.5


def test_check_distances_symmetrises_small_noise():
    D = euclidean(np.arange(4.0)[:, None])
    noisy = D + 1e-12 * np.triu(np.ones((4, 4)), 1)
    out = check_distances(noisy)
    assert np.array_equal(out, out.T) and np.all(np.diag(out) == 0)


@pytest.mark.parametrize("matrix, error, match", [
    (np.zeros((3, 4)), ValueError, r"distances must be a square \(n, n\) matrix .*\(3, 4\)"),
    (np.zeros(3), ValueError, r"square .*got shape \(3,\)"),
    (np.array([[0, 1], [2, 0]]), ValueError, "distances must be symmetric; got max"),
    (np.array([[0, -1], [-1, 0]]), ValueError, "distances must be non-negative; got minimum -1"),
    (np.array([[1, 1], [1, 0]]), ValueError, "distances must have a zero diagonal"),
    (np.array([[0, np.nan], [np.nan, 0]]), ValueError, "distances must contain only finite"),
    (np.array([["a", "b"], ["b", "a"]]), TypeError, "distances must be a square array of real"),
])
def test_bad_matrices_raise(matrix, error, match):
    with pytest.raises(error, match=match):
        embed(matrix)
    with pytest.raises(error, match=match):
        separation(matrix, [0, 1] * (max(np.shape(matrix)[0], 2) // 2))


def test_bad_labels_and_options_raise(clusters):
    D, labels = clusters
    with pytest.raises(ValueError, match=r"labels must have between 2 and n - 1 = 15 distinct "
                                         r"labels; got 1"):
        separation(D, np.zeros(16))
    with pytest.raises(ValueError, match="got 16"):
        separation(D, np.arange(16))
    with pytest.raises(ValueError, match=r"labels must have shape \(16,\).*got shape \(3,\)"):
        separation(D, [0, 1, 0])
    with pytest.raises(ValueError, match=r"labels\['bad'\] must have between 2"):
        separation(D, {"good": labels, "bad": np.zeros(16)})
    with pytest.raises(TypeError, match="n_components must be an integer; got 2.0"):
        embed(D, n_components=2.0)
    with pytest.raises(TypeError, match="seed must be an int; got None"):
        embed(D, seed=None)
