"""Command line: ``python -m rnn_dyn.experiments COMMAND --flag=value`` (wiring only).

Commands
--------
train   Train one population and log it to MLflow.
sweep   Run a sweep spec (default ``experiments/quick.yaml``) on an executor.
analyze Fixed points and linearizations of the finished networks of an experiment.
compare Distance matrices between the finished networks of an experiment.
topology Fixed-point topology next to geometry: the universality table (paper §3–4).

Every flag is named after a config field; list-valued flags such as
``--l2='[1e-4,1e-3]'`` spread over the members.  Input is checked before any
work starts and before any MLflow run is created.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

SPEC_DIRS = (Path.cwd() / "experiments", Path(__file__).resolve().parent.parent / "experiments")


def _configs():
    from rnn_dyn import config

    return config


def load_spec(spec: str) -> dict:
    """Read a sweep spec: a YAML path, or a name in ``experiments/`` (``quick``, ``paper``)."""
    import yaml

    candidates = [Path(spec)] + [d / f"{spec}.yaml" for d in SPEC_DIRS]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise ValueError(f"spec {spec!r} is neither a file nor a spec name in "
                         f"{[str(d) for d in SPEC_DIRS]}.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"spec {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"spec {str(path)!r} must be a mapping of sweep fields; got {type(data).__name__}.")
    return data


def _split_flags(flags: dict) -> dict:
    """Sort flat CLI flags into task/model/train sections by field name."""
    cfg = _configs()
    sections = {"task": cfg.TaskConfig, "model": cfg.ModelConfig, "train": cfg.TrainConfig}
    out = {k: {} for k in sections}
    for key, value in flags.items():
        where = [s for s, cls in sections.items() if key in {f.name for f in dataclasses.fields(cls)}]
        if not where:
            allowed = sorted({f.name for c in sections.values() for f in dataclasses.fields(c)} - {"name"})
            raise ValueError(f"unknown flag --{key}; allowed: {allowed + ['experiment', 'task']}.")
        out[where[0]][key] = value
    return out


def train(task="flipflop", cell="gru", activation="tanh", n_units=64, experiment="default",
          threads=None, **flags):
    """Train one population and log it (one parent run, one nested run per network).

    Flags: any field of TaskConfig, ModelConfig or TrainConfig, e.g. ``--n_networks
    --iterations --batch_size --seed --l2 --lr --momentum --decay_rate --decay_steps
    --clip --optimizer --n_time``.  Returns the run ids.
    """
    cfg = _configs()
    parts = _split_flags(flags)
    run = cfg.RunConfig(
        cfg.make_config(cfg.TaskConfig, {**parts["task"], "name": task}, "task"),
        cfg.make_config(cfg.ModelConfig, {**parts["model"], "cell": cell, "activation": activation,
                                          "n_units": n_units}, "model"),
        cfg.make_config(cfg.TrainConfig, parts["train"], "train"))
    from rnn_dyn.training import set_threads

    set_threads(threads)
    import numpy as np
    from tqdm import tqdm

    from rnn_dyn import tracking
    from rnn_dyn.training import train_population

    exp_id = tracking.get_experiment_id(experiment)
    parent = tracking.start_population(exp_id, run)
    bar = tqdm(total=run.train.iterations, desc=f"{task}/{cell}/{activation}", unit="it", file=sys.stderr)

    def progress(k, loss):
        bar.n = k + 1
        finite = loss[np.isfinite(loss)]
        bar.set_postfix(loss=f"{finite.mean():.3g}" if finite.size else "nan")
        bar.refresh()

    try:
        result = train_population(run.task, run.model, run.train, progress=progress)
        bar.n = run.train.iterations
        bar.close()
        ids = tracking.log_population(exp_id, run, result.to_dict(), parent)
    except BaseException as exc:
        bar.close()
        tracking.end_run(parent, "FAILED", f"{type(exc).__name__}: {exc}")
        raise
    tracking.end_run(parent)
    for i, v in enumerate(result.val_loss):
        state = f"diverged at step {result.diverged_step[i]}" if result.diverged[i] else f"val_loss {v:.3g}"
        print(f"  member {i} (seed {run.train.member_values('seed')[i]}): {state}", file=sys.stderr)
    print(f"  zero-output baseline {result.zero_loss:.3g}; {result.seconds:.1f} s", file=sys.stderr)
    return {"population_run": parent, "network_runs": ids,
            "val_loss": [round(float(v), 6) for v in result.val_loss]}


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _plan(jobs, workers=None, searches=()):
    """Print the sweep's jobs (and search jobs) and an estimated wall time from a short
    timing of each job shape on this machine (one thread, as a local worker runs); start nothing."""
    from tqdm import tqdm

    from rnn_dyn.executors import n_cores
    from rnn_dyn.training import set_threads, time_step

    set_threads(1)
    workers = workers or n_cores()
    shapes = {}
    for j in list(searches) + list(jobs):
        key = (j.task, j.model.cell, j.model.n_units, j.train.batch_size, j.train.optimizer)
        shapes.setdefault(key, []).append(j)
    print(f"{'task':9s} {'cell':8s} {'units':>5s} {'jobs':>5s} {'networks':>8s} {'iterations':>10s}"
          f" {'ms/net/it':>9s} {'core-h':>7s}")
    total = 0.0
    bar = tqdm(shapes.items(), desc="timing job shapes", file=sys.stderr, leave=False)
    for (task, cell, n_units, _, _), group in bar:
        j = group[0]
        seconds = time_step(j.task, j.model, j.train)
        work = sum(g.train.n_networks * g.train.iterations for g in group)
        total += seconds * work
        bar.write(f"{task.name:9s} {cell:8s} {n_units:5d} {len(group):5d} "
                  f"{sum(g.train.n_networks for g in group):8d} {j.train.iterations:10d} "
                  f"{1000 * seconds:9.2f} {seconds * work / 3600:7.2f}", file=sys.stdout)
    n_networks = sum(j.train.n_networks for j in jobs)
    n_candidates = sum(j.train.n_networks for j in searches)
    wall = total / workers
    print((f"{len(searches)} search jobs ({n_candidates} candidates), then " if searches else "")
          + f"{len(jobs)} jobs, {n_networks} networks; estimated {_duration(total)} of one core, "
          f"{_duration(wall)} wall on {workers} local worker(s)")
    return {"jobs": len(jobs), "networks": n_networks, "searches": len(searches),
            "candidates": n_candidates, "core_seconds": total, "wall_seconds": wall}


def _search(pool, exp_id, searches, table, n_seeds):
    """A sweep's first phase: each configuration's hyperparameter search, on the
    executor, skipping finished ones.  Returns ``{configuration: winner's settings}``
    and how many searches ran."""
    from tqdm import tqdm

    from rnn_dyn import tracking
    from rnn_dyn.config import configuration

    done = tracking.finished_searches(exp_id)
    winners = {configuration(j): done[tracking.search_key(j)] for j in searches if tracking.search_key(j) in done}
    todo = [j for j in searches if configuration(j) not in winners]
    runs = [tracking.start_search(exp_id, j) for j in todo]
    bar = tqdm(total=len(todo), desc="search", unit="config", file=sys.stderr, disable=not todo)
    for i, result, error in pool.map(_train_job, todo):
        winner = None
        if error is None:
            winner = tracking.log_search(todo[i], result, runs[i])
        else:
            tracking.end_run(runs[i], "FAILED", error)
        if winner is None:
            table[todo[i].task.name]["failed"] += n_seeds  # its seeds cannot train
            reason = (error or "every candidate diverged").strip().splitlines()[-1]
            bar.write(f"search FAILED {configuration(todo[i])}: {reason}")
        else:
            winners[configuration(todo[i])] = winner
        bar.update()
    bar.close()
    return winners, len(todo)


def _train_job(cfg):
    """A worker's job (TensorFlow is imported there, never in the sweep's driver)."""
    from rnn_dyn.training import train_run

    return train_run(cfg)


def _train_phase(pool, exp_id, jobs, table, experiment):
    """Train, on the executor, the networks of ``jobs`` that no finished run holds
    and log each population as it comes back; returns how many networks trained."""
    from tqdm import tqdm

    from rnn_dyn import tracking

    done = tracking.finished_keys(exp_id)
    todo = []
    for job in jobs:
        keep = [i for i in range(job.train.n_networks)
                if tracking.network_key(job.member_config(i)) not in done]
        table[job.task.name]["skipped"] += job.train.n_networks - len(keep)
        if keep:
            todo.append(job.subset(keep))
    parents = [tracking.start_population(exp_id, job) for job in todo]
    total = sum(j.train.n_networks for j in todo)
    bar = tqdm(total=total, desc=f"sweep {experiment}", unit="net", file=sys.stderr)
    try:
        for i, result, error in pool.map(_train_job, todo):
            job, row = todo[i], table[todo[i].task.name]
            if error is not None:
                tracking.end_run(parents[i], "FAILED", error)
                row["failed"] += job.train.n_networks
                bar.write(f"FAILED {job.task.name}/{job.model.cell}/{job.model.activation}: "
                          f"{error.strip().splitlines()[-1]}")
            else:
                tracking.log_population(exp_id, job, result, parents[i])
                tracking.end_run(parents[i])
                row["diverged"] += int(result["diverged"].sum())
                row["finished"] += job.train.n_networks - int(result["diverged"].sum())
            bar.update(job.train.n_networks)
    finally:
        bar.close()
    return total


def sweep(spec="quick", executor="local", workers=None, scheduler=None, dry_run=False, **overrides):
    """Run a sweep spec: every population job of the spec, skipping finished networks.

    ``--spec`` a YAML path or name in ``experiments/``; other flags override spec
    fields (``--experiment --tasks --cells --activations --n_units --l2 --seeds
    --max_population --search``).  ``--executor local|dask``; ``--workers N``;
    ``--scheduler ADDRESS`` joins a running Dask cluster.  With a ``search``
    (e.g. ``--search='{n_candidates: 20}'``) the searches of all configurations
    run first, then the seeds with each configuration's winning settings.
    Runs that an interrupted sweep left RUNNING are closed as KILLED first.
    """
    from rnn_dyn._checks import check_choice

    cfg = _configs()
    check_choice("executor", executor, ("dask", "local"))
    sweep_cfg = cfg.SweepConfig.from_dict({**load_spec(spec), **overrides})
    jobs, searches = sweep_cfg.expand(), sweep_cfg.search_jobs()
    if dry_run:
        return _plan(jobs, workers, searches)

    if executor == "dask":
        from rnn_dyn.executors import DaskExecutor

        pool = DaskExecutor(scheduler, workers)
    else:
        from rnn_dyn.executors import LocalExecutor

        pool = LocalExecutor(workers)  # its workers' server imports TensorFlow meanwhile
    start = time.time()
    table = {t: {"finished": 0, "skipped": 0, "diverged": 0, "failed": 0} for t in sweep_cfg.tasks}
    try:
        from rnn_dyn import tracking

        exp_id = tracking.get_experiment_id(sweep_cfg.experiment)
        tracking.close_interrupted(exp_id)
        n_searched = 0
        if searches:
            winners, n_searched = _search(pool, exp_id, searches, table, len(sweep_cfg.seed_list))
            jobs = cfg.apply_search(jobs, winners)
        total = _train_phase(pool, exp_id, jobs, table, sweep_cfg.experiment)
    finally:
        if hasattr(pool, "close"):
            pool.close()
    wall = time.time() - start
    print(f"\n{'task':10s} {'finished':>9s} {'skipped':>8s} {'diverged':>9s} {'failed':>7s}")
    for t, row in table.items():
        print(f"{t:10s} {row['finished']:9d} {row['skipped']:8d} {row['diverged']:9d} {row['failed']:7d}")
    if searches:
        print(f"searches: {n_searched} run, {len(searches) - n_searched} already finished")
    print(f"wall time {wall:.1f} s; browse with: mlflow ui")
    return {"experiment": sweep_cfg.experiment, "networks": total, "searches": n_searched,
            "wall_s": round(wall, 1)}


def _task_list(tasks) -> list:
    """``--tasks`` as a checked list (a name, a list, or None for every task)."""
    from rnn_dyn._checks import check_choice
    from rnn_dyn.config import TASKS

    tasks = [tasks] if isinstance(tasks, str) else list(tasks or TASKS)
    for t in tasks:
        check_choice("tasks", t, TASKS)
    return tasks


def _load_networks(runs):
    """Rebuild the networks of ``runs``; returns populations, configs and a label dict."""
    from rnn_dyn import tracking

    nets = [tracking.load_network(r.info.run_id) for r in runs]
    labels = {"cell": [c.model.cell for _, c in nets], "activation": [c.model.activation for _, c in nets]}
    return nets, labels


def compare(experiment="quick", metric="svcca", tasks=None, **options):
    """Distances between the finished networks of each task, on the task's probe set.

    Logs, per task, a ``comparison`` run with ``distances.npz`` (matrix, ordered
    network run ids and their params, MDS embedding), the MDS map coloured by
    cell and by activation, and the separation (silhouette) by each label.
    ``--metric svcca|cka|procrustes|cca``; other flags are the metric's options
    (``--k``, ``--variance``, ``--debiased``, ``--kind``).  Skips what is done.
    """
    from rnn_dyn._checks import check_choice

    check_choice("metric", metric, ("cca", "cka", "procrustes", "svcca"))
    tasks = _task_list(tasks)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from rnn_dyn import tracking
    from rnn_dyn.embedding import embed, separation
    from rnn_dyn.plotting import plot_embedding
    from rnn_dyn.population import probe_representation
    from rnn_dyn.similarity import pairwise_distances
    from rnn_dyn.tasks import get_task

    exp_id = tracking.experiment_id(experiment)
    out = {}
    for task in tasks:
        runs = tracking.network_runs(exp_id, task)
        if len(runs) < 3:
            print(f"{task}: {len(runs)} finished network(s), need 3 or more; skipped", file=sys.stderr)
            continue
        ids = [r.info.run_id for r in runs]
        key = tracking.stage_key(kind="comparison", metric=metric, options=options, runs=ids)
        done = tracking.finished_stage(exp_id, key)
        if done:
            print(f"{task}: {metric} comparison of {len(ids)} networks already logged ({done})", file=sys.stderr)
            out[task] = done
            continue
        nets, labels = _load_networks(runs)
        reps = (probe_representation(pop, get_task(cfg.task))[0] for pop, cfg in nets)
        D = pairwise_distances(reps, metric=metric, **options)
        xy = embed(D)
        varied = {k: v for k, v in labels.items() if len(set(v)) > 1}
        sep = separation(D, varied) if varied else {}
        fig = plot_embedding(xy, labels, title=f"{task}: {metric} ({len(ids)} networks)")
        params = {"task": task, "metric": metric, "n_networks": len(ids), **options}
        out[task] = tracking.log_stage(
            exp_id, "comparison", key, f"compare-{task}-{metric}", params,
            {f"separation_{k}": v for k, v in sep.items()},
            arrays={"distances": {"distances": D, "run_ids": np.array(ids), "embedding": xy,
                                  **{k: np.array(v) for k, v in labels.items()},
                                  "n_units": np.array([c.model.n_units for _, c in nets]),
                                  "seed": np.array([c.train.seed for _, c in nets])}},
            figures={"mds": fig})
        plt.close(fig)
        print(f"{task}: {metric} separation " + ", ".join(f"{k} {v:.3f}" for k, v in sep.items()),
              file=sys.stderr)
    return out


def analyze(experiment="quick", tasks=None, n_starts=None, seed=0, **options):
    """Fixed points of every finished network of an experiment, under each condition input.

    Logs, as a child run of each network's run, ``fixed_points.npz``, the figure
    ``fixed_points.png`` and the metrics ``n_fixed, n_slow, n_stable, n_saddles``.
    ``--n_starts`` per condition (default: 1024 spread over the task's
    conditions, at least 64); other flags go to ``find_fixed_points``
    (``--tol_q --max_iters --tol_unique ...``).  Networks already analysed with
    the same settings are skipped.
    """
    from rnn_dyn._checks import check_positive

    tasks = _task_list(tasks)
    if n_starts is not None:
        check_positive("n_starts", n_starts, integer=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tqdm import tqdm

    from rnn_dyn import tracking
    from rnn_dyn.fixed_points import find_population_fixed_points
    from rnn_dyn.plotting import plot_fixed_points
    from rnn_dyn.tasks import get_task

    exp_id = tracking.experiment_id(experiment)
    runs = [r for t in tasks for r in tracking.network_runs(exp_id, t)]
    totals, done = {}, 0
    for run in tqdm(runs, desc=f"fixed points {experiment}", unit="net", file=sys.stderr):
        rid = run.info.run_id
        key = tracking.stage_key(kind="fixed_points", run=rid, n_starts=n_starts, seed=seed, options=options)
        if tracking.finished_stage(exp_id, key):
            done += 1
            continue
        population, cfg = tracking.load_network(rid)
        task = get_task(cfg.task)
        starts = n_starts or max(64, 1024 // len(task.x_cond))
        fps = find_population_fixed_points(population, task, n_starts=starts, seed=seed, **options)
        metrics = {k: int(v[0]) for k, v in fps.metrics().items()}
        states, _ = population.run(task.probe_set()["inputs"])
        fig = plot_fixed_points(fps, states.numpy())
        fig.suptitle(f"{cfg.task.name} {cfg.model.cell} {cfg.model.activation} seed {cfg.train.seed}")
        tracking.log_stage(exp_id, "fixed_points", key, f"fixed-points-{run.info.run_name}",
                           {"network_run": rid, "task": cfg.task.name, "n_starts": starts, "seed": seed,
                            **options}, metrics, figures={"fixed_points": fig}, parent=rid,
                           writers={"fixed_points.npz": fps.save})
        plt.close(fig)
        row = totals.setdefault((cfg.task.name, cfg.model.cell, cfg.model.activation), [])
        row.append(metrics)
    if totals:
        print(f"\n{'task':9s} {'cell':8s} {'act':5s} fixed/stable/saddles/slow per network", file=sys.stderr)
        for (t, c, a), rows in sorted(totals.items()):
            cells = "  ".join(f"{m['n_fixed']}/{m['n_stable']}/{m['n_saddles']}/{m['n_slow']}" for m in rows)
            print(f"{t:9s} {c:8s} {a:5s} {cells}", file=sys.stderr)
    return {"analysed": sum(len(v) for v in totals.values()), "skipped": done}


def _geometry(exp_id, run_id, ids):
    """A comparison run's distance matrix, in the order of ``ids``."""
    import numpy as np

    from rnn_dyn import tracking

    with np.load(tracking.artifact(run_id, "distances.npz")) as d:
        where = {r: i for i, r in enumerate(d["run_ids"].tolist())}
        order = [where[r] for r in ids]
        return d["distances"][np.ix_(order, order)]


def _embed_finite(D):
    """MDS of the networks with finite rows; NaN rows elsewhere."""
    import numpy as np

    from rnn_dyn.embedding import embed
    from rnn_dyn.universality import comparable

    ok = comparable(D)
    xy = np.full((len(D), 2), np.nan)
    if ok.sum() > 2:
        xy[ok] = embed(D[np.ix_(ok, ok)])
    return xy


def _examples(labels) -> list:
    """Index of the first network of each label, in network order."""
    return sorted({lab: i for i, lab in reversed(list(enumerate(labels)))}.values())


def _task_figure(task, results, labels):
    """Paper Fig. 1e (flip-flop), 2f (sine) or 3f (context) for one task's networks."""
    import numpy as np

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
    ``adjacency_i`` and ``values_i`` (sine; ``_i_c`` per context)."""
    out = {}
    for i, r in enumerate(results):
        graphs = r["graph"] if isinstance(r["graph"], list) else [r["graph"]]
        for c, g in enumerate(graphs):
            tag = f"{i}_{c}" if isinstance(r["graph"], list) else f"{i}"
            fields = ("matrix", "readouts", "is_stable") if hasattr(g, "matrix") else ("adjacency", "values")
            out.update({f"{f}_{tag}": getattr(g, f) for f in fields})
    return out


def topology(experiment="quick", tasks=None, mode="matching", n_perturb=100, seed=0, n_starts=None):
    """Fixed-point topology of every finished network, next to its geometry (paper §3–4).

    Per task: each network's topology (flip-flop transition graph, sine
    oscillatory modes against ω(u), context line attractors with eigenvalues
    near 1 and integration dimensionality) from the fixed points ``analyze``
    stored (networks not yet analysed are analysed first), logged with the
    graphs themselves (``graphs.npz``) and per-network measures; the topology
    distance matrix (``--mode matching|paper`` for the flip-flop) next to the
    SVCCA and CKA matrices (``compare``), their MDS maps and separation by
    cell and by activation.  On the context task, trained vanilla networks
    against the same networks untrained (CCA; paper Fig. 4).  Everything is
    logged as ``topology`` runs; what is done is skipped.  ``--n_starts``
    goes to ``analyze``.
    """
    from rnn_dyn._checks import check_choice, check_positive

    tasks = _task_list(tasks)
    check_choice("mode", mode, ("matching", "paper"))
    check_positive("n_perturb", n_perturb, integer=True)
    import matplotlib

    matplotlib.use("Agg")
    import json

    import matplotlib.pyplot as plt
    import numpy as np
    from tqdm import tqdm

    from rnn_dyn import tracking, universality
    from rnn_dyn.fixed_points import FixedPoints
    from rnn_dyn.plotting import plot_spectra, plot_universality
    from rnn_dyn.tasks import get_task
    from rnn_dyn.topology import keep_modal_count

    exp_id = tracking.experiment_id(experiment)
    analyze(experiment, tasks, n_starts=n_starts)
    geometry = {m: compare(experiment, m, tasks) for m in ("svcca", "cka")}
    out = {}
    for name in tasks:
        runs = tracking.network_runs(exp_id, name)
        ids = [r.info.run_id for r in runs]
        key = tracking.stage_key(kind="topology", task=name, runs=ids, mode=mode, n_perturb=n_perturb, seed=seed)
        done = tracking.finished_stage(exp_id, key)
        if len(runs) < 3 or done:
            if done:
                with open(tracking.artifact(done, "topology.json")) as f:
                    out[name] = json.load(f)
            continue
        nets, labels = _load_networks(runs)
        options = {"n_perturb": n_perturb, "seed": seed} if name == "flipflop" else {}
        results = []
        for rid, (population, cfg) in zip(tqdm(ids, desc=f"topology {name}", unit="net", file=sys.stderr), nets):
            fps = FixedPoints.load(tracking.artifact(tracking.stage_run(exp_id, "fixed_points", rid),
                                                     "fixed_points.npz"))
            task = get_task(cfg.task)
            results.append(universality.network_topology(task, population, fps, **options))
        config = [f"{c}/{a}" for c, a in zip(labels["cell"], labels["activation"])]
        matrices = {"topology": universality.topology_distances(name, [r["graph"] for r in results], mode)}
        matrices.update({m: _geometry(exp_id, geometry[m][name], ids) for m in geometry})
        table = universality.separation_table(matrices, labels)
        scalars = sorted(k for k, v in results[0].items() if isinstance(v, (int, float)))
        measures = {k: np.array([r[k] for r in results], float) for k in scalars}
        by_config = {lab: {k: float(np.nanmedian(v[np.array(config) == lab])) for k, v in measures.items()}
                     for lab in sorted(set(config))}  # medians: a ratio near 0/0 makes means useless
        summary = {"n_networks": len(ids), "separation": table, "by_config": by_config}
        if name == "flipflop":
            _, dropped = keep_modal_count([r["graph"] for r in results])
            summary["paper_rule_drops"] = int(dropped)
            summary["modal_structure"] = {k: list(v) for k, v in
                                          universality.modal_structure(results, config).items()}
        embeddings = {m: _embed_finite(D) for m, D in matrices.items()}
        figures = {"universality": plot_universality(embeddings, labels, f"{name}: {len(ids)} networks"),
                   name: _task_figure(task, results, config)}
        if name != "flipflop":
            first = _examples(config)
            where = "the middle input u" if name == "sine" else "every fixed point of context 0"
            figures["spectra"] = plot_spectra([results[i]["spectrum"] for i in first], [config[i] for i in first],
                                              f"{name}: eigenvalues at {where}, one network per configuration")
        metrics = {f"separation_{m}_{k}": v for m, row in table.items() for k, v in row.items() if k != "n"}
        tracking.log_stage(
            exp_id, "topology", key, f"topology-{name}", {"task": name, "mode": mode, "n_perturb": n_perturb,
                                                          "seed": seed, "n_networks": len(ids)}, metrics,
            arrays={"topology": {**{f"distances_{m}": D for m, D in matrices.items()},
                                 **{f"embedding_{m}": xy for m, xy in embeddings.items()},
                                 **measures, "run_ids": np.array(ids), "config": np.array(config)}},
            figures=figures, writers={"topology.json": tracking.write_json(summary),
                                      "graphs.npz": lambda p: np.savez(p, **_graph_arrays(results))})
        for fig in figures.values():
            plt.close(fig)
        out[name] = summary
    if "context" in tasks:
        out["trained_vs_untrained"] = _trained_vs_untrained(exp_id)
    _print_universality(out)
    return None


def _trained_vs_untrained(exp_id):
    """Trained vanilla context networks against the same initializations untrained (CCA; Fig. 4)."""
    import json

    import matplotlib.pyplot as plt
    import numpy as np

    from rnn_dyn import tracking, universality
    from rnn_dyn.plotting import plot_embedding
    from rnn_dyn.population import Population, probe_representation
    from rnn_dyn.similarity import pairwise_distances
    from rnn_dyn.tasks import get_task

    runs = [r for r in tracking.network_runs(exp_id, "context") if r.data.params.get("cell") == "vanilla"]
    ids = [r.info.run_id for r in runs]
    key = tracking.stage_key(kind="untrained", runs=ids)
    done = tracking.finished_stage(exp_id, key)
    if done:
        with open(tracking.artifact(done, "groups.json")) as f:
            return json.load(f)
    if len(runs) < 2:
        return None
    reps, groups = [], []
    for trained, cfg in _load_networks(runs)[0]:
        task = get_task(cfg.task)
        untrained = Population(cfg.model, task.n_inputs, task.n_outputs, [cfg.train.seed])
        for state, pop in (("trained", trained), ("untrained", untrained)):
            reps.append(probe_representation(pop, task)[0])
            groups.append(f"{state} {cfg.model.activation}")
    D = pairwise_distances(reps, metric="cca")
    names, means = universality.group_distances(D, groups)
    summary = {"groups": names, "mean_distance": means.tolist(), "n_networks": len(ids)}
    fig = plot_embedding(_embed_finite(D), {"group": groups}, "context, vanilla: CCA, trained vs untrained")
    tracking.log_stage(exp_id, "untrained", key, "trained-vs-untrained", {"metric": "cca", "n_networks": len(ids)},
                       {}, arrays={"untrained": {"distances": D, "groups": np.array(groups),
                                                 "run_ids": np.array(ids)}},
                       figures={"trained_vs_untrained": fig}, writers={"groups.json": tracking.write_json(summary)})
    plt.close(fig)
    return summary


def _print_universality(out):
    """The universality table and the per-configuration measures, on stderr."""
    p = lambda *a: print(*a, file=sys.stderr)  # noqa: E731
    p(f"\n{'task':9s} {'metric':9s} {'by cell':>8s} {'by act':>8s}  networks   (silhouette)")
    for task, s in out.items():
        for metric, row in (s or {}).get("separation", {}).items():
            p(f"{task:9s} {metric:9s} {row.get('cell', float('nan')):8.3f} {row.get('activation', float('nan')):8.3f}"
              f"  {row['n']}")
    p("\nper configuration: median over its networks")
    for task, s in out.items():
        for lab, row in (s or {}).get("by_config", {}).items():
            p(f"{task:9s} {lab:13s} " + "  ".join(f"{k} {v:.3g}" for k, v in row.items()))
    if out.get("trained_vs_untrained"):
        t = out["trained_vs_untrained"]
        p("\ntrained vs untrained (context, vanilla, mean CCA distance)")
        for name, row in zip(t["groups"], t["mean_distance"]):
            p(f"  {name:16s} " + "  ".join(f"{v:.3f}" for v in row))


def main():
    import fire

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    fire.Fire({"train": train, "sweep": sweep, "analyze": analyze, "compare": compare, "topology": topology})


if __name__ == "__main__":
    main()
