"""Fixed points of networks we did not train, found by a bare call, against their float64 truth.

``fixtures/foreign_*_flipflop_64.npz`` (``fixtures/make_foreign_flipflop.py``):
Keras-trained networks with optimisers and flip-flop variants other than ours,
saved as PyTorch state dicts (biases split unevenly between ``bias_ih`` and
``bias_hh``) or as Keras weights.  Their true fixed points at x = 0,
``fixtures/foreign_flipflop_64_truth.npz``, were established without rnn_dyn
or TensorFlow (``fixtures/make_foreign_flipflop_truth.py``: PyTorch's and
Keras' equations in float64 numpy, forward iteration, Levenberg–Marquardt +
Newton from thousands of starts).
"""
import importlib.util
import pathlib
import warnings

import keras
import numpy as np
import pytest

import rnn_dyn
from rnn_dyn.fixed_points import find_fixed_points, sample_states

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def fixture_module(name):
    spec = importlib.util.spec_from_file_location(name, FIXTURES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE, TRUTH = fixture_module("make_foreign_flipflop"), fixture_module("make_foreign_flipflop_truth")


def network(name):
    """``(cell, states)``: the network as a user holds it, and its trajectories on 128 trials."""
    options = MAKE.NETWORKS[name]
    inputs, _ = MAKE.flipflop(np.random.default_rng(0), 128, options["p_flip"], options["noise"])
    if name.startswith("torch"):
        net = rnn_dyn.from_torch(MAKE.fixture_path(name), options["cell"])
        return net, net.run(inputs)[0].numpy()[0]
    with np.load(MAKE.fixture_path(name)) as data:
        weights = [data[k] for k in ("kernel", "recurrent_kernel", "bias")]
    cell = keras.layers.GRUCell(64, reset_after=True)
    cell.build((None, 3))
    cell.set_weights(weights)
    return cell, keras.layers.RNN(cell, return_sequences=True)(inputs).numpy()


def check_against_truth(name, min_found=None):
    cell, states = network(name)
    starts = sample_states(states, 1024, noise=0.5, rng=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fps = find_fixed_points(cell, np.zeros(3), starts)  # the bare call: default region
    with np.load(FIXTURES / "foreign_flipflop_64_truth.npz") as data:
        hstar, n_unstable = data[f"{name}/hstar"], data[f"{name}/n_unstable"]
    fixed = fps.fixed
    dist = np.linalg.norm(hstar[:, None] - fixed.hstar[None], axis=-1)
    found = dist.min(1) < 1e-6
    assert found.sum() >= (len(hstar) if min_found is None else min_found)
    np.testing.assert_array_equal(fixed.n_unstable[dist.argmin(1)][found], n_unstable[found])
    assert np.all(dist.min(0) < 1e-6)  # no false 'fixed' label ...
    numpy_net, _ = TRUTH.load(name)
    _, q = TRUTH.residual(numpy_net, fixed.hstar, np.zeros(3))
    assert np.all(q <= 1e-18)  # ... each a root of the original float64 equations
    low, high = starts.min(0), starts.max(0)
    margin = 0.05 * (high - low)
    assert np.all((fps.slow.hstar >= low - margin) & (fps.slow.hstar <= high + margin))
    return fps


def test_torch_gru_one_stable_point_and_its_slow_regions():
    """A PyTorch GRU that keeps its memories in slow regions around a single attractor."""
    fps = check_against_truth("torch_gru")
    assert len(fps.fixed) == 1 and len(fps.slow) <= 128  # no flood: at most max_slow polished


@pytest.mark.slow
def test_keras_gru_with_25_fixed_points():
    """9 stable points, 16 saddles; 23 are found (two saddles with one unstable direction
    are missed)."""
    check_against_truth("keras_gru", min_found=23)
