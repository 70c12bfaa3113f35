"""The claims about distance matrices (SPEC §6): geometry, topology against geometry, CKA against SVCCA.

Each function takes one task's ``topology.npz`` arrays, the trained-versus-untrained
arrays (unused here) and the :class:`~rnn_dyn.verdicts.Settings`, and returns the
fields of a claim record (``value, ci, p_value, n, verdict, robust, reason,
details``), or raises :class:`~rnn_dyn.verdicts.Inconclusive`.  Subsets follow the
paper's figures (:func:`~rnn_dyn.verdicts.subset_of`): by architecture among tanh
networks, by activation among vanilla networks.
"""
from __future__ import annotations

import numpy as np

from rnn_dyn.embedding import check_distances
from rnn_dyn.statistics import bootstrap_ci, comparable, mantel_test, separation_ci, separation_test, silhouette
from rnn_dyn.verdicts import (MIN_NETWORKS, MIN_PER_LABEL_BOOTSTRAP, Inconclusive, array_of, check_not_constant,
                              labels_of, no_separation, one_sided, select, subset_of)

ROBUST_METRIC = "svcca_k10"  # SVCCA with a fixed k = 10 (§2.3's alternative to the 95% rule) beside the 95% rule


def geometry_test(arrays, st, by, metric="svcca", ci=True):
    """The silhouette of the paper's subset ``by`` on ``distances_<metric>``, its permutation test and
    verdict (Figs. 1d, 2c, 3c: networks cluster by architecture among tanh networks, by activation among
    vanilla ones)."""
    keep, labels, subset = subset_of(arrays, by)
    D = array_of(arrays, f"distances_{metric}", len(keep))
    idx, details = select([D], keep, labels, subset)
    D, labels = D[np.ix_(idx, idx)], labels[idx]
    res = separation_test(D, labels, st.n_permutations, st.seed)
    verdict, reason, p = one_sided(res.statistic, res.p_value, res.p_less, "silhouette")
    interval = separation_ci(D, labels, st.n_bootstrap, st.seed, st.level) if ci else None
    return dict(value=res.statistic, ci=interval, p_value=p, n=res.n, verdict=verdict, reason=reason,
                details={**details, "metric": metric, "p_greater": res.p_value, "p_less": res.p_less})


def geometry(arrays, untrained, st, by, metric="svcca"):
    """:func:`geometry_test` with ``robust``: whether SVCCA at k = 10 reaches the same verdict (SPEC §6);
    None when the task has no k = 10 matrix or it cannot be judged there."""
    out = geometry_test(arrays, st, by, metric)
    out["robust"] = None
    if f"distances_{ROBUST_METRIC}" in arrays:
        try:
            other = geometry_test(arrays, st, by, ROBUST_METRIC, ci=False)
        except Inconclusive as why:
            out["details"][ROBUST_METRIC] = {"verdict": "inconclusive", "reason": why.reason}
        else:
            out["robust"] = other["verdict"] == out["verdict"]
            out["details"][ROBUST_METRIC] = {k: other[k] for k in ("value", "p_value", "verdict")}
    return out


def universal(arrays, untrained, st, metric="topology"):
    """Topology (or ``metric``) separates architectures less than SVCCA: the difference of their
    silhouettes among tanh networks, bootstrap CI below 0 (Figs. 1f, 2e, 3d); ``metric``'s own
    silhouette and permutation p beside it."""
    _, cell, act = labels_of(arrays)
    T, S = array_of(arrays, f"distances_{metric}", len(cell)), array_of(arrays, "distances_svcca", len(cell))
    idx, details = select([T, S], act == "tanh", cell, "tanh networks", MIN_PER_LABEL_BOOTSTRAP)
    T, S, labels = check_distances(T[np.ix_(idx, idx)], metric), check_distances(S[np.ix_(idx, idx)]), cell[idx]
    check_not_constant(T, metric)

    def difference(i):
        return silhouette(T, labels, i) - silhouette(S, labels, i)

    value = difference(np.arange(len(idx)))
    interval = bootstrap_ci(difference, len(idx), st.n_bootstrap, st.seed, st.level, strata=labels)
    lo, hi = interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        verdict, reason = "inconclusive", "bootstrap interval undefined"
    elif hi < 0:
        verdict, reason = "reproduced", None
    elif lo > 0:
        verdict, reason = "contradicted", f"interval [{lo:.3g}, {hi:.3g}] lies above 0"
    else:
        verdict, reason = "inconclusive", f"interval [{lo:.3g}, {hi:.3g}] contains 0"
    own = separation_test(T, labels, st.n_permutations, st.seed)
    return dict(value=value, ci=interval, p_value=None, n=len(idx), verdict=verdict, reason=reason,
                details={**details, f"silhouette_{metric}": own.statistic, f"p_{metric}": own.p_value,
                         "silhouette_svcca": silhouette(S, labels)})


def topology_by_activation(arrays, untrained, st, separates, metric="topology"):
    """Topology's silhouette by activation among vanilla networks, permutation p (Figs. 1f, 2e, 3d).

    ``separates``: the paper's finding for the task (SPEC §6): context integration's topology
    separates the activations (p < 0.05, silhouette > 0); flip-flop's and sine's do not (p >= 0.05).
    """
    keep, labels, subset = subset_of(arrays, "activation")
    D = array_of(arrays, f"distances_{metric}", len(keep))
    idx, details = select([D], keep, labels, subset)
    D, labels = D[np.ix_(idx, idx)], labels[idx]
    check_not_constant(D, metric)
    res = separation_test(D, labels, st.n_permutations, st.seed)
    if separates:
        verdict, reason, p = one_sided(res.statistic, res.p_value, res.p_less, "silhouette")
    else:
        verdict, reason, p = no_separation(res.statistic, res.p_value)
    return dict(value=res.statistic, ci=separation_ci(D, labels, st.n_bootstrap, st.seed, st.level),
                p_value=p, n=res.n, verdict=verdict, reason=reason,
                details={**details, "metric": metric, "expected": "separation" if separates else "no separation",
                         "p_greater": res.p_value, "p_less": res.p_less})


def cka_agrees_with_svcca(arrays, untrained, st):
    """CKA and SVCCA reach the same geometry verdicts (Appendix E): on both subsets, the verdict of
    :func:`geometry_test` with CKA equals SVCCA's.  Value: the share of subsets on which they agree;
    the Mantel correlation of the two matrices is a detail."""
    config, _, _ = labels_of(arrays)
    A, B = array_of(arrays, "distances_cka", len(config)), array_of(arrays, "distances_svcca", len(config))
    per, agree, opposite, differ, undecided = {}, [], [], [], []
    for by in ("architecture", "activation"):
        row = {}
        for metric in ("svcca", "cka"):
            try:
                r = geometry_test(arrays, st, by, metric, ci=False)
                row[metric] = {k: r[k] for k in ("value", "p_value", "verdict")}
            except Inconclusive as why:
                row[metric] = {"verdict": None, "reason": why.reason}
        per[f"geometry_by_{by}"] = row
        a, b = row["svcca"]["verdict"], row["cka"]["verdict"]
        if a is None or b is None:
            undecided.append(f"by {by}: {(row['svcca'] if a is None else row['cka'])['reason']}")
        elif a == b:
            agree.append(by)
        else:
            target = opposite if {a, b} == {"reproduced", "contradicted"} else differ
            target.append(f"by {by}: SVCCA {a}, CKA {b}")
    ok = comparable(A + B)
    details = {"subsets": per, "n_nan_dropped": int((~ok).sum())}
    if ok.sum() >= MIN_NETWORKS:
        m = mantel_test(A[np.ix_(ok, ok)], B[np.ix_(ok, ok)], st.n_permutations, st.seed)
        details.update(mantel_r=m.statistic, mantel_p=m.p_value)
    if undecided:
        raise Inconclusive("; ".join(undecided), int(ok.sum()), details=details)
    if opposite:
        verdict, reason = "contradicted", "opposite verdicts " + "; ".join(opposite)
    elif differ:
        verdict, reason = "inconclusive", "verdicts differ " + "; ".join(differ)
    else:
        verdict, reason = "reproduced", None
    return dict(value=len(agree) / 2, ci=None, p_value=None, n=int(ok.sum()), verdict=verdict, reason=reason,
                details=details)


def dmd_fit(arrays) -> dict:
    """The DSA run's settings and DMD fit quality, from the 0-d arrays the comparison stores, when present."""
    keys = ("dsa_n_delays", "dsa_rank", "dsa_fit_r2_one_step", "dsa_fit_r2_multi_step")
    return {k: np.asarray(arrays[k]).item() for k in keys if k in arrays and np.asarray(arrays[k]).ndim == 0}


def dsa_universal(arrays, untrained, st):
    """Beyond the paper: DSA's silhouette by cell minus SVCCA's (tanh networks), with the DMD fit beside it."""
    fit = dmd_fit(arrays)
    try:
        out = universal(arrays, untrained, st, metric="dsa")
    except Inconclusive as why:
        why.fields["details"] = {**why.fields.get("details", {}), **fit}
        raise
    out["details"].update(fit)
    return out


__all__ = ["ROBUST_METRIC", "cka_agrees_with_svcca", "dmd_fit", "dsa_universal", "geometry", "geometry_test",
           "topology_by_activation", "universal"]
