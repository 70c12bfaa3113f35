"""Fixed points grouped by network and condition; per-network numbers grouped by label.

The shared helpers of the linearized-dynamics analyses
(:mod:`rnn_dyn.oscillation`, :mod:`rnn_dyn.integration`): a
:class:`~rnn_dyn.fixed_points.FixedPoints` holds the points of many networks
and conditions, indexed by ``fps.network`` and ``fps.condition``.
:func:`nearest_points` picks, per network and condition, the point a network
uses (nearest to its own states); :func:`group_summary` averages per-network
numbers per label group (e.g. cell and activation).
"""
from __future__ import annotations

import numpy as np


def _best_per_group(score, network, condition, shape):
    """Index of the lowest ``score`` per ``(network, condition)``; -1 where a group is empty.

    Ties (and NaN scores, ranked last) keep the first point.
    """
    best = np.full(shape, -1, int)
    if len(score) == 0:
        return best
    order = np.lexsort((np.nan_to_num(score, nan=np.inf), condition, network))
    net, cond = network[order], condition[order]
    first = np.ones(len(order), bool)
    first[1:] = (net[1:] != net[:-1]) | (cond[1:] != cond[:-1])
    best[net[first], cond[first]] = order[first]
    return best


def _n_conditions(fps, n_conditions):
    top = int(fps.condition.max()) + 1 if len(fps) else 0
    if n_conditions is None:
        return top
    if top > n_conditions:
        raise ValueError(f"fps.condition must index the {n_conditions} conditions given; "
                         f"got condition {top - 1}.")
    return n_conditions


def nearest_points(fps, reference) -> np.ndarray:
    """Per network and condition, the fixed point nearest to a reference state.

    Use it to pick the point a network actually visits: for the sine task the
    time-average of its state over a probe trial with cue ``u`` (the centre of
    its oscillation), for context integration its state late in a trial.

    Parameters
    ----------
    fps : FixedPoints
    reference : array_like [n_networks, n_conditions, n_state]
        One dynamical state per network and condition (``condition`` as in
        ``fps.condition``).

    Returns
    -------
    ndarray [n_networks, n_conditions] of int
        Indices into ``fps`` (Euclidean distance in the state), ``-1`` where the
        network has no point under that condition.
    """
    reference = np.asarray(reference, np.float64)
    if reference.ndim != 3 or reference.shape[0] != fps.n_networks or reference.shape[2] != fps.n_state:
        raise ValueError(f"reference must have shape [n_networks={fps.n_networks}, n_conditions, "
                         f"n_state={fps.n_state}]; got {reference.shape}.")
    n_cond = _n_conditions(fps, reference.shape[1])
    dist = np.linalg.norm(fps.hstar - reference[fps.network, fps.condition], axis=-1)
    return _best_per_group(dist, fps.network, fps.condition, (fps.n_networks, n_cond))


def group_summary(values, *labels) -> dict:
    """Mean, median and count of ``values`` per group of networks sharing labels.

    Parameters
    ----------
    values : array_like [n_networks]
        One number per network (NaN entries are left out).
    *labels : array_like [n_networks]
        One or more label arrays, e.g. ``cell`` and ``activation``.

    Returns
    -------
    dict
        ``{(label_1, label_2, ...): {"mean": float, "median": float, "n": int}}``,
        keys sorted; a group without finite values has NaN mean and median and
        ``n = 0``.

    Examples
    --------
    >>> group_summary(osc.per_network()["mean_rel_error"], cells, activations)
    {('gru', 'tanh'): {'mean': 0.04, 'median': 0.03, 'n': 30}, ...}
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 1:
        raise ValueError(f"values must have shape [n_networks]; got {values.shape}.")
    if not labels:
        raise ValueError("group_summary needs at least one label array; got none.")
    labels = [np.asarray(lab) for lab in labels]
    for i, lab in enumerate(labels):
        if lab.shape != values.shape:
            raise ValueError(f"labels[{i}] must have shape {values.shape} like values; got {lab.shape}.")
    keys = list(zip(*[lab.tolist() for lab in labels]))
    out = {}
    for key in sorted(set(keys)):
        member = np.array([k == key for k in keys])
        finite = values[member & np.isfinite(values)]
        out[key] = {"mean": float(finite.mean()) if len(finite) else np.nan,
                    "median": float(np.median(finite)) if len(finite) else np.nan,
                    "n": len(finite)}
    return out
