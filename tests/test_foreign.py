"""Networks trained elsewhere on the command line: ``analyze --weights`` and ``compare --with``.

A 6-unit GRU in PyTorch's layout (numpy arrays, no PyTorch) with a readout is
analysed alone and on the flip-flop, then placed among a tiny trained
experiment's 4-unit networks; each logs one MLflow run that a rerun finds.
"""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest

from rnn_dyn import experiments
from rnn_dyn.fixed_points import FixedPoints

N, M, K = 6, 3, 3
ROOT = Path(__file__).resolve().parent.parent


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def torch_gru(path):
    """A PyTorch-layout ``nn.GRU`` + ``nn.Linear`` state dict with several attractors, saved as .npz.

    Weights on a 1/64 grid, so that float32 holds them (and the folded biases) exactly."""
    rng = np.random.default_rng(8)
    grid = lambda a: np.round(a * 64) / 64  # noqa: E731
    sd = {"rnn.weight_ih_l0": grid(0.2 * rng.standard_normal((3 * N, M))),
          "rnn.weight_hh_l0": grid(0.2 * rng.standard_normal((3 * N, N))),
          "rnn.bias_ih_l0": grid(0.2 * rng.standard_normal(3 * N)),
          "rnn.bias_hh_l0": grid(0.2 * rng.standard_normal(3 * N)),
          "fc.weight": grid(rng.standard_normal((K, N))), "fc.bias": np.zeros(K)}
    sd["rnn.weight_hh_l0"][2 * N:] += 3.0 * np.eye(N)  # W_hn: self-excitation, several attractors
    np.savez(path, **sd)
    return {k[4:]: v for k, v in sd.items() if k.startswith("rnn.")}


def torch_step(sd, x, h):
    """PyTorch's documented GRU update in float64."""
    gi = x @ sd["weight_ih_l0"].T + sd["bias_ih_l0"]
    gh = h @ sd["weight_hh_l0"].T + sd["bias_hh_l0"]
    r, z = sigmoid(gi[:, :N] + gh[:, :N]), sigmoid(gi[:, N:2 * N] + gh[:, N:2 * N])
    return (1 - z) * np.tanh(gi[:, 2 * N:] + r * gh[:, 2 * N:]) + z * h


def runs(experiment, kind):
    return mlflow.search_runs(experiment_names=[experiment], output_format="list",
                              filter_string=f"tags.`rnn_dyn.kind` = '{kind}'")


def artifacts(run_id):
    return {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}


def download(run_id, name, tmp_path):
    return mlflow.MlflowClient().download_artifacts(run_id, name, str(tmp_path))


def test_analyze_weights_alone_and_on_a_task(mlflow_store, tmp_path, capsys):
    sd = torch_gru(tmp_path / "net.npz")
    experiments.main(["analyze", "--weights", str(tmp_path / "net.npz"), "--format", "torch", "--cell", "gru",
                      "--n_starts", "128"])
    (run,) = runs("foreign", "foreign")
    p, m = run.data.params, run.data.metrics
    assert run.info.status == "FINISHED"
    assert p["sha1"] == hashlib.sha1((tmp_path / "net.npz").read_bytes()).hexdigest()
    assert (p["format"], p["cell"], p["task"], p["net_cell"], p["n_units"]) == (
        "torch", "gru", "None", "gru(reset_after)", str(N))
    assert artifacts(run.info.run_id) == {"fixed_points.npz", "fixed_points.png"}
    fps = FixedPoints.load(download(run.info.run_id, "fixed_points.npz", tmp_path))
    assert m["n_fixed"] == len(fps.fixed) >= 2 and m["n_stable"] >= 2
    # every reported fixed point is one of PyTorch's own equations, in float64
    h = fps.fixed.hstar
    assert np.max(np.abs(torch_step(sd, np.zeros((len(h), M)), h) - h)) < 1e-9
    # a rerun finds the run
    again = experiments.analyze(weights=str(tmp_path / "net.npz"), format="torch", cell="gru", n_starts=128)
    assert again["skipped"] and again["run"] == run.info.run_id and again["n_fixed"] == m["n_fixed"]
    assert len(runs("foreign", "foreign")) == 1

    # on the flip-flop: the task's conditions and the topology as well
    out = experiments.analyze(weights=str(tmp_path / "net.npz"), cell="gru", task="flipflop", n_starts=64,
                              experiment="mine")
    assert not out["skipped"] and out["task"] == "flipflop"
    files = artifacts(out["run"])
    assert files == {"fixed_points.npz", "fixed_points.png", "flipflop.png", "topology.json", "graphs.npz"}
    with open(download(out["run"], "topology.json", tmp_path)) as f:
        topo = json.load(f)
    assert topo["n_fixed"] == out["topology_n_fixed"] == out["n_fixed"] >= 2  # one condition: x* = 0
    assert topo["n_stable"] == out["n_stable"]
    with np.load(download(out["run"], "graphs.npz", tmp_path)) as g:
        assert g["matrix_0"].shape == (topo["n_fixed"],) * 2
        np.testing.assert_allclose(g["matrix_0"].sum(axis=1)[g["is_stable_0"]], 1.0)
    # weights that do not fit what was asked: one line, no run
    for argv, message in [
            (["--cell", "rnn"], "error: state_dict['weight_hh_l0'] must have shape [N, N] = (6, 6) for an nn.RNN "
                                "(cell='rnn') of N=6 units; got (18, 6)."),
            (["--task", "sine"], "error: the network has n_inputs=3 but task 'sine' has 1 inputs.")]:
        status, err = cli(["analyze", "--weights", str(tmp_path / "net.npz"), *argv], capsys)
        assert status == 2 and err == message
    assert len(runs("foreign", "foreign")) == 1 and len(runs("mine", "foreign")) == 1


def train_tiny(experiment):
    common = dict(task="flipflop", activation="tanh", n_units=4, iterations=3, batch_size=4, n_time=10, n_val=8,
                  experiment=experiment, jit_compile=False)
    experiments.train(cell="gru", n_networks=3, **common)
    experiments.train(cell="vanilla", n_networks=2, **common)


def test_compare_with_places_the_network(mlflow_store, tmp_path, capsys):
    from rnn_dyn import load_foreign_network, tracking
    from rnn_dyn.population import probe_representation
    from rnn_dyn.similarity import svcca
    from rnn_dyn.tasks import get_task

    torch_gru(tmp_path / "net.npz")
    train_tiny("tiny")
    nets = runs("tiny", "network")
    experiments.main(["compare", "--experiment", "tiny", "--with", str(tmp_path / "net.npz"), "--format", "torch",
                      "--cell", "gru"])
    (run,) = runs("tiny", "placement")
    p, m = run.data.params, run.data.metrics
    assert (p["task"], p["metric"], p["n_networks"], p["n_units"]) == ("flipflop", "svcca", "5", str(N))
    assert artifacts(run.info.run_id) == {"distances.npz", "placement.png", "nearest.json"}
    with np.load(download(run.info.run_id, "distances.npz", tmp_path)) as f:
        D, ids, xy, cells = f["distances"], f["run_ids"].tolist(), f["embedding"], f["cell"].tolist()
    assert D.shape == (6, 6) and np.allclose(D, D.T) and ids[-1] == "foreign" and xy.shape == (6, 2)
    assert sorted(ids[:-1]) == sorted(r.info.run_id for r in nets) and cells[-1] == "gru(reset_after)"
    # the new row is SVCCA between the 6-unit network and each 4-unit one, on the experiment's probe set
    population, cfg = tracking.load_network(ids[0])
    task = get_task(cfg.task)
    mine = probe_representation(load_foreign_network(tmp_path / "net.npz", cell="gru"), task)[0]
    theirs = probe_representation(population, task)[0]
    assert mine.shape == (task.cfg.n_probe * 10, N) and theirs.shape[1] == 4
    assert D[-1, 0] == pytest.approx(1 - svcca(mine, theirs), abs=1e-6)
    with open(download(run.info.run_id, "nearest.json", tmp_path)) as f:
        nearest = json.load(f)["nearest"]
    assert [n["distance"] for n in nearest] == sorted(D[-1, :-1])
    assert m["nearest_distance"] == pytest.approx(nearest[0]["distance"]) and 0 <= m["nearest_percentile"] <= 100
    # a rerun finds the run; another metric is another run
    again = experiments.compare(experiment="tiny", **{"with": str(tmp_path / "net.npz"), "cell": "gru"})
    assert again["skipped"] and again["run"] == run.info.run_id and again["nearest"] == nearest
    cka = experiments.compare(experiment="tiny", metric="cka", **{"with": str(tmp_path / "net.npz")})
    assert not cka["skipped"] and len(runs("tiny", "placement")) == 2
    # DSA: the population's delays and rank chosen by fit, as the study chooses them
    dsa = experiments.compare(experiment="tiny", metric="dsa", **{"with": str(tmp_path / "net.npz")})
    assert not dsa["skipped"] and np.isfinite(dsa["nearest_distance"]) and len(dsa["nearest"]) == 5
    # clear errors
    with pytest.raises(ValueError, match=r"experiment 'nope' not found; existing experiments: .*'tiny'"):
        experiments.compare(experiment="nope", **{"with": str(tmp_path / "net.npz")})
    with pytest.raises(ValueError, match="has 0 finished context network"):
        experiments.compare(experiment="tiny", **{"with": str(tmp_path / "net.npz"), "task": "context"})
    with pytest.raises(ValueError, match=r"--format need\(s\) --with"):
        experiments.compare(experiment="tiny", format="torch")
    status, err = cli(["compare", "--experiment", "tiny", "--with", str(tmp_path / "net.npz"), "--task", "sine"],
                      capsys)
    assert status == 2 and err == "error: experiment 'tiny' has 0 finished sine network(s); a placement needs 3 or more."


def cli(argv, capsys):
    """Run the command line in this process: ``(exit status, what it wrote to stderr)``."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        experiments.main(argv)
    return exit_.value.code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("argv, message", [
    (["analyze", "--weights", "missing.npz"], "error: weights file 'missing.npz' not found."),
    (["analyze", "--weights", "net.npz", "--format", "onnx"],
     "error: format must be one of ['keras', 'torch']; got 'onnx'."),
    (["analyze", "--weights", "net.npz", "--n_starts", "0"], "error: n_starts must be > 0; got 0."),
    (["analyze", "--task", "sine"], "error: --task, --cell and --activation are for --weights"),
    (["compare", "--with"], "error: with must be the path of an .npz file of weights; got True."),
    (["compare", "--with", "notes.txt"], "error: with file 'notes.txt' is not an .npz of named arrays"),
    (["compare", "--with", "net.npz", "--metric", "l2"], "error: metric must be one of"),
    (["compare", "--with", "net.npz", "--colour", "red"], "error: unknown flag(s) --colour; allowed flags:"),
])
def test_bad_input_is_one_line_before_any_tracking(mlflow_store, tmp_path, capsys, argv, message):
    torch_gru(tmp_path / "net.npz")
    (tmp_path / "notes.txt").write_text("not weights\n")
    status, err = cli(argv, capsys)
    assert status == 2 and len(err.splitlines()) == 1 and err.startswith(message), err
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("argv, message", [
    (["analyze", "--weights", "missing.npz", "--format", "torch", "--cell", "gru"],
     "error: weights file 'missing.npz' not found."),
    (["compare", "--experiment", "quick", "--with", "notes.txt", "--format", "torch"],
     "error: with file 'notes.txt' is not an .npz of named arrays"),
])
def test_bad_input_as_a_user_sees_it(tmp_path, argv, message):
    (tmp_path / "notes.txt").write_text("not weights\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-m", "rnn_dyn.experiments", *argv], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == "", out.stderr
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and out.stderr.startswith(message), out.stderr
