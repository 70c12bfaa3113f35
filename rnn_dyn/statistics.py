"""Significance and uncertainty of the study's numbers (SPEC §6).

Every claim of the paper becomes a statistic with a p-value or a confidence
interval:

- :func:`separation_test`: the silhouette of a labelling on a distance matrix
  (as :func:`rnn_dyn.separation`) against the same silhouette with the labels
  permuted -- do networks of one architecture sit closer to each other than
  chance would put them?
- :func:`mantel_test`: the Pearson correlation of two distance matrices' upper
  triangles against the same with one matrix's networks permuted -- do two
  measures (CKA, SVCCA) see the same picture?
- :func:`bootstrap_ci`: a basic (reverse percentile) bootstrap interval over
  networks resampled with replacement (optionally within strata, e.g. within
  each architecture);
  :func:`silhouette` and :func:`mantel_r` take the resampled indices and leave
  out the pairs of copies of one network (see :func:`silhouette`);
- :func:`configuration_spread`: do the seeds of one configuration agree, or
  reach solutions farther apart than the architectures are?

Permutation p-values are one-sided, ``p = (1 + #{null >= observed}) / (1 +
n_permutations)`` (the observed labelling counts as one of the permutations,
so p is never 0); the results also carry the lower tail ``p_less``, for a
finding significant in the opposite direction.  Networks whose distances hold
NaN (a topology that cannot be compared) are dropped from a test on that
matrix, by :func:`comparable`; ``n`` says how many were kept.

Permutations are vectorised: 999 of them on 48 networks take a few
milliseconds, on 144 networks a few tenths of a second.
"""
from __future__ import annotations

import numpy as np

from rnn_dyn._checks import check_positive, check_range
from rnn_dyn.embedding import check_distances

_CHUNK = 2 ** 22  # floats per block of permutations held at once


class TestResult(tuple):
    """``(statistic, p_value)``, unpackable as a pair, with more as attributes.

    Attributes
    ----------
    statistic : float
        The observed statistic (silhouette, Mantel r).
    p_value : float
        Upper tail: ``(1 + #{null >= statistic}) / (1 + n_permutations)``.
    p_less : float
        Lower tail: ``(1 + #{null <= statistic}) / (1 + n_permutations)``.
    n : int
        Networks tested (after dropping those with NaN distances).
    n_dropped : int
        Networks dropped for NaN distances.
    null : ndarray [n_permutations]
        The statistic under each permutation.
    """

    __test__ = False  # not a pytest class

    def __new__(cls, statistic, p_value, *, p_less, n, n_dropped, null):
        self = super().__new__(cls, (float(statistic), float(p_value)))
        self.statistic, self.p_value, self.p_less = float(statistic), float(p_value), float(p_less)
        self.n, self.n_dropped, self.null = int(n), int(n_dropped), null
        return self

    def __repr__(self):
        return (f"TestResult(statistic={self.statistic:.4g}, p_value={self.p_value:.4g}, "
                f"p_less={self.p_less:.4g}, n={self.n}, n_dropped={self.n_dropped})")


def comparable(D) -> np.ndarray:
    """Mask of the networks kept so that the distances among them are all finite.

    Drops, one at a time, the network with the most NaN distances (those the
    paper's mode rule dropped, or without a graph to compare).

    Parameters
    ----------
    D : array_like, shape (n, n)

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    nan = np.isnan(np.asarray(D, np.float64))
    ok = np.ones(len(nan), bool)
    while nan[np.ix_(ok, ok)].any():
        ok[np.flatnonzero(ok)[np.argmax(nan[np.ix_(ok, ok)].sum(axis=1))]] = False
    return ok


def permutation_p(observed, null):
    """One-sided permutation p-values ``(p_greater, p_less)`` of ``observed`` under ``null``.

    ``p_greater = (1 + #{null >= observed}) / (1 + len(null))``; ``p_less``
    likewise with ``<=``.  A small tolerance (1e-12 relative) counts ties of
    float round-off as ties.  NaN when ``observed`` is NaN.
    """
    null = np.asarray(null, np.float64)
    if not np.isfinite(observed):
        return float("nan"), float("nan")
    tol = 1e-12 * max(1.0, abs(observed))
    greater = (1 + np.count_nonzero(null >= observed - tol)) / (1 + len(null))
    less = (1 + np.count_nonzero(null <= observed + tol)) / (1 + len(null))
    return float(greater), float(less)


def _codes(labels, n, name="labels"):
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one label per network; got shape {labels.shape}.")
    names, codes = np.unique(labels, return_inverse=True)
    return codes.reshape(-1), len(names)


def _silhouettes(D, W, codes, k):
    """Mean silhouette of each labelling ``codes [B, n]`` (ints in ``[0, k)``).

    ``W [n, n]`` weights the pairs (0 for a network with itself or its
    copies).  As scikit-learn: a network alone in its group scores 0, and
    ``0 / 0`` scores 0.
    """
    B, n = codes.shape
    onehot = np.zeros((n, B, k))
    onehot[np.arange(n)[:, None], np.arange(B)[None, :], codes.T] = 1.0
    onehot = onehot.reshape(n, B * k)
    S = ((D * W) @ onehot).reshape(n, B, k)  # summed distance from i to each group
    C = (W @ onehot).reshape(n, B, k)  # how many pairs that sum holds
    own = codes.T[..., None]
    a_sum, a_count = np.take_along_axis(S, own, 2)[..., 0], np.take_along_axis(C, own, 2)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = S / C
        a = a_sum / a_count
    np.put_along_axis(mean, own, np.inf, 2)
    mean[C == 0] = np.inf
    b = mean.min(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (b - a) / np.maximum(a, b)
    s = np.where((a_count > 0) & np.isfinite(s), s, 0.0)
    return s.mean(axis=0)


def _check_perm(n_permutations, seed):
    check_positive("n_permutations", n_permutations, integer=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {seed!r}.")


def _finite(D, name):
    """Drop NaN networks, then check the rest as a distance matrix; returns ``(D, kept mask)``."""
    D = np.asarray(D, np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix; got shape {D.shape}.")
    ok = comparable(D)
    return check_distances(D[np.ix_(ok, ok)], name), ok


def separation_test(distances, labels, n_permutations=999, seed=0) -> TestResult:
    """Silhouette of ``labels`` on ``distances`` and its permutation p-value.

    Parameters
    ----------
    distances : array_like, shape (n, n)
        Pairwise distances; networks with NaN distances are dropped first
        (:func:`comparable`).
    labels : array_like, shape (n,)
        Group of each network; after the drop, ``2 <= n_groups <= n - 1``.
    n_permutations : int, default 999
        Random permutations of the labels (group sizes kept).
    seed : int, default 0

    Returns
    -------
    TestResult
        Unpacks as ``(silhouette, p_value)``, one-sided for a silhouette
        above chance; ``.p_less``, ``.n``, ``.n_dropped``, ``.null`` too.

    Examples
    --------
    >>> sil, p = separation_test(D, cells)
    """
    _check_perm(n_permutations, seed)
    D, ok = _finite(distances, "distances")
    codes, k = _codes(labels, len(ok))
    codes = np.unique(codes[ok], return_inverse=True)[1].reshape(-1)
    k, n = codes.max() + 1, len(codes)
    if not 2 <= k <= n - 1:
        raise ValueError(f"labels must have between 2 and n - 1 = {n - 1} distinct labels among the "
                         f"{n} networks with finite distances; got {k}.")
    W = 1.0 - np.eye(n)
    observed = _silhouettes(D, W, codes[None], k)[0]
    rng = np.random.default_rng(seed)
    block = max(1, _CHUNK // (n * max(n, k)))
    null = np.concatenate([
        _silhouettes(D, W, rng.permuted(np.tile(codes, (min(block, n_permutations - start), 1)), axis=1), k)
        for start in range(0, n_permutations, block)])
    greater, less = permutation_p(observed, null)
    return TestResult(observed, greater, p_less=less, n=n, n_dropped=int((~ok).sum()), null=null)


def mantel_test(A, B, n_permutations=999, seed=0) -> TestResult:
    """Mantel test: Pearson correlation of two distance matrices' upper triangles.

    Parameters
    ----------
    A, B : array_like, shape (n, n)
        Distances between the same networks, in the same order.  Networks
        with NaN in either are dropped first (:func:`comparable` of ``A + B``).
    n_permutations : int, default 999
        Random permutations of ``B``'s networks (rows and columns together).
    seed : int, default 0

    Returns
    -------
    TestResult
        Unpacks as ``(r, p_value)``, one-sided for ``r > 0``; NaN when either
        matrix is constant.

    Examples
    --------
    >>> r, p = mantel_test(D_cka, D_svcca)
    """
    _check_perm(n_permutations, seed)
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    if A.shape != B.shape:
        raise ValueError(f"A and B must have the same shape; got {A.shape} and {B.shape}.")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be a square (n, n) matrix; got shape {A.shape}.")
    ok = comparable(A + B)
    A = check_distances(A[np.ix_(ok, ok)], "A")
    B = check_distances(B[np.ix_(ok, ok)], "B")
    n = len(A)
    if n < 3:
        raise ValueError(f"mantel_test needs at least 3 networks with finite distances; got {n}.")
    i, j = np.triu_indices(n, 1)
    a, b = A[i, j] - A[i, j].mean(), B[i, j]
    b_mean = b.mean()
    denom = np.sqrt((a @ a) * ((b - b_mean) @ (b - b_mean)))
    if denom == 0:
        nan = float("nan")
        return TestResult(nan, nan, p_less=nan, n=n, n_dropped=int((~ok).sum()), null=np.full(n_permutations, nan))
    observed = a @ (b - b_mean) / denom
    rng = np.random.default_rng(seed)
    block = max(1, _CHUNK // len(i))
    null = []
    for start in range(0, n_permutations, block):
        perm = rng.permuted(np.tile(np.arange(n), (min(block, n_permutations - start), 1)), axis=1)
        null.append((B[perm[:, i], perm[:, j]] - b_mean) @ a / denom)
    null = np.concatenate(null)
    greater, less = permutation_p(observed, null)
    return TestResult(observed, greater, p_less=less, n=n, n_dropped=int((~ok).sum()), null=null)


def silhouette(distances, labels, idx=None) -> float:
    """Silhouette of a labelling, optionally of a resample of the networks.

    With ``idx`` (network indices drawn with replacement), the score is that
    of the networks ``idx`` with their labels, except that pairs of copies of
    one network (distance 0 by construction) are left out of the within-group
    means: a duplicated network would otherwise sit at distance 0 from its own
    group and inflate the score.  A network with no other network in its
    group scores 0 (as in scikit-learn).

    Parameters
    ----------
    distances : ndarray, shape (n, n)
        Finite distances (not checked here: a hot loop).
    labels : array_like, shape (n,)
    idx : array_like of int, shape (m,), optional

    Returns
    -------
    float
    """
    D = np.asarray(distances, np.float64)
    codes, k = _codes(labels, len(D))
    idx = np.arange(len(D)) if idx is None else np.asarray(idx)
    W = (idx[:, None] != idx[None, :]).astype(np.float64)
    return float(_silhouettes(D[np.ix_(idx, idx)], W, codes[idx][None], k)[0])


def mantel_r(A, B, idx=None) -> float:
    """Pearson correlation of two distance matrices over their pairs of distinct networks.

    With ``idx`` (a resample), pairs of copies of one network are left out.
    NaN when either side is constant.
    """
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    idx = np.arange(len(A)) if idx is None else np.asarray(idx)
    i, j = np.triu_indices(len(idx), 1)
    keep = idx[i] != idx[j]
    a, b = A[idx[i[keep]], idx[j[keep]]], B[idx[i[keep]], idx[j[keep]]]
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def bootstrap_ci(statistic, n, n_bootstrap=1000, seed=0, level=0.95, strata=None, method="basic"):
    """Bootstrap interval of a statistic over networks resampled with replacement.

    Parameters
    ----------
    statistic : callable
        ``statistic(idx) -> float`` for an int array ``idx [n]`` of network
        indices drawn with replacement (``idx = arange(n)`` is the sample
        itself).  NaN marks a resample it cannot score.
    n : int
        Number of networks.
    n_bootstrap : int, default 1000
    seed : int, default 0
    level : float in (0, 1), default 0.95
    strata : array_like, shape (n,), optional
        Resample within each stratum (e.g. each architecture), keeping every
        stratum's size and position: ``strata[idx] == strata``.  Silhouettes
        need it: an unstratified resample can lose a group.
    method : {'basic', 'percentile'}, default 'basic'
        ``'percentile'``: the resamples' ``(1 ± level) / 2`` quantiles.
        ``'basic'`` (reverse percentile): ``2 θ − q_hi, 2 θ − q_lo``, with
        ``θ = statistic(arange(n))``, which undoes a shift of the resamples
        against the sample.  Silhouettes need it: with copies left out of
        the within-group means, a resample's groups hold fewer distinct
        networks, and the minimum over other groups' mean distances falls.
        On planted Gaussian clusters (4 groups of 12, 60 draws), the
        difference of two silhouettes was covered 92–97% of the time by
        'basic', 75–87% by 'percentile'.

    Returns
    -------
    (lo, hi) : tuple of float
        NaN when the sample or more than half of the resamples score NaN.

    Examples
    --------
    >>> lo, hi = bootstrap_ci(lambda idx: silhouette(D, cells, idx), len(D), strata=cells)
    """
    check_positive("n", n, integer=True)
    check_positive("n_bootstrap", n_bootstrap, integer=True)
    check_range("level", level, 0.0, 1.0, low_open=True)
    if level >= 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}.")
    if method not in ("basic", "percentile"):
        raise ValueError(f"method must be one of ['basic', 'percentile']; got {method!r}.")
    _check_perm(1, seed)
    if strata is None:
        groups = [np.arange(n)]
    else:
        codes, k = _codes(strata, n, "strata")
        groups = [np.flatnonzero(codes == c) for c in range(k)]
    nan = (float("nan"), float("nan"))
    observed = statistic(np.arange(n))
    if not np.isfinite(observed):
        return nan
    rng = np.random.default_rng(seed)
    values = np.empty(n_bootstrap)
    idx = np.empty(n, int)
    for r in range(n_bootstrap):
        for members in groups:
            idx[members] = rng.choice(members, size=len(members))
        values[r] = statistic(idx.copy())
    values = values[np.isfinite(values)]
    if len(values) <= n_bootstrap / 2:
        return nan
    alpha = (1 - level) / 2
    lo, hi = np.quantile(values, [alpha, 1 - alpha])
    if method == "basic":
        lo, hi = 2 * observed - hi, 2 * observed - lo
    return float(lo), float(hi)


def separation_ci(distances, labels, n_bootstrap=1000, seed=0, level=0.95):
    """Bootstrap interval of the silhouette of ``labels``, resampling networks within each label.

    Networks with NaN distances are dropped first; see :func:`silhouette` for
    how copies of a network are scored.  Returns ``(lo, hi)``.
    """
    D, ok = _finite(distances, "distances")
    labels = np.asarray(labels)[ok]
    return bootstrap_ci(lambda idx: silhouette(D, labels, idx), len(D), n_bootstrap, seed, level, strata=labels)


def configuration_spread(distances, config) -> list:
    """Per configuration, the mean distance among its own networks against that to the other cells'.

    Parameters
    ----------
    distances : array_like, shape (n, n)
        NaN entries are left out of the means.
    config : array_like of str, shape (n,)
        ``"cell/activation"`` of each network.

    Returns
    -------
    list of dict
        ``{config, n, within, between, ratio}`` per configuration, sorted:
        ``within`` is the mean distance between its networks, ``between`` from
        them to the networks of the other cells with the same activation.  A
        ratio above 1 says that its seeds reached different solutions, farther
        apart than the architectures are.
    """
    D = np.asarray(distances, np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"distances must be a square matrix; got shape {D.shape}.")
    config = np.asarray(config).astype(str)
    if config.shape != (len(D),) or not all(c.count("/") == 1 for c in config):
        raise ValueError(f"config must hold one 'cell/activation' label per network ({len(D)}); "
                         f"got {config[:3].tolist()}...")
    cell, act = np.array([c.split("/") for c in config]).T
    rows = []
    for c in np.unique(config):
        mine = config == c
        other = (act == act[mine][0]) & (cell != cell[mine][0])
        pairs = D[np.ix_(mine, mine)][~np.eye(mine.sum(), dtype=bool)]
        within = float(np.nanmean(pairs)) if np.isfinite(pairs).any() else np.nan
        cross = D[np.ix_(mine, other)]
        between = float(np.nanmean(cross)) if np.isfinite(cross).any() else np.nan
        rows.append({"config": str(c), "n": int(mine.sum()), "within": within, "between": between,
                     "ratio": within / between if between > 0 else np.nan})
    return rows
