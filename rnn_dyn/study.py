"""The study as stages: train -> fixed points -> distances -> topology -> report.

:func:`run_study` runs a sweep spec end to end; :func:`run_analyses` runs
chosen stages over an existing experiment.  Per-network work (training, fixed
points) and per-task work (distance matrices, topology, trained against
untrained) are jobs on an executor's workers (:mod:`rnn_dyn.jobs`); only this
driver reads and writes MLflow.  A population's fixed points start as soon as
it is trained, a task's analyses as soon as its networks are analysed, while
other populations still train.  Every stage is keyed by what it computes
(:func:`rnn_dyn.tracking.stage_key`): a rerun skips what has finished, and runs
that an interrupted driver left RUNNING are closed as KILLED first.  A failed
job is recorded (run status FAILED, tag ``rnn_dyn.error``) and never stops
the others.
"""
from __future__ import annotations

import contextlib
import sys
import time

import numpy as np
from tqdm import tqdm

from rnn_dyn import jobs, tracking
from rnn_dyn.config import RunConfig, configuration
from rnn_dyn.sweep_config import FITTED, GEOMETRY, AnalysisConfig, SweepConfig, apply_search, check_stages
from rnn_dyn.sweep import last_line
from rnn_dyn.sweep import say as _say
from rnn_dyn.sweep import search, wait_for_others

MIN_NETWORKS = 3  # a task's comparisons need this many finished networks
MAX_GROUP = 8  # networks whose fixed points one job searches together


class Study:
    """One driver's pass over an experiment: the jobs it submits and what it logs.

    Parameters
    ----------
    exp_id : str
        The MLflow experiment.
    tasks : sequence of str
    stages : tuple
        Analyses to run (:data:`rnn_dyn.sweep_config.STAGES`).
    analysis : AnalysisConfig
    pool : LocalExecutor or DaskExecutor
    """

    def __init__(self, exp_id, tasks, stages, analysis: AnalysisConfig, pool):
        self.exp_id, self.tasks, self.stages, self.analysis, self.pool = exp_id, list(tasks), stages, analysis, pool
        extra = ("svcca", "cka") if "topology" in stages else ()  # the universality table's and claims'
        self.metrics = tuple(dict.fromkeys(extra + analysis.metrics))
        self.table = {t: {"finished": 0, "skipped": 0, "diverged": 0, "failed": 0} for t in self.tasks}
        self.kinds = []  # what job i is: (kind, details)
        self.outstanding = {t: 0 for t in self.tasks}  # training and fixed-point jobs per task
        self.submitted = set()  # tasks whose analyses are decided
        self.done = {"trained": 0, "fixed_points": 0, "comparisons": 0, "topology": 0, "failed": 0}
        self.logged = {}  # task -> {"topology": run id, "untrained": run id}
        self.held = set()  # (task, key) another live driver computes now
        self.again = False  # plan another pass (a network is trained again)
        self.retrain = []  # configs of networks whose artifacts were unreadable
        self.n_train = 0
        self.bar = None

    # -- running -------------------------------------------------------------------
    def run(self, train_jobs=(), experiment=""):
        """Train ``train_jobs`` (population configs) and analyse everything the stages ask for.

        Works in passes: each claims what is left (:func:`rnn_dyn.tracking.claim`) and runs
        what it won; while another live driver holds keys this study needs, it waits and
        plans again, taking over the keys of a driver that is gone.
        """
        self.n_train, first = 0, True
        try:
            while True:
                self.held, self.submitted, self.kinds, self.again = set(), set(), [], False
                todo = self._plan(train_jobs, first)
                if todo and self.bar is None:
                    self.bar = tqdm(total=len(todo), desc=f"study {experiment}".strip(), unit="job",
                                    file=sys.stderr)
                if self.bar is not None:
                    self._postfix()
                for _ in self.pool.run(todo, then=self._then):
                    self.bar.update()
                    self._postfix()
                if not (self.held or self.again):
                    return self
                if self.held:
                    wait_for_others(self.held, first)
                tracking.close_interrupted(self.exp_id)
                first = False
        finally:
            if self.bar is not None:
                self.bar.close()

    def _plan(self, train_jobs, first) -> list:
        """One pass's jobs: the networks, fixed points and task analyses that no run holds."""
        todo, planned = [], {tracking.network_key(j.member_config(i)) for j in train_jobs
                             for i in range(j.train.n_networks)}
        extra = [c for c in self.retrain if tracking.network_key(c) not in planned]
        for job in _untrained(self.exp_id, list(train_jobs) + extra, self.table if first else None):
            todo += self._train_job(job)
        for task in self.tasks:
            if "fixed_points" in self.stages:
                todo += self._fixed_point_jobs(task, self._networks_without_fixed_points(task))
        for task in self.tasks:
            todo += self._task_job(task)
        return todo

    def _broken(self, exc):
        """A network whose artifacts cannot be read: its run becomes FAILED (the error names run
        and key) and the network is trained again in the next pass."""
        tracking.end_run(exc.run_id, "FAILED", f"{exc}; trained again")
        _say(f"{exc}; training it again")
        self.again = True
        if exc.config is not None:
            self.retrain.append(RunConfig.from_dict(exc.config))

    def _postfix(self):
        d = self.done
        self.bar.set_postfix_str(f"trained {d['trained']}/{self.n_train} nets, fixed points {d['fixed_points']},"
                                 f" matrices {d['comparisons']}, topology {d['topology']}"
                                 + (f", failed {d['failed']}" if d["failed"] else ""))

    def _add(self, kind, fn_item) -> list:
        self.kinds.append(kind)
        if self.bar is not None:
            self.bar.total += 1
        return [fn_item]

    def _then(self, i, result, error) -> list:
        """Log job ``i``'s outcome; return the jobs it makes ready."""
        kind, details = self.kinds[i]
        if kind == "train":
            return self._trained(*details, result, error)
        if kind == "fixed_points":
            return self._fixed_points_done(*details, result, error)
        self._task_done(*details, result, error)
        return []

    # -- training --------------------------------------------------------------------
    def _train_job(self, job) -> list:
        """The training job of ``job``'s members this driver claims (parent run created)."""
        task = job.task.name
        members = [job.member_config(i) for i in range(job.train.n_networks)]
        won, held = tracking.claim(self.exp_id, "network",
                                   [(tracking.network_key(m), tracking.network_name(m)) for m in members])
        if held:
            self.held |= {(task, k) for k in held}
        keep = [i for i, m in enumerate(members) if tracking.network_key(m) in won]
        if not keep:
            return []
        job = job.subset(keep) if len(keep) < len(members) else job
        runs = [won[tracking.network_key(members[i])] for i in keep]
        parent = tracking.start_population(self.exp_id, job)
        self.outstanding[task] += 1
        self.n_train += job.train.n_networks
        return self._add(("train", (job, parent, runs)), (jobs.train_job, job))

    def _trained(self, job, parent, runs, result, error) -> list:
        task, row = job.task.name, self.table[job.task.name]
        self.outstanding[task] -= 1
        if error is not None:
            tracking.end_run(parent, "FAILED", error)
            for rid in runs:
                tracking.end_run(rid, "FAILED", error)
            row["failed"] += job.train.n_networks
            self.done["failed"] += 1
            _say(f"FAILED training {configuration(job)}: {last_line(error)}")
            return self._task_job(task)
        ids = tracking.log_population(self.exp_id, job, result, parent, runs)
        tracking.end_run(parent)
        diverged = np.asarray(result["diverged"], bool)
        lost = [i for i, rid in enumerate(ids) if rid is None]
        for i in lost:
            _say(f"FAILED to store network run {runs[i]} (key {tracking.network_key(job.member_config(i))});"
                 " rerun the command to redo it")
        stored = np.array([rid is not None for rid in ids], bool)
        row["diverged"] += int((diverged & stored).sum())
        row["finished"] += int((~diverged & stored).sum())
        row["failed"] += len(lost)
        self.done["trained"] += int(stored.sum())
        self.done["failed"] += len(lost)
        new = []
        if "fixed_points" in self.stages:
            networks = [(rid, ({k: v[i] for k, v in result["weights"].items()}, job.member_config(i).to_dict()))
                        for i, rid in enumerate(ids) if rid is not None and not diverged[i]]
            new = self._fixed_point_jobs(task, networks)
        return new + self._task_job(task)

    # -- fixed points ----------------------------------------------------------------
    def _fixed_point_key(self, run_id):
        a = self.analysis
        return tracking.stage_key(kind="fixed_points", run=run_id, n_starts=a.n_starts, seed=a.seed,
                                  options=a.fixed_points)

    def _networks_without_fixed_points(self, task) -> list:
        runs = tracking.network_runs(self.exp_id, task)
        done = tracking.finished_stage_keys(self.exp_id, "fixed_points")
        return [(r.info.run_id, None) for r in runs if self._fixed_point_key(r.info.run_id) not in done]

    def _fixed_point_jobs(self, task, networks) -> list:
        """Jobs for the ``networks`` (``(run id, (weights, config) or None)``) whose fixed points
        this driver claims, grouped by architecture."""
        won, held = tracking.claim(self.exp_id, "fixed_points",
                                   [(self._fixed_point_key(rid), f"fixed-points-{rid[:8]}") for rid, _ in networks])
        self.held |= {(task, k) for k in held}
        groups = {}
        for rid, net in networks:
            if self._fixed_point_key(rid) not in won:
                continue
            try:
                net = net or tracking.network_weights(rid)
            except tracking.BrokenArtifact as exc:
                tracking.release([won[self._fixed_point_key(rid)]])
                self._broken(exc)
                continue
            groups.setdefault(repr((net[1]["task"], net[1]["model"])), []).append((rid, net))
        out = []
        for members in groups.values():
            for k in range(0, len(members), MAX_GROUP):
                chunk = members[k: k + MAX_GROUP]
                item = {"networks": [n for _, n in chunk], "n_starts": self.analysis.n_starts,
                        "seed": self.analysis.seed, "options": self.analysis.fixed_points}
                claims = [won[self._fixed_point_key(rid)] for rid, _ in chunk]
                kind = ("fixed_points", (task, [rid for rid, _ in chunk], claims, item))
                out += self._add(kind, (jobs.fixed_points_job, item))
                self.outstanding[task] += 1
        return out

    def _fixed_points_done(self, task, run_ids, claims, item, result, error) -> list:
        self.outstanding[task] -= 1
        params = {"n_starts": self.analysis.n_starts, "seed": self.analysis.seed, **self.analysis.fixed_points}
        if error is not None:
            self.done["failed"] += 1
            for rid, claim in zip(run_ids, claims):
                tracking.log_failed(self.exp_id, "fixed_points", self._fixed_point_key(rid), f"fixed-points-{rid[:8]}",
                                    {"network_run": rid, "task": task, **params}, error, parent=rid, run_id=claim)
            _say(f"FAILED fixed points of {len(run_ids)} {task} network(s): {last_line(error)}")
            return self._task_job(task)
        for rid, claim, (fps, metrics, figure, starts) in zip(run_ids, claims, result):
            try:
                tracking.log_stage(self.exp_id, "fixed_points", self._fixed_point_key(rid), f"fixed-points-{rid[:8]}",
                                   {"network_run": rid, "task": task, **params, "n_starts": starts}, metrics,
                                   figures={"fixed_points": figure}, parent=rid, run_id=claim,
                                   writers={"fixed_points.npz": tracking.write_bytes(fps)})
                self.done["fixed_points"] += 1
            except tracking.LoggingError as exc:
                self.done["failed"] += 1
                _say(f"FAILED to store {exc}; rerun the command to redo it")
        return self._task_job(task)

    # -- a task's analyses -------------------------------------------------------------
    def _comparison_key(self, name, ids):
        metric, options = GEOMETRY[name]
        fit = {"fit": FITTED[name].to_dict()} if name in FITTED else {}  # settings chosen by fit, and how
        return tracking.stage_key(kind="comparison", metric=metric, options=options, runs=ids, **fit)

    def _topology_key(self, task, ids):
        a = self.analysis
        return tracking.stage_key(kind="topology", task=task, runs=ids, mode=a.mode, n_perturb=a.n_perturb,
                                  seed=a.seed, metrics=self.metrics)

    def _untrained_options(self):
        a = self.analysis
        return {"metrics": list(a.untrained_metrics), "inits": list(a.untrained_inits)}

    def _untrained_key(self, ids):
        # "structured": the context task's structured probes, not its random probe trials (issue #19)
        return tracking.stage_key(kind="untrained", runs=ids, probes="structured", **self._untrained_options())

    def _task_job(self, task) -> list:
        """The job of ``task``'s distances, topology and trained-vs-untrained comparison, once its
        networks are trained and analysed; nothing if those are finished already."""
        wanted = {"compare", "topology"} & set(self.stages)
        if not wanted or self.outstanding[task] or task in self.submitted or task in {t for t, _ in self.held}:
            return []  # wait for this task's networks and fixed points, here or elsewhere
        self.submitted.add(task)
        runs = tracking.network_runs(self.exp_id, task)
        ids = [r.info.run_id for r in runs]
        if len(ids) < MIN_NETWORKS:
            _say(f"{task}: {len(ids)} finished network(s), need {MIN_NETWORKS} or more for comparisons; skipped")
            return []
        geometry = {name: tracking.finished_stage(self.exp_id, self._comparison_key(name, ids))
                    for name in self.metrics}
        item = {"task": task, "run_ids": ids, "metrics": [n for n, rid in geometry.items() if rid is None]}
        if "topology" in wanted:
            topo = tracking.finished_stage(self.exp_id, self._topology_key(task, ids))
            fp_runs = {rid: tracking.stage_run(self.exp_id, "fixed_points", rid) for rid in ids}
            index = [i for i, rid in enumerate(ids) if fp_runs[rid]]
            if topo is None and len(index) >= MIN_NETWORKS:
                item["topology"] = {
                    "index": index, "mode": self.analysis.mode, "n_perturb": self.analysis.n_perturb,
                    "seed": self.analysis.seed,
                    "geometry": {n: _distances(rid, ids) for n, rid in geometry.items() if rid},
                    "arrays": {k: v for rid in geometry.values() if rid for k, v in _scalars(rid).items()},
                    "fixed_points": [_read(tracking.artifact(fp_runs[ids[i]], "fixed_points.npz")) for i in index]}
            elif topo is None:
                _say(f"{task}: fixed points of {len(index)} network(s), need {MIN_NETWORKS}; no topology")
            self.logged.setdefault(task, {})["topology"] = topo
            if task == "context":
                vanilla = [i for i, r in enumerate(runs) if r.data.params.get("cell") == "vanilla"]
                done = tracking.finished_stage(self.exp_id, self._untrained_key([ids[i] for i in vanilla]))
                self.logged[task]["untrained"] = done
                if done is None and len(vanilla) >= 2:
                    item["untrained"] = vanilla
                    item["untrained_options"] = self._untrained_options()
        if not (item["metrics"] or item.get("topology") or item.get("untrained")):
            return []
        claims = self._claim_task(task, item)
        if claims is None:
            return []
        try:
            item["networks"] = [tracking.network_weights(rid) for rid in ids]
        except tracking.BrokenArtifact as exc:
            tracking.release(claims.values())
            self._broken(exc)
            return []
        return self._add(("task", (task, item, claims)), (jobs.task_job, item))

    def _claim_task(self, task, item) -> dict | None:
        """Claim all of a task job's keys, or none: ``{(kind, name): run id}``, or ``None`` (and
        the task held) when another driver holds one of them."""
        ids, wanted = item["run_ids"], {}
        if item.get("topology"):
            wanted["topology"] = [(self._topology_key(task, ids), f"topology-{task}", task)]
        wanted["comparison"] = [(self._comparison_key(n, ids), f"compare-{task}-{n}", n) for n in item["metrics"]]
        if item.get("untrained"):
            vanilla = [ids[i] for i in item["untrained"]]
            wanted["untrained"] = [(self._untrained_key(vanilla), "trained-vs-untrained", task)]
        claims, held = {}, set()
        for kind, rows in wanted.items():  # one order for every driver
            won, held = tracking.claim(self.exp_id, kind, [(key, name) for key, name, _ in rows])
            claims.update({(kind, n): won[key] for key, _, n in rows if key in won})
            if held or len(won) < len(rows):
                break
        else:
            return claims
        tracking.release(claims.values())
        self.held |= {(task, k) for k in held}
        if not held:  # finished meanwhile by another driver: plan again
            self.held.add((task, None))
        return None

    def _task_done(self, task, item, claims, result, error):
        ids = item["run_ids"]
        if error is None:
            try:
                return self._log_task(task, item, claims, result)
            except tracking.LoggingError as exc:
                error = str(exc)
        self.done["failed"] += 1
        for rid in claims.values():
            tracking.end_run(rid, "FAILED", error)
        if not claims.get(("topology", task)):
            key = self._topology_key(task, ids)
            tracking.log_failed(self.exp_id, "topology", key, f"topology-{task}", {"task": task}, error)
        _say(f"FAILED analyses of {task}: {last_line(error)}")

    def _log_task(self, task, item, claims, result):
        ids = item["run_ids"]
        nets = item["networks"]
        labels = {"cell": np.array([c["model"]["cell"] for _, c in nets]),
                  "activation": np.array([c["model"]["activation"] for _, c in nets]),
                  "n_units": np.array([c["model"]["n_units"] for _, c in nets]),
                  "seed": np.array([c["train"]["seed"] for _, c in nets])}
        for name, r in result.get("compare", {}).items():
            tracking.log_stage(self.exp_id, "comparison", self._comparison_key(name, ids), f"compare-{task}-{name}",
                               {"task": task, "metric": GEOMETRY[name][0], "n_networks": len(ids), **r["options"],
                                **r.get("params", {})},
                               {**{f"separation_{k}": v for k, v in r["separation"].items()}, **r.get("metrics", {})},
                               arrays={"distances": {"distances": r["distances"], "run_ids": np.array(ids),
                                                     "embedding": r["embedding"], **labels, **r.get("arrays", {})}},
                               figures={"mds": r["figure"], **r.get("figures", {})},
                               writers={f"{k}.json": tracking.write_json(v) for k, v in r.get("tables", {}).items()},
                               run_id=claims[("comparison", name)])
            self.done["comparisons"] += 1
            if r.get("warning"):
                _say(r["warning"])
        if "topology" in result:
            r, index = result["topology"], item["topology"]["index"]
            a = self.analysis
            self.logged[task]["topology"] = tracking.log_stage(
                self.exp_id, "topology", self._topology_key(task, ids), f"topology-{task}",
                {"task": task, "mode": a.mode, "n_perturb": a.n_perturb, "seed": a.seed, "n_networks": len(index)},
                r["metrics"], arrays={"topology": {**r["arrays"], "run_ids": np.array([ids[i] for i in index])}},
                figures=r["figures"], writers={"topology.json": tracking.write_json(r["summary"]),
                                               "graphs.npz": lambda p: np.savez(p, **r["graphs"])},
                run_id=claims[("topology", task)])
            self.done["topology"] += 1
            _print_separation(task, r["summary"])
        if "untrained" in result:
            r, vanilla = result["untrained"], [ids[i] for i in item["untrained"]]
            options = item["untrained_options"]
            self.logged[task]["untrained"] = tracking.log_stage(
                self.exp_id, "untrained", self._untrained_key(vanilla), "trained-vs-untrained",
                {"metrics": ",".join(options["metrics"]), "inits": ",".join(options["inits"]),
                 "n_networks": len(vanilla)}, {},
                arrays={"untrained": {**r["arrays"], "run_ids": np.array(vanilla)}}, figures=r["figures"],
                writers={"groups.json": tracking.write_json(r["summary"])}, run_id=claims[("untrained", task)])
            means = dict(zip(r["summary"]["groups"], r["summary"]["mean_distance"]))
            if {"trained relu", "untrained relu", "trained tanh"} <= set(means):
                row = dict(zip(r["summary"]["groups"], means["trained relu"]))
                _say(f"{task}: trained vs untrained ({r['summary']['matrix']}): trained relu to untrained relu "
                     f"{row['untrained relu']:.3f}, to trained tanh {row['trained tanh']:.3f}")

    # -- the report --------------------------------------------------------------------
    def report(self, note=""):
        """Claims and report over the tasks' topology runs (skipped when one with the same inputs exists)."""
        topology = {t: v["topology"] for t, v in self.logged.items() if v.get("topology")}
        untrained = self.logged.get("context", {}).get("untrained")
        if not topology:
            _say("report: no task has a topology run; no report")
            return None
        key = tracking.stage_key(kind="report", topology=topology, untrained=untrained, note=note,
                                 n_permutations=self.analysis.n_permutations, n_bootstrap=self.analysis.n_bootstrap)
        first = True
        while True:
            done = tracking.finished_stage(self.exp_id, key)
            if done:
                return done
            won, held = tracking.claim(self.exp_id, "report", [(key, "report")])
            if won:
                break
            wait_for_others(held or {key}, first)
            tracking.close_interrupted(self.exp_id)
            first = False
        try:
            return self._report(topology, untrained, note, key, won[key])
        except BaseException as exc:
            if not isinstance(exc, KeyboardInterrupt):
                tracking.end_run(won[key], "FAILED", f"{type(exc).__name__}: {exc}")
            raise

    def _report(self, topology, untrained, note, key, run_id):
        from rnn_dyn.claims import beyond_the_paper, compute_claims, sensitivity
        from rnn_dyn.executors import import_tensorflow

        import_tensorflow()  # quietly: the report runs example networks
        from rnn_dyn.report import make_report

        arrays = {t: tracking.artifact_arrays(rid, "topology.npz") for t, rid in topology.items()}
        a = self.analysis
        claims = compute_claims(arrays, tracking.artifact_arrays(untrained, "untrained.npz") if untrained else None,
                                n_permutations=a.n_permutations, n_bootstrap=a.n_bootstrap, seed=a.seed)
        rows = sensitivity(arrays, n_permutations=a.n_permutations, seed=a.seed)
        beyond = beyond_the_paper(arrays, n_permutations=a.n_permutations, n_bootstrap=a.n_bootstrap, seed=a.seed)
        rid = make_report(self.exp_id, topology, untrained, claims, rows, note=note, key=key, run_id=run_id,
                          beyond=beyond)
        _print_claims(claims)
        return rid


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _distances(run_id, ids):
    """A comparison run's distance matrix, in the order of ``ids``."""
    d = tracking.artifact_arrays(run_id, "distances.npz")
    where = {r: i for i, r in enumerate(d["run_ids"].tolist())}
    order = [where[r] for r in ids]
    return d["distances"][np.ix_(order, order)]


def _scalars(run_id):
    """A comparison run's 0-d arrays (DSA's chosen settings and fit quality)."""
    return {k: v for k, v in tracking.artifact_arrays(run_id, "distances.npz").items() if np.ndim(v) == 0}


def _print_separation(task, summary):
    rows = summary.get("separation", {})
    _say(f"{task}: silhouette by cell / by activation: " + ", ".join(
        f"{m} {r.get('cell', float('nan')):.2f}/{r.get('activation', float('nan')):.2f}" for m, r in rows.items()))


def _print_claims(claims):
    _say(f"\n{'claim':44s} {'value':>8s} {'p':>7s}  verdict")
    for c in claims:
        value = "" if c.get("value") is None else f"{c['value']:8.3f}"
        p = "" if c.get("p_value") is None else f"{c['p_value']:7.3f}"
        _say(f"{c['id']:44s} {value:>8s} {p:>7s}  {c['verdict']}")


# -- entry points --------------------------------------------------------------------
def _untrained(exp_id, jobs_, table=None):
    """The networks of ``jobs_`` that no finished run holds (counted in ``table`` as skipped otherwise)."""
    done = tracking.finished_keys(exp_id)
    todo = []
    for job in jobs_:
        keep = [i for i in range(job.train.n_networks) if tracking.network_key(job.member_config(i)) not in done]
        if table is not None:
            table[job.task.name]["skipped"] += job.train.n_networks - len(keep)
        if keep:
            todo.append(job.subset(keep))
    return todo


@contextlib.contextmanager
def _driving(exp_id, pool):
    """Close the pool at the end; on Ctrl-C first stop the workers, close this driver's
    RUNNING runs as KILLED and say how to resume."""
    try:
        with tracking.heartbeat(exp_id):
            yield
    except KeyboardInterrupt:
        pool.close()
        n = tracking.close_own_runs(exp_id)
        print(f"\ninterrupted: {n} running run(s) marked KILLED; run the same command again to resume.",
              file=sys.stderr)
        raise
    finally:
        pool.close()


def run_study(sweep: SweepConfig, pool, note: str = "") -> dict:
    """Train a sweep's networks and run its analyses (``sweep.analyses``) on ``pool``.

    Returns a summary: networks trained, searches run, per-task counts, the
    report run (if any) and the wall time.
    """
    start = time.time()
    exp_id = tracking.get_experiment_id(sweep.experiment)
    tracking.close_interrupted(exp_id)
    study = Study(exp_id, sweep.tasks, sweep.analyses, sweep.analysis, pool)
    with _driving(exp_id, pool):
        jobs_, searches, n_searched = sweep.expand(), sweep.search_jobs(), 0
        if searches:
            winners, n_searched = search(pool, exp_id, searches, study.table, len(sweep.seed_list))
            jobs_ = apply_search(jobs_, winners)
        study.run(jobs_, sweep.experiment)
        report = study.report(note) if "report" in sweep.analyses else None
    wall = time.time() - start
    print(f"\n{'task':10s} {'finished':>9s} {'skipped':>8s} {'diverged':>9s} {'failed':>7s}")
    for t, row in study.table.items():
        print(f"{t:10s} {row['finished']:9d} {row['skipped']:8d} {row['diverged']:9d} {row['failed']:7d}")
    if searches:
        print(f"searches: {n_searched} run, {len(searches) - n_searched} already finished")
    print(f"wall time {wall:.1f} s; browse with: mlflow ui")
    return {"experiment": sweep.experiment, "networks": study.n_train,
            "searches": n_searched, "analysed": dict(study.done), "report": report, "wall_s": round(wall, 1)}


def run_analyses(experiment: str, tasks, stages, analysis: AnalysisConfig, pool, note: str = "") -> Study:
    """Run ``stages`` (and what they need) over the finished networks of an existing experiment."""
    exp_id = tracking.experiment_id(experiment)
    tracking.close_interrupted(exp_id)
    study = Study(exp_id, tasks, check_stages(stages), analysis, pool)
    with _driving(exp_id, pool):
        study.run((), experiment)
        if "report" in study.stages:
            study.report(note)
    return study


def check_fixed_point_options(options: dict):
    """Fail before any work on a ``find_fixed_points`` option that does not exist."""
    if not options:
        return
    import inspect

    from rnn_dyn.executors import import_tensorflow

    import_tensorflow()
    from rnn_dyn.fixed_points import find_fixed_points

    allowed = [p.name for p in inspect.signature(find_fixed_points).parameters.values()
               if p.kind == p.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown fixed-point option(s) {unknown}; allowed: {sorted(allowed)}.")
