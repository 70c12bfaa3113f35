"""Similarity and distance between the representations of networks.

A representation is an array ``(n_samples, n_units)`` of activity on samples
(inputs, time steps) shared by all networks; widths may differ. :func:`cca`,
:func:`svcca` and :func:`cka` return a similarity in [0, 1] (debiased CKA can
dip slightly below 0), :func:`procrustes` a shape distance. :func:`pairwise_distances`
prepares each network once (:func:`prepare`, in :mod:`rnn_dyn.prepared`:
centering plus an orthonormal basis or the centered data) and forms all pairs
in blocks: one large matrix product of the stacked bases, then batched SVDs of
the small blocks, never a loop over pairs. It streams generators and
memory-mapped stacks and compares new networks to a prepared set. With
``metric="dsa"`` it compares dynamics instead (:mod:`rnn_dyn.dsa`: :func:`dmd`,
:func:`dsa`), from trajectories ``(n_trials, n_time, n_units)``.

Numerics: float64; every unit is centered; CCA uses orthonormal bases of the
centered data (QR of the data projected on its principal directions), never
inverse square roots of covariances; directions whose squared singular value is
below ``NULL_TOL = 1e-10`` of the largest are dropped as numerically null, so
rank-deficient input works; correlations are clipped to [0, 1] (debiased CKA
to [-1, 1]) and arccos arguments to [-1, 1], so no NaN is returned.
"""
from __future__ import annotations

import sys

import numpy as np

from rnn_dyn._checks import check_choice
from rnn_dyn.dsa import dmd, dsa, operator_distances, pairwise_dsa  # noqa: F401
from rnn_dyn.prepared import (_AUTO_PROGRESS_PAIRS, METRICS as _PREPARED, NULL_TOL,
                              PreparedSet, _as_2d, _debias, _one_thread, _options, _stack,
                              _zeros, prepare)  # noqa: F401  (re-exported)

METRICS = _PREPARED + ("dsa",)
_BLOCK_COLUMNS = 4096  # columns of each GEMM operand in pairwise_distances
_DSA_OPTIONS = ("n_delays", "rank", "kind", "seed")


def _block(A, B, ia, ib, values=False, out=None):
    """Distances between networks ``ia`` of ``A`` and ``ib`` of ``B`` (slices).

    One GEMM gives all ``Pa^T Pb`` blocks; ``values=True`` returns their
    singular values instead (the canonical correlations for cca/svcca).
    """
    metric, opts, n, wa, wb = A.metric, A.options, A.n_samples, A.width, B.width
    Pa = A.bases[:, ia.start * wa:ia.stop * wa]
    Pb = Pa if A is B and ia == ib else B.bases[:, ib.start * wb:ib.stop * wb]
    if out is not None:  # a reused buffer for G
        out = out[:Pa.shape[1] * Pb.shape[1]].reshape(Pa.shape[1], Pb.shape[1])
    G = np.matmul(Pa.T, Pb, out=out)  # syrk if Pa is Pb
    G = G.reshape(ia.stop - ia.start, wa, ib.stop - ib.start, wb)
    if metric == "cka":
        rows = G.reshape(-1, wb)  # sum of squares per block row, then per block
        h = np.einsum("ij,ij->i", rows, rows).reshape(G.shape[:3]).sum(axis=1)
        if opts["debiased"]:
            sa, sb = A.sqnorms[ia][:, None], B.sqnorms[ib][None, :]
            h = _debias(h, A.rowsq[:, ia].T @ B.rowsq[:, ib], sa, sb, n)
        low = -1.0 if opts["debiased"] else 0.0  # the unbiased estimator as it is
        return 1.0 - np.clip(h / np.sqrt(A.selfsim[ia][:, None] * B.selfsim[ib]), low, 1.0)
    with _one_thread():
        sv = np.linalg.svd(G.transpose(0, 2, 1, 3), compute_uv=False)
    if values:
        return sv
    sv = sv.sum(axis=-1)
    if metric == "procrustes":
        sa, sb = A.sqnorms[ia][:, None], B.sqnorms[ib][None, :]
        if opts["kind"] == "angular":
            return np.arccos(np.clip(sv / np.sqrt(sa * sb), -1.0, 1.0))
        return np.sqrt(np.maximum(sa + sb - 2.0 * sv, 0.0) / n)
    # singular values of Qa^T Qb are cosines <= 1; zero padding only adds zeros
    m = np.minimum(A.ranks[ia][:, None], B.ranks[ib][None, :])
    return 1.0 - np.clip(sv / m, 0.0, 1.0)


def _pair(X, Y, metric, options, return_coefs=False):
    """Distance of one pair, through the same code as the pairwise blocks."""
    X, Y = _as_2d(X, "X"), _as_2d(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same n_samples (rows); "
                         f"got {X.shape[0]} and {Y.shape[0]}.")
    S = _stack([("X", X), ("Y", Y)], metric, _options(metric, options))
    if return_coefs:  # canonical correlations, descending
        rho = np.clip(_block(S, S, slice(0, 1), slice(1, 2), True)[0, 0, :min(S.ranks)], 0, 1)
        return float(rho.mean()), rho
    return float(_block(S, S, slice(0, 1), slice(1, 2))[0, 0])


def cca(X, Y, return_coefs=False):
    """Mean canonical correlation between two representations.

    Parameters
    ----------
    X, Y : array_like, shapes (n_samples, n_units_x) and (n_samples, n_units_y)
        Both need ``n_samples > n_units``.
    return_coefs : bool
        Also return the canonical correlations.

    Returns
    -------
    similarity : float in [0, 1]
        Mean of the ``min(rank_x, rank_y)`` canonical correlations.
    coefs : ndarray, shape (min(rank_x, rank_y),)
        The correlations, descending; only when ``return_coefs``.
    """
    return _pair(X, Y, "cca", {}, True) if return_coefs else 1.0 - _pair(X, Y, "cca", {})


def svcca(X, Y, k=None, variance=0.95, return_coefs=False):
    """SVCCA similarity (Raghu et al. 2017): CCA on the leading singular directions.

    Parameters
    ----------
    X, Y : array_like, shapes (n_samples, n_units_x) and (n_samples, n_units_y)
    k : int, optional
        Keep the top ``k`` singular directions of each (fewer if its rank is
        lower); must be ``< n_samples``.
    variance : float in (0, 1]
        When ``k`` is None, keep the fewest directions that reach this fraction
        of each representation's own variance (sum of squared singular values).
    return_coefs : bool
        Also return the canonical correlations.

    Returns
    -------
    similarity : float in [0, 1]
        Mean of the ``min(k_x, k_y)`` canonical correlations.
    coefs : ndarray, shape (min(k_x, k_y),); only when ``return_coefs``.
    """
    opts = {"k": k, "variance": variance}
    return _pair(X, Y, "svcca", opts, True) if return_coefs else 1.0 - _pair(X, Y, "svcca", opts)


def cka(X, Y, debiased=False):
    """Linear centered kernel alignment (Kornblith et al. 2019).

    ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` on centered ``X``, ``Y``; with
    ``debiased=True`` each term is the unbiased HSIC estimator of Song et al.
    (2012), as in Kornblith's code (needs ``n_samples >= 4``).

    Parameters
    ----------
    X, Y : array_like, shapes (n_samples, n_units_x) and (n_samples, n_units_y)
    debiased : bool

    Returns
    -------
    float in [0, 1], or in [-1, 1] when debiased
        The debiased estimate is returned as it is: slightly negative for
        unrelated data (as in Kornblith et al.'s code and ``netrep``), so null
        distributions of permutation tests are not biased upwards.
    """
    return 1.0 - _pair(X, Y, "cka", {"debiased": debiased})


def procrustes(X, Y, kind="angular"):
    """Procrustes shape distance (Williams et al. 2021, as in ``netrep``).

    Both are centered; the narrower is zero-padded and rotated optimally onto
    the other (orthogonal alignment, no scaling).

    - ``"angular"``: ``arccos(||Xc^T Yc||_* / (||Xc||_F ||Yc||_F))``, radians in
      [0, pi/2]; invariant to rotation, isotropic scaling and translation.
    - ``"euclidean"``: ``min_Q ||Xc - Yc Q||_F / sqrt(n_samples)`` over orthogonal
      ``Q``: the root-mean-square distance per sample after alignment, i.e.
      ``netrep``'s euclidean score divided by ``sqrt(n_samples)``; in data units.

    Parameters
    ----------
    X, Y : array_like, shapes (n_samples, n_units_x) and (n_samples, n_units_y)
    kind : {"angular", "euclidean"}

    Returns
    -------
    float >= 0
    """
    return _pair(X, Y, "procrustes", {"kind": kind})


def pairwise_distances(reps, reps_b=None, metric=None, progress=None, **options):
    """Distances between all pairs of networks, computed in blocks.

    Each network is prepared once (:func:`prepare`); pairs come from blocks of
    one matrix product of the stacked bases and batched SVDs of the small
    ``k x k`` blocks (a sum of squares for cka), never a loop over pairs.

    Parameters
    ----------
    reps : list of array_like, ndarray (n_networks, n_samples, n_units), iterable or PreparedSet
        Each ``(n_samples, n_units_i)``; widths may differ. Generators and
        memory-mapped stacks are read one network at a time. For ``"dsa"``
        each is a set of trajectories ``(n_trials, n_time, n_units_i)`` (or 2-D
        ``(n_time, n_units_i)``, one trial; a 4-D ndarray is read network by
        network); flattened ``trials*time`` rows must be reshaped first.
    reps_b : same types as ``reps``, optional
        When given, return the rectangular distances of ``reps`` (rows) to
        ``reps_b`` (columns), e.g. new networks against a prepared set.
    metric : {"cca", "cka", "dsa", "procrustes", "svcca"}, optional
        Default "svcca", or the metric a PreparedSet was prepared with
        (``"dsa"`` has no PreparedSet: pass arrays).
    progress : bool or None
        Progress bars on stderr; None shows them when there are many pairs.
    **options
        ``k``, ``variance`` (svcca), ``debiased`` (cka), ``kind`` (procrustes),
        ``n_delays``, ``rank``, ``kind``, ``seed`` (dsa: see :func:`dsa`), as in
        the single-pair functions; fixed once a set is prepared.

    Returns
    -------
    ndarray, shape (n_networks, n_networks) or (n_networks, n_networks_b)
        ``1 - similarity`` for cca, svcca and cka, the distance for procrustes
        and dsa. Square results are symmetric with a zero diagonal.
    """
    from tqdm.auto import tqdm

    if metric is not None:
        check_choice("metric", metric, METRICS)
    if metric == "dsa":
        unknown = sorted(set(options) - set(_DSA_OPTIONS))
        if unknown:
            raise TypeError(f"unexpected option(s) {unknown} for metric 'dsa'; "
                            f"allowed: {sorted(_DSA_OPTIONS)}.")
        if any(isinstance(r, PreparedSet) for r in (reps, reps_b)):
            raise ValueError("metric 'dsa' compares trajectories; got a PreparedSet "
                             "(prepared for a geometry metric).")
        return pairwise_dsa(reps, reps_b, progress=progress, **options)
    for ref in (r for r in (reps, reps_b) if isinstance(r, PreparedSet)):
        if metric not in (None, ref.metric) or (
                options and _options(ref.metric, options) != ref.options):
            raise ValueError(f"metric and options must match the prepared set's {ref.metric!r} "
                             f"{ref.options}; got {metric!r} {options}.")
        metric, options = ref.metric, ref.options

    def prep(r):
        return r if isinstance(r, PreparedSet) else prepare(r, metric or "svcca", progress,
                                                            **options)

    A, square = prep(reps), reps_b is None
    B = A if square else prep(reps_b)
    if A.n_samples != B.n_samples:
        raise ValueError(f"reps and reps_b must have the same n_samples; "
                         f"got {A.n_samples} and {B.n_samples}.")
    na, nb = A.n_networks, B.n_networks
    step_a, step_b = max(1, _BLOCK_COLUMNS // A.width), max(1, _BLOCK_COLUMNS // B.width)
    blocks = [(slice(i, min(i + step_a, na)), slice(j, min(j + step_b, nb)))
              for i in range(0, na, step_a) for j in range(i if square else 0, nb, step_b)]
    n_pairs = na * (na - 1) // 2 if square else na * nb
    show = progress if progress is not None else n_pairs >= _AUTO_PROGRESS_PAIRS
    D = np.zeros((na, nb))
    buffer = _zeros(min(step_a, na) * A.width * min(step_b, nb) * B.width)  # each block's G
    for ia, ib in tqdm(blocks, desc=f"{A.metric} pair blocks", disable=not show,
                       file=sys.stderr, leave=False):
        D[ia, ib] = _block(A, B, ia, ib, out=buffer)
        if square:
            D[ib, ia] = D[ia, ib].T
    if square:
        D = (D + D.T) / 2
        np.fill_diagonal(D, 0.0)
    return D
