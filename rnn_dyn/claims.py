"""The paper's claims as numbers with verdicts (SPEC §6), from the study's arrays.

:func:`compute_claims` turns each task's ``topology.npz`` arrays (distance
matrices, per-network measures, ``config`` labels ``"cell/activation"``) and
the trained-versus-untrained ``untrained.npz`` into one record per claim:
``{id, task, claim, measure, value, ci, p_value, n, verdict, reason,
details}``, plain JSON.  :func:`sensitivity` recomputes the geometry claims
with every distance the study computed (SVCCA with 95% of the variance or a
fixed k, CKA, CCA, ...).  Pure functions of arrays: nothing here reads MLflow.

Subsets follow the paper's figures: *by architecture* among tanh networks,
*by activation* among vanilla networks.  Verdicts come from the statistics
alone (:mod:`rnn_dyn.statistics`), at ``ALPHA``:

- ``p_value`` is always one-sided in the paper's direction (a permutation p
  for silhouettes, Mantel and group distances; Mann-Whitney; Kruskal-Wallis
  has no direction); ``reproduced`` when it is below ``ALPHA`` and, for a
  silhouette or a correlation, the value is above 0.
- ``contradicted``: the same test significant in the opposite direction --
  the lower-tail permutation p below ``ALPHA`` *and* a value below 0 (networks
  sit closer to other groups than to their own, beyond chance); the opposite
  Mann-Whitney or group-distance tail below ``ALPHA``; a bootstrap interval
  wholly on the wrong side (``*_universal``: above 0; frequency: above 0.2);
  a configuration whose modal fixed-point structure is not 8/12/6/1.
- ``inconclusive`` otherwise, with a ``reason``; also when a claim cannot be
  computed: task not run, matrix missing, or too few networks.  A test needs
  ``MIN_LABELS`` labels with at least ``MIN_PER_LABEL`` networks each (labels
  with fewer are left out and listed in ``details``; ``MIN_PER_LABEL_BOOTSTRAP``
  for the bootstrap intervals of ``*_universal``); a single-sample measure
  or a Mantel test needs ``MIN_NETWORKS``.  Networks with NaN distances are
  dropped from the test on that matrix (``details['n_nan_dropped']``).

Confidence intervals are bootstrap intervals over networks (basic method,
resampled within each label, copies of a network left out of within-group
pairs; see :func:`rnn_dyn.statistics.bootstrap_ci`).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from functools import partial
from typing import NamedTuple

import numpy as np
from scipy import stats as _sps

from rnn_dyn._checks import check_positive
from rnn_dyn.embedding import check_distances
from rnn_dyn.statistics import (bootstrap_ci, comparable, mantel_r, mantel_test, separation_ci,
                                separation_test, silhouette)
from rnn_dyn.untrained import trained_vs_untrained

TASKS = ("flipflop", "sine", "context")
ALPHA = 0.05  # significance level of every verdict
MIN_PER_LABEL = 2  # networks a label needs to take part in a test
MIN_PER_LABEL_BOOTSTRAP = 3  # ... in a bootstrap interval (with 2, most resamples repeat one network)
MIN_LABELS = 2  # labels a test needs
MIN_NETWORKS = 4  # networks a single-sample measure or a Mantel test needs
SCAFFOLD = (8, 12, 6, 1)  # stable points, saddles with 1, 2, 3 unstable directions
SCAFFOLD_KEYS = ("n_stable", "n_saddle_1", "n_saddle_2", "n_saddle_3")
FREQUENCY_TOLERANCE = 0.2  # median mean |f - ω| / ω below which the frequency "matches"
GATED = ("ugrnn", "gru", "lstm")
METHODS = ("svcca", "svcca_k10", "svcca_k20", "cka", "cca", "procrustes")  # sensitivity's distances



class _Settings(NamedTuple):
    n_permutations: int
    n_bootstrap: int
    seed: int
    level: float = 0.95


class _Inconclusive(Exception):
    """A claim that cannot be judged: why, and on how many networks."""

    def __init__(self, reason, n=0, **fields):
        super().__init__(reason)
        self.reason, self.n, self.fields = reason, n, fields


# -- shared pieces -----------------------------------------------------------------

def _labels(arrays):
    if "config" not in arrays:
        raise _Inconclusive("topology.npz has no 'config' array")
    config = np.asarray(arrays["config"]).astype(str)
    parts = [c.split("/") for c in config]
    if any(len(p) != 2 for p in parts):
        raise ValueError(f"config must hold 'cell/activation' strings; got {config[:3].tolist()}...")
    return config, np.array([p[0] for p in parts]), np.array([p[1] for p in parts])


def _array(arrays, key, n):
    if key not in arrays:
        raise _Inconclusive(f"no '{key}' array", n)
    x = np.asarray(arrays[key], np.float64)
    want = (n, n) if key.startswith("distances_") else (n,)
    if x.shape != want:
        raise ValueError(f"{key} must have shape {want}, one entry per network of 'config'; got {x.shape}.")
    return x


def _select(matrices, keep, labels, subset, min_per_label=MIN_PER_LABEL):
    """Indices of the networks a test uses: in ``keep``, finite in every matrix, in a label with enough networks."""
    idx = np.flatnonzero(keep)
    ok = comparable(sum(np.asarray(D)[np.ix_(idx, idx)] for D in matrices))
    idx = idx[ok]
    names, counts = np.unique(labels[idx], return_counts=True)
    small = names[counts < min_per_label].tolist()
    idx = idx[~np.isin(labels[idx], small)]
    sizes = dict(zip(*np.unique(labels[idx], return_counts=True)))
    details = {"subset": subset, "n_subset": int(keep.sum()), "n_nan_dropped": int((~ok).sum()),
               "labels_dropped": small, "group_sizes": {str(k): int(v) for k, v in sizes.items()}}
    if len(sizes) < MIN_LABELS:
        raise _Inconclusive(f"too few networks: {subset} need >= {MIN_LABELS} labels with >= {min_per_label} "
                            f"networks each; got {details['group_sizes'] or 'none'}", len(idx), details=details)
    return idx, details


def _directional(value, p_greater, p_less, what="value"):
    """Verdict and reason of a one-sided test whose claim is ``value > 0``."""
    if not np.isfinite(value) or not np.isfinite(p_greater):
        return "inconclusive", f"{what} is undefined (a constant matrix?)"
    if p_greater < ALPHA and value > 0:
        return "reproduced", None
    if p_less < ALPHA and value < 0:
        return "contradicted", f"{what} {value:.3g} < 0, below chance (lower-tail p {p_less:.3g} < {ALPHA})"
    if p_greater < ALPHA:
        return "inconclusive", f"p {p_greater:.3g} < {ALPHA} but {what} {value:.3g} <= 0"
    return "inconclusive", f"not significant: p {p_greater:.3g} >= {ALPHA}"


def _interval(ci, threshold):
    """Verdict and reason of a claim ``value < threshold`` from where its CI lies."""
    lo, hi = ci
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "inconclusive", "bootstrap interval undefined"
    if hi < threshold:
        return "reproduced", None
    if lo > threshold:
        return "contradicted", f"interval [{lo:.3g}, {hi:.3g}] lies on the wrong side of {threshold}"
    return "inconclusive", f"interval [{lo:.3g}, {hi:.3g}] contains {threshold}"


# -- the claims --------------------------------------------------------------------

def _geometry(arrays, untrained, st, by, metric="svcca", ci=True):
    _, cell, act = _labels(arrays)
    D = _array(arrays, f"distances_{metric}", len(cell))
    keep, labels, subset = (act == "tanh", cell, "tanh networks") if by == "architecture" else \
        (cell == "vanilla", act, "vanilla networks")
    idx, details = _select([D], keep, labels, subset)
    D, labels = D[np.ix_(idx, idx)], labels[idx]
    res = separation_test(D, labels, st.n_permutations, st.seed)
    verdict, reason = _directional(res.statistic, res.p_value, res.p_less, "silhouette")
    interval = separation_ci(D, labels, st.n_bootstrap, st.seed, st.level) if ci else None
    return dict(value=res.statistic, ci=interval, p_value=res.p_value, n=res.n, verdict=verdict, reason=reason,
                details={**details, "metric": metric, "p_less": res.p_less})


def _universal(arrays, untrained, st, metric):
    _, cell, act = _labels(arrays)
    T, S = _array(arrays, f"distances_{metric}", len(cell)), _array(arrays, "distances_svcca", len(cell))
    idx, details = _select([T, S], act == "tanh", cell, "tanh networks", MIN_PER_LABEL_BOOTSTRAP)
    T, S, labels = check_distances(T[np.ix_(idx, idx)], metric), check_distances(S[np.ix_(idx, idx)]), cell[idx]

    def difference(i):
        return silhouette(T, labels, i) - silhouette(S, labels, i)

    value = difference(np.arange(len(idx)))
    interval = bootstrap_ci(difference, len(idx), st.n_bootstrap, st.seed, st.level, strata=labels)
    verdict, reason = _interval(interval, 0.0)
    return dict(value=value, ci=interval, p_value=None, n=len(idx), verdict=verdict, reason=reason,
                details={**details, f"silhouette_{metric}": silhouette(T, labels),
                         "silhouette_svcca": silhouette(S, labels)})


def _scaffold(arrays, untrained, st):
    config, _, _ = _labels(arrays)
    X = np.stack([_array(arrays, k, len(config)) for k in SCAFFOLD_KEYS], axis=1)
    ok = np.all(np.isfinite(X), axis=1)
    per, differs, unsure = {}, [], []
    for lab in sorted(set(config[ok])):
        rows = [tuple(int(v) for v in r) for r in X[ok & (config == lab)]]
        counts = Counter(rows)
        top = max(counts.values())
        modes = sorted(s for s, c in counts.items() if c == top)
        per[lab] = {"structure": list(modes[0]) if len(modes) == 1 else [list(m) for m in modes],
                    "count": top, "total": len(rows), "share_paper": counts[SCAFFOLD] / len(rows)}
        if len(rows) < MIN_PER_LABEL:
            unsure.append(f"{lab}: {len(rows)} network")
        elif SCAFFOLD not in modes:
            differs.append(f"{lab}: {'/'.join(map(str, modes[0]))}")
        elif len(modes) > 1:
            unsure.append(f"{lab}: tied modes")
    n = int(ok.sum())
    if len(per) < MIN_LABELS and not differs:
        raise _Inconclusive(f"too few configurations: {len(per)} (need >= {MIN_LABELS})", n, details=per)
    value = min(p["share_paper"] for p in per.values())
    if differs:
        verdict, reason = "contradicted", "modal structure differs: " + "; ".join(differs)
    elif unsure:
        verdict, reason = "inconclusive", "; ".join(unsure)
    else:
        verdict, reason = "reproduced", None
    return dict(value=value, ci=None, p_value=None, n=n, verdict=verdict, reason=reason, details=per)


def _frequency_matches(arrays, untrained, st):
    config, _, _ = _labels(arrays)
    x = _array(arrays, "mean_rel_error", len(config))
    x = x[np.isfinite(x)]
    if len(x) < MIN_NETWORKS:
        raise _Inconclusive(f"too few networks with a frequency: {len(x)} (need >= {MIN_NETWORKS})", len(x))
    value = float(np.median(x))
    interval = bootstrap_ci(lambda i: np.median(x[i]), len(x), st.n_bootstrap, st.seed, st.level)
    if value < FREQUENCY_TOLERANCE:
        verdict, reason = "reproduced", None
    elif interval[0] >= FREQUENCY_TOLERANCE:
        verdict, reason = "contradicted", f"interval lies above {FREQUENCY_TOLERANCE}"
    else:
        verdict, reason = "inconclusive", f"median {value:.3g} >= {FREQUENCY_TOLERANCE}, interval reaches below it"
    return dict(value=value, ci=interval, p_value=None, n=len(x), verdict=verdict, reason=reason,
                details={"threshold": FREQUENCY_TOLERANCE})


def _samples_by(arrays, key, keep_fn):
    """Per-network measure ``key`` of the tanh networks with a finite value, and their cells."""
    _, cell, act = _labels(arrays)
    x = _array(arrays, key, len(cell))
    keep = (act == "tanh") & np.isfinite(x) & keep_fn(cell)
    return x[keep], cell[keep]


def _frequency_by_architecture(arrays, untrained, st):
    x, cell = _samples_by(arrays, "mean_signed_error", lambda c: np.ones(len(c), bool))
    names, counts = np.unique(cell, return_counts=True)
    names = names[counts >= MIN_PER_LABEL]
    groups = [x[cell == c] for c in names]
    n = sum(map(len, groups))
    details = {"subset": "tanh networks",
               "median_by_cell": {str(c): float(np.median(g)) for c, g in zip(names, groups)},
               "group_sizes": {str(c): len(g) for c, g in zip(names, groups)}}
    if len(groups) < MIN_LABELS:
        raise _Inconclusive(f"too few networks: need >= {MIN_LABELS} cells with >= {MIN_PER_LABEL} tanh networks "
                            "with a frequency", n, details=details)
    if np.ptp(np.concatenate(groups)) == 0:
        raise _Inconclusive("every network has the same signed error", n, details=details)
    H, p = _sps.kruskal(*groups)
    verdict, reason = ("reproduced", None) if p < ALPHA else ("inconclusive", f"not significant: p {p:.3g} >= {ALPHA}")
    return dict(value=H, ci=None, p_value=p, n=n, verdict=verdict, reason=reason, details=details)


def _gated_near_one(arrays, untrained, st):
    x, cell = _samples_by(arrays, "mean_n_near_one", lambda c: np.isin(c, GATED + ("vanilla",)))
    gated = np.isin(cell, GATED)
    sizes = {"gated": int(gated.sum()), "vanilla": int((~gated).sum())}
    if min(sizes.values()) < MIN_PER_LABEL:
        raise _Inconclusive(f"too few networks: tanh networks with a count, {sizes} (need >= {MIN_PER_LABEL} each)",
                            len(x), details={"group_sizes": sizes})
    g, v = x[gated], x[~gated]
    p = _sps.mannwhitneyu(g, v, alternative="greater").pvalue
    p_less = _sps.mannwhitneyu(g, v, alternative="less").pvalue
    value = float(np.median(g) - np.median(v))
    interval = bootstrap_ci(lambda i: np.median(x[i][gated]) - np.median(x[i][~gated]), len(x), st.n_bootstrap,
                            st.seed, st.level, strata=gated)
    if p < ALPHA:
        verdict, reason = "reproduced", None
    elif p_less < ALPHA:
        verdict, reason = "contradicted", f"vanilla networks have more (one-sided p {p_less:.3g})"
    else:
        verdict, reason = "inconclusive", f"not significant: p {p:.3g} >= {ALPHA}"
    return dict(value=value, ci=interval, p_value=p, n=len(x), verdict=verdict, reason=reason,
                details={"subset": "tanh networks", "group_sizes": sizes, "median_gated": float(np.median(g)),
                         "median_vanilla": float(np.median(v)), "p_less": p_less,
                         "auc": _sps.mannwhitneyu(g, v).statistic / (len(g) * len(v))})


def _topology_by_activation(arrays, untrained, st):
    _, cell, act = _labels(arrays)
    D = _array(arrays, "distances_topology", len(cell))
    idx, details = _select([D], np.ones(len(cell), bool), act, "all networks")
    D, labels = D[np.ix_(idx, idx)], act[idx]
    res = separation_test(D, labels, st.n_permutations, st.seed)
    verdict, reason = _directional(res.statistic, res.p_value, res.p_less, "silhouette")
    by_cell = silhouette(D, cell[idx]) if 2 <= len(set(cell[idx])) < len(idx) else None
    return dict(value=res.statistic, ci=separation_ci(D, labels, st.n_bootstrap, st.seed, st.level),
                p_value=res.p_value, n=res.n, verdict=verdict, reason=reason,
                details={**details, "p_less": res.p_less, "silhouette_by_cell": by_cell})


def _trained_vs_untrained(arrays, untrained, st):
    return trained_vs_untrained(untrained, st.n_permutations, st.n_bootstrap, st.seed, st.level, ALPHA)


def _cka_svcca(arrays, untrained, st):
    config, _, _ = _labels(arrays)
    A, B = _array(arrays, "distances_cka", len(config)), _array(arrays, "distances_svcca", len(config))
    ok = comparable(A + B)
    if ok.sum() < MIN_NETWORKS:
        raise _Inconclusive(f"too few networks with finite distances: {int(ok.sum())} (need >= {MIN_NETWORKS})",
                            int(ok.sum()))
    A, B = A[np.ix_(ok, ok)], B[np.ix_(ok, ok)]
    res = mantel_test(A, B, st.n_permutations, st.seed)
    verdict, reason = _directional(res.statistic, res.p_value, res.p_less, "correlation")
    interval = bootstrap_ci(lambda i: mantel_r(A, B, i), len(A), st.n_bootstrap, st.seed, st.level, strata=config[ok])
    return dict(value=res.statistic, ci=interval, p_value=res.p_value, n=res.n, verdict=verdict, reason=reason,
                details={"subset": "all networks", "n_nan_dropped": int((~ok).sum()), "p_less": res.p_less})


# (id suffix, tasks, claim, measure, function), in SPEC §6's order
CLAIMS = (
    ("scaffold", ("flipflop",), "every architecture finds 8 stable points and saddles with 1, 2, 3 unstable "
     "directions (Fig. 1e)", "per configuration, the modal structure (stable, 1-, 2-, 3-unstable counts); value: "
     "the smallest share, over configurations, of networks with 8/12/6/1", _scaffold),
    ("geometry_by_architecture", TASKS, "geometry differs by architecture (Figs. 1d, 2c, 3c)",
     "SVCCA silhouette of the cell labels, tanh networks; permutation p", partial(_geometry, by="architecture")),
    ("geometry_by_activation", TASKS, "geometry differs by activation",
     "SVCCA silhouette of the activation labels, vanilla networks; permutation p", partial(_geometry, by="activation")),
    ("topology_universal", TASKS, "topology varies far less by architecture than geometry (Figs. 1f, 2e, 3d)",
     "topology silhouette by cell minus SVCCA's, tanh networks; bootstrap CI", partial(_universal, metric="topology")),
    ("frequency_matches", ("sine",), "the linear frequency tracks ω(u) (Fig. 2f)",
     "median over networks of the mean |f − ω|/ω", _frequency_matches),
    ("frequency_by_architecture", ("sine",), "... with small systematic differences by architecture",
     "Kruskal-Wallis H over the cells of each tanh network's mean signed (f − ω)/ω", _frequency_by_architecture),
    ("gated_more_eigenvalues_near_one", ("context",), "gated cells use more modes near λ = 1 (Fig. 3e)",
     "median mean count of |λ − 1| < 0.05, gated minus vanilla, tanh networks; one-sided Mann-Whitney",
     _gated_near_one),
    ("topology_by_activation", ("context",), "the line-attractor topology clusters by activation, not "
     "architecture (Fig. 3d)", "topology silhouette of the activation labels, all networks; permutation p",
     _topology_by_activation),
    ("trained_vs_untrained", ("context",), "trained and untrained vanilla RNNs can be closer than trained RNNs of "
     "different nonlinearities (§3.3, Fig. 4)", "on the structured probes, per context, SVCCA (95%): share of trained "
     "relu networks closer to their own untrained initialisation than to the trained tanh networks (mean), "
     "bootstrap CI; Fig. 4b: trained–untrained tanh minus trained–untrained relu cluster distance, permutation p; "
     "the context with the least support", _trained_vs_untrained),
    ("cka_agrees_with_svcca", TASKS, "CKA gives the same picture as SVCCA (Appendix E)",
     "Mantel correlation of the CKA and SVCCA matrices, all networks; permutation p", _cka_svcca),
    ("dsa_universal", TASKS, "dynamics (DSA) varies less by architecture than geometry",
     "DSA silhouette by cell minus SVCCA's, tanh networks; bootstrap CI", partial(_universal, metric="dsa")),
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
            raise _Inconclusive(f"task {task!r} was not run")
        out = fn(arrays, untrained, st)
    except _Inconclusive as why:
        out = dict(value=None, ci=None, p_value=None, n=why.n, verdict="inconclusive", reason=why.reason,
                   details=why.fields.get("details", {}))
    return _plain({**base, **out})


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


def compute_claims(topology, untrained=None, n_permutations=999, n_bootstrap=1000, seed=0) -> list:
    """Every SPEC §6 claim of every task, with its value, uncertainty and verdict.

    Parameters
    ----------
    topology : dict of str -> dict of str -> ndarray
        Per task that ran, the arrays of its ``topology.npz``: ``config [n]``
        (``"cell/activation"``), ``distances_<metric> [n, n]`` (``svcca``,
        ``cka``, ``topology``, ``dsa``...) and per-network measures ``[n]``.
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
        One per claim and task, in SPEC order, with keys ``id`` (e.g.
        ``"sine.geometry_by_architecture"``), ``task``, ``claim``,
        ``measure``, ``value``, ``ci`` (``[lo, hi]`` or None), ``p_value``
        (one-sided, in the paper's direction; None for interval-judged
        claims), ``n`` (networks used), ``verdict`` (``'reproduced'``,
        ``'contradicted'`` or ``'inconclusive'``), ``reason`` (why not
        reproduced; None when reproduced) and ``details``; plain JSON, NaN
        as None.

    Examples
    --------
    >>> arrays = dict(np.load("topology.npz"))
    >>> claims = compute_claims({"flipflop": arrays})
    """
    _check(topology, n_permutations, n_bootstrap, seed)
    st = _Settings(n_permutations, n_bootstrap, seed)
    return [_record(cid, task, claim, measure, fn, topology.get(task), untrained, st)
            for task in TASKS for cid, tasks, claim, measure, fn in CLAIMS if task in tasks]


def sensitivity(topology, n_permutations=999, seed=0) -> list:
    """The geometry claims recomputed with every distance the study has, beside the default (SVCCA, 95%).

    Returns
    -------
    list of dict
        Per task that ran, per claim (``geometry_by_architecture``,
        ``geometry_by_activation``) and per method of ``METHODS`` whose
        ``distances_<method>`` exists: ``{id, task, method, value, p_value, n,
        verdict, reason}``, judged as in :func:`compute_claims`.
    """
    _check(topology, n_permutations, 1, seed)
    st = _Settings(n_permutations, 1, seed)
    rows = []
    for task in TASKS:
        arrays = topology.get(task)
        for by in ("architecture", "activation"):
            for method in METHODS:
                if arrays is None or f"distances_{method}" not in arrays:
                    continue
                fn = partial(_geometry, by=by, metric=method, ci=False)
                rec = _record(f"geometry_by_{by}", task, "", "", fn, arrays, None, st)
                rows.append({"id": rec["id"], "task": task, "method": method,
                             **{k: rec[k] for k in ("value", "p_value", "n", "verdict", "reason")}})
    return rows
