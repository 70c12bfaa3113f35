"""Trained against untrained networks (paper Fig. 4): known answers for the share and the cluster gap,
the claim from ``untrained.npz``-shaped arrays, and the job on real networks."""
import dataclasses

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from rnn_dyn import jobs
from rnn_dyn.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from rnn_dyn.untrained import (cluster_gap, compare_untrained, matrix_key, own_init_share, rows,
                               trained_vs_untrained)

FAST = dict(n_permutations=199, n_bootstrap=200)
# Centres of the four groups: the paper's picture (relu networks next to their own initialisation,
# tanh ones far from theirs), its reverse (no relu network near its own, tanh's clusters the closer)
PAPER = {"trained relu": 0.0, "untrained relu": 0.0, "trained tanh": 3.0, "untrained tanh": 6.0}
REVERSED = {"trained relu": 0.0, "untrained relu": 5.0, "trained tanh": 1.5, "untrained tanh": 2.0}


def planted(n=8, centres=PAPER, own=0.1, spread=0.4, seed=0, dim=3):
    """``(D, groups, network)``: ``n`` relu and ``n`` tanh networks, trained rows first.

    Each trained network sits at its group's centre plus noise ``spread``; its untrained copy at the
    untrained group's centre plus the same offset (so next to it when the centres agree) plus ``own``.
    """
    rng = np.random.default_rng(seed)
    act = np.array(["relu"] * n + ["tanh"] * n)
    offset = rng.normal(0, spread, (2 * n, dim))
    rows = []
    for state in ("trained", "untrained"):
        centre = np.array([centres[f"{state} {a}"] for a in act])[:, None] * np.eye(dim)[0]
        rows.append(centre + offset + (rng.normal(0, own, (2 * n, dim)) if state == "untrained" else 0))
    X = np.vstack(rows)
    groups = np.array([f"{s} {a}" for s in ("trained", "untrained") for a in act])
    return cdist(X, X), groups, np.tile(np.arange(2 * n), 2)


def random_distances(n=8, seed=0):
    """Distances with no structure: uniform, symmetric, zero diagonal."""
    rng = np.random.default_rng(seed)
    D = rng.uniform(0.2, 1.0, (4 * n, 4 * n))
    D = (D + D.T) / 2
    np.fill_diagonal(D, 0)
    _, groups, network = planted(n)
    return D, groups, network


def study_arrays(n=6, centres=(PAPER, PAPER), seed=0, inits=("orthogonal", "identity"),
                 metrics=("svcca", "svcca_k10", "cca")):
    """``untrained.npz``-shaped arrays: one planted matrix per metric, initialisation and context
    (``centres`` per context)."""
    out = {"metrics": np.array(metrics), "inits": np.array(inits)}
    k = 0
    for metric in metrics:
        for init in inits:
            for c, centre in enumerate(centres):
                D, out["groups"], out["network"] = planted(n, centre, seed=seed + k)
                out[matrix_key(metric, init, c)] = D
                k += 1
    return out


def test_share_and_gap_by_hand():
    # relu network 0: own 1, tanh 2 and 6 (mean 4, nearest 2) -> closer by both rules;
    # relu network 1: own 3, tanh 2 and 6 -> closer than the mean only
    groups = ["trained relu", "trained relu", "trained tanh", "trained tanh",
              "untrained relu", "untrained relu", "untrained tanh", "untrained tanh"]
    network = [0, 1, 2, 3, 0, 1, 2, 3]
    D = np.full((8, 8), 10.0)
    D[0, 4], D[1, 5] = 1.0, 3.0  # own
    D[0, 2], D[0, 3], D[1, 2], D[1, 3] = 2.0, 6.0, 2.0, 6.0
    D[0, 5], D[1, 4] = 5.0, 7.0  # trained relu to the other relu network's initialisation
    D[2, 6], D[2, 7], D[3, 6], D[3, 7] = 1.0, 2.0, 3.0, 4.0  # trained tanh to untrained tanh
    D = np.minimum(D, D.T)
    np.fill_diagonal(D, 0)
    assert own_init_share(D, groups, network) == 1.0
    assert own_init_share(D, groups, network, rule="nearest") == 0.5
    assert cluster_gap(D, groups, network) == pytest.approx(2.5 - 4.0)  # (1+2+3+4)/4 - (1+5+7+3)/4
    assert own_init_share(D, groups, network, idx=[1, 1, 2, 3]) == 1.0  # resampled: network 1 twice


def test_planted_paper_picture_is_reproduced():
    res = compare_untrained(*planted(), **FAST)
    assert res["verdict"] == "reproduced" and res["reason"] is None, res
    assert res["share"] == 1.0 and res["share_ci"][0] > 0.5 and res["share_nearest"] == 1.0
    assert res["gap"] > 0 and res["gap_ci"][0] > 0 and res["p_value"] < 0.05
    assert res["relu_clusters"] < res["tanh_clusters"] and res["n_relu"] == res["n_tanh"] == 8


def test_planted_reverse_is_contradicted():
    res = compare_untrained(*planted(centres=REVERSED), **FAST)
    assert res["verdict"] == "contradicted", res
    assert res["share"] == 0 and tuple(res["share_ci"]) == (0, 0) and res["gap"] < 0 and res["p_less"] < 0.05


def test_random_distances_are_not_reproduced():
    # each draw has the gap test's 5% false-positive rate; these seeds hit none of them
    shares = []
    for seed in range(5):
        res = compare_untrained(*random_distances(seed=seed), **FAST)
        assert res["verdict"] == "inconclusive" and res["reason"], res
        shares.append(res["share"])
    assert 0.3 < np.mean(shares) < 0.7  # a coin flip per network


def test_only_one_part_is_not_enough():
    # relu networks next to their initialisation, but tanh ones just as close to theirs: the share
    # holds, Fig. 4b's comparison does not
    same = {"trained relu": 0.0, "untrained relu": 0.0, "trained tanh": 3.0, "untrained tanh": 3.0}
    res = compare_untrained(*planted(centres=same), **FAST)
    assert res["share_ci"][0] > 0 and res["verdict"] == "inconclusive"
    assert "not significantly the closer pair" in res["reason"]


def test_too_few_networks_and_nan_rows():
    res = compare_untrained(*planted(n=2), **FAST)
    assert res["verdict"] == "inconclusive" and "too few networks" in res["reason"] and "share" not in res
    D, groups, network = planted(n=5)
    D[3, :] = D[:, 3] = np.nan  # a trained relu network without distances: it and its copy leave
    D[3, 3] = 0
    res = compare_untrained(D, groups, network, **FAST)
    assert res["n_relu"] == 4 and res["n_tanh"] == 5 and res["n_nan_dropped"] == 1


def test_bad_layout_is_an_error():
    D, groups, network = planted(n=3)
    bad = groups.copy()
    bad[0] = "trained gru"
    with pytest.raises(ValueError, match="groups must be one of"):
        own_init_share(D, bad, network)
    bad = groups.copy()
    bad[6] = "trained relu"  # network 0 twice trained
    with pytest.raises(ValueError, match="network 0 must have one trained and one untrained row"):
        cluster_gap(D, bad, network)
    with pytest.raises(ValueError, match="distances must be"):
        own_init_share(D[:-1, :-1], groups, network)
    with pytest.raises(ValueError, match="rule must be one of"):
        own_init_share(D, groups, network, rule="median")


def test_claim_from_study_arrays():
    claim = trained_vs_untrained(study_arrays(), **FAST)
    assert claim["verdict"] == "reproduced" and claim["value"] == 1.0 and claim["n"] == 12
    d = claim["details"]
    assert d["robust"] is True and d["init"] == "orthogonal" and d["metric"] == "svcca"
    assert set(d["by_metric"]) == {"svcca", "svcca_k10", "cca"} and set(d["by_init"]) == {"orthogonal", "identity"}
    assert len(d["rows"]) == 3 * 2 * 2 and {r["context"] for r in d["rows"]} == {0, 1}
    # one context reversed: the contexts disagree, the claim is inconclusive and shows that context
    claim = trained_vs_untrained(study_arrays(centres=(PAPER, REVERSED)), **FAST)
    assert claim["verdict"] == "inconclusive" and "contexts disagree" in claim["reason"]
    assert claim["details"]["context_shown"] == 1 and claim["value"] == 0
    # both reversed: contradicted, with the lower tail's p
    claim = trained_vs_untrained(study_arrays(centres=(REVERSED, REVERSED)), **FAST)
    assert claim["verdict"] == "contradicted" and claim["p_value"] < 0.05


def test_claim_robustness_and_missing_input():
    arrays = study_arrays()
    for c in (0, 1):  # k = 10 sees no structure
        arrays[matrix_key("svcca_k10", "orthogonal", c)] = random_distances(6, seed=c)[0]
    claim = trained_vs_untrained(arrays, **FAST)
    assert claim["verdict"] == "reproduced" and claim["details"]["robust"] is False
    assert trained_vs_untrained(None)["reason"] == "the trained-versus-untrained stage was not run"
    old = {"distances": arrays["distances_svcca_orthogonal_context0"], "groups": arrays["groups"]}
    claim = trained_vs_untrained(old)
    assert claim["verdict"] == "inconclusive" and "older run" in claim["reason"]
    assert len(rows(study_arrays(metrics=("cca",), inits=("normal",)), **FAST)) == 2


# -- the job, on real networks -------------------------------------------------------------

TASK = TaskConfig("context", n_time=15, n_probe_levels=5)


def _networks(iterations, n=3):
    from rnn_dyn.training import train_population

    out = []
    for activation in ("relu", "tanh"):
        model = ModelConfig("vanilla", activation, 8)
        train = TrainConfig(n_networks=n, iterations=iterations, batch_size=8, jit_compile=False, seed=5)
        weights = train_population(TASK, model, train).population.get_weights_dict()
        cfg = RunConfig(TASK, model, train)
        out += [({k: v[i] for k, v in weights.items()}, cfg.member_config(i).to_dict()) for i in range(n)]
    return out


def test_identity_init_keeps_the_seeds_other_weights():
    from rnn_dyn.population import Population

    model = ModelConfig("vanilla", "relu", 6)
    ours = Population(model, 4, 1, [3]).get_weights_dict()
    identity = Population(dataclasses.replace(model, recurrent_init="identity"), 4, 1, [3]).get_weights_dict()
    W = [k for k in ours if k.startswith("W") and k != "W_out"]
    assert W and all(np.array_equal(identity[k][0], np.eye(6)) for k in W)
    assert all(np.array_equal(ours[k], identity[k]) for k in ours if k not in W)


def test_job_untrained_networks_are_their_own_initialisation():
    """Networks trained for 0 steps *are* their own initialisation: distance 0 to it, share 1."""
    nets = _networks(iterations=0)
    out = jobs.untrained_job({"networks": nets, "metrics": ["svcca", "cca"], "inits": ["identity"]})
    a = out["arrays"]
    assert list(a["inits"]) == ["orthogonal", "identity"] and list(a["metrics"]) == ["svcca", "cca"]
    assert list(a["groups"]) == ["trained relu"] * 3 + ["trained tanh"] * 3 + ["untrained relu"] * 3 + \
        ["untrained tanh"] * 3
    assert list(a["network"]) == list(range(6)) * 2 and int(a["n_contexts"]) == 2
    np.testing.assert_allclose(a["levels"], np.linspace(-1, 1, 5))
    for c in (0, 1):
        for metric in ("svcca", "cca"):
            own, identity = a[matrix_key(metric, "orthogonal", c)], a[matrix_key(metric, "identity", c)]
            assert own.shape == identity.shape == (12, 12)
            np.testing.assert_allclose(np.diag(own[:6, 6:]), 0, atol=1e-6)
            assert np.all(np.diag(identity[:6, 6:]) > 1e-3)  # another recurrent matrix, other states
        assert a[f"n_components_orthogonal_context{c}"].shape == (12,)
    np.testing.assert_array_equal(a["distances"], a[matrix_key("svcca", "orthogonal", 0)])
    assert own_init_share(a["distances"], a["groups"], a["network"]) == 1.0
    assert set(out["figures"]) == {"trained_vs_untrained_context0", "trained_vs_untrained_context1"}
    assert out["summary"]["groups"] == ["trained relu", "trained tanh", "untrained relu", "untrained tanh"]


def test_job_refuses_mixed_initialisations():
    nets = _networks(iterations=0, n=1)
    weights, cfg = nets[0]
    nets[0] = (weights, {**cfg, "model": {**cfg["model"], "recurrent_init": "normal"}})
    with pytest.raises(ValueError, match="share one recurrent initialisation"):
        jobs.untrained_job({"networks": nets})


def test_analysis_config_checks_the_untrained_settings():
    from rnn_dyn.sweep_config import AnalysisConfig

    a = AnalysisConfig(untrained_metrics=["svcca", "svcca"], untrained_inits="identity")
    assert a.untrained_metrics == ("svcca",) and a.untrained_inits == ("identity",)
    with pytest.raises(ValueError, match=r"analysis.untrained_inits must be one of \[.*'identity'"):
        AnalysisConfig(untrained_inits=("xavier",))
    with pytest.raises(ValueError, match="analysis.untrained_metrics must be one of"):
        AnalysisConfig(untrained_metrics=("dsa",))
