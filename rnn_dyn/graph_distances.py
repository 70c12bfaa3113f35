"""Distances between transition graphs (SPEC §5 "Topology"; Maheswaranathan et al. 2019, §3).

Compares the :class:`~rnn_dyn.transition_graphs.TransitionGraph` of networks:

- :func:`graph_distance`: the paper's Frobenius distance between two ordered
  matrices of the same size; :func:`keep_modal_count` applies the paper's rule
  of discarding networks whose point count differs from the population's mode.
- :func:`graph_matching_distance`: needs no discarding; nodes are paired by
  readout (optimal assignment), the smaller graph is padded with empty nodes.
- :func:`pairwise_graph_distances`: all pairs, in either mode.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from rnn_dyn._checks import check_choice
from rnn_dyn.transition_graphs import TransitionGraph

MODES = ("matching", "paper")


def _matrix(g, name):
    if isinstance(g, TransitionGraph):
        return g.matrix
    m = np.asarray(g, np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"{name} must be a TransitionGraph or a square matrix; got shape {m.shape}.")
    return m


def graph_distance(a, b) -> float:
    """The paper's distance: Frobenius norm of the difference of two ordered matrices.

    Parameters
    ----------
    a, b : TransitionGraph or ndarray [n_nodes, n_nodes]
        Of the same size (see :func:`keep_modal_count`).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        The node counts differ (use :func:`graph_matching_distance`).
    """
    ma, mb = _matrix(a, "a"), _matrix(b, "b")
    if ma.shape != mb.shape:
        raise ValueError(f"a and b must have the same number of nodes; got {len(ma)} and "
                         f"{len(mb)} (use graph_matching_distance, or keep_modal_count first).")
    return float(np.linalg.norm(ma - mb))


def keep_modal_count(graphs):
    """The paper's rule: keep the networks whose node count is the population's mode.

    Parameters
    ----------
    graphs : sequence of TransitionGraph or of int (node counts)

    Returns
    -------
    kept : ndarray of int
        Indices of the networks with the modal count (the smallest such
        count when several are equally common).
    n_dropped : int
    """
    counts = np.asarray([g.n_nodes if isinstance(g, TransitionGraph) else int(g) for g in graphs])
    if len(counts) == 0:
        return np.zeros(0, int), 0
    values, freq = np.unique(counts, return_counts=True)
    kept = np.flatnonzero(counts == values[np.argmax(freq)])
    return kept, len(counts) - len(kept)


def _key(g):
    return (g.n_nodes, g.readouts.tobytes(), g.matrix.tobytes())


def graph_matching_distance(a: TransitionGraph, b: TransitionGraph) -> float:
    """Distance between graphs of any sizes: nodes paired by readout, the rest padded.

    Nodes of ``a`` and ``b`` are paired by the optimal assignment
    (``scipy.optimize.linear_sum_assignment``) of the Euclidean distance
    between their readouts; the ``|n_a − n_b|`` unpaired nodes of the larger
    graph are compared with empty nodes of the smaller (no edges).  The
    distance is the Frobenius norm of the difference of the two matrices so
    aligned, so an unpaired node is charged the norm of its row and column
    (an isolated stable node: 1; edges into it from paired nodes count
    there too).  With equal counts and corresponding readouts it equals
    :func:`graph_distance`; a relabelled copy gives exactly 0 when readouts
    are distinct.  Symmetric: the pair is put in a canonical order first.

    Parameters
    ----------
    a, b : TransitionGraph
        With the same number of outputs.

    Returns
    -------
    float
    """
    for name, g in (("a", a), ("b", b)):
        if not isinstance(g, TransitionGraph):
            raise TypeError(f"{name} must be a TransitionGraph; got {type(g).__name__}.")
    if a.n_nodes and b.n_nodes and a.readouts.shape[1] != b.readouts.shape[1]:
        raise ValueError(f"a and b must have the same number of outputs; got "
                         f"{a.readouts.shape[1]} and {b.readouts.shape[1]}.")
    if _key(b) < _key(a):
        a, b = b, a
    na, nb = a.n_nodes, b.n_nodes
    rows, cols = (linear_sum_assignment(cdist(a.readouts, b.readouts)) if na and nb
                  else (np.zeros(0, int), np.zeros(0, int)))
    m = len(rows)
    order_a = np.concatenate([rows, np.setdiff1d(np.arange(na), rows)]).astype(int)
    order_b = np.concatenate([cols, np.setdiff1d(np.arange(nb), cols)]).astype(int)
    pos_b = np.concatenate([np.arange(m), na + np.arange(nb - m)]).astype(int)
    n = na + nb - m
    ma, mb = np.zeros((n, n)), np.zeros((n, n))
    ma[:na, :na] = a.matrix[np.ix_(order_a, order_a)]
    mb[np.ix_(pos_b, pos_b)] = b.matrix[np.ix_(order_b, order_b)]
    return float(np.linalg.norm(ma - mb))


def pairwise_graph_distances(graphs, mode="matching") -> np.ndarray:
    """Distances between all pairs of transition graphs.

    Parameters
    ----------
    graphs : sequence of TransitionGraph
    mode : {'matching', 'paper'}, default 'matching'
        ``'matching'``: :func:`graph_matching_distance`, every pair.
        ``'paper'``: :func:`graph_distance` among the networks kept by
        :func:`keep_modal_count`; rows and columns of dropped networks are NaN
        (call :func:`keep_modal_count` for their indices).

    Returns
    -------
    ndarray [n, n]
        Symmetric, zero diagonal (NaN for dropped networks in paper mode).
    """
    check_choice("mode", mode, MODES)
    graphs = list(graphs)
    for i, g in enumerate(graphs):
        if not isinstance(g, TransitionGraph):
            raise TypeError(f"graphs[{i}] must be a TransitionGraph; got {type(g).__name__}.")
    n = len(graphs)
    out = np.full((n, n), np.nan)
    kept = keep_modal_count(graphs)[0] if mode == "paper" else np.arange(n)
    distance = graph_distance if mode == "paper" else graph_matching_distance
    for a, i in enumerate(kept):
        out[i, i] = 0.0
        for j in kept[a + 1:]:
            out[i, j] = out[j, i] = distance(graphs[i], graphs[j])
    return out
