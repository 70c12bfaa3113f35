"""Fixed points: known answers, Jacobians, Keras cells, populations, a trained flip-flop GRU.

The trained network is ``fixtures/gru_flipflop_64.npz`` (two 64-unit tanh GRUs
trained by ``fixtures/make_gru_flipflop.py``); nothing here trains.
"""
import pathlib
import warnings

import keras
import matplotlib
import numpy as np
import pytest
import tensorflow as tf

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rnn_dyn.cells import get_cell  # noqa: E402
from rnn_dyn.config import ModelConfig  # noqa: E402
from rnn_dyn.fixed_points import (FixedPoints, find_fixed_points,  # noqa: E402
                                  find_population_fixed_points, sample_states)
from rnn_dyn.linearization import compute_jacobians  # noqa: E402
from rnn_dyn.plotting import plot_fixed_points  # noqa: E402
from rnn_dyn.population import Population  # noqa: E402
from rnn_dyn.tasks import get_task  # noqa: E402

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "gru_flipflop_64.npz"
META = ("seeds", "val_loss", "config")


def fixture_weights():
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files if k not in META}


def trained_population(members=(0, 1)):
    weights = fixture_weights()
    pop = Population(ModelConfig("gru", "tanh", 64), 3, 3, list(members))
    pop.set_weights_dict({k: v[list(members)] for k, v in weights.items()})
    return pop


def match(a, b):
    """For each row of ``a``, the index of the nearest row of ``b`` and the distance."""
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    return d.argmin(1), d.min(1)


@pytest.fixture(scope="module")
def trained():
    """The two trained networks, their fixed points (one call) and validation states."""
    pop = trained_population()
    task = get_task("flipflop")
    fps = find_population_fixed_points(pop, task, n_starts=1024, seed=0)
    states = pop.run(task.validation_set()["inputs"][:64])[0].numpy()
    return pop, fps, states


# -- known answers ----------------------------------------------------------------
A = np.array([[1.5, 0.7, 0.0], [0.0, 0.5, 0.4], [0.0, 0.0, -0.3]])  # non-normal, one |λ| > 1
B = np.array([[1.0], [0.5], [0.0]])
C = np.array([0.1, -0.2, 0.3])


def linear(h, x):
    cast = lambda a: tf.constant(a, h.dtype)  # noqa: E731
    return tf.linalg.matvec(cast(A), h) + tf.linalg.matvec(cast(B), x) + cast(C)


def test_linear_map_has_its_one_fixed_point_and_analytic_linearization():
    starts = np.random.default_rng(0).normal(size=(64, 3))
    x_cond = np.where(np.arange(64)[:, None] < 32, 0.2, -0.4)  # two conditions, per start
    fps = find_fixed_points(linear, x_cond, starts)
    assert len(fps) == 2 and list(fps.condition) == [0, 1] and set(fps.kind) == {"fixed"}
    for i, u in enumerate([0.2, -0.4]):
        np.testing.assert_allclose(fps.hstar[i], np.linalg.solve(np.eye(3) - A, B[:, 0] * u + C),
                                   atol=1e-12)
    assert np.all(fps.qstar < 1e-20)
    np.testing.assert_allclose(fps.jacobian, np.broadcast_to(A, (2, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(fps.input_jacobian, np.broadcast_to(B, (2, 3, 1)), atol=1e-12)
    np.testing.assert_allclose(fps.eigvals[0], [1.5, 0.5, -0.3], atol=1e-12)
    assert list(fps.n_unstable) == [1, 1] and not fps.is_stable.any()
    r, lam, left = fps.right_eigvecs[0], fps.eigvals[0], fps.left_eigvecs[0]
    np.testing.assert_allclose(r @ np.diag(lam) @ left, A, atol=1e-12)
    np.testing.assert_allclose(left @ A, np.diag(lam) @ left, atol=1e-12)


def double_well(h, x):
    """Euler step of a' = a - a³, b' = -b: stable (±1, 0), saddle (0, 0)."""
    a, b = h[:, 0], h[:, 1]
    return tf.stack([a + 0.1 * (a - a ** 3), b - 0.1 * b], axis=-1)


def test_slow_points_outside_the_region_are_outliers_fixed_points_are_not():
    def three_lines(h, x):  # a drifts by 1e-4 a step; slow lines at b = -1, 0, 1 (no root)
        return tf.stack([h[:, 0] + 1e-4, h[:, 1] + 0.1 * (h[:, 1] - h[:, 1] ** 3)], axis=-1)

    starts = np.random.default_rng(1).uniform(-1.5, 1.5, (200, 2))
    region = np.random.default_rng(2).uniform([-1.0, -0.2], [1.0, 1.2], (50, 2))  # b in [-0.2, 1.2]
    everywhere = find_fixed_points(three_lines, [0.0], starts)
    assert set(np.round(everywhere.hstar[:, 1], 6)) == {-1.0, 0.0, 1.0}
    inside = find_fixed_points(three_lines, [0.0], starts, region=region)
    assert set(np.round(inside.hstar[:, 1], 6)) == {0.0, 1.0}  # the line at b = -1 is an outlier
    assert inside.n_discarded[0] > everywhere.n_discarded[0]
    wells = find_fixed_points(double_well, [0.0], starts, region=region[:, ::-1])  # a in [-0.2, 1.2]:
    np.testing.assert_allclose(np.sort(wells.hstar[:, 0]), [-1, 0, 1], atol=1e-8)  # a = -1 is kept


def test_double_well_two_stable_points_and_a_saddle():
    starts = np.random.default_rng(1).uniform(-1.5, 1.5, (100, 2))
    fps = find_fixed_points(double_well, [0.0], starts)
    order = np.argsort(fps.hstar[:, 0])
    np.testing.assert_allclose(fps.hstar[order], [[-1, 0], [0, 0], [1, 0]], atol=1e-12)
    assert list(fps.is_stable[order]) == [True, False, True]
    assert list(fps.n_unstable[order]) == [0, 1, 0]
    saddle = fps[order[1]]
    np.testing.assert_allclose(saddle.eigvals[0], [1.1, 0.9], atol=1e-12)
    np.testing.assert_allclose(np.abs(saddle.right_eigvecs[0][:, 0]), [1, 0], atol=1e-12)
    assert fps.metrics()["n_saddles"].tolist() == [1] and fps.metrics()["n_stable"].tolist() == [2]


def ghost(h, x):
    """A root at h = 2 and, near 0, a minimum of q with q ≈ 2e-8 (a slow point)."""
    return h - 0.1 * (h ** 2 + 1e-3) * (h - 2.0)


def test_slow_point_is_reported_as_slow_never_as_fixed():
    starts = np.random.default_rng(2).uniform(-1, 3, (100, 1))
    fps = find_fixed_points(ghost, [0.0], starts)
    assert sorted(fps.kind) == ["fixed", "slow"]
    np.testing.assert_allclose(fps.fixed.hstar, [[2.0]], atol=1e-12)
    assert fps.fixed.qstar[0] < 1e-20 and fps.fixed.is_stable[0]
    slow = fps.slow
    assert abs(slow.hstar[0, 0]) < 1e-3 and 1e-9 < slow.qstar[0] < 1e-7
    strict = find_fixed_points(ghost, [0.0], starts, tol_slow=1e-9)
    assert list(strict.kind) == ["fixed"] and strict.n_discarded[0] >= 1


def test_map_without_fixed_points_gives_an_empty_result():
    fps = find_fixed_points(lambda h, x: h + 1.0, [0.0], np.zeros((8, 2)) + np.arange(8)[:, None])
    assert len(fps) == 0 and fps.n_discarded[0] >= 1
    assert fps.jacobian.shape == (0, 2, 2) and "0 fixed" in fps.summary()


def test_search_ends_above_tol_polish_are_not_polished():
    starts = np.random.default_rng(1).uniform(-1.5, 1.5, (40, 2))
    polished = find_fixed_points(double_well, [0.0], starts, max_iters=3, n_forward=0, tol_polish=1.0)
    assert len(polished.fixed) == 3  # three Adam steps leave q high; Newton takes every end home
    stranded = find_fixed_points(double_well, [0.0], starts, max_iters=3, n_forward=0, tol_polish=1e-12)
    assert len(stranded) == 0 and stranded.n_discarded[0] == 40


def test_warns_when_searches_do_not_converge():
    starts = np.random.default_rng(1).uniform(-1.5, 1.5, (20, 2))
    with pytest.warns(UserWarning, match="did not converge within max_polish=1.*slow points"):
        fps = find_fixed_points(double_well, [0.0], starts, max_iters=1, max_polish=1, tol_slow=1.0,
                                tol_polish=1.0)
    assert "slow" in set(fps.kind)


# -- Jacobians and Keras cells ------------------------------------------------------
@pytest.mark.parametrize("name", ["vanilla", "ugrnn", "gru", "lstm"])
def test_jacobians_equal_finite_differences(name):
    rng = np.random.default_rng(3)
    cell = get_cell(name)(5, n_networks=2, seed=3, recurrent_gain=1.5, dtype="float64")
    cell.build((3,))
    cell.bias.assign(rng.normal(size=cell.bias.shape))
    h = rng.uniform(-1, 1, (2, 4, cell.n_state))
    x = rng.normal(size=(2, 4, 3))
    jac, jac_x = compute_jacobians(cell, h, x)

    def differences(f, v, eps=1e-6):
        cols = []
        for k in range(v.shape[-1]):
            e = np.zeros_like(v)
            e[..., k] = eps
            cols.append((f(v + e) - f(v - e)) / (2 * eps))
        return np.stack(cols, axis=-1)

    step = lambda s, u: cell.transition(tf.constant(s), tf.constant(u)).numpy()  # noqa: E731
    np.testing.assert_allclose(jac, differences(lambda s: step(s, x), h), atol=1e-8)
    np.testing.assert_allclose(jac_x, differences(lambda u: step(h, u), x), atol=1e-8)


def keras_gru(weights, reset_after, dtype="float32"):
    cell = keras.layers.GRUCell(64, reset_after=reset_after, dtype=dtype)
    cell.build((None, 3))
    kernel = np.concatenate([weights[f"U_{g}"][0].T for g in "zrc"], 1)
    recurrent = np.concatenate([weights[f"W_{g}"][0].T for g in "zrc"], 1)
    bias = np.concatenate([weights[f"b_{g}"][0] for g in "zrc"])
    cell.set_weights([kernel, recurrent, np.stack([bias, 0 * bias]) if reset_after else bias])
    return cell


def test_keras_gru_reset_before_has_the_population_cells_fixed_points(trained):
    _, fps, _ = trained
    ours = fps.for_network(0)
    cell = keras_gru(fixture_weights(), reset_after=False)
    theirs = find_fixed_points(cell, np.zeros(3), ours.hstar, max_iters=0)
    assert len(theirs) == len(ours) and set(theirs.kind) == {"fixed"}
    idx, dist = match(theirs.hstar, ours.hstar)
    assert dist.max() < 1e-9 and sorted(idx) == list(range(len(ours)))
    np.testing.assert_allclose(theirs.jacobian, ours.jacobian[idx], atol=1e-9)
    np.testing.assert_array_equal(theirs.n_unstable, ours.n_unstable[idx])


def test_keras_gru_reset_after_fixed_points_are_roots(trained):
    _, _, states = trained
    weights = fixture_weights()
    starts = sample_states(states[0], 512, noise=0.5, rng=0)
    fps = find_fixed_points(keras_gru(weights, reset_after=True), np.zeros(3), starts)
    assert fps.metrics()["n_stable"].tolist() == [8]
    check = keras_gru({k: v.astype(np.float64) for k, v in weights.items()}, True, "float64")
    x = tf.zeros((len(fps), 3), tf.float64)
    residual = check(x, [tf.constant(fps.hstar)])[0].numpy() - fps.hstar
    assert np.all(0.5 * np.sum(residual ** 2, -1) < 1e-20)
    eps, i = 1e-6, int(np.flatnonzero(fps.n_unstable == 1)[0])
    e = eps * np.eye(64)
    h_plus, h_minus = fps.hstar[i] + e, fps.hstar[i] - e
    x64 = tf.zeros((64, 3), tf.float64)
    diff = (check(x64, [tf.constant(h_plus)])[0] - check(x64, [tf.constant(h_minus)])[0]).numpy()
    np.testing.assert_allclose(fps.jacobian[i], diff.T / (2 * eps), atol=1e-8)


def test_keras_simple_rnn_equals_population_vanilla():
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(2, 4)), 2 * rng.normal(size=(4, 4)), 0.3 * rng.normal(size=4)]
    theirs_cell = keras.layers.SimpleRNNCell(4)
    theirs_cell.build((None, 2))
    theirs_cell.set_weights(weights)
    ours_cell = get_cell("vanilla")(4)
    ours_cell.build((2,))
    ours_cell.set_weights([w[None] for w in weights])
    starts = np.random.default_rng(0).uniform(-1, 1, (128, 4))
    theirs = find_fixed_points(theirs_cell, [0.0, 0.0], starts)
    ours = find_fixed_points(ours_cell, [0.0, 0.0], starts)
    assert len(ours) == len(theirs) == 3 and set(ours.kind) == {"fixed"}
    idx, dist = match(theirs.hstar, ours.hstar)
    assert dist.max() < 1e-9
    np.testing.assert_allclose(theirs.eigvals, ours.eigvals[idx], atol=1e-9)


def test_keras_lstm_equals_population_lstm_in_c_h_order():
    rng = np.random.default_rng(9)
    weights = [rng.normal(size=(2, 16)), rng.normal(size=(4, 16)), rng.normal(size=16)]
    theirs_cell = keras.layers.LSTMCell(4)
    theirs_cell.build((None, 2))
    theirs_cell.set_weights(weights)
    ours_cell = get_cell("lstm")(4)
    ours_cell.build((2,))
    ours_cell.set_weights([w[None] for w in weights])
    starts = np.random.default_rng(0).uniform(-1, 1, (256, 8)) * [3, 3, 3, 3, 1, 1, 1, 1]
    theirs = find_fixed_points(theirs_cell, [0.0, 0.0], starts)
    ours = find_fixed_points(ours_cell, [0.0, 0.0], starts)
    assert len(ours) == len(theirs) == 3 and sorted(ours.n_unstable) == [0, 0, 1]
    idx, dist = match(theirs.hstar, ours.hstar)
    assert dist.max() < 1e-9
    np.testing.assert_allclose(theirs.jacobian, ours.jacobian[idx], atol=1e-9)
    c, h = theirs.hstar[:, :4], theirs.hstar[:, 4:]  # s = [c; h]: h is what the cell outputs
    out, (h_next, c_next) = theirs_cell(tf.zeros((3, 2)), [tf.constant(h, tf.float32),
                                                            tf.constant(c, tf.float32)])
    np.testing.assert_allclose(h_next.numpy(), h, atol=1e-5)
    np.testing.assert_allclose(c_next.numpy(), c, atol=1e-5)


# -- populations and results ---------------------------------------------------------
def test_population_in_one_call_equals_separate_calls(trained):
    pop, _, states = trained
    starts = sample_states(states, 256, noise=0.5, rng=1)
    together = find_fixed_points(pop.cell, np.zeros(3), starts)
    one = trained_population(members=(0,))
    weights = pop.get_weights_dict()
    for i in range(2):  # the same cell with new weights: the cached map must follow them
        one.set_weights_dict({k: v[i: i + 1] for k, v in weights.items()})
        alone = find_fixed_points(one.cell, np.zeros(3), starts[i])
        mine = together.for_network(i)
        assert len(mine) == len(alone) > 8
        idx, dist = match(alone.hstar, mine.hstar)
        assert dist.max() < 1e-9 and sorted(idx) == list(range(len(mine)))
        np.testing.assert_array_equal(alone.n_unstable, mine.n_unstable[idx])
        np.testing.assert_array_equal(alone.kind, mine.kind[idx])


def test_trained_flipflop_has_the_cube_of_fixed_points(trained):
    pop, fps, _ = trained
    m = fps.metrics()
    assert m["n_stable"].tolist() == [8, 8] and m["n_slow"].tolist() == [0, 0]
    assert np.all(fps.qstar < 1e-20) and set(fps.kind) == {"fixed"}
    for i in range(2):  # 8 corners, 12 edges, 6 faces, 1 centre (SPEC §2)
        assert np.bincount(fps.for_network(i).n_unstable).tolist() == [8, 12, 6, 1]
        stable = fps.for_network(i)[fps.for_network(i).is_stable]
        readout = pop.member(i).readout(tf.constant(stable.hstar[None], tf.float32)).numpy()[0]
        corners = {tuple(r) for r in np.sign(readout).astype(int)}
        assert len(corners) == 8 and np.all(np.abs(np.abs(readout) - 1) < 0.1)
    lam, r, left = fps.eigvals, fps.right_eigvecs, fps.left_eigvecs
    np.testing.assert_allclose(r @ (lam[..., None] * left), fps.jacobian, atol=1e-9)
    assert np.all(np.diff(np.abs(lam), axis=-1) <= 1e-12)
    np.testing.assert_array_equal(fps.n_unstable, np.sum(np.abs(lam) > 1, -1))


def test_long_autonomous_runs_end_at_found_stable_points(trained):
    pop, fps, states = trained
    ends = states[:, :24, -1]  # these 24 trials end on all 8 target patterns
    noisy = states[:, 24:32, -1] + 0.2 * np.random.default_rng(4).normal(size=(2, 8, 64))
    s0 = tf.constant(np.concatenate([ends, noisy], 1), tf.float32)
    x = tf.zeros(s0.shape[:2] + (3,))
    cell = pop.cell

    @tf.function(jit_compile=True)
    def run(s, n):
        def body(i, s):
            for _ in range(10):
                s = cell.transition(s, x)
            return i + 10, s
        return tf.while_loop(lambda i, s: i < n, body, (0, s))[1]

    final = run(s0, 100_000).numpy()
    assert np.abs(cell.transition(tf.constant(final), x).numpy() - final).max() < 1e-5
    for i in range(2):
        mine = fps.for_network(i)
        idx, dist = match(final[i].astype(np.float64), mine.hstar)
        assert dist.max() < 1e-3 and mine.is_stable[idx].all()
        assert set(idx) == set(np.flatnonzero(mine.is_stable))  # all 8 attractors reached


def test_results_index_summarize_and_round_trip(trained, tmp_path):
    _, fps, _ = trained
    assert set(fps.for_network(1).network) == {1} and len(fps.for_network(0)) == 27
    assert len(fps.fixed) == 54 and len(fps.slow) == 0 and len(fps[fps.is_stable]) == 16
    text = fps.summary()
    assert "network 1: 27 fixed (8 stable, 19 saddles), 0 slow" in text
    assert repr(fps).startswith("FixedPoints(n_points=54, n_networks=2, fixed=54, stable=16")
    fps.save(tmp_path / "fps.npz")
    back = FixedPoints.load(tmp_path / "fps.npz")
    for name in ("hstar", "h_init", "x_cond", "qstar", "n_iters", "kind", "jacobian", "eigvals",
                 "left_eigvecs", "is_stable", "network", "condition", "n_starts", "n_discarded"):
        np.testing.assert_array_equal(getattr(back, name), getattr(fps, name))
    assert back.n_networks == 2 and back.summary() == text


def test_population_helper_covers_every_condition_input():
    task = get_task("context")  # two condition inputs (one per context)
    pop = Population(ModelConfig("vanilla", "tanh", 8), task.n_inputs, task.n_outputs, [0, 1])
    fps = find_population_fixed_points(pop, task, n_starts=64, n_trials=8, noise=0.1)
    assert sorted(set(zip(fps.network, fps.condition))) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    np.testing.assert_array_equal(fps.x_cond, task.x_cond[fps.condition])
    assert np.all(fps.qstar < 1e-20) and fps.n_starts.tolist() == [128, 128]


def test_sample_states_shapes_and_determinism():
    states = np.random.default_rng(0).normal(size=(2, 5, 7, 3))
    a = sample_states(states, 10, rng=1)
    assert a.shape == (2, 10, 3) and a.dtype == np.float32
    assert all(np.isin(a[i], states[i].reshape(-1, 3).astype(np.float32)).all() for i in range(2))
    np.testing.assert_array_equal(a, sample_states(states, 10, rng=1))
    assert sample_states(states[0], 4, noise=0.1, rng=np.random.default_rng(2)).shape == (4, 3)


def test_plot_fixed_points(trained):
    _, fps, states = trained
    fig = plot_fixed_points(fps, states, network=1)
    ax = fig.axes[0]
    assert ax.get_zlabel() == "PC 3" and len(ax.collections) == 2  # stable and unstable
    assert len(ax.lines) > 19  # trajectories plus one line per unstable direction
    plt.close(fig)
    flat_fig, flat_ax = plt.subplots()
    with pytest.raises(TypeError, match="ax must be 3-D axes"):
        plot_fixed_points(fps, states, ax=flat_ax)
    plt.close(flat_fig)


# -- errors ------------------------------------------------------------------------
def test_errors_name_the_argument():
    starts = np.zeros((4, 2))
    with pytest.raises(TypeError, match="cell must be a population cell"):
        find_fixed_points(3, [0.0], starts)
    with pytest.raises(ValueError, match="h_init must have n_state=5"):
        find_fixed_points(_built("gru", 5, 1), [0.0, 0.0], starts)
    with pytest.raises(ValueError, match=r"h_init must have shape \[n_networks=2"):
        find_fixed_points(_built("vanilla", 2, 2), [0.0, 0.0], starts)
    with pytest.raises(ValueError, match="x_cond must have shape"):
        find_fixed_points(double_well, np.zeros((3, 1)), starts)
    with pytest.raises(ValueError, match="h_init must be finite"):
        find_fixed_points(double_well, [0.0], starts + np.nan)
    with pytest.raises(ValueError, match="tol_q must be > 0"):
        find_fixed_points(double_well, [0.0], starts, tol_q=-1.0)
    with pytest.raises(TypeError, match="max_iters must be an integer"):
        find_fixed_points(double_well, [0.0], starts, max_iters=1.5)
    with pytest.raises(ValueError, match="tol_slow must be >= tol_exact"):
        find_fixed_points(double_well, [0.0], starts, tol_slow=1e-30)
    with pytest.raises(ValueError, match=r"region must have shape \[n_networks=1, ..., n_state=2\]"):
        find_fixed_points(double_well, [0.0], starts, region=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="region must hold at least one state"):
        find_fixed_points(double_well, [0.0], starts, region=np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="must be built"):
        find_fixed_points(keras.layers.GRUCell(2), [0.0], starts)
    with pytest.raises(TypeError, match="must accept float64"):
        find_fixed_points(lambda h, x: h + tf.constant(1.0), [0.0], starts)
    with pytest.raises(ValueError, match="states must have shape"):
        sample_states(np.zeros((3, 2)), 2)
    with pytest.raises(TypeError, match="rng must be"):
        sample_states(np.zeros((1, 3, 2)), 2, rng="seed")


def _built(name, units, n_networks, n_inputs=2):
    cell = get_cell(name)(units, n_networks=n_networks)
    cell.build((n_inputs,))
    return cell


def test_no_warnings_on_a_clean_search():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        find_fixed_points(double_well, [0.0], np.random.default_rng(5).uniform(-1, 1, (16, 2)))
