import json

import mlflow
import numpy as np
import pytest

from rnn_dyn import experiments, tracking
from rnn_dyn.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from rnn_dyn.training import train_population

FLAGS = dict(task="flipflop", cell="gru", activation="tanh", n_units=8, n_networks=2, iterations=20,
             batch_size=8, n_time=20, n_val=16, log_every=5, experiment="smoke")


def test_train_command_logs_populations_and_networks(mlflow_store):
    out = experiments.train(**FLAGS, l2=[0.0, 1e-3])
    assert len(out["network_runs"]) == 2
    runs = mlflow.search_runs(experiment_names=["smoke"], output_format="list")
    kinds = sorted(r.data.tags["rnn_dyn.kind"] for r in runs)
    assert kinds == ["network", "network", "population"]
    net = mlflow.get_run(out["network_runs"][1])
    assert net.data.tags["mlflow.parentRunId"] == out["population_run"]
    assert set(tracking.NETWORK_PARAMS) <= set(net.data.params)
    assert net.data.params["l2"] == "0.001" and net.data.params["seed"] == "1"
    assert {"loss", "val_loss", "diverged", "diverged_step"} <= set(net.data.metrics)
    history = mlflow.MlflowClient().get_metric_history(net.info.run_id, "loss")
    assert [m.step for m in history] == [0, 5, 10, 15, 19]
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(net.info.run_id)}
    assert artifacts == {"weights.npz", "config.json"}
    parent = {a.path for a in mlflow.MlflowClient().list_artifacts(out["population_run"])}
    assert parent == {"config.json", "losses.png"}


def test_load_network_rebuilds_the_exact_network(mlflow_store):
    out = experiments.train(**FLAGS)
    population, cfg = tracking.load_network(out["network_runs"][1])
    assert cfg.train.n_networks == 1 and cfg.train.seed == 1 and cfg.model.n_units == 8
    # Same config, same seed, same machine: retraining gives the same network.
    again = train_population(cfg.task, cfg.model, cfg.train).population
    x = np.random.default_rng(0).standard_normal((1, 2, 20, 3)).astype(np.float32)
    np.testing.assert_allclose(population.run(x)[1], again.run(x)[1], atol=1e-6)
    assert out["val_loss"][1] == pytest.approx(
        float(mlflow.get_run(out["network_runs"][1]).data.metrics["val_loss"]), rel=1e-5)


def test_network_key_is_deterministic():
    cfg = RunConfig(TaskConfig("sine"), ModelConfig("lstm"), TrainConfig(n_networks=2))
    a, b = cfg.member_config(0), cfg.member_config(1)
    assert tracking.network_key(a) == tracking.network_key(RunConfig.from_dict(json.loads(json.dumps(a.to_dict()))))
    assert tracking.network_key(a) != tracking.network_key(b)


@pytest.mark.parametrize("flags, message", [
    (dict(task="foo"), r"task must be one of \['context', 'flipflop', 'sine'\]; got 'foo'"),
    (dict(cell="rnn"), r"cell must be one of \['gru', 'lstm', 'ugrnn', 'vanilla'\]; got 'rnn'"),
    (dict(activation="gelu"), r"activation must be one of \['relu', 'tanh'\]; got 'gelu'"),
    (dict(n_units=0), "n_units must be > 0; got 0"),
    (dict(n_networks=-1), "n_networks must be > 0; got -1"),
    (dict(l2=-0.1), r"l2 must be in \[0.0, inf\]; got -0.1"),
    (dict(l2=[0.1, 0.2, 0.3]), r"l2 must have one value per network \(n_networks=2\); got 3 values"),
    (dict(unknown_flag=1), r"unknown flag\(s\) --unknown_flag; allowed flags: \[.*'--cell'"),
])
def test_bad_input_fails_before_any_run(mlflow_store, tmp_path, flags, message):
    with pytest.raises((ValueError, TypeError), match=message):
        experiments.train(**{**FLAGS, **flags})
    assert not (tmp_path / "mlflow.db").exists()
