import numpy as np
import pytest

from rnn_dyn.config import TaskConfig
from rnn_dyn.tasks import get_task


@pytest.mark.parametrize("name, n_in, n_out", [("flipflop", 3, 3), ("sine", 1, 1), ("context", 4, 1)])
def test_contract(name, n_in, n_out):
    task = get_task(name)
    trials = task.sample(np.random.default_rng(0), 5)
    assert trials["inputs"].shape == (5, task.n_time, n_in)
    assert trials["targets"].shape == (5, task.n_time, n_out)
    assert trials["inputs"].dtype == np.float32
    assert task.x_cond.shape[1] == n_in
    again = task.sample(np.random.default_rng(0), 5)
    np.testing.assert_array_equal(trials["inputs"], again["inputs"])
    np.testing.assert_array_equal(task.probe_set()["inputs"], task.probe_set()["inputs"])
    assert not np.array_equal(task.probe_set()["inputs"], task.validation_set()["inputs"][: task.cfg.n_probe])


def test_flipflop_targets_follow_last_pulse():
    task = get_task(TaskConfig("flipflop", n_time=200))
    trials = task.sample(np.random.default_rng(1), 20)
    x, y = trials["inputs"], trials["targets"]
    assert np.all(x[:, 0] != 0) and set(np.unique(y)) == {-1.0, 1.0}
    for b in range(3):
        for k in range(3):
            last = 0.0
            for t in range(200):
                last = x[b, t, k] if x[b, t, k] != 0 else last
                assert y[b, t, k] == last
    rate = np.mean(x[:, 1:] != 0)
    assert abs(rate - 0.05) < 0.01


def test_sine_targets():
    task = get_task("sine")
    assert task.n_time == 500 and task.x_cond.shape == (51, 1)
    trials = task.trials_for([0.0, 1.0])
    t = np.arange(500)
    np.testing.assert_allclose(trials["targets"][0, :, 0], np.sin(2 * np.pi * 0.01 * t), atol=1e-6)
    np.testing.assert_allclose(trials["targets"][1, :, 0], np.sin(2 * np.pi * 0.05 * t), atol=1e-6)
    assert np.all(trials["inputs"][1] == 1.0)


def test_context_targets_integrate_cued_stream():
    task = get_task("context")
    trials = task.sample(np.random.default_rng(2), 10)
    x, y, c = trials["inputs"], trials["targets"], trials["context"]
    cue = x[:, :, 2:]
    assert np.all(cue.sum(-1) == 1) and np.all(cue[np.arange(10), :, c] == 1)
    expected = np.cumsum(x[np.arange(10), :, c], axis=1) / 100
    np.testing.assert_allclose(y[:, :, 0], expected, atol=1e-5)
    np.testing.assert_array_equal(task.x_cond, [[0, 0, 1, 0], [0, 0, 0, 1]])


def test_bad_input():
    with pytest.raises(ValueError, match=r"task must be one of \['context', 'flipflop', 'sine'\]; got 'foo'"):
        get_task("foo")
    with pytest.raises(ValueError, match="n_time must be > 0"):
        TaskConfig("sine", n_time=0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        get_task("sine").sample(0, 3)


def test_context_structured_probes():
    task = get_task(TaskConfig("context", n_time=30))
    probes = task.structured_probes()
    x, y = probes["inputs"], probes["targets"]
    assert x.shape == (22, 30, 4) and y.shape == (22, 30, 1) and x.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(probes["context"], [0] * 11 + [1] * 11)
    np.testing.assert_allclose(probes["level"], np.tile(np.linspace(-1, 1, 11), 2))
    assert 0.0 in probes["level"] and probes["level"].min() == -1 and probes["level"].max() == 1
    np.testing.assert_array_equal(x, x[:, :1].repeat(30, axis=1))  # noise-free: constant over time
    rows = np.arange(22)
    np.testing.assert_allclose(x[rows, 0, probes["context"]], probes["level"])  # the relevant stream
    np.testing.assert_array_equal(x[rows, 0, 1 - probes["context"]], 0)  # the irrelevant one
    np.testing.assert_array_equal(x[:, 0, 2:], np.eye(2)[probes["context"]])  # one-hot context on
    t = np.arange(1, 31) / 30
    np.testing.assert_allclose(y[:, :, 0], probes["level"][:, None] * t[None, :], atol=1e-6)
    three = get_task(TaskConfig("context", n_contexts=3, n_probe_levels=5)).structured_probes()
    assert three["inputs"].shape == (15, 100, 6) and sorted(set(three["context"])) == [0, 1, 2]
    with pytest.raises(ValueError, match="n_probe_levels must be > 0"):
        TaskConfig("context", n_probe_levels=0)


def test_context_trials_are_the_seeded_draws():
    """The random trials are the generator's draws in order: contexts, means, then the noise."""
    task = get_task(TaskConfig("context", n_time=20))
    trials = task.sample(np.random.default_rng(3), 6)
    rng = np.random.default_rng(3)
    context, mu = rng.integers(2, size=6), rng.uniform(-1, 1, size=(6, 2))
    streams = mu[:, None, :] + rng.standard_normal((6, 20, 2))
    np.testing.assert_array_equal(trials["context"], context)
    np.testing.assert_allclose(trials["inputs"][:, :, :2], streams, rtol=1e-6)


def test_sine_probes_are_the_cue_grid():
    task = get_task(TaskConfig("sine", n_time=40, n_grid=7))
    probes = task.probe_set()
    assert probes["inputs"].shape == (7, 40, 1)
    np.testing.assert_allclose(probes["u"], np.linspace(0, 1, 7))
    np.testing.assert_allclose(probes["inputs"][:, :, 0], np.linspace(0, 1, 7)[:, None].repeat(40, axis=1))
    np.testing.assert_allclose(probes["targets"], task.trials_for(task.grid)["targets"])
