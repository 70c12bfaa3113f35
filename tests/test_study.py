"""The whole study from one command: stages, resume after a kill, process hygiene, a quiet
terminal and one-line errors.  Commands run as a user runs them, in subprocesses."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import mlflow
import numpy as np
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(experiment="study-tiny", tasks=["flipflop", "context"], cells=["gru", "vanilla"], activations=["tanh"],
            n_units=[4], seeds=2, analysis={"n_starts": 16, "fixed_points": {"max_iters": 200}, "n_perturb": 10,
                                            "n_permutations": 99, "n_bootstrap": 99},
            defaults={"task": {"n_time": 10, "n_val": 8}, "train": {"iterations": 3, "batch_size": 4,
                                                                       "jit_compile": False}})
NOISE = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|oneDNN|cuda|cuInit|retracing|INFO mlflow|alembic|"
                   r"Traceback|UserWarning|DeprecationWarning", re.I | re.M)


GOLDEN = os.path.join(ROOT, "tests", "fixtures", "tiny_study")


def tiny_study_results():
    """The tiny study's claims and distance matrices, read from the current MLflow store:
    ``(claims.json as a dict, {"<task>/distances_<metric>" or "untrained/...": array})``."""
    arrays, client = {}, mlflow.MlflowClient()
    for run in _runs("topology") + _runs("untrained"):
        name = run.data.params.get("task", "untrained") if run.data.tags["rnn_dyn.kind"] == "topology" else "untrained"
        artifact = "topology.npz" if name != "untrained" else "untrained.npz"
        path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=artifact)
        with np.load(path) as f:
            arrays.update({f"{name}/{k}": f[k] for k in f.files if k.startswith("distances")})
    (report,) = _runs("report")
    claims = json.load(open(client.download_artifacts(report.info.run_id, "claims.json")))
    return claims, arrays


def _same(a, b, where=""):
    """``a`` equals ``b``: numbers to 1e-6 relative (one machine's XLA and BLAS give the same bits;
    another CPU may round differently), everything else exactly."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), (where, sorted(a), sorted(b))
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12, equal_nan=True, err_msg=where)
    else:
        assert a == b, (where, a, b)


def _command(tmp_path, *args, **kwargs):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command must quiet TensorFlow itself
    return subprocess.Popen([sys.executable, "-m", "rnn_dyn.experiments", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _spec(tmp_path, **changes):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return str(path)


def _runs(kind, status="FINISHED"):
    return mlflow.search_runs(experiment_names=[TINY["experiment"]], output_format="list",
                              filter_string=f"tags.`rnn_dyn.kind` = '{kind}' and attributes.status = '{status}'")


def test_one_command_runs_the_whole_study_quietly(mlflow_store, tmp_path):
    proc = _command(tmp_path, "sweep", "--spec", _spec(tmp_path), "--dry-run")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "8 networks" in out and not NOISE.search(err), err  # a quiet plan ...
    assert not _runs("network")  # ... that starts nothing
    proc = _command(tmp_path, "sweep", "--spec", _spec(tmp_path), "--workers", "2")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert not NOISE.search(err), err  # progress and results only
    assert "wall time" in out and "claim" in err
    assert len(_runs("network")) == 8 and len(_runs("fixed_points")) == 8
    comparisons = _runs("comparison")
    assert Counter(r.data.params["task"] for r in comparisons) == {"flipflop": 6, "context": 6}
    assert {r.data.params["task"] for r in _runs("topology")} == {"flipflop", "context"}
    assert len(_runs("untrained")) == 1
    (report,) = _runs("report")
    files = {a.path for a in mlflow.MlflowClient().list_artifacts(report.info.run_id)}
    assert {"report.html", "claims.json"} <= files
    claims = json.load(open(mlflow.artifacts.download_artifacts(run_id=report.info.run_id,
                                                                artifact_path="claims.json")))
    ids = {c["id"] for c in claims["claims"]}
    assert {"flipflop.scaffold", "flipflop.geometry_by_architecture", "context.trained_vs_untrained",
            "sine.frequency_matches"} <= ids
    assert all(c["verdict"] in ("reproduced", "contradicted", "inconclusive") for c in claims["claims"])
    # The same claims and distance matrices as the code gave before its move into subpackages
    # (tests/fixtures/make_tiny_study.py wrote them then).
    claims, arrays = tiny_study_results()
    with open(GOLDEN + "_claims.json") as f:
        _same(claims, json.load(f), "claims.json")
    with np.load(GOLDEN + ".npz") as f:
        assert sorted(arrays) == sorted(f.files)
        for k in f.files:
            np.testing.assert_allclose(arrays[k], f[k], rtol=1e-6, atol=1e-12, equal_nan=True, err_msg=k)
    # A rerun finds everything done: nothing is computed or logged again.
    before = len(mlflow.search_runs(experiment_names=[TINY["experiment"]], output_format="list"))
    proc = _command(tmp_path, "sweep", "--spec", _spec(tmp_path), "--workers", "2")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert len(mlflow.search_runs(experiment_names=[TINY["experiment"]], output_format="list")) == before


def _count(db, kind):
    """Finished runs of ``kind``, read straight from SQLite (a client here would race the driver)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return con.execute("SELECT COUNT(*) FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid WHERE"
                               " tags.key = 'rnn_dyn.kind' AND tags.value = ? AND runs.status = 'FINISHED'",
                               (kind,)).fetchone()[0]
    except sqlite3.Error:
        return 0


def _group_alive(pgid) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigkill_during_fixed_points_leaves_no_process_and_the_rerun_does_nothing_twice(mlflow_store, tmp_path):
    spec = _spec(tmp_path, tasks=["flipflop"], cells=["gru", "vanilla", "ugrnn"], activations=["tanh", "relu"],
                 analyses=["fixed_points", "compare", "topology"])
    proc = _command(tmp_path, "sweep", "--spec", spec, "--workers", "2", start_new_session=True)
    db, deadline = tmp_path / "mlflow.db", time.time() + 300
    while _count(db, "fixed_points") == 0 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)  # the driver alone: its workers and servers must follow it
    proc.communicate()
    gone = time.time() + 10
    while _group_alive(proc.pid) and time.time() < gone:
        time.sleep(0.2)
    alive = _group_alive(proc.pid)
    if alive:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not alive, "a process started by the killed driver outlived it by 10 s"
    fixed = {r.data.tags["rnn_dyn.key"]: r.info.start_time for r in _runs("fixed_points")}
    networks = {r.info.run_id for r in _runs("network")}
    assert fixed and len(fixed) < 12
    rerun = _command(tmp_path, "sweep", "--spec", spec, "--workers", "2")
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    for kind, n in (("network", 12), ("fixed_points", 12), ("comparison", 6), ("topology", 1)):
        runs = _runs(kind)
        assert len(runs) == n and len({r.data.tags["rnn_dyn.key"] for r in runs}) == n, kind
    assert networks <= {r.info.run_id for r in _runs("network")}  # finished networks were not retrained
    after = {r.data.tags["rnn_dyn.key"]: r.info.start_time for r in _runs("fixed_points")}
    assert {k: after[k] for k in fixed} == fixed  # nor their fixed points searched again
    every = mlflow.search_runs(experiment_names=[TINY["experiment"]], output_format="list")
    assert "RUNNING" not in {r.info.status for r in every}


@pytest.mark.parametrize("args, message", [
    (["train", "--cell", "grux"], r"error: cell must be one of \['gru', 'lstm', 'ugrnn', 'vanilla'\]; got 'grux'"),
    (["sweep", "--executr", "dask"], r"error: unknown flag\(s\) --executr; allowed flags: \[.*'--executor'.*\]"),
    (["sweep", "--executor", "slurm"], r"error: executor must be one of \['dask', 'local'\]; got 'slurm'"),
    (["analyze", "--experiment", "nope"], r"error: experiment 'nope' not found"),
    (["sweep", "--executor", "dask", "--without-dask"],
     r"error: executor 'dask' needs Dask distributed.*pip install 'rnn_dyn\[dask\]'"),
])
def test_bad_input_is_one_line_and_exit_status_2(tmp_path, args, message):
    path = [ROOT, os.environ.get("PYTHONPATH", "")]
    if "--without-dask" in args:  # as on a machine without the extra: a dask that cannot be imported
        args = [a for a in args if a != "--without-dask"]
        (tmp_path / "nodask" / "dask").mkdir(parents=True)
        (tmp_path / "nodask" / "dask" / "__init__.py").write_text("raise ImportError('no dask here')\n")
        path.insert(0, str(tmp_path / "nodask"))
    out = subprocess.run([sys.executable, "-m", "rnn_dyn.experiments", *args], cwd=tmp_path, capture_output=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(path)}, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), out.stderr
    runs = 0
    if (tmp_path / "mlflow.db").exists():
        with sqlite3.connect(tmp_path / "mlflow.db") as con:
            runs = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert runs == 0  # no MLflow run was created
