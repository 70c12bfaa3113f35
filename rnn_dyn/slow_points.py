"""Slow points as objects: the slow manifolds they lie on, how many, and their dimensions.

A network trained on a task whose memories need not be isolated attractors
(Adam, a flip-flop without the initial pulse) keeps them on *slow manifolds*:
curves or sheets along which ``F(h) ≈ h``.  A fixed-point search then returns
hundreds of slow points spread along each.  :func:`find_slow_manifolds` groups
them, per network and condition input, into connected clusters (single
linkage: two points within ``link`` of each other are on the same manifold)
and gives each cluster's local dimension: the number of Jacobian eigenvalues
within ``tol_eig`` of 1 (directions along which the state neither grows nor
decays), the median over its points.  Fixed points with such eigenvalues
belong to manifolds too when they are linked to another such point (an exact
line attractor is made of fixed points); other fixed points within ``link`` of
a manifold are counted as lying on it (e.g. the attractor a slow manifold
drains into).

:meth:`SlowManifolds.summary` reads "network 0: three 1-D slow manifolds
(45 slow points, 2 fixed points)".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import connected_components

from rnn_dyn._checks import check_positive
from rnn_dyn.fixed_point_results import FixedPoints

_WORDS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def _count(n: int) -> str:
    return _WORDS[n] if n < len(_WORDS) else str(n)


@dataclass(eq=False)
class SlowManifolds:
    """Slow manifolds of one or more networks (see :func:`find_slow_manifolds`).

    Attributes
    ----------
    network, condition : ndarray [n_manifolds] of int
    dimension : ndarray [n_manifolds] of int
        Local dimension: the median number of Jacobian eigenvalues within
        ``tol_eig`` of 1 over the manifold's points.
    n_slow, n_fixed : ndarray [n_manifolds] of int
        Slow points on it, and fixed points on or within ``link`` of it.
    center : ndarray [n_manifolds, n_state]
        Mean of its points.
    extent : ndarray [n_manifolds]
        Largest distance between two of its points.
    label : ndarray [n_points] of int
        For each point of the :class:`FixedPoints` analysed, its manifold's
        index, or -1.
    n_networks : int
    """

    network: np.ndarray
    condition: np.ndarray
    dimension: np.ndarray
    n_slow: np.ndarray
    n_fixed: np.ndarray
    center: np.ndarray
    extent: np.ndarray
    label: np.ndarray
    n_networks: int = 1

    def __len__(self):
        return len(self.network)

    def counts(self) -> np.ndarray:
        """Manifolds per network, ``ndarray [n_networks]`` of int."""
        return np.bincount(self.network, minlength=self.n_networks)

    def describe(self, network: int = 0) -> str:
        """``'three 1-D slow manifolds'``, ``'two 1-D and one 2-D slow manifolds'`` or ``'no slow manifold'``."""
        dims = self.dimension[self.network == network]
        if len(dims) == 0:
            return "no slow manifold"
        parts = [f"{_count(int(np.sum(dims == d)))} {d}-D" for d in np.unique(dims)]
        text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return f"{text} slow manifold{'s' if len(dims) > 1 else ''}"

    def summary(self) -> str:
        """One line per network, then one per manifold."""
        lines = [f"SlowManifolds: {len(self)} manifold(s), {self.n_networks} network(s)"]
        for i in range(self.n_networks):
            mine = np.flatnonzero(self.network == i)
            lines.append(f"  network {i}: {self.describe(i)} ({self.n_slow[mine].sum()} slow points, "
                         f"{self.n_fixed[mine].sum()} fixed points on them)")
            for k in mine:
                lines.append(f"    manifold {k}: {self.dimension[k]}-D, condition {self.condition[k]}, "
                             f"{self.n_slow[k]} slow and {self.n_fixed[k]} fixed points, "
                             f"extent {self.extent[k]:.3g}")
        return "\n".join(lines)

    def __repr__(self):
        return f"SlowManifolds(n_manifolds={len(self)}, dimension={self.dimension.tolist()})"


def local_dimension(eigvals, tol_eig=0.05) -> np.ndarray:
    """Number of eigenvalues within ``tol_eig`` of 1, ``[..., n] -> [...]``."""
    return np.sum(np.abs(np.asarray(eigvals) - 1.0) <= tol_eig, axis=-1)


def find_slow_manifolds(fps: FixedPoints, link: float = 0.3, tol_eig: float = 0.05) -> SlowManifolds:
    """Cluster the slow points of ``fps`` into slow manifolds, with their local dimensions.

    Parameters
    ----------
    fps : FixedPoints
    link : float, default 0.3
        Single-linkage distance (Euclidean, state units): points closer than
        this, under the same network and condition, are on the same manifold.
        :func:`~rnn_dyn.fixed_points.find_fixed_points` polishes slow
        candidates ``merge_radius`` (0.1) apart, so neighbours along a manifold
        lie well within 0.3 of each other.
    tol_eig : float, default 0.05
        An eigenvalue ``λ`` of the Jacobian with ``|λ − 1| <= tol_eig`` counts
        as a direction along the manifold.

    Returns
    -------
    SlowManifolds

    Raises
    ------
    TypeError
        ``fps`` is not a :class:`FixedPoints`.
    ValueError
        ``link`` or ``tol_eig`` not positive.

    Examples
    --------
    >>> print(find_slow_manifolds(fps).summary())  # "network 0: three 1-D slow manifolds (...)"
    """
    if not isinstance(fps, FixedPoints):
        raise TypeError(f"fps must be a FixedPoints; got {type(fps).__name__}.")
    check_positive("link", link)
    check_positive("tol_eig", tol_eig)
    dims = local_dimension(fps.eigvals, tol_eig)
    slow = fps.kind == "slow"
    member = slow | (dims > 0)  # points that make up manifolds
    label = np.full(len(fps), -1)
    rows = {k: [] for k in ("network", "condition", "dimension", "n_slow", "n_fixed", "center", "extent")}
    for p, c in sorted(set(zip(fps.network[member].tolist(), fps.condition[member].tolist()))):
        group = np.flatnonzero((fps.network == p) & (fps.condition == c))
        inside = group[member[group]]
        dist = np.linalg.norm(fps.hstar[inside, None] - fps.hstar[None, inside], axis=-1)
        n_comp, comp = connected_components(dist <= link, directed=False)
        sizes, has_slow = np.bincount(comp, minlength=n_comp), np.bincount(comp, slow[inside], n_comp)
        alone = (sizes[comp] == 1) & (has_slow[comp] == 0)  # a lone fixed point is no manifold
        inside, comp = inside[~alone], np.unique(comp[~alone], return_inverse=True)[1]
        n_comp = len(np.unique(comp))
        others = np.setdiff1d(group, inside)  # fixed points with no slow direction, or alone
        near = (np.linalg.norm(fps.hstar[others, None] - fps.hstar[None, inside], axis=-1) <= link
                if len(others) else np.zeros((0, len(inside)), bool))
        for k in range(n_comp):
            pts = inside[comp == k]
            label[pts] = len(rows["network"])
            attached = others[near[:, comp == k].any(axis=1)] if len(others) else others
            label[attached] = len(rows["network"])
            everything = np.concatenate([pts, attached])
            spread = np.linalg.norm(fps.hstar[everything, None] - fps.hstar[None, everything], axis=-1)
            rows["network"].append(p)
            rows["condition"].append(c)
            rows["dimension"].append(int(np.ceil(np.median(dims[pts]))))
            rows["n_slow"].append(int(slow[pts].sum()))
            rows["n_fixed"].append(int((~slow[pts]).sum() + len(attached)))
            rows["center"].append(fps.hstar[everything].mean(axis=0))
            rows["extent"].append(float(spread.max()))
    as_int = lambda k: np.asarray(rows[k], int)  # noqa: E731
    return SlowManifolds(
        network=as_int("network"), condition=as_int("condition"), dimension=as_int("dimension"),
        n_slow=as_int("n_slow"), n_fixed=as_int("n_fixed"),
        center=np.asarray(rows["center"], float).reshape(-1, fps.n_state),
        extent=np.asarray(rows["extent"], float), label=label, n_networks=fps.n_networks)
