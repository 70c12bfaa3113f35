"""Claims from synthetic study arrays with planted answers: every verdict comes out as planted."""
import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from rnn_dyn.claims import CLAIMS, TASKS, compute_claims, sensitivity

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
    if task == "sine":
        offset = {c: 0.02 * i for i, c in enumerate(CELLS)}
        arrays["mean_signed_error"] = np.array([offset[c] for c in cell]) + rng.normal(0, 0.005, n)
        arrays["mean_rel_error"] = np.abs(arrays["mean_signed_error"]) + 0.05
        arrays["mean_rel_error"][0] = np.nan  # a network without an oscillatory mode
    if task == "context":
        arrays["mean_n_near_one"] = np.where(cell == "vanilla", 1.0, 2.0) + rng.uniform(0, 0.5, n)
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
    assert {"flipflop.scaffold", "sine.frequency_by_architecture", "context.trained_vs_untrained",
            "context.dsa_universal"} <= set(planted)
    json.loads(json.dumps(list(planted.values()), allow_nan=False))
    for c in planted.values():
        assert set(c) >= {"id", "task", "claim", "measure", "value", "ci", "p_value", "n", "verdict", "reason"}
        assert c["verdict"] in ("reproduced", "contradicted", "inconclusive")
        assert c["ci"] is None or (len(c["ci"]) == 2 and c["ci"][0] <= c["ci"][1])
        assert c["verdict"] == "reproduced" or c["reason"]


def test_planted_structure_is_reproduced(planted):
    reproduced = ["flipflop.scaffold", "sine.frequency_matches", "sine.frequency_by_architecture",
                  "context.gated_more_eigenvalues_near_one", "context.topology_by_activation",
                  "context.trained_vs_untrained"]
    reproduced += [f"{t}.{c}" for t in TASKS for c in ("geometry_by_architecture", "geometry_by_activation",
                                                        "cka_agrees_with_svcca", "dsa_universal")]
    reproduced += ["flipflop.topology_universal", "sine.topology_universal"]  # topology unstructured there
    for cid in reproduced:
        assert planted[cid]["verdict"] == "reproduced", planted[cid]
    geo = planted["flipflop.geometry_by_architecture"]
    assert geo["value"] > 0.2 and geo["p_value"] <= 0.01 and geo["n"] == 16  # 4 cells x 4 tanh networks
    assert geo["ci"][0] > 0
    assert planted["flipflop.geometry_by_activation"]["n"] == 8  # vanilla networks
    assert planted["flipflop.scaffold"]["value"] == pytest.approx(0.75)  # 1 network in 4 differs
    assert planted["sine.frequency_matches"]["n"] == 31  # the NaN network is left out
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
    assert claims["flipflop.geometry_by_architecture"]["value"] < 0
    assert "gru/tanh" in claims["flipflop.scaffold"]["reason"]


def test_no_structure_is_inconclusive():
    # each test has a 5% false-positive rate (test_statistics checks that); these draws hit none of them
    topology = {task: make_arrays(task, structure=False, seed=11 + i) for i, task in enumerate(TASKS)}
    claims = _by_id(compute_claims(topology, **FAST))
    for task in TASKS:
        for cid in ("geometry_by_architecture", "geometry_by_activation", "dsa_universal"):
            c = claims[f"{task}.{cid}"]
            assert c["verdict"] == "inconclusive" and c["reason"], c
    assert claims["context.trained_vs_untrained"]["reason"] == "the trained-versus-untrained stage was not run"


def test_tasks_not_run_and_missing_arrays_are_inconclusive_with_reason():
    ff = make_arrays("flipflop")
    del ff["distances_dsa"], ff["distances_cka"]
    claims = compute_claims({"flipflop": ff}, **FAST)
    by = _by_id(claims)
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
    assert c["n"] == 30 and c["details"]["n_nan_dropped"] == 2 and c["verdict"] == "reproduced"


def test_sensitivity_rows_per_available_method():
    topology = {"flipflop": make_arrays("flipflop"), "sine": make_arrays("sine", structure=False, seed=1)}
    rows = sensitivity(topology, n_permutations=199)
    methods = [(r["task"], r["id"].split(".")[1], r["method"]) for r in rows]
    assert methods == [(t, f"geometry_by_{by}", m) for t in ("flipflop", "sine")
                       for by in ("architecture", "activation") for m in ("svcca", "svcca_k10", "cka")]
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
