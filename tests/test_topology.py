"""Topology: transition graphs of a known 2-D map and of a trained flip-flop GRU,
and distances between graphs.

The trained network is ``fixtures/gru_flipflop_64.npz`` (two 64-unit tanh GRUs,
27 fixed points each: 8 stable, 19 saddles); nothing here trains.
"""
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from rnn_dyn.config import ModelConfig
from rnn_dyn.fixed_points import find_fixed_points, find_population_fixed_points
from rnn_dyn.graph_distances import (graph_distance, graph_matching_distance, keep_modal_count,
                                     pairwise_graph_distances)
from rnn_dyn.population import Population
from rnn_dyn.tasks import get_task
from rnn_dyn.transition_graphs import (TransitionGraph, compute_transition_graphs, readout_order,
                                      transition_structure)

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "gru_flipflop_64.npz"
META = ("seeds", "val_loss", "config")

# -- a 2-D map with known transition probabilities ------------------------------------
SHEAR = np.array([[1.0, 1.0], [0.0, 1.0]])  # h = SHEAR z


def wells(h, x):
    """``z_i' = z_i + 0.1 (z_i − z_i³)`` per coordinate, seen through ``h = SHEAR z``.

    Fixed points ``SHEAR z``, ``z ∈ {−1, 0, 1}²``: 4 stable corners, 4 saddles
    (one ``z_i = 0``) and a source at 0.  Each ``z_i`` keeps its sign, so a
    saddle's starts split 1/2 : 1/2 and the source's go to the corner of the
    sector they start in: the shear makes those sectors 45° and 135° wide,
    i.e. 1/8 and 3/8 of isotropic directions in ``h``.
    """
    z = tf.stack([h[:, 0] - h[:, 1], h[:, 1]], axis=-1)
    z = z + 0.1 * (z - z ** 3)
    return tf.stack([z[:, 0] + z[:, 1], z[:, 1]], axis=-1)


IDENTITY = (np.eye(2), np.zeros(2))  # readout y = h
NODES = [(-2, -1), (-1, -1), (-1, 0), (0, -1), (0, 0), (0, 1), (1, 0), (1, 1), (2, 1)]  # lexsorted
STABLE = [True, False, False, True, False, True, False, False, True]
N_UNSTABLE = [0, 1, 1, 0, 2, 0, 1, 1, 0]
EXPECTED = np.zeros((9, 9))
EXPECTED[[0, 3, 5, 8], [0, 3, 5, 8]] = 1.0
EXPECTED[1, [0, 3]] = 0.5  # saddle z = (0, -1) -> corners z = (-1, -1), (1, -1)
EXPECTED[2, [0, 5]] = 0.5  # saddle z = (-1, 0)
EXPECTED[6, [3, 8]] = 0.5  # saddle z = (1, 0)
EXPECTED[7, [5, 8]] = 0.5  # saddle z = (0, 1)
EXPECTED[4, [0, 3, 5, 8]] = [1 / 8, 3 / 8, 3 / 8, 1 / 8]  # source, sheared sectors


@pytest.fixture(scope="module")
def wells_fps():
    z = np.random.default_rng(0).uniform(-1.5, 1.5, (100, 2))
    fps = find_fixed_points(wells, [0.0], z @ SHEAR.T)
    assert len(fps.fixed) == 9
    return fps


@pytest.fixture(scope="module")
def wells_graph(wells_fps):
    (graph,) = compute_transition_graphs(wells, wells_fps, IDENTITY, n_perturb=4000, seed=0)
    return graph


def test_known_map_transition_probabilities(wells_graph):
    g = wells_graph
    np.testing.assert_allclose(g.readouts, NODES, atol=1e-9)  # ordered by readout
    assert g.is_stable.tolist() == STABLE and g.n_unstable.tolist() == N_UNSTABLE
    assert g.n_unsettled.sum() == 0 and g.n_elsewhere.sum() == 0 and g.n_perturb == 4000
    np.testing.assert_array_equal(g.matrix > 0, EXPECTED > 0)  # no other edge
    np.testing.assert_allclose(g.matrix, EXPECTED, atol=0.03)  # 4000 starts: std <= 0.008
    np.testing.assert_array_equal(g.matrix[g.is_stable], EXPECTED[g.is_stable])  # exact self-loops
    np.testing.assert_allclose(g.matrix.sum(1), 1.0, atol=1e-12)


def test_seeded_and_independent_of_point_order(wells_fps, wells_graph):
    shuffled = wells_fps[np.random.default_rng(3).permutation(len(wells_fps))]
    (again,) = compute_transition_graphs(wells, shuffled, IDENTITY, n_perturb=4000, seed=0)
    np.testing.assert_array_equal(again.matrix, wells_graph.matrix)
    np.testing.assert_array_equal(shuffled.hstar[again.index], wells_graph.hstar)
    (other,) = compute_transition_graphs(wells, wells_fps, IDENTITY, n_perturb=4000, seed=1)
    assert not np.array_equal(other.matrix, wells_graph.matrix)
    np.testing.assert_allclose(other.matrix, wells_graph.matrix, atol=0.04)


def test_missing_attractor_and_step_cap_are_reported(wells_fps):
    corner = np.flatnonzero(np.all(np.abs(wells_fps.hstar - [2, 1]) < 1e-9, axis=1))
    (g,) = compute_transition_graphs(wells, wells_fps[np.setdiff1d(np.arange(9), corner)],
                                     IDENTITY, n_perturb=1000)
    assert g.n_nodes == 8 and g.n_unsettled.sum() == 0
    rows = {tuple(np.round(y).astype(int)): i for i, y in enumerate(g.readouts)}
    lost = g.n_elsewhere / g.n_perturb  # starts that settled at the unlisted corner (2, 1)
    np.testing.assert_allclose(lost[[rows[(0, 0)], rows[(1, 0)], rows[(1, 1)]]], [1 / 8, 1 / 2, 1 / 2],
                               atol=0.05)
    np.testing.assert_allclose(g.matrix.sum(1), 1 - lost, atol=1e-12)
    with pytest.warns(UserWarning, match="had not settled"):
        (capped,) = compute_transition_graphs(wells, wells_fps, IDENTITY, n_perturb=50, max_steps=1)
    assigned = 1 - (capped.n_unsettled + capped.n_elsewhere) / 50
    assert capped.n_unsettled.sum() > 100 and capped.n_steps == 1
    np.testing.assert_allclose(capped.matrix.sum(1), np.where(capped.is_stable, 1.0, assigned))


def test_transition_structure_found_on_the_known_map_and_not_on_broken_graphs(wells_fps):
    (g,) = compute_transition_graphs(wells, wells_fps, IDENTITY, n_perturb=200, seed=0, perturb_stable=True)
    stable = g.is_stable
    np.testing.assert_allclose(g.matrix[np.ix_(stable, stable)], np.eye(4), atol=1e-12)  # perturbed corners return
    assert transition_structure(g) == {"transition_stable_self": 1.0, "transition_saddles_two": 1.0,
                                       "transition_structure": 1.0}
    rows = {tuple(np.round(y).astype(int)): i for i, y in enumerate(g.readouts)}
    saddle, near, far = rows[(-1, -1)], rows[(0, -1)], rows[(2, 1)]
    skips = TransitionGraph(g.matrix.copy(), g.readouts, g.is_stable, g.n_unstable, g.hstar)
    skips.matrix[saddle] = 0
    skips.matrix[saddle, [near, far]] = 0.5  # skips its nearest corner (-2, -1) for the far one
    assert transition_structure(skips)["transition_saddles_two"] == 0
    assert transition_structure(skips)["transition_stable_self"] == 1
    one = TransitionGraph(g.matrix.copy(), g.readouts, g.is_stable, g.n_unstable, g.hstar)
    one.matrix[saddle] = 0
    one.matrix[saddle, near] = 1.0  # a single destination
    assert transition_structure(one)["transition_saddles_two"] == 0
    escapes = TransitionGraph(g.matrix.copy(), g.readouts, g.is_stable, g.n_unstable, g.hstar)
    escapes.matrix[near, [near, far]] = [0.9, 0.1]  # a stable point whose starts leave for another
    assert transition_structure(escapes)["transition_stable_self"] == 0
    assert transition_structure(escapes)["transition_structure"] == 0
    only_stable = TransitionGraph(np.eye(2), np.zeros((2, 1)), [True, True], hstar=np.eye(2))
    assert np.isnan(transition_structure(only_stable)["transition_structure"])


# -- the trained flip-flop GRU ----------------------------------------------------------
def trained_population():
    with np.load(FIXTURE) as data:
        weights = {k: data[k] for k in data.files if k not in META}
    pop = Population(ModelConfig("gru", "tanh", 64), 3, 3, [0, 1])
    pop.set_weights_dict(weights)
    return pop


@pytest.fixture(scope="module")
def flipflop():
    pop = trained_population()
    fps = find_population_fixed_points(pop, get_task("flipflop"), n_starts=256, seed=0)
    assert fps.metrics()["n_fixed"].tolist() == [27, 27]
    return pop, fps, compute_transition_graphs(pop, fps)


def test_flipflop_graph_joins_each_saddle_to_its_corners(flipflop):
    _, _, graphs = flipflop
    assert len(graphs) == 2
    for g in graphs:
        assert g.n_nodes == 27 and g.n_stable == 8
        assert g.n_unsettled.sum() == 0 and g.n_elsewhere.sum() == 0
        np.testing.assert_array_equal(g.matrix[g.is_stable], np.eye(27)[g.is_stable])
        np.testing.assert_allclose(g.matrix.sum(1), 1.0, atol=1e-12)
        code = np.round(g.readouts).astype(int)  # corners ±1; a saddle's free bits 0
        assert np.all(np.abs(g.readouts - code) < 0.2)
        assert len({tuple(c) for c in code}) == 27
        assert [tuple(c) for c in code] == sorted(tuple(c) for c in code)  # lexicographic order
        np.testing.assert_array_equal(np.sum(code == 0, 1), g.n_unstable)
        for i in np.flatnonzero(~g.is_stable):  # 1, 2, 3 free bits: 2, 4, 8 corners
            targets = np.flatnonzero(g.matrix[i])
            assert len(targets) == 2 ** g.n_unstable[i]
            assert g.is_stable[targets].all()
            fixed_bits = code[i] != 0
            assert np.all(code[targets][:, fixed_bits] == code[i][fixed_bits])


def test_flipflop_distances_paper_equals_matching_when_aligned(flipflop):
    pop, fps, (g0, g1) = flipflop
    assert 0 < graph_distance(g0, g1) == pytest.approx(graph_matching_distance(g0, g1), abs=1e-12)
    weights = pop.get_weights_dict()
    same = compute_transition_graphs(pop.cell, fps, (weights["W_out"], weights["b_out"]))
    np.testing.assert_array_equal(same[1].matrix, g1.matrix)
    # network 1 without one of its saddles: 26 nodes
    drop = np.flatnonzero((fps.network == 1) & (fps.n_unstable == 1))[0]
    (_, g1_short) = compute_transition_graphs(pop, fps[np.setdiff1d(np.arange(len(fps)), drop)])
    assert g1_short.n_nodes == 26
    graphs = [g0, g1, g1_short]
    paper = pairwise_graph_distances(graphs, mode="paper")
    assert np.isnan(paper[2]).all() and np.isnan(paper[:, 2]).all()
    assert paper[0, 1] == graph_distance(g0, g1)
    matching = pairwise_graph_distances(graphs)
    assert np.all(np.isfinite(matching)) and np.array_equal(matching, matching.T)
    assert 0 < matching[1, 2] < matching[0, 2]  # the short copy is closest to its own network


# -- distances between transition graphs ------------------------------------------------
def toy_graph():
    """Stable points at y = (±1, 0), a saddle between them and one off to the side."""
    matrix = [[1, 0, 0, 0], [0.5, 0, 0, 0.5], [0.2, 0, 0, 0.8], [0, 0, 0, 1]]
    readouts = [[-1, 0], [0, 0], [0.2, 0.9], [1, 0]]  # in readout order
    return TransitionGraph(matrix, readouts, [True, False, False, True], [0, 1, 1, 0])


def permuted(g, perm):
    return TransitionGraph(g.matrix[np.ix_(perm, perm)], g.readouts[perm], g.is_stable[perm],
                           g.n_unstable[perm])


def with_node(g, row, readout, stable):
    """``g`` plus one node (last), whose outgoing row is ``row`` (len n + 1)."""
    n = g.n_nodes
    m = np.zeros((n + 1, n + 1))
    m[:n, :n], m[n] = g.matrix, row
    return TransitionGraph(m, np.vstack([g.readouts, readout]), np.r_[g.is_stable, stable])


def test_relabelled_copy_is_at_distance_zero():
    g = toy_graph()
    p = permuted(g, np.array([3, 1, 0, 2]))
    assert graph_matching_distance(g, p) == 0.0 == graph_matching_distance(p, g)
    assert graph_distance(g, p) > 1  # the paper distance needs the readout order ...
    back = permuted(p, readout_order(p.readouts, p.n_unstable))
    assert graph_distance(g, back) == 0.0  # ... which restores it


def test_matching_charges_unmatched_nodes_their_row_and_column():
    g = toy_graph()
    extra_stable = with_node(g, [0, 0, 0, 0, 1], [0, 3], True)  # isolated attractor
    assert graph_matching_distance(g, extra_stable) == pytest.approx(1.0, abs=1e-15)
    extra_saddle = with_node(g, [0.5, 0, 0, 0.5, 0], [0, -3], False)
    assert graph_matching_distance(extra_saddle, g) == pytest.approx(np.sqrt(0.5), abs=1e-15)
    changed = TransitionGraph(g.matrix + np.outer([0, 0, 1, 0], [0.1, 0, 0, -0.1]), g.readouts,
                              g.is_stable)
    assert graph_matching_distance(g, changed) == pytest.approx(np.sqrt(0.02), abs=1e-15)
    assert graph_matching_distance(g, changed) == pytest.approx(graph_distance(g, changed))
    empty = TransitionGraph(np.zeros((0, 0)), np.zeros((0, 2)), [])
    assert graph_matching_distance(g, empty) == pytest.approx(np.linalg.norm(g.matrix))


def test_matching_distance_is_symmetric_for_differing_counts():
    rng = np.random.default_rng(0)
    graphs = []
    for n in (3, 4, 4, 6):
        m = rng.uniform(size=(n, n))
        graphs.append(TransitionGraph(m / m.sum(1, keepdims=True), rng.normal(size=(n, 3)),
                                      rng.uniform(size=n) < 0.5))
    d = pairwise_graph_distances(graphs)
    np.testing.assert_array_equal(d, d.T)
    assert np.all(np.diag(d) == 0) and np.all(d[~np.eye(4, dtype=bool)] > 0)
    for a in graphs:
        for b in graphs:
            assert graph_matching_distance(a, b) == graph_matching_distance(b, a)


def test_paper_mode_drops_networks_off_the_modal_count():
    g = toy_graph()
    big = with_node(g, [0, 0, 0, 0, 1], [0, 3], True)
    small = permuted(g, np.array([0, 1, 2]))
    graphs = [g, permuted(g, np.array([0, 1, 2, 3])), big, g, small]
    kept, n_dropped = keep_modal_count(graphs)
    assert kept.tolist() == [0, 1, 3] and n_dropped == 2
    assert keep_modal_count([3, 3, 4, 4])[0].tolist() == [0, 1]  # tie: the smaller count
    d = pairwise_graph_distances(graphs, mode="paper")
    assert np.isnan(d[[2, 4]]).all() and np.isnan(d[:, [2, 4]]).all()
    assert np.all(d[np.ix_(kept, kept)] == 0)
    assert np.all(np.isfinite(pairwise_graph_distances(graphs, mode="matching")))


def test_errors_name_the_argument(wells_fps):
    g, other = toy_graph(), permuted(toy_graph(), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="same number of nodes"):
        graph_distance(g, other)
    with pytest.raises(ValueError, match="mode must be one of"):
        pairwise_graph_distances([g], mode="euclid")
    with pytest.raises(TypeError, match="readout must be given"):
        compute_transition_graphs(wells, wells_fps)
    with pytest.raises(ValueError, match="radius must be in"):
        compute_transition_graphs(wells, wells_fps, IDENTITY, radius=2.0)
    with pytest.raises(TypeError, match="fps must be a FixedPoints"):
        compute_transition_graphs(wells, np.zeros((3, 2)), IDENTITY)
    starts = np.random.default_rng(0).uniform(-1.5, 1.5, (16, 2))
    two = find_fixed_points(wells, np.repeat([[0.0], [1.0]], 8, 0), starts)  # 2 conditions
    with pytest.raises(ValueError, match="one condition input"):
        compute_transition_graphs(wells, two, IDENTITY)
    with pytest.raises(ValueError, match=r"readout \(W_out, b_out\) must have shapes"):
        compute_transition_graphs(wells, wells_fps, (np.eye(3), np.zeros(3)))


def test_trained_flipflop_grus_have_the_papers_transition_structure(flipflop):
    """§3.1 on real networks: every point perturbed, stable ones too; both fixture GRUs pass."""
    from rnn_dyn.jobs import one_network
    from rnn_dyn.universality import network_topology

    pop, fps, _ = flipflop
    for i in range(2):
        out = network_topology(get_task("flipflop"), pop.member(i), one_network(fps, i), n_perturb=50)
        assert (out["n_stable"], out["n_saddle_1"], out["n_saddle_2"], out["n_saddle_3"]) == (8, 12, 6, 1)
        assert out["transition_structure"] == 1.0 and out["n_stable_all"] >= out["n_stable"]
