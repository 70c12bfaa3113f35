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

    def weight_matrices(self, weights=None):
        """The matrices the L2 penalty applies to (not the biases), of ``weights``
        (tensors in :attr:`variables_list` order; default the variables)."""
        U, W, _, W_out, _ = self.variables_list if weights is None else weights
        return [U, W, W_out]

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

    def initial_state(self, n_trials, n_networks=None):
        """``h_0 = 0`` for ``n_networks`` members (default all)."""
        return tf.zeros([self.n_networks if n_networks is None else n_networks, n_trials, self.cell.n_state])

    def _inputs(self, inputs):
        inputs = tf.convert_to_tensor(inputs, tf.float32)
        if len(inputs.shape) == 3:
            inputs = tf.broadcast_to(inputs[None], tf.concat([[self.n_networks], tf.shape(inputs)], 0))
        return inputs

    def run(self, inputs, initial_state=None):
        """Run every member over ``inputs``; returns ``(states, outputs)``.

        ``initial_state``: dynamical states ``[n_networks, n_trials, n_state]``
        (default ``h_0 = 0``).
        """
        inputs = self._inputs(inputs)
        s0 = self.initial_state(tf.shape(inputs)[1]) if initial_state is None else initial_state
        xu = tf.transpose(self.cell.project_inputs(inputs), [2, 0, 1, 3])  # time major
        cell = self.cell
        seq = tf.scan(lambda states, xu_t: tuple(cell.step(xu_t, list(states))),
                      xu, initializer=tuple(cell.unpack(s0)))
        states = tf.transpose(cell.pack(list(seq)), [1, 2, 0, 3])
        return states, self.readout(cell.hidden(states))

    def outputs(self, inputs, weights=None):
        """The outputs of :meth:`run` (from ``h_0 = 0``), with a hand-written gradient.

        Input projection, recurrence and readout run step by step in one loop,
        and backpropagation through time runs the cells' ``step_back`` in a
        second loop that accumulates every weight gradient as it goes: no
        ``[n_time, ...]``-sized intermediate is transposed.  What training uses.
        ``weights``: tensors in :attr:`variables_list` order to use instead of
        the variables (e.g. a slice of the members, with ``inputs`` sliced alike).
        """
        inputs = self._inputs(inputs)
        U, W, b, W_out, b_out = self.variables_list if weights is None else weights
        x = tf.transpose(inputs, [2, 0, 1, 3])  # [T, n, B, M]: cheap, M is small
        c = self.cell
        s0 = self.initial_state(tf.shape(inputs)[1], tf.shape(U)[0])
        y = _bptt_loop(c, x, U, b, W, W_out, b_out, *c.unpack(s0))
        return tf.transpose(y, [1, 2, 0, 3])

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


SMALL = 8  # contractions over this many or fewer entries are written as broadcast products


def _small_matmul(a, w, transpose_b=False):
    """``a @ w`` (``a [n, B, k]``, ``w [n, k, g]``, or ``[n, g, k]`` with
    ``transpose_b``).  For a small ``k`` (the task's inputs or outputs) as a sum
    of ``k`` broadcast products, which XLA fuses into the neighbouring
    element-wise work: a matrix product that small costs as much as a
    ``64 x 64`` one on a CPU."""
    k = w.shape[-1] if transpose_b else w.shape[-2]
    if k is None or k > SMALL:
        return tf.matmul(a, w, transpose_b=transpose_b)
    column = (lambda j: w[:, None, :, j]) if transpose_b else (lambda j: w[:, None, j, :])
    out = a[..., 0:1] * column(0)
    for j in range(1, k):
        out = out + a[..., j:j + 1] * column(j)
    return out


def _small_outer(a, d):
    """``a^T d`` over the batch axis (``[n, B, i]``, ``[n, B, k]`` -> ``[n, i, k]``),
    as a fused reduction when ``k`` is small (the readout's gradient)."""
    if d.shape[-1] is None or d.shape[-1] > SMALL:
        return tf.matmul(a, d, transpose_a=True)
    return tf.reduce_sum(a[..., :, None] * d[..., None, :], axis=-3)


def _bptt_loop(cell, x, U, b, W, W_out, b_out, *s0):
    """Outputs ``[T, n, B, K]`` over time-major inputs ``x [T, n, B, M]``, with
    an explicit gradient (backpropagation through time by ``cell.step_back``).

    The weights are passed as tensors; gradients are returned for them and
    the initial states, none for the inputs (data).  Everything runs inside
    the two loops (nothing of size ``T`` is computed after them): XLA then
    runs each piece of a population on one core, with the other pieces on
    the other cores.
    """
    U, b, W, W_out, b_out = (tf.convert_to_tensor(v) for v in (U, b, W, W_out, b_out))

    @tf.custom_gradient
    def loop(x, U, b, W, W_out, b_out, *s0):
        n_time = tf.shape(x)[0]
        W_cell = cell.split_recurrent(W)  # sliced once, not at every step

        def project(t):
            return _small_matmul(x[t], U) + b[:, None, :]

        def read(h):
            return tf.matmul(h, W_out) + b_out[:, None, :]

        def arrays(first):
            return [tf.TensorArray(v.dtype, size=n_time, element_shape=v.shape).write(0, v)
                    for v in first]

        new0, cache0 = cell.step_cache(project(0), list(s0), W_cell)
        y0 = read(new0[0])

        def body(t, states, ta_s, ta_c, ta_y):
            new, cache = cell.step_cache(project(t), list(states), W_cell)
            ta_s = [ta.write(t, v) for ta, v in zip(ta_s, new)]
            ta_c = [ta.write(t, v) for ta, v in zip(ta_c, cache)]
            return t + 1, tuple(new), ta_s, ta_c, ta_y.write(t, read(new[0]))

        _, _, ta_s, ta_c, ta_y = tf.while_loop(
            lambda t, *_: t < n_time, body,
            (tf.constant(1), tuple(new0), arrays(new0), arrays(cache0), arrays([y0])[0]))
        seq = [ta.stack() for ta in ta_s]
        caches = [ta.stack() for ta in ta_c]

        def grad(dy):
            W_back = tf.nest.map_structure(lambda w: tf.transpose(w, [0, 2, 1]), W_cell)  # once

            def back(t, d_state):
                """Step ``t``: the gradients of the previous states, and the terms
                the step adds to the weights' gradients."""
                d_out = dy[t]
                d_new = [d_state[0] + _small_matmul(d_out, W_out, transpose_b=True)] + list(d_state[1:])
                prev = [tf.where(t > 0, s[tf.maximum(t - 1, 0)], a) for s, a in zip(seq, s0)]
                d_prev, groups = cell.step_back(d_new, prev, [c[t] for c in caches], W_back)
                # [a | x | 1]^T d: a group's recurrent, input and bias gradients in one product
                x1 = tf.concat([x[t], tf.ones_like(x[t][..., :1])], axis=-1)
                terms = ([tf.matmul(tf.concat([a, x1], axis=-1), d, transpose_a=True) for a, d in groups],
                         _small_outer(seq[0][t], d_out), tf.reduce_sum(d_out, axis=1))
                return d_prev, terms

            def step(t, d_state, acc):
                d_prev, terms = back(t, d_state)
                return t - 1, tuple(d_prev), tf.nest.map_structure(tf.add, acc, terms)

            zero = tuple(tf.zeros_like(a) for a in s0)
            # Zero accumulators shaped like a step's terms (the step traced for its
            # shapes is never run).  Starting the loop at a first step computed
            # before it instead is 5% slower in XLA.
            acc = tf.nest.map_structure(lambda v: tf.zeros(tf.shape(v), v.dtype), back(n_time - 1, zero)[1])
            _, d_s0, (dWUb, dW_out, db_out) = tf.while_loop(
                lambda t, *_: t >= 0, step, (n_time - 1, zero, acc))
            u = cell.units
            dW, dU, db = (tf.concat([g[:, rows] for g in dWUb], axis=-1)
                          for rows in (slice(None, u), slice(u, -1), -1))
            return (None, dU, db, dW, dW_out, db_out, *d_s0)

        return ta_y.stack(), grad

    return loop(x, U, b, W, W_out, b_out, *s0)


def probe_representation(population: Population, task, inputs=None) -> np.ndarray:
    """Hidden states on the task's fixed probe set, trials x time flattened.

    Parameters
    ----------
    population : Population
    task : Task
        Supplies :meth:`~rnn_dyn.tasks.Task.probe_set`.
    inputs : array_like [n_trials, n_time, n_inputs], optional
        Other probe inputs instead of the task's probe set.

    Returns
    -------
    ndarray [n_networks, n_trials * n_time, n_units]
        What :func:`rnn_dyn.pairwise_distances` compares (``h``, also for the LSTM).
    """
    states, _ = population.run(task.probe_set()["inputs"] if inputs is None else inputs)
    h = np.asarray(population.cell.hidden(states), np.float64)
    return h.reshape(population.n_networks, -1, h.shape[-1])
