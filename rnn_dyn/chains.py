"""Nearest-neighbour chain graphs of fixed points (SPEC §5 "Topology"; paper §3.2–3.3).

For the sine task (one fixed point per input ``u``) and context integration
(an approximate line attractor per context): :func:`compute_chain_graph`
joins each fixed point to its ``k`` nearest neighbours in state space and
writes the 0/1 adjacency in the order of a scalar (the sine input ``u``, or
the readout along a line attractor); :func:`chain_graph_distance` and
:func:`pairwise_chain_distances` compare two such matrices, max-pooled to a
common size when the counts differ.  :func:`pairwise_labelled_distances`
compares graphs of equal node counts exactly, node labels included (the sine
graph of all fixed points, each labelled by its unstable directions; paper
§3.2, with the non-modal networks discarded as in §3.1's footnote).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist

from rnn_dyn._checks import check_positive
from rnn_dyn.fixed_points import FixedPoints


@dataclass(eq=False)
class ChainGraph:
    """Nearest-neighbour graph of a set of points, in the order of a scalar.

    Attributes
    ----------
    adjacency : ndarray [n_nodes, n_nodes]
        Symmetric 0/1: ``adjacency[i, j] = 1`` when ``j`` is among the ``k``
        nearest neighbours of ``i`` or ``i`` among those of ``j``.
    values : ndarray [n_nodes]
        The scalar, ascending.
    points : ndarray [n_nodes, n_state]
        The points, in the same order.
    order : ndarray [n_nodes] of int
        Index of each node among the points given.
    k : int
    labels : ndarray [n_nodes, n_labels], optional
        Per node, numbers that describe it (e.g. its unstable real directions
        and unstable complex pairs), in node order; ``[n_nodes, 0]`` if none.
    """

    adjacency: np.ndarray
    values: np.ndarray
    points: np.ndarray
    order: np.ndarray
    k: int
    labels: np.ndarray = None

    def __post_init__(self):
        n = len(self.adjacency)
        self.labels = np.zeros((n, 0)) if self.labels is None else np.asarray(self.labels, np.float64).reshape(n, -1)

    @property
    def n_nodes(self) -> int:
        return len(self.adjacency)


def compute_chain_graph(points, values, k=2, labels=None) -> ChainGraph:
    """Join each point to its ``k`` nearest neighbours; order the nodes by ``values``.

    For points evenly spaced on a line (an ideal line attractor), ``k = 2``
    gives the path ``i — i+1`` (tridiagonal) plus the edges ``0 — 2`` and
    ``n−3 — n−1`` at the two ends; points off a line give edges far from
    the diagonal.

    Parameters
    ----------
    points : array_like [n_nodes, n_state]
        Fixed points of one network (distances are Euclidean in state space).
    values : array_like [n_nodes]
        The scalar that orders the nodes: the sine input ``u`` of each point,
        or its readout for context integration.  Ties keep the given order.
    k : int, default 2
        Neighbours per point (at most ``n_nodes − 1`` are used); ties go to
        the earlier node in ``values`` order.
    labels : array_like [n_nodes, n_labels], optional
        Per point, in the order given; stored in node order.

    Returns
    -------
    ChainGraph
    """
    points = np.asarray(points, np.float64)
    values = np.asarray(values, np.float64).reshape(-1)
    if points.ndim != 2 or len(points) != len(values):
        raise ValueError(f"points must have shape [n_nodes, n_state] and values [n_nodes]; got "
                         f"{points.shape} and {values.shape}.")
    if not (np.all(np.isfinite(points)) and np.all(np.isfinite(values))):
        raise ValueError("points and values must be finite; they hold NaN or inf.")
    check_positive("k", k, integer=True)
    order = np.argsort(values, kind="stable")
    pts, n = points[order], len(points)
    adjacency = np.zeros((n, n))
    if n > 1:
        d = cdist(pts, pts)
        np.fill_diagonal(d, np.inf)
        nearest = np.argsort(d, axis=1, kind="stable")[:, : min(k, n - 1)]
        adjacency[np.arange(n)[:, None], nearest] = 1.0
        adjacency = np.maximum(adjacency, adjacency.T)
    labels = None if labels is None else np.asarray(labels, np.float64).reshape(len(points), -1)[order]
    return ChainGraph(adjacency, values[order], pts, order, int(k), labels)


def compute_chain_graphs(fps: FixedPoints, values, k=2, by_condition=False):
    """:func:`compute_chain_graph` per network (sine) or per network and condition (context).

    Parameters
    ----------
    fps : FixedPoints
        Points to use (filter first, e.g. ``fps.fixed``; slow points along a
        line attractor are often wanted).
    values : array_like [n_points]
        One scalar per point: ``fps.x_cond[:, 0]`` (sine ``u``) or the readout
        of each point (context).
    k : int, default 2
    by_condition : bool, default False
        One graph per network over all its points (sine: the points of all
        ``u``), or one per network and condition input (context).

    Returns
    -------
    list of ChainGraph, or list of list of ChainGraph
        ``[network]`` or ``[network][condition]`` (``condition`` from 0 to
        ``fps.condition.max()``; a group without points gives an empty graph).
    """
    if not isinstance(fps, FixedPoints):
        raise TypeError(f"fps must be a FixedPoints; got {type(fps).__name__}.")
    values = np.asarray(values, np.float64).reshape(-1)
    if len(values) != len(fps):
        raise ValueError(f"values must have one entry per point ({len(fps)}); got {len(values)}.")

    def one(mask):
        return compute_chain_graph(fps.hstar[mask].reshape(-1, fps.n_state), values[mask], k)

    nets = range(fps.n_networks)
    if not by_condition:
        return [one(fps.network == p) for p in nets]
    n_cond = int(fps.condition.max()) + 1 if len(fps) else 0
    return [[one((fps.network == p) & (fps.condition == c)) for c in range(n_cond)] for p in nets]


def _resample(adjacency, n_nodes):
    """Max-pool an ordered 0/1 ``[n, n]`` matrix to ``[n_nodes, n_nodes]`` (``n_nodes <= n``)."""
    n = len(adjacency)
    bins = (np.arange(n) * n_nodes) // n  # consecutive nodes, (nearly) equal-sized bins
    out = np.zeros((n_nodes, n_nodes))
    np.maximum.at(out, (bins[:, None], bins[None, :]), adjacency)
    np.fill_diagonal(out, 0.0)
    return out


def chain_graph_distance(a: ChainGraph, b: ChainGraph, n_nodes=None) -> float:
    """Frobenius distance between two ordered adjacency matrices, resampled if needed.

    A graph with more than ``n_nodes`` nodes is cut, in its order, into
    ``n_nodes`` consecutive bins of (nearly) equal size; two bins are joined
    when any of their nodes are (block maximum), and edges inside a bin are
    dropped (the diagonal stays 0).  A bin of one node leaves the adjacency
    as it is, so equal counts are compared exactly; a path (a line attractor)
    stays a path at any coarser size.

    Parameters
    ----------
    a, b : ChainGraph
    n_nodes : int, optional
        Common size; default the smaller node count (only downsampling).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        ``n_nodes`` exceeds a graph's node count.
    """
    for name, g in (("a", a), ("b", b)):
        if not isinstance(g, ChainGraph):
            raise TypeError(f"{name} must be a ChainGraph; got {type(g).__name__}.")
    smaller = min(a.n_nodes, b.n_nodes)
    if n_nodes is None:
        n_nodes = smaller
    else:
        check_positive("n_nodes", n_nodes, integer=True)
    if n_nodes > smaller:
        raise ValueError(f"n_nodes must be at most the smaller node count {smaller}; got {n_nodes}.")
    if n_nodes == 0:
        return 0.0
    return float(np.linalg.norm(_resample(a.adjacency, n_nodes) - _resample(b.adjacency, n_nodes)))


def pairwise_chain_distances(chains, n_nodes=None) -> np.ndarray:
    """:func:`chain_graph_distance` between all pairs, at one common size.

    Parameters
    ----------
    chains : sequence of ChainGraph
    n_nodes : int, optional
        Common size; default the smallest node count among non-empty graphs.
        Graphs with fewer nodes get NaN rows and columns.

    Returns
    -------
    ndarray [n, n]
    """
    chains = list(chains)
    for i, c in enumerate(chains):
        if not isinstance(c, ChainGraph):
            raise TypeError(f"chains[{i}] must be a ChainGraph; got {type(c).__name__}.")
    counts = np.array([c.n_nodes for c in chains], int)
    if n_nodes is None:
        n_nodes = int(counts[counts > 0].min()) if np.any(counts > 0) else 1
    check_positive("n_nodes", n_nodes, integer=True)
    kept = np.flatnonzero(counts >= n_nodes)
    resampled = {i: _resample(chains[i].adjacency, n_nodes) for i in kept}
    out = np.full((len(chains), len(chains)), np.nan)
    for i in kept:
        for j in kept:
            out[i, j] = np.linalg.norm(resampled[i] - resampled[j])
    return out


def pairwise_labelled_distances(chains, kept=None) -> np.ndarray:
    """Frobenius distance of the ordered ``[adjacency | labels]`` matrices, for graphs of equal size.

    Parameters
    ----------
    chains : sequence of ChainGraph
    kept : array_like of int, optional
        The graphs to compare (e.g. those with the modal node count,
        :func:`~rnn_dyn.graph_distances.keep_modal_count`); default all, which
        must then share one node count.

    Returns
    -------
    ndarray [n, n]
        NaN rows and columns for the graphs not kept.

    Raises
    ------
    ValueError
        The kept graphs' node counts or label widths differ.
    """
    chains = list(chains)
    for i, c in enumerate(chains):
        if not isinstance(c, ChainGraph):
            raise TypeError(f"chains[{i}] must be a ChainGraph; got {type(c).__name__}.")
    kept = np.arange(len(chains)) if kept is None else np.asarray(kept, int)
    shapes = {(chains[i].n_nodes, chains[i].labels.shape[1]) for i in kept}
    if len(shapes) > 1:
        raise ValueError(f"the kept graphs must share node count and label width; got {sorted(shapes)}.")
    flat = {i: np.hstack([chains[i].adjacency, chains[i].labels]) for i in kept}
    out = np.full((len(chains), len(chains)), np.nan)
    for i in kept:
        for j in kept:
            out[i, j] = np.linalg.norm(flat[i] - flat[j])
    return out
