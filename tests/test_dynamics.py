"""Linearized dynamics: oscillatory modes (sine) and integration modes (context).

Fixed points are built by hand from known Jacobians (plus one run of
``find_fixed_points`` on a linear rotation map), so every expected number is
analytic or a brute-force simulation of the linear system.
"""
import numpy as np
import pytest
import tensorflow as tf

from rnn_dyn.config import TaskConfig
from rnn_dyn.fixed_points import FixedPoints, find_fixed_points
from rnn_dyn.integration import (compute_integration_modes, count_near_one, geometric_sum,
                                 integration_curve, modes_needed)
from rnn_dyn.linearization import eigendecomposition
from rnn_dyn.oscillation import compute_oscillatory_modes, dominant_oscillatory_eigval
from rnn_dyn.point_groups import group_summary, nearest_points
from rnn_dyn.tasks import get_task


def make_fps(jacobian, input_jacobian, network=None, condition=None, hstar=None, n_networks=1):
    """A FixedPoints holding the given linearizations (other fields zeros)."""
    jac, b = np.asarray(jacobian, float), np.asarray(input_jacobian, float)
    p, n = jac.shape[:2]
    vals, right, left = eigendecomposition(jac)
    zeros = np.zeros(p)
    return FixedPoints(
        hstar=np.zeros((p, n)) if hstar is None else np.asarray(hstar, float), h_init=np.zeros((p, n)),
        x_cond=np.zeros((p, b.shape[-1])), qstar=zeros, n_iters=zeros.astype(int),
        n_polish=zeros.astype(int), kind=np.full(p, "fixed"), jacobian=jac, input_jacobian=b,
        eigvals=vals, right_eigvecs=right, left_eigvecs=left,
        is_stable=np.all(np.abs(vals) < 1, -1), n_unstable=np.sum(np.abs(vals) > 1, -1),
        network=np.zeros(p, int) if network is None else np.asarray(network),
        condition=np.arange(p) if condition is None else np.asarray(condition),
        n_networks=n_networks, n_starts=np.ones(n_networks, int), n_discarded=np.zeros(n_networks, int))


def rotation(rho, theta):
    c, s = np.cos(theta), np.sin(theta)
    return rho * np.array([[c, -s], [s, c]])


def block(*blocks):
    blocks = [np.atleast_2d(b) for b in blocks]
    n = sum(len(b) for b in blocks)
    out, i = np.zeros((n, n)), 0
    for b in blocks:
        out[i:i + len(b), i:i + len(b)] = b
        i += len(b)
    return out


S3 = np.array([[1.0, 0.8, -0.3], [0.2, 1.0, 0.5], [-0.4, 0.1, 1.0]])  # makes J non-normal


def conj(d, s):
    return s @ d @ np.linalg.inv(s)


# -- sine -----------------------------------------------------------------------
def test_rotation_frequency_growth_error_and_missing_cases():
    # Conditions 0-2: a rotation (non-normal after conjugation) plus a real mode;
    # condition 3: real eigenvalues only; condition 4: no point at all.
    params = [(1.01, 0.1), (0.95, 0.2), (1.0, 0.3)]
    jac = [conj(block(rotation(r, t), 0.5), S3) for r, t in params]
    jac.append(np.diag([1.2, 0.9, -0.5]))
    fps = make_fps(np.stack(jac), np.ones((4, 3, 1)))
    omega = np.array([0.1, 0.25, 0.2, 0.3, 0.4])
    osc = compute_oscillatory_modes(fps, omega)
    theta, rho = np.array([t for _, t in params]), np.array([r for r, _ in params])
    np.testing.assert_allclose(osc.frequency[0, :3], theta, atol=1e-12)
    np.testing.assert_allclose(osc.growth[0, :3], np.log(rho), atol=1e-12)
    np.testing.assert_allclose(osc.rel_error[0, :3], np.abs(theta - omega[:3]) / omega[:3], atol=1e-12)
    np.testing.assert_allclose(osc.rel_error[0, :3], [0.0, 0.2, 0.5], atol=1e-12)
    assert np.all(np.isnan(osc.frequency[0, 3:])) and np.all(np.isnan(osc.rel_error[0, 3:]))
    assert list(osc.point[0]) == [0, 1, 2, 3, -1]
    assert list(osc.n_no_mode) == [1] and list(osc.n_no_point) == [1]
    summary = osc.per_network()
    np.testing.assert_allclose(summary["mean_rel_error"], [0.7 / 3])
    np.testing.assert_allclose(summary["median_rel_error"], [0.2])
    assert list(summary["n_valid"]) == [3]


def test_dominant_mode_is_the_largest_complex_pair_above_threshold():
    # A larger real eigenvalue and a tiny-imaginary pair must not be chosen.
    eig = np.array([[1.3, 0.9 + 1e-5j, 0.9 - 1e-5j, 0.5 - 0.5j, 0.5 + 0.5j, 0.1]])
    np.testing.assert_allclose(dominant_oscillatory_eigval(eig), [0.5 + 0.5j])
    assert np.isnan(dominant_oscillatory_eigval(eig, min_imag=0.6)[0])
    np.testing.assert_allclose(dominant_oscillatory_eigval(eig, min_imag=0.0), [0.9 + 1e-5j])


def test_point_selection_unit_circle_default_and_nearest_reference():
    # Two networks; network 0 has two points under condition 0.
    jac = np.stack([block(rotation(0.9, 0.2), 0.1), block(rotation(1.02, 0.3), 0.1),
                    block(rotation(1.0, 0.25), 0.1)])
    hstar = np.array([[0.0, 0, 0], [5.0, 0, 0], [1.0, 1, 1]])
    fps = make_fps(jac, np.ones((3, 3, 1)), network=[0, 0, 1], condition=[0, 0, 0], hstar=hstar,
                   n_networks=2)
    osc = compute_oscillatory_modes(fps, [0.3])
    assert list(osc.point[:, 0]) == [1, 2]
    np.testing.assert_allclose(osc.frequency[:, 0], [0.3, 0.25])
    reference = np.array([[[0.5, 0, 0]], [[9.0, 9, 9]]])
    points = nearest_points(fps, reference)
    assert points.tolist() == [[0], [2]]
    np.testing.assert_allclose(compute_oscillatory_modes(fps, [0.3], points=points).frequency[:, 0],
                               [0.2, 0.25])
    with pytest.raises(ValueError, match="points\\[i, c\\] must be a point of network i"):
        compute_oscillatory_modes(fps, [0.3], points=np.array([[2], [0]]))
    with pytest.raises(ValueError, match="fps.condition must index the 0 conditions"):
        nearest_points(fps, np.zeros((2, 0, 3)))


def test_found_fixed_points_of_a_cued_rotation_match_the_task_frequencies():
    task = get_task(TaskConfig(name="sine", n_grid=5))
    grid, rho, b = task.grid, 1.01, np.array([1.0, 0.5])

    def rotate(h, x):  # h' = ρ R(ω(u)) h + b u: the task's own frequency at every cue
        theta = task.cfg.omega_min + (task.cfg.omega_max - task.cfg.omega_min) * x
        c, s = tf.cos(theta), tf.sin(theta)
        turned = tf.concat([c * h[:, :1] - s * h[:, 1:], s * h[:, :1] + c * h[:, 1:]], axis=1)
        return rho * turned + tf.constant(b, h.dtype) * x

    starts = np.random.default_rng(0).normal(size=(len(grid) * 4, 2))
    fps = find_fixed_points(rotate, np.repeat(task.x_cond, 4, 0), starts, max_iters=0,
                            guard_scale=None)
    assert sorted(fps.condition) == list(range(len(grid)))
    osc = compute_oscillatory_modes(fps, task.omega(grid))
    np.testing.assert_allclose(osc.frequency[0], task.omega(grid), atol=1e-10)
    np.testing.assert_allclose(osc.rel_error[0], 0.0, atol=1e-9)
    np.testing.assert_allclose(osc.growth[0], np.log(rho), atol=1e-10)


def test_group_summary_per_label_pair():
    values = np.array([0.1, 0.3, 0.2, np.nan, 0.5])
    cells = np.array(["gru", "gru", "vanilla", "vanilla", "gru"])
    acts = np.array(["tanh", "tanh", "relu", "relu", "relu"])
    out = group_summary(values, cells, acts)
    assert list(out) == [("gru", "relu"), ("gru", "tanh"), ("vanilla", "relu")]
    assert out[("gru", "tanh")] == pytest.approx({"mean": 0.2, "median": 0.2, "n": 2})
    assert out[("vanilla", "relu")]["n"] == 1 and out[("vanilla", "relu")]["mean"] == 0.2
    with pytest.raises(ValueError, match="labels\\[0\\] must have shape"):
        group_summary(values, cells[:2])


# -- context integration -----------------------------------------------------------
def test_diagonal_line_attractor_curve_by_hand():
    # Eigenvalues 0.5, 0.2, 1 (unsorted on purpose); pulse on input 1 = [2, 4, 1].
    jac = np.diag([0.5, 0.2, 1.0])[None]
    b = np.array([[[9.0, 2.0], [9.0, 4.0], [9.0, 1.0]]])
    w = np.array([[0.5], [0.25], [1.0]])
    T = 10
    terms = np.array([T * 1.0, 0.5 * 2 * (1 - 0.5**T) / 0.5, 0.25 * 4 * (1 - 0.2**T) / 0.8])
    full = terms.sum()
    res = compute_integration_modes(make_fps(jac, b), w, 1, horizon=T)
    np.testing.assert_allclose(res.full[:, 0], [full])
    np.testing.assert_allclose(res.curve[0], np.concatenate([[0], np.cumsum(terms)]) / full)
    assert res.curve[0, 1] == pytest.approx(10 / 13.248046747, rel=1e-9)
    assert res.curve[0, -1] == pytest.approx(1.0)
    assert list(res.n_near_one) == [1] and list(res.n_modes) == [2]
    assert modes_needed(res.curve, level=0.7).tolist() == [1]
    np.testing.assert_allclose(res.one_mode, res.curve[:, 1])


def test_non_diagonal_line_attractor_single_mode_fraction_is_analytic():
    # λ = 1, 0.6, 0.5 ± 0.3i, -0.3 in a random (non-orthogonal) basis; two outputs.
    rng = np.random.default_rng(1)
    s = rng.normal(size=(5, 5)) + 2 * np.eye(5)
    jac = conj(block(1.0, 0.6, [[0.5, -0.3], [0.3, 0.5]], -0.3), s)
    b = rng.normal(size=(5, 3))
    w = rng.normal(size=(5, 2))
    T = 40
    fps = make_fps(jac[None], b[None])
    curve, full = integration_curve(fps, w, 2, horizon=T)
    brute = sum(w.T @ np.linalg.matrix_power(jac, k) @ b[:, 2] for k in range(T))
    np.testing.assert_allclose(full[0], brute, rtol=1e-9)
    projector = np.linalg.matrix_power(jac, 4000)  # onto the λ = 1 mode (the others decay)
    one = T * w.T @ projector @ b[:, 2]
    assert curve[0, 1] == pytest.approx(one @ brute / (brute @ brute), rel=1e-8)
    assert curve[0, -1] == pytest.approx(1.0, abs=1e-12) and curve[0, 0] == 0
    assert count_near_one(fps.eigvals).tolist() == [1]
    assert count_near_one(fps.eigvals, tol=0.5).tolist() == [2]  # 0.6 joins


def test_non_normal_full_readout_matches_simulation_with_hidden_part():
    # LSTM-like state [c; h]: the readout sees the last 3 of 6 entries; two networks,
    # each with its own readout; two conditions with different relevant channels.
    rng = np.random.default_rng(2)
    jacs, bs = [], []
    for _ in range(4):
        s = rng.normal(size=(6, 6))
        d = block([[0.7, -0.6], [0.6, 0.7]], 1.02, 0.8, -0.4, 0.1)
        jacs.append(conj(d, s))
        bs.append(rng.normal(size=(6, 4)))
    jac, b = np.stack(jacs), np.stack(bs)
    w = rng.normal(size=(2, 3, 1))
    network, condition, channel = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.array([0, 3])
    fps = make_fps(jac, b, network=network, condition=condition, n_networks=2)
    assert np.linalg.cond(fps.right_eigvecs[0]) > 2  # R is far from orthogonal
    T = 25
    res = compute_integration_modes(fps, w, channel, horizon=T)
    for p in range(4):
        state, total = b[p, :, channel[condition[p]]], np.zeros(6)
        for _ in range(T):
            total, state = total + state, jac[p] @ state
        np.testing.assert_allclose(res.full[p], w[network[p]].T @ total[3:], rtol=1e-9)
    np.testing.assert_allclose(res.curve[:, -1], 1.0, atol=1e-10)
    for hidden in (slice(3, 6), np.arange(3, 6), lambda modes: modes[..., 3:]):
        np.testing.assert_allclose(integration_curve(fps, w, channel, horizon=T, hidden=hidden)[0],
                                   res.curve, atol=1e-12)
    summary = res.per_network()
    assert summary["n_points"].tolist() == [[1, 1], [1, 1]]
    np.testing.assert_allclose(summary["curve"][1, 0], res.curve[2])
    assert summary["n_near_one"].tolist() == [[1, 1], [1, 1]]  # λ = 1.02


def test_geometric_sum_and_modes_needed_edge_cases():
    lam = np.array([0.0, 1.0, 1 - 1e-12, -0.5, 0.3 + 0.4j, 1.01])
    T = 30
    np.testing.assert_allclose(geometric_sum(lam, T), [sum(x**k for k in range(T)) for x in lam],
                               rtol=1e-9)
    curves = np.array([[0, 1.3, 0.95, 1.0], [0, 0.95, 1.5, 1.0], [0, 0.5, np.nan, 1.0]])
    assert modes_needed(curves, 0.9).tolist() == [2, 3, -1]


def test_pulse_that_misses_the_readout_gives_nan_and_bad_inputs_raise():
    fps = make_fps(np.diag([1.0, 0.5])[None], np.array([[[1.0], [0.0]]]))
    curve, _ = integration_curve(fps, np.array([[0.0], [1.0]]), 0, horizon=5)
    assert np.all(np.isnan(curve))
    assert compute_integration_modes(fps, np.array([[0.0], [1.0]]), 0, horizon=5).n_modes.tolist() == [-1]
    with pytest.raises(ValueError, match="channel must be ints in \\[0, n_inputs=1\\)"):
        integration_curve(fps, np.eye(2), 1, horizon=5)
    with pytest.raises(ValueError, match="readout must have shape"):
        integration_curve(fps, np.zeros((3, 2, 1)), 0, horizon=5)
    with pytest.raises(ValueError, match="hidden must select n_hidden=2"):
        integration_curve(fps, np.eye(2), 0, horizon=5, hidden=slice(0, 1))
    with pytest.raises(ValueError, match="horizon must be > 0"):
        integration_curve(fps, np.eye(2), 0, horizon=0)
    with pytest.raises(ValueError, match="omega must be a 1-D array"):
        compute_oscillatory_modes(fps, [[0.1]])
    with pytest.raises(ValueError, match="fps.condition must index the 0 conditions"):
        compute_oscillatory_modes(fps, np.zeros(0))
