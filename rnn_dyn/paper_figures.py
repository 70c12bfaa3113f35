"""The paper's figures that :mod:`rnn_dyn.plotting` does not draw: arrays in, a Figure out.

Like :mod:`rnn_dyn.plotting`, every ``plot_*`` returns a
:class:`matplotlib.figure.Figure`, never shows or saves it, and touches
neither MLflow nor TensorFlow; :mod:`rnn_dyn.report` assembles them (with
:mod:`rnn_dyn.plotting`'s own) into the study's report.  Networks are
labelled ``"cell/activation"`` (a *configuration*); panels follow
:data:`CELL_ORDER` and :data:`ACTIVATION_ORDER`.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from rnn_dyn.plotting import _panel_grid, _top_pcs, plot_embedding

CELL_ORDER = ("vanilla", "ugrnn", "gru", "lstm")
ACTIVATION_ORDER = ("tanh", "relu")


def config_key(label: str) -> tuple:
    """Sort key of a ``"cell/activation"`` label: cells, then activations, in the paper's order."""
    cell, _, act = str(label).partition("/")
    rank = lambda order, v: (order.index(v), v) if v in order else (len(order), v)  # noqa: E731
    return rank(CELL_ORDER, cell) + rank(ACTIVATION_ORDER, act)


def axes_3d(n: int, size=(3.6, 3.4), per_row=4):
    """A figure of ``n`` 3-D panels, ``per_row`` to a row; returns ``(fig, [axes])``."""
    ncols = max(1, min(per_row, n))
    nrows = -(-n // ncols)
    fig = plt.figure(figsize=(size[0] * ncols, size[1] * nrows))
    return fig, [fig.add_subplot(nrows, ncols, i + 1, projection="3d") for i in range(n)]


def _categorical(values) -> bool:
    """Whether values are a few integers (contexts) rather than a continuous cue."""
    values = np.asarray(values, np.float64)
    return len(np.unique(values)) <= 10 and bool(np.all(values == np.round(values)))


def _colours(values, categorical: bool, cmap="viridis"):
    """One colour per value: tab10 for categories, else ``cmap`` over the values' range."""
    values = np.asarray(values, np.float64)
    if categorical:
        return [plt.cm.tab10(int(v) % 10) for v in values]
    lo, hi = np.nanmin(values), np.nanmax(values)
    return [plt.get_cmap(cmap)((v - lo) / ((hi - lo) or 1.0)) for v in values]


def plot_trajectories(states, values, points=None, point_values=None, title: str = "", ax=None,
                      value_name: str = "", cmap="viridis"):
    """Trajectories of one network in its top-3 PCA space, coloured by a per-trial value.

    Parameters
    ----------
    states : array_like [n_trials, n_time, n_state]
        The network's dynamical states; all of them set the PCA.
    values : array_like [n_trials]
        The trial's colour: a continuous value (the sine cue ``u``; colormap
        ``cmap``) or a small integer (the context; tab10).
    points : array_like [n_points, n_state], optional
        Fixed points, drawn as black-edged dots.
    point_values : array_like [n_points], optional
        Each point's value on the same colour scale (default black).
    title : str
    ax : mpl_toolkits.mplot3d.Axes3D, optional
        3-D axes to draw on; a new figure if omitted.
    value_name : str
        Named in the legend (integers) or the colour bar (continuous values).
    cmap : str

    Returns
    -------
    Figure
    """
    states = np.asarray(states, np.float64)
    values = np.asarray(values, np.float64)
    if states.ndim != 3 or values.shape != states.shape[:1]:
        raise ValueError("states must be [n_trials, n_time, n_state] and values [n_trials]; got shapes "
                         f"{states.shape} and {values.shape}.")
    if ax is None:
        ax = plt.figure(figsize=(5, 4.5)).add_subplot(projection="3d")
    flat = states.reshape(-1, states.shape[-1])
    mean, pcs = _top_pcs(flat)
    project = lambda a: (np.asarray(a, np.float64) - mean) @ pcs.T  # noqa: E731
    every = np.concatenate([values, [] if point_values is None else np.asarray(point_values, float)])
    categorical = _categorical(every)
    colours = _colours(every, categorical, cmap)
    for trial, c in zip(states, colours):
        ax.plot(*project(trial).T, color=c, lw=0.7, alpha=0.8)
    if points is not None and len(points):
        pc = colours[len(values):] if point_values is not None else "black"
        ax.scatter(*project(points).T, s=22, c=pc, edgecolors="black", linewidths=0.6, depthshade=False)
    if categorical:
        for v in np.unique(every):
            ax.plot([], [], color=plt.cm.tab10(int(v) % 10), label=f"{value_name} {v:g}".strip())
        ax.legend(fontsize=7, loc="upper left", frameon=False)
    else:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(np.nanmin(every), np.nanmax(every)))
        ax.figure.colorbar(sm, ax=ax, shrink=0.6, pad=0.12, label=value_name)
    ax.set_title(title, fontsize=9)
    for set_label, name in zip((ax.set_xlabel, ax.set_ylabel, ax.set_zlabel), ("PC 1", "PC 2", "PC 3")):
        set_label(name, fontsize=7)
    ax.tick_params(labelsize=6)
    return ax.figure


def plot_distance_matrix(D, labels, title: str = "", ax=None):
    """A distance matrix with networks ordered by configuration, blocks outlined (paper Fig. 1c).

    Parameters
    ----------
    D : array_like [n_networks, n_networks]
        NaN entries are drawn blank.
    labels : array_like [n_networks]
        ``"cell/activation"`` per network (any strings; sorted by :func:`config_key`).
    title : str
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    D, labels = np.asarray(D, np.float64), np.asarray(labels).astype(str)
    if D.shape != (len(labels), len(labels)):
        raise ValueError(f"D must be [n, n] with one label per network; got {D.shape} and {len(labels)} labels.")
    order = sorted(range(len(labels)), key=lambda i: (config_key(labels[i]), i))
    D, labels = D[np.ix_(order, order)], labels[order]
    if ax is None:
        ax = plt.subplots(figsize=(6.2, 5.4))[1]
    im = ax.imshow(D, cmap="viridis", interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label="distance")
    edges = np.flatnonzero(labels[1:] != labels[:-1]) + 0.5
    for e in edges:
        ax.axhline(e, color="white", lw=0.8)
        ax.axvline(e, color="white", lw=0.8)
    starts = np.r_[0, np.ceil(edges).astype(int)]
    ends = np.r_[np.ceil(edges).astype(int), len(labels)]
    centres = (starts + ends - 1) / 2
    ax.set_xticks(centres, labels[starts], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(centres, labels[starts], fontsize=7)
    ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    return ax.figure


def plot_embeddings(panels: list, suptitle: str = ""):
    """Several 2-D maps side by side, each coloured by its own labels (paper Fig. 1d).

    Parameters
    ----------
    panels : list of (title, xy [n, 2], labels [n])
        E.g. the MDS of the tanh networks by cell, then of the vanilla ones by activation.
    suptitle : str

    Returns
    -------
    Figure
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 4.0), squeeze=False)
    for a, (title, xy, labels) in zip(axes[0], panels):
        plot_embedding(np.asarray(xy), {"": labels}, ax=[a])
        a.set_title(title, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def plot_oscillatory_modes(eigvals: list, omega, titles: list):
    """Each network's dominant oscillatory eigenvalue per sine cue, against ``e^{iω(u)}`` (Fig. 2d–e).

    Parameters
    ----------
    eigvals : list of ndarray [n_conditions] complex
        Per network, the eigenvalue of the mode that sustains the oscillation at
        each cue (NaN where none), e.g. :class:`~rnn_dyn.dynamics.OscillatoryModes`'s ``eigval[0]``.
    omega : array_like [n_conditions]
        The target's angular frequency per step at each cue.
    titles : list of str

    Returns
    -------
    Figure
        One panel per network: the upper unit half-circle near 1, the target
        points (open) and the modes (filled), both coloured by the cue.
    """
    omega = np.asarray(omega, np.float64)
    fig, axes = _panel_grid(len(eigvals), (3.0, 3.0))
    colours = plt.cm.viridis(np.linspace(0, 1, len(omega)))
    top = max(0.4, 1.3 * float(np.max(omega)))
    theta = np.linspace(0, top, 100)
    for a, lam, t in zip(axes.flat, eigvals, titles):
        lam = np.asarray(lam, complex)
        a.plot(np.cos(theta), np.sin(theta), color="black", lw=0.6)
        a.scatter(np.cos(omega), np.sin(omega), s=14, facecolors="none", edgecolors=colours, label="e^{iω(u)}")
        ok = np.isfinite(lam)
        a.scatter(lam.real[ok], lam.imag[ok], s=10, color=colours[ok], label="network")
        a.set_title(f"{t}\n{ok.sum()}/{len(lam)} cues with a mode", fontsize=8)
        a.tick_params(labelsize=7)
        a.set_xlabel("Re λ", fontsize=7)
        a.set_ylabel("Im λ", fontsize=7)
    axes.flat[0].legend(fontsize=6, frameon=False, loc="lower left")
    fig.tight_layout()
    return fig


def plot_measures(measures: dict, labels, suptitle: str = ""):
    """Per-network scalar measures as strip plots, one panel per measure, one column per label.

    Parameters
    ----------
    measures : dict
        ``{name: ndarray [n_networks]}`` (NaN values are left out), e.g. the
        context networks' ``mean_n_modes`` (modes needed to integrate).
    labels : array_like [n_networks]
        ``"cell/activation"`` per network.
    suptitle : str

    Returns
    -------
    Figure
    """
    labels = np.asarray(labels).astype(str)
    groups = sorted(set(labels.tolist()), key=config_key)
    fig, axes = plt.subplots(1, len(measures), figsize=(max(3.5, 0.55 * len(groups) + 1.5) * len(measures), 3.6),
                             squeeze=False)
    rng = np.random.default_rng(0)
    for a, (name, values) in zip(axes[0], measures.items()):
        values = np.asarray(values, np.float64)
        for i, g in enumerate(groups):
            v = values[(labels == g) & np.isfinite(values)]
            a.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=12, color=plt.cm.tab10(i % 10), alpha=0.8)
            if len(v):
                a.plot([i - 0.3, i + 0.3], [np.median(v)] * 2, color="black", lw=1.2)
        a.set_xticks(range(len(groups)), groups, rotation=45, ha="right", fontsize=7)
        a.set_xlim(-0.6, len(groups) - 0.4)
        a.set_title(name, fontsize=9)
        a.tick_params(axis="y", labelsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def plot_loss_histograms(fractions: dict, title: str = "", threshold: float = 0.1):
    """Final losses as a fraction of the zero-output loss, one histogram per configuration (App. C).

    Parameters
    ----------
    fractions : dict
        ``{configuration: ndarray [n_networks]}``; non-finite values (diverged
        networks) are counted in the panel's title, not drawn.
    title : str
    threshold : float
        Drawn as a dashed line (a network well below it has learned the task).

    Returns
    -------
    Figure
    """
    names = sorted(fractions, key=config_key)
    fig, axes = _panel_grid(len(names), (2.8, 2.3))
    finite = np.concatenate([np.asarray(fractions[n], float) for n in names] + [np.zeros(0)])
    finite = finite[np.isfinite(finite) & (finite > 0)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (1e-3, 1.0)
    bins = np.geomspace(min(lo, threshold) / 1.5, max(hi, threshold) * 1.5, 25)
    for a, name in zip(axes.flat, names):
        v = np.asarray(fractions[name], float)
        ok = np.isfinite(v) & (v > 0)
        a.hist(np.clip(v[ok], bins[0], bins[-1]), bins=bins, color="tab:blue")
        a.axvline(threshold, color="tab:red", ls="--", lw=0.8)
        a.set_xscale("log")
        lost = len(v) - ok.sum()
        a.set_title(f"{name}: {ok.sum()} networks" + (f", {lost} diverged" if lost else ""), fontsize=8)
        a.tick_params(labelsize=7)
    for a in axes[-1]:
        if a.axison:
            a.set_xlabel("final loss / zero-output loss", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_metric_scatter(pairs: dict, xlabel: str = "SVCCA distance", ylabel: str = "CKA distance"):
    """Pairwise distances under one metric against another, one panel per task (App. E).

    Parameters
    ----------
    pairs : dict
        ``{task: (x [n_pairs], y [n_pairs])}``: the same network pairs under each metric.
    xlabel, ylabel : str

    Returns
    -------
    Figure
        Each panel's title gives the Spearman rank correlation of the finite pairs.
    """
    from scipy.stats import spearmanr

    fig, axes = _panel_grid(len(pairs), (3.4, 3.2))
    for a, (task, (x, y)) in zip(axes.flat, pairs.items()):
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        a.scatter(x[ok], y[ok], s=6, alpha=0.5)
        rho = spearmanr(x[ok], y[ok])[0] if ok.sum() > 2 and np.ptp(x[ok]) and np.ptp(y[ok]) else np.nan
        a.set_title(f"{task}: {ok.sum()} pairs, Spearman ρ {rho:.2f}", fontsize=8)
        a.set_xlabel(xlabel, fontsize=8)
        a.set_ylabel(ylabel, fontsize=8)
        a.tick_params(labelsize=7)
    fig.tight_layout()
    return fig
