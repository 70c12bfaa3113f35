from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from rnn_dyn.config import CELLS, ModelConfig, TrainConfig
from rnn_dyn.population import Population
from rnn_dyn.training import make_train_step

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 4, 15, 3)).astype(np.float32)
Y = RNG.standard_normal((3, 4, 15, 2)).astype(np.float32)


@pytest.mark.parametrize("cell", CELLS)
def test_population_of_n_equals_n_of_one(cell):
    model = ModelConfig(cell=cell, activation="tanh", n_units=8)
    pop = Population(model, 3, 2, [0, 1, 2])
    singles = [Population(model, 3, 2, [s]) for s in (0, 1, 2)]
    states, outputs = pop.run(X)
    assert states.shape == (3, 4, 15, pop.cell.n_state) and outputs.shape == (3, 4, 15, 2)
    for i, one in enumerate(singles):
        s1, y1 = one.run(X[i: i + 1])
        np.testing.assert_allclose(states[i: i + 1], s1, atol=1e-6)
        np.testing.assert_allclose(outputs[i: i + 1], y1, atol=1e-6)
    # ... and after training steps, each member with its own settings
    train = TrainConfig(n_networks=3, lr=(0.1, 0.05, 0.2), clip=(1.0, 0.5, 2.0), l2=(0.0, 1e-3, 1e-2),
                        momentum=(0.9, 0.5, 0.0))
    step, _, _ = make_train_step(pop, train)
    single_steps = [make_train_step(one, replace(train, n_networks=1, **train.member(i)))[0]
                    for i, one in enumerate(singles)]
    for k in range(3):
        step(X, Y, tf.constant(k, tf.int64))
        for i, s in enumerate(single_steps):
            s(X[i: i + 1], Y[i: i + 1], tf.constant(k, tf.int64))
    for i, one in enumerate(singles):
        for a, b in zip(pop.variables_list, one.variables_list):
            np.testing.assert_allclose(np.asarray(a)[i: i + 1], b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_hand_written_bptt_equals_autodiff(cell, activation):
    pop = Population(ModelConfig(cell=cell, activation=activation, n_units=6), 3, 2, [4, 5, 6])
    grads = []
    weights = tf.constant(np.linspace(0.5, 2.0, 15)[:, None], tf.float32)
    for outputs_of in (lambda x: pop.run(x)[1], pop.outputs):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(outputs_of(X) - Y) * weights)
        grads.append(tape.gradient(loss, pop.variables_list))
    np.testing.assert_allclose(pop.outputs(X), pop.run(X)[1], atol=1e-6)
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * float(tf.reduce_max(tf.abs(a))))


def test_member_and_weights_round_trip():
    pop = Population(ModelConfig(cell="lstm", n_units=5), 3, 2, [0, 1])
    w = pop.get_weights_dict()
    assert set(w) == {f"{m}_{g}" for m in "WUb" for g in "ifgo"} | {"W_out", "b_out"}
    assert w["W_out"].shape == (2, 2, 5) and w["W_i"].shape == (2, 5, 5) and w["U_i"].shape == (2, 5, 3)
    one = pop.member(1)
    np.testing.assert_allclose(one.run(X[1:2])[1], pop.run(X[:2])[1][1:2], atol=1e-6)
