"""The claims about fixed points and their linearisations (SPEC §6), from per-network measures.

Each function takes one task's ``topology.npz`` arrays (per-network measures
that the topology job computed, :mod:`rnn_dyn.universality`), the
trained-versus-untrained arrays (unused here) and the
:class:`~rnn_dyn.verdicts.Settings`, and returns the fields of a claim record,
or raises :class:`~rnn_dyn.verdicts.Inconclusive`.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
from scipy import stats as sps

from rnn_dyn.statistics import bootstrap_ci
from rnn_dyn.verdicts import (ALPHA, MIN_LABELS, MIN_NETWORKS, MIN_PER_LABEL, Inconclusive, array_of, labels_of,
                              share_at_least, subset_of)

SCAFFOLD = (8, 12, 6, 1)  # §3.1, Fig. 1e: stable points, saddles with 1, 2, 3 unstable directions
SCAFFOLD_KEYS = ("n_stable", "n_saddle_1", "n_saddle_2", "n_saddle_3")
FREQUENCY_TOLERANCE = 0.2  # median mean |f - ω| / ω below which the frequency "matches" (Fig. 2f)
SHARE = 0.9  # share of networks a "networks have this structure" claim needs (§3.1, §3.2; SPEC §6)
GATED = ("ugrnn", "gru", "lstm")


def _modal(X, config, ok):
    """Per configuration: the modal structure of the rows of ``X``, its count and the share with ``SCAFFOLD``."""
    per = {}
    for lab in sorted(set(config[ok])):
        rows = [tuple(int(v) for v in r) for r in X[ok & (config == lab)]]
        counts = Counter(rows)
        top = max(counts.values())
        modes = sorted(s for s, c in counts.items() if c == top)
        per[lab] = {"structure": list(modes[0]) if len(modes) == 1 else [list(m) for m in modes],
                    "modes": modes, "count": top, "total": len(rows), "share_paper": counts[SCAFFOLD] / len(rows)}
    return per


def scaffold(arrays, untrained, st):
    """Every configuration's modal flip-flop structure is 8/12/6/1 (§3.1, Fig. 1e), on exact roots; the
    same counted with approximate (slow) points as well (``*_all`` arrays) is a detail."""
    config, _, _ = labels_of(arrays)
    X = np.stack([array_of(arrays, k, len(config)) for k in SCAFFOLD_KEYS], axis=1)
    ok = np.all(np.isfinite(X), axis=1)
    per, differs, unsure = _modal(X, config, ok), [], []
    for lab, p in per.items():
        modes = p.pop("modes")
        if p["total"] < MIN_PER_LABEL:
            unsure.append(f"{lab}: {p['total']} network")
        elif SCAFFOLD not in modes:
            differs.append(f"{lab}: {'/'.join(map(str, modes[0]))}")
        elif len(modes) > 1:
            unsure.append(f"{lab}: tied modes")
    n = int(ok.sum())
    if len(per) < MIN_LABELS and not differs:
        raise Inconclusive(f"too few configurations: {len(per)} (need >= {MIN_LABELS})", n, details=per)
    details = dict(per)
    if all(f"{k}_all" in arrays for k in SCAFFOLD_KEYS):  # exact roots and slow points together
        Y = np.stack([array_of(arrays, f"{k}_all", len(config)) for k in SCAFFOLD_KEYS], axis=1)
        fine = np.all(np.isfinite(Y), axis=1)
        details["with_approximate_points"] = {lab: {k: v for k, v in p.items() if k != "modes"}
                                              for lab, p in _modal(Y, config, fine).items()}
    value = min(p["share_paper"] for p in per.values())
    if differs:
        verdict, reason = "contradicted", "modal structure differs: " + "; ".join(differs)
    elif unsure:
        verdict, reason = "inconclusive", "; ".join(unsure)
    else:
        verdict, reason = "reproduced", None
    return dict(value=value, ci=None, p_value=None, n=n, verdict=verdict, reason=reason, details=details)


def _share(arrays, key, st, what):
    """A 0/1 per-network measure: its finite entries, their share, the share's bootstrap CI, by configuration."""
    config, _, _ = labels_of(arrays)
    x = array_of(arrays, key, len(config))
    ok = np.isfinite(x)
    if ok.sum() < MIN_NETWORKS:
        raise Inconclusive(f"too few networks with {what}: {int(ok.sum())} (need >= {MIN_NETWORKS})", int(ok.sum()))
    x, config = x[ok], config[ok]
    share = float(x.mean())
    ci = bootstrap_ci(lambda i: x[i].mean(), len(x), st.n_bootstrap, st.seed, st.level)
    by_config = {lab: float(x[config == lab].mean()) for lab in sorted(set(config))}
    return x, ok, share, ci, by_config


def transition_structure(arrays, untrained, st):
    """Stable points have only self-transitions; every saddle has >= 2 outgoing transitions, to its
    nearest stable points (§3.1): the share of networks with both, reproduced when its CI's low end
    is >= ``SHARE``."""
    x, ok, share, ci, by_config = _share(arrays, "transition_structure", st, "a transition graph")
    verdict, reason = share_at_least(share, ci, SHARE, use_ci=True)
    details = {"threshold": SHARE, "by_config": by_config}
    for part in ("transition_stable_self", "transition_saddles_two"):
        if part in arrays:
            y = array_of(arrays, part, len(ok))[ok]
            details[f"share_{part}"] = float(np.nanmean(y)) if np.isfinite(y).any() else None
    return dict(value=share, ci=ci, p_value=None, n=len(x), verdict=verdict, reason=reason, details=details)


def sine_scaffold(arrays, untrained, st):
    """One input-dependent fixed point per cue value with a single, mildly unstable complex pair (§3.2):
    the share of networks with it at every cue, reproduced when the share is >= ``SHARE``; how many cue
    values have more than one point beside it."""
    x, ok, share, ci, by_config = _share(arrays, "sine_scaffold", st, "fixed points")
    verdict, reason = share_at_least(share, ci, SHARE, use_ci=False)
    details = {"threshold": SHARE, "by_config": by_config}
    for key in ("n_cues_multiple", "n_cues_none", "n_cues_scaffold"):
        if key in arrays:
            y = array_of(arrays, key, len(ok))[ok]
            details[f"median_{key}"] = float(np.median(y))
            details[f"networks_with_{key}"] = int(np.sum(y > 0))
    return dict(value=share, ci=ci, p_value=None, n=len(x), verdict=verdict, reason=reason, details=details)


def frequency_matches(arrays, untrained, st):
    """The linear frequency tracks ω(u) (Fig. 2f): median over networks of the mean |f − ω|/ω below 0.2."""
    config, _, _ = labels_of(arrays)
    x = array_of(arrays, "mean_rel_error", len(config))
    x = x[np.isfinite(x)]
    if len(x) < MIN_NETWORKS:
        raise Inconclusive(f"too few networks with a frequency: {len(x)} (need >= {MIN_NETWORKS})", len(x))
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


def frequency_by(arrays, untrained, st, by):
    """Small systematic frequency differences (Fig. 2f): Kruskal-Wallis over the cells of tanh networks
    (``by='architecture'``) or the activations of vanilla networks (``by='activation'``) of each
    network's mean signed (f − ω)/ω."""
    keep, labels, subset = subset_of(arrays, by)
    x = array_of(arrays, "mean_signed_error", len(keep))
    keep = keep & np.isfinite(x)
    x, labels = x[keep], labels[keep]
    names, counts = np.unique(labels, return_counts=True)
    names = names[counts >= MIN_PER_LABEL]
    groups = [x[labels == c] for c in names]
    n = sum(map(len, groups))
    details = {"subset": subset, "median_by_label": {str(c): float(np.median(g)) for c, g in zip(names, groups)},
               "group_sizes": {str(c): len(g) for c, g in zip(names, groups)}}
    if len(groups) < MIN_LABELS:
        raise Inconclusive(f"too few networks: need >= {MIN_LABELS} labels with >= {MIN_PER_LABEL} {subset} "
                           "with a frequency", n, details=details)
    if np.ptp(np.concatenate(groups)) == 0:
        raise Inconclusive("every network has the same signed error", n, details=details)
    H, p = sps.kruskal(*groups)
    verdict, reason = ("reproduced", None) if p < ALPHA else ("inconclusive", f"not significant: p {p:.3g} >= {ALPHA}")
    return dict(value=H, ci=None, p_value=p, n=n, verdict=verdict, reason=reason, details=details)


def gated_vs_vanilla(arrays, untrained, st, key, what):
    """Gated cells have more of the per-network measure ``key`` than vanilla ones (tanh networks):
    one-sided Mann-Whitney; value the difference of medians with a bootstrap CI (Fig. 3e, 3f)."""
    _, cell, act = labels_of(arrays)
    x = array_of(arrays, key, len(cell))
    keep = (act == "tanh") & np.isfinite(x)
    x, cell = x[keep], cell[keep]
    gated = np.isin(cell, GATED)
    sizes = {"gated": int(gated.sum()), "vanilla": int((cell == "vanilla").sum())}
    if min(sizes.values()) < MIN_PER_LABEL:
        raise Inconclusive(f"too few networks: tanh networks with {what}, {sizes} (need >= {MIN_PER_LABEL} each)",
                           len(x), details={"group_sizes": sizes})
    x, gated = x[gated | (cell == "vanilla")], gated[gated | (cell == "vanilla")]
    g, v = x[gated], x[~gated]
    p = sps.mannwhitneyu(g, v, alternative="greater").pvalue
    p_less = sps.mannwhitneyu(g, v, alternative="less").pvalue
    value = float(np.median(g) - np.median(v))
    interval = bootstrap_ci(lambda i: np.median(x[i][gated]) - np.median(x[i][~gated]), len(x), st.n_bootstrap,
                            st.seed, st.level, strata=gated)
    if p < ALPHA:
        verdict, reason, decided = "reproduced", None, p
    elif p_less < ALPHA:
        verdict, reason, decided = "contradicted", f"vanilla networks have more (one-sided p {p_less:.3g})", p_less
    else:
        verdict, reason, decided = "inconclusive", f"not significant: p {p:.3g} >= {ALPHA}", p
    return dict(value=value, ci=interval, p_value=decided, n=len(x), verdict=verdict, reason=reason,
                details={"subset": "tanh networks", "group_sizes": sizes, "median_gated": float(np.median(g)),
                         "median_vanilla": float(np.median(v)), "p_greater": p, "p_less": p_less,
                         "auc": sps.mannwhitneyu(g, v).statistic / (len(g) * len(v))})


def integration_modes(arrays, untrained, st):
    """Vanilla networks integrate with one mode, gated cells spread it over several (Fig. 3f): modes
    needed for 90% of the linearised integral, gated > vanilla; the linearised integral (ideal 1) a detail."""
    out = gated_vs_vanilla(arrays, untrained, st, "mean_n_modes", "a mode count")
    if "mean_integral" in arrays:
        y = array_of(arrays, "mean_integral", len(arrays["config"]))
        y = y[np.isfinite(y)]
        if y.size:
            out["details"].update(median_integral=float(np.median(y)),
                                  median_abs_integral_error=float(np.median(np.abs(y - 1.0))))
    return out
