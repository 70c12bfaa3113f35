"""The report's page: tables and HTML from plain data (no MLflow, no matplotlib).

:func:`render_html` writes one self-contained page -- inline CSS, figures as
``data:`` URIs, no script and no external resource -- from the claims and
sensitivity rows (:mod:`rnn_dyn.claims`), the study's scale
(:func:`rnn_dyn.report.study_scale`) and the figure sections that
:mod:`rnn_dyn.report` builds.  Verdicts are coloured: reproduced green,
contradicted red, inconclusive grey.
"""
from __future__ import annotations

import base64
import html
import json
import math

import numpy as np

TASK_ORDER = ("flipflop", "sine", "context")
METHOD_LABELS = {"svcca": "SVCCA 95%", "svcca_k10": "SVCCA k=10", "svcca_k20": "SVCCA k=20", "cka": "CKA",
                 "cca": "CCA", "procrustes": "Procrustes", "dsa": "DSA", "topology": "topology (claims' mode)",
                 "topology_matching": "topology, matching", "topology_paper": "topology, paper's rule"}
VERDICTS = ("reproduced", "contradicted", "inconclusive")
LOSS_THRESHOLD = 0.1  # "well below a tenth of the zero-output loss"


def task_rank(task) -> int:
    """Position of a task in the paper's order (unknown tasks last)."""
    return TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER)


def fmt(v) -> str:
    """A value for a table cell: 3 significant digits, ``[lo, hi]`` for a CI, "—" for missing or NaN."""
    if v is None or isinstance(v, float) and not math.isfinite(v):
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.3g}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float, type(None))) for x in v):
        return f"[{fmt(v[0])}, {fmt(v[1])}]"
    return json.dumps(v, default=str)


def table(header, rows, classes=None) -> str:
    """An HTML table; ``rows`` are lists of cell HTML, ``classes`` the same shape of CSS classes."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='{html.escape(c)}'>{cell}</td>" if c else f"<td>{cell}</td>"
                                    for cell, c in zip(row, (classes or [[""] * len(row)] * len(rows))[k])) + "</tr>"
                   for k, row in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict_class(v) -> str:
    return f"v-{str(v or 'inconclusive').lower()}"


def _value_cell(c) -> str:
    """A claim's value, with what qualifies it: a non-robust geometry verdict (†) shows SVCCA k = 10's
    value beside it; a topology claim its own separation."""
    out = html.escape(fmt(c.get("value")))
    details = c.get("details") or {}
    if c.get("robust") is False:
        other = details.get("svcca_k10", {})
        out += (f" †<div class='measure'>not robust: SVCCA 95% {html.escape(fmt(c.get('value')))} "
                f"(p {html.escape(fmt(c.get('p_value')))}, {html.escape(str(c.get('verdict')))}); SVCCA k=10 "
                f"{html.escape(fmt(other.get('value')))} (p {html.escape(fmt(other.get('p_value')))}, "
                f"{html.escape(str(other.get('verdict')))})</div>")
    if "silhouette_topology" in details:
        out += (f"<div class='measure'>topology's own silhouette {html.escape(fmt(details['silhouette_topology']))}"
                f" (p {html.escape(fmt(details.get('p_topology')))})</div>")
    fit = [f"{k[8:].replace('_', ' ')} {fmt(details[k])}" for k in ("dsa_fit_r2_one_step", "dsa_fit_r2_multi_step")
           if details.get(k) is not None]
    if fit:
        out += f"<div class='measure'>DMD fit R²: {html.escape(', '.join(fit))}</div>"
    return out


def claims_table(claims: list) -> str:
    """The claims with value, CI, p, n, verdict and reason; † marks a verdict that SVCCA k = 10 does not share."""
    rows, classes = [], []
    for c in claims:
        cells = [html.escape(str(c.get("id", ""))),
                 html.escape(str(c.get("claim", ""))) + (f"<div class='measure'>{html.escape(str(c['measure']))}</div>"
                                                         if c.get("measure") else ""),
                 _value_cell(c), *(html.escape(fmt(c.get(k))) for k in ("ci", "p_value", "n")),
                 html.escape(str(c.get("verdict", ""))), html.escape(str(c.get("reason") or ""))]
        rows.append(cells)
        classes.append([""] * 6 + [_verdict_class(c.get("verdict")), ""])
    return table(["id", "claim", "value", "CI", "p", "n", "verdict", "reason"], rows, classes)


def sensitivity_table(sensitivity: list) -> str:
    methods = list(dict.fromkeys([m for m in METHOD_LABELS if any(r.get("method") == m for r in sensitivity)] +
                                 [r.get("method") for r in sensitivity]))
    by_id = {}
    for r in sensitivity:
        by_id.setdefault(str(r.get("id")), {})[r.get("method")] = r
    rows, classes = [], []
    for cid, cells in by_id.items():
        cell = lambda r: (f"{html.escape(fmt(r.get('value')))}<div class='measure'>"  # noqa: E731
                          f"p {html.escape(fmt(r.get('p_value')))}, n {html.escape(fmt(r.get('n')))}</div>")
        rows.append([html.escape(cid)] + [cell(cells[m]) if m in cells else "" for m in methods])
        classes.append([""] + [_verdict_class(cells[m].get("verdict")) if m in cells else "" for m in methods])
    return table(["claim"] + [METHOD_LABELS.get(m, str(m)) for m in methods], rows, classes)


def spread_table(spread: list) -> str:
    """Per task and configuration: mean SVCCA distance among its seeds, to the other cells, their ratio."""
    extra = [m for m in ("svcca_k10", "cka") if any(f"ratio_{m}" in r for r in spread)]
    rows = [[html.escape(str(r["task"])), html.escape(str(r["config"])), str(r["n"])] +
            [fmt(r[k]) for k in ("within", "between", "ratio")] + [fmt(r.get(f"ratio_{m}")) for m in extra]
            for r in spread]
    classes = [[""] * 5 + ["v-contradicted" if (r["ratio"] or 0) > 1 else ""] + [""] * len(extra) for r in spread]
    return table(["task", "configuration", "networks", "SVCCA among its seeds", "to the other cells (same activation)",
                  "ratio"] + [f"ratio, {METHOD_LABELS[m]}" for m in extra], rows, classes)


def scale_table(scale: list) -> str:
    rows = [[html.escape(str(r[k])) for k in ("task", "config", "networks", "units", "iterations")] +
            [fmt(r["median_fraction"]), fmt(r["max_fraction"]), str(r["diverged"])] for r in scale]
    return table(["task", "configuration", "networks", "units", "iterations", "final loss / zero loss (median)",
                   "(max)", "diverged"], rows)


def scale_summary(scale: list) -> str:
    """One sentence per task: networks, per configuration, units, iterations, losses, divergences."""
    lines = []
    for task in sorted({r["task"] for r in scale}, key=task_rank):
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


CSS = """body{font-family:sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;
vertical-align:top}th{background:#f0f0f0}.measure{font-size:11px;color:#666}.note{background:#fff3cd;border:2px solid
#e0a800;padding:.6em 1em;font-weight:bold;margin:1em 0}.v-reproduced{background:#d4edda}.v-contradicted{background:
#f8d7da}.v-inconclusive{background:#eee}figure{margin:1em 0}figcaption{font-size:13px;color:#444}img{max-width:100%}
.skip{font-style:italic;color:#888}"""


def render_html(title: str, note: str, claims: list, sensitivity: list, scale: list, sections: list,
                images: dict, spread: list = (), beyond: list = ()) -> str:
    """The report as one self-contained HTML page.

    Parameters
    ----------
    title, note : str
        ``note`` (if any) is shown in a box above everything else.
    claims, sensitivity : list of dict
        Rows as :mod:`rnn_dyn.claims` returns them (see :func:`claims_table`, :func:`sensitivity_table`).
    scale : list of dict
        :func:`rnn_dyn.report.study_scale`'s rows.
    sections : list of (title, {name: (figure or note, caption)}, html)
        A figure whose name is not in ``images`` is shown as "<name> skipped: <note>".
    images : dict
        ``{figure name: PNG bytes}``, embedded as ``data:image/png;base64`` URIs.
    spread : list of dict, optional
        :func:`rnn_dyn.report.seed_spread`'s rows (see :func:`spread_table`).
    beyond : list of dict, optional
        :func:`rnn_dyn.claims.beyond_the_paper`'s records, in a table of their own.

    Returns
    -------
    str
    """
    counts = {v: sum(c.get("verdict") == v for c in claims) for v in VERDICTS}
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<div class='note'>{html.escape(note)}</div>" if note else "",
             "<p>Reproducing Maheswaranathan et al., <i>Universality and individuality in neural dynamics across "
             "large populations of recurrent networks</i> (NeurIPS 2019). " +
             ", ".join(f"{n} {v}" for v, n in counts.items()) + f" of {len(claims)} claims.</p>",
             "<h2>Claims</h2>", claims_table(claims),
             "<p class='measure'>† not robust: SVCCA with 95% of the variance and with k = 10 reach different "
             "verdicts; both values are shown.</p>" if any(c.get("robust") is False for c in claims) else "",
             ("<h2>Beyond the paper</h2><p>Questions the paper did not ask, judged the same way; not counted "
              "among its claims.</p>" + claims_table(list(beyond))) if len(beyond) else "",
             "<h2>Sensitivity of the geometry and topology claims to the method</h2>",
             sensitivity_table(sensitivity) if sensitivity else "<p class='skip'>No sensitivity rows given.</p>",
             ("<h2>Do the seeds of one configuration agree?</h2>"
              "<p>Mean distance between the networks of one configuration, against that from them to the other "
             "cells' networks of the same activation. A ratio above 1 (red) says that its seeds reached "
             "different solutions, farther apart than the architectures are: such a configuration blurs "
             "the geometry claims.</p>" + spread_table(list(spread))) if len(spread) else "",
             "<h2>Scale of the study</h2>",
             scale_summary(scale) + scale_table(scale) if scale else "<p class='skip'>No network runs.</p>"]
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
