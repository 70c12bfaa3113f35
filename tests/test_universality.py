import json

import mlflow
import numpy as np
import pytest
import yaml

from rnn_dyn import experiments, universality

SPEC = dict(tasks=["flipflop", "sine", "context"], cells=["vanilla", "gru"], activations=["tanh", "relu"],
            n_units=[6], seeds=1, experiment="topo", analyses=[],
            defaults={"task": {"n_time": 20, "n_val": 8, "n_probe": 8},
                      "train": {"iterations": 20, "batch_size": 8, "jit_compile": False, "optimizer": "adam",
                                "lr": 1e-2}})


def test_group_distances_and_modal_structure():
    D = np.array([[0, 1, 4, 4], [1, 0, 4, 4], [4, 4, 0, 2], [4, 4, 2, 0]], float)
    names, means = universality.group_distances(D, ["a", "a", "b", "b"])
    assert names == ["a", "b"] and np.allclose(means, [[1, 4], [4, 2]])
    rows = [{"n_stable": 8, "n_saddle_1": 12, "n_saddle_2": 6, "n_saddle_3": 1}] * 2 + \
           [{"n_stable": 7, "n_saddle_1": 9, "n_saddle_2": 3, "n_saddle_3": 0}]
    modal = universality.modal_structure(rows, ["gru", "gru", "gru"])
    assert modal == {"gru": ((8, 12, 6, 1), 2, 3)}


def test_separation_table_skips_nan_rows():
    D = np.array([[0, .1, 1, 1], [.1, 0, 1, 1], [1, 1, 0, .1], [1, 1, .1, 0]])
    labels = {"cell": ["a", "a", "b", "b"]}
    table = universality.separation_table({"m": D}, labels)
    assert table["m"]["n"] == 4 and table["m"]["cell"] > 0.8
    E = np.vstack([np.hstack([D, np.ones((4, 1))]), np.r_[np.ones(4), 0]])
    E[4] = E[:, 4] = np.nan
    table = universality.separation_table({"m": E}, {"cell": labels["cell"] + ["b"]})
    assert table["m"]["n"] == 4 and table["m"]["cell"] == pytest.approx(0.9, abs=0.1)


def test_topology_command_logs_and_skips(mlflow_store, tmp_path, capsys):
    spec = tmp_path / "topo.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    experiments.sweep(spec=str(spec), workers=2)
    experiments.topology(experiment="topo", n_starts=32, n_perturb=10)
    runs = mlflow.search_runs(experiment_names=["topo"], output_format="list",
                              filter_string="tags.`rnn_dyn.kind` = 'topology'")
    assert sorted(r.data.params["task"] for r in runs) == ["context", "flipflop", "sine"]
    for r in runs:
        files = {a.path for a in mlflow.MlflowClient().list_artifacts(r.info.run_id)}
        assert {"topology.npz", "topology.json", "graphs.npz", "universality.png",
                f"{r.data.params['task']}.png"} <= files
        assert (r.data.params["task"] != "flipflop") == ("spectra.png" in files)
        summary = json.load(open(mlflow.artifacts.download_artifacts(run_id=r.info.run_id,
                                                                     artifact_path="topology.json")))
        # flip-flop and sine also hold the other topology mode's matrix (#19: a sensitivity row)
        other = {"topology_matching"} if r.data.params["task"] != "context" else set()
        assert set(summary["separation"]) == {"topology", "svcca", "cka", "svcca_k10", "svcca_k20", "cca",
                                              "dsa"} | other
        assert set(summary["by_config"]) == {"vanilla/tanh", "vanilla/relu", "gru/tanh", "gru/relu"}
    untrained = mlflow.search_runs(experiment_names=["topo"], output_format="list",
                                   filter_string="tags.`rnn_dyn.kind` = 'untrained'")
    assert len(untrained) == 1
    groups = json.load(open(mlflow.artifacts.download_artifacts(run_id=untrained[0].info.run_id,
                                                                artifact_path="groups.json")))
    assert groups["groups"] == ["trained relu", "trained tanh", "untrained relu", "untrained tanh"]
    assert np.all(np.isfinite(groups["mean_distance"])) or groups["n_networks"] == 2
    err = capsys.readouterr().err
    assert "flipflop: silhouette by cell / by activation: topology" in err and "trained vs untrained" in err
    experiments.topology(experiment="topo", n_starts=32, n_perturb=10)  # everything is done: nothing new
    assert len(mlflow.search_runs(experiment_names=["topo"], output_format="list",
                                  filter_string="tags.`rnn_dyn.kind` = 'topology'")) == 3


def test_topology_rejects_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        experiments.topology(experiment="topo", mode="exact")


def test_chain_distances_skip_chains_too_short_to_be_lines():
    from rnn_dyn.chains import compute_chain_graph

    line = np.linspace(0, 1, 12)[:, None] * np.ones((1, 3))
    rng = np.random.default_rng(0)
    ordered = compute_chain_graph(line, np.arange(12))  # readout follows the line
    scrambled = compute_chain_graph(line, rng.permutation(12))  # readout unrelated to the line
    short = compute_chain_graph(line[:3], np.arange(3))
    D = universality.topology_distances("sine", [ordered, ordered, scrambled, short])
    assert D[0, 1] == 0 and D[0, 2] > 0 and np.isnan(D[3]).all() and np.isnan(D[:, 3]).all()
    ctx = universality.topology_distances("context", [[ordered, ordered], [ordered, scrambled]])
    assert ctx[0, 0] == 0 and ctx[0, 1] == D[0, 2]


def test_sine_graphs_in_paper_mode_drop_non_modal_counts_and_compare_labels():
    from rnn_dyn.chains import compute_chain_graph

    line = np.linspace(0, 1, 6)[:, None] * np.ones((1, 3))
    labels = np.tile([0, 1], (6, 1))  # each point: no unstable real direction, one unstable complex pair
    a = compute_chain_graph(line, np.arange(6), labels=labels)
    b = compute_chain_graph(line, np.arange(6), labels=labels)
    other = labels.copy()
    other[2] = [1, 1]  # one point with an extra unstable real direction
    c = compute_chain_graph(line, np.arange(6), labels=other)
    extra = compute_chain_graph(np.vstack([line, line[:1] + 0.01]), np.r_[np.arange(6), 0.5],
                                labels=np.vstack([labels, [[0, 1]]]))  # a cue with two points: off the mode
    D = universality.topology_distances("sine", [a, b, c, extra], mode="paper")
    assert D[0, 1] == 0 and D[0, 2] == pytest.approx(1.0)  # the label differs by one
    assert np.isnan(D[3]).all() and np.isnan(D[:, 3]).all()
    pooled = universality.topology_distances("sine", [a, b, c, extra], mode="matching")
    assert np.isfinite(pooled).all() and pooled[0, 2] == 0  # pooled chains ignore the labels


def test_unstable_directions_count_real_and_complex_separately():
    lam = np.array([[1.2, 1.05 + 0.2j, 1.05 - 0.2j, 0.5],
                    [0.9 + 0.3j, 0.9 - 0.3j, 0.2, 0.1]])
    np.testing.assert_array_equal(universality.unstable_directions(lam), [[1, 1], [0, 0]])
