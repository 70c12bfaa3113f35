"""Universality and individuality in numbers (paper §3–4; SPEC §5).

Per network, :func:`network_topology` turns a trained network and its fixed
points (:func:`~rnn_dyn.find_population_fixed_points`) into its task's
topology: the flip-flop transition graph (:mod:`rnn_dyn.topology`), the sine
network's oscillatory linear modes and chain of input-dependent fixed points,
the context network's per-context line attractor, eigenvalues near 1 and
integration dimensionality (:mod:`rnn_dyn.dynamics`).  Across networks,
:func:`topology_distances` gives the topology distance matrix of a task,
:func:`separation_table` how each distance matrix (topology, SVCCA, CKA)
separates networks by cell and by activation -- the paper's central result as
numbers -- and :func:`group_distances` the mean distance between groups
(trained versus untrained networks, paper Fig. 4).

Nothing here touches MLflow; ``python -m rnn_dyn.experiments topology`` runs
it over a tracked sweep and logs the results.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from rnn_dyn.integration import compute_integration_modes
from rnn_dyn.oscillation import compute_oscillatory_modes
from rnn_dyn.embedding import separation
from rnn_dyn.statistics import comparable  # noqa: F401 (re-exported: it used to live here)
from rnn_dyn.fixed_points import FixedPoints
from rnn_dyn.tasks import Task
from rnn_dyn.chains import compute_chain_graph, pairwise_chain_distances, pairwise_labelled_distances
from rnn_dyn.graph_distances import keep_modal_count, pairwise_graph_distances
from rnn_dyn.transition_graphs import compute_transition_graphs, transition_structure

MIN_IMAG = 1e-3  # |Im λ| above which an eigenvalue oscillates (see oscillation.dominant_oscillatory_eigval)
# A "mildly" unstable oscillatory mode (§3.2: eigenvalues just outside the unit circle): it grows at most
# e-fold per period of its own oscillation, log|λ| · 2π / |angle λ| <= 1, so each output cycle is shaped
# by the rotation, not by the growth.
MAX_LOG_GROWTH_PER_CYCLE = 1.0


def _readout(population, h):
    return np.asarray(population.readout(np.asarray(h, np.float32)[None]))[0]


def flipflop_topology(population, fps: FixedPoints, *, n_perturb=100, seed=0) -> dict:
    """Transition graph of one network's zero-input fixed points, its counts and its structure.

    Every point is perturbed, stable ones too (§3.1 reports that stable points keep only a
    self-loop; :func:`~rnn_dyn.transition_graphs.transition_structure` checks it).  Counts
    ``n_stable`` and ``n_saddle_<k>`` are of exact roots; ``<count>_all`` add the approximate
    (slow) points.
    """
    fixed = fps.for_condition(0).fixed
    graph = compute_transition_graphs(population, fixed, n_perturb=n_perturb, seed=seed, perturb_stable=True)[0]
    counts = np.bincount(graph.n_unstable, minlength=4)
    every = fps.for_condition(0)
    every_counts = np.bincount(np.asarray(every.n_unstable, int), minlength=4)
    return {"graph": graph, "n_fixed": graph.n_nodes, "n_stable": graph.n_stable,
            "n_saddle_1": int(counts[1]), "n_saddle_2": int(counts[2]), "n_saddle_3": int(counts[3]),
            "n_saddle_more": int(counts[4:].sum()),
            "n_stable_all": int(np.sum(every.is_stable)), "n_saddle_1_all": int(every_counts[1]),
            "n_saddle_2_all": int(every_counts[2]), "n_saddle_3_all": int(every_counts[3]),
            "n_unassigned": int(graph.n_unsettled.sum() + graph.n_elsewhere.sum()),
            **transition_structure(graph)}


def unstable_directions(eigvals, min_imag=MIN_IMAG) -> np.ndarray:
    """Per point, ``[unstable real eigenvalues, unstable complex pairs]`` (``|λ| > 1``), ``[n_points, 2]``."""
    lam = np.asarray(eigvals, complex)
    unstable = np.abs(lam) > 1
    return np.stack([np.sum(unstable & (np.abs(lam.imag) <= min_imag), axis=-1),
                     np.sum(unstable & (lam.imag > min_imag), axis=-1)], axis=-1)


def sine_scaffold(fps: FixedPoints, n_cues: int, min_imag=MIN_IMAG,
                  max_growth=MAX_LOG_GROWTH_PER_CYCLE) -> dict:
    """Does one network have §3.2's scaffold: per cue value one fixed point, with a single mildly
    unstable complex pair and no other unstable direction?

    Returns ``sine_scaffold`` (1.0 when every cue has it, else 0.0), ``n_cues_scaffold``,
    ``n_cues_multiple`` (cues with more than one exact root), ``n_cues_none`` (cues without one).
    """
    pts = fps.fixed
    per_cue = np.bincount(np.asarray(pts.condition, int), minlength=n_cues)[:n_cues]
    labels = unstable_directions(pts.eigvals, min_imag)
    lam = np.asarray(pts.eigvals, complex)
    top = np.where(lam.imag > min_imag, lam, 0)[np.arange(len(pts)), np.argmax(lam.imag > min_imag, axis=-1)] \
        if len(pts) else np.zeros(0, complex)
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.log(np.abs(top)) * 2 * np.pi / np.abs(np.angle(top))
    ok_point = (labels[:, 0] == 0) & (labels[:, 1] == 1) & (growth <= max_growth)
    ok = np.array([per_cue[c] == 1 and ok_point[pts.condition == c].all() for c in range(n_cues)], bool)
    return {"sine_scaffold": float(ok.all()), "n_cues_scaffold": int(ok.sum()),
            "n_cues_multiple": int(np.sum(per_cue > 1)), "n_cues_none": int(np.sum(per_cue == 0))}


def sine_topology(population, fps: FixedPoints, task: Task) -> dict:
    """Per input ``u``: the dominant oscillatory mode against ``ω(u)``; the graph of every exact fixed
    point over the cue grid; the §3.2 scaffold (:func:`sine_scaffold`); ``spectrum``: the eigenvalues
    at the middle ``u``.

    The graph (§3.2, Fig. 2e) joins each point to its nearest neighbours, nodes ordered by cue and
    then readout (by cue alone when ``population`` is None), each labelled by its unstable real
    directions and unstable complex pairs (:func:`unstable_directions`).
    """
    omega = task.omega(task.grid)
    modes = compute_oscillatory_modes(fps, omega)
    point = modes.point[0]
    pts = fps.fixed
    y = (_readout(population, population.cell.hidden(pts.hstar.astype(np.float32)))[:, 0]
         if population is not None and len(pts) else np.zeros(len(pts)))
    order = np.lexsort((y, pts.condition))
    chain = compute_chain_graph(pts.hstar[order].reshape(-1, fps.n_state), task.grid[pts.condition[order]],
                                labels=unstable_directions(pts.eigvals[order]))
    summary = modes.per_network()
    mid = point[len(point) // 2]
    spectrum = fps.eigvals[mid] if mid >= 0 else np.zeros(0, complex)
    return {"graph": chain, "spectrum": spectrum, "frequency": modes.frequency[0], "omega": omega,
            "rel_error": modes.rel_error[0], "growth": modes.growth[0],
            "mean_rel_error": float(summary["mean_rel_error"][0]),
            "mean_signed_error": _nanmean((modes.frequency[0] - omega) / omega),
            "median_rel_error": float(summary["median_rel_error"][0]),
            "n_no_point": int(summary["n_no_point"][0]), "n_no_mode": int(summary["n_no_mode"][0]),
            "mean_growth": float(np.nanmean(modes.growth[0])) if np.isfinite(modes.growth[0]).any()
            else float("nan"), **sine_scaffold(fps, len(omega))}


def _nanmean(x) -> float:
    """Mean of the non-NaN entries (as ``mean_rel_error``); NaN, without a warning, when there are none."""
    x = np.asarray(x, np.float64)
    ok = ~np.isnan(x)
    return float(x[ok].mean()) if ok.any() else float("nan")


def context_topology(population, fps: FixedPoints, task: Task, *, tol=0.05, level=0.9) -> dict:
    """Per context: the line attractor's chain graph (ordered by readout) and its linear integration.

    Fixed and slow points both count (an approximate line attractor is made of
    slow points).  ``n_near_one``: eigenvalues with ``|λ − 1| < tol`` (mean
    over the context's points); ``n_modes``: modes needed for ``level`` of
    the integrated readout of a relevant-input pulse; ``one_mode``: the share
    of the slowest mode alone; ``curve``: the mean integration curve;
    ``spectrum``: the eigenvalues at every point of the first context.
    """
    n = len(task.x_cond)
    graphs = []
    for c in range(n):
        pts = fps.for_condition(c)
        y = _readout(population, population.cell.hidden(pts.hstar.astype(np.float32)))[:, 0] \
            if len(pts) else np.zeros(0)
        graphs.append(compute_chain_graph(pts.hstar.reshape(-1, fps.n_state), y))
    modes = compute_integration_modes(fps, population, np.arange(n), horizon=task.n_time, tol=tol, level=level,
                                      hidden=population.cell.hidden, n_conditions=n)
    per = modes.per_network()
    defined = modes.n_modes >= 0
    integral = float(modes.full[defined, 0].mean()) if defined.any() else float("nan")
    return {"graph": graphs, "mean_integral": integral, "spectrum": fps.for_condition(0).eigvals.reshape(-1),
            "n_points": per["n_points"][0],
            "n_near_one": per["n_near_one"][0], "n_modes": per["n_modes"][0], "one_mode": per["one_mode"][0],
            "curve": per["curve"][0],
            "mean_n_near_one": float(np.nanmean(per["n_near_one"][0])),
            "mean_n_modes": float(np.nanmean(per["n_modes"][0])),
            "mean_one_mode": float(np.nanmean(per["one_mode"][0]))}


def network_topology(task: Task, population, fps: FixedPoints, **options) -> dict:
    """The topology of one network (a one-member population) on its task.

    ``options`` go to :func:`flipflop_topology` (``n_perturb``, ``seed``) or
    :func:`context_topology` (``tol``, ``level``).  The result's ``graph``
    is what :func:`topology_distances` compares; scalar entries are the
    per-network measures.
    """
    if population.n_networks != 1:
        raise ValueError(f"network_topology takes one network; got a population of {population.n_networks}.")
    name = task.cfg.name
    if name == "flipflop":
        return flipflop_topology(population, fps, **options)
    if name == "sine":
        return sine_topology(population, fps, task)
    return context_topology(population, fps, task, **options)


def topology_distances(task_name: str, graphs: list, mode: str = "paper", min_nodes: int = 4) -> np.ndarray:
    """Topology distance matrix of a task's networks from their ``graph`` entries.

    Flip-flop: transition graphs (``mode`` ``'paper'`` or ``'matching'``, see
    :func:`~rnn_dyn.topology.pairwise_graph_distances`).  Sine: in ``'paper'``
    mode the graphs of all fixed points, networks off the modal node count
    discarded (NaN, as the paper does for the flip-flop, §3.1's footnote), the
    rest compared exactly, node labels included
    (:func:`~rnn_dyn.chains.pairwise_labelled_distances`); in ``'matching'``
    mode chains max-pooled to the smallest node count, labels ignored.
    Context: the sum over contexts of the chain distances of the line
    attractors.  Pooled chains are compared at the smallest node count among
    them, but never below ``min_nodes``: a chain of fewer points says nothing
    about a line (with two neighbours per point, three points are always all
    joined), so it gets NaN.  NaN marks pairs that cannot be compared.
    """
    if task_name == "flipflop":
        return pairwise_graph_distances(graphs, mode=mode)

    def chains(gs):
        sizes = [g.n_nodes for g in gs if g.n_nodes >= min_nodes]
        if not sizes:
            return np.full((len(gs), len(gs)), np.nan)
        return pairwise_chain_distances(gs, n_nodes=min(sizes))

    if task_name == "sine":
        if mode == "paper":
            return pairwise_labelled_distances(graphs, keep_modal_count([g.n_nodes for g in graphs])[0])
        return chains(graphs)
    return sum(chains([g[c] for g in graphs]) for c in range(len(graphs[0])))


def separation_table(matrices: dict, labels: dict) -> dict:
    """``{metric: {label: silhouette}}`` for each distance matrix.

    Networks with NaN distances (e.g. dropped by the paper's mode rule) are
    left out of that matrix's scores (:func:`comparable`); ``n`` says how many
    were scored.
    """
    table = {}
    for metric, D in matrices.items():
        D = np.asarray(D, np.float64)
        ok = comparable(D)
        lab = {k: list(np.asarray(v)[ok]) for k, v in labels.items() if len(set(np.asarray(v)[ok])) > 1}
        row = separation(D[np.ix_(ok, ok)], lab) if lab and ok.sum() > 2 else {}
        table[metric] = {**row, "n": int(ok.sum())}
    return table


def group_distances(D, groups) -> tuple[list, np.ndarray]:
    """Mean distance between every pair of groups (within a group: off-diagonal pairs).

    Returns the group names (sorted) and ``[n_groups, n_groups]`` means.
    """
    D, groups = np.asarray(D, np.float64), np.asarray(groups)
    names = sorted(set(groups.tolist()))
    out = np.full((len(names), len(names)), np.nan)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            block = D[np.ix_(groups == a, groups == b)]
            if a == b:
                block = block[~np.eye(len(block), dtype=bool)]
            if block.size:
                out[i, j] = block.mean()
    return names, out


def modal_structure(rows: list, labels: list, keys=("n_stable", "n_saddle_1", "n_saddle_2", "n_saddle_3")) -> dict:
    """The most common fixed-point structure per label and how many networks share it.

    ``rows`` are per-network measures (dicts), ``labels`` one label per
    network (e.g. ``"gru/tanh"``).  Returns ``{label: (structure, count, total)}``
    with ``structure`` the tuple of ``keys``.
    """
    out = {}
    for lab in sorted(set(labels)):
        mine = [tuple(r[k] for k in keys) for r, l in zip(rows, labels) if l == lab]
        structure, count = Counter(mine).most_common(1)[0]
        out[lab] = (structure, count, len(mine))
    return out
