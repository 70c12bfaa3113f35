"""Networks prepared once for comparison: checked, centered, reduced to a small basis.

:func:`prepare` reads each network's representation ``(n_samples, n_units)``
once (lists, generators or memory-mapped stacks), centers every unit and keeps
only what the pairwise blocks of :mod:`rnn_dyn.similarity` need: an orthonormal
basis of the non-null leading directions (cca, svcca) or the centered data,
thinned when wider than tall (cka, procrustes), stacked side by side in one
:class:`PreparedSet`. Directions whose squared singular value is below
``NULL_TOL = 1e-10`` of the largest are dropped as numerically null.
"""
from __future__ import annotations

import math
import mmap
import sys
from dataclasses import dataclass

import numpy as np

from rnn_dyn._checks import as_real_array, check_choice, check_positive, check_range

METRICS = ("cca", "cka", "procrustes", "svcca")  # the metrics a PreparedSet holds
NULL_TOL = 1e-10
_DEFAULTS = {"cca": {}, "svcca": {"k": None, "variance": 0.95},
             "cka": {"debiased": False}, "procrustes": {"kind": "angular"}}
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
    arr = as_real_array(X, name)
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

