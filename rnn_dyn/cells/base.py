"""The population cell: one step of ``n_networks`` independent RNNs at once.

Weights carry a leading ``n_networks`` axis: ``kernel [n_networks, n_inputs,
n_gates * n_units]``, ``recurrent_kernel [n_networks, n_units, n_gates *
n_units]``, ``bias [n_networks, n_gates * n_units]``, gates side by side in the
order Keras uses for the same architecture.  Inputs and states are
``[n_networks, batch, ...]``; with ``n_networks = 1`` a cell also takes plain
``[batch, ...]`` tensors, so it runs inside ``keras.layers.RNN``.

Each member's initial weights come from its own seed, so a member is the same
network whatever population it is trained in.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from rnn_dyn._checks import check_choice, check_positive
from rnn_dyn.config import ACTIVATIONS, INITIALIZERS

ACTIVATION_FNS = {"tanh": tf.tanh, "relu": tf.nn.relu}


def sigmoid(x):
    """The gates' logistic function, as ``(1 + tanh(x / 2)) / 2``.

    XLA computes it so 1.4x faster on a CPU than ``tf.sigmoid`` (6.2 against
    8.7 us per 16k values, one core), and the gates' sigmoids are the largest
    element-wise cost of a training step.  It differs from ``tf.sigmoid`` by
    at most 2e-7 in float32 (float round-off; 1e-16 in float64).
    """
    return 0.5 + 0.5 * tf.tanh(0.5 * x)


def initial_matrix(rng: np.random.Generator, kind: str, shape, gain: float = 1.0) -> np.ndarray:
    """One ``(fan_in, fan_out)`` matrix from initializer ``kind`` (float64)."""
    fan_in, fan_out = shape
    if kind == "glorot_uniform":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)
    if kind == "orthogonal":
        a = rng.standard_normal((max(shape), min(shape)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))
        return gain * (q if fan_in >= fan_out else q.T)
    if kind == "normal":
        return gain * rng.standard_normal(shape) / np.sqrt(fan_in)
    if kind == "identity":  # Le et al. 2015; draws nothing from rng
        return gain * np.eye(fan_in, fan_out)
    check_choice("initializer", kind, INITIALIZERS)
    return np.zeros(shape)


class PopulationCell(keras.layers.Layer):
    """Base of the population cells; subclasses set ``gates`` and ``step``.

    Parameters
    ----------
    units : int
        State size ``n_units`` of each network.
    activation : {'tanh', 'relu'}
        The point-wise nonlinearity ``phi`` (gates always use the sigmoid).
    n_networks : int
        Population size.
    seed : int or sequence of int
        Seed of each member's initial weights (an int ``s`` gives ``s, s+1, ...``).
    input_init, recurrent_init : str
        Initializers of the input and recurrent matrices, one per gate.
    recurrent_gain : float
        Gain of the recurrent initializer.
    forget_bias : float
        Initial LSTM forget-gate bias.
    """

    gates: tuple = ("",)
    n_state_parts = 1

    def __init__(self, units, activation="tanh", n_networks=1, seed=0,
                 input_init="glorot_uniform", recurrent_init="orthogonal",
                 recurrent_gain=1.0, forget_bias=1.0, **kwargs):
        super().__init__(**kwargs)
        check_positive("units", units, integer=True)
        check_positive("n_networks", n_networks, integer=True)
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("input_init", input_init, INITIALIZERS)
        check_choice("recurrent_init", recurrent_init, INITIALIZERS)
        seeds = [int(seed) + i for i in range(n_networks)] if np.isscalar(seed) else list(seed)
        if len(seeds) != n_networks:
            raise ValueError(f"seed must have n_networks={n_networks} values; got {len(seeds)}.")
        self.units, self.n_networks, self.seeds = units, n_networks, seeds
        self.activation = activation
        self.phi = ACTIVATION_FNS[activation]
        self.input_init, self.recurrent_init = input_init, recurrent_init
        self.recurrent_gain, self.forget_bias = recurrent_gain, forget_bias
        self.state_size = units if self.n_state_parts == 1 else [units] * self.n_state_parts
        self.output_size = units

    @property
    def n_state(self) -> int:
        """Size of the dynamical state ``s`` (``2 * units`` for the LSTM)."""
        return self.units * self.n_state_parts

    # -- weights ---------------------------------------------------------------
    def initial_weights(self, n_inputs: int) -> dict:
        """Each member's initial ``kernel``, ``recurrent_kernel``, ``bias`` (stacked)."""
        u, g = self.units, len(self.gates)
        out = {"kernel": [], "recurrent_kernel": [], "bias": []}
        for seed in self.seeds:
            rng = np.random.default_rng([seed, 1])
            out["kernel"].append(np.concatenate(
                [initial_matrix(rng, self.input_init, (n_inputs, u)) for _ in range(g)], 1))
            out["recurrent_kernel"].append(np.concatenate(
                [initial_matrix(rng, self.recurrent_init, (u, u), self.recurrent_gain)
                 for _ in range(g)], 1))
            out["bias"].append(self.initial_bias())
        return {k: np.stack(v).astype(np.float32) for k, v in out.items()}

    def initial_bias(self) -> np.ndarray:
        return np.zeros(len(self.gates) * self.units)

    def build(self, input_shape):
        n_inputs = int(input_shape[-1])
        init = self.initial_weights(n_inputs)
        for name, value in init.items():
            setattr(self, name, self.add_weight(
                name=name, shape=value.shape, initializer=keras.initializers.Constant(value)))
        self.built = True

    def named_weights(self) -> dict:
        """Weights under SPEC's symbols: ``W_g [n, N, N]`` (acting as ``W h``),
        ``U_g [n, N, M]``, ``b_g [n, N]`` for each gate ``g``."""
        u = self.units
        out = {}
        for i, g in enumerate(self.gates):
            sfx = f"_{g}" if g else ""
            cols = slice(i * u, (i + 1) * u)
            out["W" + sfx] = np.swapaxes(np.asarray(self.recurrent_kernel)[:, :, cols], 1, 2)
            out["U" + sfx] = np.swapaxes(np.asarray(self.kernel)[:, :, cols], 1, 2)
            out["b" + sfx] = np.asarray(self.bias)[:, cols]
        return out

    def set_named_weights(self, named: dict):
        """Inverse of :meth:`named_weights`."""
        sfx = [f"_{g}" if g else "" for g in self.gates]
        self.recurrent_kernel.assign(np.concatenate([np.swapaxes(named["W" + s], 1, 2) for s in sfx], 2))
        self.kernel.assign(np.concatenate([np.swapaxes(named["U" + s], 1, 2) for s in sfx], 2))
        self.bias.assign(np.concatenate([named["b" + s] for s in sfx], 1))

    # -- dynamics --------------------------------------------------------------
    def project_inputs(self, inputs):
        """``x U + b`` for inputs ``[n_networks, ..., n_inputs]`` (any middle axes)."""
        shape = tf.shape(inputs)
        flat = tf.reshape(inputs, [shape[0], -1, shape[-1]])
        xu = tf.matmul(flat, self.kernel) + self.bias[:, None, :]
        return tf.reshape(xu, tf.concat([shape[:-1], [len(self.gates) * self.units]], 0))

    def step(self, xu, states, W=None):
        """One update from projected inputs ``xu [n, batch, G*N]``; returns new states."""
        return self.step_cache(xu, states, self.split_recurrent(self.recurrent_kernel if W is None else W))[0]

    def split_recurrent(self, W):
        """The recurrent weights in the form :meth:`step_cache` and
        :meth:`step_back` take them, made once outside a loop over time
        (``W`` itself unless a cell needs its gates' columns apart)."""
        return W

    def step_cache(self, xu, states, W):
        """One update with weights from :meth:`split_recurrent`; returns
        ``(new_states, cache)``, the cache holding what :meth:`step_back`
        needs (gate values)."""
        raise NotImplementedError

    def step_back(self, d_new, states, cache, W_T):
        """Backpropagate one step from the previous ``states``: gradients
        ``d_new`` of the new states give ``(d_states, groups)``.

        ``groups``: pairs ``(a, d)``, in gate order, of the pre-activation
        gradient ``d`` of a run of gate columns and the state ``a`` those
        columns' recurrent product multiplied (``h``, or ``r * h`` for the
        GRU's candidate); the step adds ``a^T d``, ``x^T d`` and ``d``'s sum
        over trials to those columns of ``dW``, ``dU`` and ``db``.

        ``W_T``: :meth:`split_recurrent`'s weights with their last two axes
        swapped (made once outside the loop: the products ``d @ W^T`` are then
        plain ones, 3-5% faster in XLA on a CPU)."""
        raise NotImplementedError

    def dphi(self, y):
        """``phi'`` expressed through ``y = phi(x)``."""
        return 1.0 - tf.square(y) if self.activation == "tanh" else tf.cast(y > 0, y.dtype)

    def call(self, inputs, states, training=None):
        single = len(inputs.shape) == 2
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if single:
            inputs, states = inputs[None], [s[None] for s in states]
        new = self.step(self.project_inputs(inputs), states)
        if single:
            new = [s[0] for s in new]
        return new[0], new

    def pack(self, states):
        """Concatenate a state list into the dynamical state ``s`` (SPEC §1)."""
        return states[0]

    def unpack(self, s):
        """Split the dynamical state ``s`` into the cell's state list."""
        return [s]

    def hidden(self, s):
        """The hidden state ``h`` (what the readout sees) of a dynamical state ``s``."""
        return s

    def transition(self, s, x):
        """The map ``s' = F(s, x)`` on dynamical states ``[n_networks, batch, n_state]``."""
        return self.pack(self.step(self.project_inputs(x), self.unpack(s)))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "n_networks": self.n_networks, "seed": self.seeds,
                "input_init": self.input_init, "recurrent_init": self.recurrent_init,
                "recurrent_gain": self.recurrent_gain, "forget_bias": self.forget_bias}
