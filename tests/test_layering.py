"""Imports only point downward (STYLE.md): check what each layer pulls in.

One fresh interpreter imports the layers bottom-up and records, after each,
which upper-layer packages are loaded.  TensorFlow itself imports matplotlib,
so the baseline is what ``import tensorflow, keras`` alone loads.
"""
import json
import subprocess
import sys

FORBIDDEN = ["mlflow", "matplotlib", "dask", "distributed", "fire"]
LAYERS = ["rnn_dyn.config", "rnn_dyn.tasks", "tensorflow", "keras", "rnn_dyn.cells",
          "rnn_dyn.population", "rnn_dyn.training", "rnn_dyn.similarity", "rnn_dyn.embedding",
          "rnn_dyn.linearization", "rnn_dyn.fixed_point_results", "rnn_dyn.fixed_point_search", "rnn_dyn.slow_points", "rnn_dyn.fixed_points", "rnn_dyn.topology", "rnn_dyn.chains", "rnn_dyn.dynamics",
          "rnn_dyn.universality"]

CODE = f"""
import importlib, json, sys
out = {{}}
for name in {LAYERS!r}:
    importlib.import_module(name)
    out[name] = [m for m in {FORBIDDEN!r} if m in sys.modules] + ['tensorflow'] * ('tensorflow' in sys.modules)
print(json.dumps(out))
"""


def test_lower_layers_do_not_import_upper_ones():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["rnn_dyn.config"] == [] and loaded["rnn_dyn.tasks"] == []  # not even tensorflow
    baseline = set(loaded["keras"])
    for name in LAYERS[4:]:
        assert set(loaded[name]) == baseline, name


def test_public_api():
    import rnn_dyn

    for name in rnn_dyn.__all__:
        assert getattr(rnn_dyn, name) is not None
    assert callable(rnn_dyn.similarity.cka)
