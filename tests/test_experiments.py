import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from rnn_dyn import experiments
from rnn_dyn import sweep as sweep_module
from rnn_dyn.sweep_config import SEARCH_FIELDS, SweepConfig, apply_search, best_candidate

TINY = dict(tasks=["flipflop", "context"], cells=["gru"], activations=["tanh"], n_units=[4], seeds=2,
            defaults={"task": {"n_time": 10, "n_val": 8}, "train": {"iterations": 3, "batch_size": 4}},
            experiment="tiny", analyses=[])  # training only: tests/test_study.py runs the analyses
# Without XLA: for networks this small compiling costs more than it saves.
NO_XLA = {**TINY, "defaults": {**TINY["defaults"], "train": {"iterations": 3, "batch_size": 4, "jit_compile": False}}}


def test_specs_expand():
    for name in ("quick", "paper"):
        cfg = SweepConfig.from_dict(experiments.load_spec(name))
        jobs = cfg.expand()
        tasks = {j.task.name for j in jobs}
        assert tasks == {"flipflop", "sine", "context"}
        assert {(j.model.cell, j.model.activation) for j in jobs} == {
            (c, a) for c in ("vanilla", "ugrnn", "gru", "lstm") for a in ("relu", "tanh")}
    quick = SweepConfig.from_dict(experiments.load_spec("quick")).expand()
    lrs = {(j.task.name, j.model.cell, j.model.activation): (j.train.optimizer, j.train.lr) for j in quick}
    assert lrs["context", "lstm", "relu"] == ("sgd", 0.02)  # by_config wins over by_task
    assert lrs["flipflop", "lstm", "tanh"] == ("sgd", 0.05) and lrs["sine", "gru", "tanh"] == ("adam", 3e-3)
    paper = SweepConfig.from_dict(experiments.load_spec("paper"))
    assert sum(j.train.n_networks for j in paper.expand()) == 3 * 96 * 30
    searches = paper.search_jobs()  # one per configuration, 20 candidates each
    assert len(searches) == 3 * 96 and {j.train.n_networks for j in searches} == {20}
    assert SweepConfig.from_dict(experiments.load_spec("quick")).search_jobs() == []
    assert all(j.train.iterations == 20000 and j.train.batch_size == 64 for j in paper.expand())


def test_sweep_runs_and_resumes(mlflow_store, tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump(TINY))
    out = experiments.sweep(spec=str(spec), workers=2)
    assert out["networks"] == 4
    runs = mlflow.search_runs(experiment_names=["tiny"], filter_string="tags.`rnn_dyn.kind` = 'network'",
                              output_format="list")
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    # A rerun with one more seed trains only the new networks.
    again = experiments.sweep(spec=str(spec), workers=2, seeds=3)
    assert again["networks"] == 2
    runs = mlflow.search_runs(experiment_names=["tiny"], filter_string="tags.`rnn_dyn.kind` = 'network'",
                              output_format="list")
    assert len(runs) == 6 and len({r.data.tags["rnn_dyn.key"] for r in runs}) == 6
    # Compare the networks of each task; a second call finds the logged results.
    first = experiments.compare(experiment="tiny", metric="cka", workers=1)
    assert first["comparisons"] == 2
    (run,) = [r for r in _runs("tiny", "comparison") if r.data.params["task"] == "flipflop"]
    assert run.data.params["metric"] == "cka" and run.data.params["n_networks"] == "3"
    assert {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)} == {"distances.npz", "mds.png"}
    path = mlflow.MlflowClient().download_artifacts(run.info.run_id, "distances.npz", str(tmp_path))
    with np.load(path) as f:
        assert f["distances"].shape == (3, 3) and np.allclose(f["distances"], f["distances"].T)
        assert sorted(f["run_ids"]) == sorted(r.info.run_id for r in runs if r.data.params["task"] == "flipflop")
    assert experiments.compare(experiment="tiny", metric="cka", workers=1)["comparisons"] == 0
    # Fixed points of each network, logged under the network's run; a rerun skips them.
    out = experiments.analyze(experiment="tiny", tasks="flipflop", n_starts=16, max_iters=200, workers=1)
    assert out["fixed_points"] == 3
    stages = mlflow.search_runs(experiment_names=["tiny"], filter_string="tags.`rnn_dyn.kind` = 'fixed_points'",
                                output_format="list")
    assert len(stages) == 3 and {"n_fixed", "n_slow", "n_stable", "n_saddles"} <= set(stages[0].data.metrics)
    assert stages[0].data.tags["mlflow.parentRunId"] == stages[0].data.params["network_run"]
    files = {a.path for a in mlflow.MlflowClient().list_artifacts(stages[0].info.run_id)}
    assert files == {"fixed_points.npz", "fixed_points.png"}
    assert experiments.analyze(experiment="tiny", tasks="flipflop", n_starts=16, max_iters=200,
                               workers=1)["fixed_points"] == 0
    with pytest.raises(ValueError, match="experiment 'nope' not found"):
        experiments.compare(experiment="nope")
    with pytest.raises(ValueError, match=r"unknown fixed-point option\(s\) \['max_iter'\]"):
        experiments.analyze(experiment="tiny", max_iter=3)


@pytest.mark.parametrize("override, message", [
    (dict(cells=["rnn"]), r"cells must be one of \['gru', 'lstm', 'ugrnn', 'vanilla'\]; got 'rnn'"),
    (dict(colour="red"), r"unknown flag\(s\) --colour; allowed flags: \[.*'--executor'"),
    (dict(analyses=["fixed_point"]), r"analyses must be one of \['compare', 'fixed_points', 'report', 'topology'\]"),
    (dict(analysis={"metrics": ["svca"]}), r"analysis.metrics must be one of"),
    (dict(defaults={"train": {"lr": -1}}), "lr must be > 0; got -1"),
    (dict(by_task={"maze": {}}), r"by_task key must be one of \['context', 'flipflop', 'sine'\]"),
    (dict(by_config={"lstm/sigmoid": {}}), r"activation in by_config key 'lstm/sigmoid' must be one of"),
    (dict(by_config={"gru/tanh": {"train": {"seed": 3}}}), r"train.seed is set by the sweep"),
    (dict(search={"n_candidates": -1}), r"search.n_candidates must be in \[0, inf\]; got -1"),
    (dict(search={"n_candidates": 2, "lr": [0, 0.1]}), r"search.lr must be in \(0.0, inf\]; got 0"),
    (dict(search={"momentum": [0.9, 0.1]}), r"search.momentum must be a \[low, high\] range with low <= high"),
    (dict(search={"clip": 1.0}), r"search.clip must be a \[low, high\] range; got 1.0"),
    (dict(search={"candidates": 3}), r"unknown key\(s\) \['candidates'\] in search"),
    (dict(search=3), r"search must be a mapping of \['n_candidates', 'seed', 'iterations'"),
])
def test_sweep_bad_input(mlflow_store, tmp_path, override, message):
    with pytest.raises((ValueError, TypeError), match=message):
        experiments.sweep(spec="quick", **override)
    assert not (tmp_path / "mlflow.db").exists()


def test_unreadable_spec(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [flipflop\n")
    with pytest.raises(ValueError, match="is not valid YAML"):
        experiments.sweep(spec=str(bad))
    with pytest.raises(ValueError, match="spec 'nope' is neither a file nor a spec name"):
        experiments.sweep(spec="nope")


def test_sweep_on_a_dask_local_cluster(mlflow_store, tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump({**TINY, "tasks": ["flipflop"], "experiment": "tiny-dask"}))
    out = experiments.sweep(spec=str(spec), executor="dask", workers=2)
    assert out["networks"] == 2
    runs = mlflow.search_runs(experiment_names=["tiny-dask"], output_format="list",
                              filter_string="tags.`rnn_dyn.kind` = 'network' and attributes.status = 'FINISHED'")
    assert len(runs) == 2


def test_dry_run_plans_and_starts_nothing(mlflow_store, tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump({**TINY, "tasks": ["flipflop"]}))
    plan = experiments.sweep(spec=str(spec), dry_run=True)
    assert plan["jobs"] == 1 and plan["networks"] == 2 and plan["searches"] == 0
    assert 0 < plan["wall_seconds"] < plan["core_seconds"] < 60
    searched = experiments.sweep(spec=str(spec), dry_run=True, search={"n_candidates": 3}, l2=[0.0, 1e-3])
    assert searched["searches"] == 2 and searched["candidates"] == 6 and searched["networks"] == 4
    assert searched["core_seconds"] > plan["core_seconds"]
    assert not (tmp_path / "mlflow.db").exists()


def test_best_candidate_is_never_a_diverged_one():
    assert best_candidate([0.3, 0.05, 0.2, np.nan], [False, True, False, False]) == 2
    assert best_candidate([np.nan, 0.1], [True, True]) is None


def _runs(experiment, kind="network", status=None):
    query = f"tags.`rnn_dyn.kind` = '{kind}'" + (f" and attributes.status = '{status}'" if status else "")
    return mlflow.search_runs(experiment_names=[experiment], filter_string=query, output_format="list")


def test_search_then_seeds_with_the_winner(mlflow_store, tmp_path):
    spec = tmp_path / "search.yaml"
    spec.write_text(yaml.safe_dump({**NO_XLA, "tasks": ["flipflop"], "l2": [1e-4, 1e-3], "experiment": "search",
                                    "search": {"n_candidates": 3, "seed": 5, "iterations": 4}}))
    out = experiments.sweep(spec=str(spec), workers=2)
    assert out["searches"] == 2 and out["networks"] == 4
    client = mlflow.MlflowClient()
    searches = _runs("search", "search")
    assert len(searches) == 2 and all(r.info.status == "FINISHED" for r in searches)
    drawn = set()
    for run in searches:
        path = client.download_artifacts(run.info.run_id, "candidates.json", str(tmp_path))
        rows = json.loads(Path(path).read_text())
        assert [r["candidate"] for r in rows] == [0, 1, 2]
        drawn |= {r["lr"] for r in rows}
        ok = [r for r in rows if not r["diverged"] and r["val_loss"] is not None]
        best = min(ok, key=lambda r: r["val_loss"])
        assert [r["winner"] for r in rows] == [r is best for r in rows]
        history = client.get_metric_history(run.info.run_id, "candidate_val_loss")
        assert {m.step: m.value for m in history} == pytest.approx({r["candidate"]: r["val_loss"] for r in ok})
        assert run.data.metrics["val_loss"] == pytest.approx(best["val_loss"])
        assert run.data.params["n_candidates"] == "3" and run.data.params["iterations"] == "4"
        nets = [r for r in _runs("search", status="FINISHED") if r.data.params["l2"] == run.data.params["l2"]]
        assert sorted(r.data.params["seed"] for r in nets) == ["0", "1"]
        for k in SEARCH_FIELDS:  # the winner's settings, param and network alike
            assert float(run.data.params[k]) == best[k]
            assert all(float(n.data.params[k]) == best[k] for n in nets)
    assert len(drawn) == 6  # each configuration drew its own candidates
    again = experiments.sweep(spec=str(spec), workers=2)  # nothing left: no search, no network
    assert again["searches"] == 0 and again["networks"] == 0
    assert len(_runs("search", "search")) == 2 and len(_runs("search")) == 4


def test_a_search_whose_candidates_all_diverge_fails_its_seeds(mlflow_store):
    from rnn_dyn import tracking

    sweep = SweepConfig.from_dict({**NO_XLA, "tasks": ["flipflop"], "search": {"n_candidates": 2}})
    (job,) = sweep.search_jobs()

    class Pool:  # both candidates diverged
        def map(self, fn, jobs):
            yield 0, {"val_loss": np.full(2, np.nan), "diverged": np.ones(2, bool), "zero_loss": 1.0,
                      "diverged_step": np.array([3, 1]), "seconds": 0.1}, None

    table = {"flipflop": {"failed": 0}}
    winners, n_searched = sweep_module.search(Pool(), tracking.get_experiment_id("diverged"), [job], table, 2)
    assert winners == {} and n_searched == 1 and table["flipflop"]["failed"] == 2
    (run,) = _runs("diverged", "search")
    assert run.info.status == "FAILED" and run.data.tags["rnn_dyn.error"] == "every candidate diverged"
    assert run.data.metrics["candidate_diverged"] == 1 and "lr" not in run.data.params
    assert apply_search(sweep.expand(), winners) == []


def _count_finished_networks(db):
    """Read straight from SQLite: an MLflow client here would race the sweep creating the store."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return con.execute("SELECT COUNT(*) FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid WHERE"
                               " tags.key = 'rnn_dyn.kind' AND tags.value = 'network'"
                               " AND runs.status = 'FINISHED'").fetchone()[0]
    except sqlite3.Error:  # no store or no tables yet
        return 0


def test_killed_sweep_reruns_only_the_unfinished_networks(mlflow_store, tmp_path):
    """SIGKILL a sweep (driver and workers) once a network is finished; the rerun
    closes the runs it left RUNNING and trains only what had not finished."""
    spec = tmp_path / "kill.yaml"
    cells = ["vanilla", "ugrnn", "gru", "lstm"]
    spec.write_text(yaml.safe_dump({**NO_XLA, "tasks": ["flipflop"], "cells": cells, "experiment": "killed"}))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "rnn_dyn.experiments", "sweep", "--spec", str(spec),
                             "--workers", "1"], cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished, deadline = 0, time.time() + 180
    try:
        while not finished and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
            finished = _count_finished_networks(tmp_path / "mlflow.db")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert finished and proc.returncode == -signal.SIGKILL
    before = {r.info.run_id: r.info.start_time for r in _runs("killed", status="FINISHED")}
    assert 0 < len(before) < 2 * len(cells)
    out = experiments.sweep(spec=str(spec), workers=1)
    assert out["networks"] == 2 * len(cells) - len(before)
    runs = _runs("killed", status="FINISHED")
    assert len(runs) == 2 * len(cells) == len({r.data.tags["rnn_dyn.key"] for r in runs})
    assert {r.info.run_id: r.info.start_time for r in runs if r.info.run_id in before} == before
    every = mlflow.search_runs(experiment_names=["killed"], output_format="list")
    assert "RUNNING" not in {r.info.status for r in every}
    killed = [r for r in every if r.info.status == "KILLED"]
    assert killed and all("closed by the next sweep" in r.data.tags["rnn_dyn.error"] for r in killed)
