"""Importers: PyTorch state dicts (numpy arrays in PyTorch's layout) and Keras layers.

Each imported network's step is checked against the framework's equations
written here in float64 numpy; Keras layers are also checked against Keras'
own output.  PyTorch is not a dependency.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf

import rnn_dyn
from rnn_dyn.cells import GRUCell
from rnn_dyn.config import TaskConfig
from rnn_dyn.linearization import compute_jacobians, make_map
from rnn_dyn.population import probe_representation
from rnn_dyn.tasks import get_task
from rnn_dyn.universality import network_topology

N, M, K, B = 6, 3, 2, 5
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def f32(a):
    """Values exactly representable in float32, kept in float64."""
    return np.asarray(a, np.float32).astype(np.float64)


def grid(a):
    """Weights on a 1/64 grid: float32 holds them and their sums (folded biases) exactly,
    so that the imported network's float64 map can be held to 1e-12."""
    return np.round(np.asarray(a) * 64) / 64


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def phi(activation):
    return np.tanh if activation == "tanh" else (lambda v: np.maximum(v, 0.0))


# -- the frameworks' equations in float64 --------------------------------------------
def torch_step(sd, cell, x, h, c=None, activation="tanh"):
    """PyTorch's documented update (torch.nn.RNN / GRU / LSTM), one step."""
    gi = x @ sd["weight_ih_l0"].T + sd.get("bias_ih_l0", 0.0)
    gh = h @ sd["weight_hh_l0"].T + sd.get("bias_hh_l0", 0.0)
    if cell == "rnn":
        return phi(activation)(gi + gh), None
    n = h.shape[-1]
    if cell == "gru":
        r = sigmoid(gi[:, :n] + gh[:, :n])
        z = sigmoid(gi[:, n:2 * n] + gh[:, n:2 * n])
        new = np.tanh(gi[:, 2 * n:] + r * gh[:, 2 * n:])
        return (1 - z) * new + z * h, None
    i, f, g, o = np.split(gi + gh, 4, axis=-1)
    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c_new), c_new


def keras_step(kind, weights, x, h, c=None, activation="tanh", reset_after=True):
    """Keras' SimpleRNNCell / GRUCell / LSTMCell update, one step."""
    kernel, rec, bias = (list(weights) + [None])[:3]
    act, n = phi(activation), h.shape[-1]
    if kind == "gru" and reset_after:
        bias = np.zeros((2, 3 * n)) if bias is None else bias
        mx, mh = x @ kernel + bias[0], h @ rec + bias[1]
        z, r = sigmoid(mx[:, :n] + mh[:, :n]), sigmoid(mx[:, n:2 * n] + mh[:, n:2 * n])
        return z * h + (1 - z) * act(mx[:, 2 * n:] + r * mh[:, 2 * n:]), None
    mx = x @ kernel + (0.0 if bias is None else bias)
    if kind == "rnn":
        return act(mx + h @ rec), None
    if kind == "gru":
        z = sigmoid(mx[:, :n] + h @ rec[:, :n])
        r = sigmoid(mx[:, n:2 * n] + h @ rec[:, n:2 * n])
        return z * h + (1 - z) * act(mx[:, 2 * n:] + (r * h) @ rec[:, 2 * n:]), None
    i, f, g, o = np.split(mx + h @ rec, 4, axis=-1)
    c_new = sigmoid(f) * c + sigmoid(i) * act(g)
    return sigmoid(o) * act(c_new), c_new


def torch_state_dict(cell, rng, n=N, m=M, prefix="", bias=True, scale=0.5):
    g = GATES[cell]
    sd = {"weight_ih_l0": scale * rng.standard_normal((g * n, m)),
          "weight_hh_l0": scale * rng.standard_normal((g * n, n))}
    if bias:
        sd.update(bias_ih_l0=scale * rng.standard_normal(g * n), bias_hh_l0=scale * rng.standard_normal(g * n))
    return {prefix + k: grid(v) for k, v in sd.items()}


def sample_xhc(rng):
    return (f32(rng.standard_normal((B, M))), f32(0.8 * rng.standard_normal((B, N))),
            f32(rng.standard_normal((B, N))))


def check_step(net, cell, x, h, c, ref_h, ref_c):
    """One float32 step to 1e-6, and the analyses' float64 map to 1e-12."""
    states = [h.astype(np.float32)] + ([c.astype(np.float32)] if cell == "lstm" else [])
    out, new = net(x.astype(np.float32), states)
    np.testing.assert_allclose(np.asarray(out, np.float64), ref_h, atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.asarray(new[0], np.float64), ref_h, atol=1e-6, rtol=0)
    s = np.concatenate([c, h], -1) if cell == "lstm" else h
    s_new = make_map(net.cell, M).f64(tf.constant(s[None]), tf.constant(x[None])).numpy()[0]
    ref = np.concatenate([ref_c, ref_h], -1) if cell == "lstm" else ref_h
    np.testing.assert_allclose(s_new, ref, atol=1e-12, rtol=0)


# -- PyTorch -----------------------------------------------------------------------
@pytest.mark.parametrize("cell, activation", [("rnn", "tanh"), ("rnn", "relu"), ("gru", None), ("lstm", None)])
def test_torch_step_equals_pytorch_equations(cell, activation):
    rng = np.random.default_rng(1)
    sd = torch_state_dict(cell, rng)
    readout = (f32(rng.standard_normal((K, N))), f32(rng.standard_normal(K)))
    net = rnn_dyn.from_torch(sd, cell, readout=readout, activation=activation)
    assert isinstance(net, rnn_dyn.population.Population) and net.n_networks == 1
    assert (net.n_inputs, net.n_outputs, net.cell.units) == (M, K, N)
    x, h, c = sample_xhc(rng)
    ref_h, ref_c = torch_step(sd, cell, x, h, c, activation or "tanh")
    check_step(net, cell, x, h, c, ref_h, ref_c)
    # the readout is nn.Linear's  y = weight h + bias
    y = np.asarray(net.readout(tf.constant(h[None], tf.float32)))[0]
    np.testing.assert_allclose(y, h @ readout[0].T + readout[1], atol=1e-6)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_torch_prefix_no_bias_and_npz(cell, tmp_path):
    rng = np.random.default_rng(2)
    sd = torch_state_dict(cell, rng, prefix="rnn.", bias=False)
    sd["fc.weight"], sd["fc.bias"] = f32(rng.standard_normal((K, N))), f32(rng.standard_normal(K))
    x, h, c = sample_xhc(rng)
    ref_h, ref_c = torch_step({k[4:]: v for k, v in sd.items() if k.startswith("rnn.")}, cell, x, h, c)
    check_step(rnn_dyn.from_torch(sd, cell), cell, x, h, c, ref_h, ref_c)
    np.savez(tmp_path / "net.npz", **sd)
    net = rnn_dyn.from_torch(str(tmp_path / "net.npz"), cell)
    check_step(net, cell, x, h, c, ref_h, ref_c)
    # the file loader finds the cell from the gate count and the readout by itself
    loaded = rnn_dyn.load_foreign_network(tmp_path / "net.npz", format="torch")
    assert loaded.model_cfg.cell == cell and loaded.n_outputs == K
    check_step(loaded, cell, x, h, c, ref_h, ref_c)
    np.testing.assert_allclose(np.asarray(loaded.readout_kernel)[0], sd["fc.weight"].T)
    assert rnn_dyn.load_foreign_network(tmp_path / "net.npz", cell=cell, readout=None).n_outputs == 0


def test_torch_errors():
    rng = np.random.default_rng(3)
    sd = torch_state_dict("gru", rng)
    with pytest.raises(ValueError, match=r"state_dict\['weight_hh_l0'\] must have shape \[4\*N, N\] "
                                         r"= \(24, 6\) for an nn.LSTM \(cell='lstm'\) of N=6 units; "
                                         r"got \(18, 6\)"):
        rnn_dyn.from_torch(sd, "lstm")
    bad = dict(sd, weight_ih_l0=sd["weight_ih_l0"][:-1])
    with pytest.raises(ValueError, match=r"state_dict\['weight_ih_l0'\] must have shape \[3\*N, M\] "
                                         r"= \(18, M\) for an nn.GRU .*; got \(17, 3\)"):
        rnn_dyn.from_torch(bad, "gru")
    with pytest.raises(ValueError, match=r"'bias_hh_l0'\] must have shape \[3\*N\] = \(18\) .*; got \(6,\)"):
        rnn_dyn.from_torch(dict(sd, bias_hh_l0=np.zeros(6)), "gru")
    with pytest.raises(ValueError, match="missing 'weight_ih_l0'"):
        rnn_dyn.from_torch({k: v for k, v in sd.items() if k != "weight_ih_l0"}, "gru")
    with pytest.raises(ValueError, match="one recurrent module's 'weight_hh_l0'; got 0"):
        rnn_dyn.from_torch({"weight": np.zeros((2, 2))}, "gru")
    with pytest.raises(ValueError, match="holds 'bias_ih_l0' but not its partner"):
        rnn_dyn.from_torch({k: v for k, v in sd.items() if k != "bias_hh_l0"}, "gru")
    with pytest.raises(ValueError, match="single-layer.*'weight_ih_l1'"):
        rnn_dyn.from_torch(dict(sd, weight_ih_l1=np.zeros((18, 6))), "gru")
    with pytest.raises(ValueError, match="unidirectional.*'weight_hh_l0_reverse'"):
        rnn_dyn.from_torch(dict(sd, weight_hh_l0_reverse=np.zeros((18, 6))), "gru")
    with pytest.raises(ValueError, match=r"cell must be one of \['gru', 'lstm', 'rnn', 'vanilla'\]; got 'ugrnn'"):
        rnn_dyn.from_torch(sd, "ugrnn")
    with pytest.raises(ValueError, match="always uses tanh"):
        rnn_dyn.from_torch(sd, "gru", activation="relu")
    with pytest.raises(ValueError, match=r"readout\['weight'\] must have shape \[K, N=6\]"):
        rnn_dyn.from_torch(sd, "gru", readout=(np.zeros((2, 5)), np.zeros(2)))
    with pytest.raises(TypeError, match="dict of arrays or a path"):
        rnn_dyn.from_torch([1, 2], "gru")


# -- Keras -------------------------------------------------------------------------
KERAS_LAYERS = {
    "simple_rnn_tanh": ("rnn", "tanh", lambda: keras.layers.SimpleRNN(N, return_sequences=True)),
    "simple_rnn_relu": ("rnn", "relu", lambda: keras.layers.SimpleRNN(N, activation="relu", return_sequences=True)),
    "gru_reset_after": ("gru", "tanh", lambda: keras.layers.GRU(N, reset_after=True, return_sequences=True)),
    "gru_reset_before": ("gru", "tanh", lambda: keras.layers.GRU(N, reset_after=False, return_sequences=True)),
    "lstm": ("lstm", "tanh", lambda: keras.layers.LSTM(N, return_sequences=True)),
}


def random_keras(make, rng, scale=0.5):
    layer = make()
    X = rng.standard_normal((4, 7, M)).astype(np.float32)
    layer(X)
    layer.set_weights([grid(scale * rng.standard_normal(w.shape)) for w in layer.get_weights()])
    return layer, X


@pytest.mark.parametrize("name", sorted(KERAS_LAYERS))
def test_keras_step_equals_keras_equations_and_keras(name):
    kind, activation, make = KERAS_LAYERS[name]
    rng = np.random.default_rng(4)
    layer, X = random_keras(make, rng)
    dense = keras.layers.Dense(K)
    y_keras = dense(layer(X))
    dense.set_weights([f32(rng.standard_normal(w.shape)) for w in dense.get_weights()])
    x, h, c = sample_xhc(rng)
    reset_after = getattr(layer.cell, "reset_after", None)
    ref_h, ref_c = keras_step(kind, [np.asarray(w, np.float64) for w in layer.get_weights()], x, h, c,
                              activation, reset_after)
    # the equations written here are Keras' own
    states = [tf.constant(h, tf.float32)] + ([tf.constant(c, tf.float32)] if kind == "lstm" else [])
    theirs, _ = layer.cell(tf.constant(x, tf.float32), states)
    np.testing.assert_allclose(np.asarray(theirs, np.float64), ref_h, atol=1e-6)
    for source in (layer, layer.cell):
        net = rnn_dyn.from_keras(source, readout=dense)
        check_step(net, kind, x, h, c, ref_h, ref_c)
        # a whole sequence and the readout, against Keras
        states, y = net.run(X)
        np.testing.assert_allclose(np.asarray(net.cell.hidden(states))[0], layer(X), atol=1e-5)
        np.testing.assert_allclose(np.asarray(y)[0], dense(layer(X)), atol=1e-5)
    assert y_keras.shape == (4, 7, K)


def test_keras_npz_file(tmp_path):
    rng = np.random.default_rng(5)
    layer, X = random_keras(KERAS_LAYERS["gru_reset_after"][2], rng)
    dense = keras.layers.Dense(K)
    dense(layer(X))
    np.savez(tmp_path / "net.npz", **{w.path: w.numpy() for w in layer.weights + dense.weights})
    net = rnn_dyn.load_foreign_network(tmp_path / "net.npz", format="keras")
    assert net.cell.reset_after and net.model_cfg.cell == "gru" and net.n_outputs == K
    np.testing.assert_allclose(np.asarray(net.run(X)[1])[0], dense(layer(X)), atol=1e-5)


def test_keras_errors():
    with pytest.raises(ValueError, match="must be built"):
        rnn_dyn.from_keras(keras.layers.GRU(4))
    with pytest.raises(TypeError, match="SimpleRNN, GRU or LSTM layer or cell.*Bidirectional"):
        rnn_dyn.from_keras(keras.layers.Bidirectional(keras.layers.GRU(4)))
    layer = keras.layers.GRU(4, recurrent_activation="hard_sigmoid")
    layer(np.zeros((1, 2, 3), np.float32))
    with pytest.raises(ValueError, match="recurrent_activation must be 'sigmoid'; got 'hard_sigmoid'"):
        rnn_dyn.from_keras(layer)
    layer = keras.layers.LSTM(4)
    layer(np.zeros((1, 2, 3), np.float32))
    dense = keras.layers.Dense(2, activation="tanh")
    dense(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="readout Dense must be linear"):
        rnn_dyn.from_keras(layer, readout=dense)
    with pytest.raises(ValueError, match=r"readout\['kernel'\] must have shape \[N=4, K\]"):
        rnn_dyn.from_keras(layer, readout=(np.zeros((5, 2)), np.zeros(2)))


def test_file_errors(tmp_path):
    np.savez(tmp_path / "gru.npz", kernel=np.zeros((3, 12)), recurrent_kernel=np.zeros((4, 12)))
    with pytest.raises(ValueError, match="without bias must say reset_after"):
        rnn_dyn.load_foreign_network(tmp_path / "gru.npz", format="keras")
    net = rnn_dyn.load_foreign_network(tmp_path / "gru.npz", format="keras", reset_after=False)
    assert not net.cell.reset_after
    with pytest.raises(ValueError, match=r"weights\['recurrent_kernel'\] must have shape \[N, 4\*N\] = \(4, 16\) "
                                         r"for a Keras LSTM \(cell='lstm'\) of N=4 units; got \(4, 12\)"):
        rnn_dyn.load_foreign_network(tmp_path / "gru.npz", format="keras", cell="lstm")
    with pytest.raises(ValueError, match=r"format must be one of \['keras', 'torch'\]; got 'onnx'"):
        rnn_dyn.load_foreign_network(tmp_path / "gru.npz", format="onnx")
    np.savez(tmp_path / "two.npz", **torch_state_dict("rnn", np.random.default_rng(0), prefix="rnn."),
             **{"a.weight": np.zeros((2, N)), "b.weight": np.zeros((1, N))})
    with pytest.raises(ValueError, match=r"several readouts \(\['a.', 'b.'\]\)"):
        rnn_dyn.load_foreign_network(tmp_path / "two.npz")
    assert rnn_dyn.load_foreign_network(tmp_path / "two.npz", readout="b.").n_outputs == 1


# -- the reset-after GRU cell ---------------------------------------------------------
def test_reset_after_gru_equals_keras_and_round_trips():
    ours = GRUCell(N, "tanh", n_networks=1, seed=3, reset_after=True)
    X = np.random.default_rng(6).standard_normal((4, 9, M)).astype(np.float32)
    keras.layers.RNN(ours, return_sequences=True)(X)
    ours.recurrent_bias.assign(np.linspace(-1, 1, N)[None])
    theirs = keras.layers.GRUCell(N, reset_after=True)
    layer = keras.layers.RNN(theirs, return_sequences=True)
    layer(X)
    theirs.kernel.assign(ours.kernel[0])
    theirs.recurrent_kernel.assign(ours.recurrent_kernel[0])
    theirs.bias.assign(np.stack([ours.bias[0], np.r_[np.zeros(2 * N), ours.recurrent_bias[0]]]))
    ours_y = keras.layers.RNN(ours, return_sequences=True)(X)
    np.testing.assert_allclose(ours_y, layer(X), atol=1e-6)
    clone = GRUCell.from_config(ours.get_config())
    clone.build((M,))
    assert clone.reset_after and clone.recurrent_bias.shape == (1, N)
    clone.set_named_weights(ours.named_weights())
    np.testing.assert_array_equal(clone.recurrent_bias, ours.recurrent_bias)
    assert not GRUCell(N).get_config()["reset_after"]
    with pytest.raises(TypeError, match="reset_after must be a bool"):
        GRUCell(N, reset_after="yes")


def test_reset_after_gru_has_no_backward_pass():
    net = rnn_dyn.from_torch(torch_state_dict("gru", np.random.default_rng(7)), "gru",
                             readout=(np.ones((K, N)), np.zeros(K)))
    with pytest.raises(NotImplementedError, match="no hand-written backward pass"):
        net.outputs(np.ones((1, 2, 3, M), np.float32))
    with pytest.raises(NotImplementedError, match="no hand-written backward pass"):
        net.cell.step_back(None, None, None, None)


# -- the analyses run on an imported network ------------------------------------------
def test_analyses_run_on_a_torch_gru():
    """A 6-unit PyTorch-convention GRU with strong self-excitation (several
    attractors): its fixed points, Jacobians, probe representation and topology."""
    rng = np.random.default_rng(8)
    sd = torch_state_dict("gru", rng, scale=0.2)
    sd["weight_hh_l0"][2 * N:] += 3.0 * np.eye(N)  # W_hn: 8 attractors (forward iteration)
    net = rnn_dyn.from_torch(sd, "gru", readout=(f32(rng.standard_normal((M, N))), np.zeros(M)))
    task = get_task(TaskConfig(name="flipflop", n_time=20, n_probe=4))
    fps = rnn_dyn.find_population_fixed_points(net, task, n_starts=64, n_trials=8)
    fixed = fps.fixed
    assert len(fixed) >= 2 and fixed.is_stable.any()
    # every reported point is a fixed point of PyTorch's own equations
    x0 = np.zeros((len(fixed), M))
    h_next, _ = torch_step(sd, "gru", x0, fixed.hstar)
    assert np.max(np.abs(h_next - fixed.hstar)) < 1e-9
    # the Jacobian (autodiff on the reset-after cell) equals central differences of the equations
    h = fixed.hstar[:1]
    jac, _ = compute_jacobians(net.cell, h, x0[:1])
    eps = 1e-6
    fd = np.stack([(torch_step(sd, "gru", x0[:1], h + eps * e)[0] - torch_step(sd, "gru", x0[:1], h - eps * e)[0])[0]
                   / (2 * eps) for e in np.eye(N)], axis=1)
    np.testing.assert_allclose(jac[0], fd, atol=1e-7)
    # find_fixed_points takes the network itself, or its cell
    for target in (net, net.cell):  # started at the points found: each is found again (the bridge may add more)
        direct = rnn_dyn.find_fixed_points(target, np.zeros(M), fixed.hstar.astype(np.float32))
        gap = np.linalg.norm(fixed.hstar[:, None] - direct.fixed.hstar[None], axis=-1).min(axis=1)
        assert len(direct.fixed) >= len(fixed) and (gap < 1e-6).all()
    rep = probe_representation(net, task)
    assert rep.shape == (1, 4 * 20, N) and np.isfinite(rep).all()
    inputs = task.probe_set()["inputs"]
    np.testing.assert_array_equal(probe_representation(net, task, inputs), rep)  # the same probe ...
    other = probe_representation(net, task, inputs[:2] + 0.5)  # ... or other inputs, other states
    assert other.shape == (1, 2 * 20, N) and not np.allclose(other[0], rep[0, : 2 * 20])
    topo = network_topology(task, net, fps, n_perturb=10)
    assert topo["n_fixed"] == len(fps.for_condition(0).fixed) and topo["n_stable"] >= 1


def test_call_conventions_and_member():
    rng = np.random.default_rng(9)
    net = rnn_dyn.from_torch(torch_state_dict("lstm", rng), "lstm")
    x, h, c = (v.astype(np.float32) for v in sample_xhc(rng))
    out, (h1, c1) = net(x, [h, c])
    np.testing.assert_array_equal(out, h1)
    X = rng.standard_normal((2, 3, M)).astype(np.float32)
    states, y = net(X)
    assert states.shape == (1, 2, 3, 2 * N) and y.shape == (1, 2, 3, 0)
    copy = net.member(0)
    np.testing.assert_array_equal(copy.run(X)[0], states)
    with pytest.raises(IndexError, match="one member"):
        net.member(1)


# -- float64 exactness: every parameter combined in float64 --------------------------
def float32_state_dict(cell, rng, n=N, m=M):
    """A state dict as PyTorch holds it (float32), biases of unequal size: their float32 sum
    differs from their float64 sum."""
    g = GATES[cell]
    return {"weight_ih_l0": rng.standard_normal((g * n, m)).astype(np.float32),
            "weight_hh_l0": (0.9 * rng.standard_normal((g * n, n)) / np.sqrt(n)).astype(np.float32),
            "bias_ih_l0": rng.standard_normal(g * n).astype(np.float32),
            "bias_hh_l0": (1e-3 * rng.standard_normal(g * n) + 0.3).astype(np.float32)}


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_torch_float64_map_combines_parameters_in_float64(cell):
    rng = np.random.default_rng(5)
    sd = float32_state_dict(cell, rng)
    sd64 = {k: v.astype(np.float64) for k, v in sd.items()}
    net = rnn_dyn.from_torch(sd, cell)
    x, h, c = sample_xhc(rng)
    ref_h, ref_c = torch_step(sd64, cell, x, h, c)
    s = np.concatenate([c, h], -1) if cell == "lstm" else h
    ref = np.concatenate([ref_c, ref_h], -1) if cell == "lstm" else ref_h
    s_new = make_map(net.cell, M).f64(tf.constant(s[None]), tf.constant(x[None])).numpy()[0]
    np.testing.assert_allclose(s_new, ref, atol=1e-14, rtol=0)
    # the float32 sum of the biases is another network, 1e-9 or more away in float64
    rounded = dict(sd64, bias_ih_l0=(sd["bias_ih_l0"] + sd["bias_hh_l0"]).astype(np.float64),
                   bias_hh_l0=np.zeros_like(sd64["bias_hh_l0"]))
    if cell == "gru":  # the candidate's recurrent bias stays apart (inside r * (...))
        n = N
        rounded["bias_ih_l0"][2 * n:] = sd64["bias_ih_l0"][2 * n:]
        rounded["bias_hh_l0"][2 * n:] = sd64["bias_hh_l0"][2 * n:]
    assert np.abs(torch_step(rounded, cell, x, h, c)[0] - ref_h).max() > 1e-9
    # the cell's float32 weights still step the network, and a changed cell drops the float64 copy
    net.cell.bias.assign(net.cell.bias + 1.0)
    changed = make_map(net.cell, M).f64(tf.constant(s[None]), tf.constant(x[None])).numpy()[0]
    assert np.abs(changed - ref).max() > 1e-3


def test_keras_reset_after_float64_map_combines_biases_in_float64():
    rng = np.random.default_rng(6)
    n = N
    kernel = rng.standard_normal((M, 3 * n)).astype(np.float32)
    rec = (rng.standard_normal((n, 3 * n)) / np.sqrt(n)).astype(np.float32)
    bias = np.stack([rng.standard_normal(3 * n), 1e-3 * rng.standard_normal(3 * n) + 0.3]).astype(np.float32)
    layer = keras.layers.GRUCell(n, reset_after=True)
    layer.build((None, M))
    layer.set_weights([kernel, rec, bias])
    net = rnn_dyn.from_keras(layer)
    x, h, _ = sample_xhc(rng)
    ref, _ = keras_step("gru", [w.astype(np.float64) for w in (kernel, rec, bias)], x, h)
    out = make_map(net.cell, M).f64(tf.constant(h[None]), tf.constant(x[None])).numpy()[0]
    np.testing.assert_allclose(out, ref, atol=1e-14, rtol=0)


def test_labelled_fixed_points_of_an_imported_torch_gru_are_float64_roots():
    """Every point labelled fixed is a root of PyTorch's float64 equations to q <= 1e-18."""
    rng = np.random.default_rng(7)
    n = 16
    sd = float32_state_dict("gru", rng, n=n)
    sd["weight_hh_l0"] *= np.float32(2.5)  # several fixed points
    net = rnn_dyn.from_torch(sd, "gru")
    fps = rnn_dyn.find_fixed_points(net, np.zeros(M), rng.uniform(-1, 1, (256, n)), n_bridge=0)
    fixed = fps.fixed
    assert len(fixed) >= 1
    sd64 = {k: v.astype(np.float64) for k, v in sd.items()}
    zeros = np.zeros((len(fixed), M))
    r = torch_step(sd64, "gru", zeros, fixed.hstar)[0] - fixed.hstar
    assert np.all(0.5 * np.sum(r * r, -1) <= 1e-18)
    # a map with the biases summed in float32 would not have these roots
    rounded = dict(sd64, bias_ih_l0=sd64["bias_ih_l0"].copy(), bias_hh_l0=sd64["bias_hh_l0"].copy())
    rounded["bias_ih_l0"][:2 * n] = (sd["bias_ih_l0"] + sd["bias_hh_l0"])[:2 * n]
    rounded["bias_hh_l0"][:2 * n] = 0.0
    r32 = torch_step(rounded, "gru", zeros, fixed.hstar)[0] - fixed.hstar
    assert np.all(0.5 * np.sum(r32 * r32, -1) > 1e-18)
