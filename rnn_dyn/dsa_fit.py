"""DSA's DMD models and how well they fit: segments, prediction R², the (n_delays, rank) sweep.

DSA (Ostrow et al. 2023) fits a linear operator to delay-embedded trajectories
(HAVOK-style DMD, :func:`fit_dmd`) and compares operators (:mod:`rnn_dyn.dsa`).
Its authors choose the number of delays and the rank by how well the DMD model
predicts held-out data; this module does the same, with a rule written here:

- the data are *autonomous segments*: stretches of a trial over which the input
  is constant (:func:`constant_input_segments`), so one map drives every
  transition in a segment; segments are never joined, in the Hankel matrix or
  in the transitions;
- each network's segments are projected on its leading principal directions
  (uncentered, as DMD's data are; :func:`project_segments`), which bounds the
  Hankel matrix's width for wide networks;
- :func:`sweep_dmd` fits every ``(n_delays, rank)`` on the training segments
  of each network and scores, on held-out segments, the R² of the one-step and
  of the ``horizon``-step prediction (each state predicted from the true delay
  vector ``horizon`` steps earlier, iterating the operator);
- :func:`choose_dmd` picks the smallest model (fewest ranks, then fewest
  delays) whose mean multi-step R² is within ``tolerance`` (relative) of the
  best one.

R² pools all coordinates: ``1 - sum(residual^2) / sum((y - mean_t y)^2)``, the
mean taken per coordinate over the held-out states.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from rnn_dyn._checks import as_real_array, check_positive

RIDGE = 1e-8  # ridge of the DMD least squares
NULL_TOL = 1e-10  # squared singular values below this fraction of the largest are null


def as_segments(X, name="X") -> list:
    """``X`` as a list of float64 ``(n_time_i, n_units)`` segments.

    Accepts one trial ``(n_time, n_units)``, trials ``(n_trials, n_time, n_units)``,
    or a list of 2-D segments of different lengths (same ``n_units``).
    """
    if isinstance(X, (list, tuple)) and X and all(np.ndim(s) == 2 for s in X):
        segments = [as_real_array(s, f"{name}[{i}]").astype(np.float64, copy=False) for i, s in enumerate(X)]
    else:
        arr = as_real_array(X, name)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or min(arr.shape) < 1:
            raise ValueError(f"{name} must be a 3-D array (n_trials, n_time, n_units), 2-D (n_time, n_units) "
                             f"for one trial, or a list of 2-D segments; got shape {np.shape(X)}.")
        segments = list(arr.astype(np.float64, copy=False))
    widths = {s.shape[1] for s in segments}
    if len(widths) != 1 or min(s.shape[0] for s in segments) < 1:
        raise ValueError(f"{name}'s segments must be non-empty with one width; got shapes "
                         f"{sorted({s.shape for s in segments})}.")
    bad = sum(s.size - np.count_nonzero(np.isfinite(s)) for s in segments)
    if bad:
        raise ValueError(f"{name} must contain only finite values; got {bad} NaN/inf entries.")
    return segments


def constant_input_segments(inputs, min_length) -> list:
    """Where the input is constant: ``(trial, start, stop)`` with ``states[trial, start:stop]`` a segment.

    With ``states[t] = F(states[t-1], inputs[t])``, a run ``inputs[a] = ... = inputs[b]``
    makes ``states[a-1], ..., states[b]`` a trajectory of the one map ``F(., inputs[a])``
    (from ``states[a]`` when ``a = 0``). Segments shorter than ``min_length`` are dropped.

    Parameters
    ----------
    inputs : array_like, shape (n_trials, n_time, n_inputs)
    min_length : int
        Fewest states a segment keeps (DSA needs more than ``n_delays``).

    Returns
    -------
    list of (int, int, int)
    """
    check_positive("min_length", min_length, integer=True)
    x = np.asarray(inputs)
    if x.ndim != 3:
        raise ValueError(f"inputs must be a 3-D array (n_trials, n_time, n_inputs); got shape {x.shape}.")
    out = []
    for k, trial in enumerate(x):
        change = np.flatnonzero(np.any(trial[1:] != trial[:-1], axis=1)) + 1
        for a, b in zip(np.r_[0, change], np.r_[change, len(trial)]):  # inputs[a:b] constant
            start = max(a - 1, 0)
            if b - start >= min_length:
                out.append((k, int(start), int(b)))
    return out


def project_segments(segments, n_pcs):
    """Segments in their leading ``n_pcs`` principal directions (uncentered; all when ``n_pcs`` is None
    or at least the width). Exact (a rotation) when the data span no more than ``n_pcs`` directions."""
    if n_pcs is None or n_pcs >= segments[0].shape[1]:
        return segments
    stacked = np.concatenate(segments)
    _, vectors = np.linalg.eigh(stacked.T @ stacked)
    basis = vectors[:, ::-1][:, :n_pcs]
    return [s @ basis for s in segments]


def probe_segments(states, inputs, min_length, n_pcs) -> list:
    """One network's DSA data: its states ``[n_trials, n_time, n_units]`` on the probe ``inputs`` cut
    into constant-input segments of ``min_length`` or more states (:func:`constant_input_segments`),
    projected on its leading ``n_pcs`` principal directions (:func:`project_segments`)."""
    states = np.asarray(states).reshape(len(inputs), np.shape(inputs)[1], -1)
    return project_segments([states[k, a:b] for k, a, b in constant_input_segments(inputs, min_length)], n_pcs)


def _hankel(segments, n_delays, name):
    """Delay-embedded rows of every segment, stacked, and each segment's row count."""
    short = [i for i, s in enumerate(segments) if len(s) <= n_delays]
    if short:
        raise ValueError(f"{name} needs n_time > n_delays ({n_delays}) in every segment to have a transition; "
                         f"got n_time {len(segments[short[0]])} in segment {short[0]}.")
    blocks = [np.lib.stride_tricks.sliding_window_view(s, n_delays, axis=0) for s in segments]  # (rows, n, d)
    rows = [len(b) for b in blocks]
    H = np.concatenate([np.swapaxes(b, 1, 2).reshape(len(b), -1) for b in blocks])
    return H, rows


def _transitions(rows):
    """Indices of consecutive row pairs within segments (never across)."""
    ends = np.cumsum(rows)
    before = np.concatenate([np.arange(e - r, e - 1) for r, e in zip(rows, ends)])
    return before, before + 1


@dataclass(frozen=True)
class DMDFit:
    """A DMD model: ``v = h @ basis`` (``h`` a delay row), ``v[t+1] = A v[t]``, ``h ~ v @ modes``."""

    A: np.ndarray
    basis: np.ndarray
    modes: np.ndarray
    n_delays: int


class _Hankel:
    """The SVD of one set of segments' Hankel matrix, reused for every rank."""

    def __init__(self, segments, n_delays, name="X"):
        H, self.rows = _hankel(segments, n_delays, name)
        if len(H) > 2 * H.shape[1]:  # tall: the eigenvectors of the small Gram matrix are W (much faster)
            s2, W = np.linalg.eigh(H.T @ H)
            s2, W = s2[::-1], W[:, ::-1]
            s2[s2 < 0] = 0
        else:
            _, s, Wt = np.linalg.svd(H, full_matrices=False)
            s2, W = s ** 2, Wt.T
        if s2[0] == 0:
            raise ValueError(f"{name} is all zeros; DMD needs activity.")
        self.n_nonnull = int(np.count_nonzero(s2 > NULL_TOL * s2[0]))
        self.s, self.Wt, self.n_delays = np.sqrt(s2[:self.n_nonnull]), W[:, :self.n_nonnull].T, n_delays
        self.H = H

    def fit(self, rank=None) -> DMDFit:
        r = self.n_nonnull if rank is None else min(self.n_nonnull, rank)
        U = self.H @ (self.Wt[:r].T / self.s[:r])  # the left singular vectors
        before, after = _transitions(self.rows)
        X0, X1 = U[before], U[after]
        A = np.linalg.solve(X0.T @ X0 + RIDGE * np.eye(r), X0.T @ X1).T
        return DMDFit(A, self.Wt[:r].T / self.s[:r], self.s[:r, None] * self.Wt[:r], self.n_delays)


def fit_dmd(segments, n_delays=1, rank=None, name="X") -> DMDFit:
    """The DMD model of ``segments`` (see :func:`rnn_dyn.dsa.dmd`, which returns its ``A``)."""
    return _Hankel(as_segments(segments, name), n_delays, name).fit(rank)


def prediction_r2(model: DMDFit, segments, steps) -> float:
    """R² of predicting each state ``steps`` ahead from the true delay row before it (NaN without any).

    Parameters
    ----------
    model : DMDFit
    segments : list of ndarray, each (n_time_i, n_units)
        Held-out data, in the coordinates the model was fitted in.
    steps : int
        1 for one-step prediction.
    """
    d, truth, guess = model.n_delays, [], []
    step = np.linalg.matrix_power(model.A.T, steps)
    for s in segments:
        rows = len(s) - d + 1 - steps
        if rows < 1:
            continue
        H, _ = _hankel([s[:d - 1 + rows]], d, "segment")
        predicted = (H @ model.basis @ step @ model.modes)[:, -s.shape[1]:]  # the newest state of the row
        truth.append(s[d - 1 + steps: d - 1 + steps + rows])
        guess.append(predicted)
    if not truth:
        return float("nan")
    y, yhat = np.concatenate(truth), np.concatenate(guess)
    total = np.sum((y - y.mean(0)) ** 2)
    return float(1 - np.sum((y - yhat) ** 2) / total) if total > 0 else float("nan")


def persistence_r2(segments, steps) -> float:
    """R² of the baseline that predicts no change, ``x[t + steps] = x[t]`` (what a fit should beat)."""
    pairs = [(s[steps:], s[:-steps]) for s in segments if len(s) > steps]
    if not pairs:
        return float("nan")
    y, yhat = (np.concatenate(p) for p in zip(*pairs))
    total = np.sum((y - y.mean(0)) ** 2)
    return float(1 - np.sum((y - yhat) ** 2) / total) if total > 0 else float("nan")


def split_segments(segments, holdout):
    """Every ``holdout``-th segment (the last of each group) held out, the rest for fitting."""
    test = [s for i, s in enumerate(segments) if i % holdout == holdout - 1]
    train = [s for i, s in enumerate(segments) if i % holdout != holdout - 1]
    if not test or not train:
        raise ValueError(f"need at least {holdout} segments to hold one out of every {holdout}; "
                         f"got {len(segments)}.")
    return train, test


def sweep_dmd(networks, n_delays, ranks, horizon, holdout=4) -> dict:
    """One- and ``horizon``-step R² on held-out segments for every (network, n_delays, rank).

    Parameters
    ----------
    networks : list of list of ndarray
        Each network's segments (already projected, :func:`project_segments`).
    n_delays, ranks : sequence of int
    horizon : int
        Steps ahead of the multi-step prediction.
    holdout : int
        One segment in ``holdout`` is held out (:func:`split_segments`).

    Returns
    -------
    dict
        ``one_step``, ``multi_step`` ``[n_networks, len(n_delays), len(ranks)]`` (NaN where
        ``rank > n_delays * width``), ``persistence`` ``[n_networks]`` (the ``horizon``-step R² of
        predicting no change, :func:`persistence_r2`), ``n_delays``, ``ranks``.
    """
    one = np.full((len(networks), len(n_delays), len(ranks)), np.nan)
    multi, persistence = one.copy(), np.full(len(networks), np.nan)
    for i, segments in enumerate(networks):
        train, test = split_segments(segments, holdout)
        persistence[i] = persistence_r2(test, horizon)
        width = train[0].shape[1]
        for j, d in enumerate(n_delays):
            hankel = _Hankel(train, d, f"network {i}")
            for k, r in enumerate(ranks):
                if r > d * width:
                    continue
                model = hankel.fit(r)
                one[i, j, k] = prediction_r2(model, test, 1)
                multi[i, j, k] = prediction_r2(model, test, horizon)
    return {"one_step": one, "multi_step": multi, "persistence": persistence, "n_delays": np.asarray(n_delays),
            "ranks": np.asarray(ranks)}


def mean_over_networks(a):
    """Mean over networks; NaN (quietly) where none has a value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, 0)


def choose_dmd(sweep, tolerance=0.01) -> dict:
    """The smallest model within ``tolerance`` (relative) of the best mean multi-step R².

    "Smallest": the fewest ranks (the size of the operators DSA compares), then the fewest delays.

    Returns
    -------
    dict
        ``n_delays``, ``rank``, ``r2_one_step``, ``r2_multi_step`` (means over the networks),
        ``best_r2_multi_step``, ``r2_persistence`` (the no-change baseline's multi-step R²).
    """
    multi, one = mean_over_networks(sweep["multi_step"]), mean_over_networks(sweep["one_step"])
    if not np.isfinite(multi).any():
        raise ValueError("no (n_delays, rank) of the sweep has a finite multi-step R²; segments too short?")
    best = np.nanmax(multi)
    ok = np.argwhere(multi >= best - tolerance * abs(best))
    j, k = min(ok, key=lambda jk: (sweep["ranks"][jk[1]], sweep["n_delays"][jk[0]]))
    return {"n_delays": int(sweep["n_delays"][j]), "rank": int(sweep["ranks"][k]),
            "r2_one_step": float(one[j, k]), "r2_multi_step": float(multi[j, k]),
            "best_r2_multi_step": float(best),
            "r2_persistence": float(np.nanmean(sweep["persistence"])) if "persistence" in sweep else float("nan")}


def sweep_table(sweep) -> list:
    """The sweep as rows ``{n_delays, rank, r2_one_step, r2_multi_step}`` (means over networks)."""
    multi, one = mean_over_networks(sweep["multi_step"]), mean_over_networks(sweep["one_step"])
    return [{"n_delays": int(d), "rank": int(r), "r2_one_step": float(one[j, k]),
             "r2_multi_step": float(multi[j, k])}
            for j, d in enumerate(sweep["n_delays"]) for k, r in enumerate(sweep["ranks"]) if np.isfinite(multi[j, k])]
