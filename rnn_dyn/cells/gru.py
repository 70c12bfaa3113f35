"""Gated recurrent unit (Cho et al. 2014), reset applied before the recurrent matmul."""
import tensorflow as tf

from rnn_dyn.cells.base import PopulationCell, sigmoid


class GRUCell(PopulationCell):
    """``z, r = sigma(W h + U x + b)``, ``c = phi(W_c (r * h) + U_c x + b_c)``,
    ``h' = z * h + (1 - z) * c``; equals ``keras.layers.GRUCell(reset_after=False)``."""

    gates = ("z", "r", "c")

    def split_recurrent(self, W):
        """``(W_zr, W_c)``: the reset gate acts between the two products."""
        return W[..., : 2 * self.units], W[..., 2 * self.units:]

    def step_cache(self, xu, states, W):
        (h,), (W_zr, W_c) = states, W
        u = self.units
        zr = sigmoid(xu[..., : 2 * u] + tf.matmul(h, W_zr))
        z, r = zr[..., :u], zr[..., u:]
        c = self.phi(xu[..., 2 * u:] + tf.matmul(r * h, W_c))
        return [z * h + (1.0 - z) * c], (z, r, c)

    def step_back(self, d_new, states, cache, W_T):
        (h,), (z, r, c), (dh_new,), (W_zr_T, W_c_T) = states, cache, d_new, W_T
        d_c = dh_new * (1.0 - z) * self.dphi(c)
        d_rh = tf.matmul(d_c, W_c_T)
        d_zr = tf.concat([dh_new * (h - c) * z * (1.0 - z), d_rh * h * r * (1.0 - r)], axis=-1)
        d_h = dh_new * z + d_rh * r + tf.matmul(d_zr, W_zr_T)
        return [d_h], [(h, d_zr), (r * h, d_c)]
