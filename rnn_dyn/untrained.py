"""Trained against untrained vanilla networks (paper §3.3, last paragraph; Fig. 4; SPEC §6).

The paper drives trained and untrained vanilla networks of both activations with
the context-integration task's inputs and finds that "the average canonical
correlation between trained and untrained networks can be larger than between
trained RNNs with different nonlinearities": in Fig. 4b the clusters of trained
and untrained relu networks lie closer together than the clusters of trained
and untrained tanh networks.  This module turns one distance matrix over those
networks into the two numbers that say so, and the ``untrained.npz`` arrays of
the study (:func:`rnn_dyn.jobs.untrained_job`) into the claim's record.  Pure
numpy: nothing here reads MLflow or runs a network.

A matrix holds ``2 n`` rows: each of ``n`` trained networks once (``groups``
``"trained relu"`` or ``"trained tanh"``) and once untrained (``"untrained
relu"``, ``"untrained tanh"``); ``network [2 n]`` names the trained network a row
belongs to, so a trained network and *its own initialisation* share it.

- :func:`own_init_share`: the share of trained relu networks closer to their own
  untrained initialisation than to the trained tanh networks -- on average
  (``rule="mean"``, the claim's: the paper compares with "trained RNNs with
  different nonlinearities" as a group) or to the nearest one (``"nearest"``,
  stricter).  The paper's statement is existential ("can be"): it holds when
  the share's bootstrap interval lies above 0.
- :func:`cluster_gap`: Fig. 4b's comparison, the mean distance between the
  trained and untrained tanh clusters minus that between the trained and
  untrained relu clusters (> 0: relu's clusters are the closer pair), with a
  permutation test that exchanges the activation labels of whole networks
  (a trained network and its own untrained copy move together).
- :func:`compare_untrained`: both on one matrix, with a verdict;
  :func:`trained_vs_untrained`: the claim from the study's arrays (one matrix
  per measure, initialisation and context; see :func:`matrix_key`).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rnn_dyn._checks import check_choice, check_positive
from rnn_dyn.statistics import bootstrap_ci, comparable, permutation_p

GROUPS = ("trained relu", "untrained relu", "trained tanh", "untrained tanh")
RULES = ("mean", "nearest")
MIN_PER_ACTIVATION = 3  # trained networks (each with its untrained copy) per activation for a bootstrap
CLAIM_METRIC, ROBUST_METRIC = "svcca", "svcca_k10"  # SVCCA, 95% of the variance and k = 10 (paper §2.3)


def matrix_key(metric: str, init: str, context: int) -> str:
    """The ``untrained.npz`` key of one distance matrix, e.g. ``distances_svcca_orthogonal_context0``."""
    return f"distances_{metric}_{init}_context{int(context)}"


def _layout(D, groups, network):
    """Checked inputs as per-network arrays: activations ``[n]``, trained and untrained rows ``[n]``."""
    D = np.asarray(D, np.float64)
    groups, network = np.asarray(groups).astype(str), np.asarray(network)
    m = len(groups)
    if D.shape != (m, m) or network.shape != (m,):
        raise ValueError(f"distances must be (m, m) and network (m,) for m = len(groups) = {m}; "
                         f"got {D.shape} and {network.shape}.")
    for g in np.unique(groups):
        check_choice("groups", g, GROUPS)
    ids = np.unique(network)
    trained, untrained, act = [], [], []
    for k in ids:
        rows = np.flatnonzero(network == k)
        states = sorted(groups[rows])
        if len(rows) != 2 or [s.split()[0] for s in states] != ["trained", "untrained"] or \
                len({s.split()[1] for s in states}) != 1:
            raise ValueError(f"network {k} must have one trained and one untrained row of one activation; "
                             f"got {states}.")
        t = rows[groups[rows] == states[0]][0]
        trained.append(t)
        untrained.append(rows[rows != t][0])
        act.append(states[0].split()[1])
    return D, np.array(act), np.array(trained, int), np.array(untrained, int)


def _keep(D, trained, untrained):
    """Networks whose trained and untrained rows both have finite distances to everything kept."""
    ok = comparable(D)
    return ok[trained] & ok[untrained]


def _share(TT, TU, relu, tanh, rule, idx):
    r, t = idx[relu[idx]], idx[tanh[idx]]
    if len(r) == 0 or len(t) == 0:
        return float("nan")
    to_tanh = TT[np.ix_(r, t)]
    other = to_tanh.mean(axis=1) if rule == "mean" else to_tanh.min(axis=1)
    return float(np.mean(TU[r, r] < other))


def _gap(TU, relu, idx):
    r, t = idx[relu[idx]], idx[~relu[idx]]
    if len(r) == 0 or len(t) == 0:
        return float("nan")
    return float(TU[np.ix_(t, t)].mean() - TU[np.ix_(r, r)].mean())


def _blocks(D, groups, network):
    D, act, trained, untrained = _layout(D, groups, network)
    keep = _keep(D, trained, untrained)
    act, trained, untrained = act[keep], trained[keep], untrained[keep]
    return D[np.ix_(trained, trained)], D[np.ix_(trained, untrained)], act, int((~keep).sum())


def own_init_share(D, groups, network, rule="mean", idx=None) -> float:
    """Share of trained relu networks closer to their own untrained initialisation than to trained tanh ones.

    Parameters
    ----------
    D : array_like, shape (m, m)
        Distances between the rows (``m = 2 n``).
    groups : array_like of str, shape (m,)
        Each row's group, one of ``GROUPS``.
    network : array_like, shape (m,)
        The trained network each row belongs to: each appears in one trained
        and one untrained row of one activation.
    rule : {'mean', 'nearest'}
        Compare the distance to the own initialisation with the mean distance
        to the trained tanh networks, or with the nearest one's.
    idx : array_like of int, optional
        Networks to use, in the order of ``np.unique(network)``, with
        repeats (a bootstrap resample); default all.

    Returns
    -------
    float
        In [0, 1]; NaN without a relu or a tanh network.  Networks with NaN
        distances are left out.
    """
    check_choice("rule", rule, RULES)
    TT, TU, act, _ = _blocks(D, groups, network)
    idx = np.arange(len(act)) if idx is None else np.asarray(idx, int)
    return _share(TT, TU, act == "relu", act == "tanh", rule, idx)


def cluster_gap(D, groups, network, idx=None) -> float:
    """Fig. 4b: mean distance trained tanh - untrained tanh minus trained relu - untrained relu.

    Cluster distances are means over every (trained, untrained) pair of one
    activation.  Positive when relu's two clusters are the closer pair.  See
    :func:`own_init_share` for the parameters.
    """
    _, TU, act, _ = _blocks(D, groups, network)
    idx = np.arange(len(act)) if idx is None else np.asarray(idx, int)
    return _gap(TU, act == "relu", idx)


def compare_untrained(D, groups, network, n_permutations=999, n_bootstrap=1000, seed=0, level=0.95,
                      alpha=0.05) -> dict:
    """Both statistics on one distance matrix, their uncertainty and a verdict.

    The share's interval is the percentile bootstrap over networks resampled
    within each activation (a mean of per-network indicators, so it stays in
    [0, 1]); the gap's is the basic bootstrap (with copies of a network, its
    own pair counts more often; see :func:`rnn_dyn.statistics.bootstrap_ci`)
    and its p-value a permutation test exchanging the activation labels of
    whole networks.  ``reproduced`` (SPEC §6): the share's interval lies above
    0 and relu's clusters are significantly the closer pair (gap > 0, p <
    ``alpha``).  ``contradicted``: no trained relu network is closer to its own
    initialisation (interval [0, 0]) and tanh's clusters are significantly the
    closer pair.  Otherwise ``inconclusive``, also with fewer than
    ``MIN_PER_ACTIVATION`` networks of an activation.

    Returns
    -------
    dict
        ``share`` (rule ``mean``), ``share_ci``, ``share_nearest``,
        ``share_nearest_ci``, ``relu_clusters`` and ``tanh_clusters`` (mean
        trained-untrained distances), ``gap``, ``gap_ci``, ``p_value`` (gap >
        0), ``p_less`` (gap < 0), ``n_relu``, ``n_tanh``, ``n_nan_dropped``,
        ``verdict``, ``reason`` (None when reproduced).
    """
    check_positive("n_permutations", n_permutations, integer=True)
    TT, TU, act, dropped = _blocks(D, groups, network)
    relu, tanh = act == "relu", act == "tanh"
    out = {"n_relu": int(relu.sum()), "n_tanh": int(tanh.sum()), "n_nan_dropped": dropped}
    if min(out["n_relu"], out["n_tanh"]) < MIN_PER_ACTIVATION:
        return {**out, "verdict": "inconclusive",
                "reason": f"too few networks: need >= {MIN_PER_ACTIVATION} trained relu and trained tanh networks "
                          f"with their untrained copies; got {out['n_relu']} relu, {out['n_tanh']} tanh"}
    n = len(act)
    boot = dict(n=n, n_bootstrap=n_bootstrap, seed=seed, level=level, strata=act)
    for rule, key in (("mean", "share"), ("nearest", "share_nearest")):
        out[key] = _share(TT, TU, relu, tanh, rule, np.arange(n))
        out[f"{key}_ci"] = bootstrap_ci(lambda i, r=rule: _share(TT, TU, relu, tanh, r, i), method="percentile",
                                        **boot)
    out["relu_clusters"] = float(TU[np.ix_(relu, relu)].mean())
    out["tanh_clusters"] = float(TU[np.ix_(tanh, tanh)].mean())
    gap = out["gap"] = _gap(TU, relu, np.arange(n))
    out["gap_ci"] = bootstrap_ci(lambda i: _gap(TU, relu, i), **boot)
    rng = np.random.default_rng(seed)
    null = [_gap(TU, rng.permutation(relu), np.arange(n)) for _ in range(n_permutations)]
    out["p_value"], out["p_less"] = permutation_p(gap, null)
    lo, hi = out["share_ci"]
    if lo > 0 and gap > 0 and out["p_value"] < alpha:
        verdict, reason = "reproduced", None
    elif hi == 0 and gap < 0 and out["p_less"] < alpha:
        verdict, reason = "contradicted", (f"no trained relu network is closer to its own initialisation than to "
                                           f"the trained tanh networks, and tanh's clusters are the closer pair "
                                           f"(gap {gap:.3g}, lower-tail p {out['p_less']:.3g} < {alpha})")
    else:
        why = []
        if hi == 0:
            why.append("no trained relu network is closer to its own initialisation than to the trained tanh "
                       "networks (share 0)")
        elif not lo > 0:
            why.append(f"share {out['share']:.3g}, interval [{lo:.3g}, {hi:.3g}] reaches 0")
        if not (gap > 0 and out["p_value"] < alpha):
            why.append(f"relu's clusters are not significantly the closer pair (gap {gap:.3g}, "
                       f"p {out['p_value']:.3g})")
        verdict, reason = "inconclusive", "; ".join(why)
    return {**out, "verdict": verdict, "reason": reason}


def _contexts(untrained, metric, init):
    keys = [k for k in untrained if k.startswith(f"distances_{metric}_{init}_context")]
    return sorted(int(k.rsplit("context", 1)[1]) for k in keys)


def _combine(per_context: dict) -> dict:
    """One verdict over the contexts: each context's when they agree, else inconclusive; the numbers
    shown are those of the context with the least support (lowest verdict, then lowest share bound)."""
    rank = {"contradicted": 0, "inconclusive": 1, "reproduced": 2}
    verdicts = {c: r["verdict"] for c, r in per_context.items()}
    weakest = min(per_context, key=lambda c: (rank[verdicts[c]], (per_context[c].get("share_ci") or (-1,))[0]))
    w = per_context[weakest]
    if len(set(verdicts.values())) == 1:
        verdict = w["verdict"]
        reason = None if verdict == "reproduced" else f"context {weakest}: {w['reason']}"
    else:
        verdict = "inconclusive"
        reason = "contexts disagree: " + ", ".join(f"context {c} {v}" for c, v in verdicts.items()) + \
                 f"; context {weakest}: {w['reason']}"
    p = w.get("p_less") if verdict == "contradicted" else w.get("p_value")
    return {"value": w.get("share"), "ci": w.get("share_ci"), "p_value": p, "verdict": verdict, "reason": reason,
            "context": weakest, "n": w["n_relu"] + w["n_tanh"]}


def rows(untrained: Mapping, **options) -> list:
    """:func:`compare_untrained` on every matrix of ``untrained.npz``.

    Returns
    -------
    list of dict
        One per measure, initialisation and context: ``{metric, init,
        context, **compare_untrained(...)}``, the claim's measure and the
        networks' own initialisation first.
    """
    out = []
    for metric in [str(m) for m in untrained["metrics"]]:
        for init in [str(i) for i in untrained["inits"]]:
            for c in _contexts(untrained, metric, init):
                res = compare_untrained(untrained[matrix_key(metric, init, c)], untrained["groups"],
                                        untrained["network"], **options)
                out.append({"metric": metric, "init": init, "context": c, **res})
    return out


def trained_vs_untrained(untrained: Mapping | None, n_permutations=999, n_bootstrap=1000, seed=0, level=0.95,
                         alpha=0.05) -> dict:
    """The claim ``context.trained_vs_untrained`` from the study's ``untrained.npz`` arrays.

    Parameters
    ----------
    untrained : mapping of str -> ndarray, or None
        ``groups [m]``, ``network [m]``, ``metrics``, ``inits`` (the first is
        the networks' own initialisation) and ``distances_<metric>_<init>_context<c>
        [m, m]`` (:func:`matrix_key`), as :func:`rnn_dyn.jobs.untrained_job`
        writes them.  None: the stage did not run.

    Returns
    -------
    dict
        ``value`` (the share, rule ``mean``), ``ci``, ``p_value`` (Fig. 4b's
        permutation p; the lower tail when contradicted), ``n`` (trained
        networks), ``verdict``, ``reason`` and ``details``.  The verdict is
        SVCCA's (95% of the variance) with the networks' own initialisation,
        per context of the structured probes (paper §3.3: Figs. 3-4 show one
        context): ``reproduced`` or ``contradicted`` when every context is,
        otherwise ``inconclusive``; the numbers are the context with the least
        support.  ``details``: ``robust`` (SVCCA with k = 10 reaches the same
        verdict), ``by_metric`` and ``by_init`` (the same verdict with each
        measure, own initialisation, and with each initialisation, SVCCA),
        ``rows`` (every matrix's statistics, :func:`rows`).
    """
    empty = {"value": None, "ci": None, "p_value": None, "n": 0, "verdict": "inconclusive"}
    if untrained is None:
        return {**empty, "reason": "the trained-versus-untrained stage was not run", "details": {}}
    needed = ("groups", "network", "metrics", "inits")
    if any(k not in untrained for k in needed):
        return {**empty, "details": {},
                "reason": f"untrained.npz lacks {[k for k in needed if k not in untrained]} (an older run): "
                          "rerun the trained-versus-untrained stage"}
    options = dict(n_permutations=n_permutations, n_bootstrap=n_bootstrap, seed=seed, level=level, alpha=alpha)
    table = rows(untrained, **options)
    own = str(untrained["inits"][0])

    def combined(metric, init):
        per = {r["context"]: r for r in table if r["metric"] == metric and r["init"] == init}
        return _combine(per) if per else None

    by_metric = {m: combined(m, own) for m in dict.fromkeys(r["metric"] for r in table)}
    by_init = {i: combined(CLAIM_METRIC, i) for i in dict.fromkeys(r["init"] for r in table)}
    claim = by_metric.get(CLAIM_METRIC)
    if claim is None:
        return {**empty, "details": {"rows": table},
                "reason": f"untrained.npz has no {CLAIM_METRIC} matrix for the own initialisation {own!r}"}
    robust = by_metric.get(ROBUST_METRIC)
    details = {"metric": CLAIM_METRIC, "init": own, "context_shown": claim["context"], "rule": "mean",
               "robust": None if robust is None else robust["verdict"] == claim["verdict"],
               "by_metric": by_metric, "by_init": by_init, "rows": table}
    return {**{k: claim[k] for k in ("value", "ci", "p_value", "n", "verdict", "reason")}, "details": details}
