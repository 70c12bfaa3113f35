import mlflow
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


@pytest.mark.parametrize("override, message", [
    (dict(cells=["rnn"]), r"cells must be one of \['gru', 'lstm', 'ugrnn', 'vanilla'\]; got 'rnn'"),
    (dict(colour="red"), r"unknown key\(s\) \['colour'\] in spec"),
    (dict(defaults={"train": {"lr": -1}}), "lr must be > 0; got -1"),
    (dict(by_task={"maze": {}}), r"by_task key must be one of \['context', 'flipflop', 'sine'\]"),
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
