"""The study against a real ``mlflow server`` (SQLite backend, proxied artifacts, loopback only),
with Dask LocalCluster workers, and the server killed and started again in the middle."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import pytest

from test_faults import assert_exactly_once, group_alive, spec_file, sweep



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp_path, port):
    """``mlflow server`` on 127.0.0.1:``port``; returns once it answers ``/health``."""
    log = open(tmp_path / "server.log", "a")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                             "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
                             "--artifacts-destination", str(tmp_path / "artifacts")],
                            cwd=tmp_path, stdout=log, stderr=log, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("mlflow server did not answer within 120 s")


def stop_server(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not group_alive(proc.pid)


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A tracking server for the test; the test's own client talks to it too."""
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    procs = [start_server(tmp_path, port)]
    yield port, procs
    for proc in procs:
        if proc.poll() is None:
            stop_server(proc)
    mlflow.set_tracking_uri(None)


def _finished_networks():
    try:
        return len(mlflow.search_runs(experiment_names=["shared"], output_format="list", filter_string=(
            "tags.`rnn_dyn.kind` = 'network' and attributes.status = 'FINISHED'")))
    except Exception:  # noqa: BLE001 - not created yet
        return 0


def test_a_study_through_a_tracking_server_that_restarts(server, tmp_path):
    port, procs = server
    spec = spec_file(tmp_path, analyses=["fixed_points"])
    # MLflow's HTTP client retries refused connections; a short backoff finds the server soon after it is back.
    driver = sweep(tmp_path, spec, "--executor", "dask", "--workers", "1",
                   env={"MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "10"})
    deadline = time.time() + 300
    while not _finished_networks() and driver.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    stop_server(procs[0])  # the server dies mid-study ...
    time.sleep(2)
    procs.append(start_server(tmp_path, port))  # ... and comes back on the same address
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 0, err[-3000:]
    assert not group_alive(driver.pid)
    assert_exactly_once("shared", {"network": 4, "fixed_points": 4})
    # The artifacts went through the server into its artifacts destination.
    stored = [f for _, _, files in os.walk(tmp_path / "artifacts") for f in files]
    assert stored.count("weights.npz") == 4 and stored.count("fixed_points.npz") == 4
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()
