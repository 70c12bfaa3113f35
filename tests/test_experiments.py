import mlflow
import numpy as np
import pytest

from rnn_dyn import experiments
from rnn_dyn.config import SweepConfig

TINY = dict(tasks=["flipflop", "context"], cells=["gru"], activations=["tanh"], n_units=[4], seeds=2,
            defaults={"task": {"n_time": 10, "n_val": 8}, "train": {"iterations": 3, "batch_size": 4}},
            experiment="tiny")


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
    assert lrs["context", "lstm", "relu"] == ("adam", 1e-3)  # by_config wins over by_task
    assert lrs["flipflop", "lstm", "tanh"] == ("sgd", 0.05) and lrs["sine", "gru", "tanh"] == ("adam", 3e-3)
    paper = SweepConfig.from_dict(experiments.load_spec("paper"))
    assert sum(j.train.n_networks for j in paper.expand()) == 3 * 96 * 30
    assert all(j.train.iterations == 20000 and j.train.batch_size == 64 for j in paper.expand())


def test_sweep_runs_and_resumes(mlflow_store, tmp_path):
    spec = tmp_path / "tiny.yaml"
    import yaml

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
    first = experiments.compare(experiment="tiny", metric="cka")
    assert set(first) == {"flipflop", "context"}
    run = mlflow.get_run(first["flipflop"])
    assert run.data.params["metric"] == "cka" and run.data.params["n_networks"] == "3"
    assert {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)} == {"distances.npz", "mds.png"}
    path = mlflow.MlflowClient().download_artifacts(run.info.run_id, "distances.npz", str(tmp_path))
    with np.load(path) as f:
        assert f["distances"].shape == (3, 3) and np.allclose(f["distances"], f["distances"].T)
        assert sorted(f["run_ids"]) == sorted(r.info.run_id for r in runs if r.data.params["task"] == "flipflop")
    assert experiments.compare(experiment="tiny", metric="cka") == first
    # Fixed points of each network, logged under the network's run; a rerun skips them.
    out = experiments.analyze(experiment="tiny", tasks="flipflop", n_starts=16, max_iters=200)
    assert out == {"analysed": 3, "skipped": 0}
    stages = mlflow.search_runs(experiment_names=["tiny"], filter_string="tags.`rnn_dyn.kind` = 'fixed_points'",
                                output_format="list")
    assert len(stages) == 3 and {"n_fixed", "n_slow", "n_stable", "n_saddles"} <= set(stages[0].data.metrics)
    assert stages[0].data.tags["mlflow.parentRunId"] == stages[0].data.params["network_run"]
    files = {a.path for a in mlflow.MlflowClient().list_artifacts(stages[0].info.run_id)}
    assert files == {"fixed_points.npz", "fixed_points.png"}
    assert experiments.analyze(experiment="tiny", tasks="flipflop", n_starts=16, max_iters=200) == {
        "analysed": 0, "skipped": 3}
    with pytest.raises(ValueError, match="experiment 'nope' not found"):
        experiments.compare(experiment="nope")


@pytest.mark.parametrize("override, message", [
    (dict(cells=["rnn"]), r"cells must be one of \['gru', 'lstm', 'ugrnn', 'vanilla'\]; got 'rnn'"),
    (dict(colour="red"), r"unknown key\(s\) \['colour'\] in spec"),
    (dict(defaults={"train": {"lr": -1}}), "lr must be > 0; got -1"),
    (dict(by_task={"maze": {}}), r"by_task key must be one of \['context', 'flipflop', 'sine'\]"),
    (dict(by_config={"lstm/sigmoid": {}}), r"activation in by_config key 'lstm/sigmoid' must be one of"),
    (dict(by_config={"gru/tanh": {"train": {"seed": 3}}}), r"train.seed is set by the sweep"),
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
    import yaml

    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump({**TINY, "tasks": ["flipflop"], "experiment": "tiny-dask"}))
    out = experiments.sweep(spec=str(spec), executor="dask", workers=2)
    assert out["networks"] == 2
    runs = mlflow.search_runs(experiment_names=["tiny-dask"], output_format="list",
                              filter_string="tags.`rnn_dyn.kind` = 'network' and attributes.status = 'FINISHED'")
    assert len(runs) == 2


def test_dry_run_plans_and_starts_nothing(mlflow_store, tmp_path):
    import yaml

    spec = tmp_path / "tiny.yaml"
    spec.write_text(yaml.safe_dump({**TINY, "tasks": ["flipflop"]}))
    plan = experiments.sweep(spec=str(spec), dry_run=True)
    assert plan["jobs"] == 1 and plan["networks"] == 2
    assert 0 < plan["wall_seconds"] < plan["core_seconds"] < 60
    assert not (tmp_path / "mlflow.db").exists()
