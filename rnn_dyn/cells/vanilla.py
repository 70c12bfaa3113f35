"""Vanilla RNN: ``h' = phi(W h + U x + b)``."""
import tensorflow as tf

from rnn_dyn.cells.base import PopulationCell


class VanillaCell(PopulationCell):
    """``h' = phi(W h + U x + b)``; equals ``keras.layers.SimpleRNNCell`` (tanh)."""

    gates = ("",)

    def step_cache(self, xu, states, W):
        (h,) = states
        h_new = self.phi(xu + tf.matmul(h, W))
        return [h_new], (h_new,)

    def step_back(self, d_new, states, cache, W_T):
        (h,), (h_new,) = states, cache
        d_xu = d_new[0] * self.dphi(h_new)
        return [tf.matmul(d_xu, W_T)], [(h, d_xu)]
