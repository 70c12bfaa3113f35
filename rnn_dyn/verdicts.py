"""How a claim's statistic becomes a verdict (SPEC §6): the shared rules of :mod:`rnn_dyn.claims`.

A claim is judged by one test (a one-sided permutation p, a Mann-Whitney p,
a Kruskal-Wallis p) or by where a bootstrap interval lies.  This module holds
what every claim shares: the settings of the statistics (:class:`Settings`),
the exception that marks a claim that cannot be judged (:class:`Inconclusive`),
the labels and arrays of a task's ``topology.npz`` (:func:`labels_of`,
:func:`array_of`), the networks a test uses (:func:`select`), and the verdict
rules: :func:`one_sided` (a value whose claimed sign is > 0, and the p that
decided it), :func:`interval_below` and :func:`share_at_least` (a bootstrap
interval against a threshold).  Pure functions of arrays.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rnn_dyn.statistics import comparable

ALPHA = 0.05  # significance level of every verdict
MIN_PER_LABEL = 2  # networks a label needs to take part in a test
MIN_PER_LABEL_BOOTSTRAP = 3  # ... in a bootstrap interval (with 2, most resamples repeat one network)
MIN_LABELS = 2  # labels a test needs
MIN_NETWORKS = 4  # networks a single-sample measure or a Mantel test needs


class Settings(NamedTuple):
    """The statistics' settings: permutations, bootstrap resamples, seed, interval level."""

    n_permutations: int
    n_bootstrap: int
    seed: int
    level: float = 0.95


class Inconclusive(Exception):
    """A claim that cannot be judged: why, and on how many networks (``fields``: ``details``)."""

    def __init__(self, reason, n=0, **fields):
        super().__init__(reason)
        self.reason, self.n, self.fields = reason, n, fields


def labels_of(arrays):
    """``(config, cell, activation)`` label arrays of a task's networks, from ``arrays['config']``."""
    if "config" not in arrays:
        raise Inconclusive("topology.npz has no 'config' array")
    config = np.asarray(arrays["config"]).astype(str)
    parts = [c.split("/") for c in config]
    if any(len(p) != 2 for p in parts):
        raise ValueError(f"config must hold 'cell/activation' strings; got {config[:3].tolist()}...")
    return config, np.array([p[0] for p in parts]), np.array([p[1] for p in parts])


def array_of(arrays, key, n):
    """``arrays[key]`` as float64, checked to hold one entry (or row and column) per network."""
    if key not in arrays:
        raise Inconclusive(f"no '{key}' array", n)
    x = np.asarray(arrays[key], np.float64)
    want = (n, n) if key.startswith("distances_") else (n,)
    if x.shape != want:
        raise ValueError(f"{key} must have shape {want}, one entry per network of 'config'; got {x.shape}.")
    return x


def subset_of(arrays, by):
    """The paper's subsets (SPEC §6): ``by='architecture'`` -> tanh networks labelled by cell;
    ``by='activation'`` -> vanilla networks labelled by activation.  Returns ``(keep, labels, name)``."""
    _, cell, act = labels_of(arrays)
    if by == "architecture":
        return act == "tanh", cell, "tanh networks"
    if by == "activation":
        return cell == "vanilla", act, "vanilla networks"
    raise ValueError(f"by must be one of ['activation', 'architecture']; got {by!r}.")


def select(matrices, keep, labels, subset, min_per_label=MIN_PER_LABEL):
    """Indices of the networks a test uses: in ``keep``, finite in every matrix, in a label with enough
    networks; and the ``details`` that say so.  Raises :class:`Inconclusive` with fewer than ``MIN_LABELS``."""
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
        raise Inconclusive(f"too few networks: {subset} need >= {MIN_LABELS} labels with >= {min_per_label} "
                           f"networks each; got {details['group_sizes'] or 'none'}", len(idx), details=details)
    return idx, details


def check_not_constant(D, what):
    """Raise :class:`Inconclusive` when every off-diagonal distance of ``D`` is the same (SPEC §6:
    a constant matrix is degenerate: no labelling can separate anything on it)."""
    off = np.asarray(D, np.float64)[~np.eye(len(D), dtype=bool)]
    if off.size and np.ptp(off) == 0:
        raise Inconclusive(f"degenerate: every {what} distance is {off[0]:.3g} (a constant matrix)", len(D))


def one_sided(value, p_greater, p_less, what="value"):
    """Verdict, reason and deciding p of a one-sided test whose claim is ``value > 0``.

    ``reproduced`` with ``p_greater < ALPHA`` and ``value > 0``: p is ``p_greater``;
    ``contradicted`` with ``p_less < ALPHA`` and ``value < 0``: p is ``p_less``, the
    opposite tail that decided it (SPEC §6); ``inconclusive`` otherwise, with ``p_greater``.
    """
    if not np.isfinite(value) or not np.isfinite(p_greater):
        return "inconclusive", f"{what} is undefined (a constant matrix?)", None
    if p_greater < ALPHA and value > 0:
        return "reproduced", None, p_greater
    if p_less < ALPHA and value < 0:
        return "contradicted", f"{what} {value:.3g} < 0, below chance (lower-tail p {p_less:.3g} < {ALPHA})", p_less
    if p_greater < ALPHA:
        return "inconclusive", f"p {p_greater:.3g} < {ALPHA} but {what} {value:.3g} <= 0", p_greater
    return "inconclusive", f"not significant: p {p_greater:.3g} >= {ALPHA}", p_greater


def directional(value, p_greater, p_less, what="value"):
    """:func:`one_sided` without the deciding p: ``(verdict, reason)``."""
    return one_sided(value, p_greater, p_less, what)[:2]


def no_separation(value, p_greater, what="silhouette"):
    """Verdict, reason and p of a claim that labels do *not* separate (SPEC §6, topology by activation
    of flip-flop and sine): reproduced when ``p_greater >= ALPHA``; contradicted when ``p_greater < ALPHA``
    and ``value > 0`` (they do separate, beyond chance); inconclusive otherwise."""
    if not np.isfinite(value) or not np.isfinite(p_greater):
        return "inconclusive", f"{what} is undefined (a constant matrix?)", None
    if p_greater >= ALPHA:
        return "reproduced", None, p_greater
    if value > 0:
        return "contradicted", f"the labels separate: {what} {value:.3g}, p {p_greater:.3g} < {ALPHA}", p_greater
    return "inconclusive", f"p {p_greater:.3g} < {ALPHA} but {what} {value:.3g} <= 0", p_greater


def interval_below(ci, threshold):
    """Verdict and reason of a claim ``value < threshold`` from where its CI lies."""
    lo, hi = ci
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "inconclusive", "bootstrap interval undefined"
    if hi < threshold:
        return "reproduced", None
    if lo > threshold:
        return "contradicted", f"interval [{lo:.3g}, {hi:.3g}] lies on the wrong side of {threshold}"
    return "inconclusive", f"interval [{lo:.3g}, {hi:.3g}] contains {threshold}"


def share_at_least(share, ci, threshold, use_ci=True):
    """Verdict and reason of a claim "a share of networks of at least ``threshold``".

    With ``use_ci``: reproduced when the CI's low end is >= ``threshold``; otherwise
    reproduced when the share itself is.  Contradicted when the CI's high end is below it.
    """
    lo, hi = ci if ci is not None else (share, share)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "inconclusive", "bootstrap interval undefined"
    if (lo if use_ci else share) >= threshold:
        return "reproduced", None
    if hi < threshold:
        return "contradicted", f"share {share:.3g}, interval [{lo:.3g}, {hi:.3g}] below {threshold}"
    return "inconclusive", f"share {share:.3g}, interval [{lo:.3g}, {hi:.3g}] reaches {threshold}"
