"""Fixed points of recurrent networks: search, polish, classify and linearize (SPEC §4).

:func:`find_fixed_points` finds the states ``h*`` with ``F(h*, x*) = h*`` of a
cell under condition inputs ``x*``, for every member of a population at once:

1. **Search** (one ``tf.function``, float32): Adam minimizes ``q(h) = ½‖F(h, x)
   − h‖²`` from all starts at once; each start has its own learning rate
   (multiplied by ``lr_up`` after a step that lowered ``q``, by ``lr_down``
   after one that raised it) and stops on its own (``q < tol_q``, relative
   change ``|Δq| < tol_dq·q``, or ``max_iters``).  States are projected onto
   a ball around the starts' mean, ``guard_scale`` times the starts' largest
   distance from it, so that no search leaves the region the network visits.
   The starts also run forward ``n_forward`` steps of the map (cheap, batched):
   their ends, at the attractors or on slow manifolds, join the candidates.
2. **Merge and polish** (float64, batched): candidates with ``q >
   tol_polish`` are dropped as stranded; those within ``tol_unique``
   of a lower-``q`` one are merged; those whose search did not converge
   (``q > tol_q``, typically stranded along a slow manifold) are thinned to
   representatives ``merge_radius`` apart.  A trust-region (dogleg) Newton
   method on ``F(h) − h`` polishes the rest
   (:func:`~rnn_dyn.linearization.polish`); a true fixed point reaches ``q <
   tol_exact`` (default 1e-20).
3. **Classify**: ``'fixed'`` (``q <= tol_exact``), ``'slow'`` (a minimum of
   ``q`` that is not a root, ``q <= tol_slow``; a warning says how many of
   them were still improving when ``max_polish`` ran out), otherwise
   discarded; points that left the guard ball, or the range of the states
   the network visits (``region``: its trajectories; by default the starts'
   own range), are discarded as outliers (slow points only, for the
   region); duplicates within ``tol_unique`` are merged, fixed points first.
4. **Linearize** every kept point: ``J = ∂F/∂h``, ``B = ∂F/∂x``, eigenvalues by
   magnitude, right and left eigenvectors, stability (discrete time).

:func:`find_population_fixed_points` does all of it for a trained
:class:`~rnn_dyn.population.Population` on its task: starts sampled from the
networks' own trajectories (:func:`sample_states`), every condition input,
and those trajectories as the ``region``.
"""
from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from rnn_dyn._checks import check_positive, check_range
from rnn_dyn.fixed_point_results import FixedPoints
from rnn_dyn.fixed_point_search import (bridge_starts, condition_ids, forward_function,
                                        merge_candidates, padded, search_function,
                                        unique_per_group)
from rnn_dyn.linearization import cell_sizes, eigendecomposition, make_map, polish
from rnn_dyn.tasks import Task, get_task


# -- inputs ---------------------------------------------------------------------
def sample_states(states, n, noise=0.0, rng=None):
    """Sample ``n`` states from trajectories, per network, plus Gaussian noise.

    Parameters
    ----------
    states : array_like [n_networks, n_trials, n_time, n_state] or [n_trials, n_time, n_state]
    n : int
        Samples per network (drawn without replacement when enough states exist).
    noise : float
        Standard deviation of the isotropic Gaussian noise added to each sample.
    rng : numpy.random.Generator or int, optional
        Source of randomness (an int seeds one; default seed 0).

    Returns
    -------
    ndarray [n_networks, n, n_state] or [n, n_state], float32
    """
    states = np.asarray(states, np.float32)
    if states.ndim not in (3, 4):
        raise ValueError("states must have shape [n_networks, n_trials, n_time, n_state] or "
                         f"[n_trials, n_time, n_state]; got shape {states.shape}.")
    check_positive("n", n, integer=True)
    check_range("noise", noise, 0.0, np.inf)
    if rng is None or isinstance(rng, (int, np.integer)):
        rng = np.random.default_rng(0 if rng is None else int(rng))
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or an int; got {type(rng).__name__}.")
    flat = states.reshape((states.shape[0] if states.ndim == 4 else 1, -1, states.shape[-1]))
    picks = [flat[i][rng.choice(flat.shape[1], n, replace=n > flat.shape[1])] for i in range(len(flat))]
    out = np.stack(picks) + noise * rng.standard_normal((len(flat), n, flat.shape[-1]))
    out = out.astype(np.float32)
    return out if states.ndim == 4 else out[0]


def _check_inputs(cell, x_cond, h_init):
    """Population-shaped float64 arrays ``h [P, B, n]``, ``x [P, B, m]`` and the map."""
    h, x = np.asarray(h_init, np.float64), np.asarray(x_cond, np.float64)
    n_networks, n_state, n_inputs = cell_sizes(cell, h, x)
    if h.ndim == 2:
        h = h[None]
    if h.ndim != 3 or h.shape[0] != n_networks or h.shape[1] == 0:
        raise ValueError(f"h_init must have shape [n_networks={n_networks}, n_starts, n_state] "
                         f"(or [n_starts, n_state] for one network); got {np.shape(h_init)}.")
    if h.shape[-1] != n_state:
        raise ValueError(f"h_init must have n_state={n_state} values per state; got {h.shape[-1]}.")
    if not np.all(np.isfinite(h)):
        raise ValueError("h_init must be finite; it holds NaN or inf.")
    n_starts = h.shape[1]
    if x.ndim == 1 or (x.ndim == 2 and x.shape[0] == 1):
        x = np.broadcast_to(x.reshape(1, 1, -1), (n_networks, n_starts, x.shape[-1]))
    elif x.ndim == 2 and x.shape[0] == n_starts:
        x = np.broadcast_to(x[None], (n_networks,) + x.shape)
    if x.ndim != 3 or x.shape[:2] != (n_networks, n_starts) or x.shape[-1] != n_inputs:
        raise ValueError(f"x_cond must have shape [n_inputs={n_inputs}], [n_starts={n_starts}, "
                         f"n_inputs] or [n_networks={n_networks}, n_starts, n_inputs]; "
                         f"got {np.shape(x_cond)}.")
    if not np.all(np.isfinite(x)):
        raise ValueError("x_cond must be finite; it holds NaN or inf.")
    return make_map(cell, n_inputs, n_state), np.ascontiguousarray(h), np.ascontiguousarray(x)


def find_fixed_points(cell, x_cond, h_init, *, tol_q=1e-10, tol_dq=1e-6, max_iters=2000,
                      lr=0.1, lr_up=1.05, lr_down=0.5, guard_scale=1.5, tol_exact=1e-20,
                      tol_slow=1e-6, max_polish=100, tol_unique=1e-3, n_forward=1000,
                      merge_radius=0.1, max_slow=128, n_bridge=64, region="starts",
                      region_margin=0.05, tol_polish=1e-4) -> FixedPoints:
    """Find the fixed and slow points of a cell (every population member at once).

    Parameters
    ----------
    cell : PopulationCell, keras RNN cell or callable
        A population cell (``n_networks`` members), any built Keras RNN cell
        (called as ``cell(x, states)``; multi-state cells are analysed in the
        concatenated state, ``[c; h]`` for ``keras.layers.LSTMCell``), or a
        callable ``F(h, x) -> h_next`` on ``[batch, n_state]``/``[batch,
        n_inputs]`` tensors that accepts float32 and float64.
    x_cond : array_like [n_inputs], [n_starts, n_inputs] or [n_networks, n_starts, n_inputs]
        The condition input: one for all starts, or one per start.
    h_init : array_like [n_networks, n_starts, n_state] or [n_starts, n_state]
        Initial states (see :func:`sample_states`).
    tol_q : float, default 1e-10
        A search stops once ``q < tol_q``.
    tol_dq : float, default 1e-6
        ... or once one step changes ``q`` by less than ``tol_dq * q``.
    max_iters : int, default 2000
        ... or after ``max_iters`` Adam steps (0 skips the search).
    lr, lr_up, lr_down : float, default 0.1, 1.05, 0.5
        Initial Adam learning rate, and its factor after a step that lowered
        (raised) ``q``.
    guard_scale : float or None, default 1.5
        Searches stay within ``guard_scale`` times the starts' largest distance
        from their mean (per network); points polished outside it are dropped
        as outliers.  ``None`` disables the guard.
    tol_exact : float, default 1e-20
        A point is ``'fixed'`` when its float64 ``q`` is at most this.
    tol_slow : float, default 1e-6
        Points that do not polish to a root (minima of ``q`` above
        ``tol_exact``) are ``'slow'`` when ``q <= tol_slow``, otherwise discarded.
    max_polish : int, default 100
        Trust-region Newton iterations; a warning names the slow points that
        were still improving when they ran out.
    tol_unique : float, default 1e-3
        Points closer than this (Euclidean) under the same network and
        condition input are merged.
    n_forward : int, default 1000
        The starts are also run forward this many steps of the map (float32);
        the ends, at attractors or on slow manifolds, join the candidates.
        0 skips it.
    merge_radius : float or None, default 0.1
        Candidates whose search did not converge (``q > tol_q``: hundreds of
        starts strand along a slow manifold) are polished from representatives
        this far apart (Euclidean), the lowest ``q`` first.  ``None`` polishes
        one per network and condition.
    max_slow : int or None, default 128
        ... and from at most this many of them per network and condition, the
        lowest ``q`` first (``None``: all).  On networks whose memories lie on
        slow manifolds hundreds of representatives remain, and polishing them
        is most of the search's time (see the README).
    n_bridge : int, default 64
        Saddles lie between the attractors, on the slow manifolds that join
        them, where few starts land.  Once the polish has found the stable
        fixed points, ``n_bridge`` random convex combinations of them (per
        network and condition, when there are two or more) and steps of 0.1 to
        0.5 along each one's three slowest eigenvectors are polished too; the
        roots among them join the fixed points (the rest are dropped).  On a
        Keras GRU whose memories lie on slow manifolds this finds the four
        saddles that no search from the trajectories reaches.  0 skips it.
    region : array_like [n_networks, ..., n_state] or [..., n_state], 'starts' or None, default 'starts'
        States the network visits (its trajectories on task trials);
        ``'starts'``: ``h_init`` (the states the caller says the network
        visits); ``None``: no region, every slow point is kept.  Slow
        points outside the per-coordinate range they span, widened by
        ``region_margin`` of that range on each side, are discarded as
        outliers; fixed points are kept wherever they lie (an LSTM's line
        attractor can reach past where trials of finite length take its
        cell state).  Where a gated network's gates saturate (a GRU's update
        gate near 1), ``F(h) ≈ h`` over whole regions no trajectory enters;
        without a region (``None``) a search that strays there is reported
        as a slow point: hundreds of them on a Keras GRU whose memories lie on
        slow manifolds (see the README).  :func:`find_population_fixed_points`
        passes the trajectories its starts come from.
    region_margin : float, default 0.05
    tol_polish : float, default 1e-4
        Search ends with ``q`` above this are stranded far from any fixed or
        slow point and are not polished (they count as discarded).  On relu
        networks Adam stalls near saddles at ``q`` of 1e-6 to 1e-4 (the map is
        piecewise linear), where the polish reaches the root in a few Newton
        steps: on a 64-unit relu LSTM flip-flop network, 7 of its 19 saddles
        are found only from such ends.

    Returns
    -------
    FixedPoints

    Raises
    ------
    TypeError
        ``cell`` is not a cell or callable, or a callable rejects float64.
    ValueError
        Shapes, non-finite values or out-of-range options.

    Examples
    --------
    >>> fps = find_fixed_points(population.cell, task.x_cond[0], sample_states(states, 1024))
    >>> print(fps.summary())
    """
    for name, value in (("tol_q", tol_q), ("tol_dq", tol_dq), ("lr", lr), ("tol_exact", tol_exact),
                        ("tol_slow", tol_slow), ("tol_unique", tol_unique), ("tol_polish", tol_polish)):
        check_positive(name, value)
    check_range("lr_up", lr_up, 1.0, 10.0)
    check_range("lr_down", lr_down, 0.0, 1.0, low_open=True)
    check_range("max_iters", max_iters, 0, 2**31 - 1, integer=True)
    check_range("max_polish", max_polish, 0, 10**6, integer=True)
    check_range("n_forward", n_forward, 0, 2**31 - 1, integer=True)
    check_range("region_margin", region_margin, 0.0, np.inf)
    if merge_radius is not None:
        check_positive("merge_radius", merge_radius)
    if max_slow is not None:
        check_range("max_slow", max_slow, 0, 2**31 - 1, integer=True)
    if guard_scale is not None:
        check_positive("guard_scale", guard_scale)
    if tol_slow < tol_exact:
        raise ValueError(f"tol_slow must be >= tol_exact={tol_exact}; got {tol_slow}.")
    fmap, h, x = _check_inputs(cell, x_cond, h_init)
    n_networks, n_starts, n_state = h.shape
    if isinstance(region, str):
        if region != "starts":
            raise ValueError(f"region must be an array of states, 'starts' or None; got {region!r}.")
        region = h
    bounds = _region_bounds(region, n_networks, n_state, region_margin)

    center = h.mean(axis=1, keepdims=True)
    spread = np.linalg.norm(h - center, axis=-1).max(axis=1)[:, None, None]
    radius = np.where((spread > 0) & (guard_scale is not None), (guard_scale or 1) * spread, np.inf)
    if max_iters > 0:
        params = np.array([lr, lr_up, lr_down, tol_q, tol_dq, 0.9, 0.999, 1e-7], np.float32)
        h1, q1, n_iters = (v.numpy() for v in search_function(fmap)(
            h.astype(np.float32), x.astype(np.float32), center.astype(np.float32),
            radius.astype(np.float32), params,
            tf.constant(max_iters, tf.int32)))
    else:
        h1, q1, n_iters = h, np.zeros(h.shape[:2], np.float32), np.zeros(h.shape[:2], int)

    if n_forward > 0:  # the starts run forward: they reach the attractors and slow manifolds
        hf, qf = (v.numpy() for v in forward_function(fmap)(
            h.astype(np.float32), x.astype(np.float32), tf.constant(n_forward, tf.int32)))
        h1, q1 = np.concatenate([h1, hf], 1), np.concatenate([q1, qf], 1)
        n_iters = np.concatenate([n_iters, np.full(n_iters.shape, n_forward)], 1)
    n_cand = h1.shape[1]  # candidates per network: search ends, then forward ends

    # Flatten to candidates; merge near-duplicates and thin slow ones, polish the rest in float64.
    flat = lambda a: a.reshape((n_networks * a.shape[1],) + a.shape[2:])  # noqa: E731
    twice = lambda a: np.concatenate([a] * (n_cand // n_starts), 1)  # noqa: E731
    network = np.repeat(np.arange(n_networks), n_cand)
    x64, h_init = flat(twice(x)), flat(twice(h))
    condition = condition_ids(x64)
    groups = network * (condition.max() + 1) + condition
    h1_flat, q1_flat = flat(h1).astype(np.float64), np.nan_to_num(flat(q1), nan=np.inf)
    finite = np.all(np.isfinite(h1_flat), -1)
    h1_flat[~finite], q1_flat[~finite] = 0.0, np.inf
    tol_far = tol_polish if max_iters > 0 else np.inf  # searches stranded far from any point
    if bounds is not None:  # unconverged ends where the network never goes: not polished
        away = ~np.all((h1_flat >= bounds[0][network]) & (h1_flat <= bounds[1][network]), -1)
        q1_flat[away & (q1_flat > tol_q)] = np.inf
    n_far = np.bincount(network[q1_flat > tol_far], minlength=n_networks)
    candidates = merge_candidates(h1_flat, q1_flat, groups, tol_unique,
                                  np.inf if merge_radius is None else merge_radius, tol_q,
                                  tol_far=tol_far, max_slow=max_slow)
    idx, mask = padded(candidates, network, n_networks)
    h2, q2, n_polish, converged = polish(fmap, h1_flat[idx], x64[idx], mask, tol_exact, max_polish)
    cand, h2, q2, n_polish = idx[mask], h2[mask], q2[mask], n_polish[mask]
    converged, from_bridge = converged[mask], np.zeros(len(cand), bool)
    if n_bridge > 0 and max_polish > 0:
        roots = np.flatnonzero(q2 <= tol_exact)  # one of each (many starts reach every attractor)
        roots = unique_per_group(h2, roots[np.argsort(q2[roots], kind="stable")], groups[cand], tol_unique)
        jac = _linearize(fmap, h2[roots], x64[cand[roots]], network[cand[roots]], n_networks)[0]
        is_stable = np.all(np.abs(np.linalg.eigvals(jac)) < 1, axis=-1)
        stable = roots[is_stable]
        starts, rows = bridge_starts(h2[stable], groups[cand[stable]], jac[is_stable], n_bridge)
        if len(starts):
            # New candidate rows: the bridge starts, with the input and network of their source.
            src = cand[stable][rows]
            x64, h_init = np.concatenate([x64, x64[src]]), np.concatenate([h_init, starts])
            network, condition = np.concatenate([network, network[src]]), np.concatenate(
                [condition, condition[src]])
            groups = np.concatenate([groups, groups[src]])
            n_iters_flat = np.concatenate([flat(n_iters), np.zeros(len(src), int)])
            new = len(groups) - len(src) + np.arange(len(src))
            bidx, bmask = padded(new, network, n_networks)
            hb, qb, nb, cb = polish(fmap, h_init[bidx], x64[bidx], bmask, tol_exact, max_polish)
            root = qb[bmask] <= tol_exact  # bridges add fixed points only
            cand = np.concatenate([cand, bidx[bmask][root]])
            h2, q2 = np.concatenate([h2, hb[bmask][root]]), np.concatenate([q2, qb[bmask][root]])
            n_polish = np.concatenate([n_polish, nb[bmask][root]])
            converged = np.concatenate([converged, cb[bmask][root]])
            from_bridge = np.concatenate([from_bridge, np.ones(root.sum(), bool)])
            n_iters = n_iters_flat
    n_iters_flat = n_iters if n_iters.ndim == 1 else flat(n_iters)

    # Classify, drop outliers, merge duplicates (fixed points first).
    count = lambda m: np.bincount(network[cand[m]], minlength=n_networks)  # noqa: E731
    fixed, found = q2 <= tol_exact, q2 <= tol_slow
    unconverged = ~converged & found & ~fixed  # slow so far, but q was still falling
    if unconverged.any():
        warnings.warn(f"{unconverged.sum()} search(es) did not converge within max_polish="
                      f"{max_polish} Newton/LM iterations (per network {count(unconverged).tolist()}) "
                      "and are reported as slow points; they may be fixed points: raise "
                      "max_iters or max_polish.", stacklevel=2)
    inside = np.linalg.norm(h2 - center[network[cand], 0], axis=-1) <= radius[network[cand], 0, 0]
    if bounds is not None:  # slow points where the network never goes are outliers
        inside &= fixed | np.all((h2 >= bounds[0][network[cand]]) & (h2 <= bounds[1][network[cand]]), -1)
    good = np.flatnonzero(found & inside)
    keep = unique_per_group(h2, good[np.lexsort((q2[good], ~fixed[good]))], groups[cand], tol_unique)
    keep = keep[np.lexsort((q2[keep], ~fixed[keep], condition[cand[keep]], network[cand[keep]]))]
    discarded = count(~(found & inside) & ~from_bridge) + n_far
    cand, h2, q2, n_polish = cand[keep], h2[keep], q2[keep], n_polish[keep]

    jac, jac_x = _linearize(fmap, h2, x64[cand], network[cand], n_networks)
    eigvals, right, left = eigendecomposition(jac)
    magnitude = np.abs(eigvals)
    return FixedPoints(
        hstar=h2, h_init=h_init[cand], x_cond=x64[cand], qstar=q2,
        n_iters=n_iters_flat[cand].astype(int), n_polish=n_polish,
        kind=np.where(q2 <= tol_exact, "fixed", "slow").astype("<U5"), jacobian=jac,
        input_jacobian=jac_x, eigvals=eigvals, right_eigvecs=right, left_eigvecs=left,
        is_stable=np.all(magnitude < 1, axis=-1), n_unstable=np.sum(magnitude > 1, axis=-1),
        network=network[cand], condition=condition[cand], n_networks=n_networks,
        n_starts=np.full(n_networks, n_starts), n_discarded=discarded)


def _region_bounds(region, n_networks, n_state, margin):
    """``(low, high) [n_networks, n_state]``: the range ``region`` spans, widened; or None."""
    if region is None:
        return None
    region = np.asarray(region, np.float64)
    if region.ndim < 2 or region.shape[-1] != n_state or (n_networks > 1 and (
            region.ndim < 3 or region.shape[0] != n_networks)):
        raise ValueError(f"region must have shape [n_networks={n_networks}, ..., n_state={n_state}] "
                         f"(or [..., n_state] for one network); got {region.shape}.")
    flat = region.reshape(n_networks, -1, n_state)
    if flat.shape[1] == 0 or not np.all(np.isfinite(flat)):
        raise ValueError("region must hold at least one state per network, all finite.")
    low, high = flat.min(axis=1), flat.max(axis=1)
    return low - margin * (high - low), high + margin * (high - low)


def _linearize(fmap, h, x, network, n_networks):
    """``J [k, n, n]`` and ``B [k, n, m]`` at points ``h [k, n]`` of the given networks."""
    n, m = fmap.n_state, fmap.n_inputs
    if len(h) == 0:
        return np.zeros((0, n, n)), np.zeros((0, n, m))
    idx, mask = padded(np.arange(len(h)), network, n_networks)
    _, jac, jac_x = fmap.jacobians(tf.constant(h[idx]), tf.constant(x[idx]))
    out, out_x = np.empty((len(h), n, n)), np.empty((len(h), n, m))
    out[idx[mask]], out_x[idx[mask]] = jac.numpy()[mask], jac_x.numpy()[mask]
    return out, out_x


def find_population_fixed_points(population, task, n_starts=1024, seed=0, noise=0.5,
                                 n_trials=128, **options) -> FixedPoints:
    """Fixed points of every member of a population under every condition input of its task.

    Runs the members on ``n_trials`` fresh task trials, samples ``n_starts``
    states per member and condition from those trajectories
    (:func:`sample_states`) and searches them all in one
    :func:`find_fixed_points` call.

    Parameters
    ----------
    population : Population
    task : Task, TaskConfig or str
        Supplies the trials and ``x_cond [n_conditions, n_inputs]``; the
        result's ``condition`` indexes ``task.x_cond``.
    n_starts : int, default 1024
        Starts per network and condition.
    seed : int, default 0
        Seeds the trials and the sampling.
    noise : float, default 0.5
        Standard deviation of the Gaussian noise added to each coordinate of
        the starts.  On our 64-unit flip-flop GRU, starts on the trajectories
        (0) find the 8 attractors and 7 of the 19 saddles; 0.5 finds all 27.
    n_trials : int, default 128
        Trials whose trajectories the starts are drawn from.
    **options
        Passed to :func:`find_fixed_points`; ``region`` defaults to the
        trajectories the starts are drawn from (``region=None`` lifts it).

    Returns
    -------
    FixedPoints
        Use ``.metrics()`` for ``n_fixed, n_slow, n_stable, n_saddles`` per network.
    """
    check_positive("n_starts", n_starts, integer=True)
    check_positive("n_trials", n_trials, integer=True)
    task = task if isinstance(task, Task) else get_task(task)
    rng = np.random.default_rng(seed)
    states, _ = population.run(task.sample(rng, n_trials)["inputs"])
    x_cond = np.asarray(task.x_cond, np.float32)
    starts = np.concatenate([sample_states(states.numpy(), n_starts, noise, rng) for _ in x_cond], 1)
    x = np.broadcast_to(np.repeat(x_cond, n_starts, 0)[None], starts.shape[:2] + x_cond.shape[1:])
    options.setdefault("region", states.numpy())
    return find_fixed_points(population.cell, x, starts, **options)
