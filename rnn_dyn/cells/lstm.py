"""Long short-term memory (Hochreiter & Schmidhuber 1997)."""
import numpy as np
import tensorflow as tf

from rnn_dyn.cells.base import PopulationCell, sigmoid


class LSTMCell(PopulationCell):
    """``i, f, o = sigma(.)``, ``g = phi(.)``, ``c' = f * c + i * g``, ``h' = o * phi(c')``.

    States are ``[h, c]`` as in Keras; the dynamical state is ``s = [c; h]``
    (``2 * units``).  Equals ``keras.layers.LSTMCell`` (tanh).
    """

    gates = ("i", "f", "g", "o")
    n_state_parts = 2

    def initial_bias(self):
        b = np.zeros(4 * self.units)
        b[self.units: 2 * self.units] = self.forget_bias
        return b

    def step_cache(self, xu, states, W):
        h, c = states
        i, f, g, o = tf.split(xu + tf.matmul(h, W), 4, axis=-1)
        i, f, g, o = sigmoid(i), sigmoid(f), self.phi(g), sigmoid(o)
        c_new = f * c + i * g
        phi_c = self.phi(c_new)
        return [o * phi_c, c_new], (i, f, g, o, phi_c)

    def step_back(self, d_new, states, cache, W_T):
        (h, c), (i, f, g, o, phi_c), (dh_new, dc_new) = states, cache, d_new
        dc = dc_new + dh_new * o * self.dphi(phi_c)
        d_xu = tf.concat([dc * g * i * (1.0 - i), dc * c * f * (1.0 - f),
                          dc * i * self.dphi(g), dh_new * phi_c * o * (1.0 - o)], axis=-1)
        return [tf.matmul(d_xu, W_T), dc * f], [(h, d_xu)]

    def pack(self, states):
        h, c = states
        return tf.concat([c, h], axis=-1)

    def unpack(self, s):
        c, h = tf.split(s, 2, axis=-1)
        return [h, c]

    def hidden(self, s):
        return s[..., self.units:]
