"""Faults a shared study meets, injected for real: two drivers on one experiment, a driver whose
claims outlive it, a full disk, a truncated artifact, a lost Dask worker.  Each test counts
what a user cares about: runs lost (0), runs duplicated (0), processes left (0)."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import mlflow
import pytest
import yaml

from rnn_dyn import leases, tracking

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ("network", "fixed_points", "comparison", "topology")
TINY = dict(experiment="shared", tasks=["flipflop"], cells=["gru", "vanilla"], activations=["tanh"],
            n_units=[4], seeds=2, analyses=["fixed_points", "compare", "topology"],
            analysis={"n_starts": 16, "fixed_points": {"max_iters": 200}, "n_perturb": 10},
            defaults={"task": {"n_time": 10, "n_val": 8}, "train": {"iterations": 3, "batch_size": 4,
                                                                       "jit_compile": False}})


def spec_file(tmp_path, **changes):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return str(path)


def sweep(tmp_path, spec, *args, env=None, **kwargs):
    """``python -m rnn_dyn.experiments sweep`` as a user starts it, in its own process group."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "rnn_dyn.experiments", "sweep", "--spec", spec, *args],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)


def group_alive(pgid, grace: float = 10.0) -> bool:
    """Whether a process of group ``pgid`` is still there after ``grace`` seconds (killed if so)."""
    deadline = time.time() + grace
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.2)
    os.killpg(pgid, signal.SIGKILL)
    return True


def every_run(experiment):
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


def assert_exactly_once(experiment, expected):
    """Every key of every kind FINISHED exactly once; no run left RUNNING, KILLED or FAILED."""
    runs = every_run(experiment)
    assert Counter(r.info.status for r in runs if r.data.tags.get("rnn_dyn.kind") in KINDS) == {
        "FINISHED": sum(expected.values())}
    for kind, n in expected.items():
        keys = [r.data.tags["rnn_dyn.key"] for r in runs if r.data.tags.get("rnn_dyn.kind") == kind]
        assert len(keys) == n == len(set(keys)), (kind, Counter(keys).most_common(2))
    assert "RUNNING" not in {r.info.status for r in runs}


def test_two_drivers_on_one_experiment_compute_every_key_exactly_once(mlflow_store, tmp_path):
    """A second terminal runs the same sweep 1.5 s after the first, on one fresh SQLite store."""
    spec = spec_file(tmp_path)
    first = sweep(tmp_path, spec, "--workers", "1")
    time.sleep(1.5)
    second = sweep(tmp_path, spec, "--workers", "1")
    outs = [p.communicate(timeout=600) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outs
    assert not group_alive(first.pid) and not group_alive(second.pid)
    # 4 networks (2 cells x 2 seeds), their fixed points, 6 matrices, 1 topology.
    assert_exactly_once("shared", {"network": 4, "fixed_points": 4, "comparison": 6, "topology": 1})
    # No work done twice: what each driver says it computed adds up to what the store holds.
    done = [json.loads(line.split(":", 1)[1]) for out, _ in outs for line in out.splitlines()
            if line.startswith("analysed:")]
    assert len(done) == 2, outs
    assert {k: done[0][k] + done[1][k] for k in ("trained", "fixed_points", "comparisons", "topology")} == {
        "trained": 4, "fixed_points": 4, "comparisons": 6, "topology": 1}, done
    # The driver that waited said so, once, on one line.
    assert sum("being computed by another driver" in err for _, err in outs) >= 1


def test_a_dead_drivers_claims_are_taken_over(mlflow_store):
    """Claims whose process is gone (same host: pid gone or reused; other host: no heartbeat
    for LEASE_TTL) block nothing; live ones do."""
    exp = tracking.get_experiment_id("leases")
    won, _ = tracking.claim(exp, "network", [("k1", "a")])
    assert tracking.claim(exp, "network", [("k1", "a")]) == ({}, {"k1"})  # held by this live process
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    fakes = {"k2": {"rnn_dyn.driver": f"{host}:{dead.stdout.strip()}"},  # a pid that is gone
             "k3": {"rnn_dyn.driver": f"{host}:{os.getpid()}", "rnn_dyn.driver_start": "1"},  # a reused pid
             "k4": {"rnn_dyn.driver": "elsewhere:1", "rnn_dyn.heartbeat": str(time.time() - leases.LEASE_TTL - 1)},
             "k5": {"rnn_dyn.driver": "elsewhere:1", "rnn_dyn.heartbeat": str(time.time())}}  # alive there
    c = mlflow.MlflowClient()
    for key, tags in fakes.items():
        c.create_run(exp, tags={"rnn_dyn.kind": "network", "rnn_dyn.key": key, **tags})
    won, held = tracking.claim(exp, "network", [(k, k) for k in fakes])
    assert set(won) == {"k2", "k3", "k4"} and held == {"k5"}
    killed = {r.data.tags["rnn_dyn.key"] for r in every_run("leases") if r.info.status == "KILLED"}
    assert killed == {"k2", "k3", "k4"}


def test_a_live_driver_renews_its_leases(mlflow_store):
    exp = tracking.get_experiment_id("beat")
    won, _ = tracking.claim(exp, "network", [("k", "k")])
    old = float(mlflow.get_run(won["k"]).data.tags["rnn_dyn.heartbeat"])
    time.sleep(1.1)
    with tracking.heartbeat(exp, every=0.2):
        time.sleep(1.0)
    assert float(mlflow.get_run(won["k"]).data.tags["rnn_dyn.heartbeat"]) > old


@pytest.mark.parametrize("n", [2])
def test_drivers_creating_one_store_together_do_not_corrupt_it(tmp_path, n):
    """Processes that create one fresh SQLite store and experiment at once take turns."""
    code = ("import mlflow, sys; from rnn_dyn import tracking; "
            f"mlflow.set_tracking_uri('sqlite:///{tmp_path}/new.db'); print(tracking.get_experiment_id('e'))")
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(n)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert len({out.strip() for out, _ in outs}) == 1  # one experiment, seen by all


def _limit_file_size(limit):
    def set_limit():
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return set_limit


def _finished(experiment, kind="network"):
    return {r.data.tags["rnn_dyn.key"]: r for r in every_run(experiment)
            if r.data.tags.get("rnn_dyn.kind") == kind and r.info.status == "FINISHED"}


@pytest.mark.slow  # two 700-unit drivers: about 3 min on 2 busy cores
def test_a_full_disk_fails_only_the_runs_it_hits_and_the_rerun_redoes_only_them(mlflow_store, tmp_path):
    """A driver under a 4 MB file-size limit (as a nearly full disk): a GRU's weights.npz (5.9 MB at
    700 units) cannot be written, a vanilla network's (2 MB) can."""
    spec = spec_file(tmp_path, experiment="full", n_units=[700], analyses=[])
    proc = sweep(tmp_path, spec, "--workers", "1", preexec_fn=_limit_file_size(4 << 20))
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    runs = [r for r in every_run("full") if r.data.tags.get("rnn_dyn.kind") == "network"]
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert {r.data.params["cell"] for r in failed} == {"gru"} and len(failed) == 2
    for r in failed:  # one line naming run, key and file, in the store and on the terminal
        message = r.data.tags["rnn_dyn.error"]
        assert "\n" not in message and r.info.run_id in message and r.data.tags["rnn_dyn.key"] in message
        assert "weights.npz" in message and "File too large" in message
        assert f"FAILED to store network run {r.info.run_id} (key {r.data.tags['rnn_dyn.key']})" in err
    before = {k: r.info.start_time for k, r in _finished("full").items()}
    assert len(before) == 2
    proc = sweep(tmp_path, spec, "--workers", "1")
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert "networks:   2" in out  # the rerun trained the two that failed, nothing else
    after = _finished("full")
    assert len(after) == 4 and {k: after[k].info.start_time for k in before} == before
    assert not group_alive(proc.pid)


@pytest.mark.slow  # a sweep, then fixed points and a network trained again: about 1.5 min
def test_a_truncated_weights_file_is_named_and_its_network_trained_again(mlflow_store, tmp_path):
    from rnn_dyn import experiments

    spec = spec_file(tmp_path, experiment="cut", analyses=[])
    experiments.sweep(spec=spec, workers=1)
    victim = next(iter(_finished("cut").values()))
    path = os.path.join(victim.info.artifact_uri.removeprefix("file://"), "weights.npz")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    out = experiments.analyze(experiment="cut", n_starts=16, max_iters=200, workers=1)
    assert out["fixed_points"] == 4 and out["trained"] == 1
    broken = mlflow.get_run(victim.info.run_id)
    assert broken.info.status == "FAILED"
    message = broken.data.tags["rnn_dyn.error"]
    assert victim.info.run_id in message and victim.data.tags["rnn_dyn.key"] in message and "weights.npz" in message
    networks = _finished("cut")
    assert len(networks) == 4 and networks[victim.data.tags["rnn_dyn.key"]].info.run_id != victim.info.run_id
    assert len(_finished("cut", "fixed_points")) == 4
