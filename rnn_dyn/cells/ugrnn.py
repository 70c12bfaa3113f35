"""Update-gate RNN (Collins et al. 2017)."""
import tensorflow as tf

from rnn_dyn.cells.base import PopulationCell, sigmoid


class UGRNNCell(PopulationCell):
    """``g = sigma(W_g h + U_g x + b_g)``, ``c = phi(W_c h + U_c x + b_c)``,
    ``h' = g * h + (1 - g) * c``."""

    gates = ("g", "c")

    def step_cache(self, xu, states, W):
        (h,) = states
        g, c = tf.split(xu + tf.matmul(h, W), 2, axis=-1)
        g, c = sigmoid(g), self.phi(c)
        return [g * h + (1.0 - g) * c], (g, c)

    def step_back(self, d_new, states, cache, W_T):
        (h,), (g, c), (dh_new,) = states, cache, d_new
        d_xu = tf.concat([dh_new * (h - c) * g * (1.0 - g),
                          dh_new * (1.0 - g) * self.dphi(c)], axis=-1)
        return [dh_new * g + tf.matmul(d_xu, W_T)], [(h, d_xu)]
