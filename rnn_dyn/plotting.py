"""Figures of analysis results: each ``plot_*(results, ..., ax=None)`` returns a Figure.

Functions draw on the axes they are given (or a new figure), never call
``plt.show`` and never save: the caller decides where a figure goes.  This is
the only analysis-side module that imports matplotlib.
"""
from __future__ import annotations

import warnings

import matplotlib.pyplot as plt
import numpy as np


def _top_pcs(samples, k=3):
    """Mean and top-``k`` principal directions ``[k, n]`` of ``samples [s, n]``."""
    mean = samples.mean(axis=0)
    _, _, vt = np.linalg.svd(samples - mean, full_matrices=False)
    pcs = np.zeros((k, samples.shape[1]))
    pcs[: min(k, len(vt))] = vt[:k]
    return mean, pcs


def plot_fixed_points(fps, states, ax=None, network=0, condition=None, n_trajectories=32,
                      arm_scale=0.15):
    """Trajectories and fixed points of one network in its top-3 PCA space.

    Stable fixed points are filled circles, unstable ones open circles, slow
    points grey crosses; from each unstable point short lines run along the
    real parts of its unstable right eigenvectors (``|λ| > 1``).

    Parameters
    ----------
    fps : FixedPoints
    states : array_like [n_trials, n_time, n_state] or [n_networks, n_trials, n_time, n_state]
        Dynamical states of the network's trajectories (``Population.run``).
    ax : mpl_toolkits.mplot3d.Axes3D, optional
        3-D axes to draw on; a new figure if omitted.
    network : int, default 0
        Which member (of ``fps`` and of a 4-D ``states``).
    condition : int, optional
        Only points under this condition input (default all).
    n_trajectories : int, default 32
        Trials drawn (all trials set the PCA).
    arm_scale : float, default 0.15
        Half-length of the eigenvector lines, as a fraction of the trajectories'
        extent along the first PC (a unit eigenvector, projected).

    Returns
    -------
    matplotlib.figure.Figure
    """
    states = np.asarray(states, np.float64)
    if states.ndim == 4:
        states = states[network]
    if states.ndim != 3:
        raise ValueError("states must have shape [n_trials, n_time, n_state] or "
                         f"[n_networks, n_trials, n_time, n_state]; got {np.shape(states)}.")
    if states.shape[-1] != fps.n_state:
        raise ValueError(f"states must have n_state={fps.n_state} values per state; "
                         f"got {states.shape[-1]}.")
    if ax is None:
        ax = plt.figure(figsize=(6, 5)).add_subplot(projection="3d")
    elif not hasattr(ax, "zaxis"):
        raise TypeError("ax must be 3-D axes (projection='3d').")
    points = fps.for_network(network)
    if condition is not None:
        points = points.for_condition(condition)
    mean, pcs = _top_pcs(states.reshape(-1, states.shape[-1]))
    project = lambda a: (np.asarray(a) - mean) @ pcs.T  # noqa: E731
    for trial in states[:n_trajectories]:
        ax.plot(*project(trial).T, color="0.6", lw=0.5, alpha=0.6)
    extent = np.ptp(project(states.reshape(-1, states.shape[-1]))[:, 0]) or 1.0
    fixed = points.fixed
    for stable, face in ((True, "C0"), (False, "none")):
        sel = fixed[fixed.is_stable == stable]
        if len(sel):
            ax.scatter(*project(sel.hstar).T, s=40, facecolors=face, edgecolors="C0",
                       depthshade=False, label="stable" if stable else "unstable")
    if len(points.slow):
        ax.scatter(*project(points.slow.hstar).T, marker="x", color="0.4", label="slow")
    for h, vals, vecs in zip(fixed.hstar, fixed.eigvals, fixed.right_eigvecs):
        for v in vecs[:, np.abs(vals) > 1].T:
            v = np.real(v) / (np.linalg.norm(np.real(v)) or 1.0)
            arm = arm_scale * extent * (v @ pcs.T)  # shorter when v leaves the PC space
            ends = project(h)[None] + np.array([-arm, arm])
            ax.plot(*ends.T, color="C3", lw=1.5)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_zlabel("PC 3")
    if len(points):
        ax.legend(loc="upper left", fontsize="small")
    return ax.figure


def _new_axes(ax, ncols=1, size=(4.5, 4.0)):
    if ax is not None:
        axes = np.atleast_1d(ax)
        return axes.flat[0].figure, axes
    fig, axes = plt.subplots(1, ncols, figsize=(size[0] * ncols, size[1]), squeeze=False)
    return fig, axes[0]


def plot_embedding(xy, labels: dict, title: str = "", ax=None):
    """Networks as points of a 2-D embedding, one panel per labelling.

    Parameters
    ----------
    xy : ndarray [n_networks, 2]
        E.g. :func:`rnn_dyn.embed`'s output.
    labels : dict
        ``{name: [label per network]}``, e.g. ``{"cell": [...], "activation": [...]}``.
    title : str
    ax : array of Axes, optional
        One per labelling.

    Returns
    -------
    Figure
    """
    xy = np.asarray(xy)
    fig, axes = _new_axes(ax, len(labels))
    for a, (name, values) in zip(axes, labels.items()):
        values = np.asarray(values)
        for i, v in enumerate(sorted(set(values.tolist()))):
            sel = values == v
            a.scatter(xy[sel, 0], xy[sel, 1], s=28, color=plt.cm.tab10(i % 10), label=str(v),
                      edgecolor="white", linewidth=0.5)
        a.set_title(f"coloured by {name}")
        a.set_xticks([])
        a.set_yticks([])
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_losses(loss_steps, loss, labels=None, ax=None):
    """Training loss curves, one line per network (log scale).

    Parameters
    ----------
    loss_steps : ndarray [n_logs]
    loss : ndarray [n_logs, n_networks]
    labels : list of str, optional
    ax : Axes, optional

    Returns
    -------
    Figure
    """
    fig, (a,) = _new_axes(ax)
    loss = np.asarray(loss)
    for i in range(loss.shape[1]):
        a.plot(loss_steps, loss[:, i], lw=1, label=None if labels is None else labels[i])
    a.set_yscale("log")
    a.set_xlabel("iteration")
    a.set_ylabel("training MSE")
    if labels is not None and len(labels) <= 10:
        a.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _by_label(labels):
    labels = np.asarray(labels)
    return [(v, labels == v) for v in sorted(set(labels.tolist()))]


def plot_universality(embeddings: dict, labels: dict, title: str = ""):
    """MDS maps of several distance matrices side by side (rows: labellings, columns: metrics).

    ``embeddings`` is ``{metric: xy [n_networks, 2]}`` (NaN rows are skipped),
    ``labels`` ``{name: [label per network]}``.
    """
    fig, axes = plt.subplots(len(labels), len(embeddings), squeeze=False,
                             figsize=(3.6 * len(embeddings), 3.3 * len(labels)))
    for j, (metric, xy) in enumerate(embeddings.items()):
        xy = np.asarray(xy)
        ok = np.isfinite(xy).all(axis=1)
        plot_embedding(xy[ok], {k: np.asarray(v)[ok] for k, v in labels.items()}, ax=axes[:, j])
        axes[0, j].set_title(metric)
        for i, name in enumerate(labels):
            axes[i, j].set_ylabel(f"by {name}" if j == 0 else "")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _panel_grid(n, size, per_row=4):
    """A figure of ``n`` panels of ``size`` inches, ``per_row`` to a row, spare
    panels hidden; returns ``(fig, axes [rows, cols])``."""
    ncols = min(per_row, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(size[0] * ncols, size[1] * nrows))
    for a in axes.flat[n:]:
        a.set_axis_off()
    return fig, axes


def plot_transition_graphs(graphs: list, titles: list):
    """Transition-probability matrices, nodes in readout order (paper Fig. 1e); four per row."""
    fig, axes = _panel_grid(len(graphs), (3.0, 3.2))
    for a, g, t in zip(axes.flat, graphs, titles):
        a.imshow(g.matrix, vmin=0, vmax=1, cmap="Greys")
        stable = np.flatnonzero(g.is_stable)
        a.scatter(stable, stable, s=10, color="tab:red", label="stable")
        a.set_title(f"{t}\n{g.n_stable} stable / {g.n_nodes} fixed", fontsize=9)
        a.set_xticks([])
        a.set_yticks([])
    for row in axes:
        row[0].set_ylabel("from (readout order)")
    fig.tight_layout()
    return fig


def plot_sine_frequencies(omega, frequency, labels, ax=None):
    """Linear frequency of the dominant oscillatory mode against ``ω(u)``, median per label (Fig. 2e–f).

    ``frequency [n_networks, n_conditions]`` (NaN where undefined), ``labels``
    one per network.
    """
    fig, (a,) = _new_axes(ax)
    omega = np.asarray(omega)
    a.plot(omega, omega, color="black", lw=1, ls="--", label="ω(u)")
    for i, (v, sel) in enumerate(_by_label(labels)):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a u where no network has a mode
            median = np.nanmedian(np.asarray(frequency)[sel], axis=0)
        a.plot(omega, median, lw=1.5, color=plt.cm.tab10(i % 10),
               label=f"{v} ({sel.sum()})")
    a.set_xlabel("target ω(u), rad/step")
    a.set_ylabel("linear frequency, rad/step")
    a.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def plot_integration(curves, n_near_one, labels):
    """Integration dimensionality (median curve per label) and eigenvalues near 1 (Fig. 3e–f).

    ``curves [n_networks, n_state + 1]`` (fraction of the integrated readout
    kept by the m slowest modes), ``n_near_one [n_networks]``.
    """
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.8))
    groups = _by_label(labels)
    for i, (v, sel) in enumerate(groups):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # networks without a defined curve
            c = np.nanmedian(np.asarray(curves)[sel], axis=0)
        a.plot(np.arange(len(c)), c, color=plt.cm.tab10(i % 10), label=str(v), lw=1.5)
    a.axhline(1.0, color="black", lw=0.8, ls="--")
    a.set_xscale("symlog", linthresh=1)
    a.set_xlim(0, np.asarray(curves).shape[1] - 1)
    a.set_xlabel("modes kept (slowest first)")
    a.set_ylabel("fraction of integrated readout")
    a.legend(fontsize=7, frameon=False)
    means = [np.nanmean(np.asarray(n_near_one, float)[sel]) for _, sel in groups]
    b.bar(range(len(groups)), means, color=[plt.cm.tab10(i % 10) for i in range(len(groups))])
    b.set_xticks(range(len(groups)), [str(v) for v, _ in groups], rotation=45, ha="right", fontsize=8)
    b.set_ylabel("eigenvalues with |λ − 1| < tol")
    fig.tight_layout()
    return fig


def plot_spectra(spectra: list, titles: list, suptitle: str = ""):
    """Eigenvalues in the complex plane with the unit circle, one panel per network (Fig. 2e, 3e)."""
    fig, axes = _panel_grid(len(spectra), (2.8, 2.8))
    theta = np.linspace(0, 2 * np.pi, 200)
    for a, lam, t in zip(axes.flat, spectra, titles):
        lam = np.asarray(lam)
        a.plot(np.cos(theta), np.sin(theta), color="black", lw=0.6)
        a.scatter(lam.real, lam.imag, s=6, alpha=0.6, color="tab:blue")
        a.set_title(t, fontsize=9)
        a.set_aspect("equal")
        lim = max(1.1, float(np.abs(lam).max()) * 1.05) if lam.size else 1.1
        a.set_xlim(-lim, lim)
        a.set_ylim(-lim, lim)
        a.tick_params(labelsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
