"""MLflow tracking: the only module that imports mlflow.

Layout of an experiment: one parent run per population (tag ``rnn_dyn.kind =
population``) and, nested under it, one run per network (``rnn_dyn.kind =
network``) with the network's params, its loss curve, ``val_loss``,
``diverged``, ``diverged_step`` and the artifacts ``weights.npz`` (arrays named
after SPEC's symbols) and ``config.json`` (its own one-member
:class:`~rnn_dyn.config.RunConfig`).  A hyperparameter search is one run per
configuration (``rnn_dyn.kind = search``) with every candidate's settings and
validation loss.  Network, search and stage runs carry a deterministic key (tag
``rnn_dyn.key``) so a rerun can skip what is finished.

Exactly once: a driver claims a key before computing it (:func:`claim`): it
creates the key's run RUNNING, then looks again; if another live claim or a
FINISHED run of the key is there, it deletes its own run and leaves the key
alone.  Every run holds a lease (:mod:`rnn_dyn.leases`: the driver's host, pid,
process start time and heartbeat), so the claims of a driver that is gone are
closed (KILLED) by the next driver and block nothing.

The store is MLflow's own default (``sqlite:///mlflow.db`` with artifacts under
``./mlruns/``) unless ``MLFLOW_TRACKING_URI`` says otherwise (an ``http://``
tracking server too).  The driver creates store and experiment before any
worker starts, under a file lock next to a SQLite store, so that drivers
started together do not create one store twice.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
import uuid
import zipfile

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # ours is enough

import mlflow  # noqa: E402
import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from rnn_dyn import leases
from rnn_dyn.config import RunConfig, configuration
from rnn_dyn.sweep_config import SEARCH_FIELDS, best_candidate
from rnn_dyn.tasks import get_task

NETWORK_PARAMS = ("task", "cell", "activation", "n_units", "l2", "lr", "momentum", "decay_rate",
                  "decay_steps", "clip", "seed", "iterations", "batch_size")


def client() -> MlflowClient:
    return MlflowClient()


@contextlib.contextmanager
def _store_lock():
    """A file lock beside a SQLite store (nothing for other stores, which create safely)."""
    uri = mlflow.get_tracking_uri()
    if not uri.startswith("sqlite:///"):
        yield
        return
    path = uri[len("sqlite:///"):]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with leases.file_lock(path + ".lock"):
        yield


def get_experiment_id(name: str) -> str:
    """The id of experiment ``name``, created (with the store) if needed; safe when several
    drivers start together."""
    from mlflow.exceptions import MlflowException

    with _store_lock():
        c = client()
        exp = c.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return c.create_experiment(name)
        except MlflowException:  # another driver created it meanwhile (a server store)
            exp = c.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id


def _what_it_computes(cfg: RunConfig) -> dict:
    d = cfg.to_dict()
    for name in ("log_every", "jit_compile"):  # how it runs, not what it computes
        d["train"].pop(name, None)
    d["task"].pop("n_probe_levels", None)  # what it is probed with, not what it trains on
    return d


def network_key(cfg: RunConfig) -> str:
    """Deterministic key of a one-member config: equal keys, equal networks."""
    return hashlib.sha1(json.dumps(_what_it_computes(cfg), sort_keys=True).encode()).hexdigest()[:16]


def search_key(cfg: RunConfig) -> str:
    """Deterministic key of a search: its candidates' config."""
    return stage_key(kind="search", config=_what_it_computes(cfg))


def _driver() -> str:
    return leases.driver()


def _close_dead(run) -> None:
    driver = run.data.tags.get("rnn_dyn.driver", "")
    end_run(run.info.run_id, "KILLED", f"left RUNNING by process {driver or '(unknown)'}, which is gone;"
                                       " closed by the next sweep")


def close_interrupted(experiment_id: str) -> int:
    """Close (status KILLED) the runs that an interrupted process left RUNNING.

    A run is closed when its lease is dead (:func:`rnn_dyn.leases.lease_alive`:
    its process gone from this host, or no heartbeat from another host for
    ``LEASE_TTL``) or it has no driver tag.  Finished-work queries count
    FINISHED runs only, so a RUNNING run is never taken for a finished one.
    Returns how many runs were closed.
    """
    runs = mlflow.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'",
                              output_format="list")
    dead = [r for r in runs if not leases.lease_alive(r.data.tags)]
    for r in dead:
        _close_dead(r)
    return len(dead)


def claim(experiment_id: str, kind: str, items) -> tuple[dict, set]:
    """Claim keys before computing them: exactly one driver gets each.

    Each ``(key, run name)`` of ``items`` gets a run created RUNNING (tags
    ``rnn_dyn.kind``, ``rnn_dyn.key`` and the lease); then the key's other runs
    are read.  A claim is kept only when no FINISHED run and no other live
    claim of its key is there; otherwise its run is deleted.  Two drivers that
    claim one key at once can both back off, never both keep it: each run is
    written before its driver looks, so the later of the two looks sees the
    other.  Dead claims met on the way are closed as KILLED, and duplicates of
    this call's own runs (a request a restarting server received but did not
    answer, sent again by MLflow's HTTP retries; tag ``rnn_dyn.claim``) are deleted.

    Returns
    -------
    won : dict
        ``{key: run id}`` of the claims kept: compute these, log into their runs.
    held : set
        Keys another live driver is computing now (wait for them; the rest of
        ``items`` are finished).
    """
    items = list(items)
    if not items:
        return {}, set()
    c = client()
    token = uuid.uuid4().hex  # the same in a request that MLflow's HTTP retries send twice
    tags = {"rnn_dyn.kind": kind, "rnn_dyn.claim": token, **leases.lease_tags()}
    mine = {key: c.create_run(experiment_id, run_name=name, tags={**tags, "rnn_dyn.key": key}).info.run_id
            for key, name in items}
    rivals = {}
    for r in _open_runs(experiment_id, kind, mine):
        key = r.data.tags.get("rnn_dyn.key")
        if key in mine and r.info.run_id != mine[key]:
            if r.info.status == "RUNNING" and r.data.tags.get("rnn_dyn.claim") == token:
                c.delete_run(r.info.run_id)  # a create_run that a server restart made us send twice
            elif r.info.status == "RUNNING" and not leases.lease_alive(r.data.tags):
                _close_dead(r)
            else:
                rivals.setdefault(key, []).append(r.info.status)
    won, held = {}, set()
    for key, rid in mine.items():
        if key not in rivals:
            won[key] = rid
            continue
        c.delete_run(rid)
        if "FINISHED" not in rivals[key]:
            held.add(key)
    return won, held


def _open_runs(experiment_id, kind, keys, per_key_below=16) -> list:
    """The RUNNING and FINISHED runs of ``kind`` with one of ``keys``: a query per key for a few
    keys, one over the kind otherwise (MLflow's filters have no ``IN`` for tags)."""
    query = f"tags.`rnn_dyn.kind` = '{kind}' and attributes.status != 'FAILED' and attributes.status != 'KILLED'"
    if len(keys) >= per_key_below:
        return mlflow.search_runs([experiment_id], output_format="list", filter_string=query)
    return [r for key in keys for r in mlflow.search_runs([experiment_id], output_format="list",
                                                          filter_string=f"{query} and tags.`rnn_dyn.key` = '{key}'")]


def release(run_ids) -> None:
    """Give up claims without computing them: their runs are deleted."""
    c = client()
    for rid in run_ids:
        c.delete_run(rid)


@contextlib.contextmanager
def heartbeat(experiment_id: str, every: float = leases.HEARTBEAT_EVERY):
    """Renew the lease (tag ``rnn_dyn.heartbeat``) of this driver's RUNNING runs every ``every``
    seconds while the block runs, so that drivers on other hosts see them alive."""
    stop = threading.Event()

    def beat():
        while not stop.wait(every):
            with contextlib.suppress(Exception):  # a missed beat is retried; the lease outlives several
                now = f"{time.time():.0f}"
                for r in mlflow.search_runs([experiment_id], output_format="list", filter_string=(
                        f"attributes.status = 'RUNNING' and tags.`rnn_dyn.driver` = '{_driver()}'")):
                    client().set_tag(r.info.run_id, "rnn_dyn.heartbeat", now)

    thread = threading.Thread(target=beat, daemon=True, name="rnn_dyn-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()


def network_params(cfg: RunConfig) -> dict:
    """The params a user finds a network run by."""
    values = {"task": cfg.task.name, "cell": cfg.model.cell, "activation": cfg.model.activation,
              "n_units": cfg.model.n_units, "iterations": cfg.train.iterations,
              "batch_size": cfg.train.batch_size}
    values.update(cfg.train.member(0))
    return {k: values[k] for k in NETWORK_PARAMS}


def finished_keys(experiment_id: str) -> dict:
    """``{key: run_id}`` of the finished network runs of an experiment (diverged ones too)."""
    return {r.data.tags["rnn_dyn.key"]: r.info.run_id
            for r in network_runs(experiment_id, include_diverged=True) if "rnn_dyn.key" in r.data.tags}


def experiment_id(name: str) -> str:
    """The id of an existing experiment; a clear error naming those that exist."""
    exp = client().get_experiment_by_name(name)
    if exp is None:
        names = sorted(e.name for e in client().search_experiments())
        raise ValueError(f"experiment {name!r} not found; existing experiments: {names}.")
    return exp.experiment_id


def network_runs(experiment_id: str, task: str | None = None, include_diverged: bool = False) -> list:
    """The finished network runs of an experiment (of one task), oldest first."""
    query = "tags.`rnn_dyn.kind` = 'network' and attributes.status = 'FINISHED'"
    if task:
        query += f" and params.task = '{task}'"
    runs = mlflow.search_runs([experiment_id], filter_string=query, output_format="list",
                              order_by=["attributes.start_time ASC"])
    return [r for r in runs if include_diverged or not r.data.metrics.get("diverged", 0)]


def stage_key(**values) -> str:
    """Deterministic key of an analysis stage: its kind, inputs and options."""
    return hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished_stage(experiment_id: str, key: str) -> str | None:
    """The run id of a finished stage with this key, if any."""
    runs = mlflow.search_runs([experiment_id], output_format="list",
                              filter_string=f"tags.`rnn_dyn.key` = '{key}' and attributes.status = 'FINISHED'")
    return runs[0].info.run_id if runs else None


def finished_stage_keys(experiment_id: str, kind: str) -> set:
    """The keys of the finished stage runs of ``kind`` (one query for a whole experiment)."""
    runs = mlflow.search_runs([experiment_id], output_format="list", filter_string=(
        f"tags.`rnn_dyn.kind` = '{kind}' and attributes.status = 'FINISHED'"))
    return {r.data.tags.get("rnn_dyn.key") for r in runs}


def _stage_run(c, experiment_id, kind, key, name, parent, run_id) -> str:
    """The run to log a stage into: the claimed ``run_id``, or a new one."""
    tags = {"rnn_dyn.kind": kind, "rnn_dyn.key": key, **leases.lease_tags()}
    if parent:
        tags["mlflow.parentRunId"] = parent
    if run_id is None:
        return c.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    if parent:
        c.set_tag(run_id, "mlflow.parentRunId", parent)
    return run_id


def log_failed(experiment_id: str, kind: str, key: str, name: str, params: dict, error: str,
               parent: str | None = None, run_id: str | None = None) -> str:
    """Record a stage that failed: a FAILED run (the claimed ``run_id``, or a new one) with its
    params and the error (tag ``rnn_dyn.error``)."""
    c = client()
    rid = _stage_run(c, experiment_id, kind, key, name, parent, run_id)
    c.log_batch(rid, params=[Param(k, str(v)) for k, v in params.items()])
    end_run(rid, "FAILED", error)
    return rid


def close_own_runs(experiment_id: str) -> int:
    """Close (status KILLED) the runs this process left RUNNING, e.g. after Ctrl-C."""
    runs = mlflow.search_runs([experiment_id], output_format="list", filter_string=(
        f"attributes.status = 'RUNNING' and tags.`rnn_dyn.driver` = '{_driver()}'"))
    for r in runs:
        end_run(r.info.run_id, "KILLED", "interrupted (Ctrl-C); rerun the same command to resume")
    return len(runs)


def log_stage(experiment_id: str, kind: str, key: str, name: str, params: dict, metrics: dict,
              arrays: dict | None = None, figures: dict | None = None, parent: str | None = None,
              writers: dict | None = None, run_id: str | None = None) -> str:
    """Log a finished analysis stage: params, metrics, ``<name>.npz`` arrays, figures
    (``<name>.png``) and files written by ``writers`` (``{file name: write(path)}``), into the
    claimed run ``run_id`` (or a new one).  A file that cannot be written (a full disk) raises
    :class:`LoggingError`, after the run is closed FAILED."""
    c = client()
    rid = _stage_run(c, experiment_id, kind, key, name, parent, run_id)
    c.log_batch(rid, params=[Param(k, str(v)) for k, v in params.items()],
                metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()])
    files = {f"{k}.npz": (lambda p, a=a: np.savez(p, **a)) for k, a in (arrays or {}).items()}
    files.update({f"{k}.png": _figure_writer(f) for k, f in (figures or {}).items()})
    files.update(writers or {})
    _log_files(c, rid, files, key)
    c.set_terminated(rid, "FINISHED")
    return rid


class LoggingError(OSError):
    """A run's results could not be stored (e.g. a full disk); the run is FAILED and named."""


def _log_files(c, run_id, files: dict, key: str | None = None):
    """Write and log ``files``; on an OS error (disk full, size limit) close the run FAILED with
    one line naming run, key and file, and raise :class:`LoggingError` with that line."""
    name = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, write in files.items():
                path = os.path.join(tmp, name)
                write(path)
                c.log_artifact(run_id, path)
    except OSError as exc:
        line = f"run {run_id} (key {key or '-'}): could not store {name}: {exc}"
        with contextlib.suppress(Exception):
            end_run(run_id, "FAILED", line)
        raise LoggingError(line) from exc


def _figure_writer(fig):
    """A figure (matplotlib, or PNG bytes from a worker) as a file writer."""
    if isinstance(fig, bytes):
        return write_bytes(fig)
    return lambda p: fig.savefig(p, dpi=120, bbox_inches="tight")


def write_bytes(data: bytes):
    def write(path):
        with open(path, "wb") as f:
            f.write(data)
    return write


def write_json(obj):
    def write(path):
        with open(path, "w") as f:
            json.dump(obj, f, indent=2)
    return write


def start_population(experiment_id: str, cfg: RunConfig, name: str | None = None,
                     kind: str = "population", params: dict | None = None, run_id: str | None = None) -> str:
    """Create the parent run of a population (status RUNNING); returns its id.

    ``kind``, ``params`` (added to the population's own) and a claimed ``run_id`` to use
    serve other population-shaped runs, such as a search's.
    """
    c = client()
    params = {"task": cfg.task.name, "cell": cfg.model.cell, "activation": cfg.model.activation,
              "n_units": cfg.model.n_units, "n_networks": cfg.train.n_networks,
              "iterations": cfg.train.iterations, "batch_size": cfg.train.batch_size, **(params or {})}
    if run_id is None:
        tags = {"rnn_dyn.kind": kind, **leases.lease_tags()}
        run_id = c.create_run(experiment_id, run_name=name or _population_name(cfg), tags=tags).info.run_id
    c.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
    _log_files(c, run_id, {"config.json": write_json(cfg.to_dict())})
    return run_id


def search_name(cfg: RunConfig) -> str:
    """The run name of a configuration's hyperparameter search."""
    return f"search-{configuration(cfg).replace('/', '-')}"


def start_search(experiment_id: str, cfg: RunConfig, run_id: str) -> str:
    """Fill the claimed run of one configuration's hyperparameter search (status RUNNING, tag
    ``rnn_dyn.kind = search`` and its key, from :func:`claim`); ``cfg`` holds the candidates."""
    t = cfg.train
    params = {"l2": t.member_values("l2")[0], "optimizer": t.optimizer, "decay_steps": t.decay_steps,
              "search_seed": t.member_values("seed")[0], "n_candidates": t.n_networks}
    return start_population(experiment_id, cfg, kind="search", params=params, run_id=run_id)


def log_search(cfg: RunConfig, result: dict, run_id: str) -> dict | None:
    """Log a search's outcome and close its run; returns the winner's settings.

    Every candidate's settings, validation loss and divergence go to
    ``candidates.json`` and to the metrics ``candidate_val_loss`` and
    ``candidate_diverged`` (step = candidate); the winner (lowest validation
    loss, never a diverged one) gives the params ``lr, clip, decay_rate,
    momentum, winner`` and the metric ``val_loss``.  When every candidate
    diverged there is no winner: the run is FAILED and ``None`` returned.
    """
    c = client()
    t, val, diverged = cfg.train, result["val_loss"], result["diverged"]
    win = best_candidate(val, diverged)
    rows = [{"candidate": i, **{k: t.member_values(k)[i] for k in SEARCH_FIELDS},
             "val_loss": float(val[i]) if np.isfinite(val[i]) else None, "diverged": bool(diverged[i]),
             "diverged_step": int(result["diverged_step"][i]), "winner": i == win} for i in range(t.n_networks)]
    metrics = [Metric("candidate_val_loss", float(val[i]), 0, i) for i in range(t.n_networks) if np.isfinite(val[i])]
    metrics += [Metric("candidate_diverged", float(diverged[i]), 0, i) for i in range(t.n_networks)]
    metrics += [Metric("n_diverged", float(np.sum(diverged)), 0, 0),
                Metric("zero_loss", float(result["zero_loss"]), 0, 0),
                Metric("train_seconds", float(result["seconds"]), 0, 0)]
    winner = None if win is None else {k: float(t.member_values(k)[win]) for k in SEARCH_FIELDS}
    params = [Param(k, str(v)) for k, v in {**(winner or {}), "winner": win}.items()]
    if winner is not None:
        metrics.append(Metric("val_loss", float(val[win]), 0, 0))
    c.log_batch(run_id, metrics=metrics, params=params)
    _log_files(c, run_id, {"candidates.json": write_json(rows)})
    if winner is None:
        end_run(run_id, "FAILED", "every candidate diverged")
    else:
        end_run(run_id)
    return winner


def finished_searches(experiment_id: str) -> dict:
    """``{key: winner's settings}`` of the finished searches of an experiment."""
    runs = mlflow.search_runs([experiment_id], output_format="list", filter_string=(
        "tags.`rnn_dyn.kind` = 'search' and attributes.status = 'FINISHED'"))
    return {r.data.tags["rnn_dyn.key"]: {k: float(r.data.params[k]) for k in SEARCH_FIELDS} for r in runs}


def _population_name(cfg: RunConfig) -> str:
    m = cfg.model
    return f"{cfg.task.name}-{m.cell}-{m.activation}-{m.n_units}"


def network_name(member: RunConfig) -> str:
    """The run name of a network (a one-member config)."""
    return f"{_population_name(member)}-s{member.train.seed}"


def log_population(experiment_id: str, cfg: RunConfig, result: dict, parent_id: str,
                   run_ids=None) -> list:
    """Log every member of a trained population as a nested network run.

    ``result`` is :meth:`~rnn_dyn.training.TrainResult.to_dict`'s output; ``run_ids`` are the
    members' claimed runs (new runs when not given).  Returns the network run ids; ``None``
    for a member whose files could not be stored (its run is FAILED, naming run and key).
    """
    c = client()
    ids = []
    n = cfg.train.n_networks
    for i in range(n):
        member = cfg.member_config(i)
        key = network_key(member)
        if run_ids is None:
            rid = c.create_run(experiment_id, run_name=network_name(member),
                               tags={"rnn_dyn.kind": "network", "rnn_dyn.key": key,
                                     "mlflow.parentRunId": parent_id, **leases.lease_tags()}).info.run_id
        else:
            rid = run_ids[i]
            c.set_tag(rid, "mlflow.parentRunId", parent_id)
        diverged = bool(result["diverged"][i])
        metrics = [Metric("loss", float(loss[i]), 0, int(k))
                   for k, loss in zip(result["loss_steps"], result["loss"]) if np.isfinite(loss[i])]
        val = float(result["val_loss"][i])
        if np.isfinite(val):
            metrics.append(Metric("val_loss", val, 0, cfg.train.iterations))
        metrics += [Metric("diverged", float(diverged), 0, 0),
                    Metric("diverged_step", float(result["diverged_step"][i]), 0, 0),
                    Metric("zero_loss", float(result["zero_loss"]), 0, 0),
                    Metric("train_seconds", float(result["seconds"]) / n, 0, 0)]
        c.log_batch(rid, metrics=metrics,
                    params=[Param(k, str(v)) for k, v in network_params(member).items()],
                    tags=[RunTag("rnn_dyn.population_run", parent_id)])
        weights = {k: v[i] for k, v in result["weights"].items()}
        try:
            _log_files(c, rid, {"weights.npz": lambda p, w=weights: np.savez(p, **w),
                                "config.json": write_json(member.to_dict())}, key)
        except LoggingError:
            ids.append(None)
            continue
        c.set_terminated(rid, "FINISHED")
        ids.append(rid)
    with contextlib.suppress(LoggingError):  # the figure is a convenience; the networks are logged
        _log_loss_figure(c, parent_id, cfg, result)
    c.log_batch(parent_id, metrics=[
        Metric("n_diverged", float(np.sum(result["diverged"])), 0, 0),
        Metric("median_val_loss", float(np.nanmedian(result["val_loss"])) if not
               np.all(np.isnan(result["val_loss"])) else float("nan"), 0, 0),
        Metric("train_seconds", float(result["seconds"]), 0, 0)])
    return ids


def _log_loss_figure(c, run_id, cfg: RunConfig, result: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnn_dyn.plotting import plot_losses

    seeds = cfg.train.member_values("seed")
    l2 = cfg.train.member_values("l2")
    fig = plot_losses(result["loss_steps"], result["loss"], [f"seed {s}, l2 {w:g}" for s, w in zip(seeds, l2)])
    fig.axes[0].set_title(f"{_population_name(cfg)}: training loss "
                          f"(zero-output baseline {float(result['zero_loss']):.3g})", fontsize=9)
    _log_files(c, run_id, {"losses.png": lambda p: fig.savefig(p, dpi=100, bbox_inches="tight")})
    plt.close(fig)


def end_run(run_id: str, status: str = "FINISHED", reason: str | None = None):
    """Close a run; a failed one keeps its reason as tag ``rnn_dyn.error``."""
    c = client()
    if reason:
        c.set_tag(run_id, "rnn_dyn.error", reason[-5000:])
    c.set_terminated(run_id, status)


def load_network(run_id: str):
    """Rebuild the exact network of a network run.

    Returns
    -------
    population : Population
        A population of one holding the run's weights.
    cfg : RunConfig
        The network's own config (task, model, training settings).
    """
    from rnn_dyn.population import Population  # TensorFlow: not for a sweep's driver

    weights, cfg = network_weights(run_id)
    cfg = RunConfig.from_dict(cfg)
    task = get_task(cfg.task)
    population = Population(cfg.model, task.n_inputs, task.n_outputs, [cfg.train.seed])
    population.set_weights_dict({k: v[None] for k, v in weights.items()})
    return population, cfg


class BrokenArtifact(ValueError):
    """A run's artifact is missing or unreadable (e.g. a truncated ``weights.npz``).

    ``run_id`` and ``key`` name the run; ``config`` is its ``config.json`` when that was readable.
    """

    def __init__(self, message, run_id, key, config=None):
        super().__init__(message)
        self.run_id, self.key, self.config = run_id, key, config


def network_weights(run_id: str) -> tuple[dict, dict]:
    """A network run's weights (``{symbol: array}``) and config (``RunConfig.to_dict()``),
    without TensorFlow: what a worker needs to rebuild it.

    Raises
    ------
    BrokenArtifact
        When ``config.json`` or ``weights.npz`` is missing or cut short; the message names run and key.
    """
    cfg, name = None, "config.json"
    try:
        with open(artifact(run_id, name)) as f:
            cfg = json.load(f)
        name = "weights.npz"
        with np.load(artifact(run_id, name)) as f:
            return {k: f[k] for k in f.files}, cfg
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        key = client().get_run(run_id).data.tags.get("rnn_dyn.key", "-")
        raise BrokenArtifact(f"run {run_id} (key {key}): {name} is unreadable ({type(exc).__name__}: {exc})",
                             run_id, key, cfg) from exc


def stage_run(experiment_id: str, kind: str, parent: str | None = None, task: str | None = None) -> str | None:
    """The newest finished stage run of ``kind`` (a child of run ``parent``, of ``task``, if given)."""
    query = f"tags.`rnn_dyn.kind` = '{kind}' and attributes.status = 'FINISHED'"
    query += f" and tags.`mlflow.parentRunId` = '{parent}'" if parent else ""
    query += f" and params.task = '{task}'" if task else ""
    runs = mlflow.search_runs([experiment_id], output_format="list", order_by=["attributes.start_time DESC"],
                              filter_string=query)
    return runs[0].info.run_id if runs else None


def stage_runs(experiment_id: str, kind: str) -> dict:
    """``{parent run id: run id}`` of the newest finished stage run of ``kind`` per parent, in one query."""
    runs = mlflow.search_runs([experiment_id], output_format="list", order_by=["attributes.start_time ASC"],
                              filter_string=f"tags.`rnn_dyn.kind` = '{kind}' and attributes.status = 'FINISHED'")
    return {r.data.tags["mlflow.parentRunId"]: r.info.run_id for r in runs if "mlflow.parentRunId" in r.data.tags}


def artifact_arrays(run_id: str, name: str) -> dict:
    """The arrays of a run's ``.npz`` artifact ``name``, as a plain dict."""
    with np.load(artifact(run_id, name)) as f:
        return {k: f[k] for k in f.files}


def artifact(run_id: str, name: str) -> str:
    """Local path of artifact ``name`` of a run (downloaded if the store is remote)."""
    return mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name)
