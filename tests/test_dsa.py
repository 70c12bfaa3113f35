"""Tests of rnn_dyn.dsa and dsa_fit: DMD, known answers, invariances, pairwise batching, the fit
sweep, the DSA probes, the authors' qualitative result, errors."""
import numpy as np
import pytest

from rnn_dyn.dsa_fit import (choose_dmd, constant_input_segments, fit_dmd, persistence_r2, prediction_r2,
                             project_segments, sweep_dmd, sweep_table)
from rnn_dyn.dsa_probes import dsa_probe
from rnn_dyn.similarity import dmd, dsa, operator_distances, pairwise_distances
from rnn_dyn.sweep_config import DSA_FIT


def rng(seed=0):
    return np.random.default_rng(seed)


def rotation(a):
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def trajectories(A, n_trials=12, n_time=25, seed=0):
    """Trials ``x[t+1] = A x[t]`` from Gaussian starts: (n_trials, n_time, n)."""
    X = np.zeros((n_trials, n_time, len(A)))
    X[:, 0] = rng(seed).standard_normal((n_trials, len(A)))
    for t in range(1, n_time):
        X[:, t] = X[:, t - 1] @ A.T
    return X


def circle(a, n_trials=8, n_time=20):
    """Rotation by ``a`` from equally spaced starts on the unit circle: isotropic data."""
    phase = 2 * np.pi * np.arange(n_trials)[:, None] / n_trials + a * np.arange(n_time)
    return np.stack([np.cos(phase), np.sin(phase)], -1)


def stable(n, seed):
    A = rng(seed).standard_normal((n, n))
    return 0.95 * A / np.max(np.abs(np.linalg.eigvals(A)))


# ------------------------------------------------------------------ dmd
def test_dmd_recovers_linear_dynamics_up_to_similarity():
    A = stable(5, 1)
    F = dmd(trajectories(A))
    assert F.shape == (5, 5)
    np.testing.assert_allclose(np.sort_complex(np.linalg.eigvals(F)),
                               np.sort_complex(np.linalg.eigvals(A)), atol=1e-6)


def test_dmd_delays_and_rank():
    X = trajectories(stable(4, 2), n_time=30)
    assert dmd(X, n_delays=3).shape == (4, 4)  # rank 4 dynamics: null directions dropped
    assert dmd(X, n_delays=3, rank=2).shape == (2, 2)
    # a scalar AR(2) process needs two delays to be linear
    x = np.zeros((6, 40, 1))
    x[:, :2, 0] = rng(3).standard_normal((6, 2))
    for t in range(2, 40):
        x[:, t] = 1.2 * x[:, t - 1] - 0.5 * x[:, t - 2]
    lam = np.sort_complex(np.linalg.eigvals(dmd(x, n_delays=2)))
    np.testing.assert_allclose(lam, np.sort_complex(np.roots([1, -1.2, 0.5])), atol=1e-6)


def test_dmd_fits_within_trials_only():
    """Steps across trial boundaries are no transitions: trials of a rotation
    started anywhere give the rotation exactly; flattened, they do not."""
    X = circle(0.4)[:, :, :] * rng(4).uniform(0.5, 2, (8, 1, 1))
    lam = np.linalg.eigvals(dmd(X))
    np.testing.assert_allclose(np.sort(np.angle(lam)), [-0.4, 0.4], atol=1e-8)
    flat = np.linalg.eigvals(dmd(X.reshape(-1, 2)))
    assert np.max(np.abs(np.sort(np.angle(flat)) - [-0.4, 0.4])) > 1e-3


# ----------------------------------------------------- known answers
@pytest.mark.parametrize("a, b", [(0.3, 1.1), (0.2, 2.5), (1.0, 1.0)])
def test_two_rotations_closed_form(a, b):
    """max over O(2) of tr(R_a^T C R_b C^T) / 2 is max(cos(a - b), cos(a + b)):
    rotations commute with R_b, reflections turn it into R_-b."""
    expected = min(abs(a - b), abs(a + b))
    D = operator_distances([rotation(a)], [rotation(b), rotation(-b)])
    np.testing.assert_allclose(D, [[expected, expected]], atol=1e-7)
    E = operator_distances([rotation(a)], [rotation(b)], kind="euclidean")
    assert E[0, 0] == pytest.approx(2 * np.sin(expected / 2), abs=1e-7)
    # from data: isotropic circles give DMD operators that are rotations by +-a
    assert dsa(circle(a), circle(b)) == pytest.approx(expected, abs=1e-6)


def test_changed_rotation_frequency_moves_the_distance():
    base = circle(0.5)
    d = [dsa(base, circle(w)) for w in (0.5, 0.55, 0.7, 1.0)]
    assert d[0] == pytest.approx(0.0, abs=1e-6)
    assert d[0] < d[1] < d[2] < d[3]
    np.testing.assert_allclose(d[1:], [0.05, 0.2, 0.5], atol=1e-6)


def test_block_diagonal_rotations():
    """Two planes rotating at (a1, a2) against (b1, b2): the best C pairs planes;
    the value is the mean of cosines of the matched differences."""
    def blocks(x, y):
        A = np.zeros((4, 4))
        A[:2, :2], A[2:, 2:] = rotation(x), rotation(y)
        return A
    a, b = (0.2, 1.0), (0.9, 0.3)
    A, B = blocks(*a), blocks(*b)
    best = max((np.cos(a[0] - b[0]) + np.cos(a[1] - b[1])) / 2,
               (np.cos(a[0] - b[1]) + np.cos(a[1] - b[0])) / 2)
    assert operator_distances([A], [B])[0, 0] == pytest.approx(np.arccos(best), abs=1e-6)


def test_wasserstein_between_known_eigenvalue_sets():
    """The squared 2-Wasserstein distance between uniform distributions: the MEAN matched squared distance."""
    A, B = np.diag([0.9, 0.5, -0.2]), np.diag([0.4, 1.0, -0.2])  # match 0.9-1.0, 0.5-0.4, -0.2 with itself
    assert operator_distances([A], [B], kind="wasserstein")[0, 0] == pytest.approx((0.01 + 0.01 + 0) / 3)
    # complex pairs: e^{+-0.3i} against 0.5 e^{+-0.3i}: each point moves by 0.5
    W = operator_distances([rotation(0.3)], [0.5 * rotation(0.3)], kind="wasserstein")
    assert W[0, 0] == pytest.approx(0.25)
    # different sizes: the smaller set is padded with zeros
    W = operator_distances([np.diag([0.5])], [np.diag([0.5, 0.3])], kind="wasserstein")
    assert W[0, 0] == pytest.approx(0.09 / 2)
    # the same eigenvalues repeated k times: a distribution, so the distance does not grow with k
    for k in (1, 4):
        W = operator_distances([np.kron(np.eye(k), A)], [np.kron(np.eye(k), B)], kind="wasserstein")
        assert W[0, 0] == pytest.approx(0.02 / 3)


# ---------------------------------------------------------- invariances
@pytest.mark.parametrize("kind", ["angular", "euclidean", "wasserstein"])
def test_conjugate_systems_are_at_zero(kind):
    X = trajectories(stable(6, 5))
    Q = np.linalg.qr(rng(6).standard_normal((6, 6)))[0]
    M = rng(7).standard_normal((6, 6))  # invertible, far from orthogonal
    assert dsa(X, X @ Q, kind=kind) == pytest.approx(0.0, abs=1e-6)
    assert dsa(X, X @ M, kind=kind) == pytest.approx(0.0, abs=1e-6)
    assert dsa(X, 3.0 * X @ M, n_delays=2, kind=kind) == pytest.approx(0.0, abs=1e-6)
    wide = X @ rng(8).standard_normal((6, 15))  # observed through 15 units
    assert dsa(X, wide, kind=kind) == pytest.approx(0.0, abs=1e-6)


def test_operator_distance_invariant_to_orthogonal_conjugation_and_scale():
    A, B = stable(5, 9), stable(5, 10)
    Q = np.linalg.qr(rng(11).standard_normal((5, 5)))[0]
    D = operator_distances([A, B, Q @ B @ Q.T * 2.5, Q @ A @ Q.T])
    assert D[0, 3] == pytest.approx(0.0, abs=1e-6) and D[1, 2] == pytest.approx(0.0, abs=1e-6)
    assert D[0, 1] > 0.1
    assert D[0, 2] == pytest.approx(D[0, 1], abs=1e-6) and D[3, 1] == pytest.approx(D[0, 1], abs=1e-6)
    assert np.all(D >= 0) and np.array_equal(D, D.T) and np.all(np.diag(D) == 0)


def test_angular_is_a_metric_on_examples():
    ops = [stable(4, s) for s in range(6)]
    D = operator_distances(ops)
    for i in range(6):
        for j in range(6):
            assert np.all(D[i, j] <= D[i, :] + D[:, j] + 1e-6)


def test_deterministic_given_seed():
    ops = [stable(5, s) for s in range(5)]
    np.testing.assert_array_equal(operator_distances(ops, seed=3), operator_distances(ops, seed=3))


def test_batched_no_worse_than_a_dense_single_pair_search():
    """The batched answer against 64 starts run long, one pair at a time."""
    ops = [stable(6, s) for s in range(4)]
    D = operator_distances(ops)
    for i in range(4):
        for j in range(i + 1, 4):
            slow = operator_distances([ops[i]], [ops[j]], n_restarts=64, n_iters=2000)[0, 0]
            assert D[i, j] <= slow + 1e-3


# -------------------------------------------------------- population
def test_pairwise_distances_dsa_matches_single_pairs():
    reps = [trajectories(stable(4, s % 3), seed=s % 3) @ rng(s).standard_normal((4, 4 + s))
            for s in range(5)]
    D = pairwise_distances(reps, metric="dsa", rank=4)
    assert D.shape == (5, 5) and np.array_equal(D, D.T) and np.all(np.diag(D) == 0)
    for i, j in [(0, 1), (0, 3), (2, 4)]:
        assert D[i, j] == pytest.approx(dsa(reps[i], reps[j], rank=4), abs=1e-6)
    assert D[0, 3] == pytest.approx(0.0, abs=1e-6)  # the same trajectories, observed differently
    R = pairwise_distances(reps[3:], reps[:3], metric="dsa", rank=4)
    np.testing.assert_allclose(R, D[3:, :3], atol=1e-6)
    W = pairwise_distances(np.array(reps[:1] * 2), metric="dsa", kind="wasserstein")
    np.testing.assert_allclose(W, 0.0, atol=1e-12)  # a 4-D array: networks, trials, time, units


# ----------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    X = trajectories(stable(3, 0))
    with pytest.raises(ValueError, match=r"kind must be one of \['angular', 'euclidean', "
                                         r"'wasserstein'\]; got 'cosine'"):
        dsa(X, X, kind="cosine")
    with pytest.raises(ValueError, match=r"X needs n_time > n_delays \(25\) in every segment to have a transition; got n_time 25 in segment 0"):
        dmd(X, n_delays=25)
    with pytest.raises(ValueError, match=r"rank must be <= n_units \* n_delays \(3\); got 4"):
        dmd(X, rank=4)
    with pytest.raises(TypeError, match="n_delays must be an integer; got 1.5"):
        dsa(X, X, n_delays=1.5)
    with pytest.raises(ValueError, match=r"Y must be a 3-D array .*got shape \(25,\)"):
        dsa(X, X[0, :, 0])
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="reps\\[1\\] must contain only finite values; got 1"):
        pairwise_distances([X, bad], metric="dsa")
    with pytest.raises(TypeError, match=r"unexpected option\(s\) \['k'\] for metric 'dsa'"):
        pairwise_distances([X, X], metric="dsa", k=3)
    with pytest.raises(ValueError, match="X is all zeros"):
        dmd(np.zeros((2, 5, 3)))


# ------------------------------------------------- segments and the fit sweep
def test_constant_input_segments_cut_where_the_input_changes():
    x = np.zeros((2, 12, 2))
    x[0, 0] = x[0, 5] = [1, -1]  # pulses at 0 and 5: zero input over 1-4 and 6-11
    x[1] = 0.5  # constant for the whole trial
    assert constant_input_segments(x, 1) == [(0, 0, 1), (0, 0, 5), (0, 4, 6), (0, 5, 12), (1, 0, 12)]
    # a run inputs[a:b] gives states[a-1:b]: the state before it, then b - a steps of one map
    assert constant_input_segments(x, 5) == [(0, 0, 5), (0, 5, 12), (1, 0, 12)]
    with pytest.raises(ValueError, match=r"inputs must be a 3-D array"):
        constant_input_segments(x[0], 2)


def test_dmd_on_segments_of_different_lengths_never_joins_them():
    A = stable(3, 12)
    X = trajectories(A, n_trials=6, n_time=30)
    segments = [X[0], X[1, :7], X[2, 3:20], X[3, :4], X[4], X[5, 10:]]
    np.testing.assert_allclose(np.sort_complex(np.linalg.eigvals(dmd(segments))),
                               np.sort_complex(np.linalg.eigvals(A)), atol=1e-6)
    joined = np.concatenate(segments)[None]  # the same states as one trial: jumps fitted as dynamics
    assert np.max(np.abs(np.sort_complex(np.linalg.eigvals(dmd(joined))) -
                         np.sort_complex(np.linalg.eigvals(A)))) > 1e-3
    with pytest.raises(ValueError, match=r"n_time > n_delays \(4\) in every segment .* got n_time 4 in segment 3"):
        dmd(segments, n_delays=4)


def test_prediction_r2_is_one_for_linear_dynamics_and_drops_for_a_wrong_model():
    X = list(trajectories(stable(4, 13), n_trials=8, n_time=40))
    model = fit_dmd(X[:6])
    assert prediction_r2(model, X[6:], 1) == pytest.approx(1.0, abs=1e-9)
    assert prediction_r2(model, X[6:], 10) == pytest.approx(1.0, abs=1e-6)
    assert persistence_r2(X[6:], 10) < 0.9  # a decaying system is not constant
    np.testing.assert_allclose(persistence_r2([np.ones((5, 2)) * [1, 2], np.ones((6, 2))], 2), 1.0)
    wrong = fit_dmd(list(trajectories(stable(4, 14), n_trials=8, n_time=40)))
    assert prediction_r2(wrong, X[6:], 10) < 0.9
    assert np.isnan(prediction_r2(model, [x[:5] for x in X[6:]], 10))  # no segment is long enough


def test_sweep_finds_the_delays_an_ar2_process_needs():
    """A scalar AR(2) process is linear with two delays, not with one: the rule picks (2 delays, rank 2)."""
    x = np.zeros((12, 40, 1))
    x[:, :2, 0] = rng(3).standard_normal((12, 2))
    for t in range(2, 40):
        x[:, t] = 1.6 * x[:, t - 1] - 0.8 * x[:, t - 2]
    sweep = sweep_dmd([list(x)], n_delays=[1, 2, 5], ranks=[1, 2, 4], horizon=5)
    assert np.isnan(sweep["multi_step"][0, 0, 1])  # rank 2 > 1 delay x 1 unit
    assert sweep["multi_step"][0, 0, 0] < 0.9 and sweep["multi_step"][0, 1, 1] == pytest.approx(1.0, abs=1e-6)
    choice = choose_dmd(sweep)
    assert (choice["n_delays"], choice["rank"]) == (2, 2) and choice["r2_one_step"] == pytest.approx(1.0)
    assert {(r["n_delays"], r["rank"]) for r in sweep_table(sweep)} == {(1, 1), (2, 1), (2, 2), (5, 1), (5, 2),
                                                                         (5, 4)}


def test_choice_is_the_smallest_model_within_tolerance_of_the_best():
    multi = np.array([[[0.50, 0.80, 0.90], [0.60, 0.992, 0.99], [0.70, 0.99, 1.00]]])  # delays x ranks
    sweep = {"multi_step": multi, "one_step": multi, "n_delays": np.array([1, 5, 10]),
             "ranks": np.array([2, 4, 8])}
    assert (choose_dmd(sweep, 0.01)["n_delays"], choose_dmd(sweep, 0.01)["rank"]) == (5, 4)  # 0.992 and 0.99 >= 0.99: rank 4, fewer delays
    assert (choose_dmd(sweep, 0.0)["n_delays"], choose_dmd(sweep, 0.0)["rank"]) == (10, 8)
    assert (choose_dmd(sweep, 0.5)["n_delays"], choose_dmd(sweep, 0.5)["rank"]) == (1, 2)
    with pytest.raises(ValueError, match="no \\(n_delays, rank\\) of the sweep has a finite multi-step R²"):
        choose_dmd({**sweep, "multi_step": np.full_like(multi, np.nan)})


def test_dsa_probes_hold_the_input_long_enough():
    from rnn_dyn.tasks import get_task

    for name in ("flipflop", "sine", "context"):
        task = get_task(name)
        inputs = dsa_probe(task, DSA_FIT.min_length)
        index = constant_input_segments(inputs, DSA_FIT.min_length)
        assert inputs.shape[-1] == task.n_inputs and len(index) >= DSA_FIT.holdout, name
        assert all(b - a >= DSA_FIT.min_length for _, a, b in index)
    context = dsa_probe(get_task("context"))
    assert np.all(context == context[:, :1])  # noise-free: every trial is one constant input
    assert set(map(tuple, context[:, 0, 2:])) == {(1.0, 0.0), (0.0, 1.0)}  # both contexts


# ------------------------------------------------ the authors' qualitative result
def _relaxations(step, n_trials=32, n_time=60):
    z = np.zeros((n_trials, n_time, 3))
    z[:, 0] = rng(20).uniform(-1.5, 1.5, (n_trials, 3))
    for t in range(1, n_time):
        z[:, t] = step(z[:, t - 1])
    return z


def test_same_attractors_seen_differently_are_closer_under_dsa_than_under_svcca():
    """Ostrow et al. (2023): DSA groups systems by their dynamics where geometry misleads.

    A 3-bit flip-flop (8 stable corners, ``z' = z + 0.2 (z - z^3)``) and a line attractor
    (``z' = diag(1, 0.6, 0.6) z``) relax from the same starts; each is seen through a
    saturating linear map of ``z`` or of its products ``z1 z2, z1 z3, z2 z3, z1 z2 z3`` (a
    nonlinear, injective observation of the corners, linearly uncorrelated with ``z``).
    With ``(n_delays, rank)`` chosen by the study's rule on the four systems, DSA puts the
    two flip-flops together and the line attractors apart; SVCCA (95%) puts the flip-flop
    nearer the line attractor seen the same way than the flip-flop seen through products.
    """
    flip = _relaxations(lambda z: z + 0.2 * (z - z ** 3))
    line = _relaxations(lambda z: z * np.array([1.0, 0.6, 0.6]))
    M, P = rng(21).standard_normal((3, 20)), rng(22).standard_normal((4, 20))

    def products(z):
        z1, z2, z3 = (z[..., i] for i in range(3))
        return np.stack([z1 * z2, z1 * z3, z2 * z3, z1 * z2 * z3], -1)

    reps = [np.tanh(flip @ M / 2), np.tanh(products(flip) @ P / 2), np.tanh(line @ M / 2),
            np.tanh(products(line) @ P / 2)]
    segments = [project_segments(list(r), DSA_FIT.n_pcs) for r in reps]
    choice = choose_dmd(sweep_dmd(segments, DSA_FIT.n_delays, DSA_FIT.ranks, DSA_FIT.horizon, DSA_FIT.holdout),
                        DSA_FIT.tolerance)
    assert choice["r2_multi_step"] >= DSA_FIT.r2_floor
    D = pairwise_distances(segments, metric="dsa", n_delays=choice["n_delays"], rank=choice["rank"])
    S = pairwise_distances([r.reshape(-1, r.shape[-1]) for r in reps], metric="svcca")
    same, other = (0, 1), (0, 2)  # flip-flop twice; flip-flop and line attractor, seen the same way
    assert D[same] < D[other] and D[same] < D[1, 3] and D[same] < D[0, 3]  # different attractors: farther
    assert S[same] > S[other]  # geometry misleads ...
    assert D[same] / D[other] < S[same] / S[other]  # ... DSA, relative to the same scale, does not


# ------------------------------------------------------------ the study's DSA step
def test_compare_job_chooses_dsa_settings_by_fit_and_reports_them():
    """The study's ``compare-<task>-dsa`` result: distances at the chosen settings, the choice and
    fit quality as params, metrics and 0-d arrays (for ``topology.npz``), a sweep figure and table."""
    import dataclasses

    from rnn_dyn import jobs
    from rnn_dyn.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
    from rnn_dyn.population import Population
    from rnn_dyn.tasks import get_task

    networks = []
    for cell in ("vanilla", "gru"):
        cfg = RunConfig(task=TaskConfig(name="context", n_time=20), model=ModelConfig(cell, "tanh", 6),
                        train=TrainConfig(n_networks=2, seed=[0, 1]))
        task = get_task(cfg.task)
        weights = Population(cfg.model, task.n_inputs, task.n_outputs, [0, 1]).get_weights_dict()
        networks += [({k: v[i] for k, v in weights.items()}, cfg.member_config(i).to_dict()) for i in range(2)]
    fit = dataclasses.replace(DSA_FIT, n_delays=(1, 5), ranks=(2, 4, 8), n_sample=2)
    out = jobs.dsa_fitted(networks, fit, "context")
    assert len(out["segments"]) == 4 and len(out["segments"][0]) == 20  # 20 noise-free trials, each one segment
    chosen = (out["options"]["n_delays"], out["options"]["rank"])
    assert chosen in {(d, r) for d in fit.n_delays for r in fit.ranks}
    assert (out["params"]["dsa_n_delays"], out["params"]["dsa_rank"]) == chosen
    assert {"dsa_fit_r2_one_step", "dsa_fit_r2_multi_step", "dsa_fit_below_floor"} <= set(out["metrics"])
    assert {k: v.ndim for k, v in out["arrays"].items()} == dict.fromkeys(
        ["dsa_n_delays", "dsa_rank", "dsa_fit_r2_one_step", "dsa_fit_r2_multi_step"], 0)
    assert out["arrays"]["dsa_fit_r2_multi_step"] == out["metrics"]["dsa_fit_r2_multi_step"]
    assert (out["warning"] is None) == (out["arrays"]["dsa_fit_r2_multi_step"] >= fit.r2_floor)
    table = out["tables"]["dsa_sweep"]
    assert len(table["rows"]) == 5 and table["choice"]["rank"] == chosen[1]  # not rank 8 > 1 delay x 6 units
    assert out["figures"]["dsa_sweep"][:4] == b"\x89PNG"
    result = jobs.compare_job({"networks": networks, "metrics": ["dsa"], "task": "context"})["dsa"]
    assert result["distances"].shape == (4, 4) and result["options"]["kind"] == "angular"
    assert result["options"]["n_delays"] == result["params"]["dsa_n_delays"]
