"""The paper's claims as numbers with verdicts (SPEC §6), from the study's arrays.

:func:`compute_claims` turns each task's ``topology.npz`` arrays (distance
matrices, per-network measures, ``config`` labels ``"cell/activation"``) and
the trained-versus-untrained ``untrained.npz`` into one record per claim of
the paper: ``{id, task, claim, measure, value, ci, p_value, n, verdict,
robust, reason, details}``, plain JSON.  :func:`beyond_the_paper` judges, in
the same form, what the study asks beyond the paper (DSA, a measure the paper
did not have); the report shows those in a table of their own and
``claims.json`` keeps them under the key ``beyond_the_paper``.
:func:`sensitivity` recomputes the geometry claims with every distance the
study computed (SVCCA with 95% of the variance or a fixed k, CKA, CCA, ...)
and the topology claims with every topology distance (the flip-flop's
matching distance beside the paper's).  Pure functions of arrays: nothing
here reads MLflow.

The claims live in :mod:`rnn_dyn.claims_geometry` (distance matrices) and
:mod:`rnn_dyn.claims_dynamics` (fixed points and linearisations); the rules
that turn a statistic into a verdict in :mod:`rnn_dyn.verdicts`:

- subsets follow the paper's figures: *by architecture* among tanh networks,
  *by activation* among vanilla networks;
- ``p_value`` is the p of the test that decided the verdict: one-sided in the
  paper's direction, or the opposite tail for a ``contradicted`` verdict (a
  permutation p for silhouettes, Mann-Whitney; Kruskal-Wallis has no
  direction); None for claims judged by a bootstrap interval or a count;
- ``reproduced`` when that p is below ``ALPHA`` and, for a silhouette, the
  value is above 0; ``contradicted`` when the same test is significant in
  the opposite direction, or a bootstrap interval lies wholly on the wrong
  side, or the flip-flop's modal structure is not 8/12/6/1; ``inconclusive``
  otherwise, with a ``reason``, also when a claim cannot be computed (task
  not run, array missing, too few networks, a constant distance matrix);
- ``robust`` (geometry claims; None elsewhere): SVCCA at 95% of the variance
  and at k = 10 reach the same verdict.

Confidence intervals are bootstrap intervals over networks (basic method,
resampled within each label, copies of a network left out of within-group
pairs; see :func:`rnn_dyn.statistics.bootstrap_ci`).
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import numpy as np

from rnn_dyn import claims_dynamics as dyn
from rnn_dyn import claims_geometry as geo
from rnn_dyn._checks import check_positive
from rnn_dyn.untrained import trained_vs_untrained
from rnn_dyn.verdicts import ALPHA, Inconclusive, Settings

TASKS = ("flipflop", "sine", "context")
METHODS = ("svcca", "svcca_k10", "svcca_k20", "cka", "cca", "procrustes")  # sensitivity's geometry distances
TOPOLOGY_METHODS = ("topology", "topology_matching", "topology_paper")  # ... and topology distances
RECORD_KEYS = ("id", "task", "claim", "measure", "value", "ci", "p_value", "n", "verdict", "robust", "reason",
               "details")

__all__ = ["ALPHA", "BEYOND", "CLAIMS", "TASKS", "beyond_the_paper", "compute_claims", "sensitivity"]


def _trained_vs_untrained(arrays, untrained, st):
    out = trained_vs_untrained(untrained, st.n_permutations, st.n_bootstrap, st.seed, st.level, ALPHA)
    return {**out, "robust": out["details"].get("robust")}


# (id suffix, tasks, claim, measure, function), in SPEC §6's order
CLAIMS = (
    ("scaffold", ("flipflop",), "every architecture finds 8 stable points and saddles with 1, 2, 3 unstable "
     "directions (§3.1, Fig. 1e)", "per configuration, the modal structure (stable, 1-, 2-, 3-unstable counts) "
     "of exact roots; value: the smallest share, over configurations, of networks with 8/12/6/1 (with slow "
     "points as well: details)", dyn.scaffold),
    ("transition_structure", ("flipflop",), "stable points have only a self-loop; every saddle has two or more "
     "outgoing transitions, to nearby stable points (§3.1)", "share of networks whose transition graph has both "
     "(a saddle's destinations are its nearest stable points); bootstrap CI, low end >= 0.9",
     dyn.transition_structure),
    ("geometry_by_architecture", TASKS, "geometry differs by architecture (Figs. 1d, 2c, 3c)",
     "SVCCA (95%) silhouette of the cell labels, tanh networks; permutation p; robust: SVCCA k = 10 agrees",
     partial(geo.geometry, by="architecture")),
    ("geometry_by_activation", TASKS, "geometry differs by activation (Figs. 1d, 2c, 3c)",
     "SVCCA (95%) silhouette of the activation labels, vanilla networks; permutation p; robust: SVCCA k = 10 "
     "agrees", partial(geo.geometry, by="activation")),
    ("topology_universal", TASKS, "topology varies far less by architecture than geometry (Figs. 1f, 2e, 3d)",
     "topology silhouette by cell minus SVCCA's, tanh networks; bootstrap CI below 0; topology's own silhouette "
     "and p in details", partial(geo.universal, metric="topology")),
    ("topology_by_activation", ("flipflop", "sine"), "topology is shared across activations (Figs. 1f, 2e)",
     "topology silhouette of the activation labels, vanilla networks; permutation p >= 0.05 (no separation)",
     partial(geo.topology_by_activation, separates=False)),
    ("topology_by_activation", ("context",), "the line-attractor topology separates the activations (Fig. 3d)",
     "topology silhouette of the activation labels, vanilla networks; permutation p < 0.05, silhouette > 0",
     partial(geo.topology_by_activation, separates=True)),
    ("scaffold", ("sine",), "one input-dependent fixed point per cue value, with a single mildly unstable "
     "complex pair (§3.2)", "share of networks with exactly that at every cue (>= 0.9); cue values with more "
     "than one point in details", dyn.sine_scaffold),
    ("frequency_matches", ("sine",), "the linear frequency tracks ω(u) (Fig. 2f)",
     "median over networks of the mean |f − ω|/ω", dyn.frequency_matches),
    ("frequency_by_architecture", ("sine",), "... with small systematic differences by architecture (Fig. 2f)",
     "Kruskal-Wallis H over the cells of each tanh network's mean signed (f − ω)/ω",
     partial(dyn.frequency_by, by="architecture")),
    ("frequency_by_activation", ("sine",), "... and by activation (Fig. 2f)",
     "Kruskal-Wallis H over the activations of each vanilla network's mean signed (f − ω)/ω",
     partial(dyn.frequency_by, by="activation")),
    ("gated_more_eigenvalues_near_one", ("context",), "gated cells use more modes near λ = 1 (Fig. 3e)",
     "median mean count of |λ − 1| < 0.05, gated minus vanilla, tanh networks; one-sided Mann-Whitney",
     partial(dyn.gated_vs_vanilla, key="mean_n_near_one", what="a count")),
    ("integration_modes", ("context",), "vanilla networks integrate with one mode, gated cells spread it over "
     "several (Fig. 3f)", "modes needed for 90% of the linearised integral, median gated minus vanilla, tanh "
     "networks; one-sided Mann-Whitney; the linearised integral (ideal 1) in details", dyn.integration_modes),
    ("trained_vs_untrained", ("context",), "trained and untrained vanilla RNNs can be closer than trained RNNs of "
     "different nonlinearities (§3.3, Fig. 4)", "on the structured probes, per context, SVCCA (95%): share of trained "
     "relu networks closer to their own untrained initialisation than to the trained tanh networks (mean), "
     "bootstrap CI; Fig. 4b: trained–untrained tanh minus trained–untrained relu cluster distance, permutation p; "
     "the context with the least support", _trained_vs_untrained),
    ("cka_agrees_with_svcca", TASKS, "CKA and SVCCA give the same conclusions on clustering by architecture and "
     "activation (Appendix E)", "the geometry verdicts with CKA and with SVCCA (95%) on both subsets; value: the "
     "share of subsets on which they agree; Mantel r in details", geo.cka_agrees_with_svcca),
)

# What the study asks beyond the paper, in the same form (SPEC §6 lists the paper's claims only).
BEYOND = (
    ("dsa_universal", TASKS, "dynamics compared by DSA (Ostrow et al. 2023, after the paper) vary less by "
     "architecture than geometry", "DSA silhouette by cell minus SVCCA's, tanh networks; bootstrap CI below 0; "
     "the DMD fit (R², one and several steps) in details", geo.dsa_universal),
)


def _plain(x):
    """JSON-ready copy: numpy scalars to Python, NaN and inf to None, tuples and arrays to lists."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_plain(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.str_):
        return str(x)
    return x


def _record(cid, task, claim, measure, fn, arrays, untrained, st):
    base = {"id": f"{task}.{cid}", "task": task, "claim": claim, "measure": measure}
    try:
        if arrays is None and cid != "trained_vs_untrained":
            raise Inconclusive(f"task {task!r} was not run")
        out = fn(arrays, untrained, st)
    except Inconclusive as why:
        out = dict(value=None, ci=None, p_value=None, n=why.n, verdict="inconclusive", reason=why.reason,
                   details=why.fields.get("details", {}))
    record = {"robust": None, **base, **out}
    return _plain({k: record[k] for k in RECORD_KEYS})


def _check(topology, n_permutations, n_bootstrap, seed):
    if not isinstance(topology, Mapping):
        raise TypeError(f"topology must be a dict of task -> arrays; got {type(topology).__name__}.")
    unknown = sorted(set(topology) - set(TASKS))
    if unknown:
        raise ValueError(f"topology's tasks must be among {sorted(TASKS)}; got {unknown}.")
    check_positive("n_permutations", n_permutations, integer=True)
    check_positive("n_bootstrap", n_bootstrap, integer=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {seed!r}.")


def _records(table, topology, untrained, st):
    return [_record(cid, task, claim, measure, fn, topology.get(task), untrained, st)
            for task in TASKS for cid, tasks, claim, measure, fn in table if task in tasks]


def compute_claims(topology, untrained=None, n_permutations=999, n_bootstrap=1000, seed=0) -> list:
    """Every SPEC §6 claim of every task, with its value, uncertainty and verdict.

    Parameters
    ----------
    topology : dict of str -> dict of str -> ndarray
        Per task that ran, the arrays of its ``topology.npz``: ``config [n]``
        (``"cell/activation"``), ``distances_<metric> [n, n]`` (``svcca``,
        ``svcca_k10``, ``cka``, ``topology``...) and per-network measures ``[n]``.
        Tasks not run are absent.
    untrained : dict of str -> ndarray, optional
        ``untrained.npz`` (:func:`rnn_dyn.jobs.untrained_job`; judged by
        :func:`rnn_dyn.untrained.trained_vs_untrained`).
    n_permutations : int, default 999
    n_bootstrap : int, default 1000
    seed : int, default 0

    Returns
    -------
    list of dict
        One per claim and task, in SPEC order, with keys ``RECORD_KEYS``:
        ``id`` (e.g. ``"sine.geometry_by_architecture"``), ``task``,
        ``claim``, ``measure``, ``value``, ``ci`` (``[lo, hi]`` or None),
        ``p_value`` (of the test that decided the verdict; None for
        interval-judged claims), ``n`` (networks used), ``verdict``
        (``'reproduced'``, ``'contradicted'`` or ``'inconclusive'``),
        ``robust`` (geometry claims: SVCCA 95% and k = 10 agree; else None),
        ``reason`` (why not reproduced; None when reproduced) and
        ``details``; plain JSON, NaN as None.

    Examples
    --------
    >>> arrays = dict(np.load("topology.npz"))
    >>> claims = compute_claims({"flipflop": arrays})
    """
    _check(topology, n_permutations, n_bootstrap, seed)
    return _records(CLAIMS, topology, untrained, Settings(n_permutations, n_bootstrap, seed))


def beyond_the_paper(topology, n_permutations=999, n_bootstrap=1000, seed=0) -> list:
    """The study's questions beyond the paper (``BEYOND``: DSA), as records like :func:`compute_claims`'s.

    ``details`` carry the DMD fit of the DSA comparison (``dsa_n_delays``,
    ``dsa_rank``, ``dsa_fit_r2_one_step``, ``dsa_fit_r2_multi_step``) when the
    task's arrays hold them.
    """
    _check(topology, n_permutations, n_bootstrap, seed)
    return _records(BEYOND, topology, None, Settings(n_permutations, n_bootstrap, seed))


def sensitivity(topology, n_permutations=999, seed=0) -> list:
    """The geometry and topology claims recomputed with every distance the study has, beside the default.

    Returns
    -------
    list of dict
        Per task that ran: per geometry claim (``geometry_by_architecture``,
        ``geometry_by_activation``) and method of ``METHODS``, then per
        topology claim (``topology_universal``, ``topology_by_activation``)
        and method of ``TOPOLOGY_METHODS``, whose ``distances_<method>``
        exists: ``{id, task, method, value, p_value, n, verdict, reason}``,
        judged as in :func:`compute_claims` (intervals from 99 resamples
        where a claim needs one).
    """
    _check(topology, n_permutations, 1, seed)
    st = Settings(n_permutations, 99, seed)
    rows = []
    for task in TASKS:
        arrays = topology.get(task)
        if arrays is None:
            continue
        tests = [(f"geometry_by_{by}", m, lambda a, u, s, by=by, m=m: geo.geometry_test(a, s, by, m, ci=False))
                 for by in ("architecture", "activation") for m in METHODS]
        tests += [("topology_universal", m, partial(geo.universal, metric=m)) for m in TOPOLOGY_METHODS]
        tests += [("topology_by_activation", m, partial(geo.topology_by_activation, metric=m,
                                                        separates=task == "context")) for m in TOPOLOGY_METHODS]
        for cid, method, fn in tests:
            if f"distances_{method}" not in arrays:
                continue
            rec = _record(cid, task, "", "", fn, arrays, None, st)
            rows.append({"id": rec["id"], "task": task, "method": method,
                         **{k: rec[k] for k in ("value", "p_value", "n", "verdict", "reason")}})
    return rows
