"""The result of a fixed-point search: :class:`FixedPoints`, points with their linearizations.

A container only (STYLE: result containers hold arrays and index; they never
plot or save beyond their own ``.npz``): :func:`rnn_dyn.fixed_points.find_fixed_points`
fills it, :mod:`rnn_dyn.topology`, :mod:`rnn_dyn.dynamics` and the study read
it, and :meth:`FixedPoints.save`/:meth:`FixedPoints.load` keep the ``.npz``
format that the MLflow artifacts ``fixed_points.npz`` use.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


@dataclass(eq=False)
class FixedPoints:
    """Fixed and slow points of one or more networks, with their linearizations.

    Every per-point array has a leading axis ``n_points``; ``network`` and
    ``condition`` say which member and which condition input each point
    belongs to.  Index with an int array or boolean mask (``fps[fps.is_stable]``)
    or use :meth:`for_network`, :meth:`for_condition`, :attr:`fixed`, :attr:`slow`.

    Attributes
    ----------
    hstar : ndarray [n_points, n_state]
    h_init : ndarray [n_points, n_state]
        The start each point was found from.
    x_cond : ndarray [n_points, n_inputs]
    qstar : ndarray [n_points]
        ``½‖F(h*, x) − h*‖²`` in float64.
    n_iters, n_polish : ndarray [n_points] of int
        Search (Adam) and polish (Newton/LM) iterations.
    kind : ndarray [n_points] of str
        ``'fixed'`` or ``'slow'``.
    jacobian : ndarray [n_points, n_state, n_state]
    input_jacobian : ndarray [n_points, n_state, n_inputs]
    eigvals : ndarray [n_points, n_state] complex
        Sorted by magnitude, largest first.
    right_eigvecs, left_eigvecs : ndarray [n_points, n_state, n_state] complex
        ``J = R diag(eigvals) L``: right eigenvectors are columns of ``R``,
        left eigenvectors rows of ``L = R^-1``.
    is_stable : ndarray [n_points] of bool
        Every ``|λ| < 1``.
    n_unstable : ndarray [n_points] of int
        Number of ``|λ| > 1``.
    network, condition : ndarray [n_points] of int
    n_networks : int
    n_starts : ndarray [n_networks] of int
        Starts searched per network.
    n_discarded : ndarray [n_networks] of int
        Search and forward-iteration ends with ``q > tol_slow`` (not polished),
        plus distinct polished candidates that ended with ``q > tol_slow`` or
        outside the guard.
    """

    hstar: np.ndarray
    h_init: np.ndarray
    x_cond: np.ndarray
    qstar: np.ndarray
    n_iters: np.ndarray
    n_polish: np.ndarray
    kind: np.ndarray
    jacobian: np.ndarray
    input_jacobian: np.ndarray
    eigvals: np.ndarray
    right_eigvecs: np.ndarray
    left_eigvecs: np.ndarray
    is_stable: np.ndarray
    n_unstable: np.ndarray
    network: np.ndarray
    condition: np.ndarray
    n_networks: int = 1
    n_starts: np.ndarray = None
    n_discarded: np.ndarray = None

    META = ("n_networks", "n_starts", "n_discarded")  # per-result, not per-point (not a field)

    @property
    def _point_fields(self):
        return [f.name for f in fields(self) if f.name not in self.META]

    def __len__(self):
        return len(self.qstar)

    def __getitem__(self, index) -> "FixedPoints":
        index = np.asarray(index)
        if index.ndim == 0:
            index = index[None]
        picked = {k: getattr(self, k)[index] for k in self._point_fields}
        return FixedPoints(**picked, **{k: getattr(self, k) for k in self.META})

    def for_network(self, i: int) -> "FixedPoints":
        """The points of member ``i``."""
        return self[self.network == i]

    def for_condition(self, c: int) -> "FixedPoints":
        """The points under condition input ``c``."""
        return self[self.condition == c]

    @property
    def fixed(self) -> "FixedPoints":
        return self[self.kind == "fixed"]

    @property
    def slow(self) -> "FixedPoints":
        return self[self.kind == "slow"]

    @property
    def n_state(self) -> int:
        return self.hstar.shape[1]

    def metrics(self) -> dict:
        """Counts per network, each ``ndarray [n_networks]`` of int.

        ``n_fixed``, ``n_slow``, ``n_stable`` (stable fixed points), ``n_saddles``
        (fixed points with ``0 < n_unstable < n_state``), ``n_discarded``.
        """
        fixed = self.kind == "fixed"
        count = lambda mask: np.bincount(self.network[mask], minlength=self.n_networks)  # noqa: E731
        return {"n_fixed": count(fixed), "n_slow": count(self.kind == "slow"),
                "n_stable": count(fixed & self.is_stable),
                "n_saddles": count(fixed & (self.n_unstable > 0) & (self.n_unstable < self.n_state)),
                "n_discarded": np.asarray(self.n_discarded)}

    def slow_manifolds(self, link: float = 0.3, tol_eig: float = 0.05):
        """The slow manifolds the slow points lie on (:func:`~rnn_dyn.slow_points.find_slow_manifolds`).

        ``fps.slow_manifolds().summary()`` reads "network 0: three 1-D slow
        manifolds (...)" where :meth:`summary` counts slow points.
        """
        from rnn_dyn.slow_points import find_slow_manifolds  # it imports this module

        return find_slow_manifolds(self, link=link, tol_eig=tol_eig)

    def summary(self) -> str:
        """One line per network: counts of fixed, slow, stable and saddle points."""
        m = self.metrics()
        lines = [f"FixedPoints: {len(self)} points, {self.n_networks} network(s), "
                 f"{len(np.unique(self.condition))} condition(s)"]
        for i in range(self.n_networks):
            lines.append(f"  network {i}: {m['n_fixed'][i]} fixed ({m['n_stable'][i]} stable, "
                         f"{m['n_saddles'][i]} saddles), {m['n_slow'][i]} slow, "
                         f"{m['n_discarded'][i]} discarded, from {self.n_starts[i]} starts")
        return "\n".join(lines)

    def __repr__(self):
        m = {k: int(v.sum()) for k, v in self.metrics().items()}
        return (f"FixedPoints(n_points={len(self)}, n_networks={self.n_networks}, "
                f"fixed={m['n_fixed']}, stable={m['n_stable']}, saddles={m['n_saddles']}, "
                f"slow={m['n_slow']})")

    def save(self, path):
        """Write every field to a ``.npz`` file at ``path``."""
        np.savez_compressed(path, **{f.name: np.asarray(getattr(self, f.name)) for f in fields(self)})

    @classmethod
    def load(cls, path) -> "FixedPoints":
        """Read a file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            values = {f.name: data[f.name] for f in fields(cls)}
        values["n_networks"] = int(values["n_networks"])
        return cls(**values)
