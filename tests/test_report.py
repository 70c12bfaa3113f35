import json
import time
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from rnn_dyn import paper_figures as pf  # noqa: E402
from rnn_dyn import report, report_html  # noqa: E402

# Every task, a vanilla and a gated cell, both activations: the smallest study with all figures' inputs.
SPEC = dict(tasks=["flipflop", "sine", "context"], cells=["vanilla", "gru"], activations=["tanh", "relu"],
            n_units=[6], seeds=1, experiment="report",
            defaults={"task": {"n_time": 10, "n_val": 4, "n_probe": 4},
                      "train": {"iterations": 20, "batch_size": 8, "jit_compile": False, "optimizer": "adam",
                                "lr": 1e-2}},
            by_task={"sine": {"task": {"n_grid": 7}}})

CLAIMS = [
    {"id": "flipflop.geometry_by_architecture", "task": "flipflop", "claim": "geometry differs by architecture",
     "measure": "silhouette by cell, tanh networks", "value": 0.12, "ci": None, "p_value": 0.03, "n": 2,
     "verdict": "reproduced", "reason": None},
    {"id": "sine.frequency_matches", "task": "sine", "claim": "frequency <tracks> ω(u)", "measure": "median",
     "value": None, "ci": [0.1, 0.3], "p_value": None, "n": 4, "verdict": "inconclusive",
     "reason": "too few networks"},
    {"id": "context.trained_vs_untrained", "task": "context", "claim": "untrained relu closer", "measure": "CCA",
     "value": -0.2, "ci": [-0.3, -0.1], "p_value": 0.9, "n": 2, "verdict": "contradicted", "reason": None},
]
SENSITIVITY = [{"id": "flipflop.geometry_by_architecture", "task": "flipflop", "method": m, "value": v,
                "p_value": p, "n": 2, "verdict": verdict}
               for m, v, p, verdict in (("svcca", 0.05, 0.01, "reproduced"), ("svcca_k10", 0.3, 0.2, "inconclusive"),
                                        ("cka", -0.1, 0.01, "contradicted"))]


class _Page(HTMLParser):
    """Collects tags' attributes and the text of a page."""

    def __init__(self):
        super().__init__()
        self.attrs, self.text, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]

    def handle_data(self, data):
        self.text.append(data)


def _parse(page):
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def _check_self_contained(parser):
    assert "script" not in parser.tags and "link" not in parser.tags
    for tag, key, value in parser.attrs:
        if key in ("src", "href"):
            assert value.startswith("data:"), (tag, key, value[:60])


def test_report_of_a_tiny_study(mlflow_store, tmp_path):
    from rnn_dyn import experiments, tracking

    spec = tmp_path / "report.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    t0 = time.time()
    experiments.sweep(spec=str(spec), workers=1)
    t1 = time.time()
    experiments.topology(experiment="report", n_starts=16, n_perturb=5)
    print(f"sweep {t1 - t0:.1f} s, topology {time.time() - t1:.1f} s")
    exp_id = tracking.experiment_id("report")
    runs = mlflow.search_runs([exp_id], output_format="list", filter_string="tags.`rnn_dyn.kind` = 'topology'")
    topology_runs = {r.data.params["task"]: r.info.run_id for r in runs}
    assert set(topology_runs) == {"flipflop", "sine", "context"}
    (untrained,) = mlflow.search_runs([exp_id], output_format="list", filter_string="tags.`rnn_dyn.kind` = 'untrained'")

    start = time.time()
    rid = report.make_report(exp_id, topology_runs, untrained.info.run_id, CLAIMS, SENSITIVITY,
                             note="quick run: verdicts mean little at this scale")
    seconds = time.time() - start
    print(f"make_report took {seconds:.1f} s")
    run = mlflow.get_run(rid)
    assert run.data.tags["rnn_dyn.kind"] == "report" and run.info.status == "FINISHED"
    assert run.data.metrics["n_claims"] == 3 and run.data.metrics["n_contradicted"] == 1
    files = {a.path for a in mlflow.MlflowClient().list_artifacts(rid)}
    figures = {"fig1_trajectories", "fig1_svcca_matrix", "fig1_transition_graphs", "flipflop_topology_mds",
               "fig2_trajectories", "fig2_oscillatory_modes", "fig2_frequency", "fig3_trajectories", "fig3_spectra",
               "fig3_integration", "fig4_trained_vs_untrained", "appC_losses_flipflop", "appC_losses_sine",
               "appC_losses_context", "appE_svcca_vs_cka"}
    assert {f"{f}.png" for f in figures} | {"report.html", "claims.json"} <= files
    assert run.data.metrics["n_figures"] == len([f for f in files if f.endswith(".png")])

    page = open(tracking.artifact(rid, "report.html"), encoding="utf-8").read()
    parser = _parse(page)
    _check_self_contained(parser)
    text = "".join(parser.text)
    assert all(c["id"] in text for c in CLAIMS) and "http" not in page
    assert "frequency <tracks> ω(u)" in text and "<tracks>" not in page  # escaped, shown as written
    assert "quick run: verdicts mean little" in text
    assert page.count("<img src=\"data:image/png;base64,") + page.count("src='data:image/png;base64,") == \
        run.data.metrics["n_figures"]
    # fig1_mds needs three tanh networks: only two here, so a one-line note replaces it.
    assert "fig1_mds skipped" in text and "fig3_mds skipped" in text and "SVCCA k=10" in text and "vanilla/relu" in text

    saved = json.load(open(tracking.artifact(rid, "claims.json")))
    assert {k: saved[k] for k in ("claims", "sensitivity")} == {"claims": CLAIMS, "sensitivity": SENSITIVITY}
    spread = saved["spread"]  # every task's configurations, with their seeds' spread
    assert {(r["task"], r["config"]) for r in spread} == {
        (t, c) for t in ("flipflop", "sine", "context") for c in
        tracking.artifact_arrays(topology_runs[t], "topology.npz")["config"].tolist()}
    assert all("ratio_cka" in r and (r["within"] is None) == (r["n"] == 1) for r in spread)  # one seed: no spread
    assert all(r["within"] is None or r["within"] >= 0 for r in spread)
    assert "Do the seeds of one configuration agree?" in text


def test_a_study_without_tasks_skips_their_figures(mlflow_store):
    from rnn_dyn import tracking

    exp_id = tracking.get_experiment_id("empty")
    rid = report.make_report(exp_id, {}, None, [], [])
    page = open(tracking.artifact(rid, "report.html"), encoding="utf-8").read()
    parser = _parse(page)
    _check_self_contained(parser)
    text = "".join(parser.text)
    for task in ("flipflop", "sine", "context"):
        assert f"task {task} was not run" in text
    assert "no trained-versus-untrained run" in text and "data:image" not in page


def test_tables_format_and_colour_verdicts():
    table = report_html.claims_table(CLAIMS)
    assert table.count("class='v-reproduced'") == 1 and table.count("class='v-contradicted'") == 1
    assert "[0.1, 0.3]" in table and "&lt;tracks&gt;" in table and "—" in table
    sens = report_html.sensitivity_table(SENSITIVITY + [{**SENSITIVITY[0], "method": "svcca_k20", "value": 0.4}])
    header = sens.split("</thead>")[0]
    assert header.index("SVCCA 95%") < header.index("SVCCA k=10") < header.index("SVCCA k=20") < header.index("CKA")
    spread = report_html.spread_table([
        {"task": "sine", "config": "vanilla/tanh", "n": 6, "within": 0.2, "between": 0.1, "ratio": 2.0},
        {"task": "sine", "config": "gru/tanh", "n": 6, "within": 0.05, "between": 0.1, "ratio": 0.5}])
    assert spread.count("class='v-contradicted'") == 1 and "vanilla/tanh" in spread and "CKA" not in spread
    fmt = report_html.fmt
    assert fmt(float("nan")) == "—" and fmt(0.0012345) == "0.00123" and fmt(3) == "3" and fmt([0.1, None]) == "[0.1, —]"


def test_headline_marks_non_robust_verdicts_and_shows_beyond_the_paper_apart():
    shaky = {**CLAIMS[0], "robust": False, "details": {"svcca_k10": {"value": 0.33, "p_value": 0.001,
                                                                    "verdict": "reproduced"}}}
    steady = {**CLAIMS[0], "id": "sine.geometry_by_architecture", "robust": True, "details": {}}
    topo = {**CLAIMS[1], "id": "sine.topology_universal", "value": -0.1, "robust": None,
            "details": {"silhouette_topology": 0.031, "p_topology": 0.27}}
    dsa = {**CLAIMS[1], "id": "sine.dsa_universal", "value": 0.7, "verdict": "contradicted",
           "details": {"dsa_fit_r2_one_step": 0.98, "dsa_fit_r2_multi_step": 0.41}}
    table = report_html.claims_table([shaky, steady, topo])
    assert table.count("†") == 1 and "SVCCA k=10 0.33 (p 0.001, reproduced)" in table
    assert "topology's own silhouette 0.031 (p 0.27)" in table
    page = report_html.render_html("t", "", [shaky, steady, topo], [], [], [], {}, beyond=[dsa])
    text = "".join(_parse(page).text)
    assert "Beyond the paper" in text and "sine.dsa_universal" in text and "multi step 0.41" in text
    assert "0 contradicted, 1 inconclusive of 3 claims" in text  # DSA is not counted among the paper's claims
    assert "Beyond the paper" not in report_html.render_html("t", "", [steady], [], [], [], {})


def test_configurations_sort_in_the_papers_order():
    labels = ["lstm/relu", "gru/tanh", "vanilla/relu", "ugrnn/tanh", "vanilla/tanh"]
    assert sorted(labels, key=pf.config_key) == ["vanilla/tanh", "vanilla/relu", "ugrnn/tanh", "gru/tanh", "lstm/relu"]
    assert report._examples(["gru/relu", "vanilla/relu", "gru/tanh", "vanilla/relu"]) == [1, 2]


def test_figures_draw_from_arrays():
    rng = np.random.default_rng(0)
    labels = np.array(["gru/tanh", "vanilla/tanh", "vanilla/relu", "gru/tanh", "vanilla/relu", "vanilla/tanh"])
    X = rng.standard_normal((6, 3))
    D = np.linalg.norm(X[:, None] - X[None], axis=-1)
    figs = [pf.plot_distance_matrix(D, labels, "D"),
            pf.plot_embeddings([("a", X[:, :2], labels), ("b", X[:, 1:], labels)]),
            pf.plot_measures({"m": rng.random(6), "with NaN": np.r_[np.nan, rng.random(5)]}, labels),
            pf.plot_loss_histograms({"gru/tanh": rng.random(5) * 0.05, "vanilla/tanh": np.r_[np.nan, 0.5]}),
            pf.plot_metric_scatter({"flipflop": (D[np.triu_indices(6, 1)], D[np.triu_indices(6, 1)] ** 2)}),
            pf.plot_oscillatory_modes([np.exp(1j * np.linspace(0.06, 0.3, 5)), np.full(5, np.nan + 0j)],
                                      np.linspace(0.06, 0.3, 5), ["a", "b"])]
    states = rng.standard_normal((5, 8, 4)).cumsum(axis=1)
    figs.append(pf.plot_trajectories(states, np.linspace(0, 1, 5), states[:, -1], np.linspace(0, 1, 5)))
    figs.append(pf.plot_trajectories(states, [0, 1, 0, 1, 1], value_name="context"))
    ax = figs[0].axes[0]
    assert ax.get_images()[0].get_array().shape == (6, 6)
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["vanilla/tanh", "vanilla/relu", "gru/tanh"]  # blocks in the paper's order
    assert "Spearman ρ 1.00" in figs[4].axes[0].get_title()
    assert figs[3].axes[0].get_title() == "vanilla/tanh: 1 networks, 1 diverged"
    with pytest.raises(ValueError, match="states must be"):
        pf.plot_trajectories(states, [0, 1])
    for f in figs:
        plt.close(f)


def test_geometry_maps_are_recomputed_on_the_papers_subsets():
    rng = np.random.default_rng(1)
    config = np.array(["vanilla/tanh", "gru/tanh", "gru/tanh", "vanilla/relu", "vanilla/relu", "vanilla/tanh"])
    X = rng.standard_normal((6, 4))
    arrays = {"config": config, "distances_svcca": np.linalg.norm(X[:, None] - X[None], axis=-1)}
    panels = report._subset_maps(arrays)
    assert [(t.split(": ")[1], xy.shape, list(lab)) for t, xy, lab in panels] == [
        ("tanh networks, by cell (4)", (4, 2), ["vanilla", "gru", "gru", "vanilla"]),
        ("vanilla networks, by activation (4)", (4, 2), ["tanh", "relu", "relu", "tanh"])]
    arrays["distances_svcca"][0, 1] = arrays["distances_svcca"][1, 0] = np.nan  # not comparable: no map
    assert [t for t, _, _ in report._subset_maps(arrays)] == ["SVCCA: vanilla networks, by activation (4)"]
