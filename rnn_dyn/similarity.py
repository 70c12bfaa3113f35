"""Similarity and distance between the representations of networks.

A representation is an array ``(n_samples, n_units)`` of activity on samples
(inputs, time steps) shared by all networks; widths may differ. :func:`cca`,
:func:`svcca` and :func:`cka` return a similarity in [0, 1], :func:`procrustes`
a shape distance. :func:`pairwise_distances` prepares each network once
(:func:`prepare`: centering plus an orthonormal basis or the centered data)
and forms all pairs in blocks: one large matrix product of the stacked bases,
then batched SVDs of the small blocks, never a loop over pairs. It streams
generators and memory-mapped stacks and compares new networks to a prepared set.

Numerics: float64; every unit is centered; CCA uses orthonormal bases of the
centered data (QR of the data projected on its principal directions), never
inverse square roots of covariances; directions whose squared singular value is
below ``NULL_TOL = 1e-10`` of the largest are dropped as numerically null, so
rank-deficient input works; correlations are clipped to [0, 1] and arccos
arguments to [-1, 1], so no NaN is returned.
"""
from __future__ import annotations

import math
import mmap
import sys
from dataclasses import dataclass

import numpy as np

from rnn_dyn._checks import check_choice, check_positive, check_range

METRICS = ("cca", "cka", "procrustes", "svcca")
NULL_TOL = 1e-10
_DEFAULTS = {"cca": {}, "svcca": {"k": None, "variance": 0.95},
             "cka": {"debiased": False}, "procrustes": {"kind": "angular"}}
_BLOCK_COLUMNS = 4096  # columns of each GEMM operand in pairwise_distances
_AUTO_PROGRESS_PAIRS = 20_000
_BLAS = []  # lazily created threadpoolctl controller


def _one_thread():
    """Context running per-network preparation and batched small SVDs on one BLAS
    thread: extra threads only add synchronisation, badly so on a loaded machine."""
    if not _BLAS:
        from threadpoolctl import ThreadpoolController  # a scikit-learn dependency
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def _zeros(*shape):
    """A large zero array in plain 4 KiB pages, where the OS allows.

    numpy advises transparent huge pages for large arrays; on VMs that hand free
    memory back to the host, first touching fresh huge pages is about ten times
    slower (measured: 0.8 s against 0.1 s for 328 MB), and the GEMMs run no faster.
    """
    if not hasattr(mmap, "MAP_ANONYMOUS"):
        return np.zeros(shape)
    size = math.prod(shape)
    buf = mmap.mmap(-1, 8 * max(size, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(buf, count=size).reshape(shape)


def _as_2d(X, name):
    """Return ``X`` as a float64 2-D array, raising a clear error (finiteness is
    checked by :func:`_center`, from the column means)."""
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers; got an "
                        f"unconvertible {type(X).__name__} ({exc}).") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of real numbers; got dtype {arr.dtype}.")
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be a 2-D array (n_samples >= 2, n_units >= 1); "
                         f"got shape {arr.shape}.")
    return arr.astype(np.float64, copy=False)


def _options(metric, options):
    """Validate ``options`` for ``metric``; return them with defaults filled in."""
    check_choice("metric", metric, METRICS)
    unknown = sorted(set(options) - set(_DEFAULTS[metric]))
    if unknown:
        raise TypeError(f"unexpected option(s) {unknown} for metric {metric!r}; "
                        f"allowed: {sorted(_DEFAULTS[metric])}.")
    opts = {**_DEFAULTS[metric], **options}
    if metric == "svcca":
        if opts["k"] is not None:
            check_positive("k", opts["k"], integer=True)
        check_range("variance", opts["variance"], 0, 1, low_open=True)
    elif metric == "cka" and not isinstance(opts["debiased"], (bool, np.bool_)):
        raise TypeError(f"debiased must be a bool; got {opts['debiased']!r}.")
    elif metric == "procrustes":
        check_choice("kind", opts["kind"], ("angular", "euclidean"))
    return opts


def _center(X, name, out=None, gram=False):
    """``X`` minus its column means (written into ``out`` if given) and, if ``gram``,
    its Gram matrix ``Xc^T Xc`` (None when wider than tall).

    Raises on NaN/inf (seen as non-finite means) and on zero variance: every unit's
    root-mean-square deviation at most 1e-12 of the largest absolute mean, judged
    from the column sums of squares (the Gram diagonal when there is one).
    """
    mean = X.mean(axis=0)
    if not np.all(np.isfinite(mean)):
        bad = X.size - np.count_nonzero(np.isfinite(X))
        if bad:  # else finite values whose sum overflows
            raise ValueError(f"{name} must contain only finite values; got {bad} NaN/inf entries.")
    Xc = np.subtract(X, mean, out=out)
    G = Xc.T @ Xc if gram and Xc.shape[1] <= Xc.shape[0] else None
    colsq = np.einsum("ij,ij->j", Xc, Xc) if G is None else G.diagonal()
    if np.sqrt(colsq.max() / len(Xc)) <= 1e-12 * np.abs(mean).max():
        raise ValueError(f"{name} has zero variance after centering (all samples identical).")
    return Xc, G


def _spectrum(Xc):
    """Eigenpairs of the smaller Gram matrix of ``Xc``, descending, and which side."""
    feature_side = Xc.shape[1] <= Xc.shape[0]
    w, V = np.linalg.eigh(Xc.T @ Xc if feature_side else Xc @ Xc.T)
    return np.maximum(w[::-1], 0.0), V[:, ::-1], feature_side


def _basis(Xc, k=None, variance=None):
    """Orthonormal basis (n_samples, r) of the non-null leading directions of ``Xc``:
    at most ``k`` of them, or the fewest reaching ``variance`` of the total."""
    w, V, feature_side = _spectrum(Xc)
    r = int(np.count_nonzero(w > NULL_TOL * w[0]))
    if variance is not None:
        r = min(r, int(np.searchsorted(np.cumsum(w) / w.sum(), variance * (1 - 1e-12))) + 1)
    r = r if k is None else min(r, k)
    if not feature_side:  # eigenvectors of Xc Xc^T are the left singular vectors
        return np.ascontiguousarray(V[:, :r])
    return np.linalg.qr(Xc @ V[:, :r])[0]


def _reduce(Xc):
    """``Xc`` itself or, when wider than tall, a thinner ``P`` with ``P P^T = Xc Xc^T``."""
    if Xc.shape[1] <= Xc.shape[0]:
        return Xc
    w, U, _ = _spectrum(Xc)
    keep = w > NULL_TOL * w[0]
    return U[:, keep] * np.sqrt(w[keep])


def _debias(hsic, rr, sx, sy, n):
    """Unbiased HSIC (Song et al. 2012), up to a factor, from feature-space terms."""
    return hsic - n / (n - 2) * rr + sx * sy / ((n - 1) * (n - 2))


@dataclass(frozen=True, eq=False)
class PreparedSet:
    """Networks prepared once by :func:`prepare`, for :func:`pairwise_distances`.

    ``bases`` ``(n_samples, n_networks * width)`` holds network ``i`` in columns
    ``i*width:(i+1)*width``, zero-padded: an orthonormal basis (cca, svcca) or the
    centered, possibly reduced, data (cka, procrustes), of ``ranks[i]`` columns.
    ``sqnorms`` are ``||Xc||_F^2``; ``selfsim`` ``||Xc^T Xc||_F^2`` (debiased if
    asked, cka); ``rowsq`` ``(n_samples, n_networks)`` squared row norms (debiased cka).
    """

    metric: str
    options: dict
    bases: np.ndarray
    ranks: np.ndarray
    sqnorms: np.ndarray
    selfsim: np.ndarray
    rowsq: np.ndarray | None

    @property
    def n_networks(self):
        return len(self.ranks)

    @property
    def n_samples(self):
        return self.bases.shape[0]

    @property
    def width(self):
        return self.bases.shape[1] // len(self.ranks)


def _stack(named_reps, metric, opts, show=False, total=None):
    """Prepare ``(name, array)`` pairs one at a time into a :class:`PreparedSet`.

    With ``total`` known, ``bases`` is allocated once and each network is centered
    (cka, procrustes) or its basis written straight into its columns; otherwise
    the prepared networks are collected and stacked at the end.
    """
    from tqdm.auto import tqdm

    debiased = metric == "cka" and opts["debiased"]
    var = opts["variance"] if metric == "svcca" and opts["k"] is None else None
    bases, parts, ranks, sqnorms, selfsim, rowsq, n = None, [], [], [], [], [], None
    for i, (name, X) in enumerate(tqdm(named_reps, total=total, desc=f"prepare {metric}",
                                       disable=not show, file=sys.stderr, leave=False)):
        X = _as_2d(X, name)
        if n is None:
            n = X.shape[0]
            if metric == "svcca" and opts["k"] is not None and opts["k"] >= n:
                raise ValueError(f"k must be < n_samples ({n}); got {opts['k']}.")
            if debiased and n < 4:
                raise ValueError(f"debiased CKA needs n_samples >= 4; got {n}.")
        elif X.shape[0] != n:
            raise ValueError(f"all representations must have the same n_samples; "
                             f"the first has {n}, {name} has {X.shape[0]}.")
        if metric == "cca" and n <= X.shape[1]:
            raise ValueError(f"CCA needs more samples than units in {name} (else every "
                             f"correlation is trivially 1); got shape {X.shape}. "
                             "Use svcca with k < n_samples instead.")
        with _one_thread():
            into = None  # centered straight into its columns of bases
            if metric in ("cka", "procrustes") and X.shape[1] <= n and total is not None:
                bases = _widen(bases, n, total, X.shape[1], i)
                into = _slot(bases, total, i, X.shape[1])
            Xc, G = _center(X, name, into, gram=metric == "cka")
            P = _basis(Xc, opts.get("k"), var) if metric in ("cca", "svcca") else _reduce(Xc)
            if into is None and total is None:
                parts.append(P)
            elif into is None:
                bases = _widen(bases, n, total, P.shape[1], i)
                _slot(bases, total, i, P.shape[1])[...] = P
            if metric == "cka":
                G = G if P is Xc else P.T @ P
                h = np.sum(G ** 2)
            else:
                h = 1.0
            r = None if metric == "cka" and not debiased else np.sum(P ** 2, axis=1)
        ranks.append(P.shape[1])
        sqnorms.append(np.trace(G) if r is None else r.sum())
        selfsim.append(_debias(h, r @ r, r.sum(), r.sum(), n) if debiased else h)
        if debiased:
            rowsq.append(r)
            if selfsim[-1] <= 0:
                raise ValueError(f"debiased CKA is undefined for {name}: its debiased "
                                 "self-similarity is not positive (too few samples).")
    if not ranks:
        raise ValueError("reps must contain at least one representation; got none.")
    ranks = np.array(ranks)
    if bases is None:
        bases = _widen(None, n, len(parts), int(ranks.max()), 0)
        for i, P in enumerate(parts):
            _slot(bases, len(parts), i, P.shape[1])[...] = P
    elif len(ranks) < total:  # fewer networks than announced
        bases = bases[:, :len(ranks) * (bases.shape[1] // total)].copy()
    return PreparedSet(metric, opts, bases, ranks, np.array(sqnorms), np.array(selfsim),
                       np.array(rowsq).T if debiased else None)


def _slot(bases, count, i, r):
    """Columns of network ``i`` (first ``r`` of its ``width``) in ``bases`` of ``count``."""
    width = bases.shape[1] // count
    return bases[:, i * width:i * width + r]


def _widen(bases, n, count, r, filled):
    """``bases`` for ``count`` networks of width at least ``r``: a new, zero-padded
    one holding the first ``filled`` networks if it is too narrow."""
    if bases is not None and bases.shape[1] >= count * r:
        return bases
    new = _zeros(n, count * r)
    if bases is not None:
        width = bases.shape[1] // count
        new.reshape(n, count, r)[:, :filled, :width] = bases.reshape(n, count, width)[:, :filled]
    return new


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
        return 1.0 - np.clip(h / np.sqrt(A.selfsim[ia][:, None] * B.selfsim[ib]), 0.0, 1.0)
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
    float in [0, 1]
        Debiased estimates, slightly negative for unrelated data, are clipped to 0.
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


def prepare(reps, metric="svcca", progress=None, **options):
    """Prepare networks once: center each and keep only its small basis.

    Parameters
    ----------
    reps : list of array_like, ndarray (n_networks, n_samples, n_units), or iterable
        Each ``(n_samples, n_units_i)``. Generators and memory-mapped stacks are
        read one network at a time; only the prepared bases are kept
        (``n_samples x k`` each for svcca, the centered data for cka/procrustes).
    metric : {"cca", "cka", "procrustes", "svcca"}
    progress : bool or None
        Progress bar on stderr; None shows one for large sets of known length.
    **options
        ``k``, ``variance`` (svcca), ``debiased`` (cka), ``kind`` (procrustes).

    Returns
    -------
    PreparedSet
    """
    opts = _options(metric, options)
    if isinstance(reps, (str, bytes)) or not hasattr(reps, "__iter__"):
        raise TypeError("reps must be a list/iterable of 2-D arrays or a 3-D array; "
                        f"got {type(reps).__name__}.")
    if isinstance(reps, np.ndarray) and reps.ndim != 3:
        raise ValueError("reps given as one array must be 3-D (n_networks, n_samples, "
                         f"n_units); got shape {reps.shape}.")
    total = len(reps) if hasattr(reps, "__len__") else None
    if progress is None:
        progress = total is not None and total * (total - 1) // 2 >= _AUTO_PROGRESS_PAIRS
    named = ((f"reps[{i}]", X) for i, X in enumerate(reps))
    return _stack(named, metric, opts, progress, total)


def pairwise_distances(reps, reps_b=None, metric=None, progress=None, **options):
    """Distances between all pairs of networks, computed in blocks.

    Each network is prepared once (:func:`prepare`); pairs come from blocks of
    one matrix product of the stacked bases and batched SVDs of the small
    ``k x k`` blocks (a sum of squares for cka), never a loop over pairs.

    Parameters
    ----------
    reps : list of array_like, ndarray (n_networks, n_samples, n_units), iterable or PreparedSet
        Each ``(n_samples, n_units_i)``; widths may differ. Generators and
        memory-mapped stacks are read one network at a time.
    reps_b : same types as ``reps``, optional
        When given, return the rectangular distances of ``reps`` (rows) to
        ``reps_b`` (columns), e.g. new networks against a prepared set.
    metric : {"cca", "cka", "procrustes", "svcca"}, optional
        Default "svcca", or the metric a PreparedSet was prepared with.
    progress : bool or None
        Progress bars on stderr; None shows them when there are many pairs.
    **options
        ``k``, ``variance`` (svcca), ``debiased`` (cka), ``kind`` (procrustes),
        as in the single-pair functions; fixed once a set is prepared.

    Returns
    -------
    ndarray, shape (n_networks, n_networks) or (n_networks, n_networks_b)
        ``1 - similarity`` for cca, svcca and cka, the distance for procrustes.
        Square results are symmetric with a zero diagonal.
    """
    from tqdm.auto import tqdm

    if metric is not None:
        check_choice("metric", metric, METRICS)
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
