"""The search stage of :func:`~rnn_dyn.fixed_points.find_fixed_points`, and its bookkeeping.

- :func:`search_function`: Adam on ``q(h) = ½‖F(h, x) − h‖²`` from all starts
  at once, in one float32 ``tf.function``.
- Candidate bookkeeping in numpy: greedy merging of nearby points, padding of
  per-network batches, numbering of condition inputs.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf


# -- stage 1: Adam in one tf.function -------------------------------------------
_ROUND = 50  # iterations between compactions of the still-active starts


def search_function(fmap):
    """The traced Adam search of ``fmap`` (built once per map)."""
    if "search" in fmap.functions:
        return fmap.functions["search"]
    n, m = fmap.n_state, fmap.n_inputs

    def q_and_grad(h, x):
        with tf.GradientTape() as tape:
            tape.watch(h)
            r = fmap(h, x) - h
            q = 0.5 * tf.reduce_sum(r * r, axis=-1)
        return q, tape.gradient(q, h)

    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None, None, n], tf.float32), tf.TensorSpec([None, None, m], tf.float32),
        tf.TensorSpec([None, 1, n], tf.float32), tf.TensorSpec([None, 1, 1], tf.float32),
        tf.TensorSpec([8], tf.float32), tf.TensorSpec([], tf.int32)])
    def search(h, x, center, radius, params, max_iters):
        lr0, lr_up, lr_down, tol_q, tol_dq, beta1, beta2, eps = tf.unstack(params)
        q, g = q_and_grad(h, x)
        zeros = tf.zeros_like(h)
        # Per start: h, Adam moments, learning rate, q, gradient, active, iterations, best h and q.
        state = (h, zeros, zeros, tf.fill(tf.shape(q), lr0), q, g,
                 tf.math.is_finite(q) & (q >= tol_q), tf.zeros(tf.shape(q), tf.int32), h, q)

        def step(i, x, h, m1, m2, lr, q, g, active, n_iters, best_h, best_q):
            t = tf.cast(i + 1, tf.float32)
            m1 = beta1 * m1 + (1.0 - beta1) * g
            m2 = beta2 * m2 + (1.0 - beta2) * g * g
            new = h - lr[..., None] * (m1 / (1.0 - beta1 ** t)) / (tf.sqrt(m2 / (1.0 - beta2 ** t)) + eps)
            offset = new - center
            norm = tf.norm(offset, axis=-1, keepdims=True)
            new = center + offset * tf.minimum(1.0, radius / tf.maximum(norm, 1e-30))
            new = tf.where(active[..., None], new, h)
            q_new, g_new = q_and_grad(new, x)
            finite = tf.math.is_finite(q_new)
            lr = tf.where(active, tf.where(q_new < q, lr * lr_up, lr * lr_down), lr)
            n_iters += tf.cast(active, tf.int32)
            better = active & finite & (q_new < best_q)
            best_h = tf.where(better[..., None], new, best_h)
            best_q = tf.where(better, q_new, best_q)
            done = ~finite | (q_new < tol_q) | (tf.abs(q - q_new) < tol_dq * q)
            active = active & ~done & (n_iters < max_iters)
            return new, m1, m2, lr, q_new, g_new, active, n_iters, best_h, best_q

        def rounds(i, state):
            # Step only the starts still active, gathered per network (padded with
            # finished ones, which stay put), for up to _ROUND iterations.
            active = state[6]
            count = tf.reduce_sum(tf.cast(active, tf.int32), axis=1)
            order = tf.argsort(tf.cast(~active, tf.int32), axis=1, stable=True)
            idx = order[:, : tf.reduce_max(count)]
            sub = tuple(tf.gather(v, idx, batch_dims=1) for v in state)
            x_sub = tf.gather(x, idx, batch_dims=1)
            stop = tf.minimum(i + _ROUND, max_iters)
            j, *sub = tf.while_loop(
                lambda j, *s: (j < stop) & tf.reduce_any(s[6]),
                lambda j, *s: (j + 1, *step(j, x_sub, *s)), (i, *sub))
            rows = tf.broadcast_to(tf.range(tf.shape(idx)[0])[:, None], tf.shape(idx))
            where = tf.stack([rows, idx], axis=-1)
            return j, tuple(tf.tensor_scatter_nd_update(v, where, s) for v, s in zip(state, sub))

        _, state = tf.while_loop(lambda i, s: (i < max_iters) & tf.reduce_any(s[6]), rounds,
                                 (tf.constant(0), state))
        return state[8], state[9], state[7]

    fmap.functions["search"] = search
    return search


# -- bookkeeping ----------------------------------------------------------------
def unique(points, order, tol):
    """Greedy selection in ``order``: keep a point unless one kept is within ``tol``."""
    kept = []
    for i in order:
        if not kept or np.min(np.linalg.norm(points[kept] - points[i], axis=-1)) > tol:
            kept.append(i)
    return np.asarray(kept, int)


def unique_per_group(points, order, groups, tol):
    keep = [unique(points, order[groups[order] == g], tol) for g in np.unique(groups)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, int)


def padded(items, network, n_networks):
    """Indices ``[n_networks, width]`` of ``items`` per network, padded; and the mask."""
    per = [items[network[items] == p] for p in range(n_networks)]
    width = max(1, max(len(v) for v in per))
    idx = np.zeros((n_networks, width), int)
    mask = np.zeros((n_networks, width), bool)
    for p, v in enumerate(per):
        fill = v if len(v) else items[:1] if len(items) else np.zeros(1, int)
        idx[p] = np.resize(fill, width)
        mask[p, : len(v)] = True
    return idx, mask


def condition_ids(x_rows):
    """Index of each row among the distinct rows, numbered by first appearance."""
    _, first, inverse = np.unique(x_rows, axis=0, return_index=True, return_inverse=True)
    rank = np.empty(len(first), int)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


def forward_function(fmap):
    """The traced forward iteration ``h <- F(h, x)`` of ``fmap`` (built once per map).

    ``forward(h, x, n_steps) -> (h_end, q_end)`` in float32, ``q_end = ½‖F(h_end, x) − h_end‖²``.
    """
    if "forward" in fmap.functions:
        return fmap.functions["forward"]
    n, m = fmap.n_state, fmap.n_inputs

    @tf.function(autograph=False, input_signature=[
        tf.TensorSpec([None, None, n], tf.float32), tf.TensorSpec([None, None, m], tf.float32),
        tf.TensorSpec([], tf.int32)])
    def forward(h, x, n_steps):
        _, h = tf.while_loop(lambda i, h: i < n_steps, lambda i, h: (i + 1, fmap(h, x)),
                             (tf.constant(0), h))
        r = fmap(h, x) - h
        return h, 0.5 * tf.reduce_sum(r * r, axis=-1)

    fmap.functions["forward"] = forward
    return forward


def merge_candidates(points, q, groups, tol_unique, merge_radius, tol_q, tol_far=np.inf, max_slow=None):
    """Candidates to polish: far ones dropped, near-duplicates merged, slow candidates thinned.

    Greedy in order of ``q`` within each group: a candidate with ``q <= tol_q``
    (the search converged) is dropped only when a kept one lies within
    ``tol_unique``; a slow one (``q > tol_q``, typically on a slow manifold,
    where hundreds of starts land) also when a kept *slow* candidate lies
    within ``merge_radius``, so that slow manifolds are polished from
    representatives about ``merge_radius`` apart, at most ``max_slow`` of
    them per group (the lowest ``q``).  Candidates with ``q > tol_far`` (a
    search stranded far from any fixed or slow point) are dropped.

    Returns
    -------
    ndarray of int, sorted: the indices kept.
    """
    kept = []
    for g in np.unique(groups):
        mine = np.flatnonzero((groups == g) & (q <= tol_far))
        mine = mine[np.argsort(q[mine], kind="stable")]
        fast_kept, slow_kept = [], []
        for i in mine:
            near = lambda ks, tol: bool(ks) and np.min(  # noqa: E731
                np.linalg.norm(points[ks] - points[i], axis=-1)) <= tol
            if near(fast_kept + slow_kept, tol_unique):
                continue
            if q[i] <= tol_q:
                fast_kept.append(i)
            elif not near(slow_kept, merge_radius):
                slow_kept.append(i)
        kept += fast_kept + slow_kept[:max_slow]
    return np.sort(np.asarray(kept, int))


def bridge_starts(points, groups, jacobians, n_mix, steps=(0.1, 0.2, 0.3, 0.5), n_dirs=3, seed=0,
                  pair_steps=(0.35, 0.5, 0.65), n_neighbours=6):
    """Starts where saddles lie: between the stable points of each group, and beside each.

    Per group (network and condition input) with two or more stable points,
    ``n_mix`` random convex combinations of them (Dirichlet weights, α = 0.5)
    and the points ``pair_steps`` of the way along the segment joining each
    to its ``n_neighbours`` nearest (a saddle with one unstable direction
    often separates two neighbouring attractors);
    for every stable point, steps of ``±steps`` along its ``n_dirs`` slowest
    (largest-magnitude) eigenvectors, real parts normalized.  Saddles sit on
    the slow manifolds that join the attractors, where few trajectory starts
    or searches end.

    Parameters
    ----------
    points : ndarray [k, n]
        Stable fixed points.
    groups : ndarray [k] of int
    jacobians : ndarray [k, n, n]
        Their Jacobians.
    n_mix : int

    Returns
    -------
    starts : ndarray [s, n]
    source : ndarray [s] of int
        For each start, the row of ``points`` whose group (network, input) it belongs to.
    """
    rng = np.random.default_rng(seed)
    starts, source = [np.zeros((0, points.shape[-1]))], [np.zeros(0, int)]
    if len(points) == 0:
        return starts[0], source[0]
    vals, vecs = np.linalg.eig(jacobians)
    order = np.argsort(-np.abs(vals), axis=-1, kind="stable")[:, :n_dirs]
    dirs = np.take_along_axis(vecs, order[:, None, :], -1).real.transpose(0, 2, 1)  # [k, d, n]
    dirs /= np.maximum(np.linalg.norm(dirs, axis=-1, keepdims=True), 1e-300)
    signed = np.concatenate([-np.asarray(steps), np.asarray(steps)])
    kicks = points[:, None, None] + signed[None, :, None, None] * dirs[:, None]
    starts.append(kicks.reshape(-1, points.shape[-1]))
    source.append(np.repeat(np.arange(len(points)), kicks.shape[1] * kicks.shape[2]))
    for g in np.unique(groups):
        mine = np.flatnonzero(groups == g)
        if len(mine) >= 2:
            starts.append(rng.dirichlet(np.full(len(mine), 0.5), n_mix) @ points[mine])
            source.append(np.full(n_mix, mine[0]))
            # each stable point with its n_neighbours nearest (saddles join neighbouring attractors)
            dist = np.linalg.norm(points[mine][:, None] - points[mine][None], axis=-1)
            near = np.argsort(dist, axis=1, kind="stable")[:, 1:n_neighbours + 1]
            i, j = np.unique(np.sort(np.stack([np.repeat(np.arange(len(mine)), near.shape[1]),
                                               near.reshape(-1)], 1), 1), axis=0).T
            t = np.asarray(pair_steps)[:, None, None]
            pairs = ((1 - t) * points[mine[i]] + t * points[mine[j]]).reshape(-1, points.shape[-1])
            starts.append(pairs)
            source.append(np.full(len(pairs), mine[0]))
    return np.concatenate(starts), np.concatenate(source)
