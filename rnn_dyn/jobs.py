"""What a study's workers compute: training, fixed points, and a task's analyses.

Each job takes plain data (configs as dicts, weights as arrays) and returns
plain data ready to log -- arrays, metrics, figures as PNG bytes -- so that
it runs on any executor's worker and only the driver talks to MLflow
(:mod:`rnn_dyn.study`).  TensorFlow is imported here, in the workers.
"""
from __future__ import annotations

import dataclasses
import io

import numpy as np

from rnn_dyn.config import RunConfig
from rnn_dyn.sweep_config import FITTED, GEOMETRY, TOPOLOGY_MODES, default_starts


def png(fig) -> bytes:
    """A figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def train_job(cfg: RunConfig) -> dict:
    """Train one population (:func:`rnn_dyn.training.train_run`)."""
    from rnn_dyn.training import train_run

    return train_run(cfg)


def _population(networks):
    """One population holding ``networks``, a list of ``(weights, config dict)`` of one architecture."""
    from rnn_dyn.population import Population
    from rnn_dyn.tasks import get_task

    cfgs = [RunConfig.from_dict(c) for _, c in networks]
    task = get_task(cfgs[0].task)
    population = Population(cfgs[0].model, task.n_inputs, task.n_outputs, [c.train.seed for c in cfgs])
    population.set_weights_dict({k: np.stack([w[k] for w, _ in networks]) for k in networks[0][0]})
    return population, task, cfgs


def _groups(networks):
    """Indices of ``networks`` grouped by architecture and task settings (one population each)."""
    groups = {}
    for i, (_, c) in enumerate(networks):
        groups.setdefault(repr((c["task"], c["model"])), []).append(i)
    return list(groups.values())


def one_network(fps, i):
    """Member ``i`` of a population's fixed points as a one-network result."""
    part = fps.for_network(i)
    return dataclasses.replace(part, network=np.zeros_like(part.network), n_networks=1,
                               n_starts=np.asarray(fps.n_starts)[i: i + 1],
                               n_discarded=np.asarray(fps.n_discarded)[i: i + 1])


def fixed_points_job(item: dict) -> list:
    """Fixed points of networks of one architecture, searched together.

    ``item``: ``networks`` (list of ``(weights, config dict)``), ``n_starts``
    (per condition, or None: :func:`~rnn_dyn.sweep_config.default_starts`),
    ``seed``, ``options`` (:func:`~rnn_dyn.find_fixed_points`).  Returns per
    network ``(fixed_points.npz bytes, metrics, figure PNG, n_starts)`` (bytes:
    the driver need not import TensorFlow to unpickle them).
    """
    from rnn_dyn.fixed_points import find_population_fixed_points
    from rnn_dyn.plotting import plot_fixed_points

    population, task, cfgs = _population(item["networks"])
    starts = item["n_starts"] or default_starts(len(task.x_cond))
    fps = find_population_fixed_points(population, task, n_starts=starts, seed=item["seed"], **item["options"])
    states = population.run(task.probe_set()["inputs"])[0].numpy()
    out = []
    for i, cfg in enumerate(cfgs):
        mine = one_network(fps, i)
        fig = plot_fixed_points(mine, states[i: i + 1])
        fig.suptitle(f"{cfg.task.name} {cfg.model.cell} {cfg.model.activation} seed {cfg.train.seed}")
        buf = io.BytesIO()
        mine.save(buf)
        out.append((buf.getvalue(), {k: int(v[0]) for k, v in mine.metrics().items()}, png(fig), starts))
    return out


def representations(networks, probe=None) -> list:
    """Each network's hidden states on its task's probe set, ``[n_trials, n_time, n_units]``;
    or on the inputs ``probe(task)`` returns."""
    from rnn_dyn.population import probe_representation

    reps = [None] * len(networks)
    for group in _groups(networks):
        population, task, _ = _population([networks[i] for i in group])
        inputs = None if probe is None else probe(task)
        n_time = task.cfg.n_time if inputs is None else np.shape(inputs)[1]
        for i, r in zip(group, probe_representation(population, task, inputs)):
            reps[i] = r.reshape(-1, n_time, r.shape[-1])
    return reps


def _labels(networks) -> dict:
    return {"cell": [c["model"]["cell"] for _, c in networks],
            "activation": [c["model"]["activation"] for _, c in networks]}


def _embed_finite(D):
    """MDS of the networks with finite rows; NaN rows elsewhere."""
    from rnn_dyn.embedding import embed
    from rnn_dyn.statistics import comparable

    ok = comparable(D)
    xy = np.full((len(D), 2), np.nan)
    if ok.sum() > 2:
        xy[ok] = embed(D[np.ix_(ok, ok)])
    return xy


def compare_job(item: dict) -> dict:
    """Distance matrices of one task's networks, for each of ``item["metrics"]`` (``GEOMETRY``
    names): ``{name: {distances [n, n], embedding [n, 2], separation {label: silhouette}, figure}}``."""
    from rnn_dyn.embedding import embed, separation
    from rnn_dyn.plotting import plot_embedding
    from rnn_dyn.similarity import pairwise_distances

    networks, out = item["networks"], {}
    reps = representations(networks) if set(item["metrics"]) - set(FITTED) else None
    labels = _labels(networks)
    varied = {k: v for k, v in labels.items() if len(set(v)) > 1}
    for name in item["metrics"]:
        metric, options = GEOMETRY[name]
        extra = {}
        if name in FITTED:  # trajectories: autonomous segments, delays and rank chosen by fit
            extra = dsa_fitted(networks, FITTED[name], item["task"])
            options = {**options, **extra.pop("options")}
            D = pairwise_distances(extra.pop("segments"), metric=metric, **options)
        else:  # states (samples x units)
            D = pairwise_distances([r.reshape(-1, r.shape[-1]) for r in reps], metric=metric, **options)
        xy = embed(D)
        title = f"{item['task']}: {name} ({len(networks)} networks)"
        out[name] = {"distances": D, "embedding": xy, "separation": separation(D, varied) if varied else {},
                     "options": options,
                     "figure": png(plot_embedding(xy, labels, title=title)), **extra}
    return out


def dsa_fitted(networks, fit, task_name) -> dict:
    """DSA's data and settings for one task's networks, chosen by fit (:class:`~rnn_dyn.sweep_config.DSAFitConfig`).

    Each network runs the task's DSA probe (:func:`~rnn_dyn.dsa_probes.dsa_probe`); its states are cut
    into constant-input segments and projected on its leading principal directions; the sweep over
    ``fit.n_delays`` x ``fit.ranks`` on a sample of the networks picks one ``(n_delays, rank)`` for all.

    Returns
    -------
    dict
        ``segments`` (per network), ``options`` (``n_delays``, ``rank``), ``params``, ``metrics``
        (``dsa_fit_r2_one_step``, ``dsa_fit_r2_multi_step``, ``dsa_fit_below_floor``...), ``arrays``
        (the chosen values and the two R² as 0-d arrays, for ``topology.npz``), ``tables``, ``figures``
        and ``warning`` (a line for the driver to print when the fit is below ``fit.r2_floor``; else None).
    """
    from rnn_dyn.dsa_fit import choose_dmd, constant_input_segments, probe_segments, sweep_dmd, sweep_table
    from rnn_dyn.dsa_probes import dsa_probe
    from rnn_dyn.tasks import get_task

    task = get_task(RunConfig.from_dict(networks[0][1]).task)
    inputs = dsa_probe(task, fit.min_length)
    index = constant_input_segments(inputs, fit.min_length)
    if len(index) < fit.holdout:
        raise ValueError(f"{task_name}: the DSA probe has {len(index)} constant-input segment(s) of "
                         f"{fit.min_length}+ states; the fit needs {fit.holdout} or more.")
    reps = representations(networks, probe=lambda t: dsa_probe(t, fit.min_length))
    segments = [probe_segments(r, inputs, fit.min_length, fit.n_pcs) for r in reps]
    sample = np.unique(np.linspace(0, len(networks) - 1, min(fit.n_sample, len(networks))).round().astype(int))
    sweep = sweep_dmd([segments[i] for i in sample], fit.n_delays, fit.ranks, fit.horizon, fit.holdout)
    choice = choose_dmd(sweep, fit.tolerance)
    below = choice["r2_multi_step"] < fit.r2_floor
    warning = (f"WARNING {task_name}: DSA's DMD fit is below its floor: multi-step R² "
               f"{choice['r2_multi_step']:.3f} < {fit.r2_floor} at n_delays {choice['n_delays']}, rank "
               f"{choice['rank']}; logged with dsa_fit_below_floor = 1") if below else None
    interface = {"dsa_n_delays": choice["n_delays"], "dsa_rank": choice["rank"],
                 "dsa_fit_r2_one_step": choice["r2_one_step"], "dsa_fit_r2_multi_step": choice["r2_multi_step"]}
    figure = _dsa_sweep_figure(sweep, choice, fit, f"{task_name}: DMD fit on held-out segments, "
                                                   f"{len(sample)} networks")
    width = min(s[0].shape[1] for s in segments) * choice["n_delays"]  # at most the narrowest network's
    return {"segments": segments, "options": {"n_delays": choice["n_delays"], "rank": min(choice["rank"], width)},
            "params": {"dsa_n_delays": choice["n_delays"], "dsa_rank": choice["rank"],
                       "dsa_n_segments": len(index), "dsa_sample": len(sample),
                       **{f"dsa_fit_{k}": v for k, v in fit.to_dict().items()}},
            "metrics": {"dsa_fit_r2_one_step": choice["r2_one_step"],
                        "dsa_fit_r2_multi_step": choice["r2_multi_step"],
                        "dsa_fit_best_r2_multi_step": choice["best_r2_multi_step"],
                        "dsa_fit_r2_persistence": choice["r2_persistence"],
                        "dsa_fit_below_floor": float(below)},
            "arrays": {k: np.asarray(v) for k, v in interface.items()},
            "tables": {"dsa_sweep": {"choice": choice, "floor": fit.r2_floor, "sample": sample.tolist(),
                                     "rows": sweep_table(sweep)}},
            "figures": {"dsa_sweep": png(figure)}, "warning": warning}


def _dsa_sweep_figure(sweep, choice, fit, title):
    """Mean held-out R² (one-step, multi-step) against rank, one line per n_delays; the choice marked."""
    import matplotlib.pyplot as plt

    from rnn_dyn.dsa_fit import mean_over_networks

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, key, label in zip(axes, ("one_step", "multi_step"), ("one-step", f"{fit.horizon}-step")):
        mean = mean_over_networks(sweep[key])
        for j, d in enumerate(sweep["n_delays"]):
            ax.plot(sweep["ranks"], mean[j], marker="o", ms=3, label=f"{d} delays")
        ax.plot([choice["rank"]], [choice[f"r2_{key}"]], "k*", ms=12, label="chosen")
        ax.set_xlabel("rank")
        ax.set_title(f"{label} prediction")
    axes[1].axhline(fit.r2_floor, color="gray", ls="--", lw=1, label="floor")
    axes[1].axhline(choice["r2_persistence"], color="red", ls=":", lw=1, label="no change")
    axes[0].set_ylabel("held-out R²")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=9)
    return fig


def _examples(labels) -> list:
    """Index of the first network of each label, in network order."""
    return sorted({lab: i for i, lab in reversed(list(enumerate(labels)))}.values())


def _task_figure(task, results, labels):
    """Paper Fig. 1e (flip-flop), 2f (sine) or 3f (context) for one task's networks."""
    from rnn_dyn import plotting

    if task.cfg.name == "flipflop":
        first = _examples(labels)
        return plotting.plot_transition_graphs([results[i]["graph"] for i in first], [labels[i] for i in first])
    if task.cfg.name == "sine":
        return plotting.plot_sine_frequencies(task.omega(task.grid), np.array([r["frequency"] for r in results]),
                                              labels)
    curves = [np.nanmedian(r["curve"], axis=0) if np.isfinite(r["curve"]).any() else r["curve"][0]
              for r in results]
    width = max(len(c) for c in curves)
    curves = np.array([np.pad(c, (0, width - len(c)), constant_values=1.0) for c in curves])
    return plotting.plot_integration(curves, [r["mean_n_near_one"] for r in results], labels)


def _graph_arrays(results):
    """Each network's graph as arrays: ``matrix_i``, ``readouts_i``, ``is_stable_i`` (flip-flop),
    ``adjacency_i``, ``values_i`` and ``labels_i`` (sine; ``_i_c`` per context)."""
    out = {}
    for i, r in enumerate(results):
        graphs = r["graph"] if isinstance(r["graph"], list) else [r["graph"]]
        for c, g in enumerate(graphs):
            tag = f"{i}_{c}" if isinstance(r["graph"], list) else f"{i}"
            fields = ("matrix", "readouts", "is_stable") if hasattr(g, "matrix") else ("adjacency", "values", "labels")
            out.update({f"{f}_{tag}": getattr(g, f) for f in fields})
    return out


def topology_job(item: dict) -> dict:
    """One task's topology next to its geometry (the universality table).

    ``item``: ``networks``, ``fixed_points`` (per network, ``fixed_points.npz``
    bytes), ``geometry`` (``{name: [n, n]}`` distances in network order),
    ``mode``, ``n_perturb``, ``seed``, optionally ``arrays`` (a comparison's
    0-d values, e.g. ``dsa_n_delays``, ``dsa_fit_r2_multi_step``: copied).
    Returns ``arrays`` (for ``topology.npz``: ``distances_<name>``,
    ``embedding_<name>``, per-network measures, ``config``, those values), ``graphs`` (for ``graphs.npz``), ``summary`` (for
    ``topology.json``), ``metrics`` and ``figures`` (PNG bytes).

    ``distances_topology`` is in ``mode`` (the claims' matrix; ``'paper'``: as
    the paper builds it, §3.1's footnote); for the flip-flop and sine, the
    other mode's matrix is ``distances_topology_<other mode>`` (a sensitivity row).
    """
    from rnn_dyn import universality
    from rnn_dyn.fixed_points import FixedPoints
    from rnn_dyn.plotting import plot_spectra, plot_universality
    from rnn_dyn.topology import keep_modal_count

    networks = item["networks"]
    fps = [FixedPoints.load(io.BytesIO(b)) for b in item["fixed_points"]]
    results = []
    for group in _groups(networks):
        population, task, _ = _population([networks[i] for i in group])
        options = {"n_perturb": item["n_perturb"], "seed": item["seed"]} if task.cfg.name == "flipflop" else {}
        for j, i in enumerate(group):
            results.append((i, universality.network_topology(task, population.member(j), fps[i], **options)))
    results = [r for _, r in sorted(results, key=lambda t: t[0])]
    name, labels = task.cfg.name, _labels(networks)
    config = [f"{c}/{a}" for c, a in zip(labels["cell"], labels["activation"])]
    graphs = [r["graph"] for r in results]
    matrices = {"topology": universality.topology_distances(name, graphs, item["mode"])}
    if name in ("flipflop", "sine"):
        other = next(m for m in TOPOLOGY_MODES if m != item["mode"])
        matrices[f"topology_{other}"] = universality.topology_distances(name, graphs, other)
    matrices.update(item["geometry"])
    table = universality.separation_table(matrices, labels)
    scalars = sorted(k for k, v in results[0].items() if isinstance(v, (int, float)))
    measures = {k: np.array([r[k] for r in results], float) for k in scalars}
    by_config = {lab: {k: float(np.nanmedian(v[np.array(config) == lab])) for k, v in measures.items()}
                 for lab in sorted(set(config))}  # medians: a ratio near 0/0 makes means useless
    summary = {"n_networks": len(networks), "separation": table, "by_config": by_config}
    embeddings = {m: _embed_finite(D) for m, D in matrices.items()}
    shown = [m for m in ("topology", "svcca", "cka", "dsa") if m in embeddings]
    if name in ("flipflop", "sine"):
        summary["paper_rule_drops"] = int(keep_modal_count([g.n_nodes for g in graphs])[1])
    figures = {"universality": plot_universality({m: embeddings[m] for m in shown},
                                                 labels, f"{name}: {len(networks)} networks"),
               name: _task_figure(task, results, config)}
    if name == "flipflop":
        summary["modal_structure"] = {k: list(v) for k, v in universality.modal_structure(results, config).items()}
    else:
        first = _examples(config)
        where = "the middle input u" if name == "sine" else "every fixed point of context 0"
        figures["spectra"] = plot_spectra([results[i]["spectrum"] for i in first], [config[i] for i in first],
                                          f"{name}: eigenvalues at {where}, one network per configuration")
    return {"arrays": {**{f"distances_{m}": D for m, D in matrices.items()},
                       **{f"embedding_{m}": xy for m, xy in embeddings.items()},
                       **measures, "config": np.array(config), **item.get("arrays", {})},
            "graphs": _graph_arrays(results), "summary": summary,
            "metrics": {f"separation_{m}_{k}": v for m, row in table.items() for k, v in row.items() if k != "n"},
            "figures": {k: png(f) for k, f in figures.items()}}


def _own_init(cfgs) -> str:
    """The recurrent initialiser every network was trained from (one for all)."""
    inits = sorted({c.model.recurrent_init for c in cfgs})
    gains = {c.model.recurrent_gain for c in cfgs}
    if len(inits) != 1 or len(gains) != 1:
        raise ValueError(f"the networks must share one recurrent initialisation; got recurrent_init {inits}, "
                         f"recurrent_gain {sorted(gains)}.")
    return inits[0]


def untrained_job(item: dict) -> dict:
    """Trained vanilla networks against untrained ones (paper §3.3, last paragraph; Fig. 4).

    Every network is driven by the context task's structured probes
    (:meth:`~rnn_dyn.tasks.context.ContextTask.structured_probes`: per context,
    the relevant stream noise-free at ``n_probe_levels`` levels), one context
    at a time, trained and untrained.  *Its own initialisation*: under the
    recurrent initialiser it was trained from (ours: orthogonal, gain 1), the
    untrained network is exactly the trained one's starting point (same seed,
    zero steps).  Under another initialiser (``identity``, ``normal``) it is
    the network of the same architecture and seed with that recurrent matrix
    (the same input and readout weights and biases, drawn from the same seed)
    -- not where the trained network started, but where it would have started
    under that initialiser.

    ``item``: ``networks`` (``(weights, config dict)``, context vanilla
    networks), ``metrics`` (``GEOMETRY`` names; default
    ``AnalysisConfig().untrained_metrics``) and ``inits`` (default
    ``AnalysisConfig().untrained_inits``; the networks' own comes first).

    Returns
    -------
    dict
        ``arrays`` (``untrained.npz``; ``n`` networks, ``m = 2 n`` rows):

        - ``groups [m]``: each row's ``"trained relu"``, ``"trained tanh"``,
          ``"untrained relu"`` or ``"untrained tanh"``: rows ``0..n-1`` are the
          trained networks in the order given, rows ``n..2n-1`` their
          untrained copies in the same order;
        - ``network [m]``: the trained network (index into ``networks``) a
          row belongs to;
        - ``metrics [k]``, ``inits [j]`` (``inits[0]``: the networks' own),
          ``levels [L]``, ``n_contexts`` (0-d);
        - ``distances_<metric>_<init>_context<c> [m, m]``
          (:func:`rnn_dyn.untrained.matrix_key`): distances on context ``c``'s
          probes, the untrained rows under ``init``;
        - ``n_components_<init>_context<c> [m]``: directions each row keeps
          for 95% of its variance (SVCCA's rule; only with ``svcca``);
        - ``distances [m, m]``: the claim's matrix (SVCCA 95%, own
          initialisation, context 0), for a quick look.

        ``summary`` (mean distance between the groups on ``distances``,
        ``groups.json``) and ``figures`` (an MDS map per context, the claim's
        measure).
    """
    from rnn_dyn import universality
    from rnn_dyn.plotting import plot_embedding
    from rnn_dyn.population import Population, probe_representation
    from rnn_dyn.prepared import prepare
    from rnn_dyn.similarity import pairwise_distances
    from rnn_dyn.sweep_config import AnalysisConfig
    from rnn_dyn.untrained import matrix_key

    networks, defaults = item["networks"], AnalysisConfig()
    metrics = tuple(item.get("metrics") or defaults.untrained_metrics)
    own = _own_init([RunConfig.from_dict(c) for _, c in networks])
    inits = tuple(dict.fromkeys((own, *(item.get("inits") or defaults.untrained_inits))))
    n = len(networks)
    reps = {}  # (state, init) -> [n] arrays [n_trials, n_time, n_units]
    for group in _groups(networks):
        trained, task, cfgs = _population([networks[i] for i in group])
        probes = task.structured_probes()
        pops = {("trained", own): trained}
        for init in inits:
            model = dataclasses.replace(cfgs[0].model, recurrent_init=init)
            pops["untrained", init] = Population(model, task.n_inputs, task.n_outputs, [c.train.seed for c in cfgs])
        for key, pop in pops.items():
            h = probe_representation(pop, task, probes["inputs"]).reshape(len(group), len(probes["level"]),
                                                                          task.n_time, -1)
            for i, r in zip(group, h):
                reps.setdefault(key, [None] * n)[i] = r
    contexts = range(task.cfg.n_contexts)
    activation = [c["model"]["activation"] for _, c in networks]
    groups = np.array([f"{state} {a}" for state in ("trained", "untrained") for a in activation])
    arrays = {"groups": groups, "network": np.tile(np.arange(n), 2), "metrics": np.array(metrics),
              "inits": np.array(inits), "levels": task.levels, "n_contexts": np.array(len(contexts))}
    rows = [("trained", own)] + [("untrained", i) for i in inits]  # one big matrix, then a slice per init
    for c in contexts:
        mine = probes["context"] == c
        flat = [r[mine].reshape(-1, r.shape[-1]) for key in rows for r in reps[key]]
        for name in metrics:
            metric, options = GEOMETRY[name]
            prepared = prepare(flat, metric, progress=False, **options)
            D = pairwise_distances(prepared, progress=False)
            for j, init in enumerate(inits):
                keep = np.r_[np.arange(n), n * (j + 1) + np.arange(n)]
                arrays[matrix_key(name, init, c)] = D[np.ix_(keep, keep)]
                if name == "svcca":
                    arrays[f"n_components_{init}_context{c}"] = np.asarray(prepared.ranks)[keep]
    shown = "svcca" if "svcca" in metrics else metrics[0]
    headline = arrays["distances"] = arrays[matrix_key(shown, own, 0)]
    names, means = universality.group_distances(headline, groups)
    figures = {f"trained_vs_untrained_context{c}": png(plot_embedding(
        _embed_finite(arrays[matrix_key(shown, own, c)]), {"group": groups},
        f"context {c}, vanilla: {shown} distances, trained vs untrained ({own} initialisation)"))
        for c in contexts}
    return {"arrays": arrays,
            "summary": {"groups": names, "mean_distance": means.tolist(), "n_networks": n,
                        "matrix": matrix_key(shown, own, 0), "metrics": list(metrics), "inits": list(inits)},
            "figures": figures}


def task_job(item: dict) -> dict:
    """Whatever one task still needs, each key only when asked for: ``compare`` (``metrics``
    to compute), ``topology`` (its options, with the networks' indices ``index`` that have
    fixed points, and ``arrays`` of finished comparisons) and ``untrained`` (the vanilla
    networks' indices; ``untrained_options``: :func:`untrained_job`'s ``metrics`` and ``inits``).
    Comparisons' ``arrays`` (DSA's chosen settings and fit) join the topology's."""
    out, networks = {}, item["networks"]
    if item.get("metrics"):
        out["compare"] = compare_job(item)
    if item.get("topology"):
        t = item["topology"]
        geometry = {**t["geometry"], **{m: r["distances"] for m, r in out.get("compare", {}).items()}}
        arrays = {**t.get("arrays", {}), **{k: v for r in out.get("compare", {}).values()
                                            for k, v in r.get("arrays", {}).items()}}
        index = np.asarray(t["index"])
        out["topology"] = topology_job({**t, "networks": [networks[i] for i in index], "arrays": arrays,
                                        "geometry": {m: D[np.ix_(index, index)] for m, D in geometry.items()}})
    if item.get("untrained"):
        out["untrained"] = untrained_job({**item.get("untrained_options", {}),
                                          "networks": [networks[i] for i in item["untrained"]]})
    return out
