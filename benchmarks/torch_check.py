"""Check the foreign PyTorch-layout networks against PyTorch itself, in float64 (needs numpy + torch only).

No TensorFlow and no rnn_dyn import: it reads what rnn_dyn produced from
``tests/fixtures/foreign_flipflop_64_labelled.npz`` (written by
``python benchmarks/fixed_points_foreign.py --save-labelled``) and the state
dicts ``tests/fixtures/foreign_torch_*_flipflop_64.npz``, loads each into
``torch.nn.GRU`` / ``torch.nn.LSTM`` in float64 and checks, per network:

1. the numpy equations of ``make_foreign_flipflop_truth.py`` (the truth's)
   equal torch's one-step map (``x = 0``) on the sample states, to 1e-14 (round-off of
   float64 sums in another order: about 1e-15);
2. rnn_dyn's imported float64 map (``map_values`` at ``map_states``) equals
   torch's one-step map, to 1e-14 (max abs);
3. every point rnn_dyn labelled ``fixed`` has ``q = ½‖F(h) − h‖² <= 1e-18``
   under torch, and every true point ``<= 1e-24``.

The LSTM's state is ``s = [c; h]``.  Run from the repository root on a machine
with PyTorch: ``python benchmarks/torch_check.py``; it prints one line per
network and exits 1 if any check fails.
"""
import importlib.util
import pathlib
import sys

import numpy as np
import torch

FIXTURES = pathlib.Path(__file__).parents[1] / "tests" / "fixtures"
TOL_MAP, TOL_LABELLED, TOL_TRUE = 1e-14, 1e-18, 1e-24  # maps: about 1e-15 expected (summation order)


def truth_module():
    spec = importlib.util.spec_from_file_location("truth", FIXTURES / "make_foreign_flipflop_truth.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_map(name):
    """``F(s)`` at ``x = 0`` of the network in torch, float64, for ``s [k, n_state]`` numpy."""
    with np.load(FIXTURES / f"foreign_{name}_flipflop_64.npz") as data:
        sd = {k: torch.from_numpy(data[k].astype(np.float64)) for k in data.files if k.endswith("_l0")}
    n_units, n_inputs = sd["weight_hh_l0"].shape[1], sd["weight_ih_l0"].shape[1]
    lstm = sd["weight_hh_l0"].shape[0] == 4 * n_units
    module = (torch.nn.LSTM if lstm else torch.nn.GRU)(n_inputs, n_units).double()
    module.load_state_dict(sd)

    @torch.no_grad()
    def step(s):
        s = torch.from_numpy(np.asarray(s, np.float64))
        x = torch.zeros(1, len(s), n_inputs, dtype=torch.float64)
        if lstm:
            c, h = s[:, :n_units], s[:, n_units:]
            _, (h1, c1) = module(x, (h[None].contiguous(), c[None].contiguous()))
            return torch.cat([c1[0], h1[0]], -1).numpy()
        _, h1 = module(x, s[None].contiguous())
        return h1[0].numpy()

    return step


def q_of(step, s):
    r = step(s) - s
    return 0.5 * np.sum(r * r, -1)


def main():
    truth = truth_module()
    labelled = dict(np.load(FIXTURES / "foreign_flipflop_64_labelled.npz"))
    true = dict(np.load(FIXTURES / "foreign_flipflop_64_truth.npz"))
    names = sorted({k.split("/")[0] for k in labelled if k.startswith("torch")})
    ok = True
    print(f"torch {torch.__version__}, float64")
    for name in names:
        step = torch_map(name)
        numpy_net, _ = truth.load(name)
        s = labelled[f"{name}/map_states"]
        ref = step(s)
        numpy_err = np.abs(numpy_net.step(s, np.zeros(3)) - ref).max()
        rnn_dyn_err = np.abs(labelled[f"{name}/map_values"] - ref).max()
        q_labelled = q_of(step, labelled[f"{name}/hstar"]) if len(labelled[f"{name}/hstar"]) else np.zeros(0)
        q_true = q_of(step, true[f"{name}/hstar"])
        good = (numpy_err <= TOL_MAP and rnn_dyn_err <= TOL_MAP and np.all(q_labelled <= TOL_LABELLED)
                and np.all(q_true <= TOL_TRUE))
        ok &= bool(good)
        print(f"{name}: |numpy - torch| {numpy_err:.1e}, |rnn_dyn - torch| {rnn_dyn_err:.1e} (<= {TOL_MAP}); "
              f"{len(q_labelled)} labelled fixed, max q {q_labelled.max(initial=0):.1e} (<= {TOL_LABELLED}); "
              f"{len(q_true)} true, max q {q_true.max():.1e} (<= {TOL_TRUE}): {'ok' if good else 'FAILED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
