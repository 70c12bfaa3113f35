"""Integration modes of context-task fixed points (SPEC §5, paper Fig. 3d–f).

Every function reads a :class:`~rnn_dyn.fixed_points.FixedPoints` (its
``eigvals`` sorted by magnitude, right eigenvectors ``R`` as columns, left
eigenvectors ``L = R^-1`` as rows, input Jacobian ``B``); nothing is
re-linearized.  :func:`count_near_one` counts eigenvalues with
``|λ − 1| < tol`` (the modes of an approximate line attractor);
:func:`integration_curve` is the fraction of the linearized system's
integrated readout of a unit relevant-input pulse that the ``m``
largest-``|λ|`` modes carry (:func:`mode_readouts` gives each mode's term);
:func:`compute_integration_modes` bundles both per point.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnn_dyn._checks import check_positive, check_range
from rnn_dyn.point_groups import _n_conditions


def count_near_one(eigvals, tol=0.05) -> np.ndarray:
    """Number of eigenvalues with ``|λ − 1| < tol``, per point.

    Parameters
    ----------
    eigvals : array_like [n_points, n_state] complex
    tol : float, default 0.05
        The paper gives no number; 0.05 keeps modes with a time constant
        ``−1/log|λ|`` of at least about 20 steps (a fifth of a 100-step context
        trial) and angle under 0.05 rad, i.e. modes that hold a sum over much
        of the trial.

    Returns
    -------
    ndarray [n_points] of int
    """
    check_positive("tol", tol)
    return np.sum(np.abs(np.asarray(eigvals, complex) - 1.0) < tol, axis=-1)


def geometric_sum(eigvals, horizon) -> np.ndarray:
    """``Σ_{k=0}^{horizon−1} λ^k`` elementwise, accurate near ``λ = 1``.

    ``(λ^T − 1)/(λ − 1)`` computed as ``expm1(T log1p(λ − 1))/(λ − 1)``; ``T`` at
    ``λ = 1`` and 1 at ``λ = 0``.
    """
    check_positive("horizon", horizon, integer=True)
    lam = np.asarray(eigvals, complex)
    d = lam - 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g = np.expm1(horizon * np.log1p(d)) / d
    return np.where(d == 0, horizon, np.where(lam == 0, 1.0, g))


def _readout_per_point(fps, readout):
    w = np.asarray(getattr(readout, "readout_kernel", readout), np.float64)
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3 or w.shape[0] not in (1, fps.n_networks):
        raise ValueError(f"readout must have shape [n_hidden, n_outputs] or [n_networks="
                         f"{fps.n_networks}, n_hidden, n_outputs]; got {np.shape(readout)}.")
    return w[fps.network if w.shape[0] > 1 else np.zeros(len(fps), int)]


def _hidden_modes(right, hidden, n_hidden):
    """Right eigenvectors seen by the readout: ``[n_points, n_modes, n_hidden]``."""
    modes = np.swapaxes(right, -1, -2)  # one row per mode
    if hidden is None:
        if n_hidden > modes.shape[-1]:
            raise ValueError(f"readout has n_hidden={n_hidden} rows but the state has only "
                             f"{modes.shape[-1]} entries.")
        out = modes[..., modes.shape[-1] - n_hidden:]
    elif callable(hidden):
        out = np.asarray(hidden(modes))
    else:
        out = modes[..., hidden]
    if out.shape[-1] != n_hidden:
        raise ValueError(f"hidden must select n_hidden={n_hidden} state entries (the readout's "
                         f"rows); got {out.shape[-1]}.")
    return out


def mode_readouts(fps, readout, channel, *, horizon, hidden=None) -> np.ndarray:
    """Each mode's share of the integrated readout of a unit input pulse.

    For the pulse ``Δs_0 = B[:, channel]`` the linearized state after ``k``
    steps is ``J^k Δs_0 = Σ_i r_i λ_i^k c_i`` with ``c = L Δs_0`` (left
    eigenvectors, rows of ``L``) and ``r_i`` the right eigenvectors; the
    readout summed over ``k = 0 … horizon−1`` is therefore
    ``Σ_i (W_outᵀ hidden(r_i)) c_i g(λ_i)``, ``g(λ) = Σ_k λ^k``
    (:func:`geometric_sum`).  The sum equals the final output of the
    linearized network fed a constant unit input on ``channel`` for
    ``horizon`` steps (what the context task integrates).

    Parameters
    ----------
    fps : FixedPoints
    readout : array_like [n_networks, n_hidden, n_outputs] or [n_hidden, n_outputs]
        ``W_out`` (``population.readout_kernel``; a population itself works).
    channel : int or array_like [n_conditions] of int
        The relevant input channel, one for all points or one per condition
        (``fps.condition`` indexes it); for the context task, condition ``c``
        integrates stream ``c``: ``np.arange(n_contexts)``.
    horizon : int
        Steps summed, ``T``: the task's ``n_time``.  Finite, so that modes with
        ``|λ| >= 1`` (a line attractor's, at or just past the unit circle) stay
        finite: ``g(1) = T``.
    hidden : None, slice, int array or callable, optional
        Which part of the state the readout sees.  Default: the last
        ``n_hidden`` entries (all of it for vanilla/UGRNN/GRU, ``h`` of the
        LSTM's ``[c; h]``).  A callable (e.g. ``cell.hidden``) maps
        ``[..., n_state]`` to ``[..., n_hidden]`` and must be linear.

    Returns
    -------
    ndarray [n_points, n_state, n_outputs] complex
        Mode ``i``'s term (modes in the order of ``fps.eigvals``); summed over
        modes it is real up to round-off, as conjugate pairs' terms are
        conjugate.
    """
    b = np.asarray(fps.input_jacobian)
    chan = np.asarray(channel)
    if chan.ndim == 0:
        chan = np.full(len(fps), int(chan))
    else:
        if chan.ndim != 1 or (len(fps) and fps.condition.max() >= len(chan)):
            raise ValueError(f"channel must be an int or one int per condition (fps.condition "
                             f"indexes it); got shape {chan.shape}.")
        chan = chan[fps.condition]
    if not np.issubdtype(chan.dtype, np.integer) or np.any((chan < 0) | (chan >= b.shape[-1])):
        raise ValueError(f"channel must be ints in [0, n_inputs={b.shape[-1]}); got {np.unique(chan)}.")
    w = _readout_per_point(fps, readout)
    pulse = np.take_along_axis(b, chan[:, None, None], -1)[..., 0]      # [P, n_state]
    coef = np.einsum("pij,pj->pi", fps.left_eigvecs, pulse)              # c = L Δs0
    seen = np.einsum("pih,pho->pio", _hidden_modes(fps.right_eigvecs, hidden, w.shape[1]), w)
    return seen * (coef * geometric_sum(fps.eigvals, horizon))[..., None]


def integration_curve(fps, readout, channel, *, horizon, hidden=None):
    """Fraction of the integrated readout kept by the ``m`` largest-``|λ|`` modes.

    Modes are zeroed from the smallest ``|λ|`` up (SPEC §5): ``curve[:, m]``
    keeps the first ``m`` modes of ``fps.eigvals``.  With one output it is
    ``Re(partial_m) / full``; with several, the projection
    ``⟨Re partial_m, full⟩ / ‖full‖²``.  Imaginary parts cancel once both
    members of a conjugate pair are kept; a cut between them (equal ``|λ|``)
    counts half the pair.

    Parameters
    ----------
    fps, readout, channel, horizon, hidden
        As in :func:`mode_readouts`.

    Returns
    -------
    curve : ndarray [n_points, n_state + 1]
        ``curve[:, 0] = 0``, ``curve[:, n_state] = 1``; NaN rows where the full
        readout vanishes (below ``1e-12`` of the modes' summed magnitudes:
        the pulse does not reach the output).
    full : ndarray [n_points, n_outputs]
        The full linearized system's integrated readout (real part).
    """
    terms = mode_readouts(fps, readout, channel, horizon=horizon, hidden=hidden)
    partial = np.concatenate([np.zeros_like(terms[:, :1]), np.cumsum(terms, axis=1)], axis=1).real
    full = partial[:, -1]
    norm2 = np.sum(full**2, axis=-1)
    scale = np.sum(np.abs(terms), axis=(1, 2))
    defined = np.sqrt(norm2) > 1e-12 * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        curve = np.einsum("pmo,po->pm", partial, full) / norm2[:, None]
    return np.where(defined[:, None], curve, np.nan), full


def modes_needed(curve, level=0.9) -> np.ndarray:
    """Fewest modes after which the curve stays within ``1 − level`` of 1.

    The smallest ``m`` with ``|curve[j] − 1| <= 1 − level`` for every
    ``j >= m`` (robust to curves that overshoot 1 and come back).

    Parameters
    ----------
    curve : array_like [n_points, n_state + 1]
    level : float, default 0.9

    Returns
    -------
    ndarray [n_points] of int
        ``-1`` for undefined (NaN) curves.
    """
    check_range("level", level, 0.0, 1.0, low_open=True)
    curve = np.asarray(curve, np.float64)
    close = np.abs(curve - 1.0) <= (1.0 - level) + 1e-12
    stays = np.flip(np.logical_and.accumulate(np.flip(close, -1), axis=-1), -1)
    first = np.argmax(stays, axis=-1)
    return np.where(stays.any(axis=-1) & np.all(np.isfinite(curve), axis=-1), first, -1)


@dataclass(eq=False)
class IntegrationModes:
    """Per-point linear integration analysis of context fixed points.

    Attributes
    ----------
    n_near_one : ndarray [n_points] of int
        Eigenvalues with ``|λ − 1| < tol``.
    curve : ndarray [n_points, n_state + 1]
        :func:`integration_curve`.
    full : ndarray [n_points, n_outputs]
        Full linearized integrated readout of the unit pulse.
    n_modes : ndarray [n_points] of int
        :func:`modes_needed` at ``level`` (``-1``: undefined).
    one_mode : ndarray [n_points]
        ``curve[:, 1]``: the fraction the slowest mode alone carries.
    network, condition : ndarray [n_points] of int
    n_networks, n_conditions : int
    tol, level : float
    horizon : int
    """

    n_near_one: np.ndarray
    curve: np.ndarray
    full: np.ndarray
    n_modes: np.ndarray
    one_mode: np.ndarray
    network: np.ndarray
    condition: np.ndarray
    n_networks: int
    n_conditions: int
    tol: float
    level: float
    horizon: int

    def per_network(self) -> dict:
        """Means over each network's points per condition, ``[n_networks, n_conditions]``.

        ``n_points``; ``n_near_one`` (mean), ``n_modes`` (median of defined
        points), ``one_mode`` (mean of defined points), ``curve`` (mean of
        defined curves, ``[n_networks, n_conditions, n_state + 1]``); NaN where
        nothing is defined.
        """
        shape = (self.n_networks, self.n_conditions)
        out = {"n_points": np.zeros(shape, int), "n_near_one": np.full(shape, np.nan),
               "n_modes": np.full(shape, np.nan), "one_mode": np.full(shape, np.nan),
               "curve": np.full(shape + (self.curve.shape[1],), np.nan)}
        for i, c in np.ndindex(shape):
            mine = (self.network == i) & (self.condition == c)
            ok = mine & (self.n_modes >= 0)
            out["n_points"][i, c] = mine.sum()
            if mine.any():
                out["n_near_one"][i, c] = self.n_near_one[mine].mean()
            if ok.any():
                out["n_modes"][i, c] = np.median(self.n_modes[ok])
                out["one_mode"][i, c] = self.one_mode[ok].mean()
                out["curve"][i, c] = self.curve[ok].mean(axis=0)
        return out


def compute_integration_modes(fps, readout, channel, *, horizon, tol=0.05, level=0.9,
                              hidden=None, n_conditions=None) -> IntegrationModes:
    """Eigenvalues near 1 and integration dimensionality at every context fixed point.

    Parameters
    ----------
    fps : FixedPoints
        Points of one or more context-integration networks (select one context
        with ``fps.for_condition(c)``, the used points with
        ``fps[idx[idx >= 0]]`` from :func:`nearest_points`).
    readout, channel, horizon, hidden
        As in :func:`mode_readouts`.
    tol : float, default 0.05
        See :func:`count_near_one`.
    level : float, default 0.9
        See :func:`modes_needed`.
    n_conditions : int, optional
        Conditions in the summary (default: the largest in ``fps`` + 1).

    Returns
    -------
    IntegrationModes

    Examples
    --------
    >>> res = compute_integration_modes(fps, population, np.arange(2), horizon=task.n_time)
    >>> res.per_network()["n_modes"]  # vanilla ≈ 1, gated networks more
    """
    curve, full = integration_curve(fps, readout, channel, horizon=horizon, hidden=hidden)
    n_modes = modes_needed(curve, level)
    return IntegrationModes(
        n_near_one=count_near_one(fps.eigvals, tol), curve=curve, full=full, n_modes=n_modes,
        one_mode=curve[:, 1] if curve.shape[1] > 1 else np.full(len(curve), np.nan),
        network=np.asarray(fps.network), condition=np.asarray(fps.condition),
        n_networks=int(fps.n_networks), n_conditions=_n_conditions(fps, n_conditions),
        tol=tol, level=level, horizon=int(horizon))
