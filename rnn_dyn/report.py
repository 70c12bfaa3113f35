"""The study's report: the paper's figures and its claims as numbers, on one self-contained page.

:func:`make_report` reads what the study logged -- each task's topology run
(``topology.npz``, ``graphs.npz``), the trained-versus-untrained run
(``untrained.npz``), the network runs' params and losses, and, for one example
network per architecture and task, the network itself and its fixed points --
and logs one run (tag ``rnn_dyn.kind = report``) with:

- ``report.html``: one page, figures embedded as ``data:`` URIs, inline CSS,
  no script and no external resource (it opens offline and in MLflow's
  artifact view).  At the top the claims table, the method-sensitivity table
  and the study's scale; then Fig. 1 (flip-flop), Fig. 2 (sine), Fig. 3
  (context), Fig. 4 (trained versus untrained), Appendix C (final losses) and
  Appendix E (SVCCA against CKA).  A figure whose task or data is missing is
  replaced by a one-line note.
- each figure as ``<name>.png``;
- ``claims.json``: ``{"claims": [...], "beyond_the_paper": [...], "sensitivity": [...],
  "spread": [...]}``: the paper's claims, what the study asks beyond it (DSA), the
  method-sensitivity rows and the seeds' spread.

The claims are computed elsewhere (:mod:`rnn_dyn.claims`); this module only shows them.
"""
from __future__ import annotations

import html
import io
import math
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rnn_dyn import paper_figures as pf  # noqa: E402
from rnn_dyn import plotting, tracking  # noqa: E402
from rnn_dyn.report_html import (LOSS_THRESHOLD, TASK_ORDER, VERDICTS, fmt, render_html, table,  # noqa: E402
                                 task_rank)
from rnn_dyn.statistics import configuration_spread  # noqa: E402

TASK_TITLES = {"flipflop": "Fig. 1 — 3-bit flip-flop", "sine": "Fig. 2 — frequency-cued sine wave",
               "context": "Fig. 3 — context-dependent integration"}
FIGURE = {"flipflop": "fig1", "sine": "fig2", "context": "fig3"}


# -- reading what the study logged -----------------------------------------------------
def _examples(config) -> list:
    """One network index per cell, a tanh one where there is one; in :data:`pf.CELL_ORDER`."""
    config = [str(c) for c in config]
    picks = {}
    for i, lab in enumerate(config):
        cell, _, act = lab.partition("/")
        if cell not in picks or (act == "tanh" and not config[picks[cell]].endswith("/tanh")):
            picks[cell] = i
    return [picks[c] for c in sorted(picks, key=lambda c: pf.config_key(c + "/"))]


def _load_examples(arrays: dict, fixed_point_runs: dict) -> list:
    """``[{label, population, task, fps}]`` for the example network of each cell (fps may be None)."""
    from rnn_dyn.fixed_points import FixedPoints
    from rnn_dyn.tasks import get_task

    out = []
    for i in _examples(arrays["config"]):
        rid = str(arrays["run_ids"][i])
        population, cfg = tracking.load_network(rid)
        fp_run = fixed_point_runs.get(rid)
        fps = FixedPoints.load(tracking.artifact(fp_run, "fixed_points.npz")) if fp_run else None
        out.append({"label": str(arrays["config"][i]), "population": population, "task": get_task(cfg.task),
                    "fps": fps})
    return out


def study_scale(network_runs: list) -> list:
    """One row per task and configuration from the network runs: networks, units, iterations,
    final loss as a fraction of the zero-output loss (median, max; ``fractions``), diverged."""
    rows = {}
    for r in network_runs:
        p, m = r.data.params, r.data.metrics
        row = rows.setdefault((p.get("task", "?"), f"{p.get('cell', '?')}/{p.get('activation', '?')}"),
                              {"units": set(), "iterations": set(), "fractions": [], "diverged": 0})
        row["units"].add(p.get("n_units", "?"))
        row["iterations"].add(p.get("iterations", "?"))
        diverged = bool(m.get("diverged", 0))
        row["diverged"] += diverged
        zero, val = m.get("zero_loss", math.nan), m.get("val_loss", math.nan)
        row["fractions"].append(math.nan if diverged or not zero else val / zero)
    out = []
    for (task, config), row in sorted(rows.items(), key=lambda kv: (task_rank(kv[0][0]), pf.config_key(kv[0][1]))):
        f = np.array(row["fractions"], float)
        ok = f[np.isfinite(f)]
        out.append({"task": task, "config": config, "networks": len(f), "units": ", ".join(sorted(row["units"])),
                    "iterations": ", ".join(sorted(row["iterations"])), "diverged": row["diverged"],
                    "median_fraction": float(np.median(ok)) if ok.size else None,
                    "max_fraction": float(ok.max()) if ok.size else None, "fractions": f})
    return out


# -- figures ----------------------------------------------------------------------------
def _subset_maps(arrays: dict, metric: str = "svcca") -> list:
    """MDS panels recomputed on sub-matrices: tanh networks by cell, vanilla networks by activation."""
    from rnn_dyn.embedding import embed

    D = arrays.get(f"distances_{metric}")
    if D is None:
        return []
    cells = np.array([c.partition("/")[0] for c in arrays["config"].astype(str)])
    acts = np.array([c.partition("/")[2] for c in arrays["config"].astype(str)])
    panels = []
    for title, rows, labels in (("tanh networks, by cell", acts == "tanh", cells),
                                ("vanilla networks, by activation", cells == "vanilla", acts)):
        sub = D[np.ix_(rows, rows)]
        if rows.sum() >= 3 and len(set(labels[rows])) >= 2 and np.isfinite(sub).all():
            panels.append((f"{metric.upper()}: {title} ({rows.sum()})", embed(sub), labels[rows]))
    return panels


def _topology_map(arrays: dict, task: str):
    labels = {"cell": [c.partition("/")[0] for c in arrays["config"].astype(str)],
              "activation": [c.partition("/")[2] for c in arrays["config"].astype(str)]}
    maps = {m: arrays[f"embedding_{m}"] for m in ("topology", "svcca")
            if f"embedding_{m}" in arrays and np.isfinite(arrays[f"embedding_{m}"]).all(axis=1).sum() > 1}
    if "topology" not in maps:
        return "no topology map: too few networks with comparable fixed-point graphs"
    return plotting.plot_universality(maps, labels, f"{task}: topology (fixed points) next to geometry (SVCCA), MDS")


def _trajectory_panels(examples, draw):
    fig, axes = pf.axes_3d(len(examples))
    for ax, ex in zip(axes, examples):
        draw(ax, ex)
    fig.tight_layout()
    return fig


def _flipflop_figures(arrays, graphs, examples):
    from rnn_dyn.topology import TransitionGraph

    def draw(ax, ex):
        states, _ = ex["population"].run(ex["task"].probe_set()["inputs"])
        states = states.numpy()[0]
        if ex["fps"] is None:
            pf.plot_trajectories(states, np.zeros(len(states)), title=ex["label"] + " (no fixed points)", ax=ax)
        else:
            plotting.plot_fixed_points(ex["fps"], states, ax=ax, n_trajectories=16)
            ax.set_title(ex["label"], fontsize=9)

    config = arrays["config"].astype(str)
    figs = {"fig1_trajectories": (_trajectory_panels(examples, draw) if examples else "no example network",
                                  "Probe trajectories in each network's top-3 PCA space, one network per "
                                  "architecture; stable fixed points filled, saddles open, unstable directions red."),
            "fig1_svcca_matrix": (pf.plot_distance_matrix(arrays["distances_svcca"], config,
                                                          "flip-flop: SVCCA distance by configuration")
                                  if "distances_svcca" in arrays else "no SVCCA matrix logged",
                                  "SVCCA distances between every pair of networks, ordered by configuration.")}
    firsts = [i for i in _examples_per_config(config) if f"matrix_{i}" in graphs]
    tg = [TransitionGraph(graphs[f"matrix_{i}"], graphs[f"readouts_{i}"], graphs[f"is_stable_{i}"]) for i in firsts]
    figs["fig1_transition_graphs"] = (plotting.plot_transition_graphs(tg, [config[i] for i in firsts]) if tg else
                                      "no transition graphs logged",
                                      "Transition probabilities between fixed points (nodes in readout order), "
                                      "one network per configuration.")
    return figs


def _examples_per_config(config) -> list:
    return sorted({lab: i for i, lab in reversed(list(enumerate(config)))}.values())


def _eigenvalues_only(path):
    """A :class:`~rnn_dyn.fixed_points.FixedPoints` with the eigenvalues, networks and conditions of
    ``path`` and nothing else (Jacobians and eigenvectors left unread: all a sine frequency needs)."""
    from dataclasses import fields

    from rnn_dyn.fixed_points import FixedPoints

    with np.load(path) as f:
        real = {k: f[k] for k in ("eigvals", "network", "condition", "qstar")}
        real["n_networks"] = int(f["n_networks"])
    empty = np.zeros((len(real["qstar"]), 0))
    return FixedPoints(**{x.name: real.get(x.name, empty) for x in fields(FixedPoints)})


def _sine_figures(arrays, examples, fixed_point_runs):
    from rnn_dyn.dynamics import compute_oscillatory_modes

    if not examples:
        return {"fig2_trajectories": ("no example network", "")}
    task = examples[0]["task"]
    omega, u = task.omega(task.grid), np.linspace(0, 1, 9)

    def draw(ax, ex):
        states = ex["population"].run(task.trials_for(u)["inputs"])[0].numpy()[0]
        fps = ex["fps"]
        pts, pu = (fps.hstar, task.grid[fps.condition]) if fps is not None else (None, None)
        pf.plot_trajectories(states, u, pts, pu, title=ex["label"], ax=ax, value_name="u")

    figs = {"fig2_trajectories": (_trajectory_panels(examples, draw),
                                  "Trajectories for 9 cues u (colour) with the fixed points of every cue "
                                  "(same colour scale), one network per architecture.")}
    with_fps = [ex for ex in examples if ex["fps"] is not None]
    figs["fig2_oscillatory_modes"] = (
        pf.plot_oscillatory_modes([compute_oscillatory_modes(ex["fps"], omega).eigval[0] for ex in with_fps],
                                  omega, [ex["label"] for ex in with_fps]) if with_fps else "no fixed points",
        "At each cue's fixed point, the eigenvalue of the oscillatory mode nearest the unit circle (filled) "
        "against the target e^{iω(u)} (open); colour: u.")
    freq, labels = [], []
    for rid, lab in zip(arrays["run_ids"].astype(str), arrays["config"].astype(str)):
        if rid in fixed_point_runs:
            fps = _eigenvalues_only(tracking.artifact(fixed_point_runs[rid], "fixed_points.npz"))
            freq.append(compute_oscillatory_modes(fps, omega).frequency[0])
            labels.append(lab)
    figs["fig2_frequency"] = (plotting.plot_sine_frequencies(omega, np.array(freq), labels) if freq else
                              "no fixed points", "Linear frequency of the dominant oscillatory mode against the "
                                                 "target ω(u): median over each configuration's networks.")
    measures = {k: arrays[k] for k in ("mean_rel_error", "mean_signed_error") if k in arrays}
    if measures:
        figs["fig2_frequency_error"] = (pf.plot_measures(measures, arrays["config"], "sine: frequency error per "
                                                                                     "network"),
                                        "Per network, mean |f − ω|/ω and mean signed (f − ω)/ω over the cues.")
    return figs


def _context_figures(arrays, examples):
    def draw(ax, ex):
        probe = ex["task"].probe_set()
        states = ex["population"].run(probe["inputs"])[0].numpy()[0]
        fps = ex["fps"]
        pts, pc = (fps.hstar, fps.condition) if fps is not None else (None, None)
        pf.plot_trajectories(states, probe["context"], pts, pc, title=ex["label"], ax=ax, value_name="context")

    figs = {"fig3_trajectories": (_trajectory_panels(examples, draw) if examples else "no example network",
                                  "Probe trajectories coloured by context, with the fixed and slow points of "
                                  "each context (the approximate line attractors), one network per architecture.")}
    with_fps = [ex for ex in examples if ex["fps"] is not None]
    figs["fig3_spectra"] = (plotting.plot_spectra([ex["fps"].for_condition(0).eigvals.reshape(-1) for ex in with_fps],
                                                  [ex["label"] for ex in with_fps],
                                                  "context: eigenvalues at every point of context 0")
                            if with_fps else "no fixed points", "Eigenvalues of the linearization at the points of "
                                                                "the first context, with the unit circle.")
    names = {"mean_n_modes": "modes needed to integrate", "mean_n_near_one": "eigenvalues with |λ − 1| < 0.05",
             "mean_one_mode": "share of the slowest mode", "mean_integral": "linearised integral (ideal 1)"}
    measures = {names[k]: arrays[k] for k in names if k in arrays}
    figs["fig3_integration"] = (pf.plot_measures(measures, arrays["config"], "context: linear integration per network")
                                if measures else "no integration measures logged",
                                "Per network (mean over its points): modes needed for 90% of the integrated readout, "
                                "eigenvalues near 1, the slowest mode's share, and the full linearisation's "
                                "integrated readout of a unit input (ideal 1); bars: medians.")
    return figs


def build_sections(experiment_id: str, topology: dict, graphs: dict, untrained: dict | None,
                   scale: list) -> list:
    """``[(title, {name: (Figure | note, caption)}, extra html)]``, the report's figure sections."""
    fixed_point_runs = tracking.stage_runs(experiment_id, "fixed_points")
    sections = []
    for task in TASK_ORDER:
        if task not in topology:
            sections.append((TASK_TITLES[task], {}, f"<p class='skip'>Skipped: task {task} was not run.</p>"))
            continue
        arrays = topology[task]
        examples = _load_examples(arrays, fixed_point_runs)
        if task == "flipflop":
            figs = _flipflop_figures(arrays, graphs[task], examples)
        elif task == "sine":
            figs = _sine_figures(arrays, examples, fixed_point_runs)
        else:
            figs = _context_figures(arrays, examples)
        panels = _subset_maps(arrays)
        figs[f"{FIGURE[task]}_mds"] = (pf.plot_embeddings(panels, f"{task}: geometry") if panels else
                                       "too few networks per label for the tanh / vanilla maps",
                                       "MDS of the SVCCA distances among tanh networks (by architecture) and among "
                                       "vanilla networks (by activation), recomputed on each subset.")
        if task == "flipflop":  # the paper's order: trajectories, matrix, maps, graphs
            figs = {k: figs[k] for k in ("fig1_trajectories", "fig1_svcca_matrix", "fig1_mds",
                                         "fig1_transition_graphs")}
        figs[f"{task}_topology_mds"] = (_topology_map(arrays, task), "MDS of the topology distances (fixed-point "
                                                                     "graphs) beside those of SVCCA.")
        sections.append((TASK_TITLES[task], figs, ""))
    sections.append(_untrained_section(untrained))
    by_task = {}
    for row in scale:
        by_task.setdefault(row["task"], {})[row["config"]] = row["fractions"]
    sections.append(("Appendix C — final losses", {
        f"appC_losses_{t}": (pf.plot_loss_histograms(f, f"{t}: final validation loss / zero-output loss",
                                                     LOSS_THRESHOLD), "") for t, f in by_task.items()},
        "" if by_task else "<p class='skip'>Skipped: no network runs.</p>"))
    pairs = {t: tuple(a[f"distances_{m}"][np.triu_indices(len(a["config"]), 1)] for m in ("svcca", "cka"))
             for t, a in topology.items() if "distances_cka" in a and "distances_svcca" in a}
    sections.append(("Appendix E — SVCCA against CKA",
                     {"appE_svcca_vs_cka": (pf.plot_metric_scatter(pairs), "Every pair of networks' SVCCA "
                                                                          "distance against its CKA distance.")}
                     if pairs else {}, "" if pairs else "<p class='skip'>Skipped: no SVCCA and CKA matrices.</p>"))
    return sections


def _untrained_section(untrained):
    title = "Fig. 4 — trained versus untrained (context, vanilla networks, CCA)"
    if untrained is None:
        return title, {}, "<p class='skip'>Skipped: no trained-versus-untrained run.</p>"
    from rnn_dyn.embedding import embed
    from rnn_dyn.universality import comparable, group_distances

    D, groups = untrained["distances"], untrained["groups"].astype(str)
    ok = comparable(D)
    fig = (plotting.plot_embedding(embed(D[np.ix_(ok, ok)]), {"group": groups[ok]}, "context, vanilla: CCA, MDS")
           if ok.sum() > 2 else "too few comparable networks for a map")
    names, means = group_distances(D, groups)
    means_html = table(["mean CCA distance"] + names,
                       [[html.escape(n)] + [fmt(v) for v in row] for n, row in zip(names, means)])
    return title, {"fig4_trained_vs_untrained": (fig, "MDS of the CCA distances between trained and untrained "
                                                      "vanilla networks, by group.")}, means_html


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def seed_spread(topology: dict) -> list:
    """Per task and configuration: do its seeds agree (:func:`~rnn_dyn.statistics.configuration_spread`)?

    Rows ``{task, config, n, within, between, ratio}`` on the SVCCA distances,
    plus ``ratio_<metric>`` for CKA and SVCCA (k = 10) where the task has them.
    """
    rows = []
    for task, arrays in topology.items():
        if "distances_svcca" not in arrays:
            continue
        base = configuration_spread(arrays["distances_svcca"], arrays["config"])
        for metric in ("cka", "svcca_k10"):
            if f"distances_{metric}" in arrays:
                for row, other in zip(base, configuration_spread(arrays[f"distances_{metric}"], arrays["config"])):
                    row[f"ratio_{metric}"] = other["ratio"]
        rows += [{"task": task, **r} for r in base]
    return rows


def make_report(experiment_id: str, topology_runs: dict, untrained_run: str | None, claims: list,
                sensitivity: list, note: str = "", key: str | None = None, run_id: str | None = None,
                beyond: list = ()) -> str:
    """Build the figures and ``report.html`` and log them, with ``claims.json``, as a ``report`` run.

    Parameters
    ----------
    experiment_id : str
    topology_runs : dict
        ``{task: run id}`` of each task's ``topology`` run; tasks not run are absent.
    untrained_run : str or None
        The ``untrained`` run (context, Fig. 4), if any.
    claims, sensitivity : list of dict
        Rows of :func:`rnn_dyn.claims.compute_claims` and :func:`rnn_dyn.claims.sensitivity`.
    note : str
        Shown prominently at the top (e.g. that a quick run's verdicts mean little).
    key : str, optional
        The run's ``rnn_dyn.key`` (default: from its inputs), by which a rerun finds it.
    run_id : str, optional
        The run claimed for it (:func:`rnn_dyn.tracking.claim`); a new run if not given.
    beyond : list of dict, optional
        Rows of :func:`rnn_dyn.claims.beyond_the_paper` (DSA): their own table, and
        ``claims.json``'s key ``beyond_the_paper``; not counted among the paper's claims.

    Returns
    -------
    str
        The report run's id (tag ``rnn_dyn.kind = report``).
    """
    start = time.time()
    tasks = sorted(topology_runs, key=task_rank)
    topology = {t: tracking.artifact_arrays(topology_runs[t], "topology.npz") for t in tasks}
    graphs = {t: tracking.artifact_arrays(topology_runs[t], "graphs.npz") for t in tasks}
    untrained = tracking.artifact_arrays(untrained_run, "untrained.npz") if untrained_run else None
    scale = study_scale(tracking.network_runs(experiment_id, include_diverged=True))
    from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

    # One BLAS thread: the PCAs' SVDs are small, and extra threads on a loaded machine cost
    # seconds each (measured: 3.7 s against 0.07 s for a 6,400 x 128 SVD on 2 busy cores).
    # The sections hold every figure (about 25) until each is written and closed by _png.
    with ThreadpoolController().limit(limits=1, user_api="blas"), plt.rc_context({"figure.max_open_warning": 0}):
        sections = build_sections(experiment_id, topology, graphs, untrained, scale)
        images = {name: _png(fig) for _, figs, _ in sections for name, (fig, _) in figs.items()
                  if isinstance(fig, plt.Figure)}
    spread = seed_spread(topology)
    page = render_html("rnn_dyn: universality and individuality — report", note, claims, sensitivity,
                       [{k: v for k, v in r.items()} for r in scale], sections, images, spread, list(beyond))
    writers = {f"{name}.png": tracking.write_bytes(b) for name, b in images.items()}
    writers["report.html"] = lambda p: open(p, "w", encoding="utf-8").write(page)
    writers["claims.json"] = tracking.write_json(_plain({"claims": claims, "beyond_the_paper": list(beyond),
                                                         "sensitivity": sensitivity, "spread": spread}))
    key = key or tracking.stage_key(kind="report", topology=topology_runs, untrained=untrained_run,
                                    claims=_plain(claims), sensitivity=_plain(sensitivity), note=note,
                                    beyond=_plain(list(beyond)))
    counts = {f"n_{v}": sum(c.get("verdict") == v for c in claims) for v in VERDICTS}
    params = {"tasks": ",".join(tasks), "untrained_run": untrained_run or "", "note": note[:500],
              **{f"topology_{t}": r for t, r in topology_runs.items()}}
    return tracking.log_stage(experiment_id, "report", key, "report", params,
                              {**counts, "n_claims": len(claims), "n_figures": len(images),
                               "report_seconds": time.time() - start}, writers=writers, run_id=run_id)


def _plain(obj):
    """JSON-ready: numpy scalars and arrays to Python, NaN to None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    return obj
