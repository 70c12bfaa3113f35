"""Networks trained elsewhere, analysed and placed among a study's networks.

:func:`analyze_foreign` finds the fixed points of a PyTorch or Keras network
stored as an ``.npz`` (:func:`~rnn_dyn.importers.load_foreign_network`),
plots them and, given a task, computes its topology; :func:`place_foreign`
answers "where does my network sit among the population?": its distances to
every finished network of an experiment's task, the MDS map with it
highlighted and its nearest networks.  Each logs one MLflow run (``rnn_dyn.kind``
``foreign`` or ``placement``) keyed by the file's SHA-1 and the options, so a
rerun finds it and computes nothing.  They run in this process (TensorFlow is
imported here); ``python -m rnn_dyn.experiments analyze --weights`` and
``compare --with`` call them.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys

import numpy as np

from rnn_dyn import jobs, tracking
from rnn_dyn._checks import check_choice, check_positive, check_range
from rnn_dyn.config import TASKS, RunConfig, TaskConfig
from rnn_dyn.sweep_config import FITTED, GEOMETRY, AnalysisConfig, default_starts
from rnn_dyn.tasks import get_task

FORMATS = ("keras", "torch")  # rnn_dyn.importers.FORMATS, not imported here: it imports TensorFlow
MIN_NETWORKS = 3  # a placement needs this many of the experiment's networks
N_NEAREST = 5  # nearest networks reported
# Without a task the starts come from the autonomous map (zero input):
N_TRIALS, N_TIME = 128, 100  # trajectories from random initial states, and their steps
INIT_SCALE = 1.0  # initial states uniform in [-INIT_SCALE, INIT_SCALE] per coordinate
NOISE = 0.5  # added to the sampled starts, as find_population_fixed_points does


def file_sha1(path) -> str:
    """SHA-1 of a file's bytes (what the runs are keyed by)."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_file(path, flag):
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bool):
        raise ValueError(f"{flag} must be the path of an .npz file of weights; got {path!r}.")
    if not os.path.isfile(path):
        raise ValueError(f"{flag} file {os.fspath(path)!r} not found.")
    try:
        with np.load(path, allow_pickle=False) as f:
            f.files  # noqa: B018 -- an .npy array has no names
    except Exception as exc:  # noqa: BLE001 -- whatever numpy says, the file is not an .npz
        raise ValueError(f"{flag} file {os.fspath(path)!r} is not an .npz of named arrays "
                         f"({type(exc).__name__}: {exc}).") from None
    return os.fspath(path)


def _load(path, format, cell, activation):
    from rnn_dyn.executors import import_tensorflow

    import_tensorflow()
    from rnn_dyn.importers import load_foreign_network

    return load_foreign_network(path, format=format, cell=cell, activation=activation)


def _dsa_segments(net, task, fit) -> list:
    """The foreign network's DSA data, made as the study makes its networks' (:func:`rnn_dyn.jobs.dsa_fitted`)."""
    from rnn_dyn.dsa_fit import probe_segments
    from rnn_dyn.dsa_probes import dsa_probe
    from rnn_dyn.population import probe_representation

    inputs = dsa_probe(task, fit.min_length)
    return probe_segments(probe_representation(net, task, inputs)[0], inputs, fit.min_length, fit.n_pcs)


def _describe(net) -> dict:
    reset_after = bool(getattr(net.cell, "reset_after", False))
    return {"net_cell": net.model_cfg.cell + ("(reset_after)" if reset_after else ""),
            "activation": net.model_cfg.activation, "n_units": net.cell.units, "n_inputs": net.n_inputs,
            "n_outputs": net.n_outputs, "source": net.source}


def _name(path) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _finished(exp_id, key, extra) -> dict | None:
    rid = tracking.finished_stage(exp_id, key)
    if rid is None:
        return None
    run = tracking.client().get_run(rid)
    return {"run": rid, "skipped": True, **extra, **{k: v for k, v in run.data.metrics.items()}}


# -- fixed points --------------------------------------------------------------------
def _autonomous_fixed_points(net, n_starts, seed, options):
    """Fixed points under zero input, from the autonomous map's own trajectories.

    ``N_TRIALS`` initial states uniform in ``[-INIT_SCALE, INIT_SCALE]`` run
    ``N_TIME`` steps with zero input; ``n_starts`` states sampled from those
    trajectories (initial states included), plus Gaussian noise ``NOISE``.
    """
    from rnn_dyn.fixed_points import find_fixed_points, sample_states

    rng = np.random.default_rng(seed)
    n_state = net.cell.n_state
    h0 = rng.uniform(-INIT_SCALE, INIT_SCALE, (1, N_TRIALS, n_state)).astype(np.float32)
    states = net.run(np.zeros((N_TRIALS, N_TIME, net.n_inputs), np.float32), initial_state=h0)[0].numpy()
    states = np.concatenate([h0[:, :, None], states], axis=2)  # [1, N_TRIALS, N_TIME + 1, n_state]
    starts = sample_states(states, n_starts, NOISE, rng)
    fps = find_fixed_points(net.cell, np.zeros(net.n_inputs), starts, **{"region": states, **options})
    return fps, states[0]


def _scalars(result) -> dict:
    return {k: (int(v) if isinstance(v, (int, np.integer)) else float(v)) for k, v in result.items()
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)}


def analyze_foreign(path, format="torch", cell=None, task=None, experiment="foreign", n_starts=None, seed=0,
                    activation=None, **options) -> dict:
    """Fixed points (and, given a task, the topology) of a network trained elsewhere, logged as one run.

    Without a task the network is analysed under zero input: its starts are
    sampled, with Gaussian noise 0.5, from trajectories of the autonomous map
    run 100 steps from 128 initial states uniform in [-1, 1] per coordinate
    (an imported network need not come with a task's trials).  With a task,
    as the study's own networks are (:func:`~rnn_dyn.find_population_fixed_points`
    on the task's trials, under each condition input), followed by
    :func:`~rnn_dyn.universality.network_topology`; the topology needs a
    readout with the task's outputs (flip-flop and context order points by
    it) and is skipped, with a note, for a file without one.

    Parameters
    ----------
    path : str or PathLike
        ``.npz`` of PyTorch or Keras weights (see :func:`~rnn_dyn.importers.load_foreign_network`).
    format : {'torch', 'keras'}
    cell : {'rnn', 'vanilla', 'gru', 'lstm'}, optional
        Default: from the weights' shapes.
    task : {'flipflop', 'sine', 'context'}, optional
        The task the network was trained on (default settings: ``TaskConfig(name=task)``).
    experiment : str, default 'foreign'
        MLflow experiment of the run (created if needed).
    n_starts : int, optional
        Starts per condition (default 1024 without a task; with one, 1024 spread
        over its conditions, at least 16).
    seed : int, default 0
    activation : {'tanh', 'relu'}, optional
        Not stored in the weights (default tanh).
    **options
        :func:`~rnn_dyn.find_fixed_points` options (``tol_q``, ``max_polish`` ...).

    Returns
    -------
    dict
        ``run`` (run id), ``skipped`` (a finished run with the same file and
        options existed), ``n_fixed, n_slow, n_stable, n_saddles, n_discarded``
        and, with a task, ``topology_*`` measures.

    Raises
    ------
    ValueError
        A missing or unreadable file, bad format/cell/task/option, weights
        that do not fit the task's inputs or outputs.

    Notes
    -----
    The run (``rnn_dyn.kind = foreign``) holds params ``path, format, cell,
    task, sha1`` and the network's description, the metrics above, and the
    artifacts ``fixed_points.npz``, ``fixed_points.png`` and, with a task,
    ``topology.json``, ``graphs.npz`` and the task's figure (``<task>.png``).
    """
    from rnn_dyn.study import check_fixed_point_options

    path = _check_file(path, "weights")
    check_choice("format", format, FORMATS)
    if task is not None:
        check_choice("task", task, TASKS)
    if n_starts is not None:
        check_positive("n_starts", n_starts, integer=True)
    check_range("seed", seed, 0, 2**31 - 1, integer=True)
    check_fixed_point_options(options)
    sha1 = file_sha1(path)
    key = tracking.stage_key(kind="foreign", sha1=sha1, format=format, cell=cell, activation=activation,
                             task=task, n_starts=n_starts, seed=seed, options=options)
    exp = tracking.client().get_experiment_by_name(experiment)
    done = exp and _finished(exp.experiment_id, key, {"task": task})
    if done:
        return done

    net = _load(path, format, cell, activation)
    exp_id = tracking.get_experiment_id(experiment)
    from rnn_dyn.plotting import plot_fixed_points

    params = {"path": os.path.abspath(path), "format": format, "cell": cell, "task": task, "sha1": sha1,
              "seed": seed, **_describe(net), **options}
    figures, writers, metrics = {}, {}, {}
    if task is None:
        starts = n_starts or 1024
        fps, states = _autonomous_fixed_points(net, starts, seed, options)
    else:
        task_ = get_task(TaskConfig(name=task))
        if net.n_inputs != task_.n_inputs:
            raise ValueError(f"the network has n_inputs={net.n_inputs} but task {task!r} has "
                             f"{task_.n_inputs} inputs.")
        if net.n_outputs not in (0, task_.n_outputs):
            raise ValueError(f"the network's readout has n_outputs={net.n_outputs} but task {task!r} "
                             f"has {task_.n_outputs} outputs.")
        from rnn_dyn.fixed_points import find_population_fixed_points

        starts = n_starts or default_starts(len(task_.x_cond))
        fps = find_population_fixed_points(net, task_, n_starts=starts, seed=seed, **options)
        states = net.run(task_.probe_set()["inputs"])[0].numpy()[0]
    params["n_starts"] = starts
    metrics.update({k: int(v[0]) for k, v in fps.metrics().items()})
    figures["fixed_points"] = plot_fixed_points(fps, states)
    figures["fixed_points"].suptitle(f"{_name(path)}: {net.source} ({net.cell.units} units)"
                                     + (f" on {task}" if task else ", zero input"))
    if task is not None and net.n_outputs == 0:
        params["topology"] = "skipped: the file has no readout"
        print(f"note: {_name(path)} has no readout, which the {task} topology needs; topology skipped",
              file=sys.stderr)
    elif task is not None:
        from rnn_dyn.universality import network_topology

        options_ = {"n_perturb": AnalysisConfig().n_perturb, "seed": seed} if task == "flipflop" else {}
        result = network_topology(task_, net, fps, **options_)
        scalars = _scalars(result)
        metrics.update({f"topology_{k}": v for k, v in scalars.items() if np.isfinite(v)})
        figures[task] = jobs._task_figure(task_, [result], [params["net_cell"]])
        writers["topology.json"] = tracking.write_json({"task": task, **scalars})
        writers["graphs.npz"] = lambda p: np.savez(p, **jobs._graph_arrays([result]))
    writers["fixed_points.npz"] = fps.save
    rid = tracking.log_stage(exp_id, "foreign", key, f"foreign-{_name(path)}", params, metrics,
                             figures=figures, writers=writers)
    _close(figures)
    return {"run": rid, "skipped": False, "task": task, **metrics}


def _close(figures):
    import matplotlib.pyplot as plt

    for fig in figures.values():
        plt.close(fig)


# -- placement among an experiment's networks ----------------------------------------
def _experiment_task(exp_id, experiment, task, net) -> str:
    """The task to place ``net`` in: ``task``, or the one of the experiment's tasks whose inputs fit."""
    tasks = sorted({r.data.params.get("task") for r in tracking.network_runs(exp_id)} - {None})
    if task is not None:
        check_choice("task", task, TASKS)
        return task
    fits = [t for t in tasks if get_task(t).n_inputs == net.n_inputs]
    if len(fits) != 1:
        raise ValueError(f"cannot tell which task of experiment {experiment!r} (tasks {tasks}) to place a "
                         f"network with n_inputs={net.n_inputs} in"
                         f"{' (' + str(len(fits)) + ' fit)' if fits else ''}; pass task.")
    return fits[0]


def _placement_figure(xy, labels, nearest, title):
    """The MDS map: the population coloured by configuration, the foreign network a red star
    joined to its nearest networks."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.8))
    config = np.asarray(labels)
    for i, c in enumerate(sorted(set(config.tolist()))):
        sel = np.append(config == c, False)  # the last point is the foreign network
        ax.scatter(xy[sel, 0], xy[sel, 1], s=28, color=plt.cm.tab10(i % 10), label=c, edgecolor="white",
                   linewidth=0.5)
    for j in nearest:
        ax.plot(*np.stack([xy[-1], xy[j]]).T, color="tab:red", lw=0.6, alpha=0.6)
    ax.scatter(*xy[-1], marker="*", s=260, color="tab:red", edgecolor="black", linewidth=0.6,
               label="your network", zorder=3)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def place_foreign(experiment, path, format="torch", cell=None, task=None, metric="svcca",
                  activation=None) -> dict:
    """Where does a network trained elsewhere sit among an experiment's networks?

    Its hidden states on the task's probe set (the experiment's own task
    settings) are compared with every finished network of that task: the
    experiment's distance matrix extended by one row and column, its MDS map
    with the network highlighted, and its nearest networks.  Widths may differ
    (the geometry metrics compare any two widths).

    Parameters
    ----------
    experiment : str
        An existing experiment with at least 3 finished networks of the task.
    path : str or PathLike
        ``.npz`` of PyTorch or Keras weights (see :func:`~rnn_dyn.importers.load_foreign_network`).
    format : {'torch', 'keras'}
    cell : {'rnn', 'vanilla', 'gru', 'lstm'}, optional
    task : {'flipflop', 'sine', 'context'}, optional
        Default: the one of the experiment's tasks whose number of inputs the network has.
    metric : str, default 'svcca'
        A name of :data:`rnn_dyn.sweep_config.GEOMETRY` (``svcca cka cca procrustes svcca_k10 svcca_k20
        dsa``; DSA's delays and rank are chosen by fit on the population, as in the study).
    activation : {'tanh', 'relu'}, optional

    Returns
    -------
    dict
        ``run``, ``skipped``, ``task``, ``n_networks``, ``nearest`` (up to 5:
        ``run_id, cell, activation, n_units, seed, distance``), ``nearest_distance``
        and ``nearest_percentile``: the percentage of the population's networks
        whose own nearest neighbour is closer than the foreign network's (near
        100: it sits outside the population).

    Raises
    ------
    ValueError
        An unknown experiment or metric, a task with fewer than 3 finished
        networks, a network whose inputs do not fit the task, a bad file.

    Notes
    -----
    The run (``rnn_dyn.kind = placement``) holds params ``path, format, cell,
    task, metric, sha1, n_networks``, the metrics ``nearest_distance,
    median_distance, nearest_percentile``, and the artifacts
    ``distances.npz`` (``distances [n + 1, n + 1]``, the foreign network
    last; ``run_ids``, ``embedding``, ``cell``, ``activation``, ``n_units``),
    ``placement.png`` and ``nearest.json`` (nearest networks and mean
    distance per configuration).
    """
    check_choice("metric", metric, GEOMETRY)
    path = _check_file(path, "with")
    check_choice("format", format, FORMATS)
    exp_id = tracking.experiment_id(experiment)
    net = _load(path, format, cell, activation)
    task = _experiment_task(exp_id, experiment, task, net)
    runs = tracking.network_runs(exp_id, task)
    if len(runs) < MIN_NETWORKS:
        raise ValueError(f"experiment {experiment!r} has {len(runs)} finished {task} network(s); "
                         f"a placement needs {MIN_NETWORKS} or more.")
    ids = [r.info.run_id for r in runs]
    sha1 = file_sha1(path)
    key = tracking.stage_key(kind="placement", sha1=sha1, format=format, cell=cell, activation=activation,
                             metric=metric, runs=ids)
    done = _finished(exp_id, key, {"task": task, "n_networks": len(ids)})
    if done:
        with open(tracking.artifact(done["run"], "nearest.json")) as f:
            return {**done, "nearest": json.load(f)["nearest"]}
    networks = [tracking.network_weights(rid) for rid in ids]
    task_ = get_task(RunConfig.from_dict(networks[0][1]).task)
    if net.n_inputs != task_.n_inputs:
        raise ValueError(f"the network has n_inputs={net.n_inputs} but task {task!r} has {task_.n_inputs} inputs.")
    from rnn_dyn.population import probe_representation
    from rnn_dyn.similarity import pairwise_distances

    name, options = GEOMETRY[metric]
    if metric in FITTED:  # DSA: the population's settings, chosen by fit as in the study (jobs.dsa_fitted)
        fitted = jobs.dsa_fitted(networks, FITTED[metric], task)
        reps = fitted["segments"] + [_dsa_segments(net, task_, FITTED[metric])]
        width = min(s[0].shape[1] for s in reps) * fitted["options"]["n_delays"]
        options = {**options, **fitted["options"], "rank": min(fitted["options"]["rank"], width)}
    else:  # samples x units
        reps = [r.reshape(-1, r.shape[-1]) for r in
                jobs.representations(networks) + [probe_representation(net, task_)[0]]]
    D = pairwise_distances(reps, metric=name, **options)
    xy = jobs._embed_finite(D)
    models = [c["model"] for _, c in networks]
    configs = [f"{m['cell']}/{m['activation']}" for m in models]
    d = D[-1, :-1]
    order = [int(j) for j in np.argsort(d, kind="stable")[:N_NEAREST] if np.isfinite(d[j])]
    nearest = [{"run_id": ids[j], "cell": models[j]["cell"], "activation": models[j]["activation"],
                "n_units": models[j]["n_units"], "seed": networks[j][1]["train"]["seed"],
                "distance": float(d[j])} for j in order]
    own = D[:-1, :-1] + np.diag(np.full(len(ids), np.inf))
    own_nearest = np.nanmin(own, axis=1)
    metrics = {"nearest_distance": float(np.nanmin(d)), "median_distance": float(np.nanmedian(d)),
               "nearest_percentile": float(100 * np.mean(own_nearest < np.nanmin(d)))}
    by_config = {c: float(np.nanmean(d[np.array(configs) == c])) for c in sorted(set(configs))}
    about = _describe(net)
    labels = {"cell": np.array([m["cell"] for m in models] + [about["net_cell"]]),
              "activation": np.array([m["activation"] for m in models] + [about["activation"]]),
              "n_units": np.array([m["n_units"] for m in models] + [about["n_units"]])}
    fig = _placement_figure(xy, configs, order[:3], f"{task}: {metric}, {_name(path)} among {len(ids)} networks")
    params = {"path": os.path.abspath(path), "format": format, "cell": cell, "task": task, "metric": metric,
              "sha1": sha1, "n_networks": len(ids), **about}
    rid = tracking.log_stage(
        exp_id, "placement", key, f"placement-{task}-{_name(path)}", params, metrics,
        arrays={"distances": {"distances": D, "run_ids": np.array(ids + ["foreign"]), "embedding": xy, **labels}},
        figures={"placement": fig},
        writers={"nearest.json": tracking.write_json({"nearest": nearest, "mean_distance_by_config": by_config,
                                                      **metrics})})
    _close({"placement": fig})
    return {"run": rid, "skipped": False, "task": task, "n_networks": len(ids), "nearest": nearest, **metrics}
