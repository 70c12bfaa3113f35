from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from rnn_dyn.config import ModelConfig, RunConfig, TaskConfig, TrainConfig
from rnn_dyn.population import Population
from rnn_dyn.tasks import get_task
from rnn_dyn.training import _Batches, _cpu_threads, batch_splits, make_train_step, train_population

TASK = TaskConfig("flipflop", n_time=20, n_val=16)
MODEL = ModelConfig("gru", "tanh", 8)


def test_training_reduces_loss_and_is_reproducible():
    train = TrainConfig(n_networks=2, iterations=60, batch_size=16, log_every=20, seed=3)
    a = train_population(TASK, MODEL, train)
    b = train_population(TASK, MODEL, train)
    assert a.loss.shape == (4, 2) and list(a.loss_steps) == [0, 20, 40, 59]
    assert np.all(a.loss[-1] < a.loss[0])
    np.testing.assert_array_equal(a.val_loss, b.val_loss)
    assert a.zero_loss == pytest.approx(1.0)
    assert not a.diverged.any() and np.all(a.diverged_step == -1)


def test_member_trains_as_it_would_alone():
    train = TrainConfig(n_networks=3, iterations=15, batch_size=8, seed=(5, 6, 7), lr=(0.1, 0.05, 0.02))
    pop = train_population(TASK, MODEL, train)
    alone = train_population(TASK, MODEL, RunConfig(TASK, MODEL, train).member_config(1).train)
    np.testing.assert_allclose(pop.val_loss[1], alone.val_loss[0], rtol=1e-4)


def test_diverged_member_is_frozen_and_others_continue():
    # lr = 1e6 with no effective clipping: member 0 blows up, member 1 trains on.
    train = TrainConfig(n_networks=2, iterations=30, batch_size=8, log_every=5, lr=(1e6, 0.1), clip=(1e30, 1.0),
                        momentum=(0.99, 0.9), seed=(1, 2))
    model = ModelConfig("vanilla", "relu", 8)
    result = train_population(TASK, model, train)
    assert result.diverged.tolist() == [True, False]
    assert 0 <= result.diverged_step[0] < 30 and result.diverged_step[1] == -1
    assert np.isnan(result.val_loss[0]) and np.isfinite(result.val_loss[1])
    after = result.loss_steps >= result.diverged_step[0]
    assert np.isnan(result.loss[after, 0]).all() and np.isfinite(result.loss[:, 1]).all()
    alone = train_population(TASK, model, RunConfig(TASK, model, train).member_config(1).train)
    np.testing.assert_allclose(result.val_loss[1], alone.val_loss[0], rtol=1e-4)
    weights = result.population.get_weights_dict()
    assert all(np.isfinite(w[0]).all() for w in weights.values())


def test_untrained_members():
    result = train_population(TASK, MODEL, TrainConfig(n_networks=2, iterations=0))
    assert result.loss.shape == (0, 2) and np.all(np.isfinite(result.val_loss))


def test_config_errors():
    with pytest.raises(ValueError, match=r"l2 must have one value per network \(n_networks=2\); got 3"):
        TrainConfig(n_networks=2, l2=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match=r"l2 must be in \[0.0, inf\]; got -1"):
        TrainConfig(l2=-1)
    with pytest.raises(ValueError, match="iterations must be in"):
        TrainConfig(iterations=-5)
    with pytest.raises(ValueError, match=r"optimizer must be one of \['adam', 'sgd'\]"):
        TrainConfig(optimizer="rmsprop")
    cfg = RunConfig(TASK, MODEL, TrainConfig(n_networks=2, l2=(0.0, 0.1)))
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['units'\] in model"):
        RunConfig.from_dict({"model": {"units": 3}})


def test_split_batch_gives_the_same_step():
    """A population smaller than the cores splits each member's batch over
    them; the update is the whole batch's, up to float round-off."""
    if _cpu_threads() < 2:
        pytest.skip("one thread: nothing to split over")
    assert batch_splits(1, 16) == [(0, 8), (8, 16)] and batch_splits(1, 12) == [(0, 12)]
    train = TrainConfig(n_networks=1, batch_size=16, l2=1e-3, seed=4)
    data = _Batches(get_task(TASK), [4], 16)
    pops, steps = [], []
    for jit in (True, False):  # XLA in two halves; plain TensorFlow in one piece
        pops.append(Population(MODEL, 3, 3, [4]))
        steps.append(make_train_step(pops[-1], replace(train, jit_compile=jit))[0])
    try:
        for k in range(3):
            x, y = data()
            errs = [s(x, y, tf.constant(k, tf.int64)).numpy() for s in steps]
            np.testing.assert_allclose(errs[0], errs[1], rtol=1e-5)
    finally:
        data.close()
    for a, b in zip(*(p.variables_list for p in pops)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
