"""A population of networks: a population cell plus a linear readout, run over time.

``Population.run(inputs)`` takes ``inputs [n_networks, n_trials, n_time,
n_inputs]`` (or ``[n_trials, n_time, n_inputs]``, shared by every member) and
returns the dynamical states ``[n_networks, n_trials, n_time, n_state]`` and
the outputs ``y = W_out h + b_out``, ``[n_networks, n_trials, n_time,
n_outputs]``.  The input projection is one matrix product before the loop and
the readout one after it, so the loop over time holds only the recurrent step.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rnn_dyn.cells import get_cell
from rnn_dyn.cells.base import initial_matrix
from rnn_dyn.config import ModelConfig


class Population(keras.layers.Layer):
    """``n_networks`` networks of one architecture, each with its own weights.

    Parameters
    ----------
    model : ModelConfig
        Architecture shared by all members.
    n_inputs, n_outputs : int
        Input and readout sizes (the task's ``M`` and ``K``).
    seeds : sequence of int
        One seed per member; member ``i``'s initial weights depend on
        ``seeds[i]`` alone.
    """

    def __init__(self, model: ModelConfig, n_inputs: int, n_outputs: int, seeds, **kwargs):
        super().__init__(**kwargs)
        self.model_cfg = model
        self.seeds = [int(s) for s in seeds]
        self.n_networks = len(self.seeds)
        self.n_inputs, self.n_outputs = int(n_inputs), int(n_outputs)
        self.cell = get_cell(model.cell)(
            model.n_units, model.activation, n_networks=self.n_networks, seed=self.seeds,
            input_init=model.input_init, recurrent_init=model.recurrent_init,
            recurrent_gain=model.recurrent_gain, forget_bias=model.forget_bias)
        self.cell.build((self.n_inputs,))
        w_out = np.stack([
            initial_matrix(np.random.default_rng([s, 2]), model.readout_init,
                           (model.n_units, self.n_outputs)) for s in self.seeds])
        self.readout_kernel = self.add_weight(
            name="readout_kernel", shape=w_out.shape,
            initializer=keras.initializers.Constant(w_out.astype(np.float32)))
        self.readout_bias = self.add_weight(
            name="readout_bias", shape=(self.n_networks, self.n_outputs), initializer="zeros")
        self.built = True

    @property
    def weight_matrices(self):
        """The matrices the L2 penalty applies to (not the biases)."""
        return [self.cell.kernel, self.cell.recurrent_kernel, self.readout_kernel]

    @property
    def variables_list(self):
        return [self.cell.kernel, self.cell.recurrent_kernel, self.cell.bias,
                self.readout_kernel, self.readout_bias]

    def readout(self, h):
        """``W_out h + b_out`` for hidden states ``[n_networks, ..., n_units]``."""
        shape = tf.shape(h)
        flat = tf.reshape(h, [shape[0], -1, shape[-1]])
        y = tf.matmul(flat, self.readout_kernel) + self.readout_bias[:, None, :]
        return tf.reshape(y, tf.concat([shape[:-1], [self.n_outputs]], 0))

    def initial_state(self, n_trials):
        return tf.zeros([self.n_networks, n_trials, self.cell.n_state])

    def run(self, inputs, initial_state=None, backprop=False):
        """Run every member over ``inputs``; returns ``(states, outputs)``.

        ``initial_state``: dynamical states ``[n_networks, n_trials, n_state]``
        (default ``h_0 = 0``).  ``backprop=True`` runs the loop whose gradient
        is the cell's hand-written backpropagation through time (what training
        uses: the weight gradients become one large matrix product instead of
        one small one per step); the values are identical.
        """
        inputs = tf.convert_to_tensor(inputs, tf.float32)
        if len(inputs.shape) == 3:
            inputs = tf.broadcast_to(inputs[None], tf.concat([[self.n_networks], tf.shape(inputs)], 0))
        n_trials = tf.shape(inputs)[1]
        s0 = self.initial_state(n_trials) if initial_state is None else initial_state
        xu = tf.transpose(self.cell.project_inputs(inputs), [2, 0, 1, 3])  # time major
        cell = self.cell
        if backprop:
            seq = _bptt_loop(cell, xu, tf.convert_to_tensor(cell.recurrent_kernel), *cell.unpack(s0))
        else:
            seq = tf.scan(lambda states, xu_t: tuple(cell.step(xu_t, list(states))),
                          xu, initializer=tuple(cell.unpack(s0)))
        states = tf.transpose(cell.pack(list(seq)), [1, 2, 0, 3])
        return states, self.readout(cell.hidden(states))

    def __call__(self, inputs):
        return self.run(inputs)

    # -- weights as SPEC's symbols ----------------------------------------------
    def get_weights_dict(self) -> dict:
        """All weights named after SPEC's symbols, each with a leading member axis."""
        named = self.cell.named_weights()
        named["W_out"] = np.swapaxes(np.asarray(self.readout_kernel), 1, 2)
        named["b_out"] = np.asarray(self.readout_bias)
        return named

    def set_weights_dict(self, named: dict):
        """Set every weight from :meth:`get_weights_dict`'s output."""
        self.cell.set_named_weights(named)
        self.readout_kernel.assign(np.swapaxes(named["W_out"], 1, 2))
        self.readout_bias.assign(named["b_out"])

    def member(self, i: int) -> "Population":
        """A population of one holding a copy of member ``i``."""
        one = Population(self.model_cfg, self.n_inputs, self.n_outputs, [self.seeds[i]])
        one.set_weights_dict({k: v[i: i + 1] for k, v in self.get_weights_dict().items()})
        return one


def _flat(x):
    """``[T, n, B, k]`` -> ``[n, T*B, k]``."""
    x = tf.transpose(x, [1, 0, 2, 3])
    shape = tf.shape(x)
    return tf.reshape(x, [shape[0], -1, shape[3]])


def _bptt_loop(cell, xu, W, *s0):
    """The recurrence over time-major ``xu [T, n, B, G*N]`` with an explicit gradient.

    Forward: the cell's step, keeping its gate values.  Backward: the cell's
    ``step_back`` from the last step to the first, then ``dL/dW`` in one
    matrix product over all steps (``cell.recurrent_grad``).
    """

    @tf.custom_gradient
    def loop(xu, W, *s0):
        n_time = tf.shape(xu)[0]
        new0, cache0 = cell.step_cache(xu[0], list(s0), W)

        def arrays(first):
            return [tf.TensorArray(x.dtype, size=n_time, element_shape=x.shape).write(0, x)
                    for x in first]

        def body(t, states, ta_s, ta_c):
            new, cache = cell.step_cache(xu[t], list(states), W)
            ta_s = [ta.write(t, x) for ta, x in zip(ta_s, new)]
            ta_c = [ta.write(t, x) for ta, x in zip(ta_c, cache)]
            return t + 1, tuple(new), ta_s, ta_c

        _, _, ta_s, ta_c = tf.while_loop(
            lambda t, *_: t < n_time, body, (tf.constant(1), tuple(new0), arrays(new0), arrays(cache0)))
        seq = [ta.stack() for ta in ta_s]
        caches = [ta.stack() for ta in ta_c]

        def grad(*d_seq):
            d_seq = [tf.zeros_like(s) if d is None else d for s, d in zip(seq, d_seq)]
            prev = [tf.concat([a[None], s[:-1]], 0) for a, s in zip(s0, seq)]
            ta_dxu = tf.TensorArray(xu.dtype, size=n_time, element_shape=xu.shape[1:])

            def back(t, d_state, ta_dxu):
                d_new = [d + ds[t] for d, ds in zip(d_state, d_seq)]
                d_prev, d_xu = cell.step_back(d_new, [p[t] for p in prev], [c[t] for c in caches], W)
                return t - 1, tuple(d_prev), ta_dxu.write(t, d_xu)

            _, d_s0, ta_dxu = tf.while_loop(
                lambda t, *_: t >= 0, back,
                (n_time - 1, tuple(tf.zeros_like(a) for a in s0), ta_dxu))
            d_xu = ta_dxu.stack()
            d_w = cell.recurrent_grad(_flat(prev[0]), [_flat(c) for c in caches], _flat(d_xu))
            return (d_xu, d_w, *d_s0)

        return seq, grad

    return loop(xu, W, *s0)
