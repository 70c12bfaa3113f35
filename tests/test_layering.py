"""Imports only point downward (STYLE.md): check what each layer pulls in.

One fresh interpreter imports the layers bottom-up and records, after each,
which upper-layer packages are loaded.  TensorFlow itself imports matplotlib,
so the baseline is what ``import tensorflow, keras`` alone loads.
"""
import json
import subprocess
import sys

FORBIDDEN = ["mlflow", "matplotlib", "dask", "distributed", "fire"]
LAYERS = ["rnn_dyn.config", "rnn_dyn.sweep_config", "rnn_dyn.tasks", "tensorflow", "keras", "rnn_dyn.cells",
          "rnn_dyn.population", "rnn_dyn.training", "rnn_dyn.prepared", "rnn_dyn.dsa", "rnn_dyn.similarity",
          "rnn_dyn.embedding", "rnn_dyn.linearization", "rnn_dyn.fixed_point_results", "rnn_dyn.fixed_point_search",
          "rnn_dyn.slow_points", "rnn_dyn.fixed_points", "rnn_dyn.transition_graphs",
          "rnn_dyn.graph_distances", "rnn_dyn.topology", "rnn_dyn.chains", "rnn_dyn.point_groups",
          "rnn_dyn.oscillation", "rnn_dyn.integration", "rnn_dyn.dynamics",
          "rnn_dyn.universality", "rnn_dyn.statistics", "rnn_dyn.untrained", "rnn_dyn.claims",
          "rnn_dyn.importers"]

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
    for name in ("rnn_dyn.config", "rnn_dyn.sweep_config", "rnn_dyn.tasks"):
        assert loaded[name] == [], name  # not even tensorflow
    baseline = set(loaded["keras"])
    for name in LAYERS[LAYERS.index("keras") + 1:]:
        assert set(loaded[name]) == baseline, name


def test_public_api():
    import rnn_dyn

    for name in rnn_dyn.__all__:
        assert getattr(rnn_dyn, name) is not None
    assert callable(rnn_dyn.similarity.cka)


def test_split_modules_stay_importable_from_their_old_home():
    """``rnn_dyn.dynamics`` and ``rnn_dyn.topology`` were split; every public name still imports."""
    import importlib

    old = {"rnn_dyn.dynamics": ["nearest_points", "group_summary", "dominant_oscillatory_eigval",
                                "OscillatoryModes", "compute_oscillatory_modes", "count_near_one",
                                "geometric_sum", "mode_readouts", "integration_curve", "modes_needed",
                                "IntegrationModes", "compute_integration_modes"],
           "rnn_dyn.topology": ["MODES", "TransitionGraph", "readout_order", "compute_transition_graphs",
                                "graph_distance", "keep_modal_count", "graph_matching_distance",
                                "pairwise_graph_distances"]}
    for name, public in old.items():
        module = importlib.import_module(name)
        assert sorted(module.__all__) == sorted(public), name
        for attr in public:
            value = getattr(module, attr)
            home = getattr(value, "__module__", None)
            if home is not None and home != name:  # the same object as in the module it moved to
                assert getattr(importlib.import_module(home), attr) is value, (name, attr)


def test_figures_import_neither_mlflow_nor_tensorflow():
    code = ("import sys, rnn_dyn.paper_figures; "
            "print([m for m in ('mlflow', 'tensorflow', 'keras') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
