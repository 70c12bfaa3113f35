"""Nearest-neighbour chain graphs of fixed points: points on a line, relabelled copies,
resampling to a common size, graphs per network and condition."""
import numpy as np
import pytest
import tensorflow as tf

from rnn_dyn.chains import (ChainGraph, chain_graph_distance, compute_chain_graph, compute_chain_graphs,
                            pairwise_chain_distances)
from rnn_dyn.fixed_points import find_fixed_points


def on_a_line(positions, seed=0):
    """Points at ``positions`` along a random direction in 5-D, and the positions."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=5)
    direction /= np.linalg.norm(direction)
    return rng.normal(size=5) + np.outer(positions, direction), np.asarray(positions, float)


def edges(n, pairs):
    a = np.zeros((n, n))
    for i, j in pairs:
        a[i, j] = a[j, i] = 1
    return a


def test_chain_graph_of_points_on_a_line():
    points, values = on_a_line([0, 1, 3, 4, 10])
    perm = np.array([3, 0, 4, 2, 1])  # given in another order
    one = compute_chain_graph(points[perm], values[perm], k=1)
    np.testing.assert_array_equal(one.values, values)
    np.testing.assert_array_equal(perm[one.order], np.arange(5))
    np.testing.assert_array_equal(one.adjacency, edges(5, [(0, 1), (2, 3), (3, 4)]))
    two = compute_chain_graph(points[perm], values[perm], k=2)
    np.testing.assert_array_equal(
        two.adjacency, edges(5, [(0, 1), (0, 2), (1, 2), (2, 3), (1, 3), (3, 4), (2, 4)]))
    line, u = on_a_line(np.arange(10.0))
    path = compute_chain_graph(line, u)  # k = 2: the path plus one edge at each end
    np.testing.assert_array_equal(path.adjacency,
                                  edges(10, [(i, i + 1) for i in range(9)] + [(0, 2), (7, 9)]))


def test_chain_distance_relabelled_copy_and_resampling():
    line, u = on_a_line(np.arange(10.0))
    a = compute_chain_graph(line, u)
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(5, 5)))[0]
    perm = np.random.default_rng(2).permutation(10)
    copy = compute_chain_graph(line[perm] @ rotation + 3.0, u[perm])
    assert chain_graph_distance(a, copy) == 0.0
    long_line, u20 = on_a_line(np.arange(20.0), seed=3)
    b = compute_chain_graph(long_line, u20)
    assert chain_graph_distance(a, b) == 2.0  # a's end edges (0, 2), (7, 9); b's fall in a bin
    assert chain_graph_distance(a, b, n_nodes=5) == 0.0
    scattered = compute_chain_graph(np.random.default_rng(4).normal(size=(10, 5)), u)
    assert chain_graph_distance(a, scattered) > 2.0
    empty = compute_chain_graph(np.zeros((0, 5)), [])
    d = pairwise_chain_distances([a, copy, b, scattered, empty])
    assert d.shape == (5, 5) and np.isnan(d[4]).all() and np.isnan(d[:, 4]).all()
    np.testing.assert_array_equal(d[:4, :4], d[:4, :4].T)
    assert d[0, 1] == 0.0 and d[0, 2] == 2.0 and d[0, 3] > 2.0
    with pytest.raises(ValueError, match="n_nodes must be at most"):
        chain_graph_distance(a, b, n_nodes=11)


def test_chain_graphs_from_fixed_points_per_network_and_condition():
    b = np.array([[1.0], [2.0]])

    def linear(h, x):  # h* = 2 b u: one point per condition, on a line
        return 0.5 * h + tf.linalg.matvec(tf.constant(b, h.dtype), x)

    u = np.repeat(np.linspace(0, 1, 6), 4)[:, None]
    fps = find_fixed_points(linear, u, np.random.default_rng(0).uniform(-5, 5, (24, 2)))
    assert len(fps) == 6
    (chain,) = compute_chain_graphs(fps, fps.x_cond[:, 0])
    assert isinstance(chain, ChainGraph) and chain.n_nodes == 6
    np.testing.assert_allclose(chain.values, np.linspace(0, 1, 6))
    np.testing.assert_array_equal(chain.adjacency,
                                  edges(6, [(i, i + 1) for i in range(5)] + [(0, 2), (3, 5)]))
    per_condition = compute_chain_graphs(fps, fps.x_cond[:, 0], by_condition=True)
    assert len(per_condition) == 1 and [c.n_nodes for c in per_condition[0]] == [1] * 6
    with pytest.raises(ValueError, match="one entry per point"):
        compute_chain_graphs(fps, [0.0])
