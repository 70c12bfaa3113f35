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
