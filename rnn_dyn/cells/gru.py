"""Gated recurrent unit (Cho et al. 2014), reset before the recurrent matmul or after it.

The registered ``gru`` (what populations train) applies the reset gate to the
state before the recurrent product.  ``GRUCell(..., reset_after=True)`` applies
it after the product and its own bias, as PyTorch's ``nn.GRU`` and Keras'
``GRU(reset_after=True)`` do; it exists to analyse networks trained there
(:mod:`rnn_dyn.importers`), so it is a constructor argument, not a
``ModelConfig`` field, and it has a forward step but no hand-written
backward pass (populations of it cannot be trained with
:meth:`Population.outputs`; their Jacobians come from autodiff).
"""
import numpy as np
import tensorflow as tf

from rnn_dyn.cells.base import PopulationCell, sigmoid


class GRUCell(PopulationCell):
    """``z, r = sigma(W h + U x + b)``, ``c = phi(W_c (r * h) + U_c x + b_c)``,
    ``h' = z * h + (1 - z) * c``; equals ``keras.layers.GRUCell(reset_after=False)``.

    With ``reset_after=True``: ``c = phi(U_c x + b_c + r * (W_c h + b_hc))``,
    with one more weight ``recurrent_bias [n_networks, n_units]`` (``b_hc`` in
    :meth:`named_weights`); equals ``keras.layers.GRUCell(reset_after=True)``
    and PyTorch's ``nn.GRU`` (whose ``b_hz``, ``b_hr`` fold into ``b_z``, ``b_r``).

    Parameters
    ----------
    units, activation, **kwargs
        As :class:`~rnn_dyn.cells.base.PopulationCell`.
    reset_after : bool, default False
        Apply the reset gate after the recurrent product (keyword only).
    """

    gates = ("z", "r", "c")

    def __init__(self, units, activation="tanh", *args, reset_after=False, **kwargs):
        super().__init__(units, activation, *args, **kwargs)
        if not isinstance(reset_after, (bool, np.bool_)):
            raise TypeError(f"reset_after must be a bool; got {reset_after!r}.")
        self.reset_after = bool(reset_after)

    def build(self, input_shape):
        super().build(input_shape)
        if self.reset_after:
            self.recurrent_bias = self.add_weight(
                name="recurrent_bias", shape=(self.n_networks, self.units), initializer="zeros")

    def named_weights(self) -> dict:
        out = super().named_weights()
        if self.reset_after:
            out["b_hc"] = np.asarray(self.recurrent_bias)
        return out

    def set_named_weights(self, named: dict):
        super().set_named_weights(named)
        if self.reset_after:
            self.recurrent_bias.assign(named["b_hc"])

    def split_recurrent(self, W):
        """``(W_zr, W_c)``: the reset gate acts between the two products
        (``(W_zr, W_c, b_hc)`` with ``reset_after``)."""
        u = self.units
        if self.reset_after:
            return W[..., : 2 * u], W[..., 2 * u:], self.recurrent_bias[:, None, :]
        return W[..., : 2 * u], W[..., 2 * u:]

    def step_cache(self, xu, states, W):
        (h,), u = states, self.units
        zr = sigmoid(xu[..., : 2 * u] + tf.matmul(h, W[0]))
        z, r = zr[..., :u], zr[..., u:]
        if self.reset_after:
            c = self.phi(xu[..., 2 * u:] + r * (tf.matmul(h, W[1]) + W[2]))
        else:
            c = self.phi(xu[..., 2 * u:] + tf.matmul(r * h, W[1]))
        return [z * h + (1.0 - z) * c], (z, r, c)

    def step_back(self, d_new, states, cache, W_T):
        if self.reset_after:
            raise NotImplementedError(
                "GRUCell(reset_after=True) has no hand-written backward pass: it is for "
                "analysing imported networks (rnn_dyn.from_torch, rnn_dyn.from_keras), not "
                "for training with Population.outputs; differentiate Population.run instead.")
        (h,), (z, r, c), (dh_new,), (W_zr_T, W_c_T) = states, cache, d_new, W_T
        d_c = dh_new * (1.0 - z) * self.dphi(c)
        d_rh = tf.matmul(d_c, W_c_T)
        d_zr = tf.concat([dh_new * (h - c) * z * (1.0 - z), d_rh * h * r * (1.0 - r)], axis=-1)
        d_h = dh_new * z + d_rh * r + tf.matmul(d_zr, W_zr_T)
        return [d_h], [(h, d_zr), (r * h, d_c)]

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}
