"""Oscillatory modes of sine-task fixed points (SPEC §5, paper Fig. 2d–f).

:func:`compute_oscillatory_modes` reads a
:class:`~rnn_dyn.fixed_points.FixedPoints` (its ``eigvals`` sorted by
magnitude) and finds, per network and condition ``u``, the dominant
oscillatory mode of the chosen fixed point — the complex pair of largest
``|λ|`` (:func:`dominant_oscillatory_eigval`) — and compares its frequency
``|angle λ|`` (radians per step) with the task's ``ω(u)``; its growth rate is
``log|λ|`` per step.  Nothing is re-linearized.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_dyn._checks import check_range
from rnn_dyn.point_groups import _best_per_group, _n_conditions


def dominant_oscillatory_eigval(eigvals, min_imag=1e-3) -> np.ndarray:
    """The largest-``|λ|`` eigenvalue with ``Im λ > min_imag``, per point.

    Parameters
    ----------
    eigvals : array_like [n_points, n_state] complex
        Sorted by magnitude, largest first (as in ``FixedPoints.eigvals``).
    min_imag : float, default 1e-3
        Eigenvalues with ``|Im λ| <= min_imag`` count as real.  At ``|λ| ≈ 1``
        this is a period over ``2π / 1e-3 ≈ 6300`` steps, no oscillation within
        a 500-step sine trial (whose slowest target, ``ω = 2π·0.01``, has
        ``Im λ ≈ 0.063``), and it is far above the round-off that can split a
        degenerate real pair into a complex one.

    Returns
    -------
    ndarray [n_points] complex
        The member of the conjugate pair with positive imaginary part; NaN
        where a point has no oscillatory mode.
    """
    eigvals = np.asarray(eigvals, complex)
    check_range("min_imag", min_imag, 0.0, np.inf)
    osc = eigvals.imag > min_imag
    first = np.argmax(osc, axis=-1)
    picked = np.take_along_axis(eigvals, first[..., None], -1)[..., 0] if eigvals.shape[-1] else \
        np.zeros(eigvals.shape[:-1], complex)
    return np.where(osc.any(axis=-1), picked, np.nan + 0j)


@dataclass(eq=False)
class OscillatoryModes:
    """Dominant oscillatory mode of one fixed point per network and sine condition.

    Attributes
    ----------
    point : ndarray [n_networks, n_conditions] of int
        Index into the :class:`FixedPoints` analysed; ``-1``: no point found.
    eigval : ndarray [n_networks, n_conditions] complex
        The mode's eigenvalue (``Im > 0``); NaN without a point or mode.
    frequency : ndarray [n_networks, n_conditions]
        ``|angle λ|``, radians per step.
    omega : ndarray [n_conditions]
        The task's angular frequency per step, ``ω(u)``.
    rel_error : ndarray [n_networks, n_conditions]
        ``|frequency − ω| / ω``.
    growth : ndarray [n_networks, n_conditions]
        ``log|λ|`` per step (> 0: the mode grows, as in a limit cycle's centre).
    """

    point: np.ndarray
    eigval: np.ndarray
    frequency: np.ndarray
    omega: np.ndarray
    rel_error: np.ndarray
    growth: np.ndarray

    @property
    def n_no_point(self) -> np.ndarray:
        """Conditions without a fixed point, per network ``[n_networks]``."""
        return np.sum(self.point < 0, axis=1)

    @property
    def n_no_mode(self) -> np.ndarray:
        """Conditions whose point has no oscillatory mode, per network ``[n_networks]``."""
        return np.sum((self.point >= 0) & np.isnan(self.frequency), axis=1)

    def per_network(self) -> dict:
        """Per-network summaries, each ``ndarray [n_networks]``.

        ``mean_rel_error`` and ``median_rel_error`` over the conditions with a
        mode (NaN if none), ``n_valid`` (those conditions), ``n_no_point``,
        ``n_no_mode``.
        """
        valid = np.isfinite(self.rel_error)
        err = np.where(valid, self.rel_error, 0.0)
        n_valid = valid.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n_valid > 0, err.sum(axis=1) / n_valid, np.nan)
        median = np.array([np.median(r[v]) if v.any() else np.nan
                           for r, v in zip(self.rel_error, valid)])
        return {"mean_rel_error": mean, "median_rel_error": median, "n_valid": n_valid,
                "n_no_point": self.n_no_point, "n_no_mode": self.n_no_mode}


def compute_oscillatory_modes(fps, omega, *, points=None, min_imag=1e-3) -> OscillatoryModes:
    """Frequency and growth of each sine condition's dominant linear oscillation.

    Parameters
    ----------
    fps : FixedPoints
        Points of one or more sine networks; ``fps.condition`` indexes the
        task's cue grid (as :func:`find_population_fixed_points` numbers it).
    omega : array_like [n_conditions]
        ``task.omega(task.grid)``: the target's angular frequency per step.
    points : array_like [n_networks, n_conditions] of int, optional
        The point to analyse per network and condition (``-1``: none), e.g.
        from :func:`nearest_points`.  Default: among a condition's points, the
        one whose dominant oscillatory mode is closest to the unit circle
        (smallest ``||λ| − 1|``) — the mode that sustains the output
        oscillation — or the first point when none oscillates.
    min_imag : float, default 1e-3
        See :func:`dominant_oscillatory_eigval`.

    Returns
    -------
    OscillatoryModes
        NaN where a network has no point under a condition, or its point no
        oscillatory mode; :attr:`OscillatoryModes.n_no_point` and
        :attr:`~OscillatoryModes.n_no_mode` count them.

    Examples
    --------
    >>> osc = compute_oscillatory_modes(fps, task.omega(task.grid))
    >>> osc.per_network()["mean_rel_error"]
    """
    omega = np.asarray(omega, np.float64)
    if omega.ndim != 1 or not np.all(np.isfinite(omega)) or np.any(omega <= 0):
        raise ValueError("omega must be a 1-D array of positive finite frequencies, one per "
                         f"condition; got shape {omega.shape}.")
    n_cond = _n_conditions(fps, len(omega))
    shape = (fps.n_networks, n_cond)
    lam = dominant_oscillatory_eigval(fps.eigvals, min_imag)
    if points is None:
        points = _best_per_group(np.abs(np.abs(lam) - 1.0), fps.network, fps.condition, shape)
    else:
        points = np.asarray(points)
        if points.shape != shape or not np.issubdtype(points.dtype, np.integer):
            raise ValueError(f"points must be an int array of shape {shape}; got {points.dtype} "
                             f"{points.shape}.")
        if np.any(points >= len(fps)) or np.any(points < -1):
            raise ValueError(f"points must be -1 or index the {len(fps)} fixed points; "
                             f"got values in [{points.min()}, {points.max()}].")
        ok = points >= 0
        rows, cols = np.nonzero(ok)
        if np.any(fps.network[points[ok]] != rows) or np.any(fps.condition[points[ok]] != cols):
            raise ValueError("points[i, c] must be a point of network i under condition c.")
    found = points >= 0
    eigval = np.where(found, lam[np.where(found, points, 0)] if len(fps) else np.nan, np.nan + 0j)
    frequency = np.abs(np.angle(eigval))
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.log(np.abs(eigval))
    return OscillatoryModes(point=points, eigval=eigval, frequency=frequency, omega=omega,
                            rel_error=np.abs(frequency - omega) / omega, growth=growth)
