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
- ``claims.json``: ``{"claims": [...], "sensitivity": [...]}`` as given.

The claims are computed elsewhere (:mod:`rnn_dyn.claims`); this module only shows them.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rnn_dyn import paper_figures as pf  # noqa: E402
from rnn_dyn import plotting, tracking  # noqa: E402

TASK_ORDER = ("flipflop", "sine", "context")
TASK_TITLES = {"flipflop": "Fig. 1 — 3-bit flip-flop", "sine": "Fig. 2 — frequency-cued sine wave",
               "context": "Fig. 3 — context-dependent integration"}
METHOD_LABELS = {"svcca": "SVCCA 95%", "svcca_k10": "SVCCA k=10", "svcca_k20": "SVCCA k=20", "cka": "CKA",
                 "cca": "CCA", "procrustes": "Procrustes", "dsa": "DSA"}
CLAIM_COLUMNS = ("id", "claim", "value", "ci", "p_value", "n", "verdict", "reason")
LOSS_THRESHOLD = 0.1  # "well below a tenth of the zero-output loss"


# -- reading what the study logged -----------------------------------------------------
def _npz(run_id: str, name: str) -> dict:
    with np.load(tracking.artifact(run_id, name)) as f:
        return {k: f[k] for k in f.files}


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
    for (task, config), row in sorted(rows.items(), key=lambda kv: (_task_rank(kv[0][0]), pf.config_key(kv[0][1]))):
        f = np.array(row["fractions"], float)
        ok = f[np.isfinite(f)]
        out.append({"task": task, "config": config, "networks": len(f), "units": ", ".join(sorted(row["units"])),
                    "iterations": ", ".join(sorted(row["iterations"])), "diverged": row["diverged"],
                    "median_fraction": float(np.median(ok)) if ok.size else None,
                    "max_fraction": float(ok.max()) if ok.size else None, "fractions": f})
    return out


def _task_rank(task):
    return TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER)


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
                                                          "flip-flop: SVCCA distance by configuration"),
                                  "SVCCA distances between every pair of networks, ordered by configuration.")}
    panels = _subset_maps(arrays)
    figs["fig1_mds"] = (pf.plot_embeddings(panels, "flip-flop: geometry") if panels else
                        "too few networks per label for the tanh / vanilla maps",
                        "MDS of the SVCCA distances among tanh networks (by architecture) and among vanilla "
                        "networks (by activation), as in the paper's Fig. 1d.")
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
             "mean_one_mode": "share of the slowest mode"}
    measures = {names[k]: arrays[k] for k in names if k in arrays}
    figs["fig3_integration"] = (pf.plot_measures(measures, arrays["config"], "context: linear integration per network")
                                if measures else "no integration measures logged",
                                "Per network (mean over its points): modes needed for 90% of the integrated readout, "
                                "eigenvalues near 1, and the slowest mode's share; bars: medians.")
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
    table = _table(["mean CCA distance"] + names, [[n] + [_fmt(v) for v in row] for n, row in zip(names, means)])
    return title, {"fig4_trained_vs_untrained": (fig, "MDS of the CCA distances between trained and untrained "
                                                      "vanilla networks, by group.")}, table


# -- HTML -------------------------------------------------------------------------------
def _fmt(v) -> str:
    if v is None or isinstance(v, float) and not math.isfinite(v):
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.3g}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float, type(None))) for x in v):
        return f"[{_fmt(v[0])}, {_fmt(v[1])}]"
    return json.dumps(v, default=str)


def _table(header, rows, classes=None) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='{html.escape(c)}'>{cell}</td>" if c else f"<td>{cell}</td>"
                                    for cell, c in zip(row, (classes or [[""] * len(row)] * len(rows))[k])) + "</tr>"
                   for k, row in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict_class(v) -> str:
    return f"v-{str(v or 'inconclusive').lower()}"


def claims_table(claims: list) -> str:
    rows, classes = [], []
    for c in claims:
        cells = [html.escape(str(c.get("id", ""))),
                 html.escape(str(c.get("claim", ""))) + (f"<div class='measure'>{html.escape(str(c['measure']))}</div>"
                                                         if c.get("measure") else ""),
                 *(html.escape(_fmt(c.get(k))) for k in ("value", "ci", "p_value", "n")),
                 html.escape(str(c.get("verdict", ""))), html.escape(str(c.get("reason") or ""))]
        rows.append(cells)
        classes.append([""] * 6 + [_verdict_class(c.get("verdict")), ""])
    return _table(["id", "claim", "value", "CI", "p", "n", "verdict", "reason"], rows, classes)


def sensitivity_table(sensitivity: list) -> str:
    methods = list(dict.fromkeys([m for m in METHOD_LABELS if any(r.get("method") == m for r in sensitivity)] +
                                 [r.get("method") for r in sensitivity]))
    by_id = {}
    for r in sensitivity:
        by_id.setdefault(str(r.get("id")), {})[r.get("method")] = r
    rows, classes = [], []
    for cid, cells in by_id.items():
        rows.append([html.escape(cid)] + [
            f"{html.escape(_fmt(cells[m].get('value')))}<div class='measure'>p {html.escape(_fmt(cells[m].get('p_value')))}"
            f", n {html.escape(_fmt(cells[m].get('n')))}</div>" if m in cells else "" for m in methods])
        classes.append([""] + [_verdict_class(cells[m].get("verdict")) if m in cells else "" for m in methods])
    return _table(["claim"] + [METHOD_LABELS.get(m, str(m)) for m in methods], rows, classes)


def scale_table(scale: list) -> str:
    rows = [[html.escape(str(r[k])) for k in ("task", "config", "networks", "units", "iterations")] +
            [_fmt(r["median_fraction"]), _fmt(r["max_fraction"]), str(r["diverged"])] for r in scale]
    return _table(["task", "configuration", "networks", "units", "iterations", "final loss / zero loss (median)",
                   "(max)", "diverged"], rows)


def scale_summary(scale: list) -> str:
    """One sentence per task: networks, per configuration, units, iterations, losses, divergences."""
    lines = []
    for task in sorted({r["task"] for r in scale}, key=_task_rank):
        rows = [r for r in scale if r["task"] == task]
        f = np.concatenate([r["fractions"] for r in rows])
        per = sorted({r["networks"] for r in rows})
        units = sorted({u for r in rows for u in r["units"].split(", ")})
        its = sorted({i for r in rows for i in r["iterations"].split(", ")})
        lines.append(f"<li><b>{html.escape(task)}</b>: {len(f)} networks in {len(rows)} configurations "
                     f"({'–'.join(map(str, (per[0], per[-1]))) if len(per) > 1 else per[0]} each), "
                     f"{html.escape(', '.join(units))} units, {html.escape(', '.join(its))} iterations; "
                     f"final loss below {LOSS_THRESHOLD:g} of the zero-output loss for "
                     f"{int(np.sum(f[np.isfinite(f)] < LOSS_THRESHOLD))} of {len(f)}; "
                     f"{sum(r['diverged'] for r in rows)} diverged.</li>")
    return f"<ul>{''.join(lines)}</ul>"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


CSS = """body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;
vertical-align:top}th{background:#f0f0f0}.measure{font-size:11px;color:#666}.note{background:#fff3cd;border:2px solid
#e0a800;padding:.6em 1em;font-weight:bold;margin:1em 0}.v-reproduced{background:#d4edda}.v-contradicted{background:
#f8d7da}.v-inconclusive{background:#eee}figure{margin:1em 0}figcaption{font-size:13px;color:#444}img{max-width:100%}
.skip{font-style:italic;color:#888}"""


def render_html(title: str, note: str, claims: list, sensitivity: list, scale: list, sections: list,
                images: dict) -> str:
    """The page; ``images`` is ``{figure name: PNG bytes}`` for the figures of ``sections``."""
    counts = {v: sum(c.get("verdict") == v for c in claims) for v in ("reproduced", "contradicted", "inconclusive")}
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<div class='note'>{html.escape(note)}</div>" if note else "",
             "<p>Reproducing Maheswaranathan et al., <i>Universality and individuality in neural dynamics across "
             "large populations of recurrent networks</i> (NeurIPS 2019). " +
             ", ".join(f"{n} {v}" for v, n in counts.items()) + f" of {len(claims)} claims.</p>",
             "<h2>Claims</h2>", claims_table(claims),
             "<h2>Sensitivity of the geometry claims to the method</h2>",
             sensitivity_table(sensitivity) if sensitivity else "<p class='skip'>No sensitivity rows given.</p>",
             "<h2>Scale of the study</h2>", scale_summary(scale) + scale_table(scale) if scale else "<p class='skip'>No network runs.</p>"]
    for head, figs, extra in sections:
        parts.append(f"<h2>{html.escape(head)}</h2>{extra}")
        for name, (fig, caption) in figs.items():
            if name in images:
                data = base64.b64encode(images[name]).decode("ascii")
                parts.append(f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>"
                             f"<figcaption><b>{html.escape(name)}</b>. {html.escape(caption)}</figcaption></figure>")
            else:
                parts.append(f"<p class='skip'>{html.escape(name)} skipped: {html.escape(str(fig))}.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def make_report(experiment_id: str, topology_runs: dict, untrained_run: str | None, claims: list,
                sensitivity: list, note: str = "") -> str:
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

    Returns
    -------
    str
        The report run's id (tag ``rnn_dyn.kind = report``).
    """
    start = time.time()
    tasks = sorted(topology_runs, key=_task_rank)
    topology = {t: _npz(topology_runs[t], "topology.npz") for t in tasks}
    graphs = {t: _npz(topology_runs[t], "graphs.npz") for t in tasks}
    untrained = _npz(untrained_run, "untrained.npz") if untrained_run else None
    scale = study_scale(tracking.network_runs(experiment_id, include_diverged=True))
    sections = build_sections(experiment_id, topology, graphs, untrained, scale)
    images = {name: _png(fig) for _, figs, _ in sections for name, (fig, _) in figs.items()
              if isinstance(fig, plt.Figure)}
    page = render_html("rnn_dyn: universality and individuality — report", note, claims, sensitivity,
                       [{k: v for k, v in r.items()} for r in scale], sections, images)
    writers = {f"{name}.png": (lambda p, b=b: open(p, "wb").write(b)) for name, b in images.items()}
    writers["report.html"] = lambda p: open(p, "w", encoding="utf-8").write(page)
    writers["claims.json"] = tracking.write_json(_plain({"claims": claims, "sensitivity": sensitivity}))
    key = tracking.stage_key(kind="report", topology=topology_runs, untrained=untrained_run,
                             claims=_plain(claims), sensitivity=_plain(sensitivity), note=note)
    counts = {f"n_{v}": sum(c.get("verdict") == v for c in claims) for v in ("reproduced", "contradicted",
                                                                              "inconclusive")}
    params = {"tasks": ",".join(tasks), "untrained_run": untrained_run or "", "note": note[:500],
              **{f"topology_{t}": r for t, r in topology_runs.items()}}
    return tracking.log_stage(experiment_id, "report", key, "report", params,
                              {**counts, "n_claims": len(claims), "n_figures": len(images),
                               "report_seconds": time.time() - start}, writers=writers)


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
