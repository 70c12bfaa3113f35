"""A stock Keras GRU whose memories lie on slow manifolds: the defaults find every true fixed point.

``fixtures/keras_gru_flipflop_64.npz``: ``keras.layers.GRUCell(64,
reset_after=True)`` trained with Adam on the flip-flop without the t = 0 pulse
(``fixtures/make_keras_gru_flipflop.py``).  Its true fixed points at x = 0,
``fixtures/keras_gru_flipflop_64_truth.npz`` (3 stable, 3 saddles with one
unstable direction, 1 with two), were established without rnn_dyn or
TensorFlow by ``fixtures/make_keras_gru_flipflop_truth.py``: the Keras cell's
equations in float64 numpy, long forward iteration and Levenberg–Marquardt +
Newton from ~3,400 starts, every root checked in float64.
"""
import importlib.util
import pathlib
import warnings

import keras
import numpy as np
import pytest

from rnn_dyn.fixed_points import find_fixed_points, sample_states

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
WEIGHTS = ("kernel", "recurrent_kernel", "bias")


def truth_module():
    spec = importlib.util.spec_from_file_location(
        "make_truth", FIXTURES / "make_keras_gru_flipflop_truth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def keras_cell():
    with np.load(FIXTURES / "keras_gru_flipflop_64.npz") as data:
        weights = [data[k] for k in WEIGHTS]
    cell = keras.layers.GRUCell(64, reset_after=True)
    cell.build((None, 3))
    cell.set_weights(weights)
    return cell, weights


def test_numpy_equations_of_the_truth_equal_the_keras_cell():
    _, weights = keras_cell()
    err = truth_module().check_keras(weights, np.random.default_rng(0))
    assert err < 1e-6


def test_truth_is_a_set_of_float64_roots_with_saddles():
    make = truth_module()
    with np.load(FIXTURES / "keras_gru_flipflop_64_truth.npz") as data:
        truth = {k: data[k] for k in data.files}
    w64 = make.load_weights()
    _, q = make.residual(truth["hstar"], np.zeros(3), w64)
    assert len(q) == 7 and np.all(q <= 1e-24)
    assert np.bincount(truth["n_unstable"]).tolist() == [3, 3, 1]


def trajectories(cell):
    rng = np.random.default_rng(0)
    pulse = rng.random((128, 100, 3)) < 0.05  # no pulse at t = 0: the states start at 0
    inputs = (pulse * np.where(rng.random(pulse.shape) < 0.5, -1.0, 1.0)).astype(np.float32)
    return keras.layers.RNN(cell, return_sequences=True)(inputs).numpy()


def test_defaults_find_every_true_fixed_point_with_its_stability():
    cell, _ = keras_cell()
    with np.load(FIXTURES / "keras_gru_flipflop_64_truth.npz") as data:
        hstar, n_unstable = data["hstar"], data["n_unstable"]
    states = trajectories(cell)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every polish ends: at a root, a slow point or an outlier
        fps = find_fixed_points(cell, np.zeros(3), sample_states(states, 1024, noise=0.5, rng=1),
                                region=states)
    fixed = fps.fixed
    assert np.all(fixed.qstar <= 1e-20)
    dist = np.linalg.norm(hstar[:, None] - fixed.hstar[None], axis=-1)
    assert np.all(dist.min(1) < 1e-6)  # every true point found ...
    np.testing.assert_array_equal(fixed.n_unstable[dist.argmin(1)], n_unstable)  # ... its stability
    assert np.all(dist.min(0) < 1e-6) and len(fixed) == len(hstar)  # no false 'fixed' label

    # The slow points lie where the trajectories go, on a few slow manifolds (issue 14 measured
    # 5 slow points on three 3-D manifolds, tol_eig 0.05); none is a search that strayed out.
    flat = states.reshape(-1, 64)
    low, high = flat.min(0), flat.max(0)
    margin = 0.05 * (high - low)
    assert np.all((fps.hstar >= low - margin) & (fps.hstar <= high + margin))
    assert len(fps.slow) <= 20 and len(fps.slow_manifolds()) <= 4


def test_without_a_region_searches_stray_where_the_update_gates_saturate():
    cell, _ = keras_cell()
    states = trajectories(cell)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fps = find_fixed_points(cell, np.zeros(3), sample_states(states, 1024, noise=0.5, rng=1),
                                region=None)
    flat = states.reshape(-1, 64)
    outside = np.any((fps.slow.hstar < flat.min(0)) | (fps.slow.hstar > flat.max(0)), -1)
    assert outside.sum() >= 50  # many slow points that no trajectory comes near ...
    assert len(fps.fixed) == 7  # ... beside the same 7 fixed points


def test_default_region_is_the_starts_range_and_none_keeps_every_slow_point():
    cell, _ = keras_cell()
    starts = sample_states(trajectories(cell), 1024, rng=1)  # on the trajectories
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        everything = find_fixed_points(cell, np.zeros(3), starts, region=None)
        default = find_fixed_points(cell, np.zeros(3), starts)
    low, high = starts.min(0), starts.max(0)
    margin = 0.05 * (high - low)
    beyond = lambda h: np.any((h < low - margin) | (h > high + margin), -1)  # noqa: E731
    assert beyond(everything.slow.hstar).sum() >= 40  # region=None: strays beyond the starts ...
    assert not beyond(default.slow.hstar).any()  # ... which the default drops
    assert len(default.slow) <= 30 and len(default.fixed) == len(everything.fixed) == 7
    with pytest.raises(ValueError, match="region must be an array of states, 'starts' or None"):
        find_fixed_points(cell, np.zeros(3), starts, region="trajectories")
