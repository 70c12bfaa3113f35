"""Low-dimensional maps of networks from their pairwise distances.

:func:`embed` places networks in the plane (or ``n_components`` dimensions) by
metric multidimensional scaling of a precomputed distance matrix, such as the
one :func:`rnn_dyn.similarity.pairwise_distances` returns; :func:`separation`
scores how well a labelling (architecture, task, seed group...) separates the
networks, by the silhouette on the same distances. Both check the matrix first:
square, finite, non-negative, symmetric and with a zero diagonal (within a
tolerance, then symmetrised exactly). Plotting lives elsewhere.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping

import numpy as np

from rnn_dyn._checks import check_positive

TOL = 1e-8  # relative to the largest distance


def check_distances(distances, name="distances"):
    """Return ``distances`` as a float64 symmetric matrix with an exact zero diagonal.

    Parameters
    ----------
    distances : array_like, shape (n, n)
        Square, finite, non-negative, symmetric and zero on the diagonal, each
        within ``TOL`` times the largest entry.
    name : str
        Name used in error messages.

    Returns
    -------
    ndarray, shape (n, n)
    """
    try:
        D = np.asarray(distances)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a square array of numbers; got {exc}.") from None
    if D.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a square array of real numbers; got dtype {D.dtype}.")
    if D.ndim != 2 or D.shape[0] != D.shape[1] or D.shape[0] < 2:
        raise ValueError(f"{name} must be a square (n, n) matrix with n >= 2; "
                         f"got shape {D.shape}.")
    D = D.astype(np.float64)
    if not np.all(np.isfinite(D)):
        raise ValueError(f"{name} must contain only finite values; "
                         f"got {np.count_nonzero(~np.isfinite(D))} NaN/inf entries.")
    tol = TOL * max(np.abs(D).max(), 1e-300)
    if D.min() < -tol:
        raise ValueError(f"{name} must be non-negative; got minimum {D.min():.3g}.")
    asym = np.abs(D - D.T).max()
    if asym > tol:
        raise ValueError(f"{name} must be symmetric; got max |D - D.T| = {asym:.3g}.")
    diag = np.abs(np.diag(D)).max()
    if diag > tol:
        raise ValueError(f"{name} must have a zero diagonal; got max |diag| = {diag:.3g}.")
    D = np.maximum((D + D.T) / 2, 0.0)
    np.fill_diagonal(D, 0.0)
    return D


def embed(distances, n_components=2, seed=0, n_init=4):
    """Metric MDS embedding of a precomputed distance matrix.

    Parameters
    ----------
    distances : array_like, shape (n, n)
        Pairwise distances (see :func:`check_distances`).
    n_components : int
        Dimensions of the embedding.
    seed : int
        Seed of the SMACOF initialisations (``random_state``).
    n_init : int
        Random initialisations; the lowest-stress one is kept.

    Returns
    -------
    ndarray, shape (n, n_components)
    """
    from sklearn.manifold import MDS

    D = check_distances(distances)
    check_positive("n_components", n_components, integer=True)
    check_positive("n_init", n_init, integer=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {seed!r}.")
    if not D.any():  # every network the same: one point (MDS would divide by zero)
        return np.zeros((len(D), n_components))
    kwargs = dict(n_components=n_components, n_init=n_init, random_state=seed,
                  normalized_stress="auto")
    params = inspect.signature(MDS).parameters
    if "metric_mds" in params:  # scikit-learn >= 1.8
        kwargs.update(metric_mds=True, metric="precomputed", init="random")
    else:
        kwargs.update(metric=True, dissimilarity="precomputed")
    return MDS(**kwargs).fit_transform(D)


def separation(distances, labels):
    """Silhouette score of a labelling on precomputed distances.

    Parameters
    ----------
    distances : array_like, shape (n, n)
        Pairwise distances (see :func:`check_distances`).
    labels : array_like, shape (n,), or dict of name -> array_like (n,)
        Group of each network; needs ``2 <= n_groups <= n - 1``. A dict scores
        each labelling.

    Returns
    -------
    float in [-1, 1], or dict of name -> float
        Near 1: tight groups far apart; near 0: overlapping; negative: networks
        closer to another group than to their own.
    """
    from sklearn.metrics import silhouette_score

    D = check_distances(distances)
    if isinstance(labels, Mapping):
        return {key: _separation(D, value, f"labels[{key!r}]", silhouette_score)
                for key, value in labels.items()}
    return _separation(D, labels, "labels", silhouette_score)


def _separation(D, labels, name, silhouette_score):
    labels = np.asarray(labels)
    n = D.shape[0]
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one label per network; "
                         f"got shape {labels.shape}.")
    n_groups = len(np.unique(labels))
    if not 2 <= n_groups <= n - 1:
        raise ValueError(f"{name} must have between 2 and n - 1 = {n - 1} distinct "
                         f"labels; got {n_groups}.")
    return float(silhouette_score(D, labels, metric="precomputed"))
