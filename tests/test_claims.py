"""Claims from synthetic study arrays with planted answers: every verdict comes out as planted."""
import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from rnn_dyn.claims import BEYOND, CLAIMS, RECORD_KEYS, TASKS, beyond_the_paper, compute_claims, sensitivity

CELLS = ("vanilla", "ugrnn", "gru", "lstm")
FAST = dict(n_permutations=199, n_bootstrap=200)


def _distances(rng, labels, strength, dim=6):
    """Euclidean distances of points whose centre depends on ``labels`` (``strength`` 0: no structure)."""
    names = sorted(set(labels))
    centers = rng.normal(size=(len(names), dim)) * strength
    X = centers[[names.index(l) for l in labels]] + rng.normal(size=(len(labels), dim))
    return cdist(X, X)


def _anti(labels, rng):
    """Networks of a label farther from each other than from the others: silhouette < 0."""
    same = np.equal.outer(labels, labels)
    D = np.where(same, 1.0, 0.5) + rng.uniform(0, 0.05, same.shape)
    D = (D + D.T) / 2
    np.fill_diagonal(D, 0)
    return D


def make_arrays(task, seeds=4, structure=True, seed=0):
    """One task's ``topology.npz`` arrays for 4 cells x 2 activations x ``seeds`` networks."""
    rng = np.random.default_rng(seed)
    config = np.array([f"{c}/{a}" for c in CELLS for a in ("tanh", "relu") for _ in range(seeds)])
    cell = np.array([c.split("/")[0] for c in config])
    act = np.array([c.split("/")[1] for c in config])
    n = len(config)
    svcca = _distances(rng, config, 3.0 if structure else 0.0)
    arrays = {"config": config, "run_ids": np.array([f"r{i}" for i in range(n)]),
              "distances_svcca": svcca, "distances_cka": svcca + _distances(rng, config, 0.0) * 0.1,
              "distances_svcca_k10": _distances(rng, config, 3.0), "distances_dsa": _distances(rng, config, 0.0),
              "distances_topology": _distances(rng, act if task == "context" else config, 3.0 * (task == "context"))}
    if task == "flipflop":
        counts = np.tile(np.array([8, 12, 6, 1], float), (n, 1))
        counts[::5] = [8, 10, 6, 1]  # a minority of networks differ
        arrays.update({k: counts[:, i] for i, k in enumerate(("n_stable", "n_saddle_1", "n_saddle_2", "n_saddle_3"))})
        arrays["n_fixed"] = counts.sum(axis=1)
        arrays.update({f"{k}_all": counts[:, i] + 2 * (k == "n_stable") for i, k in
                       enumerate(("n_stable", "n_saddle_1", "n_saddle_2", "n_saddle_3"))})
        arrays["transition_structure"] = np.ones(n)
        arrays["transition_stable_self"], arrays["transition_saddles_two"] = np.ones(n), np.ones(n)
    if task == "sine":
        offset = {c: 0.02 * i for i, c in enumerate(CELLS)}
        arrays["mean_signed_error"] = np.array([offset[c] for c in cell]) + rng.normal(0, 0.005, n)
        arrays["mean_rel_error"] = np.abs(arrays["mean_signed_error"]) + 0.05
        arrays["mean_rel_error"][0] = np.nan  # a network without an oscillatory mode
        arrays["mean_signed_error"] += np.where(act == "relu", 0.05, 0.0)  # and by activation
        arrays["sine_scaffold"] = np.ones(n)
        arrays["n_cues_multiple"] = np.zeros(n)
    if task == "context":
        arrays["mean_n_near_one"] = np.where(cell == "vanilla", 1.0, 2.0) + rng.uniform(0, 0.5, n)
        arrays["mean_n_modes"] = np.where(cell == "vanilla", 1.0, 3.0) + rng.uniform(0, 0.5, n)
        arrays["mean_integral"] = 1.0 + rng.normal(0, 0.02, n)
    return arrays


def make_untrained(m=5, paper=True, seed=0):
    """``untrained.npz``: each trained relu network next to its own untrained copy, tanh's clusters apart
    (paper), or no relu network near its own and tanh's clusters the closer pair (reversed); one matrix
    per measure and context."""
    rng = np.random.default_rng(seed)
    centres = {"trained relu": 0.0, "untrained relu": 0.0 if paper else 5.0, "trained tanh": 3.0 if paper else 1.5,
               "untrained tanh": 6.0 if paper else 2.0}
    act = np.array(["relu"] * m + ["tanh"] * m)
    groups = np.array([f"{s} {a}" for s in ("trained", "untrained") for a in act])
    out = {"groups": groups, "network": np.tile(np.arange(2 * m), 2), "inits": np.array(["orthogonal"]),
           "metrics": np.array(["svcca", "svcca_k10", "cca"])}
    for metric in out["metrics"]:
        for c in (0, 1):
            x = np.array([centres[g] for g in groups]) + np.tile(rng.normal(0, 0.4, 2 * m), 2)
            x[2 * m:] += rng.normal(0, 0.1, 2 * m)
            out[f"distances_{metric}_orthogonal_context{c}"] = np.abs(x[:, None] - x[None, :])
    return out


def _by_id(claims):
    return {c["id"]: c for c in claims}


@pytest.fixture(scope="module")
def planted():
    topology = {task: make_arrays(task, seed=i) for i, task in enumerate(TASKS)}
    return _by_id(compute_claims(topology, make_untrained(), **FAST))


def test_every_claim_of_every_task_is_there_and_json(planted):
    expected = [f"{task}.{cid}" for task in TASKS for cid, tasks, *_ in CLAIMS if task in tasks]
    assert list(planted) == expected
    assert {"flipflop.scaffold", "flipflop.transition_structure", "sine.scaffold", "sine.frequency_by_architecture",
            "sine.frequency_by_activation", "context.integration_modes", "context.trained_vs_untrained"} <= set(planted)
    assert {f"{t}.topology_by_activation" for t in TASKS} <= set(planted)
    assert not any(cid.endswith("dsa_universal") for cid in planted)  # beyond the paper: its own list (#19)
    json.loads(json.dumps(list(planted.values()), allow_nan=False))
    for c in planted.values():
        assert tuple(c) == RECORD_KEYS
        assert c["verdict"] in ("reproduced", "contradicted", "inconclusive")
        assert c["ci"] is None or (len(c["ci"]) == 2 and c["ci"][0] <= c["ci"][1])
        assert c["verdict"] == "reproduced" or c["reason"]


def test_planted_structure_is_reproduced(planted):
    reproduced = ["flipflop.scaffold", "flipflop.transition_structure", "sine.scaffold", "sine.frequency_matches",
                  "sine.frequency_by_architecture", "sine.frequency_by_activation",
                  "context.gated_more_eigenvalues_near_one", "context.integration_modes",
                  "context.topology_by_activation", "context.trained_vs_untrained"]
    reproduced += ["flipflop.topology_by_activation", "sine.topology_by_activation"]  # no separation, as the paper
    reproduced += [f"{t}.{c}" for t in TASKS for c in ("geometry_by_architecture", "geometry_by_activation",
                                                        "cka_agrees_with_svcca")]
    reproduced += ["flipflop.topology_universal", "sine.topology_universal"]  # topology unstructured there
    for cid in reproduced:
        assert planted[cid]["verdict"] == "reproduced", planted[cid]
    geo = planted["flipflop.geometry_by_architecture"]
    assert geo["value"] > 0.2 and geo["p_value"] <= 0.01 and geo["n"] == 16  # 4 cells x 4 tanh networks
    assert geo["ci"][0] > 0
    assert planted["flipflop.geometry_by_activation"]["n"] == 8  # vanilla networks
    assert planted["flipflop.scaffold"]["value"] == pytest.approx(0.75)  # 1 network in 4 differs
    assert planted["sine.frequency_matches"]["n"] == 31  # the NaN network is left out
    assert geo["robust"] is True and geo["details"]["svcca_k10"]["verdict"] == "reproduced"
    assert planted["flipflop.scaffold"]["robust"] is None
    assert planted["flipflop.scaffold"]["details"]["with_approximate_points"]["gru/tanh"]["share_paper"] == 0
    assert planted["flipflop.transition_structure"]["value"] == 1 and planted["sine.scaffold"]["value"] == 1
    modes = planted["context.integration_modes"]
    assert modes["value"] > 1.5 and modes["details"]["median_integral"] == pytest.approx(1, abs=0.05)
    universal = planted["flipflop.topology_universal"]["details"]
    assert abs(universal["silhouette_topology"]) < 0.2 and universal["p_topology"] > 0.01
    assert planted["flipflop.cka_agrees_with_svcca"]["value"] == 1
    assert planted["flipflop.cka_agrees_with_svcca"]["details"]["mantel_r"] > 0.5
    untrained = planted["context.trained_vs_untrained"]
    assert untrained["value"] == 1 and untrained["details"]["robust"] and untrained["n"] == 10


def test_geometry_value_is_the_tanh_svcca_silhouette():
    from rnn_dyn import separation

    arrays = make_arrays("sine", seed=3)
    tanh = np.char.endswith(arrays["config"].astype(str), "/tanh")
    want = separation(arrays["distances_svcca"][np.ix_(tanh, tanh)],
                      [c.split("/")[0] for c in arrays["config"][tanh]])
    got = _by_id(compute_claims({"sine": arrays}, **FAST))["sine.geometry_by_architecture"]["value"]
    assert got == pytest.approx(want)


def test_structure_in_the_opposite_direction_is_contradicted():
    rng = np.random.default_rng(0)
    topology = {task: make_arrays(task, seed=i) for i, task in enumerate(TASKS)}
    ff, ctx, sine = topology["flipflop"], topology["context"], topology["sine"]
    cell = np.array([c.split("/")[0] for c in ff["config"]])
    ff["distances_svcca"] = _anti(ff["config"], rng)  # same configuration: far apart
    ff["n_saddle_1"] = np.where(cell == "gru", 10.0, ff["n_saddle_1"])  # gru's scaffold differs
    ff["distances_topology"] = _distances(rng, ff["config"], 6.0)  # topology separates more than SVCCA
    ctx["mean_n_near_one"] = np.where(cell == "vanilla", 3.0, 1.0) + rng.uniform(0, 0.5, len(cell))
    sine["mean_rel_error"] = sine["mean_rel_error"] + 0.5
    claims = _by_id(compute_claims(topology, make_untrained(paper=False), **FAST))
    for cid in ("flipflop.geometry_by_architecture", "flipflop.geometry_by_activation", "flipflop.scaffold",
                "flipflop.topology_universal", "context.gated_more_eigenvalues_near_one",
                "context.trained_vs_untrained", "sine.frequency_matches"):
        assert claims[cid]["verdict"] == "contradicted", claims[cid]
    geo = claims["flipflop.geometry_by_architecture"]
    assert geo["value"] < 0 and geo["p_value"] == geo["details"]["p_less"] < 0.05  # the tail that decided it
    assert claims["context.gated_more_eigenvalues_near_one"]["p_value"] < 0.05
    assert "gru/tanh" in claims["flipflop.scaffold"]["reason"]


def test_no_structure_is_inconclusive():
    # each test has a 5% false-positive rate (test_statistics checks that); these draws hit none of them
    topology = {task: make_arrays(task, structure=False, seed=11 + i) for i, task in enumerate(TASKS)}
    claims = _by_id(compute_claims(topology, **FAST) + beyond_the_paper(topology, **FAST))
    for task in TASKS:
        for cid in ("geometry_by_architecture", "geometry_by_activation", "dsa_universal"):
            c = claims[f"{task}.{cid}"]
            assert c["verdict"] == "inconclusive" and c["reason"], c
    assert claims["context.trained_vs_untrained"]["reason"] == "the trained-versus-untrained stage was not run"


def test_tasks_not_run_and_missing_arrays_are_inconclusive_with_reason():
    ff = make_arrays("flipflop")
    del ff["distances_dsa"], ff["distances_cka"]
    claims = compute_claims({"flipflop": ff}, **FAST)
    by = _by_id(claims + beyond_the_paper({"flipflop": ff}, **FAST))
    assert {c["task"] for c in claims} == set(TASKS)  # every task, run or not
    for c in claims:
        if c["task"] != "flipflop":
            assert c["verdict"] == "inconclusive" and "not run" in c["reason"] and c["n"] == 0
    assert by["flipflop.dsa_universal"]["reason"] == "no 'distances_dsa' array"
    assert by["flipflop.cka_agrees_with_svcca"]["verdict"] == "inconclusive"
    assert by["flipflop.geometry_by_architecture"]["verdict"] == "reproduced"


def test_too_few_networks_and_nan_rows():
    small = make_arrays("flipflop", seeds=1)  # one network per configuration
    c = _by_id(compute_claims({"flipflop": small}, **FAST))["flipflop.geometry_by_architecture"]
    assert c["verdict"] == "inconclusive" and "too few networks" in c["reason"] and c["value"] is None
    arrays = make_arrays("context", seed=2)
    D = arrays["distances_topology"]
    D[[0, 9], :] = D[:, [0, 9]] = np.nan  # two networks whose topology cannot be compared
    np.fill_diagonal(D, 0)
    c = _by_id(compute_claims({"context": arrays}, **FAST))["context.topology_by_activation"]
    # the paper's activation panels are vanilla networks (#19; was: all 32 networks, n 30): network 0 is one
    assert c["n"] == 7 and c["details"]["n_nan_dropped"] == 1 and c["verdict"] == "reproduced"


def test_sensitivity_rows_per_available_method():
    topology = {"flipflop": make_arrays("flipflop"), "sine": make_arrays("sine", structure=False, seed=1)}
    rows = sensitivity(topology, n_permutations=199)
    methods = [(r["task"], r["id"].split(".")[1], r["method"]) for r in rows]
    assert methods == [(t, cid, m) for t in ("flipflop", "sine")
                       for cid, m in [(f"geometry_by_{by}", m) for by in ("architecture", "activation")
                                      for m in ("svcca", "svcca_k10", "cka")] +
                       [("topology_universal", "topology"), ("topology_by_activation", "topology")]]
    by = {(r["task"], r["id"], r["method"]): r for r in rows}
    assert by[("sine", "sine.geometry_by_architecture", "svcca")]["verdict"] == "inconclusive"
    assert by[("sine", "sine.geometry_by_architecture", "svcca_k10")]["verdict"] == "reproduced"
    json.dumps(rows, allow_nan=False)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="tasks must be among"):
        compute_claims({"mnist": {}})
    with pytest.raises(ValueError, match="n_permutations"):
        compute_claims({}, n_permutations=0)
    with pytest.raises(ValueError, match="distances_svcca must have shape"):
        compute_claims({"sine": {**make_arrays("sine"), "distances_svcca": np.zeros((3, 3))}}, **FAST)


def test_sine_topology_reports_the_mean_signed_error():
    """The input of sine.frequency_by_architecture: mean over u of (f − ω)/ω, NaN-aware."""
    from test_dynamics import block, make_fps, rotation

    from rnn_dyn.config import TaskConfig
    from rnn_dyn.tasks import get_task
    from rnn_dyn.universality import sine_topology

    task = get_task(TaskConfig(name="sine", n_grid=5))
    omega = task.omega(task.grid)
    errors = np.array([0.1, -0.3, 0.05, 0.2])  # conditions 0-3 oscillate at ω(1 + e); condition 4 does not
    jac = [block(rotation(1.01, w * (1 + e)), 0.5) for w, e in zip(omega, errors)] + [np.diag([1.2, 0.9, 0.5])]
    hstar = np.arange(15, dtype=float).reshape(5, 3)
    out = sine_topology(None, make_fps(np.stack(jac), np.ones((5, 3, 1)), hstar=hstar), task)
    assert out["mean_signed_error"] == pytest.approx(errors.mean())
    assert out["mean_rel_error"] == pytest.approx(np.abs(errors).mean())


# -- the statistics #19 added: planted structure found, unstructured input not ------------------
def test_cka_agreement_is_of_verdicts_not_of_a_correlation():
    rng = np.random.default_rng(5)
    arrays = make_arrays("flipflop", seed=5)
    # CKA correlated with SVCCA (Mantel r > 0) but with no cluster structure of its own
    arrays["distances_cka"] = arrays["distances_svcca"] * 0.05 + _distances(rng, arrays["config"], 0.0)
    c = _by_id(compute_claims({"flipflop": arrays}, **FAST))["flipflop.cka_agrees_with_svcca"]
    assert c["details"]["mantel_r"] > 0 and c["verdict"] != "reproduced" and c["value"] < 1
    assert "SVCCA reproduced, CKA inconclusive" in c["reason"]
    arrays["distances_cka"] = _anti(arrays["config"], rng)  # CKA: seeds farther apart than configurations
    c = _by_id(compute_claims({"flipflop": arrays}, **FAST))["flipflop.cka_agrees_with_svcca"]
    assert c["verdict"] == "contradicted" and c["value"] == 0


def test_robust_is_false_when_svcca_k10_disagrees():
    rng = np.random.default_rng(6)
    arrays = make_arrays("sine", seed=6)
    arrays["distances_svcca_k10"] = _distances(rng, arrays["config"], 0.0)
    c = _by_id(compute_claims({"sine": arrays}, **FAST))["sine.geometry_by_architecture"]
    assert c["verdict"] == "reproduced" and c["robust"] is False
    assert c["details"]["svcca_k10"]["verdict"] == "inconclusive"
    del arrays["distances_svcca_k10"]
    assert _by_id(compute_claims({"sine": arrays}, **FAST))["sine.geometry_by_architecture"]["robust"] is None


def test_topology_by_activation_expects_no_separation_on_flipflop_and_sine():
    rng = np.random.default_rng(7)
    ff = make_arrays("flipflop", seed=7)
    act = np.array([c.split("/")[1] for c in ff["config"]])
    assert _by_id(compute_claims({"flipflop": ff}, **FAST))["flipflop.topology_by_activation"]["verdict"] == \
        "reproduced"
    ff["distances_topology"] = _distances(rng, act, 4.0)  # planted: topology separates the activations
    c = _by_id(compute_claims({"flipflop": ff}, **FAST))["flipflop.topology_by_activation"]
    assert c["verdict"] == "contradicted" and c["p_value"] < 0.05 and c["n"] == 8


def test_a_constant_topology_matrix_is_degenerate():
    arrays = make_arrays("sine", seed=8)
    n = len(arrays["config"])
    arrays["distances_topology"] = 1.0 - np.eye(n)  # every sine graph the same distance apart
    claims = _by_id(compute_claims({"sine": arrays}, **FAST))
    for cid in ("sine.topology_universal", "sine.topology_by_activation"):
        assert claims[cid]["verdict"] == "inconclusive" and "degenerate" in claims[cid]["reason"]


def test_shares_of_networks_with_the_papers_structure():
    rng = np.random.default_rng(9)
    ff, sine = make_arrays("flipflop", seed=9), make_arrays("sine", seed=10)
    n = len(ff["config"])
    ff["transition_structure"] = (rng.uniform(size=n) < 0.5).astype(float)  # half the networks
    ff["transition_structure"][0] = np.nan  # a network without saddles: left out
    sine["sine_scaffold"] = np.r_[np.ones(n - 4), np.zeros(4)]  # 28 of 32: 0.875 < 0.9
    sine["n_cues_multiple"] = np.r_[np.zeros(n - 4), [1, 2, 3, 4]]
    claims = _by_id(compute_claims({"flipflop": ff, "sine": sine}, **FAST))
    c = claims["flipflop.transition_structure"]
    assert c["verdict"] == "contradicted" and c["n"] == n - 1 and c["ci"][1] < 0.9
    c = claims["sine.scaffold"]
    assert c["value"] == pytest.approx(0.875) and c["verdict"] == "inconclusive"
    assert c["details"]["networks_with_n_cues_multiple"] == 4


def test_integration_modes_and_frequency_by_activation_without_structure_are_inconclusive():
    rng = np.random.default_rng(12)
    ctx, sine = make_arrays("context", seed=12), make_arrays("sine", seed=13)
    n = len(ctx["config"])
    ctx["mean_n_modes"] = rng.uniform(1, 3, n)
    sine["mean_signed_error"] = rng.normal(0, 0.05, n)
    claims = _by_id(compute_claims({"context": ctx, "sine": sine}, **FAST))
    for cid in ("context.integration_modes", "sine.frequency_by_activation"):
        assert claims[cid]["verdict"] == "inconclusive" and claims[cid]["p_value"] >= 0.05, claims[cid]


def test_dsa_is_beyond_the_paper_with_its_fit():
    arrays = make_arrays("context", seed=14)
    arrays.update(dsa_n_delays=np.array(1), dsa_rank=np.array(10), dsa_fit_r2_one_step=np.array(0.97),
                  dsa_fit_r2_multi_step=np.array(0.4))
    (rec,) = [r for r in beyond_the_paper({"context": arrays}, **FAST) if r["task"] == "context"]
    assert rec["id"] == "context.dsa_universal" and tuple(rec) == RECORD_KEYS
    assert rec["details"]["dsa_fit_r2_multi_step"] == pytest.approx(0.4) and rec["details"]["dsa_rank"] == 10
    assert [cid for cid, *_ in BEYOND] == ["dsa_universal"]


def test_sine_scaffold_of_one_network_by_hand():
    """One point per cue with one mildly unstable complex pair: the scaffold; a second point at a cue,
    or a pair that grows fast, is not."""
    from test_dynamics import block, make_fps, rotation

    from rnn_dyn.universality import sine_scaffold

    omega = np.array([0.1, 0.2, 0.3])
    mild = [block(rotation(1.01, w), 0.5) for w in omega]  # grows 1% per step: 0.6 e-folds per cycle at ω 0.1
    out = sine_scaffold(make_fps(np.stack(mild), np.ones((3, 3, 1)), hstar=np.eye(3)), 3)
    assert out == {"sine_scaffold": 1.0, "n_cues_scaffold": 3, "n_cues_multiple": 0, "n_cues_none": 0}
    fast = mild[:2] + [block(rotation(1.5, omega[2]), 0.5)]  # 1.5x per step: 8.5 e-folds per cycle
    out = sine_scaffold(make_fps(np.stack(fast), np.ones((3, 3, 1)), hstar=np.eye(3)), 3)
    assert out["sine_scaffold"] == 0 and out["n_cues_scaffold"] == 2
    twice = make_fps(np.stack(mild + [mild[0]]), np.ones((4, 3, 1)), hstar=np.eye(4, 3), condition=[0, 1, 2, 0])
    out = sine_scaffold(twice, 4)
    assert out["n_cues_multiple"] == 1 and out["n_cues_none"] == 1 and out["sine_scaffold"] == 0
