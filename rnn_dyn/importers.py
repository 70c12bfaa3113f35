"""Networks trained elsewhere: PyTorch and Keras weights as a population of one.

:func:`from_torch` takes the state dict of a single-layer ``nn.RNN`` (tanh or
relu), ``nn.GRU`` or ``nn.LSTM``; :func:`from_keras` a Keras ``SimpleRNN``,
``GRU`` (either ``reset_after``) or ``LSTM`` layer or cell; each an optional
linear readout; :func:`load_foreign_network` either from an ``.npz`` file.
They return an :class:`ImportedNetwork`, a :class:`~rnn_dyn.population.Population`
of one network: what the population analyses take
(:func:`~rnn_dyn.find_population_fixed_points`, ``probe_representation``,
``network_topology``); its ``.cell`` is one of our cells (what
:func:`~rnn_dyn.find_fixed_points` takes).  It also steps like a Keras cell,
``net(x, [h]) -> (h_next, [h_next])`` on ``[batch, ...]`` tensors (``[h, c]``
for the LSTM); ``net(inputs)`` runs a sequence, as a population does.

Conversion to our (Keras') layout: PyTorch's ``weight_ih_l0 [G*N, M]`` and
``weight_hh_l0 [G*N, N]`` are transposed and its two biases summed; its GRU
gates ``(r, z, n)`` become our ``(z, r, c)``, and since it applies the reset
gate after the recurrent product and ``b_hn``, its GRU becomes
``GRUCell(reset_after=True)`` with ``recurrent_bias = b_hn`` (Keras' reset-after
``bias [2, 3N]`` likewise: the recurrent biases of ``z, r`` fold into the input
bias).  Weights are held in float32 like our populations' (summed biases are
rounded once) for stepping and the float32 search; the cell also keeps every
parameter combined in float64 (``cell.float64_weights``: transposed and summed
from the float64 values of the arrays given), and the analyses' float64 map
uses those, so that a point labelled fixed is a root of the original network's
float64 equations (e.g. ``b_ih + b_hh`` summed in float64, not float32).
"""
from __future__ import annotations

import os
import re

import keras
import numpy as np

from rnn_dyn._checks import check_choice
from rnn_dyn.cells import CELL_CLASSES, get_cell
from rnn_dyn.config import ModelConfig
from rnn_dyn.population import Population

CELL_NAMES = {"rnn": "vanilla", "vanilla": "vanilla", "gru": "gru", "lstm": "lstm"}
N_GATES = {"vanilla": 1, "gru": 3, "lstm": 4}
FORMATS = ("keras", "torch")
TORCH_MODULES = {"vanilla": "nn.RNN", "gru": "nn.GRU", "lstm": "nn.LSTM"}
KERAS_LAYERS = {"vanilla": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}
_SEPARATORS = "./:"
TORCH_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
_TORCH_NAME = re.compile(r"^(weight|bias)_(ih|hh|hr)_l\d+(_reverse)?$")


class ImportedNetwork(Population):
    """A network trained elsewhere, as a :class:`Population` of one.

    Built by :func:`from_torch`, :func:`from_keras` or
    :func:`load_foreign_network`; ``model_cfg.cell`` names its architecture
    (``'gru'`` also for a reset-after GRU: see ``cell.reset_after``).

    Parameters
    ----------
    cell : PopulationCell
        A built population cell of one network holding the weights.
    readout_kernel : ndarray [n_units, n_outputs]
        ``y = h @ readout_kernel + readout_bias`` (``n_outputs`` may be 0).
    readout_bias : ndarray [n_outputs]
    source : str
        Where the weights came from (e.g. ``'torch nn.GRU'``).
    """

    def __init__(self, cell, readout_kernel, readout_bias, source="", **kwargs):
        keras.layers.Layer.__init__(self, **kwargs)
        name = next(n for n, cls in CELL_CLASSES.items() if isinstance(cell, cls))
        self.model_cfg = ModelConfig(cell=name, activation=cell.activation, n_units=cell.units)
        self.seeds, self.n_networks, self.source = [0], 1, source
        self.n_inputs, self.n_outputs = int(cell.kernel.shape[1]), int(np.shape(readout_bias)[-1])
        self.cell = cell
        self.readout_kernel = self.add_weight(
            name="readout_kernel", shape=(1, cell.units, self.n_outputs),
            initializer=keras.initializers.Constant(np.asarray(readout_kernel, np.float32)[None]))
        self.readout_bias = self.add_weight(
            name="readout_bias", shape=(1, self.n_outputs),
            initializer=keras.initializers.Constant(np.asarray(readout_bias, np.float32)[None]))
        self.built = True

    def __call__(self, inputs, states=None, training=None):
        """``net(x, states) -> (h_next, new_states)`` as a Keras cell (``x [batch,
        n_inputs]``, ``states`` ``[h]`` or ``[h, c]``); ``net(inputs)`` is :meth:`run`."""
        if states is None:
            return self.run(inputs)
        return self.cell(inputs, states, training=training)

    def outputs(self, inputs, weights=None):
        """:meth:`Population.outputs` (the hand-written gradient training uses); not
        for a reset-after GRU, which has no hand-written backward pass."""
        if getattr(self.cell, "reset_after", False):
            raise NotImplementedError(
                "an imported reset-after GRU has no hand-written backward pass, so it cannot be "
                "trained with Population.outputs; differentiate net.run(inputs) instead.")
        return super().outputs(inputs, weights)

    def member(self, i: int) -> "ImportedNetwork":
        """A copy of the network (``i`` must be 0)."""
        if i != 0:
            raise IndexError(f"an imported network has one member; got member {i}.")
        cell = type(self.cell).from_config(self.cell.get_config())
        cell.build((self.n_inputs,))
        cell.set_weights(self.cell.get_weights())
        if getattr(self.cell, "float64_weights", None) is not None:
            cell.float64_weights = self.cell.float64_weights
        return ImportedNetwork(cell, np.asarray(self.readout_kernel)[0], np.asarray(self.readout_bias)[0],
                               self.source)

    def __repr__(self):
        return (f"ImportedNetwork(source={self.source!r}, n_units={self.cell.units}, "
                f"n_inputs={self.n_inputs}, n_outputs={self.n_outputs})")


def make_network(cell, kernel, recurrent_kernel, bias=None, recurrent_bias=None, readout=None,
                 activation="tanh", source="") -> ImportedNetwork:
    """An :class:`ImportedNetwork` from weights in our (Keras') layout.

    Parameters
    ----------
    cell : {'rnn', 'vanilla', 'gru', 'lstm'}
    kernel : array_like [n_inputs, G * n_units]
        Gates side by side in our order: ``(z, r, c)`` for the GRU, ``(i, f, g, o)``
        for the LSTM (``G`` = 1, 3, 4).
    recurrent_kernel : array_like [n_units, G * n_units]
    bias : array_like [G * n_units], optional (zeros)
    recurrent_bias : array_like [n_units], optional
        Given: a reset-after GRU with this candidate recurrent bias.
    readout : (kernel [n_units, n_outputs], bias [n_outputs]), optional
        Default: no outputs.
    activation : {'tanh', 'relu'}
    source : str
    """
    check_choice("cell", cell, sorted(CELL_NAMES))
    name = CELL_NAMES[cell]
    kernel, recurrent_kernel = np.asarray(kernel, np.float64), np.asarray(recurrent_kernel, np.float64)
    n_units, n_inputs = recurrent_kernel.shape[0], kernel.shape[0]
    if recurrent_bias is not None and name != "gru":
        raise ValueError(f"recurrent_bias is for a reset-after GRU; got cell={cell!r}.")
    extra = {"reset_after": True} if recurrent_bias is not None else {}
    rnn = get_cell(name)(n_units, activation, n_networks=1, seed=0, input_init="zeros",
                         recurrent_init="zeros", **extra)
    rnn.build((n_inputs,))
    rnn.kernel.assign(kernel[None].astype(np.float32))
    rnn.recurrent_kernel.assign(recurrent_kernel[None].astype(np.float32))
    rnn.bias.assign(np.zeros((1, rnn.bias.shape[1]), np.float32) if bias is None
                    else np.asarray(bias, np.float32)[None])
    if recurrent_bias is not None:
        rnn.recurrent_bias.assign(np.asarray(recurrent_bias, np.float32)[None])
    # The parameters as given, combined in float64 (summed biases are not rounded): the float64
    # map of the fixed-point analyses uses them (rnn_dyn.linearization.float64_weights).
    exact = [kernel, recurrent_kernel, np.zeros(rnn.bias.shape[1]) if bias is None else bias]
    exact += [] if recurrent_bias is None else [recurrent_bias]
    rnn.float64_weights = tuple(np.asarray(w, np.float64)[None] for w in exact)
    w_out, b_out = (np.zeros((n_units, 0)), np.zeros(0)) if readout is None else readout
    return ImportedNetwork(rnn, w_out, b_out, source)


def _array(arrays, key, what, shape, shape_text, context=""):
    """``arrays[key]`` as float64, checked against ``shape`` (``None``: any size,
    shown by its symbol in ``shape_text``, e.g. ``'[3*N, M]'``)."""
    value = np.asarray(arrays[key], np.float64)
    if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
        symbols = shape_text.strip("[]").split(", ")
        want = ", ".join(sym if s is None else str(s) for s, sym in zip(shape, symbols))
        raise ValueError(f"{what}[{key!r}] must have shape {shape_text} = ({want}){context}; "
                         f"got {value.shape}.")
    return value


def _prefix_of(key, name):
    """The module prefix of ``key`` if it names ``name`` (``'rnn.weight_hh_l0'`` -> ``'rnn.'``)."""
    if key == name:
        return ""
    if key.endswith(name) and key[-len(name) - 1] in _SEPARATORS:
        return key[: -len(name)]
    return None


def _module(arrays, rec_name, what):
    """``(prefix, own)``: the one recurrent module's prefix and its arrays under bare names."""
    prefixes = sorted({p for k in arrays if (p := _prefix_of(k, rec_name)) is not None})
    if len(prefixes) != 1:
        raise ValueError(f"{what} must hold one recurrent module's {rec_name!r}; got {len(prefixes)} "
                         f"(keys {sorted(arrays)}).")
    return prefixes[0], {k[len(prefixes[0]):]: v for k, v in arrays.items() if k.startswith(prefixes[0])}


def _load(arrays, what):
    if isinstance(arrays, (str, os.PathLike)):
        with np.load(arrays) as f:
            return {k: f[k] for k in f.files}
    if not hasattr(arrays, "keys"):
        raise TypeError(f"{what} must be a dict of arrays or a path to an .npz file; "
                        f"got {type(arrays).__name__}.")
    return dict(arrays)


def _activation(cell, activation):
    if activation is None:
        return "tanh"
    check_choice("activation", activation, ["relu", "tanh"])
    if CELL_NAMES[cell] != "vanilla" and activation != "tanh":
        raise ValueError(f"PyTorch's {TORCH_MODULES[CELL_NAMES[cell]]} always uses tanh; "
                         f"activation={activation!r} is only for cell='rnn'.")
    return activation


def _readout(readout, n_units, torch):
    """``(kernel [N, K], bias [K])`` from an ``nn.Linear``'s ``(weight [K, N], bias)``
    (``torch``) or a Dense layer's ``(kernel [N, K], bias)``: a pair, a dict or a Dense."""
    if readout is None:
        return None
    name = "weight" if torch else "kernel"
    if isinstance(readout, keras.layers.Layer) and not torch:
        if not isinstance(readout, keras.layers.Dense) or not readout.built:
            raise TypeError(f"readout must be a built keras Dense layer; got {readout!r}.")
        if readout.get_config()["activation"] != "linear":
            raise ValueError("readout Dense must be linear (activation='linear'); "
                             f"got {readout.get_config()['activation']!r}.")
        readout = (readout.kernel.numpy(), readout.bias.numpy() if readout.use_bias else None)
    elif hasattr(readout, "keys"):
        readout = (readout[name], readout.get("bias"))
    if not isinstance(readout, (tuple, list)) or len(readout) != 2:
        raise TypeError(f"readout must be a pair ({name}, bias) or a dict with {name!r} and 'bias'"
                        f"{'' if torch else ' or a Dense layer'}; got {type(readout).__name__}.")
    shape, text = ((None, n_units), f"[K, N={n_units}]") if torch else ((n_units, None), f"[N={n_units}, K]")
    w = _array({name: readout[0]}, name, "readout", shape, text)
    w = w.T if torch else w
    b = np.zeros(w.shape[1]) if readout[1] is None else \
        _array({"bias": readout[1]}, "bias", "readout", (w.shape[1],), f"[K={w.shape[1]}]")
    return w, b


def from_torch(state_dict, cell, readout=None, activation=None) -> ImportedNetwork:
    """A single-layer PyTorch ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM`` as a network of ours.

    Parameters
    ----------
    state_dict : dict of array_like, or str / PathLike
        PyTorch's names to arrays, as ``{k: v.numpy() for k, v in
        module.state_dict().items()}`` gives them (``weight_ih_l0 [G*N, M]``,
        ``weight_hh_l0 [G*N, N]``, ``bias_ih_l0 [G*N]``, ``bias_hh_l0 [G*N]``;
        ``G`` = 1, 3, 4), or the path of an ``.npz`` of them.  The names may
        carry one module prefix (``'rnn.weight_ih_l0'``); other entries are
        ignored.  Without biases (``bias=False``) both are zero.
    cell : {'rnn', 'vanilla', 'gru', 'lstm'}
    readout : (weight [K, N], bias [K]) or dict, optional
        An ``nn.Linear``'s weights (``y = weight h + bias``).
    activation : {'tanh', 'relu'}, optional
        ``nn.RNN``'s ``nonlinearity`` (default ``'tanh'``; GRU and LSTM: tanh only).

    Returns
    -------
    ImportedNetwork

    Raises
    ------
    ValueError
        A missing name, a wrong shape (naming the key, the expected and the
        received shape), several layers, a bidirectional or projected LSTM.

    Examples
    --------
    >>> net = rnn_dyn.from_torch({k: v.numpy() for k, v in gru.state_dict().items()}, "gru")  # doctest: +SKIP
    >>> h_next, _ = net(x, [h])  # doctest: +SKIP
    """
    check_choice("cell", cell, sorted(CELL_NAMES))
    activation = _activation(cell, activation)
    arrays = _load(state_dict, "state_dict")
    prefix, own = _module(arrays, "weight_hh_l0", "state_dict")
    for key in own:
        if _TORCH_NAME.match(key) and key not in TORCH_KEYS:
            raise ValueError(f"only single-layer, unidirectional modules without proj_size can be "
                             f"imported; state_dict holds {prefix + key!r}.")
    name, n_gates = CELL_NAMES[cell], N_GATES[CELL_NAMES[cell]]
    module = f"{TORCH_MODULES[name]} (cell={cell!r})"
    if "weight_ih_l0" not in own:
        raise ValueError(f"state_dict is missing {prefix + 'weight_ih_l0'!r} for an {module}; "
                         f"got keys {sorted(arrays)}.")
    w_hh = np.asarray(own["weight_hh_l0"])
    n = w_hh.shape[-1] if w_hh.ndim == 2 else 0
    g = f"{n_gates}*N" if n_gates > 1 else "N"
    what, context = "state_dict", f" for an {module} of N={n} units"
    w_hh = _array(own, "weight_hh_l0", what, (n_gates * n, n), f"[{g}, N]", context)
    w_ih = _array(own, "weight_ih_l0", what, (n_gates * n, None), f"[{g}, M]", context)
    biases = [k for k in ("bias_ih_l0", "bias_hh_l0") if k in own]
    if len(biases) == 1:
        raise ValueError(f"state_dict holds {biases[0]!r} but not its partner; an {module} has both "
                         "bias_ih_l0 and bias_hh_l0, or neither (bias=False).")
    b_ih, b_hh = (_array(own, k, what, (n_gates * n,), f"[{g}]", context) if biases else np.zeros(n_gates * n)
                  for k in ("bias_ih_l0", "bias_hh_l0"))
    out = _readout(readout, n, torch=True)
    source = f"torch {TORCH_MODULES[name]}"
    if name != "gru":
        return make_network(cell, w_ih.T, w_hh.T, b_ih + b_hh, readout=out, activation=activation,
                            source=source)
    order = np.concatenate([np.arange(n, 2 * n), np.arange(n), np.arange(2 * n, 3 * n)])  # (r,z,n) -> (z,r,c)
    bias = (b_ih + np.concatenate([b_hh[:2 * n], np.zeros(n)]))[order]
    return make_network(cell, w_ih[order].T, w_hh[order].T, bias, recurrent_bias=b_hh[2 * n:],
                        readout=out, activation=activation, source=source)


def _from_keras_arrays(arrays, cell, activation, reset_after, readout, source):
    """A network from Keras-layout ``kernel``, ``recurrent_kernel`` and optional ``bias``."""
    name, n_gates = CELL_NAMES[cell], N_GATES[CELL_NAMES[cell]]
    rec = np.asarray(arrays["recurrent_kernel"])
    n = rec.shape[0] if rec.ndim == 2 else 0
    g = f"{n_gates}*N" if n_gates > 1 else "N"
    what, context = "weights", f" for a Keras {KERAS_LAYERS[name]} (cell={cell!r}) of N={n} units"
    rec = _array(arrays, "recurrent_kernel", what, (n, n_gates * n), f"[N, {g}]", context)
    kernel = _array(arrays, "kernel", what, (None, n_gates * n), f"[M, {g}]", context)
    bias = arrays.get("bias")
    if name == "gru" and reset_after is None:
        if bias is None:
            raise ValueError("a Keras GRU without bias must say reset_after (True or False): the "
                             "two conventions differ even without biases.")
        reset_after = np.ndim(bias) == 2
    if name == "gru" and reset_after:
        b = np.zeros((2, 3 * n)) if bias is None else _array(arrays, "bias", what, (2, 3 * n), "[2, 3*N]", context)
        return make_network(cell, kernel, rec, b[0] + np.concatenate([b[1, :2 * n], np.zeros(n)]),
                            recurrent_bias=b[1, 2 * n:], readout=readout, activation=activation,
                            source=source)
    b = None if bias is None else _array(arrays, "bias", what, (n_gates * n,), f"[{g}]", context)
    return make_network(cell, kernel, rec, b, readout=readout, activation=activation, source=source)


def from_keras(layer, readout=None) -> ImportedNetwork:
    """A Keras ``SimpleRNN``, ``GRU`` (either ``reset_after``) or ``LSTM`` as a network of ours.

    Parameters
    ----------
    layer : keras layer or cell
        A built ``SimpleRNN``, ``GRU``, ``LSTM`` or ``RNN`` layer, or its cell
        (``SimpleRNNCell``, ``GRUCell``, ``LSTMCell``).  Activation ``tanh`` or
        ``relu``; gates ``sigmoid``.  Dropout and direction flags do not change
        the step and are ignored.
    readout : keras.layers.Dense or (kernel [N, K], bias [K]), optional
        A linear readout (``y = h @ kernel + bias``).

    Returns
    -------
    ImportedNetwork
    """
    cell = getattr(layer, "cell", layer)
    kinds = [(keras.layers.SimpleRNNCell, "vanilla"), (keras.layers.GRUCell, "gru"),
             (keras.layers.LSTMCell, "lstm")]
    name = next((n for cls, n in kinds if isinstance(cell, cls)), None)
    if name is None:
        raise TypeError("layer must be a Keras SimpleRNN, GRU or LSTM layer or cell (one layer, "
                        f"one direction); got {type(layer).__name__}.")
    if not cell.built:
        raise ValueError(f"layer {type(layer).__name__} must be built (call it once) before it is imported.")
    config = cell.get_config()
    activation = config["activation"]
    if activation not in ("tanh", "relu"):
        raise ValueError(f"layer activation must be one of ['relu', 'tanh']; got {activation!r}.")
    if name != "vanilla" and config["recurrent_activation"] != "sigmoid":
        raise ValueError("layer recurrent_activation must be 'sigmoid'; "
                         f"got {config['recurrent_activation']!r}.")
    arrays = {"kernel": cell.kernel.numpy(), "recurrent_kernel": cell.recurrent_kernel.numpy()}
    if cell.use_bias:
        arrays["bias"] = cell.bias.numpy()
    reset_after = bool(cell.reset_after) if name == "gru" else None
    source = f"keras {type(cell).__name__}" + (f"(reset_after={reset_after})" if name == "gru" else "")
    return _from_keras_arrays(arrays, name, activation, reset_after,
                              _readout(readout, cell.units, torch=False), source)


def _auto_readout(arrays, rnn_prefix, name):
    """The one readout (``name`` = 'weight' or 'kernel' with a 'bias') outside the recurrent module."""
    found = []
    for key in arrays:
        prefix = _prefix_of(key, name)
        if prefix is None or prefix == rnn_prefix or np.ndim(arrays[key]) != 2:
            continue
        bias = arrays.get(prefix + "bias")
        found.append((prefix, (arrays[key], bias)))
    if len(found) > 1:
        raise ValueError(f"the file holds several readouts ({[p for p, _ in found]}); pass readout=PREFIX "
                         "to choose one or readout=None for none.")
    return found[0][1] if found else None


def load_foreign_network(path, format="torch", cell=None, activation=None, readout="auto",
                         reset_after=None) -> ImportedNetwork:
    """A network from an ``.npz`` of PyTorch or Keras weights (the CLI's ``--weights``).

    Parameters
    ----------
    path : str or PathLike
        ``format='torch'``: PyTorch's state-dict names (``weight_ih_l0``, ...,
        with at most one module prefix such as ``'rnn.'``), as
        ``np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})``
        writes them.  ``format='keras'``: ``kernel``, ``recurrent_kernel`` and
        ``bias`` (optional) of the recurrent cell, bare or under one prefix
        (``'gru/gru_cell/kernel'``, Keras' weight paths), as
        ``np.savez(path, **{w.path: w.numpy() for w in model.weights})`` writes them.
        Either may also hold one linear readout: ``PREFIX.weight [K, N]`` and
        ``PREFIX.bias`` (torch) or ``PREFIX/kernel [N, K]`` and ``PREFIX/bias`` (Keras).
    format : {'torch', 'keras'}
    cell : {'rnn', 'vanilla', 'gru', 'lstm'}, optional
        Default: from the number of gate blocks (1: ``'rnn'``, 3: ``'gru'``, 4: ``'lstm'``).
    activation : {'tanh', 'relu'}, optional
        The nonlinearity (default ``'tanh'``): not stored in the weights.
    readout : 'auto', None or str
        ``'auto'``: the one readout in the file, if any; ``None``: none; a
        string: the readout's prefix (e.g. ``'fc.'``, ``'dense/'``).
    reset_after : bool, optional
        Keras GRU only: default from the bias shape (``[2, 3N]``: True); needed
        when the GRU has no bias.

    Returns
    -------
    ImportedNetwork
    """
    check_choice("format", format, FORMATS)
    arrays = _load(path, "path")
    rec_name = "weight_hh_l0" if format == "torch" else "recurrent_kernel"
    prefix, own = _module(arrays, rec_name, os.fspath(path))
    rec = np.asarray(own[rec_name])
    if rec.ndim != 2:
        raise ValueError(f"{prefix + rec_name!r} must be 2-D; got shape {rec.shape}.")
    n_units, n_gates = (rec.shape[1], rec.shape[0] // rec.shape[1]) if format == "torch" else \
        (rec.shape[0], rec.shape[1] // rec.shape[0])
    if cell is None:
        cell = {1: "rnn", 3: "gru", 4: "lstm"}.get(n_gates)
        if cell is None:
            raise ValueError(f"cannot tell the cell from {prefix + rec_name!r} of shape {rec.shape} "
                             "(1, 3 or 4 gate blocks); pass cell.")
    check_choice("cell", cell, sorted(CELL_NAMES))
    weight = "weight" if format == "torch" else "kernel"
    if readout == "auto":
        out = _auto_readout(arrays, prefix, weight)
    elif readout is None:
        out = None
    else:
        if readout + weight not in arrays:
            raise ValueError(f"readout {readout!r}: the file has no {readout + weight!r}; keys {sorted(arrays)}.")
        out = (arrays[readout + weight], arrays.get(readout + "bias"))
    if format == "torch":
        return from_torch(own, cell, readout=out, activation=activation)
    activation = check_choice("activation", activation or "tanh", ["relu", "tanh"])
    return _from_keras_arrays(own, cell, activation, reset_after, _readout(out, n_units, torch=False),
                              f"keras {os.path.basename(os.fspath(path))}")
