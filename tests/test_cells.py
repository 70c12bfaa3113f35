import keras
import numpy as np
import pytest
import tensorflow as tf

from rnn_dyn.cells import get_cell
from rnn_dyn.config import CELLS

X = np.random.default_rng(0).standard_normal((5, 12, 3)).astype(np.float32)


@pytest.mark.parametrize("name, keras_cell", [
    ("gru", lambda: keras.layers.GRUCell(8, reset_after=False)),
    ("lstm", lambda: keras.layers.LSTMCell(8)),
    ("vanilla", lambda: keras.layers.SimpleRNNCell(8)),
])
def test_equals_keras_cell(name, keras_cell):
    ours = get_cell(name)(8, "tanh", n_networks=1, seed=3)
    y_ours = keras.layers.RNN(ours, return_sequences=True)(X)
    theirs = keras_cell()
    layer = keras.layers.RNN(theirs, return_sequences=True)
    layer(X)
    theirs.kernel.assign(ours.kernel[0])
    theirs.recurrent_kernel.assign(ours.recurrent_kernel[0])
    theirs.bias.assign(ours.bias[0])
    np.testing.assert_allclose(np.asarray(y_ours), np.asarray(layer(X)), atol=1e-6)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_contract(name, activation):
    cls = get_cell(name)
    cell = cls(6, activation, n_networks=4, seed=7)
    cell.build((3,))
    g = len(cls.gates)
    assert cell.kernel.shape == (4, 3, g * 6)
    assert cell.recurrent_kernel.shape == (4, 6, g * 6)
    assert cell.n_state == (12 if name == "lstm" else 6)
    s = tf.random.normal([4, 5, cell.n_state])
    x = tf.random.normal([4, 5, 3])
    assert cell.transition(s, x).shape == (4, 5, cell.n_state)
    # round trip of config and of weights under SPEC's names
    clone = cls.from_config(cell.get_config())
    clone.build((3,))
    np.testing.assert_array_equal(clone.kernel, cell.kernel)
    named = cell.named_weights()
    assert named[f"W_{cls.gates[0]}" if cls.gates[0] else "W"].shape == (4, 6, 6)
    clone.set_named_weights({k: v * 2 for k, v in named.items()})
    np.testing.assert_allclose(clone.recurrent_kernel, 2 * np.asarray(cell.recurrent_kernel))
    # a member's weights depend on its own seed only
    alone = cls(6, activation, n_networks=1, seed=[9])
    alone.build((3,))
    np.testing.assert_array_equal(alone.kernel[0], cell.kernel[2])


def test_golden_vanilla_and_gru_by_hand():
    vanilla = get_cell("vanilla")(2, "relu")
    vanilla.build((1,))
    vanilla.set_named_weights({"W": np.array([[[0.5, -1.0], [2.0, 0.0]]]),
                               "U": np.array([[[1.0], [-1.0]]]), "b": np.array([[0.1, 0.2]])})
    h = np.array([[[1.0, 2.0]]], np.float32)
    x = np.array([[[3.0]]], np.float32)
    # W h + U x + b = [0.5 - 2 + 3 + 0.1, 2 - 3 + 0.2] = [1.6, -0.8]; relu -> [1.6, 0]
    np.testing.assert_allclose(vanilla.transition(h, x), [[[1.6, 0.0]]], atol=1e-6)
    gru = get_cell("gru")(1, "tanh")
    gru.build((1,))
    gru.set_named_weights({k: np.full(s, v) for k, s, v in [
        ("W_z", (1, 1, 1), 0.0), ("W_r", (1, 1, 1), 0.0), ("W_c", (1, 1, 1), 1.0),
        ("U_z", (1, 1, 1), 0.0), ("U_r", (1, 1, 1), 0.0), ("U_c", (1, 1, 1), 1.0),
        ("b_z", (1, 1), 0.0), ("b_r", (1, 1), 0.0), ("b_c", (1, 1), 0.0)]})
    # z = r = 1/2; c = tanh(0.5 * 1 + 1) ; h' = 0.5 * 1 + 0.5 * c
    out = gru.transition(np.ones((1, 1, 1), np.float32), np.ones((1, 1, 1), np.float32))
    np.testing.assert_allclose(out, 0.5 + 0.5 * np.tanh(1.5), atol=1e-6)


def test_lstm_state_is_c_then_h():
    cell = get_cell("lstm")(3, "tanh", forget_bias=1.0)
    cell.build((2,))
    assert np.all(np.asarray(cell.bias)[0, 3:6] == 1.0) and np.all(np.asarray(cell.bias)[0, :3] == 0)
    s = tf.random.normal([1, 4, 6])
    h, c = cell.unpack(s)
    np.testing.assert_array_equal(c, s[..., :3])
    np.testing.assert_array_equal(cell.hidden(s), h)
    np.testing.assert_array_equal(cell.pack([h, c]), s)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"cell must be one of \['gru', 'lstm', 'ugrnn', 'vanilla'\]; got 'rnn'"):
        get_cell("rnn")
    with pytest.raises(ValueError, match=r"activation must be one of \['relu', 'tanh'\]; got 'sigmoid'"):
        get_cell("gru")(4, "sigmoid")
    with pytest.raises(ValueError, match="units must be > 0"):
        get_cell("gru")(0)
