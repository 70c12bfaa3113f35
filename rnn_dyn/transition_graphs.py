"""Transition graphs of fixed points, by settling perturbed starts (SPEC §5 "Topology"; paper §3).

:func:`compute_transition_graphs` builds, for every member of a population at
once, the directed graph whose nodes are the fixed points of one condition
input (flip-flop) and whose edge ``i -> j`` is the probability that a state
started a small random distance from point ``i``, run autonomously, settles
at the stable point ``j``.  Stable points keep only a self-loop.  All starts
of all networks run in one batched ``tf.function`` loop.  Nodes are ordered
by their readout (:func:`readout_order`), so that the matrices of networks
with corresponding points align; :mod:`rnn_dyn.graph_distances` compares them.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from scipy.spatial.distance import cdist

from rnn_dyn._checks import check_positive, check_range
from rnn_dyn.cells.base import PopulationCell
from rnn_dyn.fixed_points import FixedPoints
from rnn_dyn.linearization import cell_sizes, make_map
from rnn_dyn.population import Population

_CHECK_EVERY = 50  # steps between settle checks in the batched loop


@dataclass(eq=False)
class TransitionGraph:
    """The transition graph of one network's fixed points, nodes ordered by readout.

    Attributes
    ----------
    matrix : ndarray [n_nodes, n_nodes]
        ``matrix[i, j]``: fraction of the starts near point ``i`` that settled
        at stable point ``j``.  Stable rows are the self-loop ``matrix[i, i] = 1``;
        an unstable row sums to ``1 - (n_unsettled[i] + n_elsewhere[i]) / n_perturb``.
    readouts : ndarray [n_nodes, n_outputs]
        ``W_out h* + b_out`` of each node, in node order.
    is_stable : ndarray [n_nodes] of bool
    n_unstable : ndarray [n_nodes] of int
    hstar : ndarray [n_nodes, n_state]
    index : ndarray [n_nodes] of int
        Each node's index in the :class:`FixedPoints` the graph was built from.
    n_unsettled : ndarray [n_nodes] of int
        Starts still moving after ``max_steps`` (or diverged).
    n_elsewhere : ndarray [n_nodes] of int
        Starts that settled, but not near a stable point of the list (at a
        saddle, or at a point the fixed-point search missed).
    n_perturb : int
        Starts per perturbed node (the unstable ones, or all).
    n_steps : int
        Steps the batched loop ran (shared by the population).
    """

    matrix: np.ndarray
    readouts: np.ndarray
    is_stable: np.ndarray
    n_unstable: np.ndarray = None
    hstar: np.ndarray = None
    index: np.ndarray = None
    n_unsettled: np.ndarray = None
    n_elsewhere: np.ndarray = None
    n_perturb: int = 0
    n_steps: int = 0

    def __post_init__(self):
        self.matrix = np.asarray(self.matrix, np.float64)
        n = len(self.matrix)
        if self.matrix.shape != (n, n):
            raise ValueError(f"matrix must be square; got shape {self.matrix.shape}.")
        y = np.asarray(self.readouts, np.float64)
        self.readouts = y.reshape(n, -1) if y.size else y.reshape(n, y.shape[-1] if y.ndim == 2 else 0)
        self.is_stable = np.asarray(self.is_stable, bool).reshape(n)
        zeros = np.zeros(n, int)
        for name in ("n_unstable", "n_unsettled", "n_elsewhere"):
            value = getattr(self, name)
            setattr(self, name, zeros.copy() if value is None else np.asarray(value, int).reshape(n))
        self.index = np.arange(n) if self.index is None else np.asarray(self.index, int)
        self.hstar = np.zeros((n, 0)) if self.hstar is None else np.asarray(self.hstar)

    @property
    def n_nodes(self) -> int:
        return len(self.matrix)

    @property
    def n_stable(self) -> int:
        return int(self.is_stable.sum())

    def __repr__(self):
        lost = int(self.n_unsettled.sum() + self.n_elsewhere.sum())
        return (f"TransitionGraph(n_nodes={self.n_nodes}, n_stable={self.n_stable}, "
                f"n_perturb={self.n_perturb}, unassigned_starts={lost})")


def readout_order(readouts, n_unstable=None, decimals=0):
    """Node order: lexicographic in the rounded readout, first output first.

    Ties after rounding (``np.round(readouts, decimals)``; ``-0.0 == 0.0``) are
    broken by ``n_unstable`` (stable first), then by the unrounded readout.
    Rounding makes points whose readouts differ only by noise (a saddle at
    ``y_1 = 0.02`` in one network and ``-0.03`` in another) fall back on the
    next output, so that the orders of different networks agree.

    Parameters
    ----------
    readouts : array_like [n_nodes, n_outputs]
    n_unstable : array_like [n_nodes] of int, optional
    decimals : int, default 0

    Returns
    -------
    ndarray [n_nodes] of int
    """
    y = np.asarray(readouts, np.float64)
    y = y.reshape(len(y), -1)
    n_unstable = np.zeros(len(y), int) if n_unstable is None else np.asarray(n_unstable)
    keys = [np.round(y[:, k], decimals) + 0.0 for k in range(y.shape[1])] + [n_unstable]
    keys += [y[:, k] for k in range(y.shape[1])]
    return np.lexsort(keys[::-1]).astype(int)  # np.lexsort's primary key is the last


def _resolve(cell, readout, hidden):
    """``(cell, readout, hidden)`` from a Population or a cell plus readout."""
    if isinstance(cell, Population):
        readout = cell.readout if readout is None else readout
        cell = cell.cell
    if readout is None:
        raise TypeError("readout must be given (a callable or (W_out, b_out)) unless cell is "
                        "a Population; got None.")
    if hidden is None:
        hidden = cell.hidden if isinstance(cell, PopulationCell) else (lambda s: s)
    return cell, readout, hidden


def _apply_readout(readout, h):
    """``readout`` of ``h [n_networks, k, n_units]`` as float64 ``[n_networks, k, n_outputs]``."""
    if callable(readout):
        return np.asarray(readout(tf.constant(h, tf.float32)), np.float64)
    if not (isinstance(readout, (tuple, list)) and len(readout) == 2):
        raise TypeError("readout must be a callable or a pair (W_out, b_out); "
                        f"got {type(readout).__name__}.")
    w, b = (np.asarray(v, np.float64) for v in readout)
    if w.ndim == 2:
        w, b = w[None], b.reshape(1, -1)
    if w.ndim != 3 or w.shape[0] != h.shape[0] or w.shape[2] != h.shape[2] or b.shape != w.shape[:2]:
        raise ValueError(f"readout (W_out, b_out) must have shapes [n_networks={h.shape[0]}, "
                         f"n_outputs, n_units={h.shape[2]}] and [n_networks, n_outputs]; got "
                         f"{w.shape} and {b.shape}.")
    return np.einsum("pok,pik->pio", w, h) + b[:, None, :]


def _per_network(network, n_networks):
    """Items per network, and as an index array ``[n_networks, width]`` padded with 0."""
    groups = [np.flatnonzero(network == p) for p in range(n_networks)]
    idx = np.zeros((n_networks, max([1] + [len(g) for g in groups])), int)
    for p, g in enumerate(groups):
        idx[p, : len(g)] = g
    return groups, idx


def _nearest_other(points):
    """Distance from each point to the nearest other one (1.0 for a lone point)."""
    if len(points) < 2:
        return np.ones(len(points))
    d = cdist(points, points)
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def _settle_function(fmap):
    """The traced batched loop: iterate ``F(s, x)`` until every real start settles."""
    if "settle" in fmap.functions:
        return fmap.functions["settle"]
    n, m = fmap.n_state, fmap.n_inputs

    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None, None, n], tf.float32), tf.TensorSpec([None, None, m], tf.float32),
        tf.TensorSpec([None, None], tf.bool), tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.float32)])
    def settle(s, x, real, max_steps, tol):
        def residual(s):
            return tf.norm(fmap(s, x) - s, axis=-1)

        def all_done(r):  # padding and diverged starts count as done
            return tf.reduce_all(~real | ~tf.math.is_finite(r) | (r < tol))

        def chunk(i, s, r):
            stop = tf.minimum(i + _CHECK_EVERY, max_steps)
            i, s = tf.while_loop(lambda j, s: j < stop, lambda j, s: (j + 1, fmap(s, x)), (i, s))
            return i, s, residual(s)

        return tf.while_loop(lambda i, s, r: (i < max_steps) & ~all_done(r), chunk,
                             (tf.constant(0), s, residual(s)))

    fmap.functions["settle"] = settle
    return settle


def compute_transition_graphs(cell, fps, readout=None, *, hidden=None, n_perturb=100, radius=0.1,
                              max_steps=10_000, tol_settle=1e-5, decimals=0,
                              seed=0, perturb_stable=False) -> list[TransitionGraph]:
    """Transition graphs of every network's fixed points (one condition input).

    For each unstable fixed point ``i``, ``n_perturb`` starts ``s_i + r_i v``
    (``v`` uniform on the unit sphere, ``r_i = radius × d_i``, ``d_i`` the
    distance from ``s_i`` to the nearest other fixed point of its network)
    are iterated under the points' condition input, all starts of all
    networks in one batched loop, until every start's residual ``‖F(s) − s‖``
    is below ``tol_settle`` (checked every 50 steps) or ``max_steps``.  A
    settled start goes to the nearest stable point ``j`` when it lies within
    ``d_j / 2`` of it (then ``j`` is also the nearest fixed point of all);
    otherwise it is counted in ``n_elsewhere``; unsettled or diverged starts
    in ``n_unsettled`` (a warning gives the totals).  Stable points are not
    perturbed unless ``perturb_stable``: their row is then the self-loop.  Slow
    points (``kind == 'slow'``) are not nodes.

    Parameters
    ----------
    cell : Population, PopulationCell, keras RNN cell or callable
        The map (see :func:`~rnn_dyn.find_fixed_points`).  A ``Population``
        supplies its cell, readout and ``hidden``.
    fps : FixedPoints
        Fixed points of one condition input (e.g. ``fps.for_condition(0)``),
        ``fps.n_networks`` equal to the cell's.
    readout : callable or (W_out, b_out), optional
        ``readout(h)`` on a float32 tensor ``[n_networks, k, n_units]``
        (e.g. ``Population.readout``), or arrays ``W_out [n_networks,
        n_outputs, n_units]``, ``b_out [n_networks, n_outputs]`` (one
        network: without the leading axis).  Needed unless ``cell`` is a Population.
    hidden : callable, optional
        Maps dynamical states ``s [..., n_state]`` (numpy) to the ``h`` the
        readout sees; default ``cell.hidden`` for population cells (``[c; h]
        -> h`` for the LSTM), identity otherwise (pass one for a Keras LSTMCell).
    n_perturb : int, default 100
        Starts per unstable point (SPEC §5).
    radius : float in (0, 1], default 0.1
        Start distance as a fraction of the distance to the nearest other
        fixed point (so starts stay in the point's neighbourhood whatever the
        state's scale); a network with one fixed point uses it as an absolute distance.
    max_steps : int, default 10000
    tol_settle : float, default 1e-5
        Settled: ``‖F(s) − s‖ < tol_settle`` (float32 dynamics).
    decimals : int, default 0
        Rounding of the readouts for the node order (:func:`readout_order`).
    seed : int, default 0
        Network ``p``'s directions come from ``np.random.default_rng([seed, p])``:
        its graph does not depend on the other members.
    perturb_stable : bool, default False
        Perturb the stable points too and record where their starts settle, as
        for the unstable ones: the paper's observation that stable points have
        only a self-loop (§3.1) becomes a measurement (:func:`transition_structure`).

    Returns
    -------
    list of TransitionGraph
        One per network (``fps.n_networks``); a network without fixed points
        gets an empty graph.

    Raises
    ------
    TypeError
        ``fps`` is not a FixedPoints, or ``readout`` has the wrong type.
    ValueError
        Points of several condition inputs, sizes that disagree, options out of range.

    Examples
    --------
    >>> fps = find_population_fixed_points(population, "flipflop")
    >>> graphs = compute_transition_graphs(population, fps)
    >>> pairwise_graph_distances(graphs, mode="matching")
    """
    if not isinstance(fps, FixedPoints):
        raise TypeError(f"fps must be a FixedPoints; got {type(fps).__name__}.")
    check_positive("n_perturb", n_perturb, integer=True)
    check_range("radius", radius, 0.0, 1.0, low_open=True)
    check_positive("max_steps", max_steps, integer=True)
    check_positive("tol_settle", tol_settle)
    check_range("decimals", decimals, 0, 15, integer=True)
    check_range("seed", seed, 0, 2**63 - 1, integer=True)
    cell, readout, hidden = _resolve(cell, readout, hidden)
    index = np.flatnonzero(fps.kind == "fixed")
    pts = fps[index]
    if len(np.unique(pts.condition)) > 1:
        raise ValueError("fps must hold the points of one condition input; got conditions "
                         f"{np.unique(pts.condition).tolist()} (use fps.for_condition(c)).")
    n_networks = fps.n_networks
    groups, idx = _per_network(pts.network, n_networks)
    if len(pts) == 0:
        return [TransitionGraph(np.zeros((0, 0)), np.zeros((0, 0)), np.zeros(0, bool),
                                n_perturb=n_perturb) for _ in range(n_networks)]
    n_cell, n_state, n_inputs = cell_sizes(cell, pts.hstar, pts.x_cond)
    if n_cell != n_networks or n_state != fps.n_state:
        raise ValueError(f"cell has n_networks={n_cell}, n_state={n_state}; fps has "
                         f"n_networks={n_networks}, n_state={fps.n_state}.")
    h = np.asarray(hidden(pts.hstar[idx]), np.float64)
    y = _apply_readout(readout, h)

    # Nodes per network in readout order; starts around each unstable node.
    nodes, starts, source = [], [], []
    for p, g in enumerate(groups):
        perm = readout_order(y[p, : len(g)], pts.n_unstable[g], decimals)
        g = g[perm]
        d = _nearest_other(pts.hstar[g])
        nodes.append((g, d, y[p, perm]))
        unstable = np.arange(len(g)) if perturb_stable else np.flatnonzero(~pts.is_stable[g])
        v = np.random.default_rng([seed, p]).standard_normal((len(unstable), n_perturb, n_state))
        v *= (radius * d[unstable])[:, None, None] / np.linalg.norm(v, axis=-1, keepdims=True)
        starts.append((pts.hstar[g[unstable]][:, None] + v).reshape(-1, n_state))
        source.append(np.repeat(unstable, n_perturb))
    width = max(1, max(len(s) for s in starts))
    s0 = np.zeros((n_networks, width, n_state), np.float32)  # padding counts as settled
    real = np.zeros((n_networks, width), bool)
    for p, s in enumerate(starts):
        s0[p, : len(s)], real[p, : len(s)] = s, True
    x = np.broadcast_to(pts.x_cond[:1, None].astype(np.float32), (n_networks, width, n_inputs))
    fmap = make_map(cell, n_inputs, n_state)
    n_steps, s_end, r_end = _settle_function(fmap)(
        tf.constant(s0), tf.constant(x), tf.constant(real), tf.constant(max_steps, tf.int32),
        tf.constant(tol_settle, tf.float32))
    s_end, r_end, n_steps = s_end.numpy().astype(np.float64), r_end.numpy(), int(n_steps)

    graphs = []
    for p, (g, d, y_p) in enumerate(nodes):
        k, src = len(g), source[p]
        stable = np.flatnonzero(pts.is_stable[g])
        matrix = np.zeros((k, k))
        if not perturb_stable:
            matrix[stable, stable] = 1.0
        end, res = s_end[p, : len(src)], r_end[p, : len(src)]
        settled = np.isfinite(res) & (res < tol_settle)
        if len(stable) and len(src):
            dist = cdist(np.nan_to_num(end, nan=np.inf), pts.hstar[g[stable]])
            near = dist.argmin(axis=1)
            hit = settled & (dist[np.arange(len(src)), near] < d[stable][near] / 2)
            np.add.at(matrix, (src[hit], stable[near[hit]]), 1.0 / n_perturb)
        else:
            hit = np.zeros(len(src), bool)
        graphs.append(TransitionGraph(
            matrix=matrix, readouts=y_p,
            is_stable=pts.is_stable[g], n_unstable=pts.n_unstable[g], hstar=pts.hstar[g],
            index=index[g], n_unsettled=np.bincount(src[~settled], minlength=k),
            n_elsewhere=np.bincount(src[settled & ~hit], minlength=k), n_perturb=n_perturb,
            n_steps=n_steps))
    unsettled = [int(gr.n_unsettled.sum()) for gr in graphs]
    if sum(unsettled):
        warnings.warn(f"{sum(unsettled)} start(s) had not settled (‖F(s) − s‖ >= tol_settle="
                      f"{tol_settle}) after max_steps={max_steps} or diverged (per network "
                      f"{unsettled}); they are left out of the transition probabilities: "
                      "raise max_steps.", stacklevel=2)
    return graphs


def transition_structure(graph: TransitionGraph) -> dict:
    """Does a flip-flop transition graph have the paper's structure (§3.1)?

    - ``transition_stable_self``: every stable point has only a self-transition
      (no edge to another node, and a self-loop);
    - ``transition_saddles_two``: every unstable point has at least two outgoing
      transitions, to nearby stable points: its destinations are its nearest
      stable points in state space (the ``m`` destinations are no farther than
      its ``m``-th nearest stable point), so no nearer attractor is skipped;
    - ``transition_structure``: both.

    Each is 1.0 or 0.0; NaN when the graph has no stable or no unstable point
    (the structure is then undefined).  A stable point's row is measured only
    when the graph was built with ``perturb_stable=True``; otherwise it is the
    self-loop by construction.

    Parameters
    ----------
    graph : TransitionGraph

    Returns
    -------
    dict of str -> float
    """
    if not isinstance(graph, TransitionGraph):
        raise TypeError(f"graph must be a TransitionGraph; got {type(graph).__name__}.")
    stable, unstable = np.flatnonzero(graph.is_stable), np.flatnonzero(~graph.is_stable)
    keys = ("transition_stable_self", "transition_saddles_two", "transition_structure")
    if not len(stable) or not len(unstable):
        return dict.fromkeys(keys, float("nan"))
    m = graph.matrix
    off = m[stable] * (1 - np.eye(graph.n_nodes)[stable])
    stable_self = bool(np.all(off == 0) and np.all(m[stable, stable] > 0))
    dist = cdist(graph.hstar[unstable], graph.hstar[stable]) if graph.hstar.shape[1] else None
    saddles = True
    for row, i in enumerate(unstable):
        dest = np.flatnonzero(m[i, stable] > 0)
        if len(dest) < 2:
            saddles = False
            break
        if dist is not None:
            d = dist[row]
            saddles = bool(d[dest].max() <= np.sort(d)[len(dest) - 1] * (1 + 1e-9))
            if not saddles:
                break
    return dict(zip(keys, (float(stable_self), float(saddles), float(stable_self and saddles))))
