"""Dynamical similarity analysis (DSA; Ostrow, Eisen, Kozachkov, Fiete, NeurIPS 2023).

Each network's trajectories ``(n_trials, n_time, n_units)`` are delay-embedded
in a Hankel matrix; :func:`dmd` fits a linear operator ``A`` (``u[t+1] = A u[t]``)
in the leading singular coordinates of that matrix (HAVOK-style DMD). Two
operators are compared up to an orthogonal change of basis,
``max_C tr(A_x^T C A_y C^T) / (||A_x|| ||A_y||)`` over orthogonal ``C``
(Procrustes over vector fields), or by the optimal transport between their
eigenvalues. At full rank, the same trajectories seen through any invertible
observation map give orthogonally similar operators (distance 0). The same
dynamics visited with a different state distribution (other initial
conditions) give similar, not orthogonally similar, operators: compare networks
on the same inputs.

:func:`operator_distances` solves the orthogonal problem for all pairs at once:
Riemannian gradient ascent with momentum on O(n) (a polar retraction by a
Newton-Schulz step), batched over pairs and starts, from both determinant
signs: two spectral starts (the symmetric parts' eigenbases, signs chosen by
the rest of the operators), the identity and a row swap (the reference's two
starts), and random rotations shared by all pairs (from ``seed``). After
``_EXPLORE`` steps only each pair's best ``_KEEP`` starts continue until the
gradient vanishes (float32), then the best is polished in float64. The value
reported is that of an exactly orthogonal ``C`` (a polar factor), so a
distance is never below the one that ``C`` attains.
"""
from __future__ import annotations

import sys

import numpy as np

from rnn_dyn._checks import check_choice, check_positive
from rnn_dyn.dsa_fit import as_segments, fit_dmd

KINDS = ("angular", "euclidean", "wasserstein")
N_RESTARTS = 16
N_ITERS = 500
_EXPLORE = 40  # steps with every start, before keeping each pair's best _KEEP
_KEEP = 2
_STEP, _MOMENTUM, _CHECK = 0.35, 0.8, 20  # step: _STEP / (||A||_2 ||B||_2)
_GTOL32, _GTOL, _POLISH = 1e-5, 1e-9, 100  # float32 phases, then a float64 polish
_CHUNK = 1 << 22  # entries of one (pairs, restarts, n, n) array per chunk


def _T(M):
    return np.swapaxes(M, -1, -2)


def _check_options(n_delays, rank, kind):
    check_positive("n_delays", n_delays, integer=True)
    if rank is not None:
        check_positive("rank", rank, integer=True)
    check_choice("kind", kind, KINDS)


def dmd(X, n_delays=1, rank=None, name="X"):
    """DMD operator of delay-embedded trajectories (the HAVOK fit of DSA).

    Per trial (or segment), the Hankel matrix stacks ``n_delays`` consecutive
    states (interval 1): row ``t`` is ``[x_t, x_{t+1}, ..., x_{t+n_delays-1}]``.
    The rows of all trials are stacked and decomposed, ``H = U S W^T``; on the
    first ``rank`` columns of ``U`` (rows kept per trial), ``A`` solves the ridge
    least squares (1e-8) from ``U[t]`` to ``U[t+1]`` within trials, never across
    them. The data are not centered (as in the reference package): a constant
    offset is one more mode. :func:`rnn_dyn.dsa_fit.fit_dmd` returns the whole
    model (basis and modes, for prediction).

    Parameters
    ----------
    X : array_like, shape (n_trials, n_time, n_units), (n_time, n_units), or a list of segments
        A list of 2-D ``(n_time_i, n_units)`` arrays holds segments of different
        lengths (e.g. :func:`rnn_dyn.dsa_fit.constant_input_segments`). Needs
        ``n_time > n_delays`` in every one. Flattened ``trials*time`` rows (e.g.
        :func:`rnn_dyn.population.probe_representation`) must be reshaped first,
        or steps across trial boundaries are fitted as dynamics.
    n_delays : int
    rank : int, optional
        Columns of ``U`` kept, at most ``n_units * n_delays``; fewer when the
        Hankel matrix has lower numerical rank. Default: all non-null ones.
    name : str
        How errors refer to ``X``.

    Returns
    -------
    A : ndarray, shape (r, r)
        ``r <= rank``; acts on column vectors, ``u[t+1] ~ A u[t]``.

    Raises
    ------
    ValueError
        On bad shapes, non-finite values, ``n_time <= n_delays``, a ``rank``
        above ``n_units * n_delays``, or data that never vary.
    """
    segments = as_segments(X, name)
    check_positive("n_delays", n_delays, integer=True)
    if rank is not None:
        check_positive("rank", rank, integer=True)
        width = segments[0].shape[1] * n_delays
        if rank > width:
            raise ValueError(f"rank must be <= n_units * n_delays ({width}); got {rank}.")
    return fit_dmd(segments, n_delays, rank, name).A


# --------------------------------------------- the orthogonal alignment
def _polar_step(C):
    """One Newton-Schulz step towards the nearest orthogonal matrix (same det sign)."""
    return 1.5 * C - 0.5 * C @ (_T(C) @ C)


def _starts(A, B, n_restarts, rng):
    """Starts (P, R, n, n): two spectral ones, the identity and a row swap (the
    reference's two), then random rotations ``Q`` and ``Q`` times the swap."""
    n = A.shape[-1]
    _, U = np.linalg.eigh(A + _T(A))
    _, V = np.linalg.eigh(B + _T(B))
    # C = U D V^T maps B onto A if U^T A U = D (V^T B V) D: choose the signs D
    # that best agree on all entries (leading eigenvector of their products)
    W = (_T(U) @ A @ U) * (_T(V) @ B @ V)
    w, E = np.linalg.eigh(W + _T(W))
    lead = E[..., -1]
    d = np.where(lead >= 0, 1.0, -1.0)
    flip = d.copy()  # the other determinant sign: flip the least certain sign
    flip[np.arange(len(d)), np.argmin(np.abs(lead), axis=-1)] *= -1
    spectral = U[:, None] * np.stack([d, flip], 1)[:, :, None, :] @ _T(V)[:, None]
    n_fixed = max(0, n_restarts - 2)
    Q = np.linalg.qr(rng.standard_normal((max((n_fixed + 1) // 2, 1), n, n)))[0]
    Q[np.linalg.det(Q) < 0, :, 0] *= -1  # rotations, then each also reflected
    Q[0] = np.eye(n)
    swap = np.eye(n)[np.r_[1, 0, 2:n]] if n > 1 else -np.eye(1)  # det -1, as the reference
    fixed = np.stack([Q, Q @ swap], 1).reshape(-1, n, n)[:n_fixed]
    fixed = np.broadcast_to(fixed, (len(A),) + fixed.shape)
    return np.concatenate([spectral, fixed], axis=1)[:, :n_restarts]


def _ascend(A, B, C, n_steps, step, gtol):
    """Gradient ascent of ``<A, C B C^T>`` from ``C``; A, B, C (Q, n, n), ``C`` orthogonal.

    ``step`` (Q,) scales the gradient; a step never moves ``C`` by more than 0.5
    (operator norm), which keeps the Newton-Schulz retraction convergent. Every
    ``_CHECK`` steps the (pair, start)s whose gradient is below ``gtol`` stop.
    Returns the final ``C``, orthogonal to about ``gtol``.
    """
    C, velocity = C.copy(), np.zeros_like(C)
    active, done = np.arange(len(C)), 0
    while done < n_steps and active.size:
        a, b, c, v = A[active], B[active], C[active], velocity[active]
        eta = step[active, None, None].astype(C.dtype)
        for _ in range(min(_CHECK, n_steps - done)):
            M = c @ b @ _T(c)
            K = a @ _T(M) + _T(a) @ M  # (gradient) C^T
            omega = K - _T(K)  # skew: the Riemannian gradient, left-trivialized
            v = _MOMENTUM * v + omega
            size = eta * np.sqrt(np.einsum("qij,qij->q", v, v))[:, None, None]
            c = _polar_step(c + eta / np.maximum(size / 0.5, 1) * v @ c)
        C[active], velocity[active] = c, v
        active = active[np.max(np.abs(omega), axis=(1, 2)) >= gtol]
        done += _CHECK
    return C


def _orthogonal_value(A, B, C):
    """``C`` made exactly orthogonal (its polar factor; same determinant sign) and
    its value ``<A, C B C^T>``, in float64."""
    U, _, Vt = np.linalg.svd(C.astype(np.float64))
    C = U @ Vt
    return C, np.einsum("qij,qij->q", A, C @ B @ _T(C))


def _best_alignment(A, B, n_restarts, n_iters, rng):
    """``max_C <A, C B C^T>`` over orthogonal ``C`` per pair: A, B (P, n, n), unit norm.

    All starts for ``_EXPLORE`` steps and each pair's best ``_KEEP`` to the end,
    in float32; then the best one polished in float64.
    """
    P, R, n = len(A), n_restarts, A.shape[-1]
    step = _STEP / (np.linalg.norm(A, 2, axis=(1, 2)) * np.linalg.norm(B, 2, axis=(1, 2)))
    A32, B32 = A.astype(np.float32), B.astype(np.float32)
    C = _starts(A, B, R, rng).reshape(P * R, n, n).astype(np.float32)
    C = _ascend(np.repeat(A32, R, 0), np.repeat(B32, R, 0), C, min(_EXPLORE, n_iters),
                np.repeat(step, R), _GTOL32)
    C, values = _orthogonal_value(np.repeat(A, R, 0), np.repeat(B, R, 0), C)
    keep = np.argsort(-values.reshape(P, R), axis=1)[:, :min(_KEEP, R)]
    keep = (keep + R * np.arange(P)[:, None]).ravel()
    R = keep.size // P
    if n_iters > _EXPLORE:
        C = _ascend(np.repeat(A32, R, 0), np.repeat(B32, R, 0), C[keep].astype(np.float32),
                    n_iters - _EXPLORE, np.repeat(step, R), _GTOL32)
        C, values = _orthogonal_value(np.repeat(A, R, 0), np.repeat(B, R, 0), C)
    else:
        C, values = C[keep], values[keep]
    best = np.argmax(values.reshape(P, R), axis=1) + R * np.arange(P)
    C = _ascend(A, B, C[best], _POLISH, step, _GTOL)
    return np.clip(_orthogonal_value(A, B, C)[1], -1.0, 1.0)


def _wasserstein(eig_a, eig_b):
    """Squared 2-Wasserstein distance between two uniform distributions on n eigenvalues each:
    the mean squared distance of the optimal matching."""
    from scipy.optimize import linear_sum_assignment

    cost = np.abs(eig_a[:, None] - eig_b[None, :]) ** 2
    rows, cols = linear_sum_assignment(cost)
    return cost[rows, cols].mean()


def _pad(As, n):
    out = np.zeros((len(As), n, n))
    for i, A in enumerate(As):
        out[i, :len(A), :len(A)] = A
    return out


def operator_distances(As, Bs=None, kind="angular", seed=0, n_restarts=N_RESTARTS,
                       n_iters=N_ITERS, progress=False):
    """DSA distances between DMD operators, all pairs batched.

    Operators of different sizes are zero-padded to the largest (as the
    reference package does). For ``"angular"`` and ``"euclidean"``, one batched
    optimization finds ``s = max_C tr(A^T C B C^T) / (||A|| ||B||)`` over orthogonal
    ``C`` for every pair (see the module notes); then

    - ``"angular"``: ``arccos(s)``, radians in [0, pi];
    - ``"euclidean"``: ``||A/||A|| - C B C^T/||B|| ||_F = sqrt(2 - 2 s)``, in [0, 2];
    - ``"wasserstein"``: the squared 2-Wasserstein distance between the
      eigenvalues of the raw (unnormalized) operators as uniform distributions
      on the complex plane (weight ``1/n`` each): the *mean* matched squared
      distance ``min_sigma (1/n) sum_i |l_i - m_sigma(i)|^2``, by
      :func:`scipy.optimize.linear_sum_assignment`. The reference package
      reports ``n`` times this (the sum).

    Parameters
    ----------
    As : sequence of ndarray, each (r_i, r_i)
    Bs : sequence of ndarray, optional
        When given, the rectangular distances of ``As`` (rows) to ``Bs``.
    kind : {"angular", "euclidean", "wasserstein"}
    seed : int
        Seed of the random starts; the result is deterministic given it.
    n_restarts : int
        Starts per pair (at least 2; both determinant signs are always covered).
    n_iters : int
        Most gradient steps.
    progress : bool
        Progress bar on stderr over chunks of pairs.

    Returns
    -------
    ndarray, shape (len(As), len(As)) or (len(As), len(Bs))
        Square results are symmetric with a zero diagonal.
    """
    from tqdm.auto import tqdm

    check_choice("kind", kind, KINDS)
    check_positive("n_restarts", n_restarts, integer=True)
    check_positive("n_iters", n_iters, integer=True)
    square = Bs is None
    As = [np.asarray(A, np.float64) for A in As]
    Bs = As if square else [np.asarray(B, np.float64) for B in Bs]
    for name, group in (("As", As), ("Bs", Bs)):
        for i, A in enumerate(group):
            if A.ndim != 2 or A.shape[0] != A.shape[1] or A.size == 0:
                raise ValueError(f"{name}[{i}] must be a square 2-D operator; got shape {A.shape}.")
    if not As or not Bs:
        raise ValueError("operator_distances needs at least one operator on each side.")
    na, nb = len(As), len(Bs)
    rows, cols = np.triu_indices(na, 1) if square else np.indices((na, nb)).reshape(2, -1)
    D = np.zeros((na, nb))
    if kind == "wasserstein":
        n = max(len(A) for A in As + Bs)
        eigs = [np.pad(np.linalg.eigvals(A), (0, n - len(A))) for A in As]
        eigs_b = eigs if square else [np.pad(np.linalg.eigvals(B), (0, n - len(B))) for B in Bs]
        D[rows, cols] = [_wasserstein(eigs[i], eigs_b[j]) for i, j in zip(rows, cols)]
    else:
        n = max(len(A) for A in As + Bs)
        norms = [np.linalg.norm(A) for A in As + Bs]
        if min(norms) == 0:
            raise ValueError("operators must not be all zeros for the angular or euclidean kind.")
        PA = _pad([A / np.linalg.norm(A) for A in As], n)
        PB = PA if square else _pad([B / np.linalg.norm(B) for B in Bs], n)
        rng = np.random.default_rng(seed)
        step = max(1, _CHUNK // (max(n_restarts, 2) * n * n))
        for lo in tqdm(range(0, len(rows), step), desc="dsa pair chunks", disable=not progress,
                       file=sys.stderr, leave=False):
            i, j = rows[lo:lo + step], cols[lo:lo + step]
            sim = _best_alignment(PA[i], PB[j], max(n_restarts, 2), n_iters,
                                  np.random.default_rng(rng.integers(2 ** 63)))
            D[i, j] = np.arccos(sim) if kind == "angular" else np.sqrt(np.maximum(2 - 2 * sim, 0))
    if square:
        D = D + D.T
    return D


def dsa(X, Y, n_delays=1, rank=None, kind="angular", seed=0):
    """Dynamical similarity analysis of two sets of trajectories.

    Fits :func:`dmd` to each and compares the operators with
    :func:`operator_distances`.

    Parameters
    ----------
    X, Y : array_like, shapes (n_trials, n_time, n_units_x) and (n_trials_y, n_time_y, n_units_y)
        Or 2-D ``(n_time, n_units)`` for one trial, or lists of 2-D segments
        (:func:`dmd`); trials, time and widths may differ.
    n_delays : int
    rank : int, optional
        Columns kept by :func:`dmd`; both operators use the same value.
    kind : {"angular", "euclidean", "wasserstein"}
    seed : int

    Returns
    -------
    float >= 0
        0 for conjugate dynamics: ``Y = X M`` with an invertible ``M`` at full rank.

    Examples
    --------
    >>> t = np.arange(50)
    >>> X = np.stack([np.cos(0.3 * t), np.sin(0.3 * t)], -1)
    >>> round(dsa(X, X @ np.array([[2.0, 1.0], [0.0, 1.0]])), 6)
    0.0
    """
    _check_options(n_delays, rank, kind)
    A, B = dmd(X, n_delays, rank, "X"), dmd(Y, n_delays, rank, "Y")
    return float(operator_distances([A], [B], kind, seed)[0, 0])


def pairwise_dsa(reps, reps_b=None, n_delays=1, rank=None, kind="angular", seed=0,
                 progress=None):
    """DSA distances between all pairs of networks: each DMD once, pairs batched.

    What :func:`rnn_dyn.similarity.pairwise_distances` runs for ``metric="dsa"``.

    Parameters
    ----------
    reps : iterable of array_like, each (n_trials, n_time, n_units_i)
        Or each 2-D ``(n_time, n_units_i)`` for one trial; an ndarray
        ``(n_networks, n_trials, n_time, n_units)`` is read network by network.
    reps_b : same, optional
        When given, the rectangular distances of ``reps`` to ``reps_b``.
    n_delays, rank, kind, seed
        As in :func:`dsa`.
    progress : bool or None
        Progress bars on stderr; None shows them for 100 networks or more.

    Returns
    -------
    ndarray, shape (n_networks, n_networks) or (n_networks, n_networks_b)
    """
    from tqdm.auto import tqdm

    _check_options(n_delays, rank, kind)

    def operators(r, label):
        if isinstance(r, (str, bytes)) or not hasattr(r, "__iter__"):
            raise TypeError(f"{label} must be a list/iterable of 2-D or 3-D arrays; "
                            f"got {type(r).__name__}.")
        total = len(r) if hasattr(r, "__len__") else None
        show = progress if progress is not None else (total or 0) >= 100
        out = [dmd(X, n_delays, rank, f"{label}[{i}]") for i, X in enumerate(
            tqdm(r, total=total, desc="dmd", disable=not show, file=sys.stderr, leave=False))]
        if not out:
            raise ValueError(f"{label} must contain at least one representation; got none.")
        return out, show

    As, show = operators(reps, "reps")
    Bs = None if reps_b is None else operators(reps_b, "reps_b")[0]
    return operator_distances(As, Bs, kind, seed, progress=show)
